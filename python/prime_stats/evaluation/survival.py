"""Survival analysis for PRIME-S: Kaplan-Meier, log-rank, Cox hazard ratios, risk stratification.

Every function takes a pandas DataFrame plus column names (``time``, ``event``, ...) so that errors
can name the offending column and patient. Results are tidy DataFrames (``estimate``, ``lower``,
``upper``, ``method``, ``engine``) matching R's survival package:

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
``engine="auto"`` uses R when available and Python otherwise. The ``engine`` column says which ran.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

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
def _ids(data: pd.DataFrame, mask: np.ndarray, id_col: str | None) -> str:
    idx = np.flatnonzero(mask)[:5]
    if id_col is not None and id_col in data.columns:
        vals = data[id_col].to_numpy()[idx]
        return f"patient_id {', '.join(map(str, vals))}"
    return f"row {', '.join(map(str, data.index.to_numpy()[idx]))}"


def _check_survival(data: pd.DataFrame, time: str, event: str, id_col: str | None = "patient_id"):
    """Validated float time (> 0 allowed 0) and 0/1 event arrays, with errors naming the column."""
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    for col in (time, event):
        if col not in data.columns:
            raise KeyError(f"column {col!r} not found in data (columns: {list(data.columns)[:20]})")
    if len(data) == 0:
        raise ValueError("data has no rows")
    t = pd.to_numeric(data[time], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(t)
    if bad.any():
        raise ValueError(f"column {time!r} has {bad.sum()} missing/non-numeric/infinite time(s) "
                         f"({_ids(data, bad, id_col)})")
    if (t < 0).any():
        raise ValueError(f"column {time!r} has negative times ({_ids(data, t < 0, id_col)})")
    e_raw = pd.to_numeric(data[event].astype("float64") if data[event].dtype == bool else data[event],
                          errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(e_raw, (0.0, 1.0))
    if bad.any():
        raise ValueError(f"column {event!r} must be coded 0 (censored) / 1 (event); "
                         f"{bad.sum()} invalid value(s) ({_ids(data, bad, id_col)})")
    return t, e_raw.astype(int)


def _check_group(data: pd.DataFrame, group: str, id_col: str | None = "patient_id", min_levels: int = 1):
    if group not in data.columns:
        raise KeyError(f"column {group!r} not found in data")
    g = data[group]
    if g.isna().any():
        raise ValueError(f"column {group!r} has {int(g.isna().sum())} missing value(s) "
                         f"({_ids(data, g.isna().to_numpy(), id_col)})")
    levels = list(g.cat.categories) if isinstance(g.dtype, pd.CategoricalDtype) else sorted(g.unique())
    levels = [lv for lv in levels if (g == lv).any()]
    if len(levels) < min_levels:
        raise ValueError(f"column {group!r} has {len(levels)} level(s) ({levels}); "
                         f"at least {min_levels} are needed")
    return g.to_numpy(), levels


def _resolve_engine(engine: str, packages: Sequence[str] = ("survival",)) -> str:
    from prime_stats import rbridge

    return rbridge.resolve_engine(engine, packages)


# --------------------------------------------------------------------------------------------
# Kaplan-Meier
# --------------------------------------------------------------------------------------------
def _km_curve(t: np.ndarray, e: np.ndarray):
    """KM at every distinct observed time (as survfit): n.risk, n.event, n.censor, surv, Greenwood var."""
    ut, inv = np.unique(t, return_inverse=True)
    n_event = np.bincount(inv, weights=e, minlength=ut.size)
    n_total = np.bincount(inv, minlength=ut.size).astype(float)
    n_risk = np.cumsum(n_total[::-1])[::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(1.0 - n_event / n_risk)
        gw_terms = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
    var_logs = np.cumsum(gw_terms)  # Greenwood variance of log S (inf once S reaches 0)
    return ut, n_risk, n_event, n_total - n_event, surv, var_logs


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
    """Kaplan-Meier estimates: full ``curve``, estimates ``at_times`` and per-group ``summary``."""

    curve: pd.DataFrame
    at_times: pd.DataFrame
    summary: pd.DataFrame
    conf_type: str
    conf_level: float
    engine: str


def kaplan_meier(data: pd.DataFrame, time: str, event: str, group: str | None = None,
                 times: Iterable[float] | None = None, conf_type: str = "log",
                 conf_level: float = 0.95, id_col: str | None = "patient_id",
                 engine: str = "python") -> KaplanMeierResult:
    """Kaplan-Meier survival by group with Greenwood CIs (``survival::survfit`` defaults).

    ``at_times`` reproduces ``summary(survfit, times=)``: survival, CI and the number at risk at
    each requested time (subjects with follow-up >= t). ``summary`` gives n, events and the median
    with its CI (``print.survfit``). ``conf_type`` is ``"log"`` (survfit's default), ``"log-log"``
    or ``"plain"``.
    """
    t, e = _check_survival(data, time, event, id_col)
    if group is None:
        g, levels = np.zeros(len(t), dtype=int), [0]
    else:
        g, levels = _check_group(data, group, id_col)
    times = np.sort(np.asarray([] if times is None else list(times), dtype=float))
    if np.any(times < 0) or np.any(~np.isfinite(times)):
        raise ValueError("times must be finite and >= 0")
    if not 0 < conf_level < 1:
        raise ValueError("conf_level must be in (0, 1)")
    if conf_type not in ("log", "log-log", "plain"):
        raise ValueError(f"conf_type must be 'log', 'log-log' or 'plain', got {conf_type!r}")
    eng = _resolve_engine(engine)
    if eng == "R":
        from prime_stats import rbridge

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
        ut, nr, ne, nc, s, vl = _km_curve(t[m], e[m])
        lo, up = _km_ci(s, vl, conf_type, z)
        with np.errstate(invalid="ignore"):
            se_s = np.where(s > 0, s * np.sqrt(vl), np.nan)
        curves.append(pd.DataFrame({"group": lv, "time": ut, "n_risk": nr, "n_event": ne, "n_censor": nc,
                                    "surv": s, "std_err": se_s, "lower": lo, "upper": up}))
        for tt in times:
            k = np.searchsorted(ut, tt, side="right") - 1
            at_rows.append({"group": lv, "time": tt, "n_risk": int((t[m] >= tt).sum()),
                            "n_event": int(e[m][t[m] <= tt].sum()),
                            "surv": 1.0 if k < 0 else s[k],
                            "std_err": 0.0 if k < 0 else se_s[k],
                            "lower": 1.0 if k < 0 else lo[k], "upper": 1.0 if k < 0 else up[k]})
        summ.append({"group": lv, "n": int(m.sum()), "events": int(e[m].sum()),
                     "median": _first_below_half(ut, s), "lower": _first_below_half(ut, lo),
                     "upper": _first_below_half(ut, up)})
    curve = pd.concat(curves, ignore_index=True)
    at = pd.DataFrame(at_rows, columns=["group", "time", "n_risk", "n_event", "surv", "std_err",
                                        "lower", "upper"])
    summary = pd.DataFrame(summ)
    method = f"Kaplan-Meier, Greenwood variance, {conf_type} CI ({conf_level:.0%})"
    for df in (curve, at, summary):
        df["method"] = method
        df["engine"] = "python"
    return KaplanMeierResult(curve, at, summary, conf_type, conf_level, "python")


def numbers_at_risk(data: pd.DataFrame, time: str, times: Iterable[float], group: str | None = None,
                    id_col: str | None = "patient_id") -> pd.DataFrame:
    """Numbers at risk (follow-up >= t) per group at each time, wide: one row per group."""
    t = pd.to_numeric(data[time], errors="coerce").to_numpy(dtype=float)
    if np.isnan(t).any():
        raise ValueError(f"column {time!r} has missing times ({_ids(data, np.isnan(t), id_col)})")
    g, levels = (np.zeros(len(t), dtype=int), [0]) if group is None else _check_group(data, group, id_col)
    times = list(times)
    rows = {lv: [int((t[g == lv] >= tt).sum()) for tt in times] for lv in levels}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=times)
    out.index.name = group or "group"
    return out


# --------------------------------------------------------------------------------------------
# log-rank
# --------------------------------------------------------------------------------------------
def logrank_test(data: pd.DataFrame, time: str, event: str, group: str,
                 id_col: str | None = "patient_id", engine: str = "python") -> pd.DataFrame:
    """K-sample log-rank test (``survival::survdiff``, rho = 0).

    Returns one row per group (n, observed, expected, (O-E)^2/E, (O-E)^2/V) with the overall
    ``statistic`` (chi-square), ``df`` and ``p`` repeated on every row.
    """
    t, e = _check_survival(data, time, event, id_col)
    g, levels = _check_group(data, group, id_col, min_levels=2)
    if e.sum() == 0:
        raise ValueError(f"column {event!r} has no events: the log-rank test is undefined")
    eng = _resolve_engine(engine)
    if eng == "R":
        from prime_stats import rbridge

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


class _EfronCox:
    """Cox partial likelihood with Efron's tie correction (as survival::coxph) for fixed data.

    ``evaluate(beta)`` returns the log partial likelihood and the per-event-time score
    contributions U_t (m x p) and information I_t (m x p x p); :meth:`fit` maximises it by
    Newton-Raphson with step halving, coxph's algorithm.
    """

    def __init__(self, X: np.ndarray, t: np.ndarray, e: np.ndarray):
        self.X = np.asarray(X, float) - np.asarray(X, float).mean(0)
        order = np.argsort(-t, kind="stable")
        self.order, self.ts, self.es = order, t[order], e[order]
        self.etimes = np.unique(self.ts[self.es == 1])
        # last index (in descending-time order) of the risk set {time >= t} of each event time
        self.last = len(t) - np.searchsorted(self.ts[::-1], self.etimes, side="left") - 1
        dead = np.flatnonzero(self.es == 1)
        self.dead = dead[np.argsort(self.ts[dead], kind="stable")]  # deaths grouped by ascending time
        self.d = np.bincount(np.searchsorted(self.etimes, self.ts[self.dead]), minlength=self.etimes.size)
        self.starts = np.concatenate([[0], np.cumsum(self.d)[:-1]])
        self.slot_j = np.repeat(np.arange(self.etimes.size), self.d)  # one slot per death
        self.slot_f = np.concatenate([np.arange(k) / k for k in self.d])  # Efron weights k/d

    def evaluate(self, beta: np.ndarray):
        Xs = self.X[self.order]
        eta = Xs @ beta
        c = eta.max()
        r = np.exp(eta - c)
        xx = Xs[:, :, None] * Xs[:, None, :]
        S0 = np.cumsum(r)[self.last]
        S1 = np.cumsum(r[:, None] * Xs, axis=0)[self.last]
        S2 = np.cumsum(r[:, None, None] * xx, axis=0)[self.last]
        dd = self.dead
        D0 = np.add.reduceat(r[dd], self.starts)
        D1 = np.add.reduceat(r[dd, None] * Xs[dd], self.starts, axis=0)
        D2 = np.add.reduceat(r[dd, None, None] * xx[dd], self.starts, axis=0)
        DX = np.add.reduceat(Xs[dd], self.starts, axis=0)
        j, f = self.slot_j, self.slot_f
        s0 = S0[j] - f * D0[j]
        s1 = S1[j] - f[:, None] * D1[j]
        s2 = S2[j] - f[:, None, None] * D2[j]
        xbar = s1 / s0[:, None]
        m, p = self.etimes.size, Xs.shape[1]
        U = DX.copy()
        np.subtract.at(U, j, xbar)
        I = np.zeros((m, p, p))
        np.add.at(I, j, s2 / s0[:, None, None] - xbar[:, :, None] * xbar[:, None, :])
        loglik = float(eta[dd].sum() - np.sum(np.log(s0) + c))
        return loglik, U, I

    def fit(self, max_iter: int = 50, eps: float = 1e-12):
        beta = np.zeros(self.X.shape[1])
        ll0, U, I = self.evaluate(beta)
        ll, ll_null = ll0, ll0
        for _ in range(max_iter):
            step = np.linalg.solve(I.sum(0), U.sum(0))
            new = beta + step
            ll_new, U_new, I_new = self.evaluate(new)
            halvings = 0
            while not np.isfinite(ll_new) or ll_new < ll - 1e-12:
                new = (new + beta) / 2
                ll_new, U_new, I_new = self.evaluate(new)
                halvings += 1
                if halvings > 30:
                    raise RuntimeError("step halving failed")
            converged = abs(ll_new - ll) <= eps * max(abs(ll), 1.0) and np.max(np.abs(new - beta)) < 1e-8
            beta, ll, U, I = new, ll_new, U_new, I_new
            if converged:
                break
        else:
            raise RuntimeError(f"no convergence in {max_iter} Newton-Raphson iterations "
                               f"(a coefficient may be infinite: monotone likelihood)")
        sd = self.X.std(0)
        if np.any(np.abs(beta) * sd > 15):  # HR per SD > e^15: the likelihood is monotone (coxph warns)
            raise RuntimeError("a coefficient is diverging to infinity (monotone likelihood, e.g. all events "
                               "in one group of a binary covariate)")
        cov = np.linalg.inv(I.sum(0))
        if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
            raise RuntimeError("information matrix is singular (collinear covariates?)")
        return beta, np.sqrt(np.diag(cov)), ll, ll_null


def _fit_cox(X: pd.DataFrame, t: np.ndarray, e: np.ndarray) -> _CoxFit:
    """Cox PH fit with Efron ties by Newton-Raphson with step halving (survival::coxph's method)."""
    if e.sum() == 0:
        raise ValueError("no events: Cox hazard ratios are undefined")
    try:
        beta, se, ll, ll0 = _EfronCox(X.to_numpy(float), t, e).fit()
    except (RuntimeError, np.linalg.LinAlgError) as exc:
        raise RuntimeError(f"Cox model with covariates {list(X.columns)} did not converge: {exc}") from exc
    return _CoxFit(beta, se, list(X.columns), ll, ll0, len(t), int(e.sum()))


def _hr_table(fit: _CoxFit, conf_level: float) -> pd.DataFrame:
    z = stats.norm.ppf(0.5 + conf_level / 2)
    b, se = fit.params, fit.se
    return pd.DataFrame({"term": fit.names, "estimate": np.exp(b), "lower": np.exp(b - z * se),
                         "upper": np.exp(b + z * se), "coef": b, "se": se, "z": b / se,
                         "p": 2 * stats.norm.sf(np.abs(b / se)), "n": fit.n, "events": fit.events})


def cox_hazard_ratios(data: pd.DataFrame, time: str, event: str, covariates: Sequence[str],
                      conf_level: float = 0.95, id_col: str | None = "patient_id",
                      engine: str = "python") -> pd.DataFrame:
    """Cox proportional-hazards HRs with Wald CIs and p values (``survival::coxph``, Efron ties).

    Categorical covariates are dummy-coded against their first level (R's treatment contrasts).
    The table's ``attrs`` hold the log partial likelihoods and the likelihood-ratio test.
    """
    t, e = _check_survival(data, time, event, id_col)
    X = _design(data, list(covariates), id_col)
    if e.sum() == 0:
        raise ValueError(f"column {event!r} has no events: Cox hazard ratios are undefined")
    eng = _resolve_engine(engine)
    if eng == "R":
        from prime_stats import rbridge

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


def cox_zph(data: pd.DataFrame, time: str, event: str, covariates: Sequence[str],
            transform: str = "km", id_col: str | None = "patient_id", engine: str = "python") -> pd.DataFrame:
    """Proportional-hazards test of a Cox model (``survival::cox.zph``, survival >= 3.0).

    Score test of theta = 0 in beta(t) = beta + theta * g(t) at the fitted beta, where g is the
    KM transform 1 - S(t-) (or ``"identity"``, ``"log"``, ``"rank"``) centred at its mean over
    events. One row per covariate (categorical covariates: one multi-df term) plus ``GLOBAL``.
    """
    t, e = _check_survival(data, time, event, id_col)
    covariates = list(covariates)
    X = _design(data, covariates, id_col)
    if e.sum() == 0:
        raise ValueError(f"column {event!r} has no events: the PH test is undefined")
    if transform not in ("km", "identity", "log", "rank"):
        raise ValueError(f"transform must be 'km', 'identity', 'log' or 'rank', got {transform!r}")
    assign = {c: [i for i, n in enumerate(X.columns) if n == c or (n.startswith(c) and c not in X.columns)]
              for c in covariates}
    eng = _resolve_engine(engine)
    if eng == "R":
        from prime_stats import rbridge

        terms = np.asarray([c for c in covariates for _ in assign[c]])
        out = rbridge.call_r("ps_r_cox_zph", x=X, time=t, event=e, terms=terms, transform=transform)
        out["method"] = f"cox.zph score test, {transform} transform"
        out["engine"] = "R"
        return out
    fit = _fit_cox(X, t, e)
    Xv = X.to_numpy(float)
    if transform == "km":
        ut, _, _, _, s, _ = _km_curve(t, e)
        idx = np.searchsorted(ut, t, side="left")  # number of distinct times < t -> S(t-)
        ttimes = 1 - np.concatenate([[1.0], s])[idx]
    elif transform == "identity":
        ttimes = t
    elif transform == "log":
        ttimes = np.log(t)
    else:
        ttimes = stats.rankdata(t)
    g = ttimes - ttimes[e == 1].mean()
    model = _EfronCox(Xv, t, e)
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
                        id_col: str | None = "patient_id") -> RiskStratification:
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
    km = kaplan_meier(d, time, event, "risk_group", times=times, id_col=id_col)
    lr = logrank_test(d, time, event, "risk_group", id_col=id_col)
    hr = cox_hazard_ratios(d, time, event, ["risk_group"], id_col=id_col)
    return RiskStratification(strat.cutoff_, groups, km, lr, hr)


def subgroup_hazard_ratios(data: pd.DataFrame, time: str, event: str, risk_group: str,
                           subgroups: Sequence[str], conf_level: float = 0.95,
                           id_col: str | None = "patient_id") -> pd.DataFrame:
    """HR of ``risk_group`` (binary, 1 vs 0) overall and within each level of each subgroup variable.

    The interaction p value is the likelihood-ratio test of Cox(risk_group * subgroup) against
    Cox(risk_group + subgroup) on all patients (df = levels - 1). Returns a forest-plot table:
    subgroup, level, n, events, estimate, lower, upper, p, p_interaction. Levels with no events or
    only one risk group get NaN HRs and a ``note``; the interaction p is then NaN too (not estimable).
    """
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


def adjusted_hazard_ratio(data: pd.DataFrame, time: str, event: str, exposure: str,
                          covariates: Sequence[str], conf_level: float = 0.95,
                          id_col: str | None = "patient_id", engine: str = "python") -> pd.DataFrame:
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


def median_followup(data: pd.DataFrame, time: str, event: str, conf_level: float = 0.95,
                    id_col: str | None = "patient_id", engine: str = "python") -> pd.DataFrame:
    """Median follow-up by the reverse Kaplan-Meier method (censoring as the event; Schemper & Smith).

    Matches ``survfit(Surv(time, 1 - event) ~ 1)``'s median and log-CI.
    """
    t, e = _check_survival(data, time, event, id_col)
    if (e == 1).all():
        raise ValueError(f"column {event!r} has no censored patients: reverse-KM follow-up is undefined")
    rev = pd.DataFrame({"t": t, "c": 1 - e})
    km = kaplan_meier(rev, "t", "c", conf_level=conf_level, id_col=None, engine=engine)
    s = km.summary.iloc[0]
    return pd.DataFrame([{"statistic": "median follow-up", "estimate": s["median"], "lower": s["lower"],
                          "upper": s["upper"], "n": len(t), "censored": int((e == 0).sum()),
                          "method": "reverse Kaplan-Meier, log CI", "engine": km.engine}])


def restricted_mean_survival(data: pd.DataFrame, time: str, event: str, tau: float,
                             group: str | None = None, conf_level: float = 0.95,
                             id_col: str | None = "patient_id") -> pd.DataFrame:
    """Restricted mean survival time up to ``tau`` with SE (``print.survfit(rmean=tau)``) and Wald CI."""
    t, e = _check_survival(data, time, event, id_col)
    if not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a positive finite time, got {tau}")
    g, levels = (np.zeros(len(t), dtype=int), [0]) if group is None else _check_group(data, group, id_col)
    z = stats.norm.ppf(0.5 + conf_level / 2)
    rows = []
    for lv in levels:
        m = g == lv
        ut, nr, ne, _, s, _ = _km_curve(t[m], e[m])
        est, se = _rmst(ut, s, nr, ne, tau)
        rows.append({"group": lv, "tau": tau, "estimate": est, "se": se, "lower": est - z * se,
                     "upper": est + z * se})
    out = pd.DataFrame(rows)
    out["method"] = "restricted mean survival (area under KM), Wald CI"
    out["engine"] = "python"
    return out
