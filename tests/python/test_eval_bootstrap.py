"""Vectorised bootstrap: every replicate equals the per-replicate metric functions on the same resampled
rows (1e-12), on real data (GBSG2: German Breast Cancer Study Group, n = 686, risks from a Cox model;
scikit-learn's breast-cancer data for the binary metrics), with and without ties; BCa intervals equal
scipy.stats.bootstrap's on the same resamples; the tidy score_* rows and paired contrasts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from lifelines.datasets import load_gbsg2
from scipy import stats
from sklearn.datasets import load_breast_cancer
from sksurv.linear_model import CoxPHSurvivalAnalysis

from prime_stats.evaluation import bootstrap as bs
from prime_stats.evaluation.calibration import calibration_binary, calibration_survival
from prime_stats.evaluation.decision import net_benefit
from prime_stats.evaluation.discrimination import auc_delong, concordance_index, time_dependent_auc
from prime_stats.evaluation.overall import brier_binary, brier_survival, integrated_brier_score
from prime_stats.evaluation.score import score_binary, score_survival

TIMES = [365.0, 730.0, 1095.0, 1460.0]
AUC_M = "IPCW cumulative/dynamic (KM censoring)"


def _cox_risks(d, cols):
    X = d[cols].astype(float).to_numpy()
    y = np.array(list(zip(d.cens.astype(bool), d.time.astype(float))), dtype=[("e", bool), ("t", float)])
    m = CoxPHSurvivalAnalysis().fit(X, y)
    F = 1 - np.array([[f(t) for t in TIMES] for f in m.predict_survival_function(X)])
    return F, m.predict(X)


@pytest.fixture(scope="module")
def gbsg():
    d = load_gbsg2()
    F, lp = _cox_risks(d, ["age", "tsize", "pnodes", "progrec", "estrec"])
    F2, lp2 = _cox_risks(d, ["age", "tsize"])
    return d.time.to_numpy(float), d.cens.to_numpy(int), {"full": F, "small": F2}, {"full": lp, "small": lp2}


def _per_replicate(t, e, F, s):
    """The per-replicate functions of the evaluation modules on one resampled data set."""
    ref = {}
    for tw, name in (("n", "Harrell"), ("n/G2", "Uno (n/G2)")):
        ref[("C-index", name, np.nan)] = concordance_index(t, e, s, tw, engine="python").estimate[0]
    for k, tt in enumerate(TIMES):
        ref[("AUC(t)", AUC_M, tt)] = time_dependent_auc(t, e, F, TIMES, engine="python").estimate[k]
    for _, row in brier_survival(t, e, F, TIMES, engine="python").iterrows():
        ref[(row.metric, row.method, row.time)] = row.estimate
    ib = integrated_brier_score(t, e, F, TIMES, engine="python")
    ref[("IBS", ib.method[0], ib.time[0])] = ib.estimate[0]
    for k, tt in enumerate(TIMES):
        c = calibration_survival(t, e, F[:, k], tt, ties="breslow", engine="python").set_index("metric").estimate
        ref[("O/E", "1-KM(t) / mean predicted risk", tt)] = c["O/E"]
        ref[("slope", "Cox on cloglog(F), Breslow ties", tt)] = c["slope"]
    return ref


def _same_key(a, b):
    return a[0] == b[0] and a[1] == b[1] and (a[2] == b[2] or (np.isnan(a[2]) and np.isnan(b[2])))


@pytest.mark.parametrize("ties", [False, True])
def test_survival_replicates_equal_per_replicate_functions(gbsg, ties):
    t, e, F, s = gbsg[0], gbsg[1], gbsg[2]["full"], gbsg[3]["full"]
    if ties:  # follow-up in whole months and risks to 2 decimals: tied times, tied events/censorings, tied risks
        t = np.ceil(t / 30.4375) * 30.4375
        F, s = np.round(F, 2).clip(0.01, 0.99), np.round(s, 1)
    ev = bs.SurvivalWeights(t, e, F, s, TIMES)
    idx = bs.resample_indices(len(t), 2026, 0, 12)
    got = ev.evaluate(bs.resample_counts(idx, len(t)))
    assert len(got) == 2 + 5 * 4 + 1          # Harrell, Uno; AUC/Brier/IPA/O/E/slope at 4 times; IBS
    worst = {"closed form": 0.0, "slope": 0.0}
    for b, i in enumerate(idx):
        for key, v in _per_replicate(t[i], e[i], F[i], s[i]).items():
            k = next(k for k in got if _same_key(k, key))
            kind = "slope" if key[0] == "slope" else "closed form"
            worst[kind] = max(worst[kind], abs(got[k][b] - v))
    # closed-form statistics agree to rounding; the calibration slope is a Newton-Raphson root in both
    # paths (weighted vs resampled rows), equal to the solvers' convergence (coxph's eps is 1e-9)
    assert worst["closed form"] < 1e-12 and worst["slope"] < 1e-8, worst
    # the estimate (all weights 1) is the function on the original data
    full = ev.evaluate(np.ones((len(t), 1)))
    assert full[("C-index", "Harrell", np.nan, np.nan)][0] == pytest.approx(
        concordance_index(t, e, s).estimate[0], abs=1e-14)


def _assert_concordance_replicates_equal_per_replicate(t, e, s, seed, B):
    """Harrell's and Uno's C of B vectorised replicates equal concordance_index on the resampled rows
    (1e-12); returns the SurvivalWeights evaluator."""
    n = len(t)
    ev = bs.SurvivalWeights(t, e, np.zeros((n, 0)), s, [], metrics=("harrell", "uno"))
    idx = bs.resample_indices(n, seed, 0, B)
    got = ev.evaluate(bs.resample_counts(idx, n))
    for b, i in enumerate(idx):
        for tw, name in (("n", "Harrell"), ("n/G2", "Uno (n/G2)")):
            ref = concordance_index(t[i], e[i], s[i], tw, engine="python").estimate[0]
            assert abs(got[("C-index", name, np.nan, np.nan)][b] - ref) < 1e-12, (b, name)
    return ev


def test_concordance_heavy_ties_equal_per_replicate_function():
    """The Fenwick sweep on data that is mostly ties: 5 distinct times (events and censorings tied with
    each other), 3 distinct risk scores, 40 replicates; Harrell and Uno equal concordance_index on the
    resampled rows to 1e-12. Weights must be whole numbers (frequency weights)."""
    rng = np.random.default_rng(15)
    n = 60
    t, e, s = rng.integers(1, 6, n).astype(float), rng.integers(0, 2, n), rng.integers(0, 3, n).astype(float)
    ev = _assert_concordance_replicates_equal_per_replicate(t, e, s, seed=3, B=40)
    with pytest.raises(ValueError, match="whole numbers"):
        ev.evaluate(np.full((n, 1), 0.5))


def test_uno_with_rows_left_out_beyond_the_resamples_last_censoring():
    """A row left out of a resample may have G(T-) = 0 under that resample's censoring KM (its time is
    past the resample's last, censored, time); it carries weight 0 and must not stop the sweep. Uno's
    and Harrell's C equal concordance_index on the resampled rows (50 replicates)."""
    rng = np.random.default_rng(0)
    n = 40
    t, e, s = rng.exponential(100, n), rng.binomial(1, 0.7, n), rng.normal(size=n)
    _assert_concordance_replicates_equal_per_replicate(t, e, s, seed=0, B=50)


