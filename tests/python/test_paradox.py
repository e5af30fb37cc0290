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
