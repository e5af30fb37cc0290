"""Validate prime-stats discrimination, overall performance, calibration and decision curves.

Every statistic of ``evaluation/discrimination.py``, ``overall.py``, ``calibration.py`` and
``decision.py`` is computed on real public data and compared with the reference implementation run in
the same process: pROC (AUC, DeLong test), survival::concordance (Harrell, Uno), riskRegression::Score
(AUC(t), Brier, IPA), pec::crps (integrated Brier), rms::val.prob (binary calibration), survival::coxph +
Hmisc::rcspline.eval + basehaz (survival calibration, Austin et al. 2020) and the Python dcurves package
(net benefit).  Data: survival's pbc (development 1-200 -> validation 201-416), lung, rotterdam ->
gbsg (external validation), lifelines' Rossi, scikit-learn's breast cancer, dcurves' example data.
Writes ``validation/results/discrimination_calibration.md``.

    .venv/bin/python validation/validate_discrimination_calibration.py
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from prime_stats import rbridge
from prime_stats.evaluation import calibration as cal
from prime_stats.evaluation import decision as dec
from prime_stats.evaluation import discrimination as disc
from prime_stats.evaluation import overall as ov

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "validation" / "results" / "discrimination_calibration.md"
EXACT = 1e-6
ROWS: list[dict] = []
_TMP = Path(tempfile.mkdtemp(prefix="ps_validate_"))


def add(statistic, dataset, value, reference, source, tol=EXACT, note=""):
    v_all = np.atleast_1d(np.asarray(value, dtype=float))
    r_all = np.atleast_1d(np.asarray(reference, dtype=float))
    for i, (v, r) in enumerate(zip(v_all, r_all)):
        both_nan = np.isnan(v) and np.isnan(r)
        diff = 0.0 if both_nan else abs(v - r)
        ROWS.append({"statistic": statistic if v_all.size == 1 else f"{statistic} [{i + 1}]",
                     "data set": dataset, "prime-stats": v, "reference": r, "|difference|": diff,
                     "tolerance": tol, "pass": bool(diff <= tol), "reference source": source, "note": note})


def r_setup():
    rbridge.run_r(f'invisible(sys.source("{ROOT / "R" / "stats_validation.R"}", envir = globalenv()))')


def to_r(name: str, df: pd.DataFrame) -> None:
    """Send a data frame to R's global environment (full double precision)."""
    path = _TMP / f"{name}.csv"
    df.to_csv(path, index=False, float_format="%.17g")
    rbridge.run_r(f'{name} <- utils::read.csv("{path}"); invisible(NULL)')


def r_df(code: str) -> pd.DataFrame:
    return rbridge.run_r(code)


# ------------------------------------------------------------------------------------------ data
def survival_sets() -> dict[str, dict]:
    """Predicted risks at 4 horizons from Cox models, computed in R (riskRegression::predictRisk)."""
    sets = {}
    r_df("""suppressMessages({library(survival); library(riskRegression)}); invisible(NULL)""")
    d = r_df("""local({
      d <- pbc[!is.na(pbc$protime) & !is.na(pbc$albumin), ]; d$ev <- as.integer(d$status == 2)
      dev <- d[1:200, ]; val <- d[201:nrow(d), ]
      f <- coxph(Surv(time, ev) ~ log(bili) + albumin + age + log(protime), data = dev, x = TRUE)
      data.frame(time = val$time, event = val$ev, lp = predict(f, newdata = val),
                 R = predictRisk(f, newdata = val, times = c(365, 730, 1095, 1825)))})""")
    sets["pbc (dev 1-200 -> val 201-416)"] = dict(df=d, times=[365.0, 730.0, 1095.0, 1825.0])
    d = r_df("""local({
      d <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog")]); d$ev <- d$status - 1
      f <- coxph(Surv(time, ev) ~ age + sex + ph.ecog, data = d, x = TRUE)
      data.frame(time = d$time, event = d$ev, lp = predict(f),
                 R = predictRisk(f, newdata = d, times = c(180, 365, 540)))})""")
    sets["lung (apparent)"] = dict(df=d, times=[180.0, 365.0, 540.0])
    d = r_df("""local({
      r <- rotterdam; r$rfs <- pmax(r$recur, r$death); r$rfstime <- ifelse(r$recur == 1, r$rtime, r$dtime)
      f <- coxph(Surv(rfstime, rfs) ~ age + meno + size + grade + pmin(nodes, 20) + log1p(pgr) + log1p(er) + hormon,
                 data = r, x = TRUE)
      g <- gbsg; g$size <- cut(g$size, c(-Inf, 20, 50, Inf), labels = levels(r$size))
      data.frame(time = g$rfstime, event = g$status, lp = predict(f, newdata = g),
                 R = predictRisk(f, newdata = g, times = c(365, 730, 1095, 1825)))})""")
    sets["rotterdam -> gbsg (external)"] = dict(df=d, times=[365.0, 730.0, 1095.0, 1825.0])
    from lifelines.datasets import load_rossi
    r = load_rossi()
    lp = (0.09 * r.prio - 0.06 * (r.age - 25)).to_numpy()
    R = np.round(np.column_stack([1 - np.exp(-0.25 * (t / 52) * np.exp(lp)) for t in (13, 26, 39, 48)]), 10)
    d = pd.DataFrame({"time": r.week.astype(float), "event": r.arrest, "lp": lp,
                      **{f"R.{k + 1}": R[:, k] for k in range(4)}})
    sets["Rossi (fixed risk formula)"] = dict(df=d, times=[13.0, 26.0, 39.0, 48.0])
    return sets