def test_efron_slope_equals_statsmodels_on_resampled_rows(gbsg):
    """Efron ties (survival::coxph's default): the weighted likelihood of duplicated rows, checked against a
    fully converged statsmodels PHReg(ties="efron") on each resample (month-rounded times: many ties)."""
    t, e, F, s = gbsg[0], gbsg[1], gbsg[2]["full"], gbsg[3]["full"]
    t = np.ceil(t / 30.4375) * 30.4375
    ev = bs.SurvivalWeights(t, e, F, s, TIMES, metrics=("slope",), ties="efron")
    idx = bs.resample_indices(len(t), 5, 0, 6)
    got = ev.evaluate(bs.resample_counts(idx, len(t)))
    for k, tt in enumerate(TIMES):
        v = got[("slope", "Cox on cloglog(F), Efron ties", tt, np.nan)]
        for b, i in enumerate(idx):
            x = np.log(-np.log1p(-F[i, k]))[:, None]
            ref = sm.PHReg(t[i], x, status=e[i], ties="efron").fit(disp=False, method="newton", tol=1e-14, maxiter=200)
            assert v[b] == pytest.approx(ref.params[0], abs=1e-10)
    with pytest.raises(ValueError, match="ties must be 'efron' or 'breslow'"):
        bs.SurvivalWeights(t, e, F, s, TIMES, ties="exact")


