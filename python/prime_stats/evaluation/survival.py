"""Survival analysis for PRIME-S: Kaplan-Meier, log-rank, Cox hazard ratios, risk stratification.

Every function follows the one convention of :mod:`prime_stats.evaluation`: the outcome first
(``time, event``), then the function's own variables (``group``, ``covariates``, ``risk``, ...), then
keywords, among them ``data=`` and ``engine=``. ``time``/``event`` and the variables are arrays, or
column names of ``data`` (a pandas DataFrame, as R's ``survfit(formula, data)``), so that errors name
the column and the patient; a scikit-survival structured array or
:class:`~prime_stats.evaluation.inputs.SurvivalOutcome` may replace ``time, event``
(``kaplan_meier(y, group)``). The outcome is checked by the one validator,
:func:`prime_stats.evaluation.inputs.as_survival`. Kaplan-Meier curves and Cox fits come from
:mod:`prime_stats.evaluation._survcore`. Results are tidy DataFrames (``estimate``, ``lower``,
``upper``, ``method``, ``engine``) matching R's survival package, or small result objects with a short
``repr``, ``summary()`` and ``to_frame()``:

* :func:`kaplan_meier` - ``survival::survfit`` (Greenwood variance, ``conf.type="log"`` by default),
  survival at chosen times, median survival with the ``print.survfit`` CI rule;
* :func:`numbers_at_risk` - ``summary(survfit, times=)``'s n.risk, n.event and n.censor (per interval),
  one row per group and time;
* :func:`logrank_test` - ``survival::survdiff`` (rho = 0);
* :func:`cox_hazard_ratios` - ``survival::coxph`` (Efron ties, Newton-Raphson with step halving,
  Wald CI; lifelines/statsmodels were not used because they diverge on real data where coxph
  converges, e.g. pbc with edema);
* :func:`cox_zph` - ``survival::cox.zph`` (score test for beta(t) = beta + theta g(t), KM transform);
* :class:`MedianRiskStratifier` - risk groups with the cut-off frozen on training data, and
  :func:`risk_stratification` - groups + KM + log-rank + HR for one cohort in one call;
* :func:`subgroup_hazard_ratios` - HR per subgroup level and the likelihood-ratio interaction test;
* :func:`adjusted_hazard_ratio` - HR before and after adjustment for covariates;
* :func:`median_followup` - reverse Kaplan-Meier median follow-up (Schemper & Smith 1996);
* :func:`restricted_mean_survival` - RMST and its SE as in ``print.survfit(rmean=)``.

``engine="R"`` runs the same statistic in R (``R/stats_survival.R``) through :mod:`prime_stats.rbridge`;
``engine="auto"`` (the default everywhere) uses R when available and Python otherwise; statistics without
an R twin (subgroup HRs) run in Python and refuse ``engine="R"``. The ``engine`` column says which ran.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .. import rbridge
from ._survcore import CoxModel, fit_cox, kaplan_meier_curve
from .inputs import (as_float_array, as_survival, check_horizon, check_times, column, message, outcome_args,
                     positions, row_ids, same_length)

__all__ = [
    "KaplanMeierResult",
    "kaplan_meier",
    "numbers_at_risk",
    "logrank_test",
    "cox_hazard_ratios",
    "cox_zph",
    "MedianRiskStratifier",
    "RiskStratification",
    "risk_stratification",
    "subgroup_hazard_ratios",
    "adjusted_hazard_ratio",
    "median_followup",
    "restricted_mean_survival",
]

_TOL = np.sqrt(np.finfo(float).eps)  # survival's tolerance for the median rule


# --------------------------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------------------------
def _ids(data: pd.DataFrame | None, mask: np.ndarray, id_col: str | None) -> str:
    return positions(mask, row_ids(data, id_col))


def _check_survival(time, event, data: pd.DataFrame | None, id_col: str | None = "patient_id",
                    require_events: bool = False, what: str = "this statistic"):
    """Validated float time and 0/1 int event (``inputs.as_survival``: column names of ``data``,
    arrays, or a structured outcome in ``time``), with errors naming the column and the patients."""
    if data is not None and not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if data is not None and len(data) == 0:
        raise ValueError("data has no rows")
    y = as_survival(time, event, data=data, id_col=id_col, require_events=require_events, what=what)
    return y.time, y.event


def _check_group(group, data: pd.DataFrame | None, n: int, id_col: str | None = "patient_id",
                 min_levels: int = 1, name: str = "group"):
    """Group labels (a column name of ``data`` or an array of length ``n``) and their levels (categorical
    order, else sorted); missing labels raise naming the patients."""
    if group is None:
        raise ValueError(f"{name} is missing")
    if isinstance(group, str):
        column(group, data, name)                          # raises naming the column when it is absent
        g, label = data[group].reset_index(drop=True), f"column {group!r}"
    else:
        g, label, data = pd.Series(group).reset_index(drop=True), name, None
    same_length(n, ref="time", **{label: g})
    if g.isna().any():
        raise ValueError(f"{label} has {int(g.isna().sum())} missing value(s) "
                         f"({_ids(data, g.isna().to_numpy(), id_col)})")
    levels = list(g.cat.categories) if isinstance(g.dtype, pd.CategoricalDtype) else sorted(g.unique())
    levels = [lv for lv in levels if (g == lv).any()]
    if len(levels) < min_levels:
        raise ValueError(f"{label} has {len(levels)} level(s) ({levels}); at least {min_levels} are needed")
    return g.to_numpy(), levels


# --------------------------------------------------------------------------------------------
# Kaplan-Meier
# --------------------------------------------------------------------------------------------
def _km_ci(surv, var_logs, conf_type: str, z: float):
    se = np.sqrt(var_logs)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "log":
            lower = surv * np.exp(-z * se)
            upper = np.minimum(surv * np.exp(z * se), 1.0)
        elif conf_type == "log-log":
            loglog_se = se / np.log(surv)
            lower = np.exp(-np.exp(np.log(-np.log(surv)) - z * loglog_se))
            upper = np.exp(-np.exp(np.log(-np.log(surv)) + z * loglog_se))
        elif conf_type == "plain":
            lower = np.maximum(surv - z * se * surv, 0.0)
            upper = np.minimum(surv + z * se * surv, 1.0)
        else:
            raise ValueError(f"conf_type must be 'log', 'log-log' or 'plain', got {conf_type!r}")
    # survfit: no variance information (S = 1 with no events yet) -> CI equals S; S = 0 -> NA
    none_yet = var_logs == 0
    lower = np.where(none_yet, surv, lower)
    upper = np.where(none_yet, surv, upper)
    lower = np.where(surv == 0, np.nan, lower)
    upper = np.where(surv == 0, np.nan, upper)
    return lower, upper


def _first_below_half(times: np.ndarray, curve: np.ndarray) -> float:
    """print.survfit's median rule: first time the curve is <= 0.5, midpoint if it sits at 0.5."""
    keep = ~np.isnan(curve) & (curve < 0.5 + _TOL)
    if not keep.any():
        return np.nan
    x, y = times[keep], curve[keep]
    if abs(y[0] - 0.5) < _TOL and (y < y[0]).any():
        return 0.5 * (x[0] + x[np.flatnonzero(y < y[0])[0]])
    return float(x[0])


