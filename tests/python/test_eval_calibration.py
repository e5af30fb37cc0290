"""Calibration statistics against rms::val.prob and a survival/Hmisc reference fit on real data."""
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer

from prime_stats.evaluation.calibration import (calibration_binary, calibration_curve_binary,
                                                calibration_curve_survival, calibration_survival,
                                                rcs_basis, rcs_knots)

PBC = """suppressMessages({library(survival); library(riskRegression)});
d <- pbc[!is.na(pbc$protime) & !is.na(pbc$albumin), ]; d$ev <- as.integer(d$status == 2);
f <- coxph(Surv(time, ev) ~ log(bili) + albumin + age + log(protime), data = d[1:200, ], x = TRUE);
R <- predictRisk(f, newdata = d[201:nrow(d), ], times = c(1095, 1825));
data.frame(time = d$time[201:nrow(d)], ev = d$ev[201:nrow(d)], R)"""


@pytest.fixture(scope="module")
def bc():
    d = load_breast_cancer(as_frame=True).frame
    p = 1 / (1 + np.exp(-(19.8 - 1.05 * d["mean radius"] - 0.22 * d["mean texture"])))
    return d.target.to_numpy(), p.to_numpy()


@pytest.fixture(scope="module")
def pbc_external(r_engine):
    # development on the first 200 patients, validation on the other 216 (a real external-style split)
    d = r_engine.run_r(PBC)
    R = d.iloc[:, 2:].to_numpy(float)
    assert (R >= 1 - 1e-12).any()          # a real extreme patient: predicted risk 1 by the Cox model
    return d.time.to_numpy(float), d.ev.to_numpy(int), np.clip(R, 1e-9, 1 - 1e-9)


def test_val_prob_published_values(bc):
    y, p = bc
    r = calibration_binary(y, p).set_index("metric").estimate
    # rms 6.5-0 val.prob(p, y): Intercept, Slope, Eavg, E90, Emax; glm offset model for CITL
    assert r["intercept"] == pytest.approx(-0.0160788940018, abs=1e-6)   # lrm.fit vs IRLS convergence
    assert r["slope"] == pytest.approx(1.0040638141962, abs=1e-6)
    assert r["CITL"] == pytest.approx(-0.013703247585, abs=1e-8)
    assert r["Eavg"] == pytest.approx(0.0056273418341, abs=1e-7)          # lowess: statsmodels vs C clowess
    assert r["E90"] == pytest.approx(0.0100171989750, abs=1e-7)
    assert r["Emax"] == pytest.approx(0.0171648337651, abs=1e-7)


def test_val_prob_live(r_engine, bc):
    y, p = bc
    # a deliberately miscalibrated version too (shrunken logits + shift)
    for prob in (p, 1 / (1 + np.exp(-(0.6 * np.log(p / (1 - p)) + 0.4)))):
        ref = r_engine.call_r("ps_r_val_prob", y=y, prob=prob).set_index("metric")
        mine = calibration_binary(y, prob).set_index("metric")
        for m in ("CITL", "intercept", "slope", "O/E"):
            assert mine.loc[m, "estimate"] == pytest.approx(ref.loc[m, "estimate"], abs=1e-6), m
            if m != "O/E":
                assert mine.loc[m, "se"] == pytest.approx(ref.loc[m, "se"], abs=1e-5), m
        for m in ("Eavg", "E50", "E90", "Emax"):
            assert mine.loc[m, "estimate"] == pytest.approx(ref.loc[m, "estimate"], abs=1e-7), m


def test_rcs_basis_matches_hmisc(r_engine, bc):
    _, p = bc
    x = np.log(p / (1 - p))
    xs = ", ".join(repr(float(v)) for v in x)
    for nk in (3, 4, 5):
        ref = np.asarray(r_engine.run_r(f"as.vector(Hmisc::rcspline.eval(c({xs}), nk = {nk}, inclx = TRUE))"))
        np.testing.assert_allclose(rcs_basis(x, rcs_knots(x, nk)).ravel(order="F"), ref, atol=1e-10)


def test_survival_calibration_live(r_engine, pbc_external):
    t, e, R = pbc_external
    kw = {"ties": "breslow"}
    for k, horizon in enumerate((1095.0, 1825.0)):
        ref = r_engine.call_r("ps_r_calibration_survival", time=t, event=e, risk=R[:, k], times=horizon, **kw)
        mine = calibration_survival(t, e, R[:, k], horizon, ties="breslow", engine="python")
        np.testing.assert_allclose(mine.estimate, ref.estimate, atol=1e-8)
        np.testing.assert_allclose(mine.se.to_numpy(float)[:2], ref.se.to_numpy(float)[:2], atol=1e-8)
    both = calibration_survival(t, e, R, [1095.0, 1825.0], ties="breslow", engine="python")
    assert both.time.unique().tolist() == [1095.0, 1825.0] and len(both) == 12


