"""Selectors: what they keep, why, on which scale, and agreement with reference implementations."""
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sksurv.linear_model import CoxnetSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.util import Surv

from prime_stats.features import (CoxnetSelector, cox_partial_loglik, ElasticNetLogisticSelector, MissingnessFilter,
                                  UnivariateLogisticScreen, VarianceFilter, selection_report,
                                  survival_arrays)
from prime_stats.models import make_response_pipeline


@pytest.fixture(scope="module")
def bc():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


def _cox_data(n=300, p=25, seed=0):
    """Cox data with three planted effects (x0, x1, x2) and random censoring."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"x{j}" for j in range(p)])
    eta = 1.0 * X.x0 - 0.8 * X.x1 + 0.6 * X.x2
    t = rng.exponential(np.exp(-eta))
    c = rng.exponential(np.median(t) * 2, size=n)
    return X, Surv.from_arrays(t <= c, np.minimum(t, c))


def test_missingness_filter_threshold_report_and_names():
    X = pd.DataFrame({"a": [1, np.nan, 3, 4, 5, 6, 7, 8, 9, 10.0],       # 10 % missing
                      "b": [np.nan] * 3 + [1.0] * 7,                       # 30 %
                      "c": [np.nan] * 4 + [1.0] * 6})                      # 40 %
    f = MissingnessFilter(0.3).set_output(transform="pandas").fit(X)
    out = f.transform(X)
    assert list(out.columns) == ["a", "b"]          # 30 % is kept (rule is "> 30 % dropped")
    assert np.isnan(out.iloc[1, 0])                 # it filters, it does not impute
    rep = f.report_.set_index("feature")
    assert rep.loc["c", "reason"] == "missing > 30%" and not rep.loc["c", "kept"]
    assert rep.loc["c", "value"] == pytest.approx(0.4)


def test_missingness_filter_names_non_numeric_column():
    X = pd.DataFrame({"age": [50.0, 60.0], "bclc": ["B", "C"]})
    with pytest.raises(ValueError, match="bclc"):
        MissingnessFilter().fit(X)


def test_variance_filter_uses_raw_scale_and_matches_sklearn(bc):
    X, _ = bc
    f = VarianceFilter(0.01).fit(X)
    np.testing.assert_allclose(f.report_["value"], np.var(X.to_numpy(), axis=0), rtol=1e-12)
    assert f.support_.tolist() == (VarianceThreshold(0.01).fit(X).variances_ >= 0.01).tolist()
    kept = set(f.get_feature_names_out())
    assert "mean area" in kept and "mean smoothness" not in kept   # var(smoothness) ~ 2e-4
    # after z-scoring every variance is 1, so the threshold would keep everything: order matters
    Z = StandardScaler().fit_transform(X)
    assert VarianceFilter(0.01).fit(Z).support_.all()


def test_univariate_screen_matches_statsmodels_lrt(bc):
    import statsmodels.api as sm
    X, y = bc
    cols = ["mean radius", "mean texture", "mean smoothness", "mean fractal dimension",
            "texture error", "symmetry error"]
    s = UnivariateLogisticScreen(alpha=0.05).fit(X[cols], y)
    for j, c in enumerate(cols):
        ref = sm.Logit(y, sm.add_constant(X[[c]])).fit(disp=0)
        assert s.pvalues_[j] == pytest.approx(ref.llr_pvalue, rel=1e-6, abs=1e-300)
        assert s.coef_[j] == pytest.approx(ref.params[c], rel=1e-5)
    assert s.support_.tolist() == list(s.pvalues_ < 0.05)
    assert not s.support_[cols.index("mean fractal dimension")]   # p ~ 0.76 in this data set


def test_univariate_screen_matches_r_glm_lrt(bc, r_engine):
    X, y = bc
    d = pd.DataFrame({"y": y, "x": X["texture error"].to_numpy()})
    code = ("local({d <- data.frame(y = c(%s), x = c(%s));"
            "anova(glm(y ~ x, binomial, data = d), test = 'LRT')[2, 'Pr(>Chi)']})"
            % (",".join(map(str, d.y)), ",".join(repr(float(v)) for v in d.x)))
    p_r = float(r_engine.run_r(code))
    s = UnivariateLogisticScreen().fit(d[["x"]], d.y)
    assert s.pvalues_[0] == pytest.approx(p_r, rel=1e-6)


def test_univariate_screen_fallback_is_reported():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(60, 4)), columns=list("abcd"))
    y = np.tile([0, 1], 30)
    s = UnivariateLogisticScreen(alpha=1e-9).fit(X, y)
    assert s.support_.sum() == 1
    assert s.report_.loc[s.support_, "reason"].item().startswith("fallback")


def test_elastic_net_selector_finds_informative_and_matches_refit():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(300, 40)), columns=[f"f{j}" for j in range(40)])
    y = rng.binomial(1, 1 / (1 + np.exp(-(1.5 * X.f0 - 1.2 * X.f1 + 1.0 * X.f2))))
    sel = ElasticNetLogisticSelector(random_state=0).set_output(transform="pandas").fit(X, y)
    kept = list(sel.transform(X).columns)
    assert set(np.array(X.columns)[np.argsort(-np.abs(sel.coef_))[:3]]) == {"f0", "f1", "f2"}
    assert len(kept) < 40 and set(kept) >= {"f0", "f1", "f2"}
    ref = LogisticRegression(C=sel.C_, l1_ratio=0.5, solver="saga", max_iter=10000, tol=1e-8).fit(X, y)
    big = np.abs(ref.coef_.ravel()) > 0.05
    np.testing.assert_allclose(sel.coef_[big], ref.coef_.ravel()[big], atol=0.03)
    assert (sel.report_.loc[sel.support_, "reason"] == "|coef| > 0.0001").all()


def test_elastic_net_selector_on_noise_keeps_min_features_and_says_so():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(80, 200)), columns=[f"n{j}" for j in range(200)])
    y = rng.permutation(np.repeat([0, 1], 40))
    sel = ElasticNetLogisticSelector(random_state=0).fit(X, y)
    # pure noise: CV deviance picks the strongest penalty, which zeroes everything
    assert sel.C_ == pytest.approx(1e-4)
    assert sel.support_.sum() == 1
    assert sel.report_.loc[sel.support_, "reason"].item().startswith("fallback")


def test_coxnet_selector_cv_alpha_and_planted_effects():
    X, y = _cox_data()
    lasso = CoxnetSelector(l1_ratio=1.0, random_state=0).fit(X, y)
    assert lasso.cv_scores_[list(lasso.alphas_).index(lasso.alpha_)] == pytest.approx(np.nanmax(lasso.cv_scores_))
    assert lasso.alpha_ not in (lasso.alphas_[0],)            # the penalty is really chosen
    assert {"x0", "x1", "x2"} <= set(lasso.get_feature_names_out())
    top = CoxnetSelector(l1_ratio=0.5, top_k=3, random_state=0).fit(X, y)
    assert set(top.get_feature_names_out()) == {"x0", "x1", "x2"}
    assert np.sign(top.coef_[:3]).tolist() == [1, -1, 1]
    # coefficients are scikit-survival's at the chosen alpha
    ref = CoxnetSurvivalAnalysis(l1_ratio=0.5, alphas=top.alphas_).fit(X, y)
    j = list(top.alphas_).index(top.alpha_)
    np.testing.assert_allclose(top.coef_, ref.coef_[:, j], rtol=1e-6, atol=1e-8)


def test_coxnet_selector_cv_scores_are_fold_cindices():
    """criterion="cindex": the CV curve is the mean held-out Harrell C over event-stratified folds."""
    from prime_stats.features import survival_folds
    X, y = _cox_data(n=200, p=8, seed=5)
    s = CoxnetSelector(l1_ratio=1.0, cv=4, criterion="cindex", random_state=2).fit(X, y)
    event, time = survival_arrays(y)
    j = len(s.alphas_) // 2
    vals = []
    for tr, va in survival_folds(y, 4, 2):
        m = CoxnetSurvivalAnalysis(l1_ratio=1.0, alphas=s.alphas_).fit(X.iloc[tr], y[tr])
        vals.append(concordance_index_censored(event[va], time[va], m.predict(X.iloc[va], alpha=s.alphas_[j]))[0])
    assert s.cv_scores_[j] == pytest.approx(np.mean(vals), rel=1e-10)


def test_survival_target_validation():
    with pytest.raises(ValueError, match="structured array"):
        survival_arrays(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="> 0"):
        survival_arrays(Surv.from_arrays([True, False], [5.0, -1.0]))


def test_selection_report_covers_every_selector(bc):
    X, y = bc
    clin = ["mean radius", "mean texture", "mean smoothness", "mean symmetry"]
    for recipe, last in (("paper", "ElasticNetLogisticSelector"), ("stable", "StabilitySelector")):
        pipe = make_response_pipeline("stochastic_gb", "clinical", random_state=0, recipe=recipe).fit(X[clin], y)
        rep = selection_report(pipe)
        steps = {"MissingnessFilter", "UnivariateLogisticScreen"} if recipe == "paper" else {"MissingnessFilter",
                                                                                             "VarianceFilter"}
        assert set(rep["step"]) == steps | {last}
        final = rep[rep.step == last]
        assert list(final.loc[final.kept, "feature"]) == list(pipe[:-1].get_feature_names_out())


def test_elastic_net_cv_deviance_matches_logistic_regression_cv(bc):
    """Same folds, C grid and criterion as scikit-learn's LogisticRegressionCV(neg_log_loss)."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    X, y = bc
    Z = pd.DataFrame(StandardScaler().fit_transform(X), columns=X.columns)
    sel = ElasticNetLogisticSelector(random_state=0).fit(Z, y)
    ref = LogisticRegressionCV(Cs=10, l1_ratios=[0.5], solver="saga", scoring="neg_log_loss",
                               cv=StratifiedKFold(5, shuffle=True, random_state=0), max_iter=2000,
                               tol=1e-3, random_state=0, use_legacy_attributes=False).fit(Z, y)
    assert sel.C_ == pytest.approx(ref.C_)
    ref_dev = -2 * ref.scores_.mean(axis=0).ravel()
    best = np.argmin(ref_dev)
    assert sel.cv_deviance_[best] == pytest.approx(ref_dev[best], rel=5e-3)
    np.testing.assert_allclose(sel.cv_deviance_[:6], ref_dev[:6], rtol=5e-3)


