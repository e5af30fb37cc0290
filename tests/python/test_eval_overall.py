"""Brier score, IPA and integrated Brier score against riskRegression::Score and pec on real data."""
import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_rossi
from sklearn.datasets import load_breast_cancer
from sksurv.metrics import integrated_brier_score as sk_ibs
from sksurv.util import Surv

from prime_stats.evaluation.overall import brier_binary, brier_survival, integrated_brier_score

PBC = """suppressMessages({library(survival); library(riskRegression)});
d <- pbc[!is.na(pbc$protime) & !is.na(pbc$albumin), ]; d$ev <- as.integer(d$status == 2);
f <- coxph(Surv(time, ev) ~ log(bili) + albumin + age + log(protime), data = d, x = TRUE);
tt <- c(365, 730, 1095, 1825, 2555, 3285); R <- predictRisk(f, newdata = d, times = tt);
data.frame(time = d$time, ev = d$ev, R)"""
TIMES = np.array([365.0, 730, 1095, 1825, 2555, 3285])


@pytest.fixture(scope="module")
def rossi():
    r = load_rossi()
    lp = 0.09 * r.prio - 0.06 * (r.age - 25)
    grid = np.array([10.0, 20, 30, 40, 50])
    F = np.round(np.column_stack([1 - np.exp(-0.25 * (t / 52) * np.exp(lp)) for t in grid]), 10)
    return r.week.to_numpy(float), r.arrest.to_numpy(int), F, grid


@pytest.fixture(scope="module")
def pbc(r_engine):
    d = r_engine.run_r(PBC)
    return d.time.to_numpy(float), d.ev.to_numpy(int), d.iloc[:, 2:].to_numpy(float)


def test_brier_ipa_match_published_score_values(rossi):
    t, e, F, grid = rossi
    b = brier_survival(t, e, F[:, [1, 3]], [20, 40])
    br, ipa = b[b.metric == "Brier"], b[b.metric == "IPA"]
    # riskRegression 2022.11.28 Score(..., times = c(20, 40), metrics = "brier", summary = "ipa")
    np.testing.assert_allclose(br.estimate, [0.0835290326829, 0.1522013527175], atol=1e-12)
    np.testing.assert_allclose(br.se, [0.00990226108758, 0.00968343183849], atol=1e-12)
    np.testing.assert_allclose(ipa.estimate, [0.00583404366042, 0.03697490254135], atol=1e-11)


def test_ibs_matches_published_pec_value(rossi):
    t, e, F, grid = rossi
    r = integrated_brier_score(t, e, F, grid, rule="step").iloc[0]
    assert r.estimate == pytest.approx(0.097537131700, abs=1e-11)   # pec::crps(start = 10, times = 50)


def test_trapezoid_ibs_matches_scikit_survival(rossi):
    t, e, F, grid = rossi
    y = Surv.from_arrays(e.astype(bool), t)
    grid = grid[grid < t.max()]
    ref = sk_ibs(y, y, 1 - F[:, :len(grid)], grid)
    mine = integrated_brier_score(t, e, F[:, :len(grid)], grid, rule="trapezoid").estimate.iloc[0]
    # sksurv fits the censoring KM with G(T_i) rather than G(T_i-); no censoring before week 52 here,
    # so the two estimators coincide
    assert mine == pytest.approx(ref, abs=1e-12)


def test_brier_survival_against_score_live(r_engine, pbc):
    t, e, R = pbc
    ref = r_engine.call_r("ps_r_score_survival", time=t, event=e, risks={"cox": pd.DataFrame(R)},
                          times=TIMES, metrics="brier")
    mine = brier_survival(t, e, R, TIMES)
    for metric, cols in (("Brier", ["estimate", "se", "lower", "upper"]), ("IPA", ["estimate"])):
        np.testing.assert_allclose(mine.loc[mine.metric == metric, cols].to_numpy(float),
                                   ref.loc[ref.metric == metric, cols].to_numpy(float), atol=1e-10)


def test_ibs_against_pec_live(r_engine, pbc):
    t, e, R = pbc
    ref = r_engine.call_r("ps_r_ibs", time=t, event=e, risk=pd.DataFrame(R), times=TIMES)
    mine = integrated_brier_score(t, e, R, TIMES, null_model=True)
    assert mine.estimate.iloc[0] == pytest.approx(ref.estimate.iloc[0], abs=1e-10)
    assert 0 < mine.set_index("metric").loc["IPA (integrated)", "estimate"] < 1


def test_brier_binary_against_score_live(r_engine):
    d = load_breast_cancer(as_frame=True).frame
    y = d.target.to_numpy()
    p = 1 / (1 + np.exp(-(19.8 - 1.05 * d["mean radius"] - 0.22 * d["mean texture"]))).to_numpy()
    ref = r_engine.call_r("ps_r_score_binary", y=y, probs={"m": p}).set_index("metric")
    mine = brier_binary(y, p).set_index("metric")
    for m in ("Brier", "IPA"):
        assert mine.loc[m, "estimate"] == pytest.approx(ref.loc[m, "estimate"], abs=1e-12)
    assert mine.loc["Brier", "se"] == pytest.approx(ref.loc["Brier", "se"], abs=1e-12)
    assert mine.loc["Brier", "estimate"] == pytest.approx(0.0781918132595, abs=1e-12)  # rms::val.prob


def test_perfect_and_null_predictions():
    y = np.array([0, 1] * 20)
    assert brier_binary(y, y.astype(float)).set_index("metric").loc["Brier", "estimate"] == 0.0
    null = brier_binary(y, np.full(40, 0.5)).set_index("metric")
    assert null.loc["IPA", "estimate"] == pytest.approx(0.0, abs=1e-15)


def test_errors(rossi):
    t, e, F, grid = rossi
    with pytest.raises(ValueError, match="beyond the last follow-up"):
        brier_survival(t, e, F[:, 0], [t.max()])
    with pytest.raises(ValueError, match=r"risk\[:, 0\]"):
        brier_survival(t, e, np.r_[np.nan, F[1:, 0]], [20])
    with pytest.raises(ValueError, match="probabilities"):
        brier_binary(np.array([0, 1, 1]), np.array([0.2, 1.3, 0.5]))
    with pytest.raises(ValueError, match="strictly increasing"):
        integrated_brier_score(t, e, F, grid[::-1])
