"""Leakage guards.

1. Permutation guard: with outcomes permuted in the training data, nested-CV and held-out AUC and
   C-index sit at 0.5 within 3 standard errors of their null distribution for this sample size.
   A deliberately leaky procedure (selection on all rows) on the same data fails the same bound,
   so the guard can fail.
2. Selectors are fitted only on training rows (spies record the rows every selector sees).
3. Frozen models: scoring test data never changes BMA weights or the meta-classifier, and a
   patient's prediction does not depend on who else is in the batch.
"""
import copy

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sksurv.datasets import load_gbsg2
from sksurv.metrics import concordance_index_censored

from prime_stats import features as F
from prime_stats.features import survival_arrays
from prime_stats.fusion import PrimeR, PrimeS, compare_modalities
from prime_stats.models import make_response_pipeline

K_SE = 3.0


def null_auc_se(y, k=1):
    """SD of the AUC under H0 (Mann-Whitney): var = (n0 + n1 + 1) / (12 n0 n1); for the mean of
    k fold AUCs over a partition, var ~ (n + k) / (12 n0 n1)."""
    n1 = int(np.sum(y == 1))
    n0 = len(y) - n1
    return np.sqrt((n0 + n1 + k) / (12.0 * n0 * n1))


def null_cindex_sd(y, rng, draws=300):
    """SD of Harrell's C of a random score for this sample's times and censoring (Monte Carlo)."""
    event, time = survival_arrays(y)
    return np.std([concordance_index_censored(event, time, rng.normal(size=len(time)))[0]
                   for _ in range(draws)])


@pytest.fixture(scope="module")
def noise_response():
    """Real breast-cancer features plus 80 noise columns, outcome permuted (no signal)."""
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    rng = np.random.default_rng(0)
    idx = rng.choice(len(y), 200, replace=False)
    held_out = np.setdiff1d(np.arange(len(y)), idx)
    X_test, y_test = X.iloc[held_out], y.to_numpy()[held_out]
    X = X.iloc[idx].reset_index(drop=True)
    noise = pd.DataFrame(rng.normal(size=(200, 80)), columns=[f"noise{j}" for j in range(80)])
    X = pd.concat([X, noise], axis=1)
    y_perm = rng.permutation(y.to_numpy()[idx])
    clin = [c for c in X.columns if c.startswith("mean")][:8]
    rad = [c for c in X.columns if c.startswith(("worst", "noise"))]
    _HELD_OUT["response"] = (X_test, y_test)
    return X, y_perm, clin, rad


_HELD_OUT = {}


def noise_response_held_out():
    """The breast-cancer rows not used for training (never permuted)."""
    return _HELD_OUT["response"]


def test_permuted_response_nested_cv_auc_is_null(noise_response):
    X, y, clin, rad = noise_response
    tab = compare_modalities(X, y, clin, rad, outer_cv=3, cv=3, learners=("stochastic_gb",), fast=True)
    bound = K_SE * null_auc_se(y, k=3)
    assert bound < 0.15
    dev = (tab.set_index("model").estimate - 0.5).abs()
    assert (dev < bound).all(), (tab, bound)


def test_leaky_selection_fails_the_same_guard(noise_response):
    """Selecting features on all rows before CV (the published code's survival mistake) makes
    noise look predictive: the guard above would catch it."""
    X, y, clin, rad = noise_response
    from prime_stats.features import UnivariateLogisticScreen
    Z = (X[rad] - X[rad].mean()) / X[rad].std()
    screen = UnivariateLogisticScreen(alpha=0.05).fit(Z, y)           # sees every row: leak
    top = Z.columns[np.argsort(screen.pvalues_)[:10]]
    cv = StratifiedKFold(3, shuffle=True, random_state=1)
    leaky = cross_val_score(LogisticRegression(), Z[top], y, cv=cv, scoring="roc_auc").mean()
    assert leaky - 0.5 > K_SE * null_auc_se(y, k=3), leaky
    honest = cross_val_score(make_response_pipeline("stochastic_gb", "radiomics", 0).set_params(
        model__n_estimators=50), X[rad], y, cv=cv, scoring="roc_auc").mean()
    assert abs(honest - 0.5) < K_SE * null_auc_se(y, k=3), honest


def test_permuted_training_gives_null_held_out_auc(noise_response):
    X, y, clin, rad = noise_response
    X_test, y_test = noise_response_held_out()
    m = PrimeR(clin, [c for c in rad if c.startswith("worst")], learners=("stochastic_gb",), cv=3,
               fast=True).fit(X, y)
    auc = roc_auc_score(y_test, m.predict_proba(X_test)[:, 1])     # real rows, true labels
    assert abs(auc - 0.5) < K_SE * null_auc_se(y_test), auc


@pytest.fixture(scope="module")
def gbsg_perm():
    X, y = load_gbsg2()
    X = X.select_dtypes("number").astype(float)
    rng = np.random.default_rng(1)
    idx = rng.choice(len(y), 240, replace=False)
    rest = np.setdiff1d(np.arange(len(y)), idx)
    return X.iloc[idx], y[rng.permutation(idx)], X.iloc[rest], y[rest]