def validate_survival(name: str, spec: dict) -> None:
    d, times = spec["df"], spec["times"]
    t, e, lp = d.time.to_numpy(float), d.event.to_numpy(int), d.lp.to_numpy(float)
    R = d[[c for c in d.columns if c.startswith("R.")]].to_numpy(float)
    to_r("vd", pd.DataFrame({"time": t, "event": e, "lp": lp, **{f"R{k}": R[:, k] for k in range(R.shape[1])}}))
    tv = "c(" + ", ".join(f"{x:g}" for x in times) + ")"
    for tw, label in (("n", "Harrell C"), ("n/G2", "Uno C")):
        mine = disc.concordance_index(t, e, lp, tw, engine="python").iloc[0]
        ref = r_df(f'local({{cc <- survival::concordance(survival::Surv(time, event) ~ lp, data = vd, '
                   f'reverse = TRUE, timewt = "{tw}"); c(cc$concordance, sqrt(cc$var))}})')
        add(label, name, mine.estimate, ref[0], "survival::concordance")
        add(f"{label} se (IJ)", name, mine.se, ref[1], "survival::concordance")
    Rm = f"as.matrix(vd[, paste0('R', 0:{R.shape[1] - 1})])"
    sc = r_df(f"""local({{s <- riskRegression::Score(list(m = {Rm}), formula = .ps_val_surv_formula(), data = vd,
                 times = {tv}, metrics = c("auc", "brier"), summary = "ipa", cens.model = "km")
                 b <- as.data.frame(s$Brier$score); b <- b[b$model == "m", ]; a <- as.data.frame(s$AUC$score)
                 data.frame(auc = a$AUC, auc_se = a$se, brier = b$Brier, brier_se = b$se, ipa = b$IPA)}})""")
    auc = disc.time_dependent_auc(t, e, R, times, engine="python")
    add("AUC(t)", name, auc.estimate, sc.auc, "riskRegression::Score")
    add("AUC(t) se (IF)", name, auc.se, sc.auc_se, "riskRegression::Score")
    bs = ov.brier_survival(t, e, R, times, engine="python")
    add("Brier(t)", name, bs[bs.metric == "Brier"].estimate, sc.brier, "riskRegression::Score")
    add("Brier(t) se (IF)", name, bs[bs.metric == "Brier"].se, sc.brier_se, "riskRegression::Score")
    add("IPA(t)", name, bs[bs.metric == "IPA"].estimate, sc.ipa, "riskRegression::Score")
    ibs_ref = rbridge.run_r(f"ps_r_ibs(vd$time, vd$event, {Rm}, {tv})$estimate")
    add("IBS (left Riemann)", name, ov.integrated_brier_score(t, e, R, times, engine="python").estimate.iloc[0],
        ibs_ref, "pec::crps")
    Rc = np.clip(R, 1e-9, 1 - 1e-9)
    to_r("vc", pd.DataFrame({"time": t, "event": e, **{f"R{k}": Rc[:, k] for k in range(R.shape[1])}}))
    r_ties = ", ties = 'breslow'" if rbridge.r_function_has_argument("ps_r_calibration_survival", "ties") else ""
    for k, h in enumerate(times):
        mine = cal.calibration_survival(t, e, Rc[:, k], h, ties="breslow", engine="python").set_index("metric")
        ref = r_df(f"ps_r_calibration_survival(vc$time, vc$event, vc$R{k}, {h:g}{r_ties})").set_index("metric")
        for m in ("O/E", "slope", "ICI", "E50", "E90"):
            add(f"calibration {m} at t={h:g}" + (" (Breslow ties)" if m == "slope" else ""), name,
                mine.loc[m, "estimate"], ref.loc[m, "estimate"],
                "survival::coxph/basehaz + Hmisc::rcspline.eval" if m not in ("O/E",) else "survival::survfit",
                note="risks clipped to [1e-9, 1-1e-9]" if (R != Rc).any() else "")
        # the slope's tie method (issue 13 item 6): Efron is the default, as survival::coxph's
        efron = cal.calibration_survival(t, e, Rc[:, k], h, engine="python").set_index("metric").loc["slope"]
        cox = r_df(f"""local({{cll <- log(-log1p(-vc$R{k})); f <- survival::coxph(survival::Surv(vc$time, vc$event) ~
                   cll); c(coef(f), sqrt(vcov(f)))}})""")
        cox = np.asarray(cox, dtype=float)
        add(f"calibration slope at t={h:g} (Efron ties, default)", name, efron.estimate, cox[0],
            "survival::coxph(ties = 'efron')", tol=1e-7, note="coxph stops at eps = 1e-9")
        add(f"calibration slope se at t={h:g} (Efron ties)", name, efron.se, cox[1],
            "survival::coxph(ties = 'efron')", tol=1e-7)
        add(f"|slope Efron - slope Breslow| at t={h:g}", name, abs(efron.estimate - mine.loc["slope", "estimate"]),
            abs(cox[0] - ref.loc["slope", "estimate"]), "coxph Efron vs Breslow", tol=1e-7,
            note="size of the tie correction on these data")