def test_survival_calibration_slope_ties_match_coxph(r_engine):
    """gbsg (real, tied event times): the slope equals coxph's with each tie method; Efron is the default."""
    d = r_engine.run_r("""local({d <- survival::gbsg; f <- survival::coxph(survival::Surv(rfstime, status) ~
        pgr + nodes + age, data = d); F <- 1 - exp(-survival::basehaz(f)$hazard[max(which(
        survival::basehaz(f)$time <= 1825))] * exp(predict(f)));
        cll <- log(-log1p(-F)); e <- survival::coxph(survival::Surv(d$rfstime, d$status) ~ cll);
        b <- survival::coxph(survival::Surv(d$rfstime, d$status) ~ cll, ties = 'breslow');
        list(t = d$rfstime, e = d$status, F = F, ref = c(coef(e), sqrt(vcov(e)), coef(b), sqrt(vcov(b))))})""")
    t, e, F, ref = np.asarray(d["t"], float), np.asarray(d["e"], int), np.asarray(d["F"], float), d["ref"]
    ef = calibration_survival(t, e, F, 1825.0, engine="python").set_index("metric").loc["slope"]
    br = calibration_survival(t, e, F, 1825.0, ties="breslow", engine="python").set_index("metric").loc["slope"]
    np.testing.assert_allclose([ef.estimate, ef.se, br.estimate, br.se], ref, rtol=1e-7)  # coxph eps 1e-9
    assert ef.method.endswith("Efron ties") and br.method.endswith("Breslow ties")
    assert abs(ef.estimate - br.estimate) > 1e-5        # the tie method matters on these data


def test_perfectly_calibrated_simulation_is_close_to_ideal():
    rng = np.random.default_rng(3)
    lp = rng.normal(-0.5, 1.2, 4000)
    p = 1 / (1 + np.exp(-lp))
    y = rng.binomial(1, p)
    r = calibration_binary(y, p).set_index("metric")
    assert r.loc["slope", "lower"] < 1 < r.loc["slope", "upper"]
    assert r.loc["CITL", "lower"] < 0 < r.loc["CITL", "upper"]
    assert r.loc["Eavg", "estimate"] < 0.02
    # survival: exponential times with known risk F(t) = 1 - exp(-h t)
    h = 0.1 * np.exp(lp)
    T = rng.exponential(1 / h)
    C = rng.uniform(0, 30, len(T))
    time, event = np.minimum(T, C), (T <= C).astype(int)
    F = 1 - np.exp(-h * 5)
    s = calibration_survival(time, event, F, 5.0).set_index("metric")
    assert s.loc["O/E", "lower"] < 1 < s.loc["O/E", "upper"]
    assert s.loc["slope", "lower"] < 1 < s.loc["slope", "upper"]
    assert s.loc["ICI", "estimate"] < 0.02


def test_curves_shape_and_ci(bc):
    y, p = bc
    for method in ("loess", "rcs"):
        c = calibration_curve_binary(y, p, method=method, n_boot=30, n_points=20)
        assert list(c.columns) == ["predicted", "observed", "lower", "upper", "method"]
        ok = c.dropna()
        assert len(ok) >= 15
        assert (ok.lower <= ok.observed + 1e-12).all() and (ok.observed <= ok.upper + 1e-12).all()
    rng = np.random.default_rng(0)
    F = rng.uniform(0.05, 0.9, 300)
    T = rng.exponential(1 / (-np.log(1 - F)))
    c = calibration_curve_survival(np.minimum(T, 3), (T <= 3).astype(int), F, 1.0, n_boot=20, n_points=10)
    assert c.observed.between(0, 1).all() and c.lower.notna().all()


def test_errors(bc):
    y, p = bc
    with pytest.raises(ValueError, match="constant"):
        calibration_binary(y, np.full(len(y), 0.3))
    with pytest.raises(ValueError, match="strictly inside"):
        calibration_binary(y, np.r_[0.0, p[1:]])
    with pytest.raises(ValueError, match="only one class"):
        calibration_binary(np.ones(20), np.linspace(0.1, 0.9, 20))
    with pytest.raises(ValueError, match=r"prob .*position 5"):
        calibration_binary(y, np.r_[p[:5], np.nan, p[6:]])
    with pytest.raises(ValueError, match="beyond the last follow-up"):
        calibration_survival(np.arange(1.0, 11), np.ones(10), np.linspace(0.1, 0.9, 10), 20.0)


def test_predictions_of_exactly_0_or_1_are_moved_inside_for_calibration():
    """Tree ensembles predict exactly 0 or 1: the calibration figures' tables move them to 1e-6 / 1 - 1e-6
    (rms::val.prob would drop them) and count them, instead of failing the whole table."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier

    from prime_stats.evaluation.calibration import PROBABILITY_FLOOR, calibration_binary, clip_probability
    from prime_stats.report import figures_data as fd

    X, y = load_breast_cancer(return_X_y=True)
    p = RandomForestClassifier(n_estimators=50, random_state=0).fit(X[:300], y[:300]).predict_proba(X[300:])[:, 1]
    y = y[300:]
    n01 = int(((p == 0) | (p == 1)).sum())
    assert n01 > 0
    with pytest.raises(ValueError, match="contains 0 or 1"):
        calibration_binary(y, p, engine="python")
    moved, k = clip_probability(p)
    assert k == n01 and moved.min() == PROBABILITY_FLOOR and moved.max() == 1 - PROBABILITY_FLOOR
    np.testing.assert_array_equal(moved[(p > 0) & (p < 1)], p[(p > 0) & (p < 1)])
    curves = fd.calibration_curves(y, {"forest": p}, n_boot=20)
    assert (curves["n_clipped"] == n01).all() and np.isfinite(curves["observed"]).any()
    # survival risks F(t|x) = 0 for a whole group (a forest's leaf with no deaths) are moved the same way
    from lifelines.datasets import load_gbsg2
    gb = load_gbsg2()
    t, e = gb["time"].to_numpy(float), gb["cens"].to_numpy(int)
    F = np.clip((gb["pnodes"].to_numpy(float) - 1) / 30, 0, 1)        # risk 0 for one-node patients
    assert (F == 0).sum() > 0
    sc = fd.calibration_curves_survival(t, e, {"nodes": F}, 730.5, n_boot=0)
    assert (sc["n_clipped"] == int(((F == 0) | (F == 1)).sum())).all() and np.isfinite(sc["observed"]).all()
