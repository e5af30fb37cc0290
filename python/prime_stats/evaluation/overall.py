"""Overall performance: Brier score (binary and IPCW survival), integrated Brier score, IPA.

References
----------
- Graf, Schmoor, Sauerbrei & Schumacher (1999) Stat Med 18:2529 (IPCW Brier score, integrated Brier).
- Gerds & Schumacher (2006) Biom J 48:1029; Kattan & Gerds (2018) Diagn Progn Res 2:7 (IPA, the index of
  prediction accuracy = 1 - Brier(model) / Brier(null model)).
- Standard errors: influence function including the Kaplan-Meier censoring term, as
  ``riskRegression::Score(metrics="brier", cens.model="km", conservative=FALSE)``; the integrated Brier
  score follows ``pec::crps``/``ibs`` (left Riemann sum) or the trapezoid rule (``sksurv``).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from .discrimination import (CensoringKM, _risk_matrix, _same_length, _tidy, as_binary, as_float_array,
                             as_survival)


def _check_prob(p: np.ndarray, name: str) -> np.ndarray:
    if ((p < 0) | (p > 1)).any():
        bad = int(np.flatnonzero((p < 0) | (p > 1))[0])
        raise ValueError(f"{name} must be probabilities in [0, 1]; position {bad} is {p[bad]!r}")
    return p


def brier_binary(y, prob, conf_level: float = 0.95) -> pd.DataFrame:
    """Brier score mean((y - p)^2) with Wald CI (se = sd of squared residuals / sqrt(n)) and IPA
    against the prevalence-only null model (as ``riskRegression::Score`` for a binary outcome)."""
    y = as_binary(y)
    p = _check_prob(as_float_array(prob, "prob"), "prob")
    _same_length(len(y), prob=p)
    n = len(y)
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    res = (y - p) ** 2
    res0 = (y - y.mean()) ** 2
    b, b0 = res.mean(), res0.mean()
    se = res.std(ddof=1) / np.sqrt(n)
    ipa = 1 - b / b0
    if_ipa = -((res - b) / b0 - b * (res0 - b0) / b0 ** 2)
    se_ipa = if_ipa.std(ddof=1) / np.sqrt(n)
    return _tidy([
        dict(metric="Brier", estimate=b, se=se, lower=max(0.0, b - z * se), upper=b + z * se,
             method="mean squared error", engine="python"),
        dict(metric="IPA", estimate=ipa, se=se_ipa, lower=ipa - z * se_ipa, upper=ipa + z * se_ipa,
             method="1 - Brier/Brier(prevalence)", engine="python"),
    ])


def km_risk(time: np.ndarray, event: np.ndarray, t: float) -> float:
    """1 - Kaplan-Meier survival at t (the null model's predicted risk)."""
    ut = np.unique(time[(event == 1) & (time <= t)])
    s = 1.0
    for v in ut:
        s *= 1 - np.sum((time == v) & (event == 1)) / np.sum(time >= v)
    return 1.0 - s


def _brier_t(time, event, risk, t, km: CensoringKM):
    """IPCW Brier residuals and influence function at time t."""
    n = len(time)
    cases = (time <= t) & (event == 1)
    ctrls = time > t
    psi = np.zeros(n)
    psi[cases] = (1 - risk[cases]) ** 2 / km.G_minus(time[cases])
    psi[ctrls] = risk[ctrls] ** 2 / float(km.G(t))
    b = psi.mean()
    IF = psi - b + km.censoring_if_term(np.where(cases, psi, 0.0), psi[ctrls].sum(), t)
    return b, IF


def brier_survival(time, event, risk, times: Iterable[float], conf_level: float = 0.95,
                   null_model: bool = True) -> pd.DataFrame:
    """IPCW Brier score at each time with IF-based Wald CI; IPA against the Kaplan-Meier null model.

    ``risk``: predicted event probability F(t|x) = 1 - S(t|x), shape (n, len(times)).
    Residuals: (1-F)^2 / G(T-) for events by t, F^2 / G(t) for subjects still event-free at t, 0 for
    subjects censored before t.  Matches ``riskRegression::Score(metrics="brier", summary="ipa")``.
    IPA's CI uses the joint influence function of the two Brier scores (model and null).
    ``sksurv.metrics.brier_score`` weights events by G(T) instead of G(T-) and so differs slightly when
    censorings tie with event times.
    """
    time, event = as_survival(time, event)
    times = [float(t) for t in np.atleast_1d(np.asarray(list(times), dtype=float))]
    rm = _risk_matrix(risk, len(time), times, "risk")
    for k in range(rm.shape[1]):
        _check_prob(rm[:, k], f"risk[:, {k}]")
    tmax = time.max()
    km = CensoringKM(time, event)
    n = len(time)
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    rows = []
    for k, t in enumerate(times):
        if t >= tmax or float(km.G(t)) <= 0:
            raise ValueError(f"time {t} is at or beyond the last follow-up time ({tmax}); "
                             "the IPCW Brier score is not estimable there")
        b, IF = _brier_t(time, event, rm[:, k], t, km)
        se = IF.std(ddof=1) / np.sqrt(n)
        rows.append(dict(metric="Brier", time=t, estimate=b, se=se, lower=max(0.0, b - z * se),
                         upper=b + z * se, method="IPCW (KM censoring)", engine="python"))
        if null_model:
            b0, IF0 = _brier_t(time, event, np.full(n, km_risk(time, event, t)), t, km)
            ipa = 1 - b / b0
            if_ipa = -(IF / b0 - b * IF0 / b0 ** 2)
            se_ipa = if_ipa.std(ddof=1) / np.sqrt(n)
            rows.append(dict(metric="IPA", time=t, estimate=ipa, se=se_ipa, lower=ipa - z * se_ipa,
                             upper=ipa + z * se_ipa, method="1 - Brier/Brier(Kaplan-Meier)",
                             engine="python"))
    return _tidy(rows)


def integrated_brier_score(time, event, risk, times: Iterable[float], rule: str = "step",
                           null_model: bool = False) -> pd.DataFrame:
    """Integrated Brier score over ``times`` (sorted), divided by the length of the range.

    ``rule="step"``: left Riemann sum sum_k B(t_k)(t_{k+1} - t_k) / (t_K - t_1) — ``pec::crps`` with
    ``start = t_1``; ``rule="trapezoid"``: trapezoid rule — ``sksurv.metrics.integrated_brier_score``.
    With ``null_model=True`` the Kaplan-Meier IBS and the integrated IPA (1 - IBS/IBS_null) are added.
    """
    times = np.asarray(list(times), dtype=float)
    if len(times) < 2 or np.any(np.diff(times) <= 0):
        raise ValueError("times must be strictly increasing with at least two values")
    if rule not in ("step", "trapezoid"):
        raise ValueError(f"rule must be 'step' or 'trapezoid', got {rule!r}")
    bs = brier_survival(time, event, risk, times, null_model=null_model)

    def integrate(b):
        if rule == "step":
            return float(np.sum(b[:-1] * np.diff(times)) / (times[-1] - times[0]))
        return float(np.trapezoid(b, times) / (times[-1] - times[0]))

    b_model = bs.loc[bs.metric == "Brier", "estimate"].to_numpy()
    ibs = integrate(b_model)
    rows = [dict(metric="IBS", time=times[-1], estimate=ibs, method=f"IPCW, {rule} rule over "
                 f"[{times[0]:g}, {times[-1]:g}]", engine="python")]
    if null_model:
        t_arr, e_arr = as_survival(time, event)
        b_null = np.array([_brier_t(t_arr, e_arr, np.full(len(t_arr), km_risk(t_arr, e_arr, t)), t,
                                    CensoringKM(t_arr, e_arr))[0] for t in times])
        ibs0 = integrate(b_null)
        rows.append(dict(metric="IBS (null)", time=times[-1], estimate=ibs0, method="Kaplan-Meier",
                         engine="python"))
        rows.append(dict(metric="IPA (integrated)", time=times[-1], estimate=1 - ibs / ibs0,
                         method="1 - IBS/IBS(Kaplan-Meier)", engine="python"))
    return _tidy(rows)
