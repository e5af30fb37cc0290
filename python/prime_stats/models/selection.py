"""Model selection: grid search by stratified K-fold CV AUC / CV C-index, the per-modality
estimators that pick the best learner on the training data, and repeated-CV out-of-fold
predictions of a chosen pipeline on splits other than the tuning split (for late fusion).

``tune_learners`` fits a modality's preprocessing and selection steps once per training fold (they
do not depend on the learner or its hyper-parameters) and scores every learner setting on the
matching held-out fold, so selectors never see held-out rows and are not refitted per grid point
or per learner. The best setting's out-of-fold predictions come for free (for late fusion/BMA).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn import config_context
from sklearn.base import BaseEstimator, ClassifierMixin, clone, is_classifier
from sklearn.metrics import get_scorer
from sklearn.model_selection import ParameterGrid, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from ..features import selection_report, survival_arrays, survival_folds
from ..persist import TableAttr
from .grids import default_grid
from .response import RESPONSE_LEARNERS, check_recipe, make_response_pipeline
from .survival import SURVIVAL_LEARNERS, cindex_scorer, make_survival_pipeline

__all__ = ["tune", "tune_learners", "TuneResult", "ModalityClassifier", "ModalitySurvival", "feature_table",
           "check_columns", "distinct_rows", "repeated_oof", "choose_learner", "LEARNER_CHOICES", "SIMPLEST_FIRST"]

#: every learner from the simplest (penalised linear) to the most flexible: the order in which the
#: one-standard-error rule prefers them
SIMPLEST_FIRST = ("ridge_logistic", "enet_logistic", "ridge_cox", "coxnet", "fast_svm", "stacking",
                  "rotation_forest", "bagging", "adaboost", "stochastic_gb", "rsf", "gbsa")
LEARNER_CHOICES = ("one_se", "best")


def check_columns(X, columns, what="features"):
    """Raise a clear error if ``X`` is not a DataFrame holding every column in ``columns``."""
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame with named {what}; got {type(X).__name__}")
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise KeyError(f"{len(missing)} {what} missing from X: {missing[:20]}"
                       + (" ..." if len(missing) > 20 else ""))


def distinct_rows(X: pd.DataFrame, columns) -> tuple[pd.DataFrame, np.ndarray]:
    """(rows, inverse): the distinct rows of ``X[columns]`` and each row's position among them, so that
    a row-wise model's ``predict(X[columns])`` equals ``predict(rows)[inverse]`` (SHAP's coalition
    rows repeat a modality's values many times). Rows are equal when their float64 values are equal
    bit for bit; a frame that is not all float64 is not reduced."""
    check_columns(X, columns)
    n = len(X)
    if n == 0 or not X.columns.is_unique or not (X.dtypes == np.float64).all():
        return X[columns], np.arange(n)
    A = X.to_numpy()
    bits = A.view(np.uint64)
    cols = X.columns.get_indexer(columns)
    # adjacent columns are compared in place (a modality's columns usually are)
    block = slice(cols[0], cols[-1] + 1) if len(cols) and (np.diff(cols) == 1).all() else cols
    inverse = np.zeros(n, dtype=np.int64)   # distinct rows so far, numbered in order of appearance
    for j in cols[(bits[:, block] != bits[:1, block]).any(axis=0)]:
        codes, values = pd.factorize(bits[:, j])   # hashing: O(n) per varying column
        inverse = pd.factorize(inverse * len(values) + codes)[0]
        if inverse[-1] == n - 1:   # numbered in order of appearance: every row is already distinct
            break
    first = np.unique(inverse, return_index=True)[1]
    rows = pd.DataFrame(A[np.ix_(first, cols)], index=X.index[first], columns=X.columns[cols])
    return rows, inverse


@dataclass
class TuneResult:
    """Result of tuning one learner, with GridSearchCV's attribute names; ``oof_`` holds the
    best setting's out-of-fold predictions (P(class 1), or the risk score) for every row."""
    best_estimator_: Pipeline
    best_params_: dict
    best_score_: float
    best_index_: int
    cv_results_: dict
    folds_: list
    n_splits_: int
    oof_: np.ndarray