def test_cox_partial_loglik_matches_statsmodels_breslow(bc):
    from statsmodels.duration.hazard_regression import PHReg
    X, y = _cox_data(n=150, p=3, seed=2)
    event, time = survival_arrays(y)
    time = np.round(time, 1) + 0.1                  # create ties
    b = np.array([0.7, -0.4, 0.2])
    ref = PHReg(time, X.to_numpy(), status=event.astype(int), ties="breslow").loglike(b)
    assert cox_partial_loglik(X.to_numpy() @ b, event, time) == pytest.approx(ref, rel=1e-12)


def test_coxnet_cv_deviance_is_verweij_van_houwelingen():
    """criterion="deviance": mean over folds of l(b_-k) - l_-k(b_-k), recomputed by hand."""
    from prime_stats.features import survival_folds
    X, y = _cox_data(n=200, p=8, seed=5)
    s = CoxnetSelector(l1_ratio=1.0, cv=4, random_state=2).fit(X, y)
    event, time = survival_arrays(y)
    Xa = X.to_numpy()
    j = len(s.alphas_) // 2
    vals = []
    for tr, va in survival_folds(y, 4, 2):
        b = CoxnetSurvivalAnalysis(l1_ratio=1.0, alphas=s.alphas_).fit(Xa[tr], y[tr]).coef_[:, j]
        vals.append(cox_partial_loglik(Xa @ b, event, time) - cox_partial_loglik(Xa[tr] @ b, event[tr], time[tr]))
    assert s.cv_scores_[j] == pytest.approx(np.mean(vals), rel=1e-10)
    assert s.alpha_ == s.alphas_[int(np.nanargmax(s.cv_scores_))]


