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

from ._survcore import kaplan_meier_curve
from .discrimination import CensoringKM, _call_r, _r_engine, _tidy
from .inputs import as_binary, as_probability, as_risk_matrix, check_horizon, check_times, column, outcome_and

# the statistics (each with engine=); km_risk is a building block, importable but not listed
__all__ = ["brier_binary", "brier_survival", "integrated_brier_score"]


def brier_binary(y, prob, conf_level: float = 0.95, *, data: pd.DataFrame | None = None,
                 engine: str = "auto") -> pd.DataFrame:
    """Brier score mean((y - p)^2) with Wald CI (se = sd of squared residuals / sqrt(n)) and IPA
    against the prevalence-only null model with an influence-function CI.

    R twin: ``riskRegression::Score(metrics = "brier", summary = "ipa")`` (``ps_r_score_binary``)."""
    y = as_binary(column(y, data, "y"), what="the Brier score")
    p = as_probability(column(prob, data, "prob"), "prob", len(y))
    if _r_engine(engine, ("riskRegression",)):
        out = _call_r("ps_r_score_binary", y=y, probs={"m": p}, conf_level=conf_level)
        return _tidy(out[out.metric.isin(["Brier", "IPA"])].drop(columns="model").to_dict("records"))
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
    """1 - Kaplan-Meier survival at t (the null model's predicted risk; ``_survcore`` KM)."""
    return 1.0 - float(kaplan_meier_curve(time, event).at(t))


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


def brier_survival(time, event=None, risk=None, times: Iterable[float] = (), conf_level: float = 0.95,
                   null_model: bool = True, *, data: pd.DataFrame | None = None,
                   engine: str = "auto") -> pd.DataFrame:
    """IPCW Brier score at each time with IF-based Wald CI; IPA against the Kaplan-Meier null model.

    ``risk``: predicted event probability F(t|x) = 1 - S(t|x), shape (n, len(times)).
    Residuals: (1-F)^2 / G(T-) for events by t, F^2 / G(t) for subjects still event-free at t, 0 for
    subjects censored before t.  Matches ``riskRegression::Score(metrics="brier", summary="ipa")``
    (R twin ``ps_r_score_survival(metrics = "brier")``). IPA's CI uses the joint influence function of
    the two Brier scores (model and null). ``times``: strictly increasing, before the last follow-up.
    ``sksurv.metrics.brier_score`` weights events by G(T) instead of G(T-) and so differs slightly when
    censorings tie with event times.
    """
    y, risk = outcome_and(time, event, risk, data=data, what="the Brier score")
    time, event = y
    times = [float(t) for t in check_times(times)]
    check_horizon(times, time, what="the IPCW Brier score")
    rm = as_risk_matrix(risk, len(time), times, "risk", probability=True)
    if _r_engine(engine, ("survival", "riskRegression")):
        out = _call_r("ps_r_score_survival", time=time, event=event, risks={"m": pd.DataFrame(rm)},
                      times=np.asarray(times), metrics="brier", conf_level=conf_level)
        out = out.drop(columns="model").sort_values(["time", "metric"], kind="stable")   # Brier, IPA per time
        return _tidy((out if null_model else out[out.metric == "Brier"]).to_dict("records"))
    km = CensoringKM(time, event)
    n = len(time)
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    rows = []
    for k, t in enumerate(times):
        if float(km.G(t)) <= 0:
            raise ValueError(f"time {t:g}: every patient still at risk has been censored (G(t) = 0); "
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


def integrated_brier_score(time, event=None, risk=None, times: Iterable[float] = (), rule: str = "step",
                           null_model: bool = False, *, data: pd.DataFrame | None = None,
                           engine: str = "auto") -> pd.DataFrame:
    """Integrated Brier score over ``times`` (sorted), divided by the length of the range.

    ``rule="step"``: left Riemann sum sum_k B(t_k)(t_{k+1} - t_k) / (t_K - t_1) — ``pec::crps`` with
    ``start = t_1``; ``rule="trapezoid"``: trapezoid rule — ``sksurv.metrics.integrated_brier_score``.
    With ``null_model=True`` the Kaplan-Meier IBS and the integrated IPA (1 - IBS/IBS_null) are added.
    R twin (``rule="step"``, no null model): ``pec::crps`` (``ps_r_ibs``); the other variants run in
    Python (``engine="R"`` then raises).
    """
    y, risk = outcome_and(time, event, risk, data=data, what="the integrated Brier score")
    times = check_times(times, min_size=2)
    if rule not in ("step", "trapezoid"):
        raise ValueError(f"rule must be 'step' or 'trapezoid', got {rule!r}")
    if rule == "step" and not null_model:
        if _r_engine(engine, ("survival", "pec")):
            check_horizon(times, y.time, what="the IPCW Brier score")
            rm = as_risk_matrix(risk, len(y), list(times), "risk", probability=True)
            return _tidy(_call_r("ps_r_ibs", time=y.time, event=y.event, risk=pd.DataFrame(rm),
                                 times=times).to_dict("records"))
    elif str(engine).lower() == "r":
        raise ValueError(f"integrated_brier_score(rule={rule!r}, null_model={null_model}) has no R twin: "
                         "use engine='python' or 'auto'")
    bs = brier_survival(y, risk=risk, times=times, null_model=null_model, engine="python")

    def integrate(b):
        if rule == "step":
            return float(np.sum(b[:-1] * np.diff(times)) / (times[-1] - times[0]))
        return float(np.trapezoid(b, times) / (times[-1] - times[0]))

    b_model = bs.loc[bs.metric == "Brier", "estimate"].to_numpy()
    ibs = integrate(b_model)
    rows = [dict(metric="IBS", time=times[-1], estimate=ibs, method=f"IPCW, {rule} rule over "
                 f"[{times[0]:g}, {times[-1]:g}]", engine="python")]
    if null_model:
        t_arr, e_arr = y
        b_null = np.array([_brier_t(t_arr, e_arr, np.full(len(t_arr), km_risk(t_arr, e_arr, t)), t,
                                    CensoringKM(t_arr, e_arr))[0] for t in times])
        ibs0 = integrate(b_null)
        rows.append(dict(metric="IBS (null)", time=times[-1], estimate=ibs0, method="Kaplan-Meier",
                         engine="python"))
        rows.append(dict(metric="IPA (integrated)", time=times[-1], estimate=1 - ibs / ibs0,
                         method="1 - IBS/IBS(Kaplan-Meier)", engine="python"))
    return _tidy(rows)