def _rows(X, idx):
    return X.iloc[idx] if hasattr(X, "iloc") else X[idx]


def _fit_pre(pre, X, y, tr, va):
    pre = clone(pre)
    Ztr = pre.fit_transform(_rows(X, tr), y[tr])
    return pre, Ztr, (None if va is None else pre.transform(_rows(X, va)))


def _predict(model, Z):
    return model.predict_proba(Z)[:, 1] if hasattr(model, "predict_proba") else model.predict(Z)


def _fit_score(model, params, Ztr, ytr, Zva, yva, scorer):
    # tune_learners checked that the features are finite and validated each setting once:
    # scikit-learn's per-call checks (repeated for every tree of an ensemble) are skipped here,
    # which changes no number
    with config_context(assume_finite=True, skip_parameter_validation=True):
        m = clone(model).set_params(**params).fit(Ztr, ytr)
        return scorer(m, Zva, yva), _predict(m, Zva)


def _model_grid(grid, final):
    bad = [k for k in grid if not k.startswith(final + "__")]
    if bad:
        raise ValueError(f"grid keys {bad} do not tune the learner step {final!r}; selection settings "
                         "are fixed by make_*_pipeline arguments")
    return [{k[len(final) + 2:]: v for k, v in c.items()} for c in ParameterGrid(grid)]


def choose_learner(names, scores, ses, rule="best"):
    """The learner a modality keeps, from each learner's best CV score and its standard error.

    ``rule="best"``: the highest CV score (ties: the first name). ``rule="one_se"``: the
    one-standard-error rule (Breiman, Friedman, Olshen & Stone 1984; Hastie, Tibshirani & Friedman
    2009, section 7.10; glmnet's ``lambda.1se``): the simplest learner (:data:`SIMPLEST_FIRST` order)
    whose CV score is at least the best score minus the best learner's standard error (SD of its
    fold scores / sqrt(K)). With K = 5 folds of ~80 patients that SE is ~0.05 AUC, so a flexible
    ensemble is kept only when it beats the penalised models by more than the CV noise."""
    if rule not in LEARNER_CHOICES:
        raise ValueError(f"learner choice must be one of {list(LEARNER_CHOICES)}; got {rule!r}")
    names, scores, ses = list(names), np.asarray(scores, float), np.asarray(ses, float)
    best = int(np.argmax(scores))
    if rule == "best":
        return names[best]
    ok = [i for i in range(len(names)) if scores[i] >= scores[best] - ses[best]]
    rank = {name: r for r, name in enumerate(SIMPLEST_FIRST)}
    return names[min(ok, key=lambda i: (rank.get(names[i], len(rank)), -scores[i]))]