def _with_noise(X, n_noise, seed):
    """Real columns plus ``n_noise`` row-permuted copies of them (same marginals, no signal)."""
    rng = np.random.default_rng(seed)
    cols = rng.choice(X.columns, n_noise)
    noise = pd.DataFrame({f"noise_{j}": rng.permutation(X[c].to_numpy()) for j, c in enumerate(cols)},
                         index=X.index)
    return pd.concat([X, noise], axis=1)


def test_stability_selection_keeps_signal_not_noise_logistic(bc):
    """Real breast-cancer features plus 60 permuted copies, n = 120: the kept features are real,
    the strongest real predictors are selected in every subsample, no permuted copy reaches the
    threshold, and the feature with the largest logistic score statistic is always selected."""
    from prime_stats.features import StabilitySelector
    X, y = bc
    rows = np.random.default_rng(0).choice(len(y), 120, replace=False)
    Xn = _with_noise(X.iloc[rows], 60, 1)
    Z = pd.DataFrame(StandardScaler().fit_transform(Xn), columns=Xn.columns)
    sel = StabilitySelector(random_state=0).set_output(transform="pandas").fit(Z, y[rows])
    kept = list(sel.get_feature_names_out())
    assert kept and not [c for c in kept if c.startswith("noise")]
    prob = pd.Series(sel.selection_probability_, index=Z.columns)
    noise = prob[prob.index.str.startswith("noise")]
    assert noise.max() < 0.6 and noise.mean() < 0.1
    assert prob.max() == 1.0 and prob.idxmax() in {"worst perimeter", "worst radius", "worst area",
                                                   "worst concave points", "mean concave points"}
    # score statistic of a one-covariate logistic model at beta = 0 on z-scored data: |x'(y - ybar)|
    score = np.abs(Z.T @ (y[rows] - y[rows].mean()))
    assert prob[score.idxmax()] == 1.0
    rep = sel.report_
    assert (rep.statistic == "selection_probability").all() and rep.kept.sum() == len(kept)


