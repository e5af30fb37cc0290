"""Minimum sample size for developing a prediction model: Riley et al.'s criteria, as R's pmsampsize.

References
----------
- Riley RD, Ensor J, Snell KIE, et al. Calculating the sample size required for developing a clinical
  prediction model. BMJ 2020;368:m441.
- Riley RD, Snell KIE, Ensor J, et al. Minimum sample size for developing a multivariable prediction
  model: Part II - binary and time-to-event outcomes. Stat Med 2019;38:1276-1296.
- Riley RD, Van Calster B, Collins GS. A note on estimating the Cox-Snell R2 from a reported C statistic
  (AUROC) to inform sample size calculations for developing a prediction model with a binary outcome.
  Stat Med 2021;40:859-864.

R twin: ``pmsampsize::pmsampsize(type = "b" | "s", ...)`` (Ensor, Martin & Riley; CRAN only, not packaged
by Debian). Criteria: (1) expected uniform shrinkage >= 0.9; (2) apparent and adjusted Nagelkerke R2
differ by <= 0.05; (3) binary: the overall risk estimated within +/- 0.05; survival: the 95% CI of the
overall risk by ``timepoint`` at the chosen n is reported. Known difference: pmsampsize 1.0.x rounded the
maximum R2 to 2 and the criterion-2 shrinkage to 3 decimals (its binary example gives 668 for criterion
2); current pmsampsize and this module do not (662). ``r2_cs_from_c`` is the large-sample limit that
pmsampsize's ``cstat2rsq`` approximates by simulating 10^6 patients.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = ["criterion", "n", "shrinkage", "parameters", "r2_cs", "max_r2_cs", "events", "epp", "method"]
NAGELKERKE_DEFAULT = 0.15     # Riley et al. 2020: without prior evidence, R2_CS = 0.15 * max(R2_CS)
_PMSAMPSIZE_N = 10_000        # pmsampsize_surv's notional n for the null log-likelihood


def _check(name: str, value, low: float, high: float, closed_low: bool = False):
    ok = value is not None and np.isfinite(value) and (low <= value if closed_low else low < value) and value < high
    if not ok:
        raise ValueError(f"{name} must be in {'[' if closed_low else '('}{low:g}, {high:g}), got {value!r}")
    return float(value)


def max_r2_cs_binary(prevalence: float) -> float:
    """Largest possible Cox-Snell R2 of a logistic model: 1 - (p^p (1-p)^(1-p))^2 (Riley 2019, eq. 23)."""
    p = _check("prevalence", prevalence, 0, 1)
    return 1 - math.exp(2 * (p * math.log(p) + (1 - p) * math.log(1 - p)))


def max_r2_cs_survival(rate: float, meanfup: float) -> float:
    """Largest possible Cox-Snell R2 of a survival model, as pmsampsize: null log-likelihood
    E ln(E/n) - E with E = ceiling(rate * meanfup * 10,000) events among n = 10,000 patients."""
    events = math.ceil(_check("rate", rate, 0, np.inf) * _check("meanfup", meanfup, 0, np.inf) * _PMSAMPSIZE_N)
    ln_null = events * math.log(events / _PMSAMPSIZE_N) - events
    return 1 - math.exp(2 * ln_null / _PMSAMPSIZE_N)


def r2_cs_from_c(cstatistic: float, prevalence: float) -> float:
    """Cox-Snell R2 implied by a C-statistic (Riley, Van Calster & Collins 2021): the linear predictor is
    N(0, 1) in non-events and N(mu, 1) in events with mu = sqrt(2) * Phi^-1(C); the logistic model on it is
    exact (slope mu), and R2_CS = 1 - exp(-2 (E[log-lik] - log-lik of the null model)) per patient,
    integrated by Gauss-Hermite quadrature instead of pmsampsize's simulated 10^6 patients."""
    c = _check("cstatistic", cstatistic, 0.5, 1, closed_low=True)
    p = _check("prevalence", prevalence, 0, 1)
    mu = math.sqrt(2) * stats.norm.ppf(c)
    z, w = np.polynomial.hermite_e.hermegauss(200)
    w = w / w.sum()
    b0 = math.log(p / (1 - p)) - mu ** 2 / 2          # log-odds = b0 + mu * x, exactly
    # E[log-lik] = p E_{x~N(mu,1)} log expit(eta) + (1-p) E_{x~N(0,1)} log expit(-eta)
    ll = p * np.sum(w * -np.logaddexp(0, -(b0 + mu * (z + mu)))) + (1 - p) * np.sum(w * -np.logaddexp(0, b0 + mu * z))
    ll0 = p * math.log(p) + (1 - p) * math.log(1 - p)
    return float(1 - math.exp(-2 * (ll - ll0)))


