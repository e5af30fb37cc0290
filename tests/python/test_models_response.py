"""PRIME-R learners: a genuine Rotation Forest, the five learners' pipelines, and CV-AUC tuning."""
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils.estimator_checks import parametrize_with_checks

from prime_stats.features import MissingnessFilter, StabilitySelector, VarianceFilter
from prime_stats.models import (RESPONSE_LEARNERS, ModalityClassifier, RotationForestClassifier,
                                default_grid, feature_table, make_response_pipeline, tune)


@pytest.fixture(scope="module")
def bc():
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    return X, y.to_numpy()


@parametrize_with_checks([RotationForestClassifier(n_estimators=3, random_state=0), MissingnessFilter(),
                          VarianceFilter(0.0), StabilitySelector(n_resamples=6, random_state=0)])
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)


def test_rotation_matrices_are_block_diagonal_orthogonal_rotations(bc):
    X, y = bc
    rf = RotationForestClassifier(n_estimators=5, n_features_per_subset=4, random_state=0).fit(X, y)
    p = X.shape[1]
    seen_partitions = set()
    for subsets, R in zip(rf.subsets_, rf.rotations_):
        flat = np.concatenate(subsets)
        assert sorted(flat) == list(range(p))                    # disjoint and covering
        assert max(len(s) for s in subsets) <= 4
        np.testing.assert_allclose(R @ R.T, np.eye(p), atol=1e-10)  # orthogonal
        block = np.zeros((p, p), bool)
        for s in subsets:
            block[np.ix_(s, s)] = True
        assert np.all(R[~block] == 0)                           # block-diagonal in the subsets
        assert not np.allclose(np.abs(R), np.eye(p))             # a real rotation, not a permutation
        seen_partitions.add(tuple(sorted(tuple(sorted(s)) for s in subsets)))
    assert len(seen_partitions) == 5                             # a fresh random partition per tree


def test_rotation_blocks_are_principal_axes_of_a_class_subsample(bc):
    """Each block's columns are PCA axes of a bootstrap of the subset: projections uncorrelated."""
    X, y = bc
    rf = RotationForestClassifier(n_estimators=1, n_features_per_subset=3, random_state=1).fit(X, y)
    Xa = X.to_numpy()
    s = rf.subsets_[0][0]
    B = rf.rotations_[0][np.ix_(s, s)]
    proj = (Xa[:, s] - rf.centres_[0][s]) @ B
    # the axes diagonalise a 75 % bootstrap, so on all rows they are nearly (not exactly) uncorrelated
    c = np.corrcoef(proj.T)
    assert np.max(np.abs(c[np.triu_indices(len(s), 1)])) < 0.5
    raw = np.corrcoef(Xa[:, s].T)
    assert np.max(np.abs(raw[np.triu_indices(len(s), 1)])) > np.max(np.abs(c[np.triu_indices(len(s), 1)]))


def test_rotation_forest_beats_a_single_tree(bc):
    X, y = bc
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    tree = cross_val_score(DecisionTreeClassifier(random_state=0), X, y, cv=cv, scoring="roc_auc").mean()
    rot = cross_val_score(RotationForestClassifier(n_estimators=10, random_state=0), X, y, cv=cv,
                          scoring="roc_auc").mean()
    assert rot > tree + 0.03 and rot > 0.97, (rot, tree)
    proba = RotationForestClassifier(n_estimators=4, random_state=0).fit(X, y).predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_rotation_forest_importances_map_back_to_features(bc):
    X, y = bc
    rf = RotationForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    imp = pd.Series(rf.feature_importances_, index=X.columns)
    assert imp.sum() == pytest.approx(1.0)
    assert imp.idxmax().startswith("worst")      # worst radius/perimeter/area/concave points dominate


@pytest.mark.parametrize("learner", RESPONSE_LEARNERS)
def test_each_learner_pipeline_fits_and_keeps_names(bc, learner):
    X, y = bc
    rad = [c for c in X.columns if not c.startswith("mean")]
    Xtr, ytr, Xte, yte = X.iloc[::2][rad], y[::2], X.iloc[1::2][rad], y[1::2]
    pipe = make_response_pipeline(learner, "radiomics", random_state=0)
    pipe.set_params(**{k: v[0] for k, v in default_grid(learner, fast=True).items()})
    pipe.fit(Xtr, ytr)
    assert roc_auc_score(yte, pipe.predict_proba(Xte)[:, 1]) > 0.9
    tab = feature_table(pipe)
    assert set(tab.feature) <= set(rad) and len(tab) >= 1
    assert (tab.selection_coefficient.notna() | tab.selection_probability.notna()).all()


def test_tune_selects_the_best_grid_point_by_cv_auc(bc):
    X, y = bc
    cols = ["mean radius", "mean texture", "mean smoothness", "worst concave points"]
    grid = {"model__max_depth": [1, 3], "model__n_estimators": [1, 30]}
    pipe = make_response_pipeline("stochastic_gb", "radiomics", random_state=0)
    gs = tune(pipe, grid, X[cols], y)
    scores = gs.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and gs.n_splits_ == 5
    assert gs.best_index_ == int(np.argmax(scores))
    assert gs.best_params_["model__n_estimators"] == 30          # one stump is clearly worse
    # the same numbers as scikit-learn's GridSearchCV on the whole pipeline with the same folds
    from sklearn.model_selection import GridSearchCV
    ref = GridSearchCV(pipe, grid, scoring="roc_auc", cv=gs.folds_).fit(X[cols], y)
    np.testing.assert_allclose(scores, ref.cv_results_["mean_test_score"], rtol=1e-10)
    np.testing.assert_allclose(gs.best_estimator_.predict_proba(X[cols]),
                               ref.best_estimator_.predict_proba(X[cols]), rtol=1e-10)
    # stratified folds: each validation fold has the overall class balance (+-1 patient)
    for _, va in gs.folds_:
        assert abs(y[va].sum() - y.mean() * len(va)) <= 1


