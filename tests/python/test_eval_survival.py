"""Survival analysis checked against R survival on real data and against published outputs.

Published values (no R needed):
* lung (lifelines.datasets.load_lung = survival::lung): survfit(Surv(time, status) ~ sex) medians
  270 (212-310) and 426 (348-550); survdiff chi-square 10.3 on 1 df, O = 112/53, E = 91.6/73.4;
  coxph(~ age + sex + ph.ecog) coefficients 0.011067 / -0.552612 / 0.463728 (survival's printed
  summary, reproduced in countless tutorials).
* Rossi recidivism (lifelines.datasets.load_rossi): Fox & Weisberg, "Cox proportional-hazards
  regression for survival data in R" (appendix to An R Companion to Applied Regression), coef and
  se of fin, age, race, wexp, mar, paro, prio; likelihood-ratio test 33.27 on 7 df.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung, load_rossi
from sklearn.base import clone

from prime_stats.evaluation import survival as sv

ROSSI_COVS = ["fin", "age", "race", "wexp", "mar", "paro", "prio"]


@pytest.fixture(scope="module")
def lung():
    d = load_lung()
    d["patient_id"] = [f"L{i:03d}" for i in range(len(d))]
    d["sexc"] = d["sex"].map({1: "male", 2: "female"})
    return d


@pytest.fixture(scope="module")
def rossi():
    return load_rossi()


def _r_frame(r_engine, code):
    """An R data.frame with every column numeric (integer NAs travel safely as NaN)."""
    return r_engine.run_r(f"local({{ d <- {code}; d[] <- lapply(d, function(c) if (is.factor(c) || "
                          f"is.character(c)) as.character(c) else as.numeric(c)); d }})")


# ------------------------------------------------------------------------------------------
# published values, Python engine only
# ------------------------------------------------------------------------------------------
def test_km_medians_and_logrank_match_published_lung(lung):
    km = sv.kaplan_meier("time", "status", "sex", data=lung, engine="python")
    s = km.medians.set_index("group")
    assert s.loc[1, ["n", "events", "median", "lower", "upper"]].tolist() == [138, 112, 270, 212, 310]
    assert s.loc[2, ["n", "events", "median", "lower", "upper"]].tolist() == [90, 53, 426, 348, 550]
    lr = sv.logrank_test("time", "status", "sex", data=lung, engine="python")
    assert lr["statistic"].iloc[0] == pytest.approx(10.3267, abs=1e-4)
    assert lr["p"].iloc[0] == pytest.approx(0.00131, abs=1e-5)
    assert lr["observed"].tolist() == [112, 53]
    np.testing.assert_allclose(lr["expected"], [91.6, 73.4], atol=0.05)
    assert (lr["df"] == 1).all()


def test_cox_matches_published_lung_and_rossi(lung, rossi):
    d = lung.dropna(subset=["ph.ecog"])
    t = sv.cox_hazard_ratios("time", "status", ["age", "sex", "ph.ecog"], data=d, engine="python")
    np.testing.assert_allclose(t["coef"], [0.011067, -0.552612, 0.463728], atol=1e-6)
    np.testing.assert_allclose(t["se"], [0.009267, 0.167739, 0.113577], atol=1e-6)
    assert t["n"].iloc[0] == 227 and t["events"].iloc[0] == 164
    r = sv.cox_hazard_ratios("week", "arrest", ROSSI_COVS, data=rossi, engine="python")
    np.testing.assert_allclose(r["coef"], [-0.37942, -0.05744, 0.31390, -0.14980, -0.43370, -0.08487, 0.09150],
                               atol=1e-5)
    np.testing.assert_allclose(r["se"], [0.19138, 0.02200, 0.30799, 0.21222, 0.38187, 0.19576, 0.02865],
                               atol=1e-5)
    assert r.attrs["lr_statistic"] == pytest.approx(33.27, abs=0.005)
    # HR and Wald CI are exp(coef), exp(coef -/+ 1.96 se)
    np.testing.assert_allclose(r["estimate"], np.exp(r["coef"]), rtol=1e-12)
    np.testing.assert_allclose(r["lower"], np.exp(r["coef"] - 1.959963985 * r["se"]), rtol=1e-8)


def test_numbers_at_risk_and_at_times(lung):
    km = sv.kaplan_meier("time", "status", "sexc", data=lung, times=[0, 365, 2000], engine="python")
    at = km.at_times.set_index(["group", "time"])
    assert at.loc[("male", 0.0), "n_risk"] == 138 and at.loc[("male", 0.0), "surv"] == 1.0
    assert at.loc[("male", 365.0), "n_risk"] == int((lung.loc[lung.sexc == "male", "time"] >= 365).sum())
    assert at.loc[("male", 365.0), "surv"] == pytest.approx(0.336088, abs=1e-6)
    assert at.loc[("female", 2000.0), "n_risk"] == 0
    nar = sv.numbers_at_risk("time", "status", "sexc", times=[0, 180, 365, 2000], data=lung, engine="python")
    assert list(nar.columns) == ["group", "time", "n_risk", "n_event", "n_censor", "method", "engine"]
    # summary(survfit(Surv(time, status) ~ sex, lung), times = c(0, 180, 365, 2000), extend = TRUE)
    tab = nar.set_index("group")
    assert tab.loc["female", ["n_risk", "n_event", "n_censor"]].to_numpy().T.tolist() == [
        [90, 71, 30, 0], [0, 14, 22, 17], [0, 5, 19, 13]]
    assert tab.loc["male", ["n_risk", "n_event", "n_censor"]].to_numpy().T.tolist() == [
        [138, 89, 35, 0], [0, 49, 36, 27], [0, 1, 17, 8]]
    assert nar.groupby("group")[["n_event", "n_censor"]].sum().sum(axis=1).tolist() == [90, 138]  # everyone once


def test_median_risk_stratifier_freezes_training_cutoff():
    rng = np.random.default_rng(0)
    train, test = rng.normal(0, 1, 101), rng.normal(3, 1, 50)  # shifted external cohort
    st = sv.MedianRiskStratifier().fit(train)
    assert st.cutoff_ == pytest.approx(np.median(train))
    groups = st.transform(test)
    assert groups.mean() > 0.9  # a re-split on the test median would give 0.5
    np.testing.assert_array_equal(groups, (test > np.median(train)).astype(int))
    lab = st.labels(test)
    assert list(lab.categories) == ["low", "high"]
    assert clone(st).get_params() == {"quantile": 0.5}
    with pytest.raises(ValueError, match="missing/infinite"):
        st.transform(np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="quantile"):
        sv.MedianRiskStratifier(quantile=1.5).fit(train)


def test_errors_name_column_and_patient(lung):
    bad = lung.copy()
    bad.loc[5, "time"] = np.nan
    with pytest.raises(ValueError, match=r"'time'.*patient_id L005"):
        sv.kaplan_meier("time", "status", data=bad, engine="python")
    bad = lung.copy()
    bad["status"] = bad["status"] + 1  # R-style 1/2 coding
    with pytest.raises(ValueError, match="'status' must be coded 0"):
        sv.logrank_test("time", "status", "sex", data=bad, engine="python")
    with pytest.raises(ValueError, match="at least 2"):
        sv.logrank_test("time", "status", "one", data=lung.assign(one="a"), engine="python")
    with pytest.raises(ValueError, match="no events"):
        sv.cox_hazard_ratios("time", "status", ["age"], data=lung.assign(status=0), engine="python")
    with pytest.raises(ValueError, match="'ph.ecog' has 1 missing"):
        sv.cox_hazard_ratios("time", "status", ["ph.ecog"], data=lung, engine="python")
    with pytest.raises(KeyError, match="os_days"):
        sv.kaplan_meier("os_days", "status", data=lung, engine="python")
    with pytest.raises(ValueError, match="constant"):
        sv.cox_hazard_ratios("time", "status", ["age", "k"], data=lung.assign(k=1.0), engine="python")
    with pytest.raises(ValueError, match="no censored"):
        sv.median_followup("time", "status", data=lung.assign(status=1), engine="python")


def test_subgroups_and_adjusted_structure(lung):
    d = lung.dropna(subset=["ph.ecog"]).copy()
    d["risk"] = sv.MedianRiskStratifier().fit(d["ph.ecog"] + d["age"] / 100).labels(d["ph.ecog"] + d["age"] / 100)
    d["age_grp"] = np.where(d["age"] >= 65, ">=65", "<65")
    tab = sv.subgroup_hazard_ratios("time", "status", "risk", ["sexc", "age_grp"], data=d)
    assert tab["subgroup"].tolist() == ["Overall", "sexc", "sexc", "age_grp", "age_grp"]
    assert tab.loc[0, "n"] == len(d) and tab.loc[1:2, "n"].sum() == len(d)
    assert (tab["lower"] < tab["estimate"]).all() and (tab["estimate"] < tab["upper"]).all()
    assert "high vs low" in tab["method"].iloc[0]
    adj = sv.adjusted_hazard_ratio("time", "status", "risk", ["sexc", "age"], data=d, engine="python")
    assert adj["model"].iloc[0] == "unadjusted" and adj["model"].iloc[1].startswith("adjusted for sexc")
    assert adj.loc[adj["model"] == "unadjusted", "term"].tolist() == ["riskhigh"]


def test_rmst_by_hand():
    # two subjects die at 1 and 3, one censored at 2: S = 1 on [0,1), 2/3 on [1,3), 0 after
    d = pd.DataFrame({"t": [1.0, 2.0, 3.0], "e": [1, 0, 1]})
    r = sv.restricted_mean_survival("t", "e", tau=4.0, data=d, engine="python")
    assert r["estimate"].iloc[0] == pytest.approx(1 + 2 * 2 / 3)   # S reached 0 at 3: no extrapolation
    with pytest.raises(ValueError, match="tau 4 is at or beyond the last follow-up time"):
        sv.restricted_mean_survival("t", "e", tau=4.0, data=d.assign(e=[1, 1, 0]), engine="python")


# ------------------------------------------------------------------------------------------
# against R survival (r_engine)
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain"])
def test_km_curve_matches_survfit_pbc(r_engine, conf_type):
    pbc = _r_frame(r_engine, "survival::pbc[!is.na(survival::pbc$trt), c('time','status','trt')]")
    pbc["dead"] = (pbc["status"] == 2).astype(int)
    km = sv.kaplan_meier("time", "dead", "trt", data=pbc, times=[365, 1825, 3650], conf_type=conf_type,
                         engine="python")
    ref = r_engine.run_r(f"""local({{d <- survival::pbc[!is.na(survival::pbc$trt), ];
        f <- survival::survfit(survival::Surv(time, status == 2) ~ trt, data = d, conf.type = '{conf_type}');
        s <- summary(f, times = c(365, 1825, 3650));
        list(curve = data.frame(time = f$time, n_risk = f$n.risk, surv = f$surv, lower = f$lower,
                                upper = f$upper),
             at = data.frame(n_risk = s$n.risk, surv = s$surv, lower = s$lower, upper = s$upper),
             med = as.data.frame(unname(summary(f)$table[, c('median', '0.95LCL', '0.95UCL')])))}})""")
    c = km.curve
    np.testing.assert_allclose(c["time"], ref["curve"]["time"])
    np.testing.assert_allclose(c["n_risk"], ref["curve"]["n_risk"])
    np.testing.assert_allclose(c["surv"], ref["curve"]["surv"], atol=1e-12)
    np.testing.assert_allclose(c["lower"], ref["curve"]["lower"], atol=1e-10)
    np.testing.assert_allclose(c["upper"], ref["curve"]["upper"], atol=1e-10)
    np.testing.assert_allclose(km.at_times[["n_risk", "surv", "lower", "upper"]].to_numpy(float),
                               ref["at"].to_numpy(float), atol=1e-10)
    np.testing.assert_allclose(km.medians[["median", "lower", "upper"]].to_numpy(float),
                               ref["med"].to_numpy(float), atol=1e-10)


def test_logrank_and_cox_match_r_pbc(r_engine):
    pbc = _r_frame(r_engine, "survival::pbc[!is.na(survival::pbc$stage), ]")
    pbc["dead"] = (pbc["status"] == 2).astype(int)
    pbc["logbili"] = np.log(pbc["bili"])
    pbc["edema_f"] = pbc["edema"].astype(str)
    lr = sv.logrank_test("time", "dead", "stage", data=pbc, engine="python")
    ref = r_engine.run_r("""local({d <- survival::pbc[!is.na(survival::pbc$stage), ];
        s <- survival::survdiff(survival::Surv(time, status == 2) ~ stage, data = d); c(s$chisq, s$exp)})""")
    assert lr["statistic"].iloc[0] == pytest.approx(ref[0], rel=1e-10)
    np.testing.assert_allclose(lr["expected"], ref[1:], rtol=1e-10)
    hr = sv.cox_hazard_ratios("time", "dead", ["age", "logbili", "albumin", "edema_f"], data=pbc, engine="python")
    ref = r_engine.run_r("""local({d <- survival::pbc[!is.na(survival::pbc$stage), ];
        f <- survival::coxph(survival::Surv(time, status == 2) ~ age + log(bili) + albumin + factor(edema), data = d);
        s <- summary(f)$conf.int; as.data.frame(cbind(s[, c(1, 3, 4)], summary(f)$coefficients[, 5]))})""")
    np.testing.assert_allclose(hr[["estimate", "lower", "upper", "p"]].to_numpy(float), ref.to_numpy(float),
                               rtol=1e-6)
    assert hr["term"].tolist() == ["age", "logbili", "albumin", "edema_f0.5", "edema_f1.0"]


@pytest.mark.parametrize("transform", ["km", "identity"])
def test_cox_zph_matches_r(r_engine, rossi, transform):
    if not r_engine.r_available(["carData"]):
        pytest.skip("carData (Rossi) is not installed in R")
    z = sv.cox_zph("week", "arrest", ROSSI_COVS, data=rossi, transform=transform, engine="python")
    ref = r_engine.run_r(f"""local({{f <- survival::coxph(survival::Surv(week, arrest) ~ fin + age + race +
        wexp + mar + paro + prio, data = carData::Rossi);
        as.data.frame(survival::cox.zph(f, transform = '{transform}')$table)}})""")
    np.testing.assert_allclose(z[["statistic", "df", "p"]].to_numpy(float), ref.to_numpy(float), rtol=1e-5)
    # a multi-level factor is one multi-df term (pbc edema)
    pbc = _r_frame(r_engine, "survival::pbc[1:312, ]")
    pbc["dead"] = (pbc["status"] == 2).astype(int)
    pbc["edema_f"] = pbc["edema"].astype(str)
    z2 = sv.cox_zph("time", "dead", ["age", "albumin", "edema_f"], data=pbc, transform=transform, engine="python")
    ref2 = r_engine.run_r(f"""local({{d <- survival::pbc[1:312, ]; d$edema_f <- factor(d$edema);
        f <- survival::coxph(survival::Surv(time, status == 2) ~ age + albumin + edema_f, data = d);
        as.data.frame(survival::cox.zph(f, transform = '{transform}')$table)}})""")
    np.testing.assert_allclose(z2[["statistic", "df", "p"]].to_numpy(float), ref2.to_numpy(float), rtol=1e-5)
    assert z2["df"].tolist() == [1, 1, 2, 4]


def test_followup_rmst_subgroup_interaction_match_r(r_engine):
    gb = _r_frame(r_engine, "survival::gbsg")
    fu = sv.median_followup("rfstime", "status", data=gb, engine="python")
    ref = r_engine.run_r("""unname(summary(survival::survfit(survival::Surv(rfstime, 1 - status) ~ 1,
        data = survival::gbsg))$table[c('median', '0.95LCL', '0.95UCL')])""")
    np.testing.assert_allclose(fu[["estimate", "lower", "upper"]].to_numpy(float)[0], ref, atol=1e-10)
    rm = sv.restricted_mean_survival("rfstime", "status", "hormon", tau=1825, data=gb, engine="python")
    ref = r_engine.run_r("""summary(survival::survfit(survival::Surv(rfstime, status) ~ hormon,
        data = survival::gbsg), rmean = 1825)$table[, c('rmean', 'se(rmean)')] |> as.data.frame()""")
    np.testing.assert_allclose(rm[["estimate", "se"]].to_numpy(float), np.asarray(ref, float), rtol=1e-10)
    gb["size_grp"] = np.where(gb["size"] > 20, "T2+", "T1")
    gb["grade_f"] = gb["grade"].astype(int).astype(str)
    tab = sv.subgroup_hazard_ratios("rfstime", "status", "hormon", ["size_grp", "grade_f"], data=gb)
    ref = r_engine.run_r("""local({d <- survival::gbsg; d$size_grp <- ifelse(d$size > 20, 'T2+', 'T1');
        p <- function(v) { f0 <- survival::coxph(survival::Surv(rfstime, status) ~ hormon + d[[v]], data = d);
            f1 <- survival::coxph(survival::Surv(rfstime, status) ~ hormon * d[[v]], data = d);
            anova(f0, f1)[2, 'Pr(>|Chi|)'] };
        d$grade_f <- factor(d$grade);
        sub <- survival::coxph(survival::Surv(rfstime, status) ~ hormon, data = d[d$size_grp == 'T1', ]);
        c(p('size_grp'), p('grade_f'), summary(sub)$conf.int[c(1, 3, 4)])})""")
    assert tab.loc[tab["subgroup"] == "size_grp", "p_interaction"].iloc[0] == pytest.approx(ref[0], rel=1e-5)
    assert tab.loc[tab["subgroup"] == "grade_f", "p_interaction"].iloc[0] == pytest.approx(ref[1], rel=1e-5)
    t1 = tab[(tab["subgroup"] == "size_grp") & (tab["level"] == "T1")].iloc[0]
    np.testing.assert_allclose([t1["estimate"], t1["lower"], t1["upper"]], ref[2:], rtol=1e-6)
    adj = sv.adjusted_hazard_ratio("rfstime", "status", "hormon", ["age", "nodes"], data=gb, engine="python")
    ref = r_engine.run_r("""local({f <- survival::coxph(survival::Surv(rfstime, status) ~ hormon + age + nodes,
        data = survival::gbsg); summary(f)$conf.int[, 1]})""")
    np.testing.assert_allclose(adj.loc[adj["model"] != "unadjusted", "estimate"], np.asarray(ref), rtol=1e-6)


def test_r_engine_returns_same_tables(r_engine, lung):
    d = lung.dropna(subset=["ph.ecog"])
    for fn, kw in [(sv.logrank_test, dict(group="sexc")),
                   (sv.cox_hazard_ratios, dict(covariates=["age", "sexc", "ph.ecog"])),
                   (sv.cox_zph, dict(covariates=["age", "sexc", "ph.ecog"])),
                   (sv.median_followup, {})]:
        py = fn("time", "status", data=d, engine="python", **kw)
        rr = fn("time", "status", data=d, engine="R", **kw)
        assert (rr["engine"] == "R").all() and (py["engine"] == "python").all()
        num = [c for c in py.columns if c in rr.columns and pd.api.types.is_numeric_dtype(py[c])]
        np.testing.assert_allclose(py[num].to_numpy(float), rr[num].to_numpy(float), rtol=1e-6, atol=1e-9)
    kp = sv.kaplan_meier("time", "status", "sexc", data=d, times=[100, 500], engine="python")
    kr = sv.kaplan_meier("time", "status", "sexc", data=d, times=[100, 500], engine="r")  # lower case accepted
    np.testing.assert_allclose(kp.at_times[["n_risk", "surv", "lower", "upper"]].to_numpy(float),
                               kr.at_times[["n_risk", "surv", "lower", "upper"]].to_numpy(float), atol=1e-10)
    assert kp.medians["group"].tolist() == kr.medians["group"].tolist()


def test_cox_monotone_likelihood_raises_clear_error():
    # every exposed patient dies before any unexposed one is censored: the MLE is infinite
    d = pd.DataFrame({"t": np.arange(1.0, 11.0), "e": [1] * 5 + [0] * 5, "x": [1.0] * 5 + [0.0] * 5})
    with pytest.raises(RuntimeError, match=r"covariates \['x'\] did not converge"):
        sv.cox_hazard_ratios("t", "e", ["x"], data=d, engine="python")
    tab = sv.subgroup_hazard_ratios("t", "e", "x", ["g"], data=d.assign(g=["a", "b"] * 5))
    assert tab["note"].str.contains("not estimable").any() and tab["estimate"].isna().all()


def test_r_native_rmst(r_engine, lung):
    rm = r_engine.call_r("ps_r_rmst", time=lung["time"].to_numpy(float), event=lung["status"].to_numpy(),
                         tau=500.0, group=lung["sexc"].to_numpy())
    py = sv.restricted_mean_survival("time", "status", "sexc", tau=500, data=lung, engine="python")
    np.testing.assert_allclose(rm[["estimate", "se", "lower", "upper"]].to_numpy(float),
                               py[["estimate", "se", "lower", "upper"]].to_numpy(float), rtol=1e-10)


def test_risk_stratification_one_call(rossi):
    train, test = rossi.iloc[:300], rossi.iloc[300:].reset_index(drop=True)
    covs = ["fin", "age", "prio"]
    beta = sv.cox_hazard_ratios("week", "arrest", covs, data=train, engine="python")["coef"].to_numpy()
    res = sv.risk_stratification("week", "arrest", test[covs].to_numpy() @ beta,
                                 train_risk=train[covs].to_numpy() @ beta, data=test, times=[0, 26, 52],
                                 engine="python")
    assert res.cutoff == pytest.approx(np.median(train[covs].to_numpy() @ beta))
    assert list(res.groups.categories) == ["low", "high"] and len(res.groups) == len(test)
    assert res.hazard_ratio["term"].tolist() == ["risk_grouphigh"]
    direct = sv.cox_hazard_ratios("week", "arrest", ["h"], engine="python",
                                  data=test.assign(h=(np.asarray(res.groups) == "high").astype(float)))
    assert res.hazard_ratio["estimate"].iloc[0] == pytest.approx(direct["estimate"].iloc[0], rel=1e-12)
    assert res.km.at_times["n_risk"].sum() > 0 and res.logrank["df"].iloc[0] == 1
    with pytest.raises(ValueError, match="risk has length 3 but time has length 132"):
        sv.risk_stratification("week", "arrest", [1.0, 2.0, 3.0], train_risk=[0.1, 0.2, 0.3], data=test,
                               engine="python")
    text = repr(res)
    assert len(text.splitlines()) == 5 and "HR high vs low" in text and "log-rank p" in text
    summ = res.summary()
    assert summ["group"].tolist() == ["low", "high"] and np.isnan(summ["hr"].iloc[0])
    assert summ["hr"].iloc[1] == res.hazard_ratio["estimate"].iloc[0]
    tidy = res.to_frame()
    assert {"median", "survival", "log-rank chi-square", "hazard ratio"} == set(tidy["statistic"])
    assert {"estimate", "lower", "upper", "p", "method", "engine"} <= set(tidy.columns)


def test_result_objects_print_short_and_give_tidy_tables(lung):
    km = sv.kaplan_meier("time", "status", "sexc", data=lung, times=[180, 365], engine="python")
    text = repr(km)
    assert len(text.splitlines()) == 4 and "0.95LCL" in text and "270.0" in text   # print.survfit-sized
    s = km.summary()
    assert s.statistic.tolist() == ["median"] * 2 + ["survival"] * 4
    np.testing.assert_array_equal(s.loc[s.statistic == "survival", "estimate"], km.at_times.surv)
    tidy = km.to_frame()
    assert {"estimate", "se", "lower", "upper", "method", "engine"} <= set(tidy.columns)
    assert len(tidy) == len(km.curve)


def test_every_function_takes_the_outcome_first_and_data_last(lung):
    """One convention: f(time, event, ...) with data= naming columns, arrays, or a structured outcome;
    the former data-first order raises a TypeError that shows the new call."""
    from sksurv.util import Surv

    from prime_stats.evaluation.inputs import as_survival

    d = lung.dropna(subset=["ph.ecog"]).reset_index(drop=True)
    y = Surv.from_arrays(d["status"].astype(bool), d["time"])
    t, e = d["time"].to_numpy(), d["status"].to_numpy()
    eng = dict(engine="python")
    same = [  # by column names, by arrays, by a structured outcome (scikit-survival's, the package's own)
        lambda f: f("time", "status", "sexc", data=d, **eng), lambda f: f(t, e, d["sexc"].to_numpy(), **eng),
        lambda f: f(y, d["sexc"], **eng), lambda f: f(as_survival(t, e), d["sexc"], **eng)]
    for fn in (sv.logrank_test, lambda *a, **k: sv.kaplan_meier(*a, **k, times=[180, 365]).at_times,
               lambda *a, **k: sv.restricted_mean_survival(*a, **k, tau=500),
               lambda *a, **k: sv.numbers_at_risk(*a, **k, times=[0, 180])):
        ref, *others = [call(fn) for call in same]
        for other in others:
            pd.testing.assert_frame_equal(other, ref)
    cox = [sv.cox_hazard_ratios("time", "status", ["age", "sexc"], data=d, **eng),
           sv.cox_hazard_ratios(t, e, d[["age", "sexc"]], **eng),
           sv.cox_hazard_ratios(y, d[["age", "sexc"]], **eng)]
    for other in cox[1:]:
        pd.testing.assert_frame_equal(other, cox[0])
    zph = sv.cox_zph(y, d[["age", "sexc"]], **eng)
    pd.testing.assert_frame_equal(zph, sv.cox_zph("time", "status", ["age", "sexc"], data=d, **eng))
    pd.testing.assert_frame_equal(sv.median_followup(y, **eng), sv.median_followup("time", "status", data=d, **eng))
    d["risk"] = np.where(d["ph.ecog"] >= 1, "high", "low")
    sub = sv.subgroup_hazard_ratios("time", "status", "risk", ["sexc"], data=d)
    pd.testing.assert_frame_equal(sv.subgroup_hazard_ratios(y, d["risk"].to_numpy(), d[["sexc"]]), sub)
    adj = sv.adjusted_hazard_ratio("time", "status", "risk", ["age"], data=d, **eng)
    pd.testing.assert_frame_equal(sv.adjusted_hazard_ratio(y, d["risk"], d[["age"]], **eng), adj)
    for call in (lambda: sv.kaplan_meier(d, "time", "status"), lambda: sv.median_followup(d, "time"),
                 lambda: sv.cox_zph(d, "time", "status")):
        with pytest.raises(TypeError, match=r"data come last.*data=df"):
            call()
    with pytest.raises(TypeError, match="positional"):       # one argument too many: Python's own message
        sv.logrank_test(d, "time", "status", "sexc")
    with pytest.raises(ValueError, match="time is a column name: pass the DataFrame as data="):
        sv.kaplan_meier("time", "status")
