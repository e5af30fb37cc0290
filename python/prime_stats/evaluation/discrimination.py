"""Discrimination: AUC (DeLong), correlated-AUC test, Harrell's/Uno's C and time-dependent AUC.

Every function returns a tidy :class:`pandas.DataFrame` with ``metric, estimate, se, lower, upper,
method, engine`` (plus ``time`` for time-dependent statistics). Arguments follow one convention:
binary ``(y, score)``, survival ``(time, event, risk)`` with horizons ``times`` (a scikit-survival
structured array or :class:`~prime_stats.evaluation.inputs.SurvivalOutcome` may replace ``time, event``;
column names work with ``data=``), and ``engine="auto"`` (R when available, resolved by
``rbridge.resolve_engine``) on every statistic; the ``engine`` column says which one ran.

References
----------
- DeLong, DeLong & Clarke-Pearson (1988) Biometrics 44:837; fast mid-rank algorithm of Sun & Xu (2014)
  IEEE Signal Process Lett 21:1389.  Matches ``pROC::ci.auc(method="delong")`` and
  ``pROC::roc.test(method="delong")``.
- Harrell et al. (1982); Uno et al. (2011) Stat Med 30:1105.  Matches ``survival::concordance`` with
  ``timewt="n"`` and ``timewt="n/G2"`` (infinitesimal-jackknife standard error).
- Blanche, Dartigues & Jacqmin-Gadda (2013) Stat Med 32:5381 (cumulative/dynamic AUC(t) with IPCW and its
  influence-function standard error).  Matches ``riskRegression::Score(metrics="auc")`` with a
  Kaplan-Meier censoring model.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np
import pandas as pd
from scipy import stats

from ._survcore import reverse_kaplan_meier
from .inputs import (as_binary, as_float_array, as_risk_matrix, check_horizon, check_times, column, outcome_and,
                     same_length)

# the statistics (each with engine=); delong_cov and CensoringKM are building blocks, importable but not listed
__all__ = ["auc_delong", "delong_test", "concordance_index", "time_dependent_auc"]

Z975 = float(stats.norm.ppf(0.975))


def _r_engine(engine: str, packages: tuple) -> bool:
    """True when ``engine`` resolves to R (``rbridge.resolve_engine``, the one resolver)."""
    from .. import rbridge

    return rbridge.resolve_engine(engine, packages) == "R"


def _call_r(function: str, **kwargs) -> pd.DataFrame:
    from .. import rbridge

    out = rbridge.call_r(function, **kwargs)
    out["engine"] = "R"
    return out


def _tidy(rows: list[dict]) -> pd.DataFrame:
    cols = ["metric", "time", "estimate", "se", "lower", "upper", "method", "engine"]
    df = pd.DataFrame(rows)
    for c in cols:
        if c not in df:
            df[c] = np.nan
    return df[cols + [c for c in df.columns if c not in cols]]


# ------------------------------------------------------------------------------------------ DeLong AUC
def _midrank(x: np.ndarray) -> np.ndarray:
    return stats.rankdata(x, method="average")


def _delong_components(y: np.ndarray, scores: np.ndarray):
    """AUCs, structural components V10 (cases) and V01 (controls) for k score columns (Sun & Xu 2014)."""
    pos, neg = scores[y == 1], scores[y == 0]
    m, n = len(pos), len(neg)
    aucs, v10, v01 = [], [], []
    for k in range(scores.shape[1]):
        tx, ty = _midrank(pos[:, k]), _midrank(neg[:, k])
        tz = _midrank(np.concatenate([pos[:, k], neg[:, k]]))
        aucs.append((tz[:m].sum() - m * (m + 1) / 2) / (m * n))
        v10.append((tz[:m] - tx) / n)
        v01.append(1.0 - (tz[m:] - ty) / m)
    return np.array(aucs), np.array(v10), np.array(v01), m, n


def delong_cov(y, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUC vector and DeLong covariance matrix for the columns of ``scores`` (higher = more likely 1)."""
    y = as_binary(y, what="the AUC")
    s = np.asarray(scores, dtype=float)
    if s.ndim == 1:
        s = s[:, None]
    for k in range(s.shape[1]):
        as_float_array(s[:, k], f"scores[:, {k}]")
    same_length(len(y), ref="y", scores=s)
    aucs, v10, v01, m, n = _delong_components(y, s)
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return aucs, cov


