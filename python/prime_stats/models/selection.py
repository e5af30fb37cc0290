"""Model selection: grid search by stratified K-fold CV AUC / CV C-index, and the per-modality
estimators that pick the best learner on the training data.

``tune`` caches the (deterministic) selection steps across grid points with the Pipeline ``memory``
so each fold's selectors are fitted once per fold, never on the held-out rows.
"""
from __future__ import annotations

import tempfile

import numpy as np
import pandas as pd
from joblib import Memory
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.utils.validation import check_is_fitted

from ..features import selection_report, survival_arrays, survival_folds
from .grids import default_grid
from .response import RESPONSE_LEARNERS, make_response_pipeline
from .survival import SURVIVAL_LEARNERS, cindex_scorer, make_survival_pipeline, survival_function_at

__all__ = ["tune", "ModalityClassifier", "ModalitySurvival", "feature_table", "check_columns"]


def check_columns(X, columns, what="features"):
    """Raise a clear error if ``X`` is not a DataFrame holding every column in ``columns``."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame with named {what}; got {type(X).__name__}")
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise KeyError(f"{len(missing)} {what} missing from X: {missing[:20]}"
                       + (" ..." if len(missing) > 20 else ""))


def tune(pipeline, grid, X, y, cv=5, scoring=None, n_jobs=1, random_state=None, cache=True):
    """Grid search of ``pipeline`` over ``grid`` by ``cv``-fold CV; returns the fitted GridSearchCV
    (``best_estimator_`` refitted on all of X).

    Classifiers: StratifiedKFold on y, scoring "roc_auc". Survival pipelines: folds stratified on
    the event indicator, scoring Harrell's C-index (``cindex_scorer``). Any failed fit or NaN score
    raises instead of being ranked.
    """
    if is_classifier(pipeline):
        folds = list(StratifiedKFold(cv, shuffle=True, random_state=random_state).split(X, y))
        scoring = scoring or "roc_auc"
    else:
        folds = survival_folds(y, cv, random_state)
        scoring = scoring or cindex_scorer
    pipe = clone(pipeline)
    with tempfile.TemporaryDirectory(prefix="prime_stats_cache_") as tmp:
        if cache and hasattr(pipe, "memory"):
            pipe.set_params(memory=Memory(tmp, verbose=0))
        gs = GridSearchCV(pipe, grid, scoring=scoring, cv=folds, n_jobs=n_jobs,
                          error_score="raise", refit=True)
        gs.fit(X, y)
    if hasattr(gs.best_estimator_, "memory"):
        gs.best_estimator_.set_params(memory=None)
        gs.estimator.set_params(memory=None)
    scores = gs.cv_results_["mean_test_score"]
    if not np.all(np.isfinite(scores)):
        bad = [gs.cv_results_["params"][i] for i in np.flatnonzero(~np.isfinite(scores))]
        raise RuntimeError(f"non-finite CV scores for parameter settings {bad}")
    return gs


def _model_importance(model, names):
    """Importance of each input feature of the final learner, NaN where the learner has none."""
    imp = np.full(len(names), np.nan)
    try:
        if hasattr(model, "estimators_features_"):  # Bagging
            acc = np.zeros(len(names))
            for est, feats in zip(model.estimators_, model.estimators_features_):
                acc[feats] += est.feature_importances_
            imp = acc / len(model.estimators_)
        elif hasattr(model, "svm_"):  # ranking SVM: predict = -X @ coef, report the risk direction
            imp = -np.asarray(model.svm_.coef_, dtype=float).ravel()
        elif hasattr(model, "named_estimators_"):  # Stacking: the logistic base learner's coefs
            imp = model.named_estimators_["lr"].coef_.ravel()
        else:
            imp = np.asarray(model.feature_importances_, dtype=float)
    except (AttributeError, NotImplementedError, ValueError):
        pass
    return imp


def feature_table(pipeline):
    """Selected features of a fitted Pipeline with the last selector's coefficient (elastic-net
    logistic or Cox) and the learner's importance (impurity importance, or coefficient)."""
    pipe = getattr(pipeline, "best_estimator_", pipeline)
    names = list(pipe[:-1].get_feature_names_out())
    sel = [s for _, s in pipe.steps[:-1] if hasattr(s, "coef_") and hasattr(s, "support_")][-1]
    coef = pd.Series(sel.coef_, index=sel.feature_names_in_)
    return pd.DataFrame({"feature": names, "selection_coefficient": coef.reindex(names).to_numpy(),
                         "importance": _model_importance(pipe[-1], names)})


