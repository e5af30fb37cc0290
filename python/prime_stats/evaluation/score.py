"""One-call validation tables in the spirit of ``riskRegression::Score``.

``score_binary`` and ``score_survival`` return one long, tidy DataFrame with the columns
``model, metric, time, estimate, se, lower, upper, method, engine``.  ``engine="R"`` computes every
number through :mod:`prime_stats.rbridge` (pROC / riskRegression / survival / pec / rms), ``"python"``
with the pure-Python implementations in this package, and ``"auto"`` uses R when it and the needed
packages are available and Python otherwise.  The ``engine`` column records which one produced each row.
``bootstrap=B`` adds percentile and BCa bootstrap rows (and paired model contrasts) computed for all
replicates at once by :mod:`.bootstrap` (Python engine).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from .. import rbridge
from .bootstrap import bootstrap_binary, bootstrap_survival
from .calibration import _calibration_survival_r, calibration_binary, calibration_survival
from .discrimination import auc_delong, concordance_index, delong_test, time_dependent_auc
from .inputs import as_binary, as_float_array, as_risk_matrix, check_horizon, check_times, column, outcome_and
from .overall import brier_binary, brier_survival, integrated_brier_score

__all__ = ["COLUMNS", "DAYS_PER_MONTH", "DEFAULT_TIMES", "score_binary", "score_survival"]

COLUMNS = ["model", "metric", "time", "estimate", "se", "lower", "upper", "method", "engine", "p_value"]
DAYS_PER_MONTH = 365.25 / 12                                        # 30.4375 days
DEFAULT_TIMES = tuple(DAYS_PER_MONTH * m for m in (6, 12, 24, 36))   # 6, 12, 24, 36 months in days
_R_BINARY = ("pROC", "riskRegression", "rms")
_R_SURVIVAL = ("survival", "riskRegression", "pec", "Hmisc")


def _long(frames: list[pd.DataFrame]) -> pd.DataFrame:
    df = pd.concat(frames, ignore_index=True)
    for c in COLUMNS:
        if c not in df:
            df[c] = np.nan
    extra = ["threshold"] if "threshold" in df and df["threshold"].notna().any() else []   # net benefit rows
    return df[COLUMNS + extra].reset_index(drop=True)


def _with_model(df: pd.DataFrame, name: str) -> pd.DataFrame:
    df = df.copy()
    df["model"] = name
    return df


def _check_models(predictions, what: str) -> dict:
    if not isinstance(predictions, Mapping) or not predictions:
        raise ValueError(f"{what} must be a non-empty dict {{model name: predictions}}")
    return {str(k): v for k, v in predictions.items()}


def score_binary(y, predictions: Mapping[str, object], engine: str = "auto", calibration: bool = True,
                 compare: bool = True, conf_level: float = 0.95, bootstrap: int = 0, seed: int | None = None,
                 thresholds: Sequence[float] = (), *, data: pd.DataFrame | None = None) -> pd.DataFrame:
    """AUC (DeLong CI), Brier, IPA and (optionally) calibration statistics for each model.

    ``predictions``: ``{model name: predicted probability of y == 1}``.  With ``compare`` and several
    models, every pair gets an "AUC difference" row (model ``"A vs B"``) with the paired DeLong test's
    CI and ``p_value`` (``pROC::roc.test``).  ``bootstrap=B`` (with ``seed``) adds percentile and BCa
    rows for AUC, Brier, IPA, O/E, CITL, calibration intercept and slope and, at ``thresholds``, net
    benefit (a ``threshold`` column), plus paired bootstrap differences between models when ``compare``.
    """
    y = as_binary(column(y, data, "y"), what="scoring")
    preds = _check_models(predictions, "predictions")
    for name, p in preds.items():
        preds[name] = as_float_array(column(p, data, f"predictions[{name!r}]"), f"predictions[{name!r}]")
        if len(preds[name]) != len(y):
            raise ValueError(f"predictions[{name!r}] has length {len(preds[name])} but y has length {len(y)}")
    eng = rbridge.resolve_engine(engine, _R_BINARY)
    frames = []
    if eng == "R":
        frames.append(rbridge.call_r("ps_r_score_binary", y=y, probs=preds, conf_level=conf_level))
        if calibration:
            for name, p in preds.items():
                frames.append(_with_model(rbridge.call_r("ps_r_val_prob", y=y, prob=p,
                                                         conf_level=conf_level), name))
    else:
        for name, p in preds.items():
            frames.append(_with_model(auc_delong(y, p, conf_level, engine="python"), name))
            frames.append(_with_model(brier_binary(y, p, conf_level, engine="python"), name))
            if calibration:
                frames.append(_with_model(calibration_binary(y, p, conf_level, engine="python"), name))
    if compare:
        names = list(preds)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                row = (rbridge.call_r("ps_r_roc_test", y=y, score1=preds[a], score2=preds[b]) if eng == "R"
                       else delong_test(y, preds[a], preds[b], engine="python"))
                frames.append(_with_model(row, f"{a} vs {b}"))
    if bootstrap:
        boot = bootstrap_binary(y, preds, B=bootstrap, seed=seed, thresholds=thresholds)
        frames.append(boot.table(conf_level))
        if compare and len(preds) > 1:
            frames.append(boot.contrasts(conf_level))
    return _long(frames)


def score_survival(time, event=None, risks: Mapping[str, object] | None = None,
                   times: Sequence[float] = DEFAULT_TIMES, risk_scores: Mapping[str, object] | None = None,
                   engine: str = "auto", ibs: bool = True, calibration: bool = True, conf_level: float = 0.95,
                   bootstrap: int = 0, seed: int | None = None, compare: bool = True, ties: str = "efron", *,
                   data: pd.DataFrame | None = None) -> pd.DataFrame:
    """Harrell's and Uno's C, AUC(t), Brier(t), IPA(t), integrated Brier and calibration at each time.

    ``risks``: ``{model: array (n, len(times))}`` of predicted event probabilities F(t|x) = 1 - S(t|x)
    at each time.  ``risk_scores``: optional ``{model: array (n,)}`` used for the C-indices (e.g. a
    linear predictor); by default the predicted risk at the last time.  The IBS integrates the Brier
    curve over ``times`` with a left Riemann sum (``pec::crps``), so pass a fine grid if the IBS matters.
    ``bootstrap=B`` (with ``seed``) adds percentile and BCa rows for the C-indices, AUC(t), Brier(t),
    IPA(t), IBS, O/E(t) and the calibration slope, and, when ``compare`` and several models are given,
    paired bootstrap differences between models (model ``"A vs B"``, metric ``"<metric> difference"``).
    ``ties``: tie handling of the Cox calibration slope (Efron, coxph's default, or Breslow). The
    outcome may be a structured array (``score_survival(y, risks=...)``) or column names of ``data``;
    C-index rows name the estimator (Harrell / Uno) in ``method``.
    """
    y, models = outcome_and(time, event, risks, data=data, other_name="risks", what="scoring")
    time, event = y
    times = [float(t) for t in check_times(times)]
    check_horizon(times, time, what="the time-dependent metrics")
    models = _check_models(models, "risks")
    rm = {name: as_risk_matrix(column(r, data, f"risks[{name!r}]"), len(time), times, f"risks[{name!r}]")
          for name, r in models.items()}
    scores = {}
    for name in rm:
        if risk_scores is not None and name in risk_scores:
            scores[name] = as_float_array(column(risk_scores[name], data, f"risk_scores[{name!r}]"),
                                          f"risk_scores[{name!r}]")
            if len(scores[name]) != len(time):
                raise ValueError(f"risk_scores[{name!r}] has length {len(scores[name])}, time has {len(time)}")
        else:
            scores[name] = rm[name][:, -1]
    eng = rbridge.resolve_engine(engine, _R_SURVIVAL)
    frames = []
    if eng == "R":
        frames.append(rbridge.call_r("ps_r_score_survival", time=time, event=event,
                                     risks={k: pd.DataFrame(v) for k, v in rm.items()},
                                     times=np.asarray(times), conf_level=conf_level))
        for name in rm:
            for tw in ("n", "n/G2"):
                frames.append(_with_model(rbridge.call_r("ps_r_concordance", time=time, event=event,
                                                         risk=scores[name], timewt=tw,
                                                         conf_level=conf_level), name))
            if ibs and len(times) > 1:
                frames.append(_with_model(rbridge.call_r("ps_r_ibs", time=time, event=event,
                                                         risk=pd.DataFrame(rm[name]),
                                                         times=np.asarray(times)), name))
            if calibration:
                for k, t in enumerate(times):
                    cal = _calibration_survival_r(time, event, rm[name][:, k], t, 3, conf_level, ties, engine)
                    if cal is None:  # this R build has no ties argument: Python computes the rows
                        cal = calibration_survival(time, event, rm[name][:, k], [t], conf_level=conf_level,
                                                   ties=ties, engine="python")
                    frames.append(_with_model(cal, name))
    else:
        for name, r in rm.items():
            for tw in ("n", "n/G2"):
                frames.append(_with_model(concordance_index(time, event, scores[name], tw, conf_level,
                                                            engine="python"), name))
            frames.append(_with_model(time_dependent_auc(time, event, r, times, conf_level, engine="python"),
                                      name))
            frames.append(_with_model(brier_survival(time, event, r, times, conf_level, engine="python"), name))
            if ibs and len(times) > 1:
                frames.append(_with_model(integrated_brier_score(time, event, r, times, engine="python"), name))
            if calibration:
                frames.append(_with_model(calibration_survival(time, event, r, times, conf_level=conf_level,
                                                               ties=ties, engine="python"), name))
    if bootstrap:
        metrics = ["harrell", "uno", "auc", "brier", "ipa"] + (["ibs"] if ibs else []) + \
            (["oe", "slope"] if calibration else [])
        boot = bootstrap_survival(time, event, rm, times, scores, B=bootstrap, seed=seed, metrics=metrics,
                                  ties=ties)
        frames.append(boot.table(conf_level))
        if compare and len(rm) > 1:
            frames.append(boot.contrasts(conf_level))
    out = _long(frames)
    order = {m: i for i, m in enumerate(["C-index", "AUC(t)", "Brier", "IPA", "IBS", "O/E", "slope",
                                         "ICI", "E50", "E90", "Emax"])}
    out["_o"] = out.metric.map(order)
    return out.sort_values(["model", "_o", "method", "time"], kind="stable").drop(columns="_o") \
        .reset_index(drop=True)
