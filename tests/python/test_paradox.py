"""paradox: the PRIME-R x PRIME-S quadrant analysis on the simulated study (known truth)."""
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from sklearn.metrics import roc_curve

from prime_stats import paradox
from prime_stats.simulate import simulate_cohort


@pytest.fixture(scope="module")
def cohort():
    clin, truth = simulate_cohort(seed=11)
    d = clin.merge(truth, on=["patient_id", "centre"])
    d["prob"] = expit(d["lp_response"])  # an oracle PRIME-R
    d["risk"] = d["lp_survival"]  # an oracle PRIME-S
    return d[d["centre"] == "A"], d[d["centre"] == "B"]


def test_thresholds_are_frozen_on_training(cohort):
    train, test = cohort
    th = paradox.freeze_thresholds(train["prob"], train["response_3m"], train["risk"])
    fpr, tpr, thr = roc_curve(train["response_3m"], train["prob"])
    assert th.response_threshold == pytest.approx(thr[1:][np.argmax((tpr - fpr)[1:])])
    assert th.risk_threshold == pytest.approx(np.median(train["risk"]))
    res = paradox.responder_paradox(test["prob"], test["risk"], test["response_3m"], test["os_days"],
                                    test["os_event"], thresholds=th, patient_id=test["patient_id"])
    assert res.thresholds == th  # never re-estimated on the evaluation cohort
    fixed = paradox.freeze_thresholds(train["prob"], train["response_3m"], train["risk"], response_rule=0.5)
    assert fixed.response_threshold == 0.5 and "fixed" in fixed.response_rule
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        paradox.freeze_thresholds(train["prob"], train["response_3m"], train["risk"], response_rule=1.5)


def test_quadrant_assignment_boundaries():
    th = paradox.ParadoxThresholds(0.5, 1.0, "fixed", "median")
    q = paradox.assign_quadrants([0.5, 0.49, 0.7, 0.1], [1.0, 1.0, 1.01, 2.0], th)
    assert q.tolist() == ["responder/low risk", "non-responder/low risk", "responder/high risk",
                          "non-responder/high risk"]
    with pytest.raises(ValueError, match="missing/infinite"):
        paradox.assign_quadrants([0.5, np.nan], [1, 2], th)


def test_paradox_on_simulated_study_matches_references(cohort):
    from lifelines import CoxPHFitter
    from lifelines.statistics import multivariate_logrank_test

    train, test = cohort
    th = paradox.freeze_thresholds(train["prob"], train["response_3m"], train["risk"])
    res = paradox.responder_paradox(test["prob"], test["risk"], test["response_3m"], test["os_days"],
                                    test["os_event"], thresholds=th, patient_id=test["patient_id"])
    tab = res.table.set_index("quadrant")
    assert list(tab.index) == list(paradox.QUADRANTS) and tab["n"].sum() == len(test)
    # truth: response depends on PRIME-R's biology only, death on PRIME-S's
    rr = tab["response_rate"]
    assert min(rr["responder/low risk"], rr["responder/high risk"]) > \
        max(rr["non-responder/low risk"], rr["non-responder/high risk"])
    hr = res.hazard_ratio.iloc[0]
    assert hr["estimate"] > 2 and hr["lower"] > 1 and hr["p"] < 0.01
    s1y = res.km.at_times.query("time == 365.0").set_index("group")["surv"]
    assert s1y["responder/high risk"] < s1y["responder/low risk"] - 0.1
    # references: lifelines Cox on the responders, lifelines k-sample log-rank
    d = res.data[res.data["quadrant"].astype(str).str.startswith("responder/")]
    cph = CoxPHFitter().fit(pd.DataFrame({"t": d["os_days"], "e": d["os_event"],
                                          "h": (d["quadrant"] == "responder/high risk").astype(int)}),
                            "t", "e")
    assert hr["estimate"] == pytest.approx(float(np.exp(cph.params_["h"])), rel=1e-6)
    lr = multivariate_logrank_test(res.data["os_days"], res.data["quadrant"].astype(str), res.data["os_event"])
    assert res.logrank["statistic"].iloc[0] == pytest.approx(lr.test_statistic, rel=1e-6)
    assert res.logrank["p"].iloc[0] < 1e-4
    km = res.km.at_times
    assert set(km["group"]) == set(paradox.QUADRANTS) and km["surv"].between(0, 1).all()