class _ModalityBase(BaseEstimator):
    _learners_all = ()

    def _columns(self):
        if self.feature_kind == "clinical":
            cols = list(self.clinical_features)
        elif self.feature_kind == "radiomics":
            cols = list(self.radiomics_features)
        elif self.feature_kind == "early":
            cols = list(self.clinical_features) + list(self.radiomics_features)
        else:
            raise ValueError(f"feature_kind must be 'clinical', 'radiomics' or 'early'; got {self.feature_kind!r}")
        if not cols:
            raise ValueError(f"no {self.feature_kind} features given")
        return cols

    def _fit_learners(self, X, y, make):
        cols = self._columns()
        check_columns(X, cols)
        rows, best = [], None
        for learner in self.learners:
            pipe = make(learner, self.feature_kind, self.random_state,
                        clinical_features=list(self.clinical_features),
                        radiomics_features=list(self.radiomics_features))
            grid = (self.grids or {}).get(learner) or default_grid(learner, self.fast)
            gs = tune(pipe, grid, X[cols], y, cv=self.cv, n_jobs=self.n_jobs, random_state=self.random_state)
            i = gs.best_index_
            rows.append({"feature_kind": self.feature_kind, "learner": learner,
                         "cv_score": gs.best_score_, "cv_sd": gs.cv_results_["std_test_score"][i],
                         "params": gs.best_params_})
            if best is None or gs.best_score_ > best.best_score_:
                best, self.best_learner_ = gs, learner
        self.columns_ = cols
        self.best_estimator_ = best.best_estimator_
        self.best_params_ = best.best_params_
        self.best_score_ = best.best_score_
        tab = pd.DataFrame(rows)
        tab["chosen"] = tab["learner"] == self.best_learner_
        self.tuning_table_ = tab
        self.selection_report_ = selection_report(self.best_estimator_).assign(feature_kind=self.feature_kind)
        self.selected_features_ = feature_table(self.best_estimator_)
        return self

    def _X(self, X):
        check_is_fitted(self, "best_estimator_")
        check_columns(X, self.columns_)
        return X[self.columns_]


class ModalityClassifier(ClassifierMixin, _ModalityBase):
    """Best PRIME-R pipeline for one modality ("clinical", "radiomics", or "early" = concatenated
    early fusion): each learner is tuned by stratified ``cv``-fold CV AUC on the training data, the
    learner with the highest CV AUC is kept (refitted on all training rows)."""

    def __init__(self, clinical_features=(), radiomics_features=(), feature_kind="clinical",
                 learners=RESPONSE_LEARNERS, cv=5, fast=False, grids=None, random_state=0, n_jobs=1):
        self.clinical_features = clinical_features
        self.radiomics_features = radiomics_features
        self.feature_kind = feature_kind
        self.learners = learners
        self.cv = cv
        self.fast = fast
        self.grids = grids
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"response must be binary; got classes {self.classes_.tolist()}")
        return self._fit_learners(X, y, make_response_pipeline)

    def predict_proba(self, X):
        return self.best_estimator_.predict_proba(self._X(X))

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class ModalitySurvival(_ModalityBase):
    """Best PRIME-S pipeline for one modality (or "early" fusion), chosen by CV C-index."""

    def __init__(self, clinical_features=(), radiomics_features=(), feature_kind="clinical",
                 learners=SURVIVAL_LEARNERS, cv=5, fast=False, grids=None, random_state=0, n_jobs=1):
        self.clinical_features = clinical_features
        self.radiomics_features = radiomics_features
        self.feature_kind = feature_kind
        self.learners = learners
        self.cv = cv
        self.fast = fast
        self.grids = grids
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        survival_arrays(y)
        return self._fit_learners(X, y, make_survival_pipeline)

    def predict(self, X):
        """Risk score (higher = shorter survival)."""
        return self.best_estimator_.predict(self._X(X))

    def predict_survival_function(self, X, times):
        """S(t|x) at ``times`` -> array (n, len(times))."""
        return survival_function_at(self.best_estimator_, self._X(X), times)

    def score(self, X, y):
        """Harrell's C-index."""
        return cindex_scorer(self, X, y)
