"""Validate prime-stats survival analysis, Table 1 statistics and bootstrap optimism correction.

Runs every statistic of ``evaluation/survival.py``, ``descriptive.py`` and ``resampling.py`` on real
public data (R survival's lung, pbc, rotterdam -> gbsg; the Rossi recidivism data; scikit-learn's
breast cancer) and compares it with the reference implementation run in R in the same process
(survival::survfit/survdiff/coxph/cox.zph, stats tests, rms::validate) and with published outputs.
Writes ``validation/results/survival_descriptive.md``.

    .venv/bin/python validation/validate_survival_descriptive.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from prime_stats import rbridge
from prime_stats.evaluation import descriptive as ds
from prime_stats.evaluation import resampling as rs
from prime_stats.evaluation import survival as sv

OUT = Path(__file__).resolve().parent / "results" / "survival_descriptive.md"
EXACT = 1e-6
ROWS: list[dict] = []


def add(statistic, dataset, value, reference, source, tol=EXACT, note=""):
    for i, (v, r) in enumerate(zip(np.atleast_1d(value).astype(float), np.atleast_1d(reference).astype(float))):
        diff = abs(v - r)
        ROWS.append({"statistic": statistic if np.size(value) == 1 else f"{statistic} [{i + 1}]",
                     "data set": dataset, "prime-stats": v, "reference": r, "|difference|": diff,
                     "tolerance": tol, "pass": bool(diff <= tol), "reference source": source, "note": note})


def r_frame(code):
    return rbridge.run_r(f"local({{ d <- {code}; d[] <- lapply(d, function(c) if (is.factor(c) || "
                         f"is.character(c)) as.character(c) else as.numeric(c)); d }})")


def published():
    """Published outputs: survival's lung example; Fox & Weisberg's Rossi Cox model."""
    from lifelines.datasets import load_lung, load_rossi

    lung = load_lung()
    lr = sv.logrank_test("time", "status", "sex", data=lung, engine="python")
    add("log-rank chi-square (sex)", "lung", lr["statistic"].iloc[0], 10.3, "survdiff printed output (1 dp)",
        tol=0.05)
    km = sv.kaplan_meier("time", "status", "sex", data=lung, engine="python").medians
    add("KM median and 95% CI (sex)", "lung", km[["median", "lower", "upper"]].to_numpy().ravel(),
        [270, 212, 310, 426, 348, 550], "print(survfit) printed output", tol=0)
    rossi = load_rossi()
    cox = sv.cox_hazard_ratios("week", "arrest", ["fin", "age", "race", "wexp", "mar", "paro", "prio"],
                               data=rossi, engine="python")
    add("Cox coefficients", "Rossi", cox["coef"],
        [-0.37942, -0.05744, 0.31390, -0.14980, -0.43370, -0.08487, 0.09150],
        "Fox & Weisberg appendix (5 dp)", tol=5e-6)
    add("Cox standard errors", "Rossi", cox["se"], [0.19138, 0.02200, 0.30799, 0.21222, 0.38187, 0.19576, 0.02865],
        "Fox & Weisberg appendix (5 dp)", tol=5e-6)


def lung_vs_r():
    lung = r_frame("survival::lung")
    lung["status"] -= 1
    km = sv.kaplan_meier("time", "status", "sex", data=lung, times=[180, 365, 730], engine="python")
    ref = rbridge.run_r("""local({f <- survival::survfit(survival::Surv(time, status) ~ sex, data = survival::lung);
        s <- summary(f, times = c(180, 365, 730)); c(s$surv, s$lower, s$upper, s$n.risk, s$n.event)})""")
    at = km.at_times.sort_values(["group", "time"])
    add("KM S(t), 95% CI, n at risk, events in each interval (t = 180/365/730, by sex)", "lung",
        np.r_[at["surv"], at["lower"], at["upper"], at["n_risk"], at["n_event"]], ref, "summary(survfit(times=))")
    med = rbridge.run_r("""as.data.frame(summary(survival::survfit(survival::Surv(time, status) ~ sex,
        data = survival::lung))$table[, c('median', '0.95LCL', '0.95UCL')])""")
    add("KM median and CI (by sex)", "lung", km.medians[["median", "lower", "upper"]].to_numpy().ravel(),
        med.to_numpy().ravel(), "print(survfit)")
    lr = sv.logrank_test("time", "status", "sex", data=lung, engine="python")
    add("log-rank chi-square", "lung", lr["statistic"].iloc[0],
        rbridge.run_r("survival::survdiff(survival::Surv(time, status) ~ sex, data = survival::lung)$chisq"),
        "survdiff")
    d = lung.dropna(subset=["ph.ecog"])
    hr = sv.cox_hazard_ratios("time", "status", ["age", "sex", "ph.ecog"], data=d, engine="python")
    ref = rbridge.run_r("""as.data.frame(summary(survival::coxph(survival::Surv(time, status) ~ age + sex + ph.ecog,
        data = survival::lung))$conf.int[, c(1, 3, 4)])""")
    add("Cox HR, lower, upper (age, sex, ph.ecog)", "lung", hr[["estimate", "lower", "upper"]].to_numpy().ravel(),
        ref.to_numpy().ravel(), "coxph")
    z = sv.cox_zph("time", "status", ["age", "sex", "ph.ecog"], data=d, engine="python")
    ref = rbridge.run_r("""as.data.frame(survival::cox.zph(survival::coxph(survival::Surv(time, status) ~ age + sex +
        ph.ecog, data = survival::lung))$table)""")
    add("cox.zph chi-square (terms + GLOBAL, KM transform)", "lung", z["statistic"], ref["chisq"], "cox.zph")
    fu = sv.median_followup("time", "status", data=lung, engine="python")
    ref = rbridge.run_r("""unname(summary(survival::survfit(survival::Surv(time, 1 - (status - 1)) ~ 1,
        data = survival::lung))$table[c('median', '0.95LCL', '0.95UCL')])""")
    add("reverse-KM median follow-up and CI", "lung", fu[["estimate", "lower", "upper"]].to_numpy().ravel(), ref,
        "survfit(Surv(time, 1 - status))")
    rm = sv.restricted_mean_survival("time", "status", "sex", tau=500, data=lung, engine="python")
    ref = rbridge.run_r("""as.data.frame(summary(survival::survfit(survival::Surv(time, status) ~ sex,
        data = survival::lung), rmean = 500)$table[, c('rmean', 'se(rmean)')])""")
    add("RMST(500) and SE (by sex)", "lung", rm[["estimate", "se"]].to_numpy().ravel(), ref.to_numpy().ravel(),
        "print(survfit, rmean = 500)")


def pbc_vs_r():
    pbc = r_frame("survival::pbc[!is.na(survival::pbc$trt), ]")
    pbc["dead"] = (pbc["status"] == 2).astype(int)
    pbc["logbili"] = np.log(pbc["bili"])
    pbc["edema_f"] = pbc["edema"].astype(str)
    lr = sv.logrank_test("time", "dead", "stage", data=pbc, engine="python")
    ref = rbridge.run_r("""local({d <- survival::pbc[!is.na(survival::pbc$trt), ];
        survival::survdiff(survival::Surv(time, status == 2) ~ stage, data = d)$chisq})""")
    add("log-rank chi-square, 4 stages (3 df)", "pbc", lr["statistic"].iloc[0], ref, "survdiff")
    hr = sv.cox_hazard_ratios("time", "dead", ["age", "logbili", "albumin", "edema_f"], data=pbc, engine="python")
    ref = rbridge.run_r("""local({d <- survival::pbc[!is.na(survival::pbc$trt), ];
        as.data.frame(summary(survival::coxph(survival::Surv(time, status == 2) ~ age + log(bili) + albumin +
        factor(edema), data = d))$conf.int[, c(1, 3, 4)])})""")
    add("Cox HR, lower, upper (age, log bili, albumin, edema factor)", "pbc",
        hr[["estimate", "lower", "upper"]].to_numpy().ravel(), ref.to_numpy().ravel(), "coxph")
    z = sv.cox_zph("time", "dead", ["age", "logbili", "albumin", "edema_f"], data=pbc, engine="python")
    ref = rbridge.run_r("""local({d <- survival::pbc[!is.na(survival::pbc$trt), ]; d$edema_f <- factor(d$edema);
        as.data.frame(survival::cox.zph(survival::coxph(survival::Surv(time, status == 2) ~ age + log(bili) +
        albumin + edema_f, data = d))$table)})""")
    add("cox.zph chi-square (2-df factor term, GLOBAL)", "pbc", z["statistic"], ref["chisq"], "cox.zph")
    # Table 1 by treatment arm
    t1 = ds.table_one(pbc, "trt", ["age", "bili", "albumin", "sex", "ascites", "stage"], categorical=["stage"])
    p = t1.tests.set_index("variable")["p"]
    ref = rbridge.run_r("""local({d <- survival::pbc[!is.na(survival::pbc$trt), ];
        c(wilcox.test(age ~ trt, d)$p.value, wilcox.test(bili ~ trt, d)$p.value, wilcox.test(albumin ~ trt, d)$p.value,
          chisq.test(table(d$trt, d$sex))$p.value, chisq.test(table(d$trt, d$ascites))$p.value,
          chisq.test(table(d$trt, d$stage))$p.value)})""")
    add("Table 1 p (Mann-Whitney x3, chi-square x3) by trt", "pbc",
        p[["age", "bili", "albumin", "sex", "ascites", "stage"]], ref, "wilcox.test / chisq.test")
    t2 = ds.table_one(pbc.assign(stage=pbc["stage"].astype(int).astype(str)), "stage", ["age", "bili"],
                      normality="skewness")
    ref = rbridge.run_r("""local({d <- survival::pbc[!is.na(survival::pbc$trt), ];
        c(oneway.test(age ~ stage, d)$p.value, kruskal.test(bili ~ stage, d)$p.value)})""")
    add("Table 1 p (Welch ANOVA, Kruskal-Wallis) by stage", "pbc", t2.tests["p"], ref, "oneway.test / kruskal.test")
    t3 = ds.table_one(pbc.assign(stage=pbc["stage"].astype(int).astype(str)), "stage", ["sex"])
    ref = rbridge.run_r("""local({d <- survival::pbc[!is.na(survival::pbc$trt), ];
        fisher.test(table(d$stage, d$sex))$p.value})""")
    add("Table 1 p, Fisher 4x2 (expected < 5)", "pbc", t3.tests["p"].iloc[0], ref, "fisher.test (network algorithm)",
        tol=0.006, note="Python: Monte-Carlo p from 1e5 tables (SE ~0.0016); SciPy has no exact r x c Fisher")
    cols = ["age", "bili", "albumin", "chol", "platelet"]
    for method in ("spearman", "pearson"):
        cr = ds.correlation_matrix(r_frame("survival::pbc"), cols, method=method)
        ref = rbridge.run_r(f"""local({{d <- survival::pbc; v <- c({', '.join(repr(c) for c in cols)});
            pr <- combn(v, 2); out <- t(apply(pr, 2, function(x) {{ ct <- cor.test(d[[x[1]]], d[[x[2]]],
            method = '{method}', exact = FALSE); c(ct$estimate, ct$p.value) }}));
            as.data.frame(cbind(out, p.adjust(out[, 2], 'BH')))}})""")
        add(f"{method} r (10 pairs)", "pbc", cr.long["estimate"], ref.iloc[:, 0], "cor.test")
        add(f"{method} BH-adjusted p (10 pairs)", "pbc", cr.long["p_adj"], ref.iloc[:, 2], "cor.test + p.adjust",
            tol=1e-9)


def rotterdam_to_gbsg():
    """Median-risk groups frozen on rotterdam (development) applied to gbsg (external)."""
    covs = ["age", "nodes", "pgr", "er", "hormon"]
    rot = r_frame("survival::rotterdam")
    gb = r_frame("survival::gbsg")
    dev = sv.cox_hazard_ratios("rtime", "recur", covs, data=rot, engine="python")
    beta = dev["coef"].to_numpy()
    lp_dev, lp_ext = rot[covs].to_numpy() @ beta, gb[covs].to_numpy() @ beta
    strat = sv.MedianRiskStratifier().fit(lp_dev)
    gb["risk"] = strat.labels(lp_ext)
    hr = sv.cox_hazard_ratios("rfstime", "status", ["risk"], data=gb, engine="python")
    lr = sv.logrank_test("rfstime", "status", "risk", data=gb, engine="python")
    ref = rbridge.run_r("""local({r <- survival::rotterdam; g <- survival::gbsg;
        f <- survival::coxph(survival::Surv(rtime, recur) ~ age + nodes + pgr + er + hormon, data = r);
        X <- function(d) as.matrix(d[, c('age', 'nodes', 'pgr', 'er', 'hormon')]);
        cut <- median(X(r) %*% coef(f)); g$high <- as.integer(X(g) %*% coef(f) > cut);
        h <- summary(survival::coxph(survival::Surv(rfstime, status) ~ high, data = g))$conf.int[c(1, 3, 4)];
        c(cut, h, survival::survdiff(survival::Surv(rfstime, status) ~ high, data = g)$chisq, mean(g$high))})""")
    add("frozen median cut-off of the linear predictor", "rotterdam", strat.cutoff_, ref[0], "coxph + median",
        tol=1e-6)
    add("external HR high vs low, lower, upper", "rotterdam -> gbsg", hr[["estimate", "lower", "upper"]].iloc[0],
        ref[1:4], "coxph")
    add("external log-rank chi-square", "rotterdam -> gbsg", lr["statistic"].iloc[0], ref[4], "survdiff")
    add("share of gbsg patients in the high-risk group", "rotterdam -> gbsg", (gb["risk"] == "high").mean(), ref[5],
        "frozen cut-off", tol=0)
    fu = sv.median_followup("rfstime", "status", data=gb, engine="python")
    ref = rbridge.run_r("""unname(summary(survival::survfit(survival::Surv(rfstime, 1 - status) ~ 1,
        data = survival::gbsg))$table[c('median', '0.95LCL', '0.95UCL')])""")
    add("reverse-KM median follow-up and CI", "gbsg", fu[["estimate", "lower", "upper"]].iloc[0], ref, "survfit")
    sub = sv.subgroup_hazard_ratios("rfstime", "status", "risk", ["meno"], data=gb)
    ref = rbridge.run_r("""local({r <- survival::rotterdam; g <- survival::gbsg;
        f <- survival::coxph(survival::Surv(rtime, recur) ~ age + nodes + pgr + er + hormon, data = r);
        X <- function(d) as.matrix(d[, c('age', 'nodes', 'pgr', 'er', 'hormon')]);
        g$high <- as.integer(X(g) %*% coef(f) > median(X(r) %*% coef(f)));
        f0 <- survival::coxph(survival::Surv(rfstime, status) ~ high + meno, data = g);
        f1 <- survival::coxph(survival::Surv(rfstime, status) ~ high * meno, data = g);
        anova(f0, f1)[2, 'Pr(>|Chi|)']})""")
    add("subgroup interaction LRT p (risk x menopause)", "rotterdam -> gbsg", sub["p_interaction"].iloc[1], ref,
        "anova(coxph, coxph)", tol=1e-6)


def rossi_vs_r():
    if not rbridge.r_available(["carData"]):
        return
    from lifelines.datasets import load_rossi

    covs = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]
    z = sv.cox_zph("week", "arrest", covs, data=load_rossi(), engine="python")
    ref = rbridge.run_r("""as.data.frame(survival::cox.zph(survival::coxph(survival::Surv(week, arrest) ~ fin + age +
        race + wexp + mar + paro + prio, data = carData::Rossi))$table)""")
    add("cox.zph chi-square (7 terms + GLOBAL)", "Rossi", z["statistic"], ref["chisq"], "cox.zph")


def breast_cancer_validate(B=200):
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    bc = load_breast_cancer(as_frame=True)
    X = bc.data[["mean radius", "mean texture", "mean smoothness", "mean symmetry"]]
    y = bc.target.to_numpy()
    est = make_pipeline(StandardScaler(), LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-10,
                                                             max_iter=1000))
    py = rs.bootstrap_optimism(est, X, y, scoring=["dxy", "auc", "slope", "intercept", "brier"], B=B, n_jobs=2,
                               random_state=2026).set_index("metric")
    r = rbridge.call_r("ps_r_validate_lrm", x=X, y=y, B=B, seed=2026).set_index("metric")
    for m, rm in {"dxy": "Dxy", "auc": "AUC", "slope": "Slope", "intercept": "Intercept", "brier": "Brier"}.items():
        add(f"apparent {rm}", "breast cancer", py.at[m, "apparent"], r.at[rm, "apparent"], "rms::lrm")
        mc = 4 * np.sqrt(2) * py.at[m, "optimism_se"]
        add(f"optimism-corrected {rm} (B={B})", "breast cancer", py.at[m, "corrected"], r.at[rm, "corrected"],
            "rms::validate", tol=float(mc), note="independent bootstraps: tolerance = 4 x sqrt(2) x Monte-Carlo SE")


def engines_agree():
    """Python engine vs the R engine (R/stats_survival.R through rbridge) on lung."""
    lung = r_frame("survival::lung")
    lung["status"] -= 1
    d = lung.dropna(subset=["ph.ecog"])
    out = []
    for name, fn, kw in [("logrank_test", sv.logrank_test, dict(group="sex")),
                         ("cox_hazard_ratios", sv.cox_hazard_ratios, dict(covariates=["age", "sex", "ph.ecog"])),
                         ("cox_zph", sv.cox_zph, dict(covariates=["age", "sex", "ph.ecog"])),
                         ("median_followup", sv.median_followup, {})]:
        a, b = fn("time", "status", data=d, engine="python", **kw), fn("time", "status", data=d, engine="r", **kw)
        num = [c for c in a.columns if c in b.columns and pd.api.types.is_numeric_dtype(a[c])]
        out.append({"function": name, "columns compared": ", ".join(num),
                    "max |python - R engine|": float(np.nanmax(np.abs(a[num].to_numpy(float) - b[num].to_numpy(float))))})
    ka = sv.kaplan_meier("time", "status", "sex", data=d, times=[180, 365], engine="python")
    kb = sv.kaplan_meier("time", "status", "sex", data=d, times=[180, 365], engine="r")
    cols = ["n_risk", "surv", "std_err", "lower", "upper"]
    out.append({"function": "kaplan_meier (at_times)", "columns compared": ", ".join(cols),
                "max |python - R engine|": float(np.nanmax(np.abs(ka.at_times[cols].to_numpy(float)
                                                                  - kb.at_times[cols].to_numpy(float))))})
    return pd.DataFrame(out)


def main() -> int:
    t0 = time.time()
    published()
    have_r = rbridge.r_available(["survival", "rms"])
    engines = None
    if have_r:
        lung_vs_r()
        pbc_vs_r()
        rotterdam_to_gbsg()
        rossi_vs_r()
        breast_cancer_validate()
        engines = engines_agree()
    tab = pd.DataFrame(ROWS)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Survival analysis, Table 1 and bootstrap validation: prime-stats vs references", "",
             f"Generated by `validation/validate_survival_descriptive.py` in {time.time() - t0:.0f} s; "
             f"R: {rbridge.r_version() or 'absent'}; survival {rbridge.r_package_version('survival')}, "
             f"rms {rbridge.r_package_version('rms')}.", "",
             "Target |difference| <= 1e-6 where the estimator is the same; other tolerances are stated "
             "with their reason in the note column.", "",
             f"**{int(tab['pass'].sum())} of {len(tab)} comparisons within tolerance.**", ""]
    fmt = tab.copy()
    for c in ("prime-stats", "reference"):
        fmt[c] = fmt[c].map(lambda v: f"{v:.10g}")
    fmt["|difference|"] = fmt["|difference|"].map(lambda v: f"{v:.2e}")
    fmt["tolerance"] = fmt["tolerance"].map(lambda v: f"{v:.1e}")
    fmt["pass"] = fmt["pass"].map({True: "yes", False: "**NO**"})
    lines.append(fmt.to_markdown(index=False))
    if engines is not None:
        lines += ["", "## Python engine vs R engine (`engine=\"r\"`, R/stats_survival.R)", "",
                  engines.to_markdown(index=False, floatfmt=".2e")]
    else:
        lines += ["", "R or rms is not available: only published values were checked."]
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {OUT}: {int(tab['pass'].sum())}/{len(tab)} within tolerance")
    return 0 if tab["pass"].all() else 1


if __name__ == "__main__":
    sys.exit(main())