def _n_for_shrinkage(parameters: int, r2: float, shrinkage: float) -> int:
    """Riley 2019 eq. 11: n = p / ((S - 1) ln(1 - R2_CS / S)), rounded up."""
    if r2 >= shrinkage:
        raise ValueError(f"R2_CS ({r2:.3f}) must be below the shrinkage ({shrinkage:.3f})")
    return math.ceil(parameters / ((shrinkage - 1) * math.log(1 - r2 / shrinkage)))


def _r2(r2_cs, nagelkerke, max_r2) -> tuple[float, str]:
    if r2_cs is not None and nagelkerke is not None:
        raise ValueError("give r2_cs or nagelkerke, not both")
    if r2_cs is None:
        nag = NAGELKERKE_DEFAULT if nagelkerke is None else _check("nagelkerke", nagelkerke, 0, 1)
        how = ("conservative default, Nagelkerke R2 = 0.15 (Riley et al. 2020)" if nagelkerke is None
               else f"anticipated Nagelkerke R2 = {nag:g}")
        return nag * max_r2, how
    r2 = _check("r2_cs", r2_cs, 0, 1)
    if r2 > max_r2:
        raise ValueError(f"r2_cs = {r2:g} exceeds the largest possible Cox-Snell R2 ({max_r2:.4f})")
    return r2, f"anticipated Cox-Snell R2 = {r2:g}"


def _criteria_1_2(parameters, r2, max_r2, shrinkage, delta):
    n1 = _n_for_shrinkage(parameters, r2, shrinkage)
    s2 = r2 / (r2 + delta * max_r2)                       # shrinkage that keeps the Nagelkerke optimism <= delta
    n2 = _n_for_shrinkage(parameters, r2, s2)
    return n1, n2, s2


def sample_size_binary(parameters: int, prevalence: float, r2_cs: float | None = None,
                       cstatistic: float | None = None, nagelkerke: float | None = None,
                       shrinkage: float = 0.9, delta: float = 0.05, margin: float = 0.05) -> pd.DataFrame:
    """Minimum n to develop a logistic prediction model with ``parameters`` candidate predictor parameters
    (``pmsampsize(type = "b")``). Anticipated performance from ``r2_cs``, ``cstatistic`` (via
    :func:`r2_cs_from_c`) or ``nagelkerke``; with none, the conservative Nagelkerke R2 = 0.15.

    Rows: criterion 1 (shrinkage), 2 (Nagelkerke optimism <= ``delta``), 3 (overall risk within
    +/- ``margin``), final; columns ``criterion, n, shrinkage, parameters, r2_cs, max_r2_cs, events, epp,
    method``."""
    k = int(parameters)
    if k < 1:
        raise ValueError(f"parameters must be >= 1, got {parameters!r}")
    mx = max_r2_cs_binary(prevalence)
    if cstatistic is not None:
        if r2_cs is not None or nagelkerke is not None:
            raise ValueError("give one of r2_cs, cstatistic, nagelkerke")
        r2, how = r2_cs_from_c(cstatistic, prevalence), f"R2_CS from anticipated C = {cstatistic:g} (Riley 2021)"
    else:
        r2, how = _r2(r2_cs, nagelkerke, mx)
    n1, n2, s2 = _criteria_1_2(k, r2, mx, shrinkage, delta)
    n3 = math.ceil((1.96 / margin) ** 2 * prevalence * (1 - prevalence))   # 1.96, as pmsampsize
    rows = [("1: shrinkage >= %g" % shrinkage, n1, shrinkage),
            ("2: Nagelkerke R2 optimism <= %g" % delta, n2, s2),
            ("3: overall risk within +/- %g" % margin, n3, max(s2, shrinkage)),
            ("final", max(n1, n2, n3), max(s2, shrinkage))]
    return pd.DataFrame([{"criterion": c, "n": n, "shrinkage": s, "parameters": k, "r2_cs": r2, "max_r2_cs": mx,
                          "events": n * prevalence, "epp": n * prevalence / k,
                          "method": f"Riley et al. 2020, binary; {how}; prevalence {prevalence:.3f}"}
                         for c, n, s in rows], columns=COLUMNS)


