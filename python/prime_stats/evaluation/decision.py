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

from .. import rbridge
from .discrimination import _r_engine
from .inputs import as_binary, as_float_array, as_probability, check_horizon, column, outcome_and
from .overall import km_risk

__all__ = ["DEFAULT_THRESHOLDS", "net_benefit", "net_benefit_survival"]

DEFAULT_THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.01), 2)
_COLUMNS = ["threshold", "model", "test_pos_rate", "tp_rate", "fp_rate", "net_benefit",
            "interventions_avoided", "engine"]


def _thresholds(thresholds) -> np.ndarray:
    th = as_float_array(np.atleast_1d(thresholds), "thresholds")
    if ((th < 0) | (th >= 1)).any():
        raise ValueError("thresholds must lie in [0, 1)")
    return th


def _models(prob, n: int, data=None) -> dict[str, np.ndarray]:
    if not isinstance(prob, Mapping):
        prob = {"model": prob}
    out = {}
    for name, p in prob.items():
        p = column(p, data, f"prob[{name!r}]")
        if name in ("all", "none"):
            raise ValueError(f"model name {name!r} is reserved for the treat-all/treat-none strategies")
        out[str(name)] = as_probability(p, f"prob[{name!r}]", n)
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
    return df[_COLUMNS]


def _r_rows(models, th, harm, engine, **kw) -> pd.DataFrame | None:
    """Net benefit from the R twin ``ps_r_net_benefit`` (one call per model), or None when Python computes
    it (no R, ``harm``, or under "auto" an R build whose table lacks the rates)."""
    if harm:
        if str(engine).lower() == "r":
            raise ValueError("harm= is computed in Python only: use engine='python' or 'auto'")
        return None
    if not _r_engine(engine, ("survival",)):
        return None
    frames = []
    for k, (name, p) in enumerate(models.items()):
        out = rbridge.call_r("ps_r_net_benefit", prob=p, thresholds=th, **kw)
        out = out if k == 0 else out[out.model == "model"]
        frames.append(out.assign(model=out.model.replace({"model": name})))
    df = pd.concat(frames, ignore_index=True)
    missing = [c for c in ("test_pos_rate", "tp_rate", "fp_rate") if c not in df]
    if missing and str(engine).lower() == "auto":
        return None      # this R build returns net benefit only: "auto" keeps the full table from Python
    for c in missing:
        df[c] = np.nan
    df["engine"] = "R"
    # Python's row order: each model over the thresholds, then treat-all and treat-none per threshold
    rank = {m: i for i, m in enumerate(models)}
    ref = df.model.isin(["all", "none"])
    df["_k1"] = np.where(ref, len(rank), df.model.map(rank).fillna(0))
    df["_k2"] = np.where(ref, df.threshold, 0.0)
    df["_k3"] = np.where(ref, (df.model == "none").astype(float), df.threshold)
    df = df.sort_values(["_k1", "_k2", "_k3"], kind="stable")
    return df[_COLUMNS].reset_index(drop=True)


def net_benefit(y, prob, thresholds=DEFAULT_THRESHOLDS, harm: Mapping[str, float] | None = None, *,
                data: pd.DataFrame | None = None, engine: str = "auto") -> pd.DataFrame:
    """Net benefit of each model, treat-all and treat-none at each threshold (binary outcome).

    ``prob``: array of predicted probabilities or ``{name: array}``.  ``harm``: optional
    per-model harm subtracted from its net benefit.  Long DataFrame with ``threshold, model,
    test_pos_rate, tp_rate, fp_rate, net_benefit, interventions_avoided`` (per patient).
    R twin: ``ps_r_net_benefit`` (net benefit and interventions avoided).
    """
    y = as_binary(column(y, data, "y"), what="net benefit")
    th = _thresholds(thresholds)
    models = _models(prob, len(y), data)
    r = _r_rows(models, th, harm, engine, y=y)
    if r is not None:
        return r
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


def net_benefit_survival(time, event=None, risk=None, times=None, thresholds=DEFAULT_THRESHOLDS,
                         harm: Mapping[str, float] | None = None, *, data: pd.DataFrame | None = None,
                         engine: str = "auto") -> pd.DataFrame:
    """Net benefit at horizon ``times`` (one time) for predicted risks of an event by then
    (Vickers et al. 2008).

    ``risk``: array or ``{name: array}``. Among test-positives (risk >= pt) the event risk by t is
    1 - KM(t); TP/n = that risk x P(test+), FP/n = KM(t) x P(test+).  When a test-positive group's
    follow-up ends before t the values are NaN (as ``dcurves``). Python only for now: the R twin
    ``ps_r_net_benefit(time=, horizon=)`` extends the Kaplan-Meier curve past the group's follow-up
    instead of giving NA there, so ``engine="R"`` raises until it follows the same rule.
    """
    rbridge.python_only(engine, "net_benefit_survival")
    y, risk = outcome_and(time, event, risk, data=data, what="net benefit")
    time, event = y
    t = np.atleast_1d(np.asarray(times, dtype=float)) if times is not None else np.array([])
    if t.size != 1:
        raise ValueError(f"net_benefit_survival needs one horizon in times; got {t.tolist()}")
    t = float(t[0])
    check_horizon([t], time, what="net benefit", inclusive=True)
    th = _thresholds(thresholds)
    models = _models(risk, len(time), data)

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
