"""Calibration of predicted probabilities (binary) and of predicted risks at a horizon (survival).

References
----------
- Harrell, Regression Modeling Strategies (2015), ``rms::val.prob``: logistic recalibration intercept and
  slope; lowess (``iter=0``) calibration curve and the absolute errors Eavg (= ICI), E50, E90, Emax.
- Van Calster et al. (2016) J Clin Epidemiol 74:167 (calibration hierarchy; calibration-in-the-large as
  the intercept with logit(p) as offset).
- Austin & Steyerberg (2019) Stat Med 38:4051 (ICI); Austin, Harrell & van Klaveren (2020) Stat Med
  39:2714 (survival: Cox model on restricted cubic splines of cloglog(F(t|x)), ICI/E50/E90).
- Restricted cubic splines with Harrell's default knot quantiles (``Hmisc::rcspline.eval``).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.nonparametric.smoothers_lowess import lowess

from .. import rbridge
from ._survcore import TIES, baseline_cumhaz, fit_cox, kaplan_meier_curve, step_at
from .discrimination import _call_r, _r_engine, _tidy
from .inputs import as_binary, as_probability, check_horizon, check_times, column, outcome_and

# the statistics (each with engine=); rcs_knots, rcs_basis, lowess_calibration: building blocks, not listed
__all__ = ["calibration_binary", "calibration_curve_binary", "calibration_survival",
           "calibration_curve_survival"]

_KNOT_QUANTILES = {3: (0.10, 0.5, 0.90), 4: (0.05, 0.35, 0.65, 0.95), 5: (0.05, 0.275, 0.5, 0.725, 0.95),
                   6: (0.05, 0.23, 0.41, 0.59, 0.77, 0.95), 7: (0.025, 0.1833, 0.3417, 0.5, 0.6583, 0.8167,
                                                              0.975)}


def rcs_knots(x: np.ndarray, nk: int = 4) -> np.ndarray:
    """Harrell's default knot locations (quantiles of x) for a restricted cubic spline with nk knots."""
    if nk not in _KNOT_QUANTILES:
        raise ValueError(f"nk must be one of {sorted(_KNOT_QUANTILES)}, got {nk}")
    knots = np.unique(np.quantile(x, _KNOT_QUANTILES[nk]))
    if len(knots) < 3:
        raise ValueError("too few distinct predicted values to place spline knots (need at least 3)")
    return knots


def rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Restricted cubic spline basis (x and k-2 nonlinear terms, Hmisc ``rcspline.eval`` with norm=2)."""
    k = len(knots)
    t = knots
    norm = (t[-1] - t[0]) ** 2
    cols = [x]
    pp = lambda v: np.maximum(v, 0.0) ** 3  # noqa: E731
    for j in range(k - 2):
        cols.append((pp(x - t[j]) - pp(x - t[k - 2]) * (t[k - 1] - t[j]) / (t[k - 1] - t[k - 2])
                     + pp(x - t[k - 1]) * (t[k - 2] - t[j]) / (t[k - 1] - t[k - 2])) / norm)
    return np.column_stack(cols)


PROBABILITY_FLOOR = 1e-6


def clip_probability(p, eps: float = PROBABILITY_FLOOR) -> tuple[np.ndarray, int]:
    """Predicted probabilities (or risks F(t|x)) moved into [eps, 1 - eps], so that logit(p) and
    cloglog(p) are finite, and how many were moved. Tree ensembles predict exactly 0 or 1;
    ``rms::val.prob`` drops such predictions from its logistic recalibration (with a warning), whereas
    moving them keeps every patient in the calibration statistics and curves."""
    p = np.asarray(p, dtype=float)
    moved = np.clip(p, eps, 1 - eps)
    return moved, int(np.sum(moved != p))


def _logit(p):
    return np.log(p / (1 - p))


def _abs_error_summary(err: np.ndarray) -> dict:
    return dict(Eavg=float(np.mean(err)), E50=float(np.median(err)), E90=float(np.quantile(err, 0.9)),
                Emax=float(np.max(err)))


def _glm(y, X, offset=None):
    """Logistic GLM (statsmodels; numerical RuntimeWarnings of its IRLS are not passed on)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return sm.GLM(y, X, family=sm.families.Binomial(), offset=offset).fit()