def validate_binary() -> None:
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    tr, te = np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1
    feats = {"shape (radius, concavity)": ["mean radius", "mean concavity", "worst perimeter"],
             "texture (texture, smoothness)": ["mean texture", "mean smoothness", "worst texture"]}
    preds = {}
    for k, cols in feats.items():
        m = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=5000)).fit(X.loc[tr, cols], y[tr])
        preds[k] = m.predict_proba(X.loc[te, cols])[:, 1]
    yt = y[te].to_numpy()
    name = "breast cancer (even -> odd rows)"
    to_r("vb", pd.DataFrame({"y": yt, "p1": preds[list(feats)[0]], "p2": preds[list(feats)[1]]}))
    for i, (k, p) in enumerate(preds.items(), start=1):
        mine = disc.auc_delong(yt, p, engine="python").iloc[0]
        ref = r_df(f"ps_r_auc(vb$y, vb$p{i})")
        for col in ("estimate", "se", "lower", "upper"):
            add(f"AUC {col} ({k})", name, mine[col], ref[col].iloc[0], "pROC::ci.auc (DeLong)")
        b = ov.brier_binary(yt, p, engine="python").set_index("metric")
        refb = r_df(f"ps_r_score_binary(vb$y, list(m = vb$p{i}))").set_index("metric")
        add(f"Brier ({k})", name, b.loc["Brier", "estimate"], refb.loc["Brier", "estimate"], "riskRegression::Score")
        add(f"IPA ({k})", name, b.loc["IPA", "estimate"], refb.loc["IPA", "estimate"], "riskRegression::Score")
        c = cal.calibration_binary(yt, p, engine="python").set_index("metric")
        refc = r_df(f"ps_r_val_prob(vb$y, vb$p{i})").set_index("metric")
        for m in ("CITL", "intercept", "slope"):
            add(f"{m} ({k})", name, c.loc[m, "estimate"], refc.loc[m, "estimate"],
                "glm offset" if m == "CITL" else "rms::val.prob",
                note="" if m == "CITL" else "iterative ML fit (lrm.fit vs IRLS) converges to ~1e-7")
        for m in ("Eavg", "E90", "Emax"):
            add(f"{m} ({k})", name, c.loc[m, "estimate"], refc.loc[m, "estimate"], "rms::val.prob",
                note="lowess: statsmodels vs R's clowess")
    t1 = disc.delong_test(yt, *preds.values(), engine="python").iloc[0]
    ref = r_df("ps_r_roc_test(vb$y, vb$p1, vb$p2)")
    add("DeLong test z", name, t1.statistic, ref.statistic.iloc[0], "pROC::roc.test")
    add("DeLong test p", name, t1.p_value, ref.p_value.iloc[0], "pROC::roc.test")


