"""Bootstrap optimism correction of whole pipelines (resumable, parallel, costed) and percentile CIs.

The key check: an unpenalised logistic model fitted without selection on real data (scikit-learn's
breast-cancer features) must give the same apparent indices as rms::lrm and optimism-corrected
Dxy/AUC, slope, intercept and Brier that agree with rms::validate(B = 200) within Monte-Carlo error.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from prime_stats.evaluation import resampling as rs

COLS = ["mean radius", "mean texture", "mean smoothness", "mean symmetry"]


def _lrm():
    """Unpenalised maximum-likelihood logistic regression (the estimator rms::lrm fits)."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-10,
                                                              max_iter=1000))


@pytest.fixture(scope="module")
def bc():
    d = load_breast_cancer(as_frame=True)
    return d.data[COLS], d.target.to_numpy()


def test_optimism_matches_rms_validate(r_engine, bc):
    if not r_engine.r_available(["rms"]):
        pytest.skip("rms is not installed")
    X, y = bc
    B = 200
    py = rs.bootstrap_optimism(_lrm(), X, y, scoring=["dxy", "auc", "slope", "intercept", "brier"], B=B,
                               n_jobs=2, random_state=11).set_index("metric")
    r = r_engine.call_r("ps_r_validate_lrm", x=X, y=y, B=B, seed=11).set_index("metric")
    pairs = {"dxy": "Dxy", "auc": "AUC", "slope": "Slope", "intercept": "Intercept", "brier": "Brier"}
    for m, rm in pairs.items():
        # same model, same data: identical apparent performance
        assert py.at[m, "apparent"] == pytest.approx(r.at[rm, "apparent"], abs=1e-6), m
        # two independent bootstrap runs: difference SE ~ sqrt(2) x Python's Monte-Carlo SE
        tol = 4 * np.sqrt(2) * py.at[m, "optimism_se"]
        assert abs(py.at[m, "corrected"] - r.at[rm, "corrected"]) < tol, (m, py.at[m, "corrected"],
                                                                           r.at[rm, "corrected"], tol)
    assert py.at["slope", "corrected"] < 1 and py.at["auc", "optimism"] > 0


def test_whole_pipeline_is_refitted_on_each_bootstrap_sample():
    # 200 pure-noise features, selection of the 5 "best" inside the pipeline: the apparent AUC is
    # optimistic, the corrected one must fall back towards 0.5 (it would not if selection used all data)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 200))
    y = rng.integers(0, 2, 120)
    pipe = make_pipeline(SelectKBest(f_classif, k=5), LogisticRegression(C=np.inf, max_iter=1000))
    res = rs.bootstrap_optimism(pipe, X, y, scoring=["auc"], B=40, plus632=True, n_jobs=2,
                                random_state=0).set_index("metric")
    assert res.at["auc", "apparent"] > 0.7
    assert abs(res.at["auc", "corrected"] - 0.5) < 0.12
    assert 0.5 <= res.at["auc", "estimate_632plus"] <= res.at["auc", "apparent"]
    assert res.at["auc", "no_information"] == 0.5
    assert res.at["auc", "oob"] < 0.65


def test_reproducible_and_independent_of_n_jobs(bc):
    X, y = bc
    a = rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc", "brier"], B=12, n_jobs=1, random_state=5)
    b = rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc", "brier"], B=12, n_jobs=2, random_state=5)
    pd.testing.assert_frame_equal(a, b)
    c = rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc"], B=12, random_state=6)
    assert c["optimism"].iloc[0] != a["optimism"].iloc[0]


def test_plus632_brier_uses_closed_form_no_information(bc):
    X, y = bc
    res = rs.bootstrap_optimism(_lrm(), X, y, scoring=["brier"], B=10, plus632=True, random_state=1)
    p = _lrm().fit(X, y).predict_proba(X)[:, 1]
    gamma = np.mean((y[:, None] - p[None, :]) ** 2)  # Efron & Tibshirani's (1/n^2) sum_ij L(y_i, f(x_j))
    assert res["no_information"].iloc[0] == pytest.approx(gamma, rel=1e-12)
    r = res.iloc[0]
    assert r["apparent"] <= r["estimate_632plus"] <= max(r["oob"], r["apparent"])


def test_c_index_and_time_dependent_metrics_with_survival_pipeline(tmp_path):
    from sksurv.datasets import load_whas500
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    from prime_stats.evaluation.bootstrap import resample_indices
    from prime_stats.evaluation.discrimination import concordance_index, time_dependent_auc

    X, y = load_whas500()
    X = X[["age", "bmi", "hr", "sysbp", "diasbp"]].astype(float)
    t, e = y["lenfol"].astype(float), y["fstat"].astype(int)
    res = rs.bootstrap_optimism(CoxPHSurvivalAnalysis(), X, y, scoring=["c_index", "auc_t", "ibs"], B=6,
                                random_state=0, stratify=True, times=[365, 730, 1095])
    est = CoxPHSurvivalAnalysis().fit(X, y)
    c = res.set_index("metric").loc["c_index"]
    assert c["apparent"] == pytest.approx(concordance_index(t, e, est.predict(X)).estimate[0], abs=1e-12)
    assert 0 < c["optimism"] < 0.05 and c["B"] == 6
    assert list(res.query("metric == 'auc_t'").time) == [365, 730, 1095] and len(res) == 5
    # replicate 2: training = the metric functions on the bootstrap rows, test = on the original rows
    rep = pd.DataFrame(res.attrs["replicates"]).set_index("replicate").loc[2]
    idx = resample_indices(len(t), rep["seed"], 2, 3, strata=e)[0]
    fb = CoxPHSurvivalAnalysis().fit(X.iloc[idx], y[idx])
    F = 1 - np.array([[f(s) for s in (365, 730, 1095)] for f in fb.predict_survival_function(X)])
    assert rep["c_index|training"] == pytest.approx(
        concordance_index(t[idx], e[idx], fb.predict(X.iloc[idx])).estimate[0], abs=1e-12)
    assert rep["auc_t@730|test"] == pytest.approx(time_dependent_auc(t, e, F, [365, 730, 1095]).estimate[1],
                                                  abs=1e-12)