def auc_delong(y, score, conf_level: float = 0.95, *, data: pd.DataFrame | None = None,
               engine: str = "auto") -> pd.DataFrame:
    """ROC AUC with DeLong standard error and Wald CI truncated to [0, 1].

    ``score``: higher values predict ``y == 1`` (pROC ``direction = "<"``). ``y`` and ``score`` may be
    column names of ``data``. R twin: ``pROC::ci.auc(method = "delong")`` (``ps_r_auc``).
    """
    y = as_binary(column(y, data, "y"), what="the AUC")
    score = as_float_array(column(score, data, "score"), "score")
    same_length(len(y), ref="y", score=score)
    if _r_engine(engine, ("pROC",)):
        return _tidy(_call_r("ps_r_auc", y=y, score=score, conf_level=conf_level).to_dict("records"))
    aucs, cov = delong_cov(y, score)
    se = float(np.sqrt(cov[0, 0]))
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    return _tidy([dict(metric="AUC", estimate=aucs[0], se=se, lower=max(0.0, aucs[0] - z * se),
                       upper=min(1.0, aucs[0] + z * se), method="DeLong", engine="python")])


def delong_test(y, score1, score2, *, data: pd.DataFrame | None = None, engine: str = "auto") -> pd.DataFrame:
    """DeLong test of two correlated AUCs on the same patients.

    Returns one row: estimate = AUC1 - AUC2 with its 95% CI, ``statistic`` (z) and ``p_value``.
    R twin: ``pROC::roc.test(method = "delong", paired = TRUE)`` (``ps_r_roc_test``).
    """
    y = as_binary(column(y, data, "y"), what="the AUC")
    s1 = as_float_array(column(score1, data, "score1"), "score1")
    s2 = as_float_array(column(score2, data, "score2"), "score2")
    same_length(len(y), ref="y", score1=s1, score2=s2)
    if _r_engine(engine, ("pROC",)):
        return _tidy(_call_r("ps_r_roc_test", y=y, score1=s1, score2=s2).to_dict("records"))
    aucs, cov = delong_cov(y, np.column_stack([s1, s2]))
    diff = aucs[0] - aucs[1]
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    se = float(np.sqrt(max(var, 0.0)))
    z = diff / se if se > 0 else np.nan
    p = float(2 * stats.norm.sf(abs(z))) if se > 0 else np.nan
    return _tidy([dict(metric="AUC difference", estimate=diff, se=se, lower=diff - Z975 * se,
                       upper=diff + Z975 * se, method="DeLong paired test", engine="python",
                       auc1=aucs[0], auc2=aucs[1], statistic=z, p_value=p)])


# ----------------------------------------------------------------------------- censoring Kaplan-Meier
class CensoringKM:
    """IPCW weights from the reverse Kaplan-Meier G(s) = P(C > s) (``_survcore.reverse_kaplan_meier``,
    deaths tied with a censoring leave its risk set first, as prodlim/riskRegression).

    ``G(s)`` is right-continuous; ``G_minus(s)`` = G(s-).  Also exposes what the Kaplan-Meier
    influence function needs: the curve's times ``u``, numbers at risk ``Y(u)`` = #{T >= u} and
    censoring counts ``d(u)``.
    """

    def __init__(self, time: np.ndarray, event: np.ndarray):
        self.time, self.event = time, event
        self.km = reverse_kaplan_meier(time, event, deaths_first=True)
        self.u, self.d = self.km.time, self.km.n_event
        self.n_at_risk = self.km.n_risk + self.km.n_censor   # deaths at u are back in Y(u)

    def G(self, s) -> np.ndarray:
        return self.km.at(s)

    def G_minus(self, s) -> np.ndarray:
        return self.km.at(s, left=True)

    def censoring_if_term(self, h_case: np.ndarray, h_ctrl_total: float, t: float) -> np.ndarray:
        """Influence of estimating G on an IPCW mean (1/n) sum psi_i (Kaplan-Meier censoring model).

        ``h_case``: psi_i of subjects weighted by 1/G(T_i-) (zero elsewhere); ``h_ctrl_total``: sum of psi_j
        of subjects weighted by 1/G(t).  Returns, for each subject k,
        sum_u H(u) n / Y(u) dM^C_k(u), H(u) = (1/n)[sum_i psi_i 1(u < T_i) + 1(u <= t) sum_j psi_j],
        with Y(u) = #{T >= u} (deaths at u included, riskRegression's convention for this term).
        """
        n = len(self.time)
        u = self.u
        # sum of psi_i over subjects with T_i > u
        order = np.argsort(self.time)
        ts, hs = self.time[order], h_case[order]
        tail = np.concatenate([np.cumsum(hs[::-1])[::-1], [0.0]])
        H = tail[np.searchsorted(ts, u, side="right")] + np.where(u <= t, h_ctrl_total, 0.0)
        H = H / n
        Y = self.n_at_risk
        jump = H * n / Y                                  # coefficient of dN^C_k(u)
        comp = H * n * self.d / Y ** 2                    # coefficient of 1(T_k >= u) dLambda
        cum_comp = np.concatenate([[0.0], np.cumsum(comp)])
        k_idx = np.searchsorted(u, self.time, side="right")   # number of u <= T_k
        term = -cum_comp[k_idx]
        is_cens = self.event == 0
        pos = np.searchsorted(u, self.time[is_cens])
        term[is_cens] += jump[pos]
        return term


