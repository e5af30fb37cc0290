"""Model selection: grid search by stratified K-fold CV AUC / CV C-index, and the per-modality
estimators that pick the best learner on the training data.

``tune`` fits the pipeline's preprocessing and selection steps once per training fold (they do not
depend on the learner's hyper-parameters) and scores every learner setting on the matching
held-out fold, so selectors never see held-out rows and are not refitted per grid point.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.metrics import get_scorer
from sklearn.model_selection import ParameterGrid, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ..features import selection_report, survival_arrays, survival_folds
from .grids import default_grid
from .response import RESPONSE_LEARNERS, make_response_pipeline
from .survival import SURVIVAL_LEARNERS, cindex_scorer, make_survival_pipeline, survival_function_at

__all__ = ["tune", "TuneResult", "ModalityClassifier", "ModalitySurvival", "feature_table",
           "check_columns"]


def check_columns(X, columns, what="features"):
    """Raise a clear error if ``X`` is not a DataFrame holding every column in ``columns``."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame with named {what}; got {type(X).__name__}")
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise KeyError(f"{len(missing)} {what} missing from X: {missing[:20]}"
                       + (" ..." if len(missing) > 20 else ""))


@dataclass
class TuneResult:
    """Result of ``tune``, with GridSearchCV's attribute names."""
    best_estimator_: Pipeline
    best_params_: dict
    best_score_: float
    best_index_: int
    cv_results_: dict
    folds_: list
    n_splits_: int


def _rows(X, idx):
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def _fit_pre(pre, params, X, y, tr, va):
    pre = clone(pre).set_params(**params)
    Ztr = pre.fit_transform(_rows(X, tr), y[tr])
    return pre, Ztr, (None if va is None else pre.transform(_rows(X, va)))


def _fit_score(model, params, Ztr, ytr, Zva, yva, scorer):
    return scorer(clone(model).set_params(**params).fit(Ztr, ytr), Zva, yva)


def tune(pipeline, grid, X, y, cv=5, scoring=None, n_jobs=1, random_state=None):
    """Grid search of ``pipeline`` over ``grid`` by ``cv``-fold CV; returns a ``TuneResult`` whose
    ``best_estimator_`` is the pipeline refitted on all of X with the best setting.

    Classifiers: StratifiedKFold on y, scoring "roc_auc". Survival pipelines: folds stratified on
    the event indicator, scoring Harrell's C-index (``cindex_scorer``). Ties go to the first
    setting in grid order. A failed fit raises, and a non-finite CV score raises instead of
    being ranked.
    """
    y = np.asarray(y)
    if is_classifier(pipeline):
        folds = list(StratifiedKFold(cv, shuffle=True, random_state=random_state).split(X, y))
        scoring = scoring or "roc_auc"
    else:
        folds = survival_folds(y, cv, random_state)
        scoring = scoring or cindex_scorer
    scorer = get_scorer(scoring) if isinstance(scoring, str) else scoring
    final = pipeline.steps[-1][0]
    pre, model = pipeline[:-1], pipeline[-1]
    combos = list(ParameterGrid(grid))
    split = [({k: v for k, v in c.items() if not k.startswith(final + "__")},
              {k[len(final) + 2:]: v for k, v in c.items() if k.startswith(final + "__")}) for c in combos]
    groups = []
    for pre_params, _ in split:
        if pre_params not in groups:
            groups.append(pre_params)
    everything = np.arange(len(y))
    splits = folds + [(everything, None)]
    par = Parallel(n_jobs=n_jobs)
    fitted = par(delayed(_fit_pre)(pre, g, X, y, tr, va) for g in groups for tr, va in splits)
    fitted = {(gi, f): fitted[gi * len(splits) + f] for gi in range(len(groups)) for f in range(len(splits))}
    jobs = [(ci, f) for ci in range(len(combos)) for f in range(len(folds))]
    scores = par(delayed(_fit_score)(model, split[ci][1], fitted[groups.index(split[ci][0]), f][1],
                                     y[folds[f][0]], fitted[groups.index(split[ci][0]), f][2],
                                     y[folds[f][1]], scorer) for ci, f in jobs)
    table = np.array(scores, dtype=float).reshape(len(combos), len(folds))
    mean = table.mean(axis=1)
    if not np.all(np.isfinite(mean)):
        bad = [combos[i] for i in np.flatnonzero(~np.isfinite(mean))]
        raise RuntimeError(f"non-finite CV scores for parameter settings {bad}")
    best = int(np.argmax(mean))
    pre_fit, Z, _ = fitted[groups.index(split[best][0]), len(folds)]
    model_fit = clone(model).set_params(**split[best][1]).fit(Z, y)
    results = {"params": combos, "mean_test_score": mean, "std_test_score": table.std(axis=1),
               **{f"split{f}_test_score": table[:, f] for f in range(len(folds))}}
    return TuneResult(Pipeline(pre_fit.steps + [(final, model_fit)]), combos[best], float(mean[best]),
                      best, results, folds, len(folds))


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