def test_stability_selection_cox_and_fallback():
    """Cox family on planted Cox data: x0, x1, x2 kept with probability ~1; on pure noise with a
    threshold of 1 the fallback keeps the ``min_features`` most stable and says so."""
    from prime_stats.features import StabilitySelector
    X, y = _cox_data(n=200, p=40, seed=3)
    sel = StabilitySelector(random_state=0).fit(X, y)
    prob = pd.Series(sel.selection_probability_, index=X.columns)
    assert (prob[["x0", "x1", "x2"]] >= 0.9).all()
    assert set(X.columns[sel.support_]) >= {"x0", "x1", "x2"} and sel.support_.sum() <= 6
    rng = np.random.default_rng(5)
    noise = pd.DataFrame(rng.normal(size=(200, 30)))
    fb = StabilitySelector(threshold=1.0, min_features=2, random_state=0).fit(noise, y)
    assert fb.support_.sum() == 2
    assert fb.report_.reason.str.startswith("fallback").sum() >= 1
    with pytest.raises(ValueError, match="threshold"):
        StabilitySelector(threshold=0.4).fit(X, y)


def test_stability_path_stops_once_enough_features_entered_with_the_full_paths_order():
    """The early-stopped path gives every feature it reaches the entry position of sklearn's full
    ``enet_path`` on the same 20-point grid (two decades), and reaches at least ``n_per_resample``."""
    import warnings
    from sklearn.linear_model import enet_path
    from prime_stats.features import StabilitySelector
    rng = np.random.default_rng(4)
    X = rng.normal(size=(60, 300))
    X[:, 1] = X[:, 0] + 0.2 * rng.normal(size=60)
    y = (X[:, 0] - X[:, 5] + 0.5 * X[:, 9] + rng.normal(size=60) > 0).astype(float)
    X = (X - X.mean(0)) / X.std(0)
    entry, _ = StabilitySelector(n_per_resample=10)._entry_order(X, y, "logistic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, coef, _ = enet_path(X - X.mean(0), y - y.mean(), l1_ratio=0.5, alphas=20, eps=0.01)
    nz = np.abs(coef) > 0
    full = np.where(nz.any(axis=1), np.argmax(nz, axis=1), np.inf)
    reached = np.isfinite(entry)
    assert reached.sum() >= 10 and np.array_equal(entry[reached], full[reached])
    assert np.all(full[~reached] > entry[reached].max())     # the rest enter later on the full path


def test_correlation_filter_keeps_one_medoid_per_complete_linkage_cluster():
    """Near-duplicate blocks collapse to one feature each, independent features stay; the clusters
    are scipy's complete-linkage clusters of 1 - |r| cut at 0.1, every within-cluster |r| >= 0.9, and
    the kept member is the one with the largest mean |r| to its cluster."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform
    from prime_stats.features import CorrelationFilter
    rng = np.random.default_rng(0)
    base = rng.normal(size=(80, 3))
    cols = {}
    for b in range(3):
        for k in range(4):   # four noisy copies of each base signal (|r| ~ 0.99), one sign-flipped
            cols[f"b{b}_{k}"] = (-1) ** (k == 3) * base[:, b] + 0.05 * (k + 1) * rng.normal(size=80)
    for j in range(5):
        cols[f"free{j}"] = rng.normal(size=80)
    X = pd.DataFrame(cols)
    f = CorrelationFilter(0.9).set_output(transform="pandas").fit(X)
    kept = list(f.get_feature_names_out())
    assert sorted(k.split("_")[0] for k in kept if k.startswith("b")) == ["b0", "b1", "b2"]
    assert {f"free{j}" for j in range(5)} <= set(kept) and len(kept) == 8
    r = np.abs(np.corrcoef(X.to_numpy(), rowvar=False))
    ref = fcluster(linkage(squareform(1 - r, checks=False), "complete"), 0.1 + 1e-12, "distance")
    assert pd.crosstab(ref, f.cluster_).gt(0).sum(axis=1).eq(1).all()     # same partition
    for lab in np.unique(f.cluster_):
        m = np.flatnonzero(f.cluster_ == lab)
        assert r[np.ix_(m, m)].min() >= 0.9
        assert X.columns[m[np.argmax(r[np.ix_(m, m)].mean(axis=1))]] in kept
    rep = f.report_.set_index("feature")
    assert rep.loc["b0_3", "reason"].startswith("redundant with") or rep.loc["b0_3", "kept"]
    assert f.transform(X).shape == (80, 8)
