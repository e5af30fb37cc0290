"""The one Kaplan-Meier (with reverse KM and Greenwood variance) and the one Cox model of the package.

Every module that needs a survival curve, a censoring distribution, a Cox fit, a baseline hazard or
S(t|x) from a Cox model calls this module (evaluation, fusion, features); nothing here validates user
input (callers pass arrays checked by :mod:`prime_stats.evaluation.inputs`).

Kaplan-Meier
    :func:`kaplan_meier_curve` - the product-limit estimate at every distinct observed time with
    n.risk, n.event, n.censor and the Greenwood variance of log S, as ``survival::survfit``
    (Kaplan & Meier 1958; Greenwood 1926). :func:`reverse_kaplan_meier` - the censoring distribution
    G(s) = P(C > s): with ``deaths_first=True`` a death tied with a censoring leaves the censoring risk
    set first (``prodlim(..., reverse = TRUE)``, the IPCW weights of ``riskRegression::Score``); with
    ``deaths_first=False`` it is ``survfit(Surv(time, 1 - event) ~ 1)`` (reverse-KM follow-up,
    Schemper & Smith 1996).

Cox
    :class:`CoxModel` - the log partial likelihood with Efron's (default, as ``survival::coxph``) or
    Breslow's tie handling, its score and information per event time, and :meth:`CoxModel.fit` by
    Newton-Raphson with step halving (coxph's algorithm). :func:`cox_loglik` - the Breslow log partial
    likelihood of a fixed linear predictor. :func:`baseline_cumhaz` - the baseline cumulative hazard
    for a given linear predictor (``survival::basehaz(fit, centered = FALSE)``; Breslow increments
    d / sum exp(eta), or Efron's tie-corrected increments, survfit.coxph's ``ctype = 2``).
    :func:`cox_survival` - S(t|x) = exp(-H0(t) exp(eta)).

Behaviour at and beyond the last time (one rule for every step function here): the curves are
right-continuous, equal their starting value (S = 1, H = 0) before the first time, and carry their last
value forward beyond the last observed time (as ``summary(survfit, times, extend = TRUE)``). A caller that
must refuse horizons beyond follow-up checks them first (``inputs.check_times(..., within=time)``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["KMCurve", "kaplan_meier_curve", "reverse_kaplan_meier", "step_at", "survival_at", "CoxModel", "CoxFit",
           "fit_cox", "cox_loglik", "baseline_cumhaz", "cox_survival", "TIES"]

TIES = ("efron", "breslow")


def step_at(grid: np.ndarray, values: np.ndarray, t, start: float, left: bool = False) -> np.ndarray:
    """A right-continuous step function (``values`` from ``grid[k]`` on) at ``t``; ``start`` before
    ``grid[0]``, the last value carried beyond ``grid[-1]``. ``left=True`` gives the left limit f(t-).
    ``values`` may hold several functions on the same grid (n x len(grid): n x len(t) back)."""
    idx = np.searchsorted(grid, np.asarray(t, dtype=float), side="left" if left else "right") - 1
    if values.size == 0:
        return np.full(values.shape[:-1] + np.shape(idx), start, dtype=float)
    return np.where(idx >= 0, values[..., np.maximum(idx, 0)], start)


def survival_at(step_functions, times) -> np.ndarray:
    """Survival step functions S(t|x) of a fitted model (``sksurv.functions.StepFunction``, as
    ``predict_survival_function`` returns them) at ``times`` -> array (n, len(times)), by the one rule
    of :func:`step_at` (S = 1 before a function's first time, its last value carried beyond its last)."""
    return np.array([step_at(f.x, f.a * f.y + f.b, times, 1.0) for f in step_functions]).reshape(
        len(step_functions), np.size(times))


# ------------------------------------------------------------------------------------- Kaplan-Meier
@dataclass(frozen=True)
class KMCurve:
    """A Kaplan-Meier curve at every distinct observed time (the rows of ``survfit``).

    ``n_risk``, ``n_event`` and ``n_censor`` are survfit's columns (for a reverse curve the "events" are
    censorings); ``var_log`` is the Greenwood variance of log S (inf once S reaches 0).
    """

    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray
    var_log: np.ndarray

    def at(self, t, left: bool = False) -> np.ndarray:
        """S(t) (or S(t-) with ``left=True``); 1 before the first time, the last value carried beyond."""
        return step_at(self.time, self.surv, t, 1.0, left)

    def var_log_at(self, t) -> np.ndarray:
        """Greenwood variance of log S(t) (0 before the first event)."""
        return step_at(self.time, self.var_log, t, 0.0)

    @property
    def std_err(self) -> np.ndarray:
        """Greenwood standard error of S at each time (survfit's ``std.err`` times S; NaN once S = 0)."""
        with np.errstate(invalid="ignore"):
            return np.where(self.surv > 0, self.surv * np.sqrt(self.var_log), np.nan)

    def events_between(self, times) -> np.ndarray:
        """Events in (t_{k-1}, t_k] for sorted ``times`` (t_0 = -inf): ``summary(survfit, times=)$n.event``."""
        return self._between(self.n_event, times)

    def censored_between(self, times) -> np.ndarray:
        """Censorings in (t_{k-1}, t_k] for sorted ``times``: ``summary(survfit, times=)$n.censor``."""
        return self._between(self.n_censor, times)

    def _between(self, counts: np.ndarray, times) -> np.ndarray:
        cum = np.concatenate([[0.0], np.cumsum(counts)])
        c = cum[np.searchsorted(self.time, np.asarray(times, dtype=float), side="right")]
        return np.diff(np.concatenate([[0.0], c]))


def _km(ut: np.ndarray, n_risk: np.ndarray, d: np.ndarray, n_censor: np.ndarray) -> KMCurve:
    with np.errstate(divide="ignore", invalid="ignore"):
        surv = np.cumprod(np.where(d > 0, 1.0 - d / n_risk, 1.0))
        terms = np.where(d > 0, d / (n_risk * (n_risk - d)), 0.0)
    return KMCurve(ut, n_risk, d, n_censor, surv, np.cumsum(terms))


def _counts(time: np.ndarray, event: np.ndarray):
    ut, inv = np.unique(time, return_inverse=True)
    d = np.bincount(inv, weights=event, minlength=ut.size)
    n_total = np.bincount(inv, minlength=ut.size).astype(float)
    n_risk = np.cumsum(n_total[::-1])[::-1]
    return ut, n_risk, d, n_total - d


def kaplan_meier_curve(time: np.ndarray, event: np.ndarray) -> KMCurve:
    """Kaplan-Meier S(t) with Greenwood variance (``survival::survfit(Surv(time, event) ~ 1)``)."""
    ut, n_risk, d, c = _counts(np.asarray(time, float), np.asarray(event, float))
    return _km(ut, n_risk, d, c)


def reverse_kaplan_meier(time: np.ndarray, event: np.ndarray, deaths_first: bool = True) -> KMCurve:
    """Kaplan-Meier of the censoring distribution G(s) = P(C > s) (censorings are the events).

    ``deaths_first=True``: deaths tied with a censoring time leave the censoring risk set first
    (prodlim ``reverse = TRUE``; the IPCW weights of ``riskRegression::Score`` and ``pec``);
    ``deaths_first=False``: ``survfit(Surv(time, 1 - event) ~ 1)``. The curve's ``n_censor`` holds the
    deaths at each time.
    """
    ut, n_risk, d, c = _counts(np.asarray(time, float), 1.0 - np.asarray(event, float))
    return _km(ut, n_risk - c if deaths_first else n_risk, d, c)


# ---------------------------------------------------------------------------------------------- Cox
@dataclass
class CoxFit:
    """A fitted Cox model: coefficients, their covariance and SEs, log partial likelihoods."""

    coef: np.ndarray
    se: np.ndarray
    cov: np.ndarray
    loglik: float
    loglik_null: float
    n: int
    events: int
    ties: str


class CoxModel:
    """Cox log partial likelihood with Efron's or Breslow's ties for fixed data (``survival::coxph``).

    ``evaluate(beta)`` returns the log partial likelihood and the per-event-time score contributions
    U_t (m x p) and information I_t (m x p x p) (the columns of X are centred, which changes neither);
    :meth:`fit` maximises it by Newton-Raphson with step halving, coxph's algorithm. With Breslow ties
    the tied deaths share one risk-set sum; Efron subtracts (k/d) of the tied deaths' sum for the k-th.
    """

    def __init__(self, X: np.ndarray, time: np.ndarray, event: np.ndarray, ties: str = "efron"):
        if ties not in TIES:
            raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
        self.ties = ties
        X = np.asarray(X, float)
        if X.ndim == 1:
            X = X[:, None]
        t, e = np.asarray(time, float), np.asarray(event).astype(int)
        self.X = X - X.mean(0)
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
        self.slot_f = (np.concatenate([np.zeros(0)] + [np.arange(k) / k for k in self.d]) if ties == "efron"
                       else np.zeros(self.slot_j.size))                # Efron weights k/d; Breslow 0

    def evaluate(self, beta: np.ndarray):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):  # step halving handles inf
            return self._evaluate(beta)

    def _evaluate(self, beta: np.ndarray):
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

    def fit(self, max_iter: int = 50, eps: float = 1e-12) -> CoxFit:
        """Newton-Raphson with step halving; RuntimeError on a monotone likelihood or singular information."""
        if self.etimes.size == 0:
            raise RuntimeError("no events: the Cox partial likelihood is flat")
        beta = np.zeros(self.X.shape[1])
        ll0, U, I = self.evaluate(beta)
        ll, ll_null = ll0, ll0
        for _ in range(max_iter):
            try:
                step = np.linalg.solve(I.sum(0), U.sum(0))
            except np.linalg.LinAlgError as exc:
                raise RuntimeError("information matrix is singular (a coefficient may be infinite: monotone "
                                   "likelihood; or collinear covariates)") from exc
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
        return CoxFit(beta, np.sqrt(np.diag(cov)), cov, ll, ll_null, len(self.ts), int(self.es.sum()),
                      self.ties)