def test_wilson_interval_matches_r(cohort, r_engine):
    train, test = cohort
    th = paradox.freeze_thresholds(train["prob"], train["response_3m"], train["risk"])
    res = paradox.responder_paradox(test["prob"], test["risk"], test["response_3m"], test["os_days"],
                                    test["os_event"], thresholds=th)
    row = res.table.iloc[0]
    ref = np.asarray(r_engine.run_r(f"prop.test({row['responders']}, {row['n']}, correct = FALSE)$conf.int"),
                     dtype=float)
    np.testing.assert_allclose([row["lower"], row["upper"]], ref, rtol=1e-8)


def test_clear_errors(cohort):
    train, test = cohort
    th = paradox.ParadoxThresholds(0.999, 0.0, "fixed", "median")  # nobody is a predicted responder
    with pytest.raises(ValueError, match="predicted responders in both risk groups"):
        paradox.responder_paradox(test["prob"], test["risk"], test["response_3m"], test["os_days"],
                                  test["os_event"], thresholds=th)
    with pytest.raises(ValueError, match="os_days has 3 values"):
        paradox.responder_paradox(test["prob"], test["risk"], test["response_3m"], [1, 2, 3],
                                  test["os_event"], thresholds=th)
    with pytest.raises(ValueError, match="0/1"):
        paradox.responder_paradox(test["prob"], test["risk"], test["response_3m"] * 2, test["os_days"],
                                  test["os_event"], thresholds=th)


def test_paradox_figure(cohort, tmp_path):
    from prime_stats.report.figures_explain import plot_paradox_km

    train, test = cohort
    th = paradox.freeze_thresholds(train["prob"], train["response_3m"], train["risk"])
    res = paradox.responder_paradox(test["prob"], test["risk"], test["response_3m"], test["os_days"],
                                    test["os_event"], thresholds=th)
    fig = plot_paradox_km(res)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert sorted(labels) == ["NR/high risk", "NR/low risk", "R/high risk", "R/low risk"]
    assert any(f"HR {res.hazard_ratio['estimate'].iloc[0]:.2f}" in t.get_text() for t in fig.texts)  # above the panel
    fig.savefig(tmp_path / "km.png")