def test_tune_refuses_nan_scores(bc):
    X, y = bc
    cols = ["mean radius", "mean texture"]

    def nan_scorer(est, X_, y_):
        return np.nan

    with pytest.raises(RuntimeError, match="non-finite CV scores"):
        tune(make_response_pipeline("stochastic_gb", "radiomics", 0), {"model__n_estimators": [5, 10]},
             X[cols], y, scoring=nan_scorer)


def test_tune_checks_inputs_and_settings_before_its_unchecked_fits(bc):
    """The learner fits skip scikit-learn's per-call checks, so tune_learners checks once: an infinite
    value is refused by the imputation, a missing value a pipeline does not impute is named, and an
    invalid grid setting raises scikit-learn's own error before any fit."""
    from sklearn.utils._param_validation import InvalidParameterError

    X, y = bc
    cols = ["mean radius", "mean texture"]
    pipe = make_response_pipeline("stochastic_gb", "radiomics", random_state=0)
    bad = X[cols].copy()
    bad.iloc[7, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        tune(pipe, {"model__n_estimators": [5]}, bad, y)
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.linear_model import LogisticRegression

    no_imputation = Pipeline([("scale", StandardScaler().set_output(transform="pandas")),
                              ("model", LogisticRegression())])
    gappy = X[cols].copy()
    gappy.iloc[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"preprocessing left missing or infinite values.*mean radius"):
        tune(no_imputation, {"model__C": [1.0]}, gappy, y)
    with pytest.raises(InvalidParameterError, match="n_estimators"):
        tune(pipe, {"model__n_estimators": [5, -1]}, X[cols], y)


def test_modality_classifier_picks_learner_by_cv_auc(bc):
    X, y = bc
    clin = [c for c in X.columns if c.startswith("mean")]
    m = ModalityClassifier(clin, (), "clinical", learners=("adaboost", "stochastic_gb"), fast=True,
                           cv=3, learner_choice="best").fit(X.iloc[:300], y[:300])
    tab = m.tuning_table_
    assert tab.loc[tab.chosen, "learner"].item() == tab.loc[tab.cv_score.idxmax(), "learner"] == m.best_learner_
    assert m.predict_proba(X.iloc[300:]).shape == (len(X) - 300, 2)
    # only the chosen learner is refitted on all rows; it equals the "refit every learner" fit
    assert [r.best_estimator_ is None for r in m.results_.values()] == list(~tab.chosen)
    from prime_stats.models.selection import tune_learners
    pipe = make_response_pipeline(m.best_learner_, "clinical", random_state=0)
    grid = {k: [v] for k, v in m.best_params_.items()}
    all_refit = tune_learners(pipe[:-1], {m.best_learner_: (pipe[-1], grid)}, X.iloc[:300][clin], y[:300],
                              cv=3, random_state=0, refit="all")
    np.testing.assert_allclose(all_refit[m.best_learner_].best_estimator_.predict_proba(X.iloc[300:][clin]),
                               m.predict_proba(X.iloc[300:]), rtol=1e-12)
    with pytest.raises(KeyError, match="mean radius"):
        m.predict_proba(X.drop(columns=["mean radius"]))


def test_one_se_rule_keeps_the_simplest_learner_within_one_standard_error():
    from prime_stats.models.selection import choose_learner
    names = ["stochastic_gb", "adaboost", "ridge_logistic"]
    assert choose_learner(names, [0.80, 0.78, 0.76], [0.05, 0.04, 0.03], "best") == "stochastic_gb"
    # ridge is 0.04 below the best, within the best's SE of 0.05: the penalised model is kept
    assert choose_learner(names, [0.80, 0.78, 0.76], [0.05, 0.04, 0.03], "one_se") == "ridge_logistic"
    # beyond one SE it is not; adaboost (simpler than boosting in SIMPLEST_FIRST) is within it
    assert choose_learner(names, [0.80, 0.78, 0.70], [0.03, 0.04, 0.03], "one_se") == "adaboost"
    assert choose_learner(names, [0.80, 0.70, 0.70], [0.01, 0.04, 0.03], "one_se") == "stochastic_gb"
    with pytest.raises(ValueError, match="learner choice"):
        choose_learner(names, [0.8, 0.7, 0.7], [0.1, 0.1, 0.1], "lowest")


def test_modality_classifier_one_se_choice_is_refitted_and_recorded(bc):
    X, y = bc
    clin = [c for c in X.columns if c.startswith("mean")]
    m = ModalityClassifier(clin, (), "clinical", learners=("stochastic_gb", "ridge_logistic"), fast=True,
                           cv=3, learner_choice="one_se").fit(X.iloc[:300], y[:300])
    tab = m.tuning_table_.set_index("learner")
    best = tab.cv_score.idxmax()
    expected = ("ridge_logistic" if tab.loc["ridge_logistic", "cv_score"] >= tab.loc[best, "cv_score"]
                - tab.loc[best, "cv_se"] else best)
    assert m.best_learner_ == expected and tab.loc[expected, "chosen"] and (tab["rule"] == "one_se").all()
    assert m.results_[expected].best_estimator_ is not None


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown response learner"):
        make_response_pipeline("xgboost", "clinical")
    with pytest.raises(ValueError, match="feature_kind"):
        make_response_pipeline("bagging", "genomics")
    with pytest.raises(ValueError, match="no default grid"):
        default_grid("xgboost")