def test_jackknife_and_undefined_replicates(gbsg):
    t, e, F, s = gbsg[0], gbsg[1], gbsg[2]["full"], gbsg[3]["full"]
    ev = bs.SurvivalWeights(t, e, F, s, TIMES, metrics=("harrell", "auc", "brier"))
    W = bs._jackknife_weights(len(t), 0, 100, 103, len(t))        # leave out rows 100, 101, 102
    got = ev.evaluate(W)
    for j, row in enumerate(range(100, 103)):
        keep = np.arange(len(t)) != row
        assert got[("C-index", "Harrell", np.nan, np.nan)][j] == pytest.approx(
            concordance_index(t[keep], e[keep], s[keep]).estimate[0], abs=1e-12)
        assert got[("Brier", "IPCW (KM censoring)", 1460.0, np.nan)][j] == pytest.approx(
            brier_survival(t[keep], e[keep], F[keep], TIMES).query("metric == 'Brier'").estimate.iloc[-1],
            abs=1e-12)
    # a resample whose follow-up ends before a horizon: Brier/AUC there undefined (the function raises)
    short = np.zeros((len(t), 1))
    short[np.argsort(t)[:300], 0] = 1.0
    got = ev.evaluate(short)
    with pytest.raises(ValueError, match="beyond the last follow-up"):
        brier_survival(t[np.argsort(t)[:300]], e[np.argsort(t)[:300]], F[np.argsort(t)[:300]], TIMES)
    assert np.isnan(got[("Brier", "IPCW (KM censoring)", 1460.0, np.nan)][0])
    assert np.isnan(got[("AUC(t)", AUC_M, 1460.0, np.nan)][0])


def test_binary_replicates_equal_per_replicate_functions():
    d = load_breast_cancer(as_frame=True).frame
    y = d.target.to_numpy()
    p = (1 / (1 + np.exp(-(19.8 - 1.05 * d["mean radius"] - 0.22 * d["mean texture"])))).to_numpy()
    p = np.round(p, 2).clip(0.005, 0.995)           # ties in the predictions
    th = [0.1, 0.3, 0.5]
    ev = bs.BinaryWeights(y, p, th)
    idx = bs.resample_indices(len(y), 7, 0, 10)
    got = {(k[0], k[3]): v for k, v in ev.evaluate(bs.resample_counts(idx, len(y))).items()}
    for b, i in enumerate(idx):
        yy, pp = y[i], p[i]
        ref = {("AUC", np.nan): auc_delong(yy, pp, engine="python").estimate[0]}
        br = brier_binary(yy, pp, engine="python").set_index("metric").estimate
        cal = calibration_binary(yy, pp, engine="python").set_index("metric").estimate
        ref.update({("Brier", np.nan): br["Brier"], ("IPA", np.nan): br["IPA"], ("O/E", np.nan): cal["O/E"]})
        nb = net_benefit(yy, pp, th, engine="python").query("model == 'model'").set_index("threshold").net_benefit
        ref.update({("net benefit", t): nb[t] for t in th})
        for k, v in ref.items():
            kk = next(g for g in got if g[0] == k[0] and (g[1] == k[1] or (np.isnan(g[1]) and np.isnan(k[1]))))
            assert abs(got[kk][b] - v) < 1e-12, (k, got[kk][b], v)
        # logistic recalibration: calibration_binary's statsmodels IRLS stops at a deviance change of 1e-8,
        # so it agrees to ~1e-11; a fully converged statsmodels fit agrees to 1e-12
        lp = np.log(pp / (1 - pp))
        tight = sm.GLM(yy, sm.add_constant(lp), family=sm.families.Binomial()).fit(tol=1e-15, maxiter=200)
        citl = sm.GLM(yy, np.ones((len(yy), 1)), family=sm.families.Binomial(), offset=lp).fit(tol=1e-15,
                                                                                               maxiter=200)
        for name, v, loose in (("intercept", tight.params[0], cal["intercept"]),
                               ("slope", tight.params[1], cal["slope"]), ("CITL", citl.params[0], cal["CITL"])):
            kk = next(g for g in got if g[0] == name)
            assert abs(got[kk][b] - v) < 1e-12 and abs(got[kk][b] - loose) < 1e-9, name