def test_permuted_survival_nested_cv_and_held_out_cindex_are_null(gbsg_perm):
    Xtr, ytr_perm, Xte, yte = gbsg_perm
    rng = np.random.default_rng(2)
    clin, rad = ["age", "tsize", "pnodes"], ["progrec", "estrec"]
    tab, folds = compare_modalities(Xtr, ytr_perm, clin, rad, outer_cv=3, cv=3, learners=("fast_svm",),
                                    fast=True, return_folds=True)
    from prime_stats.features import survival_folds
    outer = survival_folds(ytr_perm, 3, 1)
    se = np.sqrt(sum(null_cindex_sd(ytr_perm[te], rng) ** 2 for _, te in outer)) / 3
    dev = (tab.set_index("model").estimate - 0.5).abs()
    assert (dev < K_SE * se).all(), (tab, se)
    # held out: the frozen PRIME-S trained on permuted outcomes does not rank real patients
    m = PrimeS(clin, rad, learners=("fast_svm",), cv=3, fast=True).fit(Xtr, ytr_perm)
    c = m.score(Xte, yte)
    assert abs(c - 0.5) < K_SE * null_cindex_sd(yte, rng), c


class _Spy:
    """Record the row labels every selector is fitted on."""

    def __init__(self, monkeypatch, classes):
        self.seen = []
        for cls in classes:
            orig = cls.fit

            def fit(est, X, y=None, _orig=orig, _name=cls.__name__):
                self.seen.append((_name, frozenset(X.index)))
                return _orig(est, X, y)
            monkeypatch.setattr(cls, "fit", fit)


SELECTORS = (F.MissingnessFilter, F.VarianceFilter, F.UnivariateLogisticScreen,
             F.ElasticNetLogisticSelector, F.CoxnetSelector, F.StabilitySelector)


def test_selectors_in_cross_val_score_never_see_held_out_rows(monkeypatch):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X, y = X.iloc[:240], y.to_numpy()[:240]
    spy = _Spy(monkeypatch, SELECTORS)
    folds = list(StratifiedKFold(4, shuffle=True, random_state=0).split(X, y))
    for recipe, steps in (("paper", {"MissingnessFilter", "VarianceFilter", "ElasticNetLogisticSelector"}),
                          ("stable", {"MissingnessFilter", "VarianceFilter", "StabilitySelector"})):
        pipe = make_response_pipeline("stochastic_gb", "radiomics", 0, recipe=recipe).set_params(
            model__n_estimators=20)
        for tr, te in folds:
            spy.seen.clear()
            clone(pipe).fit(X.iloc[tr], y[tr])
            assert {name for name, _ in spy.seen} == steps
            for _, rows in spy.seen:
                assert rows == frozenset(X.index[tr])            # exactly the training rows
                assert not rows & frozenset(X.index[te])


def test_prime_models_fit_selectors_on_training_rows_only(monkeypatch, gbsg_perm):
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    train = X.index[::2]
    spy = _Spy(monkeypatch, SELECTORS)
    clin = [c for c in X.columns if c.startswith("mean")][:6]
    rad = [c for c in X.columns if c.startswith("worst")]
    PrimeR(clin, rad, learners=("stochastic_gb",), cv=3, fast=True).fit(X.loc[train], y.loc[train])
    sizes = {len(r) for _, r in spy.seen}
    assert all(r <= frozenset(train) for _, r in spy.seen)
    assert max(sizes) == len(train) and min(sizes) < len(train)      # inner folds happened
    # survival: the published code selected survival features on all data; here never
    Xs, ys, Xext, _ = gbsg_perm
    spy.seen.clear()
    PrimeS(["age", "tsize", "pnodes"], ["progrec", "estrec"], learners=("fast_svm",), cv=3,
           fast=True).fit(Xs, ys)
    assert any(name == "StabilitySelector" for name, _ in spy.seen)
    assert all(r <= frozenset(Xs.index) for _, r in spy.seen)
    assert not any(r & frozenset(Xext.index) for _, r in spy.seen)


def test_bma_weights_and_meta_model_are_frozen(gbsg_perm):
    X, y = load_gbsg2()
    X = X.select_dtypes("number").astype(float)
    tr = np.arange(len(y)) % 2 == 0
    m = PrimeS(["age", "tsize", "pnodes"], ["progrec", "estrec"], learners=("gbsa", "fast_svm"), cv=3,
               fast=True).fit(X[tr], y[tr])
    before = (m.bma_table_.copy(), copy.deepcopy(m.weights_),
              {k: (c.beta_, c.mean_, c.sd_, c.cumhaz_.copy()) for k, c in m.calibrations_.items()})
    Xte, yte = X[~tr], y[~tr]
    r1 = m.predict(Xte)
    m.score(Xte, yte)
    event, time = survival_arrays(yte)
    m.score(Xte.iloc[::-1], yte[::-1])
    m.predict_survival_function(Xte.iloc[:50])
    pd.testing.assert_frame_equal(m.bma_table_, before[0])
    np.testing.assert_array_equal(m.weights_, before[1])
    for k, c in m.calibrations_.items():
        assert (c.beta_, c.mean_, c.sd_) == before[2][k][:3]
        np.testing.assert_array_equal(c.cumhaz_, before[2][k][3])
    # a patient's risk does not depend on the rest of the batch
    np.testing.assert_allclose(m.predict(Xte.iloc[::-1])[::-1], r1)
    np.testing.assert_allclose(m.predict(Xte.iloc[:7]), r1[:7])


def test_late_fusion_meta_model_is_frozen():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    clin = [c for c in X.columns if c.startswith("mean")][:6]
    rad = [c for c in X.columns if c.startswith("worst")]
    m = PrimeR(clin, rad, learners=("stochastic_gb",), cv=3, fast=True).fit(X.iloc[:300], y.iloc[:300])
    coef = m.fusion_weights_.copy()
    p = m.predict_proba(X.iloc[300:])[:, 1]
    m.score(X.iloc[300:], y.iloc[300:])
    pd.testing.assert_frame_equal(m.fusion_weights_, coef)
    np.testing.assert_allclose(m.predict_proba(X.iloc[300:310])[:, 1], p[:10])