def _binary_inputs(y, prob, data=None):
    y = as_binary(column(y, data, "y"), what="calibration")
    p = as_probability(column(prob, data, "prob"), "prob", len(y))
    if np.unique(p).size == 1:
        raise ValueError("prob is constant: calibration slope and flexible curves are undefined")
    if ((p <= 0) | (p >= 1)).any():
        raise ValueError("prob contains 0 or 1: logit-scale calibration needs probabilities strictly "
                         "inside (0, 1)")
    return y, p


def lowess_calibration(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Calibrated probability at each p: R ``lowess(p, y, iter=0)`` (span 2/3, delta = 1% of range)."""
    fit = lowess(y.astype(float), p, frac=2 / 3, it=0, delta=0.01 * (p.max() - p.min()),
                 return_sorted=False)
    return fit


def calibration_binary(y, prob, conf_level: float = 0.95, *, data: pd.DataFrame | None = None,
                       engine: str = "auto") -> pd.DataFrame:
    """Calibration statistics for predicted probabilities of a binary outcome.

    Rows: ``CITL`` (intercept with logit(p) as offset), ``intercept`` and ``slope`` of the logistic
    recalibration model y ~ logit(p) (both as ``rms::val.prob``), Wald CIs; ``Eavg`` (ICI), ``E50``,
    ``E90``, ``Emax``: absolute differences between p and the lowess-calibrated probability
    (``rms::val.prob``: Eavg, E90, Emax), and ``O/E`` = mean(y)/mean(p). R twin: ``ps_r_val_prob``.
    """
    y, p = _binary_inputs(y, prob, data)
    if _r_engine(engine, ("rms",)):
        return _tidy(_call_r("ps_r_val_prob", y=y, prob=p, conf_level=conf_level).to_dict("records"))
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    lp = _logit(p)
    citl = _glm(y, np.ones((len(y), 1)), offset=lp)
    recal = _glm(y, sm.add_constant(lp))
    rows = []
    for name, est, se in (("CITL", citl.params[0], citl.bse[0]),
                          ("intercept", recal.params[0], recal.bse[0]),
                          ("slope", recal.params[1], recal.bse[1])):
        rows.append(dict(metric=name, estimate=float(est), se=float(se), lower=float(est - z * se),
                         upper=float(est + z * se), method="logistic recalibration", engine="python"))
    err = np.abs(p - lowess_calibration(y, p))
    for name, val in _abs_error_summary(err).items():
        rows.append(dict(metric=name, estimate=val, method="lowess (iter=0)", engine="python"))
    rows.append(dict(metric="O/E", estimate=float(y.mean() / p.mean()), method="mean(y)/mean(p)",
                     engine="python"))
    return _tidy(rows)


def calibration_curve_binary(y, prob, method: str = "loess", n_points: int = 50, nk: int = 4,
                             n_boot: int = 200, conf_level: float = 0.95,
                             random_state: int | None = 0, *, data: pd.DataFrame | None = None,
                             engine: str = "auto") -> pd.DataFrame:
    """Flexible calibration curve on a grid of predicted probabilities, with pointwise CI.

    ``method="loess"``: lowess (``iter=0``, span 2/3) with percentile-bootstrap CI (``n_boot`` resamples);
    ``method="rcs"``: logistic regression of y on a restricted cubic spline of logit(p) (``nk`` knots)
    with a Wald CI on the logit scale (delta method).  Returns columns
    ``predicted, observed, lower, upper, method``. Python only (the figure's curve; no R twin).
    """
    rbridge.python_only(engine, "calibration_curve_binary")
    y, p = _binary_inputs(y, prob, data)
    grid = np.linspace(np.quantile(p, 0.01), np.quantile(p, 0.99), n_points)
    a = (1 - conf_level) / 2
    if method == "rcs":
        knots = rcs_knots(_logit(p), nk)
        X = sm.add_constant(rcs_basis(_logit(p), knots), has_constant="add")
        fit = _glm(y, X)
        G = sm.add_constant(rcs_basis(_logit(grid), knots), has_constant="add")
        eta = G @ fit.params
        se = np.sqrt(np.einsum("ij,jk,ik->i", G, fit.cov_params(), G))
        z = stats.norm.ppf(1 - a)
        expit = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
        obs, lo, hi = expit(eta), expit(eta - z * se), expit(eta + z * se)
        label = f"restricted cubic spline ({len(knots)} knots) on logit(p)"
    elif method == "loess":
        def curve(yy, pp):
            f = lowess(yy.astype(float), pp, frac=2 / 3, it=0, delta=0.01 * (pp.max() - pp.min()))
            xs, idx = np.unique(f[:, 0], return_index=True)
            return np.interp(grid, xs, f[idx, 1], left=np.nan, right=np.nan)
        obs = curve(y, p)
        lo = hi = np.full(n_points, np.nan)
        if n_boot > 0:
            rng = np.random.default_rng(random_state)
            boots = np.empty((n_boot, n_points))
            for b in range(n_boot):
                i = rng.integers(0, len(y), len(y))
                boots[b] = curve(y[i], p[i])
            lo, hi = np.nanquantile(boots, a, axis=0), np.nanquantile(boots, 1 - a, axis=0)
        label = "lowess (iter=0, span 2/3)" + (f", bootstrap CI (B={n_boot})" if n_boot else "")
    else:
        raise ValueError(f"method must be 'loess' or 'rcs', got {method!r}")
    return pd.DataFrame(dict(predicted=grid, observed=obs, lower=lo, upper=hi, method=label))


# ----------------------------------------------------------------------------------------- survival
def _survival_inputs(time, event, risk, times, data):
    y, risk = outcome_and(time, event, risk, data=data, what="survival calibration")
    times = check_times(times)
    check_horizon(times, y.time, what="calibration")
    R = np.asarray(risk, dtype=float)
    if R.ndim == 1 and times.size == 1:
        R = R[:, None]
    if R.ndim != 2 or R.shape != (len(y), times.size):
        raise ValueError(f"risk must have shape (n_patients={len(y)},) for one time or "
                         f"(n_patients, n_times={times.size}); got {R.shape}")
    for k in range(times.size):
        F = as_probability(R[:, k], f"risk[:, {k}] (time {times[k]:g})" if times.size > 1 else "risk")
        if np.unique(F).size < 3:
            raise ValueError("risk has fewer than 3 distinct values: flexible calibration is undefined")
        if ((F <= 0) | (F >= 1)).any():
            raise ValueError("risk contains 0 or 1: cloglog calibration needs risks strictly inside (0, 1)")
    return y.time, y.event, R, times


def _surv_observed(time, event, F, t, nk):
    """Observed risk by t as a function of F: Cox (Breslow) on RCS(cloglog F), Breslow baseline."""
    cll = np.log(-np.log1p(-F))
    knots = rcs_knots(cll, nk)
    X = rcs_basis(cll, knots)
    beta = fit_cox(X, time, event, ties="breslow").coef
    ut, H = baseline_cumhaz(time, event, X @ beta, ties="breslow")
    H0 = float(step_at(ut, H, t, 0.0))

    def observed(Fnew):
        c = np.log(-np.log1p(-Fnew))
        return 1 - np.exp(-H0 * np.exp(rcs_basis(c, knots) @ beta))
    return observed


def _calibration_survival_r(time, event, F, t, nk, conf_level, ties, engine):
    """The R twin's rows (``ps_r_calibration_survival``, same ``ties``), or None when Python runs."""
    if not _r_engine(engine, ("survival", "Hmisc")):
        return None
    kw = dict(time=time, event=event, risk=F, times=float(t), nk=nk, conf_level=conf_level, ties=ties)
    return _call_r("ps_r_calibration_survival", **kw)


def calibration_survival(time, event=None, risk=None, times=None, nk: int = 3, conf_level: float = 0.95,
                         ties: str = "efron", *, data: pd.DataFrame | None = None,
                         engine: str = "auto") -> pd.DataFrame:
    """Calibration of predicted risks F(t|x) = 1 - S(t|x) at each horizon in ``times``.

    ``risk``: shape (n,) for one horizon or (n, len(times)). Rows per horizon: ``O/E`` =
    (1 - KM(t)) / mean(F) with CI from the Greenwood variance on the log scale; ``slope``: Cox regression
    coefficient of cloglog(F) with Wald CI, ties handled by ``ties`` ("efron", the default of
    ``survival::coxph``, or "breslow"; the two differ only when event times tie, e.g. by 2.2e-4 on
    gbsg); ``ICI``, ``E50``, ``E90``, ``Emax``: |F - observed| where observed risk comes from a Breslow
    Cox model on a restricted cubic spline (``nk`` knots) of cloglog(F) (Austin, Harrell & van Klaveren
    2020). R twin: ``ps_r_calibration_survival`` (survival::coxph, survfit, Hmisc::rcspline.eval).
    """
    if ties not in TIES:
        raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
    time, event, R, times = _survival_inputs(time, event, risk, times, data)
    frames = []
    for k, t in enumerate(times):
        F = R[:, k]
        out = _calibration_survival_r(time, event, F, t, nk, conf_level, ties, engine)
        frames.append(out if out is not None else _calibration_survival_py(time, event, F, float(t), nk,
                                                                           conf_level, ties))
    return _tidy(pd.concat(frames, ignore_index=True).to_dict("records"))


def _calibration_survival_py(time, event, F, t, nk, conf_level, ties) -> pd.DataFrame:
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    km = kaplan_meier_curve(time, event)
    S = float(km.at(t))
    O = 1.0 - S
    E = float(F.mean())
    se_log_O = np.sqrt(S ** 2 * float(km.var_log_at(t))) / O      # Greenwood SE of 1 - KM(t), log scale
    rows = [dict(metric="O/E", time=t, estimate=O / E, se=se_log_O, lower=O / E * np.exp(-z * se_log_O),
                 upper=O / E * np.exp(z * se_log_O), method="1-KM(t) / mean predicted risk", engine="python")]
    cll = np.log(-np.log1p(-F))
    fit = fit_cox(cll, time, event, ties=ties)
    b, se = float(fit.coef[0]), float(fit.se[0])
    rows.append(dict(metric="slope", time=t, estimate=b, se=se, lower=b - z * se, upper=b + z * se,
                     method=f"Cox on cloglog(F), {ties.capitalize()} ties",
                     engine="python"))
    err = np.abs(F - _surv_observed(time, event, F, t, nk)(F))
    for name, val in _abs_error_summary(err).items():
        rows.append(dict(metric="ICI" if name == "Eavg" else name, time=t, estimate=val,
                         method=f"Cox on RCS({nk}) of cloglog(F)", engine="python"))
    return pd.DataFrame(rows)


def calibration_curve_survival(time, event=None, risk=None, times=None, nk: int = 3, n_points: int = 50,
                               n_boot: int = 0, conf_level: float = 0.95, random_state: int | None = 0, *,
                               data: pd.DataFrame | None = None, engine: str = "auto") -> pd.DataFrame:
    """Flexible calibration curve at one horizon ``times`` (Austin et al. 2020) on a grid of predicted
    risks, with optional percentile-bootstrap pointwise CI.  Columns ``predicted, observed, lower, upper,
    method``. Python only (the figure's curve; no R twin)."""
    rbridge.python_only(engine, "calibration_curve_survival")
    time, event, R, times = _survival_inputs(time, event, risk, times, data)
    if times.size != 1:
        raise ValueError(f"calibration_curve_survival draws one horizon; got times={times.tolist()}")
    t, F = float(times[0]), R[:, 0]
    grid = np.linspace(np.quantile(F, 0.01), np.quantile(F, 0.99), n_points)
    obs = _surv_observed(time, event, F, t, nk)(grid)
    lo = hi = np.full(n_points, np.nan)
    if n_boot > 0:
        rng = np.random.default_rng(random_state)
        boots = np.full((n_boot, n_points), np.nan)
        for b in range(n_boot):
            i = rng.integers(0, len(F), len(F))
            try:
                boots[b] = _surv_observed(time[i], event[i], F[i], t, nk)(grid)
            except (ValueError, RuntimeError, np.linalg.LinAlgError):
                continue
        a = (1 - conf_level) / 2
        lo, hi = np.nanquantile(boots, a, axis=0), np.nanquantile(boots, 1 - a, axis=0)
    return pd.DataFrame(dict(predicted=grid, observed=obs, lower=lo, upper=hi,
                             method=f"Cox on RCS({nk}) of cloglog(F) at t={t:g}"))
