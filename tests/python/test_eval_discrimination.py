"""Discrimination statistics against pROC, survival::concordance and riskRegression::Score on real data."""
import numpy as np
import pytest
from lifelines.datasets import load_gbsg2, load_rossi
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score

from prime_stats.evaluation.discrimination import (auc_delong, concordance_index, delong_test,
                                                   time_dependent_auc)

PBC = """suppressMessages(library(survival)); d <- pbc[!is.na(pbc$protime) & !is.na(pbc$albumin), ];
d$ev <- as.integer(d$status == 2);
d$lp <- predict(coxph(Surv(time, ev) ~ log(bili) + albumin + age + log(protime), data = d));"""


@pytest.fixture(scope="module")
def bc():
    d = load_breast_cancer(as_frame=True).frame
    return d["target"].to_numpy(), -d["mean radius"].to_numpy(), -d["mean texture"].to_numpy()


@pytest.fixture(scope="module")
def gbsg2():
    g = load_gbsg2()
    risk = np.log(g.pnodes) + 0.5 * (g.tgrade == "III") - 0.002 * g.progrec
    return g.time.to_numpy(float), g.cens.to_numpy(int), risk.to_numpy(float)


@pytest.fixture(scope="module")
def pbc(r_engine):
    return r_engine.run_r(PBC + "d[, c('time', 'ev', 'lp')]")


# -------------------------------------------------------------- hard-coded references (no R needed)
def test_auc_delong_matches_published_pROC_values(bc):
    y, s1, _ = bc
    r = auc_delong(y, s1).iloc[0]
    # pROC 1.18.0: ci.auc(roc(target, -mean radius, direction = "<"), method = "delong")
    assert r.estimate == pytest.approx(0.937516516040, abs=1e-10)
    assert r.lower == pytest.approx(0.917020670853, abs=1e-9)
    assert r.upper == pytest.approx(0.958012361227, abs=1e-9)
    assert r.estimate == pytest.approx(roc_auc_score(y, s1), abs=1e-12)


def test_delong_test_matches_pROC_statistic(bc):
    y, s1, s2 = bc
    r = delong_test(y, s1, s2).iloc[0]
    assert r.statistic == pytest.approx(7.308787404733, abs=1e-8)   # pROC::roc.test(..., "delong")
    assert r.p_value < 1e-12


def test_concordance_matches_survival_on_gbsg2(gbsg2):
    t, e, risk = gbsg2
    h = concordance_index(t, e, risk, "n").iloc[0]
    u = concordance_index(t, e, risk, "n/G2").iloc[0]
    # survival 3.5-3: concordance(Surv(time, cens) ~ risk, reverse = TRUE, timewt = ...)
    assert (h.estimate, h.se) == pytest.approx((0.669607430564, 0.015687252958), abs=1e-10)
    assert (u.estimate, u.se) == pytest.approx((0.666823669502, 0.017600811296), abs=1e-10)


def test_time_dependent_auc_matches_riskRegression_on_gbsg2(gbsg2):
    t, e, risk = gbsg2
    r = time_dependent_auc(t, e, risk, [730, 1825])
    # riskRegression 2022.11.28: Score(list(risk), Surv(time, cens) ~ 1, times = c(730, 1825), metrics = "auc")
    np.testing.assert_allclose(r.estimate, [0.713581530835, 0.673825533611], atol=1e-10)
    np.testing.assert_allclose(r.se, [0.0234989364560, 0.0276284693989], atol=1e-10)


def test_rossi_ties_and_no_early_censoring():
    r = load_rossi()
    risk = r.prio - 0.1 * r.age
    h = concordance_index(r.week, r.arrest, risk, "n").iloc[0]
    assert (h.estimate, h.se) == pytest.approx((0.606183363863, 0.027852560582), abs=1e-10)
    lp = 0.09 * r.prio - 0.06 * (r.age - 25)
    # rounded so that exp()'s last-ulp differences between numpy and R cannot split tied risks
    F = np.round(np.column_stack([1 - np.exp(-0.25 * (t / 52) * np.exp(lp)) for t in (20, 40)]), 10)
    a = time_dependent_auc(r.week, r.arrest, F, [20, 40])
    # riskRegression::Score(list(round(F, 10)), Surv(week, arrest) ~ 1, times = c(20, 40))
    np.testing.assert_allclose(a.estimate, [0.620950255102, 0.646974063401], atol=1e-10)
    np.testing.assert_allclose(a.se, [0.0508414637391, 0.0351903071335], atol=1e-10)


def test_td_auc_equals_scikit_survival_without_tied_censoring(gbsg2):
    from sksurv.metrics import cumulative_dynamic_auc
    from sksurv.util import Surv

    t, e, risk = gbsg2
    # move censorings that tie with an event time half a day later: then G(T-) = G(T) at every event
    # time and scikit-survival's weighting (G(T)) coincides with riskRegression's (G(T-))
    t = np.where((e == 0) & np.isin(t, t[e == 1]), t + 0.5, t)
    y = Surv.from_arrays(e.astype(bool), t)
    ref, _ = cumulative_dynamic_auc(y, y, risk, [365, 730, 1460])
    mine = time_dependent_auc(t, e, risk, [365, 730, 1460])
    np.testing.assert_allclose(mine.estimate, ref, atol=1e-12)