def _rmst(ut, surv, n_risk, n_event, tau: float):
    """Restricted mean and its SE exactly as survival:::survmean (print.survfit(rmean=tau))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = np.where(n_risk - n_event == 0, 0.0, n_event / (n_risk * (n_risk - n_event)))
    keep = ut <= tau
    start = min(0.0, float(ut.min()))
    if not keep.any():
        return tau - start, 0.0
    tt = np.append(ut[keep], tau)
    ss = np.append(surv[keep], surv[keep][-1])
    hh = np.append(hh[keep], 0.0)
    rect = np.diff(np.concatenate([[start], tt])) * np.concatenate([[1.0], ss[:-1]])
    var = np.sum(np.cumsum(rect[1:][::-1]) ** 2 * hh[::-1][1:])
    return float(rect.sum() + start), float(np.sqrt(var))


@dataclass
class KaplanMeierResult:
    """Kaplan-Meier estimates, as ``survfit``: the full ``curve``, ``at_times`` (``summary(survfit,
    times=)``) and ``medians`` (``print.survfit``: n, events, median and its CI per group).

    ``repr`` prints the short ``print.survfit`` table; :meth:`summary` gives the table a paper needs
    (median and survival at the requested times with CIs, one row each); :meth:`to_frame` the tidy
    curve (``estimate``, ``se``, ``lower``, ``upper``, ``method``, ``engine``).
    """

    curve: pd.DataFrame
    at_times: pd.DataFrame
    medians: pd.DataFrame
    conf_type: str
    conf_level: float
    engine: str

    def __repr__(self) -> str:
        m = self.medians[["group", "n", "events", "median", "lower", "upper"]].copy()
        m = m.rename(columns={"lower": f"{self.conf_level:.2f}LCL", "upper": f"{self.conf_level:.2f}UCL"})
        body = m.to_string(index=False, float_format=lambda v: f"{v:.1f}", na_rep="NA")
        return (f"Kaplan-Meier ({self.conf_type} CI, engine {self.engine}): "
                f"{int(self.medians['n'].sum())} patients, {int(self.medians['events'].sum())} events\n{body}")

    def summary(self) -> pd.DataFrame:
        """Median survival and S(t) at each requested time per group: group, statistic, time, estimate,
        lower, upper, n_risk, n_event (events in the interval up to t), method, engine."""
        med = self.medians.assign(statistic="median", time=np.nan, n_risk=np.nan, n_event=self.medians["events"])
        at = self.at_times.assign(statistic="survival").rename(columns={"surv": "estimate"})
        med = med.rename(columns={"median": "estimate"})
        cols = ["group", "statistic", "time", "estimate", "lower", "upper", "n_risk", "n_event", "method",
                "engine"]
        return pd.concat([med.reindex(columns=cols), at.reindex(columns=cols)], ignore_index=True)

    def to_frame(self) -> pd.DataFrame:
        """The whole curve as a tidy table (one row per group and distinct time)."""
        return self.curve.rename(columns={"surv": "estimate", "std_err": "se"})


def kaplan_meier(time, event=None, group=None, *, data: pd.DataFrame | None = None,
                 times: Iterable[float] | None = None, conf_type: str = "log", conf_level: float = 0.95,
                 id_col: str | None = "patient_id", engine: str = "auto") -> KaplanMeierResult:
    """Kaplan-Meier survival by group with Greenwood CIs (``survival::survfit`` defaults).

    ``kaplan_meier("time", "status", "sex", data=lung)``, ``kaplan_meier(t, e, g)`` or
    ``kaplan_meier(y, g)`` (a structured outcome); ``group`` is optional. ``at_times`` reproduces
    ``summary(survfit, times=, extend=TRUE)``: survival, CI, the number at risk (follow-up >= t) and the
    numbers of events and censorings in the interval since the previous requested time; beyond a
    group's last follow-up S(t) keeps its last value and ``n_risk`` is 0. With no events the curve
    stays at 1 and the median is NaN. ``conf_type`` is ``"log"`` (survfit's default), ``"log-log"`` or
    ``"plain"``. R twin: ``ps_r_km``.
    """
    time, event, group = outcome_args(time, event, group)
    t, e = _check_survival(time, event, data, id_col)
    if group is None:
        g, levels = np.zeros(len(t), dtype=int), [0]
    else:
        g, levels = _check_group(group, data, len(t), id_col)
    times = np.asarray([] if times is None else np.sort(check_times(times, min_size=0, increasing=False)),
                       dtype=float)
    if not 0 < conf_level < 1:
        raise ValueError("conf_level must be in (0, 1)")
    if conf_type not in ("log", "log-log", "plain"):
        raise ValueError(f"conf_type must be 'log', 'log-log' or 'plain', got {conf_type!r}")
    eng = rbridge.resolve_engine(engine, ("survival",))
    if eng == "R":
        codes = np.asarray([levels.index(x) for x in g]) + 1  # integer codes keep the Python level order
        res = rbridge.call_r("ps_r_km", time=t, event=e, group=codes if group is not None else None,
                             times=times if times.size else None, conf_type=conf_type,
                             conf_level=float(conf_level))
        out = {}
        for key in ("curve", "at_times", "summary"):
            df = res[key] if isinstance(res[key], pd.DataFrame) else pd.DataFrame(columns=["group"])
            df["group"] = [levels[int(float(v)) - 1] if group is not None else 0 for v in df["group"]]
            for c in ("n", "events", "n_risk", "n_event", "n_censor"):
                if c in df:
                    df[c] = df[c].astype(int)
            df["engine"] = "R"
            out[key] = df
        return KaplanMeierResult(out["curve"], out["at_times"], out["summary"], conf_type, conf_level, "R")

    z = stats.norm.ppf(0.5 + conf_level / 2)
    curves, at_rows, summ = [], [], []
    for lv in levels:
        m = g == lv
        km = kaplan_meier_curve(t[m], e[m])
        ut, s = km.time, km.surv
        lo, up = _km_ci(s, km.var_log, conf_type, z)
        se_s = km.std_err
        curves.append(pd.DataFrame({"group": lv, "time": ut, "n_risk": km.n_risk, "n_event": km.n_event,
                                    "n_censor": km.n_censor, "surv": s, "std_err": se_s, "lower": lo,
                                    "upper": up}))
        for tt, d, c in zip(times, km.events_between(times), km.censored_between(times)):
            k = np.searchsorted(ut, tt, side="right") - 1
            at_rows.append({"group": lv, "time": tt, "n_risk": int((t[m] >= tt).sum()), "n_event": int(d),
                            "n_censor": int(c),
                            "surv": 1.0 if k < 0 else s[k],
                            "std_err": 0.0 if k < 0 else se_s[k],
                            "lower": 1.0 if k < 0 else lo[k], "upper": 1.0 if k < 0 else up[k]})
        summ.append({"group": lv, "n": int(m.sum()), "events": int(e[m].sum()),
                     "median": _first_below_half(ut, s), "lower": _first_below_half(ut, lo),
                     "upper": _first_below_half(ut, up)})
    curve = pd.concat(curves, ignore_index=True)
    for c in ("n_risk", "n_event", "n_censor"):
        curve[c] = curve[c].astype(int)
    at = pd.DataFrame(at_rows, columns=["group", "time", "n_risk", "n_event", "n_censor", "surv", "std_err",
                                        "lower", "upper"])
    medians = pd.DataFrame(summ)
    method = f"Kaplan-Meier, Greenwood variance, {conf_type} CI ({conf_level:.0%})"
    for df in (curve, at, medians):
        df["method"] = method
        df["engine"] = "python"
    return KaplanMeierResult(curve, at, medians, conf_type, conf_level, "python")


def numbers_at_risk(time, event=None, group=None, *, times: Iterable[float], data: pd.DataFrame | None = None,
                    id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """Numbers at risk (follow-up >= t), events and censorings in the interval since the previous time,
    tidy: one row per group and time (group, time, n_risk, n_event, n_censor, method, engine).

    The table under a KM plot and ``summary(survfit, times=, extend=TRUE)``'s ``n.risk``, ``n.event``,
    ``n.censor``: it is :func:`kaplan_meier`'s ``at_times`` without the estimates. R twin: ``ps_r_km``.
    """
    km = kaplan_meier(time, event, group, data=data, times=check_times(times, increasing=False), id_col=id_col,
                      engine=engine)
    out = km.at_times[["group", "time", "n_risk", "n_event", "n_censor", "engine"]].copy()
    out.insert(5, "method", "numbers at risk; events and censorings per interval (summary.survfit)")
    return out


# --------------------------------------------------------------------------------------------
# log-rank
# --------------------------------------------------------------------------------------------
def logrank_test(time, event=None, group=None, *, data: pd.DataFrame | None = None,
                 id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """K-sample log-rank test (``survival::survdiff``, rho = 0): ``logrank_test("time", "status", "sex",
    data=lung)``, ``logrank_test(t, e, g)`` or ``logrank_test(y, g)``.

    Returns one row per group (n, observed, expected, (O-E)^2/E, (O-E)^2/V) with the overall
    ``statistic`` (chi-square), ``df`` and ``p`` repeated on every row. R twin: ``ps_r_logrank``.
    """
    time, event, group = outcome_args(time, event, group)
    t, e = _check_survival(time, event, data, id_col, require_events=True, what="the log-rank test")
    g, levels = _check_group(group, data, len(t), id_col, min_levels=2)
    eng = rbridge.resolve_engine(engine, ("survival",))
    if eng == "R":
        gi = np.asarray([levels.index(x) for x in g]) + 1
        df = rbridge.call_r("ps_r_logrank", time=t, event=e, group=gi)
        df["group"] = [levels[int(i) - 1] for i in df["group"]]
        df["engine"] = "R"
        return df
    k = len(levels)
    gi = np.asarray([levels.index(x) for x in g])
    ut = np.unique(t[e == 1])
    # at each event time: at-risk and deaths by group
    order = np.argsort(t)
    ts, es, gs = t[order], e[order], gi[order]
    at_risk = np.zeros((ut.size, k))
    deaths = np.zeros((ut.size, k))
    for j in range(k):
        tj = ts[gs == j]
        at_risk[:, j] = tj.size - np.searchsorted(tj, ut, side="left")
        dj = ts[(gs == j) & (es == 1)]
        deaths[:, j] = np.searchsorted(dj, ut, side="right") - np.searchsorted(dj, ut, side="left")
    n = at_risk.sum(1)
    d = deaths.sum(1)
    expected = (at_risk * (d / n)[:, None]).sum(0)
    observed = deaths.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(n > 1, d * (n - d) / (n ** 2 * (n - 1)), 0.0)
    var = np.einsum("t,ti,tj->ij", f, at_risk, -at_risk) + np.diag((f[:, None] * at_risk * n[:, None]).sum(0))
    oe = observed - expected
    vsub = var[:-1, :-1]
    chisq = float(oe[:-1] @ np.linalg.solve(vsub, oe[:-1])) if k > 1 else 0.0
    df_ = k - 1
    return pd.DataFrame({
        "group": levels, "n": [int((gi == j).sum()) for j in range(k)], "observed": observed,
        "expected": expected, "oe2_e": oe ** 2 / expected, "oe2_v": oe ** 2 / np.diag(var),
        "statistic": chisq, "df": df_, "p": stats.chi2.sf(chisq, df_),
        "method": "log-rank test (survdiff, rho=0)", "engine": "python"})


# --------------------------------------------------------------------------------------------
# Cox models
# --------------------------------------------------------------------------------------------
def _covariates(covariates, data: pd.DataFrame | None, n: int) -> tuple[pd.DataFrame, list]:
    """(frame, covariate columns) with ``n`` rows: column name(s) of ``data`` (then the frame is ``data``,
    so errors can name its patients), or a DataFrame / Series / array of their own (array columns are
    named x1, x2, ...)."""
    if covariates is None:
        raise ValueError("covariates are missing")
    if isinstance(covariates, str):
        covariates = [covariates]
    if isinstance(covariates, pd.Series):
        covariates = covariates.to_frame(covariates.name if covariates.name is not None else "x")
    elif isinstance(covariates, np.ndarray):
        a = covariates.reshape(len(covariates), -1)
        covariates = pd.DataFrame(a, columns=["x"] if a.shape[1] == 1 else [f"x{j + 1}" for j in range(a.shape[1])])
    if isinstance(covariates, pd.DataFrame):
        out, cols = covariates, list(covariates.columns)
    else:
        cols = list(covariates)
        if data is None:
            raise ValueError(message("data_needed", name="covariates"))
        for c in cols:
            if c not in data.columns:
                raise KeyError(f"covariate column {c!r} not found in data")
        out = data
    if len(out) != n:
        raise ValueError(message("length", name="covariates", n=len(out), ref="time", n_ref=n))
    return out, cols


def _design(covariates, data: pd.DataFrame | None, n: int, id_col: str | None) -> pd.DataFrame:
    """Numeric design matrix of the covariates (:func:`_covariates`); categorical columns get treatment
    (dummy) coding, first level = reference."""
    covariates, cols = _covariates(covariates, data, n)
    if len(cols) == 0:
        raise ValueError("at least one covariate is needed")
    parts = []
    for c in cols:
        col = covariates[c]
        if col.isna().any():
            raise ValueError(f"covariate column {c!r} has {int(col.isna().sum())} missing value(s) "
                             f"({_ids(covariates, col.isna().to_numpy(), id_col)}); impute or drop them first")
        if col.dtype == bool:
            col = col.astype(int)
        if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object or col.dtype.kind in "OSU":
            cat = col.astype("category")
            cats = [lv for lv in cat.cat.categories if (cat == lv).any()]
            for lv in cats[1:]:
                parts.append(pd.Series((cat == lv).astype(float).to_numpy(), name=f"{c}{lv}"))
        else:
            parts.append(pd.Series(col.astype(float).to_numpy(), name=c))
    X = pd.concat(parts, axis=1)
    const = X.columns[X.nunique() <= 1]
    if len(const):
        raise ValueError(f"covariate(s) {list(const)} are constant in these data: their hazard ratio "
                         f"cannot be estimated")
    return X


@dataclass
class _CoxFit:
    params: np.ndarray
    se: np.ndarray
    names: list
    loglik: float
    loglik_null: float
    n: int
    events: int


def _fit_cox(X: pd.DataFrame, t: np.ndarray, e: np.ndarray) -> _CoxFit:
    """Cox PH fit with Efron ties (``_survcore``: survival::coxph's Newton-Raphson with step halving)."""
    if e.sum() == 0:
        raise ValueError("no events: Cox hazard ratios are undefined")
    try:
        fit = fit_cox(X.to_numpy(float), t, e, ties="efron")
    except (RuntimeError, np.linalg.LinAlgError) as exc:
        raise RuntimeError(f"Cox model with covariates {list(X.columns)} did not converge: {exc}") from exc
    return _CoxFit(fit.coef, fit.se, list(X.columns), fit.loglik, fit.loglik_null, fit.n, fit.events)


def _hr_table(fit: _CoxFit, conf_level: float) -> pd.DataFrame:
    z = stats.norm.ppf(0.5 + conf_level / 2)
    b, se = fit.params, fit.se
    return pd.DataFrame({"term": fit.names, "estimate": np.exp(b), "lower": np.exp(b - z * se),
                         "upper": np.exp(b + z * se), "coef": b, "se": se, "z": b / se,
                         "p": 2 * stats.norm.sf(np.abs(b / se)), "n": fit.n, "events": fit.events})


def cox_hazard_ratios(time, event=None, covariates=None, *, data: pd.DataFrame | None = None,
                      conf_level: float = 0.95, id_col: str | None = "patient_id",
                      engine: str = "auto") -> pd.DataFrame:
    """Cox proportional-hazards HRs with Wald CIs and p values (``survival::coxph``, Efron ties).

    ``cox_hazard_ratios("time", "status", ["age", "sex"], data=lung)``, or arrays with the covariates
    as a DataFrame (``cox_hazard_ratios(t, e, X)`` or ``(y, X)``). Categorical covariates are
    dummy-coded against their first level (R's treatment contrasts). The table's ``attrs`` hold the
    log partial likelihoods and the likelihood-ratio test. R twin: ``ps_r_cox``.
    """
    time, event, covariates = outcome_args(time, event, covariates)
    t, e = _check_survival(time, event, data, id_col, require_events=True, what="a Cox model")
    X = _design(covariates, data, len(t), id_col)
    eng = rbridge.resolve_engine(engine, ("survival",))
    if eng == "R":
        out = rbridge.call_r("ps_r_cox", x=X, time=t, event=e, conf_level=float(conf_level))
        out["term"] = list(X.columns)
        out["method"] = "Cox PH (coxph, Efron ties), Wald CI"
        out["engine"] = "R"
        return out
    fit = _fit_cox(X, t, e)
    out = _hr_table(fit, conf_level)
    out["method"] = "Cox PH (Efron ties), Wald CI"
    out["engine"] = "python"
    lr = 2 * (fit.loglik - fit.loglik_null)
    out.attrs.update(loglik=fit.loglik, loglik_null=fit.loglik_null, lr_statistic=lr,
                     lr_df=len(fit.names), lr_p=float(stats.chi2.sf(lr, len(fit.names))))
    return out


def cox_zph(time, event=None, covariates=None, *, data: pd.DataFrame | None = None, transform: str = "km",
            id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """Proportional-hazards test of a Cox model (``survival::cox.zph``, survival >= 3.0), with the
    arguments of :func:`cox_hazard_ratios`.

    Score test of theta = 0 in beta(t) = beta + theta * g(t) at the fitted beta, where g is the
    KM transform 1 - S(t-) (or ``"identity"``, ``"log"``, ``"rank"``) centred at its mean over
    events. One row per covariate (categorical covariates: one multi-df term) plus ``GLOBAL``.
    R twin: ``ps_r_cox_zph``.
    """
    time, event, covariates = outcome_args(time, event, covariates)
    t, e = _check_survival(time, event, data, id_col, require_events=True, what="the PH test")
    X = _design(covariates, data, len(t), id_col)
    covariates = _covariates(covariates, data, len(t))[1]
    if transform not in ("km", "identity", "log", "rank"):
        raise ValueError(f"transform must be 'km', 'identity', 'log' or 'rank', got {transform!r}")
    assign = {c: [i for i, n in enumerate(X.columns) if n == c or (n.startswith(c) and c not in X.columns)]
              for c in covariates}
    eng = rbridge.resolve_engine(engine, ("survival",))
    if eng == "R":
        terms = np.asarray([c for c in covariates for _ in assign[c]])
        out = rbridge.call_r("ps_r_cox_zph", x=X, time=t, event=e, terms=terms, transform=transform)
        out["method"] = f"cox.zph score test, {transform} transform"
        out["engine"] = "R"
        return out
    fit = _fit_cox(X, t, e)
    Xv = X.to_numpy(float)
    if transform == "km":
        km = kaplan_meier_curve(t, e)
        ut, s = km.time, km.surv
        idx = np.searchsorted(ut, t, side="left")  # number of distinct times < t -> S(t-)
        ttimes = 1 - np.concatenate([[1.0], s])[idx]
    elif transform == "identity":
        ttimes = t
    elif transform == "log":
        ttimes = np.log(t)
    else:
        ttimes = stats.rankdata(t)
    g = ttimes - ttimes[e == 1].mean()
    model = CoxModel(Xv, t, e, ties="efron")
    _, U, I = model.evaluate(fit.params)
    etimes = model.etimes
    gt = g[np.argsort(t, kind="stable")][np.searchsorted(np.sort(t), etimes)]  # g at each event time
    p = Xv.shape[1]
    u2 = (gt[:, None] * U).sum(0)
    imat = np.zeros((2 * p, 2 * p))
    imat[:p, :p] = I.sum(0)
    imat[:p, p:] = imat[p:, :p] = (gt[:, None, None] * I).sum(0)
    imat[p:, p:] = (gt[:, None, None] ** 2 * I).sum(0)
    rows = []
    for c in covariates:
        jj = assign[c]
        kk = list(range(p)) + [p + j for j in jj]
        u = np.concatenate([np.zeros(p), u2[jj]])
        chisq = float(u @ np.linalg.solve(imat[np.ix_(kk, kk)], u))
        rows.append({"term": c, "statistic": chisq, "df": len(jj), "p": stats.chi2.sf(chisq, len(jj))})
    u = np.concatenate([np.zeros(p), u2])
    chisq = float(u @ np.linalg.solve(imat, u))
    rows.append({"term": "GLOBAL", "statistic": chisq, "df": p, "p": stats.chi2.sf(chisq, p)})
    out = pd.DataFrame(rows)
    out["method"] = f"cox.zph score test, {transform} transform"
    out["engine"] = "python"
    return out


# --------------------------------------------------------------------------------------------
# risk stratification
# --------------------------------------------------------------------------------------------
class MedianRiskStratifier(TransformerMixin, BaseEstimator):
    """Split risk scores into low/high groups at a cut-off frozen from the training risks.

    ``fit(train_risk)`` stores ``cutoff_`` = the ``quantile`` (default median) of the training
    risks; ``transform(risk)`` returns 1 (high risk, risk > cutoff) or 0 (low risk) for any new
    patients without looking at their distribution, so test and external cohorts are never
    re-split on their own median.
    """

    def __init__(self, quantile: float = 0.5):
        self.quantile = quantile

    def _risk(self, risk) -> np.ndarray:
        r = np.asarray(risk, dtype=float)
        if r.ndim == 2 and r.shape[1] == 1:
            r = r[:, 0]
        if r.ndim != 1:
            raise ValueError(f"risk must be one score per patient (1-D), got shape {r.shape}")
        if not np.isfinite(r).all():
            raise ValueError(f"risk has {int((~np.isfinite(r)).sum())} missing/infinite score(s) "
                             f"at positions {np.flatnonzero(~np.isfinite(r))[:5].tolist()}")
        return r

    def fit(self, X, y=None):
        if not 0 < self.quantile < 1:
            raise ValueError(f"quantile must be in (0, 1), got {self.quantile}")
        r = self._risk(X)
        if r.size < 2:
            raise ValueError("at least two training risk scores are needed to set a cut-off")
        self.cutoff_ = float(np.quantile(r, self.quantile))
        self.n_features_in_ = 1
        return self

    def transform(self, X) -> np.ndarray:
        check_is_fitted(self, "cutoff_")
        return (self._risk(X) > self.cutoff_).astype(int)

    def predict(self, X) -> np.ndarray:
        return self.transform(X)

    def labels(self, X) -> pd.Categorical:
        """Group labels 'low'/'high' (ordered categorical, 'low' = reference) for plots and tables."""
        return pd.Categorical.from_codes(self.transform(X), categories=["low", "high"])


@dataclass
class RiskStratification:
    """Risk groups on one cohort from a cut-off frozen on training risks, with KM, log-rank and HR.

    ``repr`` prints the cut-off, the groups' medians, the log-rank p and the HR; :meth:`summary` gives
    one row per group (n, events, median survival with CI) with the HR and log-rank p beside it;
    :meth:`to_frame` the long tidy table (``statistic, group, time, estimate, lower, upper, p, method,
    engine``) of every number.
    """

    cutoff: float
    groups: pd.Categorical
    km: KaplanMeierResult
    logrank: pd.DataFrame
    hazard_ratio: pd.DataFrame

    def __repr__(self) -> str:
        hr = self.hazard_ratio.iloc[0]
        p = float(self.logrank["p"].iloc[0])
        med = self.km.medians[["group", "n", "events", "median", "lower", "upper"]]
        body = med.to_string(index=False, float_format=lambda v: f"{v:.1f}", na_rep="NA")
        return (f"Risk stratification (cut-off {self.cutoff:.4g} frozen on training risks, engine "
                f"{self.km.engine})\n{body}\nHR high vs low {hr['estimate']:.2f} ({hr['lower']:.2f}-"
                f"{hr['upper']:.2f}); log-rank p {'< 0.0001' if p < 1e-4 else f'= {p:.4f}'}")

    def summary(self) -> pd.DataFrame:
        """One row per risk group: group, n, events, median, lower, upper (median survival and CI), then
        the HR of high vs low (hr, hr_lower, hr_upper; NaN on the reference row) and logrank_p."""
        hr = self.hazard_ratio.iloc[0]
        out = self.km.medians[["group", "n", "events", "median", "lower", "upper"]].copy()
        high = out["group"] == "high"
        for col, v in (("hr", hr["estimate"]), ("hr_lower", hr["lower"]), ("hr_upper", hr["upper"])):
            out[col] = np.where(high, v, np.nan)
        out["logrank_p"] = float(self.logrank["p"].iloc[0])
        return out

    def to_frame(self) -> pd.DataFrame:
        """Every number, long: median survival and S(t) per group (``km.summary()``), the log-rank
        chi-square and the HR of high vs low risk."""
        km = self.km.summary()
        km["p"] = np.nan
        lr = self.logrank.iloc[[0]]
        hr = self.hazard_ratio.iloc[[0]]
        rows = [km[["statistic", "group", "time", "estimate", "lower", "upper", "p", "method", "engine"]],
                pd.DataFrame({"statistic": "log-rank chi-square", "group": "all", "time": np.nan,
                              "estimate": lr["statistic"].to_numpy(), "lower": np.nan, "upper": np.nan,
                              "p": lr["p"].to_numpy(), "method": lr["method"].to_numpy(),
                              "engine": lr["engine"].to_numpy()}),
                pd.DataFrame({"statistic": "hazard ratio", "group": "high vs low", "time": np.nan,
                              "estimate": hr["estimate"].to_numpy(), "lower": hr["lower"].to_numpy(),
                              "upper": hr["upper"].to_numpy(), "p": hr["p"].to_numpy(),
                              "method": hr["method"].to_numpy(), "engine": hr["engine"].to_numpy()})]
        return pd.concat(rows, ignore_index=True)


def risk_stratification(time, event=None, risk=None, *, train_risk, data: pd.DataFrame | None = None,
                        times: Iterable[float] | None = None, quantile: float = 0.5,
                        id_col: str | None = "patient_id", engine: str = "auto") -> RiskStratification:
    """Median-risk stratification of a cohort with the cut-off frozen from ``train_risk``.

    ``risk`` holds the model's risk scores for the cohort's patients (an array, or a column name of
    ``data``). Returns the groups ('low'/'high'), Kaplan-Meier by group (with ``times`` for the
    at-risk table), the log-rank test and the Cox HR of high vs low risk with its 95% CI.
    """
    time, event, risk = outcome_args(time, event, risk)
    t, e = _check_survival(time, event, data, id_col)
    if risk is None:
        raise ValueError("risk is missing")
    risk = as_float_array(column(risk, data, "risk"), "risk")
    same_length(len(t), ref="time", risk=risk)
    strat = MedianRiskStratifier(quantile=quantile).fit(train_risk)
    groups = strat.labels(risk)
    present = pd.unique(np.asarray(groups))
    if len(present) < 2:
        raise ValueError(f"every patient falls in the {present[0]!r} risk group with the frozen cut-off "
                         f"{strat.cutoff_:.4g}: no comparison is possible")
    g = pd.Series(groups, name="risk_group")
    km = kaplan_meier(t, e, g, times=times, engine=engine)
    lr = logrank_test(t, e, g, engine=engine)
    hr = cox_hazard_ratios(t, e, g.to_frame(), engine=engine)
    return RiskStratification(strat.cutoff_, groups, km, lr, hr)


def subgroup_hazard_ratios(time, event=None, risk_group=None, subgroups=None, *,
                           data: pd.DataFrame | None = None, conf_level: float = 0.95,
                           id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """HR of ``risk_group`` (binary, 1 vs 0) overall and within each level of each subgroup variable.

    ``subgroup_hazard_ratios("time", "status", "risk", ["sex", "age_group"], data=d)``; without
    ``data``, ``risk_group`` is an array and ``subgroups`` a DataFrame (or mapping) of the subgroup
    variables.

    The interaction p value is the likelihood-ratio test of Cox(risk_group * subgroup) against
    Cox(risk_group + subgroup) on all patients (df = levels - 1). Returns a forest-plot table:
    subgroup, level, n, events, estimate, lower, upper, p, p_interaction. Levels with no events or
    only one risk group get NaN HRs and a ``note``; the interaction p is then NaN too (not estimable).
    Python only (the same Efron Cox as :func:`cox_hazard_ratios`; ``engine="R"`` raises).
    """
    rbridge.python_only(engine, "subgroup_hazard_ratios")
    time, event, risk_group, subgroups = outcome_args(time, event, risk_group, subgroups)
    t, e = _check_survival(time, event, data, id_col)
    rg, rlev = _check_group(risk_group, data, len(t), id_col, min_levels=2, name="risk_group")
    if len(rlev) != 2:
        label = f"risk_group column {risk_group!r}" if isinstance(risk_group, str) else "risk_group"
        raise ValueError(f"{label} must have exactly two levels, got {rlev}")
    risk_group = risk_group if isinstance(risk_group, str) else "risk_group"
    if isinstance(subgroups, Mapping):
        subgroups = pd.DataFrame(subgroups)
    if isinstance(subgroups, pd.DataFrame):
        data, subgroups = subgroups, list(subgroups.columns)
    elif subgroups is None or isinstance(subgroups, str):
        subgroups = [] if subgroups is None else [subgroups]
    x = (rg == rlev[1]).astype(float)
    z = stats.norm.ppf(0.5 + conf_level / 2)

    def hr(mask):
        row = {"n": int(mask.sum()), "events": int(e[mask].sum()), "estimate": np.nan, "lower": np.nan,
               "upper": np.nan, "p": np.nan, "note": ""}
        if e[mask].sum() == 0:
            row["note"] = "no events"
        elif np.unique(x[mask]).size < 2:
            row["note"] = "one risk group only"
        else:
            try:
                f = _fit_cox(pd.DataFrame({risk_group: x[mask]}), t[mask], e[mask])
            except RuntimeError as exc:
                row["note"] = f"not estimable ({exc})"
                return row
            b, se = f.params[0], f.se[0]
            row.update(estimate=np.exp(b), lower=np.exp(b - z * se), upper=np.exp(b + z * se),
                       p=2 * stats.norm.sf(abs(b / se)))
        return row

    rows = [{"subgroup": "Overall", "level": "All patients", **hr(np.ones(len(t), bool)),
             "p_interaction": np.nan}]
    for s in subgroups:
        sv, slev = _check_group(s, data, len(t), id_col, min_levels=1)
        p_int = np.nan
        estimable = all(np.unique(x[sv == lv]).size == 2 for lv in slev)  # both risk groups in every level
        if len(slev) > 1 and estimable:
            S = pd.get_dummies(pd.Categorical(sv, categories=slev), drop_first=True, dtype=float)
            S.columns = [f"{s}{c}" for c in S.columns]
            base = pd.concat([pd.DataFrame({risk_group: x}), S], axis=1)
            inter = base.copy()
            for c in S.columns:
                inter[f"{risk_group}:{c}"] = x * S[c].to_numpy()
            try:
                ll0 = _fit_cox(base, t, e).loglik
                ll1 = _fit_cox(inter, t, e).loglik
                p_int = float(stats.chi2.sf(max(2 * (ll1 - ll0), 0.0), len(slev) - 1))
            except RuntimeError:
                p_int = np.nan
        for lv in slev:
            rows.append({"subgroup": s, "level": lv, **hr(sv == lv), "p_interaction": p_int})
    out = pd.DataFrame(rows)
    out["method"] = (f"Cox PH HR ({rlev[1]} vs {rlev[0]}), Wald CI; interaction by likelihood-ratio test")
    out["engine"] = "python"
    return out


def adjusted_hazard_ratio(time, event=None, exposure=None, covariates=None, *, data: pd.DataFrame | None = None,
                          conf_level: float = 0.95, id_col: str | None = "patient_id",
                          engine: str = "auto") -> pd.DataFrame:
    """HR of ``exposure`` before (univariable) and after adjustment for ``covariates`` in one table.

    ``adjusted_hazard_ratio("time", "status", "risk", ["age", "sex"], data=d)``; without ``data`` the
    exposure is a named Series (or array, named "exposure") and the covariates a DataFrame. Rows:
    model ("unadjusted"/"adjusted"), term, estimate, lower, upper, p. The adjusted rows list every term
    of the multivariable model so the covariates' own HRs are visible too.
    """
    time, event, exposure, covariates = outcome_args(time, event, exposure, covariates)
    t, e = _check_survival(time, event, data, id_col, require_events=True, what="a Cox model")
    if exposure is None:
        raise ValueError("exposure is missing")
    if not isinstance(exposure, str):
        x = pd.Series(np.asarray(exposure), name=getattr(exposure, "name", None) or "exposure")
        frame, cov = _covariates(covariates, data, len(t))
        data, exposure = pd.concat([x, frame[cov].reset_index(drop=True)], axis=1), x.name
        covariates = cov
    cov = [c for c in _covariates(covariates, data, len(t))[1] if c != exposure]
    if not cov:
        raise ValueError("give at least one adjustment covariate different from the exposure")
    kw = dict(data=data, conf_level=conf_level, id_col=id_col, engine=engine)
    un = cox_hazard_ratios(t, e, [exposure], **kw)
    ad = cox_hazard_ratios(t, e, [exposure, *cov], **kw)
    un.insert(0, "model", "unadjusted")
    ad.insert(0, "model", "adjusted for " + ", ".join(cov))
    return pd.concat([un, ad], ignore_index=True)


def median_followup(time, event=None, *, data: pd.DataFrame | None = None, conf_level: float = 0.95,
                    id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """Median follow-up by the reverse Kaplan-Meier method (censoring as the event; Schemper & Smith).

    Matches ``survfit(Surv(time, 1 - event) ~ 1)``'s median and log-CI (R twin: ``ps_r_km`` on the
    reversed indicator).
    """
    t, e = as_survival(time, event, data=data, id_col=id_col, require_events=False, require_censored=True,
                       what="reverse-KM follow-up")
    km = kaplan_meier(t, 1 - e, conf_level=conf_level, id_col=None, engine=engine)
    s = km.medians.iloc[0]
    return pd.DataFrame([{"statistic": "median follow-up", "estimate": s["median"], "lower": s["lower"],
                          "upper": s["upper"], "n": len(t), "censored": int((e == 0).sum()),
                          "method": "reverse Kaplan-Meier, log CI", "engine": km.engine}])


def restricted_mean_survival(time, event=None, group=None, *, tau: float, data: pd.DataFrame | None = None,
                             conf_level: float = 0.95, id_col: str | None = "patient_id",
                             engine: str = "auto") -> pd.DataFrame:
    """Restricted mean survival time up to ``tau`` with SE (``print.survfit(rmean=tau)``) and Wald CI.

    ``restricted_mean_survival("time", "status", "sex", tau=500, data=lung)``; ``tau`` keeps the name of
    the R twin and of survRM2 (one restriction time, not a grid of horizons).

    ``tau`` beyond a group's last follow-up time raises, unless the curve has reached 0 there (the
    area would otherwise be extrapolated; ``print.survfit`` extends the last value). R twin: ``ps_r_rmst``.
    """
    time, event, group = outcome_args(time, event, group)
    t, e = _check_survival(time, event, data, id_col)
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(message("times_invalid", name="tau", values=[tau]) + " (and > 0)")
    g, levels = (np.zeros(len(t), dtype=int), [0]) if group is None else _check_group(group, data, len(t), id_col)
    for lv in levels:
        if kaplan_meier_curve(t[g == lv], e[g == lv]).surv[-1] > 0:
            check_horizon([tau], t[g == lv], name="tau", what="the restricted mean", inclusive=True)
    if rbridge.resolve_engine(engine, ("survival",)) == "R":
        codes = np.asarray([levels.index(x) for x in g]) + 1
        out = rbridge.call_r("ps_r_rmst", time=t, event=e, tau=float(tau),
                             group=codes if group is not None else None, conf_level=float(conf_level))
        out["group"] = levels if group is not None else [0]
        out["method"] = "restricted mean survival (area under KM), Wald CI"
        out["engine"] = "R"
        return out
    z = stats.norm.ppf(0.5 + conf_level / 2)
    rows = []
    for lv in levels:
        m = g == lv
        km = kaplan_meier_curve(t[m], e[m])
        est, se = _rmst(km.time, km.surv, km.n_risk, km.n_event, tau)
        rows.append({"group": lv, "tau": tau, "estimate": est, "se": se, "lower": est - z * se,
                     "upper": est + z * se})
    out = pd.DataFrame(rows)
    out["method"] = "restricted mean survival (area under KM), Wald CI"
    out["engine"] = "python"
    return out