def fit_cox(X: np.ndarray, time: np.ndarray, event: np.ndarray, ties: str = "efron") -> CoxFit:
    """Fit a Cox model (``survival::coxph(Surv(time, event) ~ X, ties = ties)``)."""
    return CoxModel(X, time, event, ties).fit()


def cox_loglik(eta: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    """Breslow log partial likelihood of a fixed linear predictor: sum over events of
    eta_i - log sum_{j: t_j >= t_i} exp(eta_j) (statsmodels ``PHReg(ties="breslow").loglike``)."""
    eta, time = np.asarray(eta, float), np.asarray(time, float)
    order = np.argsort(-time, kind="stable")
    e, t, ev = eta[order], time[order], np.asarray(event).astype(bool)[order]
    cum = np.logaddexp.accumulate(e)
    last = np.searchsorted(-t, -t, side="right") - 1      # whole tied group is in the risk set
    return float(np.sum((e - cum[last])[ev]))


def baseline_cumhaz(time: np.ndarray, event: np.ndarray, eta: np.ndarray, ties: str = "breslow"):
    """Baseline cumulative hazard H0 at each distinct event time for linear predictor ``eta``.

    ``ties="breslow"``: increments d / sum_{R(t)} exp(eta) (``basehaz(coxph(..., ties = "breslow"),
    centered = FALSE)``); ``"efron"``: sum_{k<d} 1 / (sum_R exp(eta) - (k/d) sum_D exp(eta)), the
    tie-corrected increments ``basehaz`` uses after an Efron fit. Returns (event times, H0).
    """
    if ties not in TIES:
        raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
    time, ev = np.asarray(time, float), np.asarray(event).astype(bool)
    w = np.exp(np.asarray(eta, float))
    order = np.argsort(time, kind="stable")
    ts, es, ws = time[order], ev[order], w[order]
    risk_sum = np.cumsum(ws[::-1])[::-1]
    ut = np.unique(ts[es])
    first = np.searchsorted(ts, ut, side="left")
    pos = np.searchsorted(ut, ts[es])
    d = np.bincount(pos, minlength=ut.size)
    S0 = risk_sum[first]
    if ties == "breslow":
        return ut, np.cumsum(d / S0)
    D0 = np.bincount(pos, weights=ws[es], minlength=ut.size)
    k = np.concatenate([np.zeros(0)] + [np.arange(m) for m in d])
    j = np.repeat(np.arange(ut.size), d)
    inc = np.bincount(j, weights=1.0 / (S0[j] - k / d[j] * D0[j]), minlength=ut.size)
    return ut, np.cumsum(inc)


def cox_survival(event_times: np.ndarray, cumhaz: np.ndarray, eta: np.ndarray, times) -> np.ndarray:
    """S(t|x) = exp(-H0(t) exp(eta)) at ``times`` -> array (n, len(times)).

    H0 is a right-continuous step function: 0 before the first event time, its last value carried
    beyond the last one (the module's single rule)."""
    H0 = step_at(np.asarray(event_times, float), np.asarray(cumhaz, float),
                 np.atleast_1d(np.asarray(times, dtype=float)), 0.0)
    return np.exp(-np.outer(np.exp(np.asarray(eta, float)), H0))
