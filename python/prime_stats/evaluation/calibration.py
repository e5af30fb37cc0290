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

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.nonparametric.smoothers_lowess import lowess

from .discrimination import _same_length, _tidy, as_binary, as_float_array, as_survival
from .overall import _check_prob, km_risk

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


def _logit(p):
    return np.log(p / (1 - p))


def _abs_error_summary(err: np.ndarray) -> dict:
    return dict(Eavg=float(np.mean(err)), E50=float(np.median(err)), E90=float(np.quantile(err, 0.9)),
                Emax=float(np.max(err)))


def _binary_inputs(y, prob):
    y = as_binary(y)
    p = _check_prob(as_float_array(prob, "prob"), "prob")
    _same_length(len(y), prob=p)
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


def calibration_binary(y, prob, conf_level: float = 0.95) -> pd.DataFrame:
    """Calibration statistics for predicted probabilities of a binary outcome.

    Rows: ``CITL`` (intercept with logit(p) as offset), ``intercept`` and ``slope`` of the logistic
    recalibration model y ~ logit(p) (both as ``rms::val.prob``), Wald CIs; ``Eavg`` (ICI), ``E50``,
    ``E90``, ``Emax``: absolute differences between p and the lowess-calibrated probability
    (``rms::val.prob``: Eavg, E90, Emax), and ``O/E`` = mean(y)/mean(p).
    """
    y, p = _binary_inputs(y, prob)
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    lp = _logit(p)
    citl = sm.GLM(y, np.ones((len(y), 1)), family=sm.families.Binomial(), offset=lp).fit()
    recal = sm.GLM(y, sm.add_constant(lp), family=sm.families.Binomial()).fit()
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
                             random_state: int | None = 0) -> pd.DataFrame:
    """Flexible calibration curve on a grid of predicted probabilities, with pointwise CI.

    ``method="loess"``: lowess (``iter=0``, span 2/3) with percentile-bootstrap CI (``n_boot`` resamples);
    ``method="rcs"``: logistic regression of y on a restricted cubic spline of logit(p) (``nk`` knots)
    with a Wald CI on the logit scale (delta method).  Returns columns
    ``predicted, observed, lower, upper, method``.
    """
    y, p = _binary_inputs(y, prob)
    grid = np.linspace(np.quantile(p, 0.01), np.quantile(p, 0.99), n_points)
    a = (1 - conf_level) / 2
    if method == "rcs":
        knots = rcs_knots(_logit(p), nk)
        X = sm.add_constant(rcs_basis(_logit(p), knots), has_constant="add")
        fit = sm.GLM(y, X, family=sm.families.Binomial()).fit()
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
def _cox_breslow(time, event, X):
    """Cox model (Breslow ties) and the Breslow baseline cumulative hazard function."""
    fit = sm.PHReg(time, X, status=event, ties="breslow").fit(disp=False)
    beta = np.asarray(fit.params)
    eta = X @ beta
    order = np.argsort(time)
    ts, es, ws = time[order], event[order], np.exp(eta[order])
    risk_sum = np.cumsum(ws[::-1])[::-1]
    ut = np.unique(ts[es == 1])
    first = np.searchsorted(ts, ut, side="left")
    d = np.array([np.sum((ts == u) & (es == 1)) for u in ut])
    H = np.cumsum(d / risk_sum[first])

    def H0(t):
        i = np.searchsorted(ut, t, side="right") - 1
        return 0.0 if i < 0 else float(H[i])
    return fit, beta, H0


def _survival_inputs(time, event, risk, t):
    time, event = as_survival(time, event)
    F = _check_prob(as_float_array(risk, "risk"), "risk")
    _same_length(len(time), risk=F)
    if t >= time.max():
        raise ValueError(f"horizon t={t} is at or beyond the last follow-up time ({time.max()})")
    if np.unique(F).size < 3:
        raise ValueError("risk has fewer than 3 distinct values: flexible calibration is undefined")
    if ((F <= 0) | (F >= 1)).any():
        raise ValueError("risk contains 0 or 1: cloglog calibration needs risks strictly inside (0, 1)")
    return time, event, F


def _surv_observed(time, event, F, t, nk):
    cll = np.log(-np.log1p(-F))
    knots = rcs_knots(cll, nk)
    _, beta, H0 = _cox_breslow(time, event, rcs_basis(cll, knots))

    def observed(Fnew):
        c = np.log(-np.log1p(-Fnew))
        return 1 - np.exp(-H0(t) * np.exp(rcs_basis(c, knots) @ beta))
    return observed


def calibration_survival(time, event, risk, t: float, nk: int = 3, conf_level: float = 0.95) -> pd.DataFrame:
    """Calibration of predicted risks F(t|x) = 1 - S(t|x) at horizon ``t``.

    Rows: ``O/E`` = (1 - KM(t)) / mean(F) with CI from the Greenwood variance on the log scale;
    ``slope``: Cox regression coefficient of cloglog(F) (Breslow ties) with Wald CI; ``ICI``, ``E50``,
    ``E90``, ``Emax``: |F - observed| where observed risk comes from a Cox model on a restricted cubic
    spline (``nk`` knots) of cloglog(F) (Austin, Harrell & van Klaveren 2020).
    """
    time, event, F = _survival_inputs(time, event, risk, t)
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    O = km_risk(time, event, t)
    E = float(F.mean())
    # Greenwood variance of KM(t)
    ut = np.unique(time[(event == 1) & (time <= t)])
    d = np.array([np.sum((time == u) & (event == 1)) for u in ut])
    r = np.array([np.sum(time >= u) for u in ut])
    var_S = (1 - O) ** 2 * np.sum(d / (r * (r - d)))
    se_log_O = np.sqrt(var_S) / O
    rows = [dict(metric="O/E", time=t, estimate=O / E, se=se_log_O, lower=O / E * np.exp(-z * se_log_O),
                 upper=O / E * np.exp(z * se_log_O), method="1-KM(t) / mean predicted risk", engine="python")]
    cll = np.log(-np.log1p(-F))
    fit, beta, _ = _cox_breslow(time, event, cll[:, None])
    se = float(fit.bse[0])
    rows.append(dict(metric="slope", time=t, estimate=float(beta[0]), se=se, lower=float(beta[0] - z * se),
                     upper=float(beta[0] + z * se), method="Cox on cloglog(F)", engine="python"))
    err = np.abs(F - _surv_observed(time, event, F, t, nk)(F))
    for name, val in _abs_error_summary(err).items():
        rows.append(dict(metric="ICI" if name == "Eavg" else name, time=t, estimate=val,
                         method=f"Cox on RCS({nk}) of cloglog(F)", engine="python"))
    return _tidy(rows)


def calibration_curve_survival(time, event, risk, t: float, nk: int = 3, n_points: int = 50,
                               n_boot: int = 0, conf_level: float = 0.95,
                               random_state: int | None = 0) -> pd.DataFrame:
    """Flexible calibration curve at horizon t (Austin et al. 2020) on a grid of predicted risks,
    with optional percentile-bootstrap pointwise CI.  Columns ``predicted, observed, lower, upper, method``."""
    time, event, F = _survival_inputs(time, event, risk, t)
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
            except (ValueError, np.linalg.LinAlgError):
                continue
        a = (1 - conf_level) / 2
        lo, hi = np.nanquantile(boots, a, axis=0), np.nanquantile(boots, 1 - a, axis=0)
    return pd.DataFrame(dict(predicted=grid, observed=obs, lower=lo, upper=hi,
                             method=f"Cox on RCS({nk}) of cloglog(F) at t={t:g}"))