def test_bca_equals_scipy_bootstrap_on_the_same_resamples(gbsg):
    t, e, s = gbsg[0][:200], gbsg[1][:200], gbsg[3]["full"][:200]
    n, B = len(t), 300

    def harrell(i, axis=-1):
        return concordance_index(t[i], e[i], s[i]).estimate[0]

    ref = stats.bootstrap((np.arange(n),), harrell, vectorized=False, n_resamples=B, method="BCa",
                          confidence_level=0.9, rng=np.random.default_rng(5))
    idx = np.random.default_rng(5).integers(0, n, (B, n))       # scipy's resamples
    ev = bs.SurvivalWeights(t, e, np.zeros((n, 0)), s, [], metrics=("harrell",))
    key = ("C-index", "Harrell", np.nan, np.nan)
    reps = ev.evaluate(bs.resample_counts(idx, n))[key]
    jack = ev.evaluate(bs._jackknife_weights(n, 0, 0, n, n))[key]
    est = ev.evaluate(np.ones((n, 1)))[key][0]
    lo, hi = bs.bca_interval(reps, est, jack, 0.9)
    assert lo == pytest.approx(ref.confidence_interval.low, abs=1e-12)
    assert hi == pytest.approx(ref.confidence_interval.high, abs=1e-12)
    assert np.std(reps, ddof=1) == pytest.approx(ref.standard_error, abs=1e-12)


def test_resamples_depend_only_on_seed_and_replicate():
    a = bs.resample_indices(50, 3, 0, 40)
    assert np.array_equal(a[13:29], bs.resample_indices(50, 3, 13, 29))
    assert not np.array_equal(a, bs.resample_indices(50, 4, 0, 40))
    strata = np.r_[np.zeros(10), np.ones(40)]
    idx = bs.resample_indices(50, 3, 0, 16, strata=strata)
    assert (np.isin(idx, np.arange(10)).sum(1) == 10).all()      # stratum sizes kept
    W = bs.resample_counts(idx, 50)
    assert W.shape == (50, 16) and (W.sum(0) == 50).all()
    # delete-group jackknife above jackknife_max: every row is left out exactly once
    J = bs._jackknife_weights(50, 3, 0, 7, 7)
    assert J.shape == (50, 7) and ((1 - J).sum(1) == 1).all() and (J.sum(0) >= 42).all()


def test_score_survival_bootstrap_rows_and_contrasts(gbsg):
    t, e, F, s = gbsg
    out = score_survival(t, e, F, TIMES, risk_scores=s, engine="python", bootstrap=200, seed=11)
    pct = out[out.method.str.contains("percentile bootstrap") & ~out.metric.str.endswith("difference")]
    bca = out[out.method.str.contains("BCa bootstrap")]
    assert len(pct) == len(bca) == 2 * (2 + 5 * 4 + 1)
    assert (pct.lower <= pct.estimate).all() and (pct.estimate <= pct.upper).all()
    # the bootstrap rows' estimates are the analytic rows' estimates
    point = out[~out.method.str.contains("bootstrap")]
    for _, r in pct.iterrows():
        base = r.method.split(";")[0]
        m = point[(point.model == r.model) & (point.metric == r.metric) & point.method.map(base.startswith)
                  & ((point.time == r.time) | (point.time.isna() & np.isnan(r.time)))]
        assert len(m) == 1 and m.estimate.iloc[0] == pytest.approx(r.estimate, abs=1e-12), r.method
    # reproducible, independent of the chunk size, and percentile bounds are the replicates' quantiles
    boot = bs.bootstrap_survival(t, e, F, TIMES, s, B=200, seed=11, chunk_elements=5000, bca=False)
    boot2 = bs.bootstrap_survival(t, e, F, TIMES, s, B=200, seed=11)
    np.testing.assert_allclose(boot.replicates, boot2.replicates, rtol=0, atol=1e-12)
    j = boot.keys.index(("full", "C-index", "Harrell", np.nan, np.nan))
    row = pct[(pct.model == "full") & (pct.method.str.startswith("Harrell"))].iloc[0]
    assert row.lower == pytest.approx(np.quantile(boot.replicates[:, j], 0.025), abs=1e-12)
    # paired contrasts: differences of the same replicates
    con = out[out.metric == "C-index difference"].set_index("method")
    c = con.loc["Harrell; paired percentile bootstrap (B=200)"]
    jb = boot.keys.index(("small", "C-index", "Harrell", np.nan, np.nan))
    diff = boot.replicates[:, j] - boot.replicates[:, jb]
    assert c.model == "full vs small" and c.estimate == pytest.approx(boot.estimate[j] - boot.estimate[jb])
    assert c.upper == pytest.approx(np.quantile(diff, 0.975)) and c.lower > 0
    assert c.p_value == pytest.approx(2 * (1 + min((diff <= 0).sum(), (diff >= 0).sum())) / 201)
    assert set(out[out.metric.str.endswith("difference")].metric) == {
        "C-index difference", "AUC(t) difference", "Brier difference", "IPA difference", "IBS difference",
        "O/E difference", "slope difference"}