def test_resumable_from_folder_parallel_and_progress(bc, tmp_path):
    X, y = bc
    full = rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc", "slope"], B=10, random_state=3)
    part = rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc", "slope"], B=6, random_state=3, folder=tmp_path)
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert files == [f"seed3_rep{b:06d}.json" for b in range(6)]
    # the first 6 replicates are reused (a marker written into one file shows it is read, not refitted)
    f = tmp_path / "seed3_rep000004.json"
    rec = json.loads(f.read_text())
    f.write_text(json.dumps(dict(rec, error="marker: not refitted")))
    resumed = rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc", "slope"], B=10, random_state=3, n_jobs=2,
                                    folder=tmp_path, progress=True)
    assert resumed["B_failed"].iloc[0] == 1 and resumed["B"].iloc[0] == 9
    f.write_text(json.dumps(rec))
    resumed = rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc", "slope"], B=10, random_state=3, folder=tmp_path)
    pd.testing.assert_frame_equal(resumed, full)
    assert part["B"].iloc[0] == 6
    # files written for other metrics are not reused
    other = rs.bootstrap_optimism(_lrm(), X, y, scoring=["brier"], B=3, random_state=3, folder=tmp_path)
    assert other["B"].iloc[0] == 3 and "brier|test" in json.loads((tmp_path / "seed3_rep000001.json").read_text())


def test_cost_is_estimated_before_refitting(bc):
    X, y = bc
    with pytest.warns(UserWarning, match=r"refitting Pipeline 50 times is estimated to take .* \(one fit on all 569"):
        rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc"], B=50, random_state=0, warn_seconds=0)
    with pytest.raises(RuntimeError, match="above max_seconds=1e-06"):
        rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc"], B=50, random_state=0, max_seconds=1e-6)
    res = rs.bootstrap_optimism(_lrm, X, y, scoring=["auc"], B=4, random_state=0)     # a factory
    assert res.attrs["cost"]["replicates_to_run"] == 4 and res.attrs["cost"]["fit_seconds"] > 0


def test_dask_client_gives_the_same_numbers(bc):
    distributed = pytest.importorskip("distributed")
    X, y = bc
    local = rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc", "brier"], B=6, random_state=9)
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=2,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            remote = rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc", "brier"], B=6, random_state=9,
                                           client=client)
        by_address = rs.bootstrap_optimism(_lrm(), X, y, scoring=["auc", "brier"], B=6, random_state=9,
                                           client=cluster.scheduler_address)
    pd.testing.assert_frame_equal(local, remote)
    pd.testing.assert_frame_equal(local, by_address)


def test_bootstrap_ci_percentiles_and_strata(bc):
    X, y = bc
    p = _lrm().fit(X, y).predict_proba(X)[:, 1]
    ci = rs.bootstrap_ci(lambda yy, pp: {"auc": roc_auc_score(yy, pp), "brier": np.mean((yy - pp) ** 2)},
                         y, p, B=300, n_jobs=2, random_state=0, stratify=True).set_index("metric")
    assert ci.at["auc", "estimate"] == pytest.approx(roc_auc_score(y, p))
    assert ci.at["auc", "lower"] < ci.at["auc", "estimate"] < ci.at["auc", "upper"]
    reps = rs.bootstrap_ci(lambda yy: yy.mean(), y, B=50, random_state=0, stratify=True).attrs["replicates"]
    reps = pd.DataFrame(reps)
    assert np.allclose(reps["metric"], y.mean())  # stratified resampling keeps the class counts
    # percentile CI equals the empirical quantiles of the replicates it reports
    x = np.random.default_rng(0).normal(10, 2, 400)
    res = rs.bootstrap_ci(np.mean, x, B=1000, random_state=1)
    rep = pd.DataFrame(res.attrs["replicates"])["metric"]
    assert res["lower"].iloc[0] == pytest.approx(np.quantile(rep, 0.025))
    assert res["se"].iloc[0] == pytest.approx(2 / np.sqrt(400), rel=0.12)
    # undefined replicates (one class) are dropped and counted
    yy = np.r_[np.ones(3), np.zeros(97)]
    out = rs.bootstrap_ci(roc_auc_score, yy, np.linspace(0, 1, 100), B=200, random_state=0)
    assert out["B_failed"].iloc[0] > 0 and out["B"].iloc[0] + out["B_failed"].iloc[0] == 200


def test_errors(bc):
    X, y = bc
    with pytest.raises(ValueError, match="unknown metric 'auroc'"):
        rs.bootstrap_optimism(_lrm(), X, y, scoring=["auroc"], B=2)
    with pytest.raises(ValueError, match="X has 569 rows but y has 10"):
        rs.bootstrap_optimism(_lrm(), X, y[:10], B=2)
    with pytest.raises(ValueError, match="same length"):
        rs.bootstrap_ci(np.mean, np.ones(5), np.ones(4))
    with pytest.raises(ValueError, match="'c_index' \\(a survival metric: y must be a structured array\\)"):
        rs.bootstrap_optimism(_lrm(), X, y, scoring=["c_index"], B=2)