def tune_learners(pre, learners, X, y, cv=5, scoring=None, n_jobs=1, random_state=None, refit="all",
                  choice="best"):
    """Tune several learners that share one preprocessing/selection Pipeline ``pre``.

    ``learners``: {name: (estimator, grid)} with grid keys prefixed ``model__``. ``pre`` is fitted
    once per training fold (and once on all rows for the refit); every learner setting is fitted
    on the fold's transformed training rows and scored on its held-out rows. Classifiers:
    StratifiedKFold on y, scoring "roc_auc"; survival: folds stratified on the event indicator,
    Harrell's C-index (``cindex_scorer``). Ties go to the first setting in grid order. A failed fit
    raises; a non-finite CV score raises instead of being ranked. ``refit="all"`` refits every
    learner's best setting on all rows; ``refit="best"`` only the learner kept by ``choice``
    (:func:`choose_learner`), the others get ``best_estimator_=None``. Returns {name: TuneResult}.
    """
    if refit not in ("all", "best"):
        raise ValueError(f"refit must be 'all' or 'best', not {refit!r}")
    y = np.asarray(y)
    first = next(iter(learners.values()))[0]
    if is_classifier(first):
        folds = list(StratifiedKFold(cv, shuffle=True, random_state=random_state).split(X, y))
        scoring = scoring or "roc_auc"
    else:
        folds = survival_folds(y, cv, random_state)
        scoring = scoring or cindex_scorer
    scorer = get_scorer(scoring) if isinstance(scoring, str) else scoring
    par = Parallel(n_jobs=n_jobs)
    splits = folds + [(np.arange(len(y)), None)]
    fitted = par(delayed(_fit_pre)(pre, X, y, tr, va) for tr, va in splits)
    for Z in (Z for _, Ztr, Zva in fitted for Z in (Ztr, Zva) if Z is not None):
        bad = ~np.isfinite(np.asarray(Z, dtype=float)).all(axis=0)
        if bad.any():
            names = list(getattr(Z, "columns", range(bad.size)))
            raise ValueError("the preprocessing left missing or infinite values in features "
                             f"{[names[j] for j in np.flatnonzero(bad)][:5]}; the learners need finite inputs")
    combos = {name: _model_grid(grid, "model") for name, (_, grid) in learners.items()}
    for name, (model, _) in learners.items():
        for c in combos[name]:
            setting = clone(model).set_params(**c)
            if hasattr(setting, "_parameter_constraints"):   # scikit-learn's own estimators
                setting._validate_params()
    jobs = [(name, ci, f) for name in learners for ci in range(len(combos[name])) for f in range(len(folds))]
    out = par(delayed(_fit_score)(learners[name][0], combos[name][ci], fitted[f][1], y[folds[f][0]],
                                  fitted[f][2], y[folds[f][1]], scorer) for name, ci, f in jobs)
    res = dict(zip(jobs, out))
    pre_fit, Z, _ = fitted[-1]
    results = {}
    for name, (model, grid) in learners.items():
        table = np.array([[res[name, ci, f][0] for f in range(len(folds))]
                          for ci in range(len(combos[name]))], dtype=float)
        mean = table.mean(axis=1)
        if not np.all(np.isfinite(mean)):
            bad = [combos[name][i] for i in np.flatnonzero(~np.isfinite(mean))]
            raise RuntimeError(f"non-finite CV scores for {name} settings {bad}")
        best = int(np.argmax(mean))
        oof = np.empty(len(y))
        for f, (_, va) in enumerate(folds):
            oof[va] = res[name, best, f][1]
        params = [{f"model__{k}": v for k, v in c.items()} for c in combos[name]]
        cv_results = {"params": params, "mean_test_score": mean, "std_test_score": table.std(axis=1),
                      "se_test_score": table.std(axis=1, ddof=1) / np.sqrt(len(folds)),
                      **{f"split{f}_test_score": table[:, f] for f in range(len(folds))}}
        results[name] = TuneResult(None, params[best], float(mean[best]), best, cv_results, folds,
                                   len(folds), oof)
    winner = choose_learner(results, [r.best_score_ for r in results.values()],
                            [r.cv_results_["se_test_score"][r.best_index_] for r in results.values()], choice)
    for name, (model, _) in learners.items():
        if refit == "all" or name == winner:
            model_fit = clone(model).set_params(**combos[name][results[name].best_index_]).fit(Z, y)
            results[name].best_estimator_ = Pipeline(pre_fit.steps + [("model", model_fit)])
    return results


def _oof_split(pipeline, X, y, tr, va):
    with config_context(skip_parameter_validation=True):   # settings validated by the tuning
        m = clone(pipeline).fit(_rows(X, tr), y[tr])
        return _predict(m, _rows(X, va))


def repeated_oof(pipeline, X, y, n_repeats=3, cv=5, random_state=0, n_jobs=1):
    """Out-of-fold predictions of ``pipeline`` (hyper-parameters fixed, every step refitted in each
    fold) from ``n_repeats`` repetitions of ``cv``-fold CV -> array (n_repeats, n): P(class 1) for a
    classifier, the risk score for a survival model. Repetition r uses the shuffled split seeded
    ``(random_state, 7919, r)`` (stratified on the class, or on the event indicator), so the splits
    differ from the tuning split of :func:`tune_learners` (seed ``random_state``) and from each other."""
    y = np.asarray(y)
    splits = []
    for r in range(n_repeats):
        seed = int(np.random.SeedSequence([int(random_state or 0), 7919, r]).generate_state(1)[0])
        if y.dtype.names is None:
            folds = StratifiedKFold(cv, shuffle=True, random_state=seed).split(np.zeros(len(y)), y)
        else:
            folds = survival_folds(y, cv, seed)
        splits += [(r, tr, va) for tr, va in folds]
    preds = Parallel(n_jobs=n_jobs)(delayed(_oof_split)(pipeline, X, y, tr, va) for _, tr, va in splits)
    out = np.full((n_repeats, len(y)), np.nan)
    for (r, _, va), p in zip(splits, preds):
        out[r, va] = p
    return out