def validate_decision() -> None:
    import dcurves

    th = np.round(np.arange(0.0, 1.0, 0.01), 2)
    b = pd.read_csv(os.path.join(dcurves.data, "df_binary.csv"))
    # the raw 'marker' is turned into a probability here (logistic regression on the same data) and
    # given to both packages: dcurves 1.1.7's own models_to_prob on this boolean outcome returns
    # P(cancer = FALSE) (patsy takes FALSE as the first level), so it is not used
    import statsmodels.api as sm
    fit = sm.GLM(b.cancer.astype(float), sm.add_constant(b.marker), family=sm.families.Binomial()).fit()
    b = b.assign(marker_prob=fit.predict(sm.add_constant(b.marker)).to_numpy())
    models = ["cancerpredmarker", "marker_prob", "famhistory"]
    ref = dcurves.dca(data=b, outcome="cancer", modelnames=models, thresholds=th)
    mine = dec.net_benefit(b.cancer.astype(int), {k: b[k].astype(float) for k in models}, th, engine="python")
    m = ref.merge(mine, on=["model", "threshold"], suffixes=("_ref", ""))
    add("net benefit, 100 thresholds x 5 strategies (max abs diff)", "dcurves df_binary",
        np.nanmax(np.abs(m.net_benefit - m.net_benefit_ref.astype(float))), 0.0, "dcurves.dca", tol=1e-12)
    pos = m.threshold > 0
    add("interventions avoided (max abs diff)", "dcurves df_binary",
        np.nanmax(np.abs(m.interventions_avoided[pos] - m.net_intervention_avoided[pos].astype(float))), 0.0,
        "dcurves.dca", tol=1e-10)
    s = pd.read_csv(os.path.join(dcurves.data, "df_surv.csv"))
    ref = dcurves.dca(data=s, outcome="cancer", modelnames=["cancerpredmarker"], thresholds=th, time=1.5,
                      time_to_outcome_col="ttcancer")
    mine = dec.net_benefit_survival(s.ttcancer, s.cancer.astype(int), {"cancerpredmarker": s.cancerpredmarker},
                                    1.5, th, engine="python")
    m = ref.merge(mine, on=["model", "threshold"], suffixes=("_ref", ""))
    add("survival net benefit at t=1.5 (max abs diff)", "dcurves df_surv",
        np.nanmax(np.abs(m.net_benefit - m.net_benefit_ref.astype(float))), 0.0, "dcurves.dca", tol=1e-12)
    add("survival net benefit: thresholds with undefined NB (NaN) agree", "dcurves df_surv",
        float((m.net_benefit.isna() != m.net_benefit_ref.isna()).sum()), 0.0, "dcurves.dca", tol=0)
    to_r("vs", s.assign(cancer=s.cancer.astype(int))[["ttcancer", "cancer", "cancerpredmarker"]])
    rn = r_df("ps_r_net_benefit(vs$cancer, vs$cancerpredmarker, seq(0, 0.5, 0.05), time = vs$ttcancer, horizon = 1.5)")
    mine = dec.net_benefit_survival(s.ttcancer, s.cancer.astype(int), s.cancerpredmarker, 1.5,
                                    np.arange(0, 0.55, 0.05), engine="python")
    mm = rn.merge(mine.assign(threshold=mine.threshold.round(2)).rename(columns={"net_benefit": "nb"}),
                  on=["model", "threshold"])
    add("survival net benefit vs R-native (max abs diff)", "dcurves df_surv",
        np.nanmax(np.abs(mm.nb - mm.net_benefit)), 0.0, "R survival::survfit (ps_r_net_benefit)", tol=1e-12)


def _version(package: str) -> str:
    return str(rbridge.run_r(f'as.character(utils::packageVersion("{package}"))'))


def _dcurves_version() -> str:
    import dcurves
    return dcurves.__version__


def write(elapsed: float) -> None:
    df = pd.DataFrame(ROWS)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fmt = lambda v: f"{v:.10g}" if isinstance(v, float) else str(v)  # noqa: E731
    lines = ["# Discrimination, overall performance, calibration and decision curves: prime-stats vs references",
             "", f"Generated by `validation/validate_discrimination_calibration.py` in {elapsed:.0f} s "
             f"({rbridge.r_version()}; " + ", ".join(f"{p} {_version(p)}" for p in
                                                     ("pROC", "survival", "riskRegression", "pec", "rms", "Hmisc"))
             + f"; Python dcurves {_dcurves_version()}).",
             "", f"**{int(df['pass'].sum())} of {len(df)} comparisons within tolerance.** Target |difference| <= 1e-6 "
             "where the estimator is the same; a looser tolerance is stated in the note where it cannot be.", "",
             "| statistic | data set | prime-stats | reference | abs diff | tolerance | pass | reference source | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in r) + " |")
    OUT.write_text("\n".join(lines) + "\n")
    print(f"{int(df['pass'].sum())}/{len(df)} within tolerance -> {OUT}")


def main() -> int:
    t0 = time.time()
    r_setup()
    for name, spec in survival_sets().items():
        validate_survival(name, spec)
    validate_binary()
    validate_decision()
    write(time.time() - t0)
    return 0 if all(r["pass"] for r in ROWS) else 1


if __name__ == "__main__":
    sys.exit(main())
