"""Survival analysis for PRIME-S: Kaplan-Meier, log-rank, Cox hazard ratios, risk stratification.

Every function takes ``data`` (a pandas DataFrame) plus column names (``time``, ``event``, ...) so that
errors can name the offending column and patient, as R's ``survfit(formula, data)``; ``data=None`` with
arrays works too (the outcome is checked by :func:`prime_stats.evaluation.inputs.as_survival`, the one
validator). Kaplan-Meier curves and Cox fits come from :mod:`prime_stats.evaluation._survcore`. Results
are tidy DataFrames (``estimate``, ``lower``, ``upper``, ``method``, ``engine``) matching R's survival
package:

* :func:`kaplan_meier` - ``survival::survfit`` (Greenwood variance, ``conf.type="log"`` by default),
  numbers at risk at chosen times, median survival with the ``print.survfit`` CI rule;
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
an R twin (subgroup HRs, numbers at risk) run in Python and refuse ``engine="R"``. The ``engine``
column says which ran.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from .. import rbridge
from ._survcore import CoxModel, fit_cox, kaplan_meier_curve
from .inputs import as_float_array, as_survival, check_horizon, check_times, message, positions, row_ids

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


def _check_survival(data: pd.DataFrame | None, time, event, id_col: str | None = "patient_id",
                    require_events: bool = False, what: str = "this statistic"):
    """Validated float time and 0/1 int event (``inputs.as_survival``: column names of ``data``,
    arrays, or a structured outcome in ``time``), with errors naming the column and the patients."""
    if data is not None and not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if data is not None and len(data) == 0:
        raise ValueError("data has no rows")
    y = as_survival(time, event, data=data, id_col=id_col, require_events=require_events, what=what)
    return y.time, y.event


def _check_group(data: pd.DataFrame | None, group, id_col: str | None = "patient_id", min_levels: int = 1):
    if isinstance(group, str):
        if data is None or group not in data.columns:
            raise KeyError(message("column_missing", col=group,
                                   columns=[] if data is None else list(data.columns)[:20]))
        g = data[group]
    else:
        g = pd.Series(group)
        group = "group"
    if g.isna().any():
        raise ValueError(f"column {group!r} has {int(g.isna().sum())} missing value(s) "
                         f"({_ids(data, g.isna().to_numpy(), id_col)})")
    levels = list(g.cat.categories) if isinstance(g.dtype, pd.CategoricalDtype) else sorted(g.unique())
    levels = [lv for lv in levels if (g == lv).any()]
    if len(levels) < min_levels:
        raise ValueError(f"column {group!r} has {len(levels)} level(s) ({levels}); "
                         f"at least {min_levels} are needed")
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


def kaplan_meier(data: pd.DataFrame | None, time=None, event=None, group=None,
                 times: Iterable[float] | None = None, conf_type: str = "log",
                 conf_level: float = 0.95, id_col: str | None = "patient_id",
                 engine: str = "auto") -> KaplanMeierResult:
    """Kaplan-Meier survival by group with Greenwood CIs (``survival::survfit`` defaults).

    ``time``/``event``/``group`` are column names of ``data`` or arrays (``data=None``; a structured
    outcome may replace ``time, event``). ``at_times`` reproduces ``summary(survfit, times=,
    extend=TRUE)``: survival, CI, the number at risk (follow-up >= t) and the number of events in the
    interval since the previous requested time; beyond a group's last follow-up S(t) keeps its last
    value and ``n_risk`` is 0. With no events the curve stays at 1 and the median is NaN. ``conf_type``
    is ``"log"`` (survfit's default), ``"log-log"`` or ``"plain"``. R twin: ``ps_r_km``.
    """
    if data is not None and not isinstance(data, pd.DataFrame) and time is None:
        data, time = None, data                                      # kaplan_meier(y_structured)
    t, e = _check_survival(data, time, event, id_col)
    if group is None:
        g, levels = np.zeros(len(t), dtype=int), [0]
    else:
        g, levels = _check_group(data, group, id_col)
        if len(g) != len(t):
            raise ValueError(message("length", name="group", n=len(g), ref="time", n_ref=len(t)))
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
        n_event_at = km.events_between(times)
        for tt, d in zip(times, n_event_at):
            k = np.searchsorted(ut, tt, side="right") - 1
            at_rows.append({"group": lv, "time": tt, "n_risk": int((t[m] >= tt).sum()), "n_event": int(d),
                            "surv": 1.0 if k < 0 else s[k],
                            "std_err": 0.0 if k < 0 else se_s[k],
                            "lower": 1.0 if k < 0 else lo[k], "upper": 1.0 if k < 0 else up[k]})
        summ.append({"group": lv, "n": int(m.sum()), "events": int(e[m].sum()),
                     "median": _first_below_half(ut, s), "lower": _first_below_half(ut, lo),
                     "upper": _first_below_half(ut, up)})
    curve = pd.concat(curves, ignore_index=True)
    for c in ("n_risk", "n_event", "n_censor"):
        curve[c] = curve[c].astype(int)
    at = pd.DataFrame(at_rows, columns=["group", "time", "n_risk", "n_event", "surv", "std_err",
                                        "lower", "upper"])
    medians = pd.DataFrame(summ)
    method = f"Kaplan-Meier, Greenwood variance, {conf_type} CI ({conf_level:.0%})"
    for df in (curve, at, medians):
        df["method"] = method
        df["engine"] = "python"
    return KaplanMeierResult(curve, at, medians, conf_type, conf_level, "python")


def numbers_at_risk(data: pd.DataFrame, time: str, times: Iterable[float], group: str | None = None,
                    id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """Numbers at risk (follow-up >= t) per group at each time, wide: one row per group (the table
    under a KM plot; Python only)."""
    rbridge.python_only(engine, "numbers_at_risk")
    ids = row_ids(data, id_col)
    t = as_float_array(data[time] if isinstance(time, str) and time in data else time,
                       f"column {time!r}" if isinstance(time, str) else "time", ids=ids)
    if (t < 0).any():
        raise ValueError(message("negative_time", name=f"column {time!r}", k=int((t < 0).sum()),
                                 where=positions(t < 0, ids)))
    g, levels = (np.zeros(len(t), dtype=int), [0]) if group is None else _check_group(data, group, id_col)
    times = check_times(times, increasing=False).tolist()
    rows = {lv: [int((t[g == lv] >= tt).sum()) for tt in times] for lv in levels}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=times)
    out.index.name = group or "group"
    return out


# --------------------------------------------------------------------------------------------
# log-rank
# --------------------------------------------------------------------------------------------
def logrank_test(data: pd.DataFrame | None, time, event, group,
                 id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """K-sample log-rank test (``survival::survdiff``, rho = 0).

    Returns one row per group (n, observed, expected, (O-E)^2/E, (O-E)^2/V) with the overall
    ``statistic`` (chi-square), ``df`` and ``p`` repeated on every row. R twin: ``ps_r_logrank``.
    """
    t, e = _check_survival(data, time, event, id_col, require_events=True, what="the log-rank test")
    g, levels = _check_group(data, group, id_col, min_levels=2)
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
def _design(data: pd.DataFrame, covariates: Sequence[str], id_col: str | None) -> pd.DataFrame:
    """Numeric design matrix; categorical columns get treatment (dummy) coding, first level = reference."""
    if len(covariates) == 0:
        raise ValueError("at least one covariate is needed")
    parts = []
    for c in covariates:
        if c not in data.columns:
            raise KeyError(f"covariate column {c!r} not found in data")
        col = data[c]
        if col.isna().any():
            raise ValueError(f"covariate column {c!r} has {int(col.isna().sum())} missing value(s) "
                             f"({_ids(data, col.isna().to_numpy(), id_col)}); impute or drop them first")
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


def cox_hazard_ratios(data: pd.DataFrame, time, event, covariates: Sequence[str],
                      conf_level: float = 0.95, id_col: str | None = "patient_id",
                      engine: str = "auto") -> pd.DataFrame:
    """Cox proportional-hazards HRs with Wald CIs and p values (``survival::coxph``, Efron ties).

    Categorical covariates are dummy-coded against their first level (R's treatment contrasts).
    The table's ``attrs`` hold the log partial likelihoods and the likelihood-ratio test.
    R twin: ``ps_r_cox``.
    """
    t, e = _check_survival(data, time, event, id_col, require_events=True, what="a Cox model")
    X = _design(data, list(covariates), id_col)
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


def cox_zph(data: pd.DataFrame, time, event, covariates: Sequence[str],
            transform: str = "km", id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """Proportional-hazards test of a Cox model (``survival::cox.zph``, survival >= 3.0).

    Score test of theta = 0 in beta(t) = beta + theta * g(t) at the fitted beta, where g is the
    KM transform 1 - S(t-) (or ``"identity"``, ``"log"``, ``"rank"``) centred at its mean over
    events. One row per covariate (categorical covariates: one multi-df term) plus ``GLOBAL``.
    R twin: ``ps_r_cox_zph``.
    """
    t, e = _check_survival(data, time, event, id_col, require_events=True, what="the PH test")
    covariates = list(covariates)
    X = _design(data, covariates, id_col)
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
    """Risk groups on one cohort from a cut-off frozen on training risks, with KM, log-rank and HR."""

    cutoff: float
    groups: pd.Categorical
    km: KaplanMeierResult
    logrank: pd.DataFrame
    hazard_ratio: pd.DataFrame


def risk_stratification(train_risk, data: pd.DataFrame, risk, time: str, event: str,
                        times: Iterable[float] | None = None, quantile: float = 0.5,
                        id_col: str | None = "patient_id", engine: str = "auto") -> RiskStratification:
    """Median-risk stratification of a cohort with the cut-off frozen from ``train_risk``.

    ``risk`` holds the model's risk scores for the patients in ``data`` (same order). Returns the
    groups ('low'/'high'), Kaplan-Meier by group (with ``times`` for the at-risk table), the
    log-rank test and the Cox HR of high vs low risk with its 95% CI.
    """
    strat = MedianRiskStratifier(quantile=quantile).fit(train_risk)
    risk = np.asarray(risk, dtype=float)
    if risk.shape[0] != len(data):
        raise ValueError(f"risk has {risk.shape[0]} scores for {len(data)} patients in data")
    groups = strat.labels(risk)
    d = data.assign(risk_group=groups)
    present = pd.unique(np.asarray(groups))
    if len(present) < 2:
        raise ValueError(f"every patient falls in the {present[0]!r} risk group with the frozen cut-off "
                         f"{strat.cutoff_:.4g}: no comparison is possible")
    km = kaplan_meier(d, time, event, "risk_group", times=times, id_col=id_col, engine=engine)
    lr = logrank_test(d, time, event, "risk_group", id_col=id_col, engine=engine)
    hr = cox_hazard_ratios(d, time, event, ["risk_group"], id_col=id_col, engine=engine)
    return RiskStratification(strat.cutoff_, groups, km, lr, hr)


def subgroup_hazard_ratios(data: pd.DataFrame, time, event, risk_group: str,
                           subgroups: Sequence[str], conf_level: float = 0.95,
                           id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """HR of ``risk_group`` (binary, 1 vs 0) overall and within each level of each subgroup variable.

    The interaction p value is the likelihood-ratio test of Cox(risk_group * subgroup) against
    Cox(risk_group + subgroup) on all patients (df = levels - 1). Returns a forest-plot table:
    subgroup, level, n, events, estimate, lower, upper, p, p_interaction. Levels with no events or
    only one risk group get NaN HRs and a ``note``; the interaction p is then NaN too (not estimable).
    Python only (the same Efron Cox as :func:`cox_hazard_ratios`; ``engine="R"`` raises).
    """
    rbridge.python_only(engine, "subgroup_hazard_ratios")
    t, e = _check_survival(data, time, event, id_col)
    rg, rlev = _check_group(data, risk_group, id_col, min_levels=2)
    if len(rlev) != 2:
        raise ValueError(f"risk_group column {risk_group!r} must have exactly two levels, got {rlev}")
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
        sv, slev = _check_group(data, s, id_col, min_levels=1)
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


def adjusted_hazard_ratio(data: pd.DataFrame, time, event, exposure: str,
                          covariates: Sequence[str], conf_level: float = 0.95,
                          id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """HR of ``exposure`` before (univariable) and after adjustment for ``covariates`` in one table.

    Rows: model ("unadjusted"/"adjusted"), term, estimate, lower, upper, p. The adjusted rows list
    every term of the multivariable model so the covariates' own HRs are visible too.
    """
    cov = [c for c in covariates if c != exposure]
    if not cov:
        raise ValueError("give at least one adjustment covariate different from the exposure")
    un = cox_hazard_ratios(data, time, event, [exposure], conf_level, id_col, engine)
    ad = cox_hazard_ratios(data, time, event, [exposure, *cov], conf_level, id_col, engine)
    un.insert(0, "model", "unadjusted")
    ad.insert(0, "model", "adjusted for " + ", ".join(cov))
    return pd.concat([un, ad], ignore_index=True)


def median_followup(data: pd.DataFrame | None, time, event, conf_level: float = 0.95,
                    id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """Median follow-up by the reverse Kaplan-Meier method (censoring as the event; Schemper & Smith).

    Matches ``survfit(Surv(time, 1 - event) ~ 1)``'s median and log-CI (R twin: ``ps_r_km`` on the
    reversed indicator).
    """
    t, e = as_survival(time, event, data=data, id_col=id_col, require_events=False, require_censored=True,
                       what="reverse-KM follow-up")
    km = kaplan_meier(None, t, 1 - e, conf_level=conf_level, id_col=None, engine=engine)
    s = km.medians.iloc[0]
    return pd.DataFrame([{"statistic": "median follow-up", "estimate": s["median"], "lower": s["lower"],
                          "upper": s["upper"], "n": len(t), "censored": int((e == 0).sum()),
                          "method": "reverse Kaplan-Meier, log CI", "engine": km.engine}])


def restricted_mean_survival(data: pd.DataFrame | None, time, event, tau: float,
                             group=None, conf_level: float = 0.95,
                             id_col: str | None = "patient_id", engine: str = "auto") -> pd.DataFrame:
    """Restricted mean survival time up to ``tau`` with SE (``print.survfit(rmean=tau)``) and Wald CI.

    ``tau`` beyond a group's last follow-up time raises, unless the curve has reached 0 there (the
    area would otherwise be extrapolated; ``print.survfit`` extends the last value). R twin: ``ps_r_rmst``.
    """
    t, e = _check_survival(data, time, event, id_col)
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(message("times_invalid", name="tau", values=[tau]) + " (and > 0)")
    g, levels = (np.zeros(len(t), dtype=int), [0]) if group is None else _check_group(data, group, id_col)
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
