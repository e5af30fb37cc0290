"""PRIME-S base learners: the paper's Random Survival Forest, Gradient Boosting Survival Analysis and
FastSurvivalSVM (given a survival function by a Cox/Breslow calibration of its score), and the
penalised Cox models CoxNet (elastic net) and ridge Cox, each with S(t|x) from its Breslow baseline.

``make_survival_pipeline`` builds the per-modality chain, as one scikit-survival-compatible Pipeline:
recipe="stable" (default): [clinical: one-hot encoding of text columns] -> missingness filter ->
median imputation -> constant features removed -> z-score -> [radiomics: one representative per
cluster of features with |r| >= 0.9] -> stability selection of the elastic-net Cox path -> learner;
recipe="paper": [clinical: one-hot encoding] -> missingness filter -> median imputation ->
[radiomics: variance < 0.1 removed] -> z-score -> Cox-lasso screen -> elastic-net Cox top-10 -> learner.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted, validate_data
from sksurv.base import SurvivalAnalysisMixin
from sksurv.ensemble import GradientBoostingSurvivalAnalysis, RandomSurvivalForest
from sksurv.linear_model import CoxnetSurvivalAnalysis, CoxPHSurvivalAnalysis
from sksurv.metrics import concordance_index_censored
from sksurv.svm import FastSurvivalSVM

from ..features import (CorrelationFilter, CoxnetSelector, MissingnessFilter, StabilitySelector,
                        VarianceFilter, survival_arrays)
from .response import CONSTANT, REDUNDANCY, check_recipe

__all__ = [
    "SURVIVAL_LEARNERS",
    "PAPER_SURVIVAL_LEARNERS",
    "CoxCalibratedSurvivalSVM",
    "make_survival_learner",
    "make_survival_pipeline",
    "cindex_scorer",
]

PAPER_SURVIVAL_LEARNERS = ("rsf", "gbsa", "fast_svm")
SURVIVAL_LEARNERS = PAPER_SURVIVAL_LEARNERS + ("coxnet", "ridge_cox")


class CoxCalibratedSurvivalSVM(SurvivalAnalysisMixin, BaseEstimator):
    """FastSurvivalSVM (ranking objective, ``rank_ratio=1``: higher score = higher risk) with a
    survival function from a Cox model of its z-scored training score, S(t|x) = S0(t)^exp(b z(x)),
    S0 the Breslow baseline (both fitted on the training data only, as in a Cox recalibration)."""

    def __init__(self, alpha=1.0, max_iter=100, tol=None, random_state=None):
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, y):
        X = validate_data(self, X, dtype=float)
        survival_arrays(y)
        self.svm_ = FastSurvivalSVM(alpha=self.alpha, rank_ratio=1.0, max_iter=self.max_iter,
                                    tol=self.tol, random_state=self.random_state).fit(X, y)
        s = self.svm_.predict(X)
        self.score_mean_, self.score_sd_ = float(s.mean()), float(s.std()) or 1.0
        z = ((s - self.score_mean_) / self.score_sd_).reshape(-1, 1)
        self.calibrator_ = CoxPHSurvivalAnalysis(ties="breslow").fit(z, y)
        self.unique_times_ = self.calibrator_.unique_times_
        return self

    def _z(self, X):
        check_is_fitted(self, "calibrator_")
        X = validate_data(self, X, dtype=float, reset=False)
        return ((self.svm_.predict(X) - self.score_mean_) / self.score_sd_).reshape(-1, 1)

    def predict(self, X):
        """Risk score (the SVM's ranking score; higher = shorter survival)."""
        check_is_fitted(self, "calibrator_")
        X = validate_data(self, X, dtype=float, reset=False)
        return self.svm_.predict(X)

    def predict_survival_function(self, X, return_array=False):
        return self.calibrator_.predict_survival_function(self._z(X), return_array=return_array)

    def predict_cumulative_hazard_function(self, X, return_array=False):
        return self.calibrator_.predict_cumulative_hazard_function(self._z(X), return_array=return_array)


def make_survival_learner(learner, random_state=None):
    """A fresh survival learner by name: "rsf", "gbsa" (Cox loss, subsample 0.8), "fast_svm",
    "coxnet" (elastic-net Cox, ``l1_ratio`` 0.5, one penalty ``alphas=[a]`` tuned in the grid, Breslow
    baseline for S(t|x); R ``glmnet(family = "cox", alpha = 0.5)``) or "ridge_cox" (Cox with penalty
    alpha/2 ||b||^2, Efron ties; R ``coxph(Surv(t, d) ~ ridge(x, theta = alpha))``)."""
    if learner == "rsf":
        return RandomSurvivalForest(n_estimators=100, min_samples_leaf=10, max_features="sqrt",
                                    random_state=random_state, n_jobs=1)
    if learner == "gbsa":
        return GradientBoostingSurvivalAnalysis(n_estimators=100, learning_rate=0.1, max_depth=2,
                                                subsample=0.8, random_state=random_state)
    if learner == "fast_svm":
        return CoxCalibratedSurvivalSVM(alpha=1.0, random_state=random_state)
    if learner == "coxnet":
        return CoxnetSurvivalAnalysis(l1_ratio=0.5, alphas=[0.05], fit_baseline_model=True)
    if learner == "ridge_cox":
        return CoxPHSurvivalAnalysis(alpha=10.0, ties="efron")
    raise ValueError(f"unknown survival learner {learner!r}; choose from {SURVIVAL_LEARNERS}")


def _survival_preprocess(kind, variance_threshold, recipe="stable"):
    # the clinical table arrives encoded (features.ClinicalEncoder, fitted once on the training split)
    steps = [("missing", MissingnessFilter(0.3)), ("impute", SimpleImputer(strategy="median"))]
    if recipe == "stable":
        steps += [("constant", VarianceFilter(CONSTANT)), ("scale", StandardScaler())]
        if kind == "radiomics":
            steps.append(("redundancy", CorrelationFilter(REDUNDANCY)))
        return steps
    if kind == "radiomics":
        steps.append(("variance", VarianceFilter(variance_threshold)))
    steps.append(("scale", StandardScaler()))
    return steps


def make_survival_pipeline(learner, feature_kind, random_state=None, clinical_features=None,
                           radiomics_features=None, top_k=10, variance_threshold=0.1, cv=5, recipe="stable"):
    """impute -> scale -> select -> model Pipeline for PRIME-S.

    feature_kind: "clinical", "radiomics", or "early" (early fusion: each modality's columns go
    through its own preprocessing in a ColumnTransformer, then shared Cox selection and learner;
    needs ``clinical_features`` and ``radiomics_features``). ``recipe``: "stable" (stability
    selection of the elastic-net Cox path) or "paper" (Cox-lasso screen, elastic-net Cox top
    ``top_k``); ``variance_threshold`` and ``top_k`` apply to the paper's recipe only.
    """
    check_recipe(recipe)
    if recipe == "stable":
        select = [("stability", StabilitySelector("cox", l1_ratio=0.5, random_state=random_state))]
    else:
        select = [("cox_l1", CoxnetSelector(l1_ratio=1.0, cv=cv, random_state=random_state)),
                  ("cox_enet", CoxnetSelector(l1_ratio=0.5, cv=cv, top_k=top_k, random_state=random_state))]
    model = [("model", make_survival_learner(learner, random_state))]
    if feature_kind in ("clinical", "radiomics"):
        pre = _survival_preprocess(feature_kind, variance_threshold, recipe)
    elif feature_kind == "early":
        if not clinical_features or not radiomics_features:
            raise ValueError("early fusion needs both clinical_features and radiomics_features")
        ct = ColumnTransformer(
            [("clinical", Pipeline(_survival_preprocess("clinical", variance_threshold, recipe)),
              list(clinical_features)),
             ("radiomics", Pipeline(_survival_preprocess("radiomics", variance_threshold, recipe)),
              list(radiomics_features))],
            verbose_feature_names_out=False)
        pre = [("preprocess", ct)]
    else:
        raise ValueError(f"feature_kind must be 'clinical', 'radiomics' or 'early'; got {feature_kind!r}")
    for _, step in pre + select:  # pandas output through the transformers; the learner untouched
        step.set_output(transform="pandas")
    return Pipeline(pre + select + model)


def cindex_scorer(estimator, X, y):
    """Harrell's C-index of ``estimator.predict(X)`` (risk: higher = shorter survival).

    Raises on non-finite predictions or when no pair is comparable, so a grid search can never
    silently rank NaN scores (use with ``error_score="raise"``)."""
    event, time = survival_arrays(y)
    risk = np.asarray(estimator.predict(X), dtype=float)
    if not np.all(np.isfinite(risk)):
        raise ValueError("non-finite risk scores from %s" % type(estimator).__name__)
    if event.sum() == 0:
        raise ValueError("C-index undefined: the validation fold has no events")
    return float(concordance_index_censored(event, time, risk)[0])