def tune(pipeline, grid, X, y, cv=5, scoring=None, n_jobs=1, random_state=None):
    """Grid search of one ``pipeline`` (last step named "model") over ``grid`` by ``cv``-fold CV,
    with the selection steps fitted once per fold (same numbers as GridSearchCV on the whole
    pipeline with the same folds). Returns a TuneResult; ``best_estimator_`` is refitted on all X."""
    if pipeline.steps[-1][0] != "model":
        raise ValueError("the pipeline's last step must be named 'model'")
    return tune_learners(pipeline[:-1], {"model": (pipeline[-1], grid)}, X, y, cv, scoring, n_jobs,
                         random_state)["model"]


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
        elif hasattr(model, "coef_"):  # penalised logistic / Cox: coefficient on the z scale
            imp = np.asarray(model.coef_, dtype=float).ravel()
        else:
            imp = np.asarray(model.feature_importances_, dtype=float)
    except (AttributeError, NotImplementedError, ValueError):
        pass
    return imp


def feature_table(pipeline):
    """Selected features of a fitted Pipeline with the last selector's statistic (elastic-net
    logistic or Cox coefficient in ``selection_coefficient``, stability-selection probability in
    ``selection_probability``; NaN where the recipe has none) and the learner's importance
    (impurity importance, or coefficient)."""
    pipe = getattr(pipeline, "best_estimator_", pipeline)
    names = list(pipe[:-1].get_feature_names_out())

    def last(attr):
        sel = [s for _, s in pipe.steps[:-1] if hasattr(s, attr) and hasattr(s, "support_")]
        if not sel:
            return np.full(len(names), np.nan)
        return pd.Series(getattr(sel[-1], attr), index=sel[-1].feature_names_in_).reindex(names).to_numpy()

    return pd.DataFrame({"feature": names, "selection_coefficient": last("coef_"),
                         "selection_probability": last("selection_probability_"),
                         "importance": _model_importance(pipe[-1], names)})


class _ModalityBase(BaseEstimator):
    _refit = "all"   # which tuned learners tune_learners refits on all rows
    tuning_table_ = TableAttr()
    selection_report_ = TableAttr()
    selected_features_ = TableAttr()
    oof_ = TableAttr(series=True)

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
        check_recipe(self.recipe)
        learners, pre = {}, None
        for learner in self.learners:
            pipe = make(learner, self.feature_kind, self.random_state,
                        clinical_features=list(self.clinical_features),
                        radiomics_features=list(self.radiomics_features), recipe=self.recipe)
            pre = pipe[:-1] if pre is None else pre        # identical for every learner
            learners[learner] = (pipe[-1], (self.grids or {}).get(learner) or default_grid(learner, self.fast))
        self.results_ = tune_learners(pre, learners, X[cols], y, cv=self.cv, n_jobs=self.n_jobs,
                                      random_state=self.random_state, refit=self._refit,
                                      choice=self.learner_choice)
        rows = [{"feature_kind": self.feature_kind, "recipe": self.recipe, "learner": name, "cv_score": r.best_score_,
                 "cv_sd": r.cv_results_["std_test_score"][r.best_index_],
                 "cv_se": r.cv_results_["se_test_score"][r.best_index_], "params": r.best_params_}
                for name, r in self.results_.items()]
        tab = pd.DataFrame(rows)
        self.best_learner_ = choose_learner(tab.learner, tab.cv_score, tab.cv_se, self.learner_choice)
        tab["rule"] = self.learner_choice
        tab["chosen"] = tab["learner"] == self.best_learner_
        best = self.results_[self.best_learner_]
        self.columns_ = cols
        self.best_estimator_ = best.best_estimator_
        self.best_params_ = best.best_params_
        self.best_score_ = best.best_score_
        self.oof_ = pd.Series(best.oof_, index=X.index, name=self.feature_kind)
        self.tuning_table_ = tab
        self.selection_report_ = selection_report(self.best_estimator_).assign(feature_kind=self.feature_kind)
        self.selected_features_ = feature_table(self.best_estimator_)
        return self

    def _distinct(self, X):
        """(X[columns_] on its distinct rows, each row's position among them): :func:`distinct_rows`."""
        check_is_fitted(self, "best_estimator_")
        return distinct_rows(X, self.columns_)