# -------------------------------------------------------------------------- live R references
def test_auc_and_test_against_pROC_live(r_engine, bc):
    y, s1, s2 = bc
    ref = r_engine.call_r("ps_r_auc", y=y, score=s2)
    mine = auc_delong(y, s2)
    np.testing.assert_allclose(mine[["estimate", "se", "lower", "upper"]].to_numpy(float),
                               ref[["estimate", "se", "lower", "upper"]].to_numpy(float), atol=1e-10)
    ref = r_engine.call_r("ps_r_roc_test", y=y, score1=s1, score2=s2)
    mine = delong_test(y, s1, s2)
    np.testing.assert_allclose(mine[["estimate", "se", "statistic"]].to_numpy(float),
                               ref[["estimate", "se", "statistic"]].to_numpy(float), atol=1e-10)


@pytest.mark.parametrize("timewt", ["n", "n/G2"])
def test_concordance_against_survival_live_pbc(r_engine, pbc, timewt):
    ref = r_engine.call_r("ps_r_concordance", time=pbc.time.to_numpy(float), event=pbc.ev.to_numpy(),
                          risk=pbc.lp.to_numpy(), timewt=timewt)
    mine = concordance_index(pbc.time, pbc.ev, pbc.lp, timewt)
    np.testing.assert_allclose(mine[["estimate", "se", "lower", "upper"]].to_numpy(float),
                               ref[["estimate", "se", "lower", "upper"]].to_numpy(float), atol=1e-10)


def test_td_auc_against_score_live_pbc(r_engine, pbc):
    times = np.array([365.0, 1000.0, 2000.0, 3000.0])
    ref = r_engine.call_r("ps_r_score_survival", time=pbc.time.to_numpy(float), event=pbc.ev.to_numpy(),
                          risks={"m": pbc.lp.to_numpy()}, times=times, metrics="auc")
    mine = time_dependent_auc(pbc.time, pbc.ev, pbc.lp, times)
    np.testing.assert_allclose(mine.estimate, ref.estimate, atol=1e-10)
    np.testing.assert_allclose(mine.se, ref.se, atol=1e-10)
    np.testing.assert_allclose(mine.lower, ref.lower, atol=1e-10)


# ------------------------------------------------------------------------- edge cases and errors
def test_errors_name_the_argument(bc):
    y, s1, _ = bc
    s = s1.copy()
    s[3] = np.nan
    with pytest.raises(ValueError, match=r"score .*position 3"):
        auc_delong(y, s)
    with pytest.raises(ValueError, match="only one class"):
        auc_delong(np.ones(10), np.arange(10.0))
    with pytest.raises(ValueError, match="0/1"):
        auc_delong(np.r_[y[:-1], 2], s1)
    with pytest.raises(ValueError, match="score2"):
        delong_test(y, s1, s1[:-1])


def test_constant_marker_gives_half(bc):
    y, _, _ = bc
    r = auc_delong(y, np.zeros(len(y))).iloc[0]
    assert r.estimate == 0.5 and r.se == 0.0
    t, e = np.arange(1.0, 21.0), np.tile([1, 0], 10)
    assert concordance_index(t, e, np.ones(20)).estimate.iloc[0] == 0.5


def test_time_beyond_follow_up_and_bad_survival_inputs(gbsg2):
    t, e, risk = gbsg2
    with pytest.raises(ValueError, match="beyond the last follow-up"):
        time_dependent_auc(t, e, risk, [t.max() + 1])
    with pytest.raises(ValueError, match="no cases"):
        time_dependent_auc(t, e, risk, [t.min() / 2], engine="python")
    with pytest.raises(ValueError, match="event"):
        concordance_index(t, np.zeros_like(e), risk)
    with pytest.raises(ValueError, match="time has 1 missing"):
        concordance_index(np.r_[np.nan, t[1:]], e, risk)
    with pytest.raises(ValueError, match=r"risk must have shape"):
        time_dependent_auc(t, e, np.ones((len(t), 3)), [365, 730])


def test_reversing_marker_mirrors_c_and_auc(gbsg2):
    t, e, risk = gbsg2
    c1 = concordance_index(t, e, risk).estimate.iloc[0]
    c2 = concordance_index(t, e, -risk).estimate.iloc[0]
    assert c1 + c2 == pytest.approx(1.0, abs=1e-12)
    a1 = time_dependent_auc(t, e, risk, [1000]).estimate.iloc[0]
    a2 = time_dependent_auc(t, e, -risk, [1000]).estimate.iloc[0]
    assert a1 + a2 == pytest.approx(1.0, abs=1e-12)
