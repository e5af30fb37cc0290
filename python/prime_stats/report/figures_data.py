"""The tables the report's figures are drawn from: Kaplan-Meier curves and numbers at risk on a 6-month
grid, the KM annotation (log-rank p, HR high vs low), calibration curves with their band and the rug of
predictions, in long tidy form that a study stores (``tables/*.csv``) and :mod:`prime_stats.report.figures`
draws with either engine.

No statistic is computed here a second time: the estimates come from :mod:`prime_stats.evaluation`
(``survival.kaplan_meier``, ``calibration.calibration_curve_binary`` / ``calibration_curve_survival``);
these functions choose the grids and stack the results into one table per figure.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

from prime_stats.evaluation import survival as sv
from prime_stats.evaluation.calibration import (PROBABILITY_FLOOR, calibration_curve_binary,
                                                calibration_curve_survival, clip_probability)
from prime_stats.evaluation.score import DAYS_PER_MONTH

__all__ = ["DAYS_PER_MONTH", "at_risk_times", "km_tables", "km_annotation", "calibration_curves",
           "calibration_curves_survival", "prediction_rug"]



def at_risk_times(max_time: float, every: float = 6.0, time_scale: float = DAYS_PER_MONTH) -> np.ndarray:
    """The times (in the data's units) of the numbers-at-risk table and of the x-axis ticks: 0, every,
    2*every, ... display units (months by default: ``time_scale`` days per month) up to ``max_time``."""
    if not np.isfinite(max_time) or max_time < 0:
        raise ValueError(f"max_time must be finite and >= 0, got {max_time}")
    if every <= 0 or time_scale <= 0:
        raise ValueError("every and time_scale must be > 0")
    k = int(np.floor(max_time / time_scale / every + 1e-9))
    return np.arange(k + 1) * every * time_scale


def km_tables(data: pd.DataFrame, time: str, event: str, group: str | None = None, every: float = 6.0,
              time_scale: float = DAYS_PER_MONTH, engine: str = "python",
              id_col: str | None = "patient_id") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Kaplan-Meier curve table and numbers-at-risk table for a KM figure (``survival::survfit``).

    Returns ``(curves, at_risk)``: ``curves`` is :func:`~prime_stats.evaluation.survival.kaplan_meier`'s
    ``curve`` (group, time, n_risk, n_event, n_censor, surv, std_err, lower, upper, method, engine);
    ``at_risk`` its ``at_times`` on the grid of :func:`at_risk_times` (0, 6, 12, ... months): the tidy
    numbers at risk with events and censorings per interval (as ``survival.numbers_at_risk``). R twin:
    ``summary(survfit(...), times = seq(0, by = 6 * 30.4375, ...), extend = TRUE)``.
    """
    t_max = float(pd.to_numeric(data[time], errors="coerce").max())
    km = sv.kaplan_meier(time, event, group, data=data, times=at_risk_times(t_max, every, time_scale),
                         id_col=id_col, engine=engine)
    return km.curve, km.at_times


def km_annotation(logrank: pd.DataFrame, cox_hr: pd.DataFrame, term: str = "high_risk",
                  contrast: str = "high vs low risk") -> dict:
    """The KM figure's annotation from the stored log-rank and Cox tables: log-rank p and the HR of
    ``term`` (coded 1 = high risk, so the HR reads high vs low, the direction used everywhere) with
    its 95% CI. Raises when ``term`` is not a row of ``cox_hr``."""
    for name, df, cols in (("logrank", logrank, ("p",)), ("cox_hr", cox_hr, ("term", "estimate", "lower",
                                                                             "upper"))):
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ValueError(f"{name} table lacks column(s) {missing}")
    rows = cox_hr[cox_hr["term"].astype(str) == term]
    if len(rows) != 1:
        raise ValueError(f"cox_hr table has {len(rows)} row(s) for term {term!r} (terms: "
                         f"{sorted(cox_hr['term'].astype(str).unique())}); pass one split's table")
    hr = rows.iloc[0]
    p = pd.to_numeric(logrank["p"]).unique()
    if len(p) != 1:
        raise ValueError(f"logrank table holds {len(p)} different p values; pass one split's table")
    return {"logrank_p": float(p[0]), "hr": float(hr["estimate"]), "hr_lower": float(hr["lower"]),
            "hr_upper": float(hr["upper"]), "contrast": contrast}


def _long(curves: Mapping[str, tuple[pd.DataFrame, int]], endpoint: str, horizon: float, n: int,
          n_boot: int) -> pd.DataFrame:
    out = pd.concat([c.assign(model=str(m), n_clipped=k) for m, (c, k) in curves.items()], ignore_index=True)
    out = out.assign(endpoint=endpoint, horizon=horizon, n=n, n_boot=n_boot, engine="python")
    return out[["endpoint", "horizon", "model", "predicted", "observed", "lower", "upper", "n", "n_clipped",
                "n_boot", "method", "engine"]]


def _clipped(predictions: Mapping[str, np.ndarray]) -> dict:
    """Each model's predictions inside [1e-6, 1 - 1e-6] and how many were moved there."""
    return {m: clip_probability(p, PROBABILITY_FLOOR) for m, p in predictions.items()}


def calibration_curves(y, predictions: Mapping[str, np.ndarray], method: str = "loess", n_boot: int = 200,
                       n_points: int = 50, random_state: int | None = 0) -> pd.DataFrame:
    """Calibration curves of predicted probabilities (binary endpoint), one block per model, for the
    rms-style calibration figure: columns endpoint ("response"), horizon (NaN), model, predicted,
    observed, lower, upper (pointwise 95% band), n, n_clipped, n_boot, method, engine.
    Probabilities of exactly 0 or 1 are moved to 1e-6 / 1 - 1e-6 first (``n_clipped`` counts them; see
    :func:`~prime_stats.evaluation.calibration.clip_probability`).

    Each block is :func:`~prime_stats.evaluation.calibration.calibration_curve_binary` (lowess
    ``iter=0`` with a percentile-bootstrap band, or an RCS logistic fit with a Wald band): the curve of
    ``rms::val.prob`` / ``rms::calibrate``. Store it with :func:`prediction_rug` for the rug.
    """
    y = np.asarray(y)
    curves = {m: (calibration_curve_binary(y, p, method=method, n_points=n_points, n_boot=n_boot,
                                           random_state=random_state), k)
              for m, (p, k) in _clipped(predictions).items()}
    return _long(curves, "response", np.nan, len(y), n_boot if method == "loess" else 0)


def calibration_curves_survival(time, event, risks: Mapping[str, np.ndarray], horizon: float,
                                n_boot: int = 200, n_points: int = 50, nk: int = 3,
                                random_state: int | None = 0) -> pd.DataFrame:
    """Calibration curves of predicted risks F(t|x) = 1 - S(t|x) by ``horizon`` (survival endpoint),
    same columns as :func:`calibration_curves` with endpoint "survival" and the horizon (risks of exactly
    0 or 1, e.g. from survival forests, moved to 1e-6 / 1 - 1e-6 and counted in ``n_clipped``).

    Each block is :func:`~prime_stats.evaluation.calibration.calibration_curve_survival` (Austin, Harrell
    & van Klaveren 2020: Cox model on a restricted cubic spline of cloglog F, percentile-bootstrap
    band); R twin ``ps_r_calibration_survival``'s smoothed observed risk.
    """
    time = np.asarray(time, dtype=float)
    curves = {m: (calibration_curve_survival(time, event, F, horizon, nk=nk, n_points=n_points, n_boot=n_boot,
                                             random_state=random_state), k)
              for m, (F, k) in _clipped(risks).items()}
    return _long(curves, "survival", float(horizon), len(time), n_boot)


def prediction_rug(predictions: Mapping[str, np.ndarray], horizon: float | None = None) -> pd.DataFrame:
    """The predictions under a calibration curve (its rug), long: endpoint ("response" without a
    horizon, else "survival"), model, horizon, predicted."""
    endpoint = "response" if horizon is None else "survival"
    frames = [pd.DataFrame({"endpoint": endpoint, "model": str(m),
                            "horizon": np.nan if horizon is None else float(horizon),
                            "predicted": np.asarray(p, dtype=float)}) for m, p in predictions.items()]
    return pd.concat(frames, ignore_index=True)
