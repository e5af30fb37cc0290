"""The responder paradox: crossing PRIME-R (predicted response) with PRIME-S (survival risk), the
observed-response landmark analysis, and the tests whose null a random PRIME-R satisfies.

Patients are placed in four quadrants by two cut-offs that are frozen on the training data and
never re-estimated on the evaluation cohort: the PRIME-R probability threshold (predicted
responder if ``probability >= response_threshold``; by default Youden's J on the training ROC
curve) and the PRIME-S risk cut-off (high risk if ``risk > risk_threshold``; by default the
training median, as :class:`prime_stats.evaluation.survival.MedianRiskStratifier`).

Per quadrant: counts, observed 3-month response rate (Wilson 95% CI), Kaplan-Meier curves and
medians; across quadrants the k-sample log-rank test; and the Cox hazard ratio of
"responder / high risk" against "responder / low risk" (the paradox: predicted responders whose
systemic biology still predicts early death). That HR only measures PRIME-S among predicted
responders: it is as large with a PRIME-R that guesses at random. The claims are therefore tested by

- :func:`landmark_response`: the 3-month landmark analysis of *observed* response on OS;
- :func:`response_risk_correlation`: Spearman's rho between the PRIME-R probability and the PRIME-S
  risk with a Fisher-z CI;
- :func:`divergence_test`: the Cox interaction of PRIME-S risk x predicted response and the predicted
  response adjusted for PRIME-S risk, whose nulls hold for any PRIME-R independent of survival.

Every table names its split.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve
from statsmodels.stats.proportion import proportion_confint

from prime_stats.evaluation import survival as surv
from prime_stats.evaluation._survcore import fit_cox

LANDMARK_DAYS = 3 * 30.4375     # the 3-month response assessment

QUADRANTS = ("responder/low risk", "responder/high risk",
             "non-responder/low risk", "non-responder/high risk")

__all__ = ["QUADRANTS", "LANDMARK_DAYS", "ParadoxThresholds", "freeze_thresholds", "assign_quadrants",
           "ParadoxResult", "responder_paradox", "landmark_response", "response_risk_correlation",
           "divergence_test"]


@dataclass(frozen=True)
class ParadoxThresholds:
    """Cut-offs frozen on the training data."""

    response_threshold: float
    risk_threshold: float
    response_rule: str
    risk_rule: str


def _vector(x, name: str) -> np.ndarray:
    v = np.asarray(x, dtype=float).ravel()
    if not np.isfinite(v).all():
        raise ValueError(f"{name} has {int((~np.isfinite(v)).sum())} missing/infinite value(s) at "
                         f"position(s) {np.flatnonzero(~np.isfinite(v))[:5].tolist()}")
    return v


def freeze_thresholds(train_probability, train_response, train_risk, *,
                      response_rule: str | float = "youden", risk_quantile: float = 0.5) -> ParadoxThresholds:
    """Freeze the two cut-offs on training predictions (out-of-fold predictions recommended).

    ``response_rule``: "youden" (threshold maximising sensitivity + specificity - 1 on the
    training ROC curve) or a fixed probability (e.g. 0.5). The risk cut-off is the
    ``risk_quantile`` quantile of the training risk scores (median by default).
    """
    p = _vector(train_probability, "train_probability")
    y = _vector(train_response, "train_response")
    r = _vector(train_risk, "train_risk")
    if not (len(p) == len(y)):
        raise ValueError(f"train_probability ({len(p)}) and train_response ({len(y)}) differ in length")
    if response_rule == "youden":
        if set(np.unique(y)) != {0.0, 1.0}:
            raise ValueError("train_response must contain both 0 and 1 to set a Youden threshold")
        fpr, tpr, thr = roc_curve(y, p)
        j = tpr - fpr
        k = int(np.argmax(j[1:])) + 1  # skip the +inf threshold
        thr_resp, rule = float(thr[k]), "Youden J on training ROC"
    else:
        thr_resp = float(response_rule)
        if not 0 < thr_resp < 1:
            raise ValueError(f"a fixed response threshold must lie in (0, 1), got {thr_resp}")
        rule = f"fixed probability {thr_resp:g}"
    strat = surv.MedianRiskStratifier(quantile=risk_quantile).fit(r)
    return ParadoxThresholds(thr_resp, strat.cutoff_, rule,
                             f"training {'median' if risk_quantile == 0.5 else f'{risk_quantile:g} quantile'} risk")


def assign_quadrants(probability, risk, thresholds: ParadoxThresholds) -> np.ndarray:
    """Quadrant label per patient from frozen thresholds (no look at the evaluation outcomes)."""
    p = _vector(probability, "probability")
    r = _vector(risk, "risk")
    if len(p) != len(r):
        raise ValueError(f"probability ({len(p)}) and risk ({len(r)}) differ in length")
    resp = np.where(p >= thresholds.response_threshold, "responder", "non-responder")
    high = np.where(r > thresholds.risk_threshold, "high risk", "low risk")
    return np.char.add(np.char.add(resp.astype(str), "/"), high.astype(str))


@dataclass
class ParadoxResult:
    """Quadrant analysis: per-patient ``data``, the ``table`` of counts and response rates,
    Kaplan-Meier ``km``, the ``logrank`` table and the paradox ``hazard_ratio``."""

    data: pd.DataFrame
    table: pd.DataFrame
    km: surv.KaplanMeierResult
    logrank: pd.DataFrame
    hazard_ratio: pd.DataFrame
    thresholds: ParadoxThresholds


def responder_paradox(probability, risk, response, os_days, os_event, *,
                      thresholds: ParadoxThresholds, patient_id=None,
                      km_times=(180.0, 365.0, 730.0, 1095.0), conf_level: float = 0.95,
                      engine: str = "python") -> ParadoxResult:
    """Four-quadrant analysis of PRIME-R x PRIME-S on one evaluation cohort.

    ``table`` columns: quadrant, n, responders, response_rate, lower, upper (Wilson CI),
    events, median_os, method. ``hazard_ratio``: Cox HR (Efron ties, Wald CI) of
    "responder/high risk" vs "responder/low risk" (estimate, lower, upper, p, n, events).
    ``engine`` is passed to the survival helpers ("auto", "python" or "R").
    """
    p, r = _vector(probability, "probability"), _vector(risk, "risk")
    y = _vector(response, "response")
    t, e = _vector(os_days, "os_days"), _vector(os_event, "os_event")
    n = len(p)
    for name, v in (("risk", r), ("response", y), ("os_days", t), ("os_event", e)):
        if len(v) != n:
            raise ValueError(f"{name} has {len(v)} values but probability has {n}")
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise ValueError("response must be coded 0/1")
    ids = np.asarray(patient_id) if patient_id is not None else np.arange(n).astype(str)
    data = pd.DataFrame({"patient_id": ids, "probability": p, "risk": r, "response": y.astype(int),
                         "os_days": t, "os_event": e.astype(int),
                         "quadrant": assign_quadrants(p, r, thresholds)})
    data["quadrant"] = pd.Categorical(data["quadrant"], categories=list(QUADRANTS))

    km = surv.kaplan_meier("os_days", "os_event", "quadrant", data=data.assign(quadrant=data["quadrant"].astype(str)),
                           times=km_times, conf_level=conf_level, engine=engine)
    km_summary = km.medians.set_index("group")
    rows = []
    for q in QUADRANTS:
        d = data[data["quadrant"] == q]
        k = int(d["response"].sum())
        lo, up = proportion_confint(k, len(d), alpha=1 - conf_level, method="wilson") if len(d) else (np.nan, np.nan)
        rows.append({"quadrant": q, "n": len(d), "responders": k,
                     "response_rate": k / len(d) if len(d) else np.nan, "lower": lo, "upper": up,
                     "events": int(d["os_event"].sum()),
                     "median_os": km_summary["median"].get(q, np.nan)})
    table = pd.DataFrame(rows)
    table["method"] = f"observed response rate, Wilson {conf_level:.0%} CI; KM median OS"

    present = data["quadrant"].astype(str)
    logrank = surv.logrank_test("os_days", "os_event", "quadrant", data=data.assign(quadrant=present),
                                engine=engine)

    resp = data[present.str.startswith("responder/")]
    groups = resp["quadrant"].astype(str)
    if groups.nunique() < 2 or resp["os_event"].sum() == 0:
        raise ValueError("the paradox HR needs predicted responders in both risk groups and at least "
                         f"one death among them; counts: {groups.value_counts().to_dict()}")
    hr = surv.cox_hazard_ratios("os_days", "os_event", ["high_risk"],
                                data=resp.assign(high_risk=(groups == "responder/high risk").astype(int)),
                                conf_level=conf_level, engine=engine)
    hr = hr.assign(contrast="responder/high risk vs responder/low risk")
    return ParadoxResult(data=data, table=table, km=km, logrank=logrank, hazard_ratio=hr,
                         thresholds=thresholds)


def _lengths(n: int, **vectors):
    for name, v in vectors.items():
        if len(v) != n:
            raise ValueError(f"{name} has {len(v)} values but the first argument has {n}")


def landmark_response(response, os_days, os_event, *, split: str, landmark: float = LANDMARK_DAYS,
                      conf_level: float = 0.95, engine: str = "python") -> pd.DataFrame:
    """Landmark analysis of observed response on overall survival (Anderson, Cain & Gelber 1983).

    Patients alive and under follow-up at ``landmark`` days (``os_days > landmark``) are kept, time
    is counted from the landmark, and the Cox HR (Efron ties, Wald CI) of observed responder vs
    non-responder is estimated: R twin ``coxph(Surv(os_days - landmark, os_event) ~ response,
    data = subset(d, os_days > landmark))``. Deaths and censorings before the landmark are counted.
    One row: split, landmark_days, n, died_before, censored_before, n_landmark, responders, events,
    estimate, lower, upper, p, term, method, engine.
    """
    y = _vector(response, "response")
    t, e = _vector(os_days, "os_days"), _vector(os_event, "os_event")
    _lengths(len(y), os_days=t, os_event=e)
    if not set(np.unique(y)) <= {0.0, 1.0}:
        raise ValueError("response must be coded 0/1")
    keep = t > landmark
    d = pd.DataFrame({"time": t[keep] - landmark, "event": e[keep].astype(int), "responder": y[keep].astype(int)})
    if d["responder"].nunique() < 2 or d["event"].sum() == 0:
        raise ValueError(f"{split}: the landmark analysis needs responders and non-responders alive at "
                         f"{landmark:g} days and at least one later death (n = {len(d)}, "
                         f"deaths = {int(d['event'].sum())})")
    hr = surv.cox_hazard_ratios("time", "event", ["responder"], data=d, conf_level=conf_level, id_col=None,
                                engine=engine).iloc[0]
    return pd.DataFrame([{
        "split": split, "landmark_days": landmark, "n": len(t),
        "died_before": int(((~keep) & (e == 1)).sum()), "censored_before": int(((~keep) & (e == 0)).sum()),
        "n_landmark": len(d), "responders": int(d["responder"].sum()), "events": int(d["event"].sum()),
        "estimate": hr["estimate"], "lower": hr["lower"], "upper": hr["upper"], "p": hr["p"],
        "term": "observed responder vs non-responder",
        "method": f"{landmark:g}-day landmark, time from landmark; {hr['method']}", "engine": hr["engine"]}])


def response_risk_correlation(probability, risk, *, split: str, predictions: str = "frozen model",
                              conf_level: float = 0.95) -> pd.DataFrame:
    """Spearman's rho between the PRIME-R probability and the PRIME-S risk score, with the Fisher-z
    CI of Fieller, Hartley & Pearson (1957), var(atanh rho) = 1.06 / (n - 3), and the t-approximation
    p (R ``cor.test(method = "spearman", exact = FALSE)``). A negative rho: predicted responders tend
    to have a lower predicted risk. One row: split, predictions, n, estimate, lower, upper, p, method."""
    from scipy import stats

    p, r = _vector(probability, "probability"), _vector(risk, "risk")
    _lengths(len(p), risk=r)
    n = len(p)
    if n < 5:
        raise ValueError(f"{split}: the correlation needs at least 5 patients, got {n}")
    rho, pval = stats.spearmanr(p, r)
    z, half = np.arctanh(rho), stats.norm.ppf(0.5 + conf_level / 2) * np.sqrt(1.06 / (n - 3))
    return pd.DataFrame([{"split": split, "predictions": predictions, "n": n, "estimate": float(rho),
                          "lower": float(np.tanh(z - half)), "upper": float(np.tanh(z + half)), "p": float(pval),
                          "method": f"Spearman rho (PRIME-R probability vs PRIME-S risk), Fisher-z "
                                    f"{conf_level:.0%} CI with variance 1.06/(n-3)"}])


def divergence_test(probability, risk, os_days, os_event, *, thresholds: ParadoxThresholds, split: str,
                    predictions: str = "frozen model", conf_level: float = 0.95) -> pd.DataFrame:
    """Does predicted response change what PRIME-S says about survival, or add to it?

    Two Cox models (Efron ties, Wald tests; R twin ``coxph(Surv(t, e) ~ z * R)`` and ``~ z + R``) with
    z = the PRIME-S risk centred at the frozen training cut-off, per SD in this split, and R = predicted
    responder (frozen threshold). Rows: the PRIME-S HR per SD among predicted non-responders and among
    predicted responders (exp(b_z + b_zR), SE from the covariance), their ratio (the interaction: the
    divergence test) and predicted response adjusted for PRIME-S risk (additive model). If PRIME-R is
    independent of survival (e.g. random), R is independent of (z, T) and both ``b_zR`` and the
    adjusted ``b_R`` are 0: those two rows are the tests (column ``test``); the within-group HRs are
    descriptive ("descriptive"). Columns: split, predictions, term, estimate, lower, upper, p, test, n, events,
    responders, method, engine.
    """
    from scipy import stats

    p, r = _vector(probability, "probability"), _vector(risk, "risk")
    t, e = _vector(os_days, "os_days"), _vector(os_event, "os_event")
    _lengths(len(p), risk=r, os_days=t, os_event=e)
    resp = (p >= thresholds.response_threshold).astype(float)
    sd = r.std(ddof=1)
    if not 0 < resp.sum() < len(resp) or not sd > 0 or e.sum() < 3:
        raise ValueError(f"{split}: the divergence test needs predicted responders and non-responders, a "
                         f"non-constant risk and >= 3 deaths ({int(resp.sum())} of {len(resp)} predicted "
                         f"responders, {int(e.sum())} deaths)")
    z = (r - thresholds.risk_threshold) / sd
    q = stats.norm.ppf(0.5 + conf_level / 2)
    full = fit_cox(np.column_stack([z, resp, z * resp]), t, e, ties="efron")
    add = fit_cox(np.column_stack([z, resp]), t, e, ties="efron")
    L = {"PRIME-S HR per SD, predicted non-responders": ([1, 0, 0], full, "descriptive"),
         "PRIME-S HR per SD, predicted responders": ([1, 0, 1], full, "descriptive"),
         "risk x predicted response (ratio of the two HRs)": ([0, 0, 1], full, "divergence"),
         "predicted responder, adjusted for PRIME-S risk": ([0, 1], add, "added value")}
    rows = []
    for term, (w, fit, test) in L.items():
        w = np.asarray(w, float)
        b, se = float(w @ fit.coef), float(np.sqrt(w @ fit.cov @ w))
        rows.append({"split": split, "predictions": predictions, "term": term, "estimate": np.exp(b),
                     "lower": np.exp(b - q * se), "upper": np.exp(b + q * se),
                     "p": float(2 * stats.norm.sf(abs(b / se))), "test": test, "n": len(t),
                     "events": int(e.sum()), "responders": int(resp.sum())})
    out = pd.DataFrame(rows)
    out["method"] = (f"Cox PH (Efron), OS ~ z*R and OS ~ z + R; z = PRIME-S risk centred at the training "
                     f"cut-off, per SD ({sd:.3g}); R = PRIME-R >= {thresholds.response_threshold:.3f}; "
                     f"Wald {conf_level:.0%} CI")
    out["engine"] = "python"
    return out