def test_score_binary_bootstrap_net_benefit_and_contrasts():
    d = load_breast_cancer(as_frame=True).frame
    y = d.target.to_numpy()
    preds = {"two": (1 / (1 + np.exp(-(19.8 - 1.05 * d["mean radius"] - 0.22 * d["mean texture"])))).to_numpy(),
             "one": (1 / (1 + np.exp(-(15.2 - 1.07 * d["mean radius"])))).to_numpy()}
    out = score_binary(y, preds, engine="python", bootstrap=300, seed=1, thresholds=[0.2, 0.5])
    assert "threshold" in out
    nb = out[(out.metric == "net benefit") & out.method.str.contains("percentile")]
    assert sorted(nb.threshold.unique()) == [0.2, 0.5] and len(nb) == 4
    ref = net_benefit(y, {"two": preds["two"]}, [0.2], engine="python").query("model == 'two'").net_benefit.iloc[0]
    assert nb[(nb.model == "two") & (nb.threshold == 0.2)].estimate.iloc[0] == pytest.approx(ref, abs=1e-14)
    auc = out[(out.metric == "AUC") & (out.method == "DeLong")].set_index("model").estimate
    diff = out[(out.metric == "AUC difference") & out.method.str.contains("bootstrap")].iloc[0]
    assert diff.estimate == pytest.approx(auc["two"] - auc["one"], abs=1e-14) and 0 <= diff.p_value <= 1
    # DeLong and bootstrap SEs of the AUC difference agree (different estimators of the same SE)
    delong = out[(out.metric == "AUC difference") & (out.method == "DeLong paired test")].iloc[0]
    assert diff.se == pytest.approx(delong.se, rel=0.25)
    base = score_binary(y, preds, engine="python")
    assert list(base.columns) == list(out.columns[:-1])            # threshold only when requested
    assert not pd.isna(out[out.method.str.contains("BCa")].lower).any()


def test_replicates_equal_riskregression_score_on_the_same_rows(r_engine, gbsg):
    """Reference check: R's Score/concordance on the resampled rows prime-stats used (gbsg, 3 replicates)."""
    if not r_engine.r_available(["riskRegression", "survival"]):
        pytest.skip("riskRegression is not installed")
    t, e, F, s = gbsg[0], gbsg[1], gbsg[2]["full"], gbsg[3]["full"]
    idx = bs.resample_indices(len(t), 99, 0, 3)
    got = bs.SurvivalWeights(t, e, F, s, TIMES, metrics=("harrell", "auc", "brier")).evaluate(
        bs.resample_counts(idx, len(t)))
    for b, i in enumerate(idx):
        r_engine.run_r("suppressMessages({library(survival); library(riskRegression)})")
        ref = r_engine.call_r("ps_r_score_survival", time=t[i], event=e[i], risks={"m": pd.DataFrame(F[i])},
                              times=np.array(TIMES)).set_index(["metric", "time"]).estimate
        c = r_engine.call_r("ps_r_concordance", time=t[i], event=e[i], risk=s[i]).estimate.iloc[0]
        assert got[("C-index", "Harrell", np.nan, np.nan)][b] == pytest.approx(c, abs=1e-10)
        for tt in TIMES:
            assert got[("AUC(t)", AUC_M, tt, np.nan)][b] == pytest.approx(ref[("AUC(t)", tt)], abs=1e-10)
            assert got[("Brier", "IPCW (KM censoring)", tt, np.nan)][b] == pytest.approx(ref[("Brier", tt)],
                                                                                         abs=1e-10)


def test_contrast_of_two_models_that_rank_alike_has_p_value_one(gbsg):
    """A model and a monotone transform of it have the same C and AUC(t) in every replicate: the paired
    differences are 0 up to rounding, which the p-value counts as 0 whatever its sign (p = 1)."""
    t, e, F, s = gbsg
    lp = s["full"]
    same = {"a": lp, "b": 0.1 + lp * (1 + 1e-15)}
    FF = {"a": F["full"], "b": F["full"]}
    con = bs.bootstrap_survival(t, e, FF, TIMES, same, B=200, seed=5, bca=False).contrasts()
    ranked = con[con.metric.str.startswith(("C-index", "AUC"))]
    assert len(ranked) and (ranked.p_value == 1.0).all()
    assert (ranked[["lower", "upper"]].abs().to_numpy() < 1e-12).all()