def sample_size_survival(parameters: int, rate: float, timepoint: float, meanfup: float,
                         r2_cs: float | None = None, nagelkerke: float | None = None, shrinkage: float = 0.9,
                         delta: float = 0.05) -> pd.DataFrame:
    """Minimum n to develop a survival prediction model (``pmsampsize(type = "s")``): ``rate`` events per
    unit of time, ``meanfup`` and ``timepoint`` in the same unit. Anticipated performance from ``r2_cs``
    or ``nagelkerke``; with neither, the conservative Nagelkerke R2 = 0.15.

    Rows and columns as :func:`sample_size_binary`; criterion 3 is n = max(criteria 1, 2) with the 95% CI
    of the overall risk 1 - exp(-rate * timepoint) at that n in ``risk``, ``risk_lower``, ``risk_upper``
    (the CI of the rate: rate +/- 1.96 sqrt(rate / person-time))."""
    k = int(parameters)
    if k < 1:
        raise ValueError(f"parameters must be >= 1, got {parameters!r}")
    t = _check("timepoint", timepoint, 0, np.inf)
    mx = max_r2_cs_survival(rate, meanfup)
    r2, how = _r2(r2_cs, nagelkerke, mx)
    n1, n2, s2 = _criteria_1_2(k, r2, mx, shrinkage, delta)
    n3 = max(n1, n2)
    person_time = round(meanfup * n3, 1)
    half = 1.96 * math.sqrt(rate / person_time)
    risk = 1 - math.exp(-rate * t)
    lo, hi = 1 - math.exp(-(rate - half) * t), 1 - math.exp(-(rate + half) * t)
    rows = [("1: shrinkage >= %g" % shrinkage, n1, shrinkage),
            ("2: Nagelkerke R2 optimism <= %g" % delta, n2, s2),
            ("3: overall risk by timepoint (95% CI at this n)", n3, max(s2, shrinkage)),
            ("final", n3, max(s2, shrinkage))]
    out = pd.DataFrame([{"criterion": c, "n": n, "shrinkage": s, "parameters": k, "r2_cs": r2, "max_r2_cs": mx,
                         "events": n * rate * meanfup, "epp": n * rate * meanfup / k,
                         "method": f"Riley et al. 2020, survival; {how}; rate {rate:.4g} per unit time, "
                                   f"mean follow-up {meanfup:.3g}, timepoint {t:g}"}
                        for c, n, s in rows], columns=COLUMNS)
    out.loc[2, ["risk", "risk_lower", "risk_upper"]] = [risk, lo, hi]
    return out


__all__ = ["sample_size_binary", "sample_size_survival", "r2_cs_from_c", "max_r2_cs_binary",
           "max_r2_cs_survival", "NAGELKERKE_DEFAULT"]