# ------------------------------------------------------------------------------------------ concordance
def _pair_counts(time, event, risk, weight_at_event):
    """Per-subject weighted counts of concordant / discordant / tied-risk comparable pairs.

    A pair (i, j) is comparable when i has an event and T_j > T_i, or T_j == T_i with j censored
    (survival::concordance convention).  Higher ``risk`` should mean earlier event.
    """
    n = len(time)
    conc = np.zeros(n)
    disc = np.zeros(n)
    tied = np.zeros(n)
    ev_idx = np.flatnonzero(event == 1)
    # process events in chunks to bound memory (O(n * chunk))
    chunk = max(1, int(4_000_000 // max(n, 1)))
    for start in range(0, len(ev_idx), chunk):
        ii = ev_idx[start:start + chunk]
        ti, ri, wi = time[ii][:, None], risk[ii][:, None], weight_at_event[ii][:, None]
        comp = (time[None, :] > ti) | ((time[None, :] == ti) & (event[None, :] == 0))
        c = comp & (ri > risk[None, :])
        d = comp & (ri < risk[None, :])
        tx = comp & (ri == risk[None, :])
        cw, dw, tw = c * wi, d * wi, tx * wi
        conc[ii] += cw.sum(1)
        disc[ii] += dw.sum(1)
        tied[ii] += tw.sum(1)
        conc += cw.sum(0)
        disc += dw.sum(0)
        tied += tw.sum(0)
    # each pair was added to both members
    return conc, disc, tied


def concordance_index(time, event=None, risk=None, timewt: str = "n", conf_level: float = 0.95, *,
                      data: pd.DataFrame | None = None, engine: str = "auto") -> pd.DataFrame:
    """Harrell's (``timewt="n"``) or Uno's (``timewt="n/G2"``) C with infinitesimal-jackknife SE.

    ``risk``: higher = shorter survival.  Tied risks count 1/2; pairs tied on event time are not
    comparable.  Uno's weight for a pair anchored at event time T_i is 1/G(T_i-)^2 (reverse KM),
    exactly as ``survival::concordance(..., timewt="n/G2")`` (R twin ``ps_r_concordance``); CI is Wald
    on the C scale. The ``method`` column names the estimator: "Harrell" or "Uno (n/G2)".
    """
    y, risk = outcome_and(time, event, risk, data=data, what="the concordance index")
    time, event = y
    risk = as_float_array(risk, "risk")
    same_length(len(time), ref=y.time_name, risk=risk)
    if timewt not in ("n", "n/G2", "uno"):
        raise ValueError(f"timewt must be 'n' (Harrell) or 'n/G2' (Uno), got {timewt!r}")
    if _r_engine(engine, ("survival",)):
        out = _call_r("ps_r_concordance", time=time, event=event, risk=risk,
                      timewt="n" if timewt == "n" else "n/G2", conf_level=conf_level)
        return _tidy(out.to_dict("records"))
    if timewt == "n":
        w = np.ones(len(time))
        method = "Harrell"
    else:
        km = CensoringKM(time, event)
        g = km.G_minus(time)
        w = np.where(event == 1, 1.0 / np.maximum(g, 1e-300) ** 2, 0.0)
        method = "Uno (n/G2)"
    conc, disc, tied = _pair_counts(time, event, risk, w)
    C_, D_, T_ = conc.sum() / 2, disc.sum() / 2, tied.sum() / 2
    npair = C_ + D_ + T_
    if npair == 0:
        raise ValueError("no comparable pairs: concordance is undefined")
    somer = (C_ - D_) / npair
    dfbeta = (conc - disc) / npair - somer / npair * (conc + disc + tied)
    se = float(np.sqrt(np.sum(dfbeta ** 2) / 4))
    est = (somer + 1) / 2
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    return _tidy([dict(metric="C-index", estimate=est, se=se, lower=est - z * se, upper=est + z * se,
                       method=method, engine="python", concordant=C_, discordant=D_, tied_risk=T_)])


# ------------------------------------------------------------------------------- time-dependent AUC(t)
def _auc_t_single(time, event, risk, t, km: CensoringKM):
    n = len(time)
    cases = (time <= t) & (event == 1)
    ctrls = time > t
    if cases.sum() == 0 or ctrls.sum() == 0:
        raise ValueError(f"AUC at time {t:g}: no {'cases' if cases.sum() == 0 else 'controls'} "
                         f"(the time is before the first event or beyond the follow-up)")
    W = np.zeros(n)
    W[cases] = 1.0 / km.G_minus(time[cases])
    Gt = float(km.G(t))
    V = np.where(ctrls, 1.0 / Gt, 0.0)
    rc, rk = risk[ctrls], risk[cases]
    rc_s = np.sort(rc)
    below = np.searchsorted(rc_s, rk, side="left")
    equal = np.searchsorted(rc_s, rk, side="right") - below
    per_case = (below + 0.5 * equal) / Gt                 # sum_j V_j h_ij
    ordk = np.argsort(rk)
    rk_s, wk_s = rk[ordk], W[cases][ordk]
    cw = np.concatenate([[0.0], np.cumsum(wk_s)])
    lo = np.searchsorted(rk_s, rc, side="left")
    hi = np.searchsorted(rk_s, rc, side="right")
    per_ctrl = (cw[-1] - cw[hi]) + 0.5 * (cw[hi] - cw[lo])  # sum_i W_i h_ij
    A = np.sum(W[cases] * per_case) / n ** 2
    F = W.sum() / n
    S = V.sum() / n
    auc = A / (F * S)
    # influence function (Blanche et al. 2013, KM censoring)
    ifa = -2 * A * np.ones(n)
    ifa[cases] += W[cases] * per_case / n
    ifa[ctrls] += per_ctrl / Gt / n
    IF = ifa / (F * S) - auc * ((W - F) / F + (V - S) / S)
    a_case = np.zeros(n)
    a_case[cases] = W[cases] * per_case / n / (F * S) - auc * W[cases] / F
    IF += km.censoring_if_term(a_case, 0.0, t)
    se = float(np.std(IF, ddof=1) / np.sqrt(n))
    return auc, se, IF


def time_dependent_auc(time, event=None, risk=None, times: Iterable[float] = (), conf_level: float = 0.95, *,
                       data: pd.DataFrame | None = None, engine: str = "auto") -> pd.DataFrame:
    """Cumulative/dynamic AUC(t) with IPCW (Kaplan-Meier censoring weights) and IF-based Wald CI.

    Cases: T <= t with an event, weight 1/G(T-); controls: T > t, weight 1/G(t); tied risks count 1/2.
    ``risk``: shape (n,) (one marker for all times) or (n, len(times)) (predicted risk at each time).
    Identical to ``riskRegression::Score(metrics="auc", cens.model="km")`` (estimate and se).
    ``sksurv.metrics.cumulative_dynamic_auc`` weights cases by G(T) instead of G(T-), so it differs
    (by ~1e-5 on gbsg2) when censorings tie with event times and agrees exactly otherwise.
    ``times`` must be strictly increasing and before the last follow-up time. R twin:
    ``ps_r_score_survival(metrics = "auc")``.
    """
    y, risk = outcome_and(time, event, risk, data=data, what="AUC(t)")
    time, event = y
    times = [float(t) for t in check_times(times)]
    check_horizon(times, time, what="AUC(t)")
    rm = as_risk_matrix(risk, len(time), times, "risk")
    if _r_engine(engine, ("survival", "riskRegression")):
        out = _call_r("ps_r_score_survival", time=time, event=event, risks={"m": pd.DataFrame(rm)},
                      times=np.asarray(times), metrics="auc", conf_level=conf_level)
        return _tidy(out.drop(columns="model").to_dict("records"))
    km = CensoringKM(time, event)
    z = float(stats.norm.ppf(0.5 + conf_level / 2))
    rows = []
    for k, t in enumerate(times):
        auc, se, _ = _auc_t_single(time, event, rm[:, k], t, km)
        rows.append(dict(metric="AUC(t)", time=t, estimate=auc, se=se, lower=auc - z * se,
                         upper=auc + z * se, method="IPCW cumulative/dynamic (KM censoring)",
                         engine="python"))
    return _tidy(rows)