class ModalityClassifier(ClassifierMixin, _ModalityBase):
    """Best PRIME-R pipeline for one modality ("clinical", "radiomics", or "early" = concatenated
    early fusion): each learner is tuned by stratified ``cv``-fold CV AUC on the training data and
    one is kept (refitted on all training rows) by ``learner_choice``: ``"one_se"`` (default), the
    simplest learner within one standard error of the best, or ``"best"``, the highest CV AUC (the
    paper's rule; see :func:`choose_learner`). ``recipe``: the
    selection recipe, "stable" (default) or "paper" (see prime_stats.features). ``results_`` holds
    every learner's TuneResult (only the chosen one refitted), ``oof_`` the chosen one's
    out-of-fold probabilities."""

    _refit = "best"

    def __init__(self, clinical_features=(), radiomics_features=(), feature_kind="clinical",
                 learners=RESPONSE_LEARNERS, cv=5, fast=False, grids=None, random_state=0, n_jobs=1,
                 recipe="stable", learner_choice="one_se"):
        self.clinical_features = clinical_features
        self.radiomics_features = radiomics_features
        self.feature_kind = feature_kind
        self.learners = learners
        self.cv = cv
        self.fast = fast
        self.grids = grids
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.recipe = recipe
        self.learner_choice = learner_choice

    def fit(self, X, y):
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"response must be binary; got classes {self.classes_.tolist()}")
        return self._fit_learners(X, y, make_response_pipeline)

    def predict_proba(self, X):
        Xd, inverse = self._distinct(X)
        return self.best_estimator_.predict_proba(Xd)[inverse]

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class ModalitySurvival(_ModalityBase):
    """Best PRIME-S pipeline for one modality (or "early" fusion): each learner tuned by
    event-stratified ``cv``-fold CV Harrell's C-index on the training data, one kept by
    ``learner_choice`` as in :class:`ModalityClassifier` (every learner refitted on all training
    rows). ``recipe``: "stable" (default) or "paper" (see prime_stats.features).
    ``results_`` holds every learner's TuneResult (with out-of-fold risk scores, used by PrimeS for
    the averaging weights)."""

    def __init__(self, clinical_features=(), radiomics_features=(), feature_kind="clinical",
                 learners=SURVIVAL_LEARNERS, cv=5, fast=False, grids=None, random_state=0, n_jobs=1,
                 recipe="stable", learner_choice="one_se"):
        self.clinical_features = clinical_features
        self.radiomics_features = radiomics_features
        self.feature_kind = feature_kind
        self.learners = learners
        self.cv = cv
        self.fast = fast
        self.grids = grids
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.recipe = recipe
        self.learner_choice = learner_choice

    def fit(self, X, y):
        survival_arrays(y)
        return self._fit_learners(X, y, make_survival_pipeline)

    def predict(self, X):
        """Risk score (higher = shorter survival)."""
        Xd, inverse = self._distinct(X)
        return self.best_estimator_.predict(Xd)[inverse]

    def predict_survival_function(self, X, return_array=False):
        """S(t|x) of the best pipeline, as scikit-survival: step functions, or with
        ``return_array=True`` the array (n, len(unique_times_))."""
        Xd, inverse = self._distinct(X)
        return self.best_estimator_.predict_survival_function(Xd, return_array=return_array)[inverse]

    @property
    def unique_times_(self):
        """The time grid of :meth:`predict_survival_function` (the best learner's)."""
        return self.best_estimator_[-1].unique_times_

    def score(self, X, y):
        """Harrell's C-index."""
        return cindex_scorer(self, X, y)
