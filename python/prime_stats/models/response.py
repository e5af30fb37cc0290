"""PRIME-R base learners (the paper's Bagging, AdaBoost, Stacking, Rotation Forest, stochastic
gradient boosting, and ridge / elastic-net logistic regression) and the per-modality Pipeline.

recipe="stable" (default): [clinical: one-hot encoding of text columns (training levels)] ->
missingness filter -> median imputation -> constant features removed -> z-score -> [radiomics: one
representative per cluster of features with |r| >= 0.9] -> stability selection of the elastic-net
logistic path -> learner.

recipe="paper": [clinical: one-hot encoding] -> missingness filter -> median imputation ->
[radiomics: variance < 0.01 removed] -> z-score -> [clinical: univariate logistic p < 0.05] ->
elastic-net logistic selection -> learner.
"""
from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (AdaBoostClassifier, BaggingClassifier, GradientBoostingClassifier,
                              RandomForestClassifier, StackingClassifier)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier

from ..features import (CorrelationFilter, ElasticNetLogisticSelector, MissingnessFilter,
                        StabilitySelector, UnivariateLogisticScreen, VarianceFilter)
from .rotation_forest import RotationForestClassifier

__all__ = ["RESPONSE_LEARNERS", "PAPER_RESPONSE_LEARNERS", "RECIPES", "make_response_learner",
           "make_response_pipeline"]

PAPER_RESPONSE_LEARNERS = ("bagging", "adaboost", "stacking", "rotation_forest", "stochastic_gb")
RESPONSE_LEARNERS = PAPER_RESPONSE_LEARNERS + ("ridge_logistic", "enet_logistic")
RECIPES = ("stable", "paper")
#: constant-feature threshold of the stable recipe (variance on the feature's own scale)
CONSTANT = 1e-12
#: redundancy threshold of the stable recipe's radiomics block: one feature per cluster of |r| >= 0.9
REDUNDANCY = 0.9


def make_response_learner(learner, random_state=None):
    """A fresh classifier by name (see RESPONSE_LEARNERS).

    stacking: logistic regression, random forest and RBF-SVM base learners; a logistic
    meta-learner fitted on their 5-fold out-of-fold predictions (scikit-learn StackingClassifier).
    stochastic_gb: Friedman's stochastic gradient boosting (row subsample 0.8).
    ridge_logistic / enet_logistic: penalised logistic regression (L2, or elastic net with
    ``l1_ratio`` 0.5, saga), penalty C tuned in the grid (R ``glmnet(family = "binomial", alpha = 0 /
    0.5)``; sklearn penalises sum(loss) + ||w||^2 / (2C)).
    """
    rs = random_state
    if learner == "bagging":
        return BaggingClassifier(DecisionTreeClassifier(random_state=rs), n_estimators=100,
                                 random_state=rs)
    if learner == "adaboost":
        return AdaBoostClassifier(DecisionTreeClassifier(max_depth=1, random_state=rs),
                                  n_estimators=100, learning_rate=0.5, random_state=rs)
    if learner == "stacking":
        return StackingClassifier(
            estimators=[("lr", LogisticRegression(C=1.0, max_iter=1000)),
                        ("rf", RandomForestClassifier(n_estimators=50, min_samples_leaf=3, random_state=rs)),
                        ("svm", SVC(C=1.0, random_state=rs))],
            final_estimator=LogisticRegression(C=1.0, max_iter=1000),
            cv=StratifiedKFold(5, shuffle=True, random_state=rs))
    if learner == "rotation_forest":
        return RotationForestClassifier(n_estimators=20, n_features_per_subset=3, max_depth=None,
                                        min_samples_leaf=1, random_state=rs)
    if learner == "stochastic_gb":
        return GradientBoostingClassifier(n_estimators=100, learning_rate=0.1, max_depth=2,
                                          subsample=0.8, random_state=rs)
    if learner == "ridge_logistic":
        return LogisticRegression(C=0.1, l1_ratio=0.0, max_iter=5000)
    if learner == "enet_logistic":
        return LogisticRegression(C=0.1, l1_ratio=0.5, solver="saga", max_iter=5000, tol=1e-4,
                                  random_state=rs)
    raise ValueError(f"unknown response learner {learner!r}; choose from {RESPONSE_LEARNERS}")


def check_recipe(recipe):
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {list(RECIPES)}; got {recipe!r}")


def _response_preprocess(kind, variance_threshold, alpha, recipe="stable"):
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
    if kind == "clinical":
        steps.append(("screen", UnivariateLogisticScreen(alpha=alpha)))
    return steps


def make_response_pipeline(learner, feature_kind, random_state=None, clinical_features=None,
                           radiomics_features=None, variance_threshold=0.01, screen_alpha=0.05,
                           l1_ratio=0.5, cv=5, recipe="stable"):
    """impute -> scale -> select -> model Pipeline for PRIME-R (pandas output, names preserved).

    feature_kind: "clinical", "radiomics", or "early" (early fusion: each modality's columns pass
    through its own preprocessing in a ColumnTransformer, then the shared selection and learner;
    needs ``clinical_features`` and ``radiomics_features``). ``recipe``: "stable" (stability
    selection, no p-value screen) or "paper" (the paper's screen + elastic net); see the module
    docstring. ``variance_threshold`` and ``screen_alpha`` apply to the paper's recipe only.
    """
    check_recipe(recipe)
    if recipe == "stable":
        select = [("stability", StabilitySelector("logistic", l1_ratio=l1_ratio, random_state=random_state))]
    else:
        select = [("enet", ElasticNetLogisticSelector(l1_ratio=l1_ratio, cv=cv, random_state=random_state))]
    model = [("model", make_response_learner(learner, random_state))]
    if feature_kind in ("clinical", "radiomics"):
        pre = _response_preprocess(feature_kind, variance_threshold, screen_alpha, recipe)
    elif feature_kind == "early":
        if not clinical_features or not radiomics_features:
            raise ValueError("early fusion needs both clinical_features and radiomics_features")
        ct = ColumnTransformer(
            [("clinical", Pipeline(_response_preprocess("clinical", variance_threshold, screen_alpha, recipe)),
              list(clinical_features)),
             ("radiomics", Pipeline(_response_preprocess("radiomics", variance_threshold, screen_alpha, recipe)),
              list(radiomics_features))],
            verbose_feature_names_out=False)
        pre = [("preprocess", ct)]
    else:
        raise ValueError(f"feature_kind must be 'clinical', 'radiomics' or 'early'; got {feature_kind!r}")
    for _, step in pre + select:  # pandas output through the transformers; the learner untouched
        step.set_output(transform="pandas")
    return Pipeline(pre + select + model)
