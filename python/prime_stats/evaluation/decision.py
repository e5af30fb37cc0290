"""Decision curve analysis: net benefit for binary outcomes and for survival at a horizon.

References
----------
- Vickers & Elkin (2006) Med Decis Making 26:565 (net benefit = TP/n - FP/n * pt/(1-pt)).
- Vickers, Cronin, Elkin & Gonen (2008) BMC Med Inform Decis Mak 8:53 (survival: TP and FP from the
  Kaplan-Meier risk by t among patients with predicted risk >= pt).
- Values identical to the Python ``dcurves`` package (``dca``): a patient is test-positive when
  predicted risk >= threshold, and a predicted risk of exactly 0 is never test-positive (so a 0/1
  marker is not "treat all" at threshold 0); net interventions avoided per patient =
  (NB - NB_all) / (pt/(1-pt)).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from .discrimination import _same_length, as_binary, as_float_array, as_survival
from .overall import _check_prob, km_risk

DEFAULT_THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.01), 2)


def _thresholds(thresholds) -> np.ndarray:
    th = as_float_array(np.atleast_1d(thresholds), "thresholds")
    if ((th < 0) | (th >= 1)).any():
        raise ValueError("thresholds must lie in [0, 1)")
    return th


def _models(predictions, n: int) -> dict[str, np.ndarray]:
    if not isinstance(predictions, Mapping):
        predictions = {"model": predictions}
    out = {}
    for name, p in predictions.items():
        if name in ("all", "none"):
            raise ValueError(f"model name {name!r} is reserved for the treat-all/treat-none strategies")
        arr = _check_prob(as_float_array(p, f"predictions[{name!r}]"), f"predictions[{name!r}]")
        _same_length(n, **{f"predictions[{name!r}]": arr})
        out[str(name)] = arr
    return out


def _finish(rows: list[dict], harm: Mapping[str, float] | None) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    odds = df.threshold / (1 - df.threshold)
    h = df.model.map(lambda m: float((harm or {}).get(m, 0.0)))
    df["net_benefit"] = df.tp_rate - odds * df.fp_rate - h
    nb_all = df.loc[df.model == "all"].set_index("threshold").net_benefit
    with np.errstate(divide="ignore", invalid="ignore"):
        ia = (df.net_benefit - df.threshold.map(nb_all)) / odds
    df["interventions_avoided"] = np.where(df.threshold > 0, ia, np.nan)
    df["engine"] = "python"
    return df[["threshold", "model", "test_pos_rate", "tp_rate", "fp_rate", "net_benefit",
               "interventions_avoided", "engine"]]


def net_benefit(y, predictions, thresholds=DEFAULT_THRESHOLDS,
                harm: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Net benefit of each model, treat-all and treat-none at each threshold (binary outcome).

    ``predictions``: array of predicted probabilities or ``{name: array}``.  ``harm``: optional
    per-model harm subtracted from its net benefit.  Long DataFrame with ``threshold, model,
    test_pos_rate, tp_rate, fp_rate, net_benefit, interventions_avoided`` (per patient).
    """
    y = as_binary(y)
    th = _thresholds(thresholds)
    models = _models(predictions, len(y))
    prev = y.mean()
    rows = []
    for name, p in models.items():
        for pt in th:
            pos = (p >= pt) & (p > 0)
            rows.append(dict(threshold=pt, model=name, test_pos_rate=pos.mean(),
                             tp_rate=(pos & (y == 1)).sum() / len(y), fp_rate=(pos & (y == 0)).sum() / len(y)))
    for pt in th:
        rows.append(dict(threshold=pt, model="all", test_pos_rate=1.0, tp_rate=prev, fp_rate=1 - prev))
        rows.append(dict(threshold=pt, model="none", test_pos_rate=0.0, tp_rate=0.0, fp_rate=0.0))
    return _finish(rows, harm)


def net_benefit_survival(time, event, predictions, t: float, thresholds=DEFAULT_THRESHOLDS,
                         harm: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Net benefit at horizon ``t`` for predicted risks of an event by ``t`` (Vickers et al. 2008).

    Among test-positives (risk >= pt) the event risk by t is 1 - KM(t); TP/n = that risk x P(test+),
    FP/n = KM(t) x P(test+).  When a test-positive group's follow-up ends before t the values are NaN
    (as ``dcurves``).
    """
    time, event = as_survival(time, event)
    th = _thresholds(thresholds)
    models = _models(predictions, len(time))
    if t > time.max():
        raise ValueError(f"horizon t={t} is beyond the last follow-up time ({time.max()})")

    def risk_among(sel):
        if not sel.any():
            return 0.0
        if time[sel].max() < t:
            return np.nan
        return km_risk(time[sel], event[sel], t)

    rows = []
    prev = km_risk(time, event, t)
    for name, p in models.items():
        for pt in th:
            pos = (p >= pt) & (p > 0)
            r = risk_among(pos)
            rows.append(dict(threshold=pt, model=name, test_pos_rate=pos.mean(), tp_rate=r * pos.mean(),
                             fp_rate=(1 - r) * pos.mean()))
    for pt in th:
        rows.append(dict(threshold=pt, model="all", test_pos_rate=1.0, tp_rate=prev, fp_rate=1 - prev))
        rows.append(dict(threshold=pt, model="none", test_pos_rate=0.0, tp_rate=0.0, fp_rate=0.0))
    return _finish(rows, harm)