def _rscript(code: str) -> pd.DataFrame:
    """Run R code that writes a CSV to stdout (R survival from the project library)."""
    import shutil
    import subprocess
    from io import StringIO
    from pathlib import Path

    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not installed")
    env = {"R_LIBS": str(Path(__file__).resolve().parents[2].parent / "main" / ".Rlib"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        pytest.skip(f"R unavailable: {out.stderr[-300:]}")
    return pd.read_csv(StringIO(out.stdout))


def test_landmark_response_matches_r_coxph(cohort, tmp_path):
    _, test = cohort
    res = paradox.landmark_response(test["response_3m"], test["os_days"], test["os_event"], split="external")
    row = res.iloc[0]
    lm = paradox.LANDMARK_DAYS
    assert row["split"] == "external" and row["n"] == len(test)
    assert row["n_landmark"] == (test["os_days"] > lm).sum()
    assert row["died_before"] + row["censored_before"] + row["n_landmark"] == len(test)
    # the simulated truth: response lowers the hazard (SURVIVAL_EFFECTS["response"] < 0)
    assert row["estimate"] < 1
    test[["os_days", "os_event", "response_3m"]].to_csv(tmp_path / "d.csv", index=False)
    r = _rscript(f"library(survival); d <- read.csv('{tmp_path / 'd.csv'}'); d <- subset(d, os_days > {lm!r}); "
                 f"f <- coxph(Surv(os_days - {lm!r}, os_event) ~ response_3m, d); "
                 "write.csv(data.frame(hr = exp(coef(f)), lo = exp(confint(f))[, 1], hi = exp(confint(f))[, 2], "
                 "p = summary(f)$coefficients[, 5], n = f$n, ev = f$nevent), stdout(), row.names = FALSE)")
    np.testing.assert_allclose(row[["estimate", "lower", "upper", "p"]].astype(float), r.iloc[0, :4], rtol=1e-6)
    assert (row["n_landmark"], row["events"]) == (r["n"].iloc[0], r["ev"].iloc[0])
    with pytest.raises(ValueError, match="external: the landmark analysis needs responders"):
        paradox.landmark_response(np.ones(len(test)), test["os_days"], test["os_event"], split="external")


def test_correlation_matches_r_cor_test(cohort, tmp_path):
    _, test = cohort
    res = paradox.response_risk_correlation(test["prob"], test["risk"], split="external").iloc[0]
    assert res["split"] == "external" and res["lower"] < res["estimate"] < res["upper"]
    test[["prob", "risk"]].to_csv(tmp_path / "c.csv", index=False)
    r = _rscript(f"d <- read.csv('{tmp_path / 'c.csv'}'); ct <- cor.test(d$prob, d$risk, method = 'spearman', "
                 "exact = FALSE); z <- atanh(ct$estimate); h <- qnorm(0.975) * sqrt(1.06 / (nrow(d) - 3)); "
                 "write.csv(data.frame(rho = ct$estimate, lo = tanh(z - h), hi = tanh(z + h), p = ct$p.value), "
                 "stdout(), row.names = FALSE)")
    np.testing.assert_allclose(res[["estimate", "lower", "upper", "p"]].astype(float), r.iloc[0], rtol=1e-6)


def test_divergence_matches_r_coxph_interaction(cohort, tmp_path):
    train, test = cohort
    th = paradox.freeze_thresholds(train["prob"], train["response_3m"], train["risk"])
    res = paradox.divergence_test(test["prob"], test["risk"], test["os_days"], test["os_event"], thresholds=th,
                                  split="external")
    assert (res["split"] == "external").all() and set(res["test"]) == {"descriptive", "divergence", "added value"}
    z = (test["risk"] - th.risk_threshold) / test["risk"].std()
    pd.DataFrame({"t": test["os_days"], "e": test["os_event"], "z": z,
                  "R": (test["prob"] >= th.response_threshold).astype(int)}).to_csv(tmp_path / "v.csv", index=False)
    r = _rscript(f"library(survival); d <- read.csv('{tmp_path / 'v.csv'}'); f <- coxph(Surv(t, e) ~ z * R, d); "
                 "g <- coxph(Surv(t, e) ~ z + R, d); w <- c(1, 0, 1); b <- sum(w * coef(f)); "
                 "s <- sqrt(drop(t(w) %*% vcov(f) %*% w)); "
                 "write.csv(data.frame(hr = c(exp(coef(f)[1]), exp(b), exp(coef(f)[3]), exp(coef(g)[2])), "
                 "lo = c(exp(confint(f)[1, 1]), exp(b - qnorm(0.975) * s), exp(confint(f)[3, 1]), "
                 "exp(confint(g)[2, 1])), p = c(summary(f)$coefficients[c(1, 1, 3), 5], "
                 "summary(g)$coefficients[2, 5])), stdout(), row.names = FALSE)")
    np.testing.assert_allclose(res["estimate"], r["hr"], rtol=1e-6)
    np.testing.assert_allclose(res["lower"], r["lo"], rtol=1e-6)
    np.testing.assert_allclose(res["p"].iloc[[0, 2, 3]], r["p"].iloc[[0, 2, 3]], rtol=1e-6)


def test_divergence_is_null_for_a_random_prime_r_and_the_paradox_hr_is_not(cohort):
    """With a PRIME-R that guesses at random, the paradox HR (PRIME-S among predicted responders) is
    still 'significant' almost every time; the divergence tests reject at about their nominal 5%."""
    train, test = cohort
    rng = np.random.default_rng(2026)
    reps, paradox_hits, hits = 100, 0, {"divergence": 0, "added value": 0}
    for _ in range(reps):
        p_train, p_test = rng.random(len(train)), rng.random(len(test))
        th = paradox.freeze_thresholds(p_train, train["response_3m"], train["risk"], response_rule=0.5)
        res = paradox.responder_paradox(p_test, test["risk"], test["response_3m"], test["os_days"],
                                        test["os_event"], thresholds=th)
        paradox_hits += res.hazard_ratio["p"].iloc[0] < 0.05
        div = paradox.divergence_test(p_test, test["risk"], test["os_days"], test["os_event"], thresholds=th,
                                      split="external", predictions="random")
        for k in hits:
            hits[k] += div.loc[div["test"] == k, "p"].iloc[0] < 0.05
    assert paradox_hits / reps > 0.8
    for k, h in hits.items():
        assert h / reps <= 0.12, (k, h)    # nominal 5%; binomial(100, 0.05) exceeds 12 with prob < 0.005


def test_divergence_detects_an_interaction_when_there_is_one():
    """Simulated survival where PRIME-S predicts death only among predicted responders."""
    rng = np.random.default_rng(5)
    n = 600
    risk, prob = rng.normal(size=n), rng.random(n)
    R = prob >= 0.5
    t_event = rng.exponential(1 / (0.002 * np.exp(np.where(R, 1.0, 0.0) * risk)))
    c = rng.uniform(100, 1500, n)
    th = paradox.ParadoxThresholds(0.5, 0.0, "fixed", "median")
    res = paradox.divergence_test(prob, risk, np.minimum(t_event, c), (t_event <= c).astype(int), thresholds=th,
                                  split="simulated").set_index("test")
    assert res.loc["divergence", "p"] < 1e-4 and res.loc["divergence", "estimate"] > 1.5
