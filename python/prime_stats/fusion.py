"""Late fusion (PRIME-R), Bayesian model averaging (PRIME-S), early fusion and the nested-CV
modality comparison.

Everything learned here is learned from the rows passed to ``fit``: the meta-classifier sees only
out-of-fold training probabilities, the BMA weights only out-of-fold training risk scores, and both
are frozen before any internal-test or external cohort is scored.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted
from sksurv.metrics import concordance_index_censored

from .features import TableAttr, cox_partial_loglik, survival_arrays, survival_folds
from .models.response import RESPONSE_LEARNERS
from .models.selection import ModalityClassifier, ModalitySurvival, check_columns, feature_table
from .models.survival import SURVIVAL_LEARNERS, cindex_scorer

__all__ = ["PrimeR", "PrimeS", "NonNegativeStacker", "CoxCalibration", "compare_modalities"]


def _kinds(clinical, radiomics):
    kinds = [k for k, f in (("clinical", clinical), ("radiomics", radiomics)) if len(f)]
    if not kinds:
        raise ValueError("give clinical_features and/or radiomics_features")
    return kinds


def _concat(frames):
    frames = [f for f in frames if f is not None and len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


class NonNegativeStacker(ClassifierMixin, BaseEstimator):
    """Logistic meta-classifier of base-model probabilities with non-negative weights.

    logit P(y = 1) = b0 + sum_k w_k logit(p_k) with w_k >= 0, fitted by maximum likelihood
    (L-BFGS-B); the p_k are trimmed to [``trim``, 1 - ``trim``] before the logit. The constraint
    (Breiman 1996, stacked regressions; R SuperLearner's ``method.NNloglik``) gives a base model
    whose out-of-fold probabilities carry no signal the weight 0, where an unconstrained stacker
    fitted on ~80 patients turns noise into a negative weight. Without active constraints the fit
    equals an unpenalised logistic regression on the logits. ``coef_``, ``intercept_`` as sklearn.
    """

    def __init__(self, trim=1e-3):
        self.trim = trim

    def _logit(self, P):
        P = np.clip(np.asarray(P, dtype=float), self.trim, 1 - self.trim)
        return np.log(P) - np.log1p(-P)

    def fit(self, P, y):
        from scipy.optimize import minimize

        Z = self._logit(P)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) != 2:
            raise ValueError(f"the stacker needs a binary outcome; got classes {self.classes_.tolist()}")
        yb = (y == self.classes_[1]).astype(float)
        A = np.column_stack([np.ones(len(Z)), Z])

        def nll(theta):
            eta = A @ theta
            return np.sum(np.logaddexp(0, eta) - yb * eta), A.T @ (special.expit(eta) - yb)

        res = minimize(nll, np.zeros(A.shape[1]), jac=True, method="L-BFGS-B",
                       bounds=[(None, None)] + [(0, None)] * Z.shape[1],
                       options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-10})
        self.intercept_ = res.x[:1]
        self.coef_ = res.x[None, 1:]
        self.n_features_in_ = Z.shape[1]
        return self

    def decision_function(self, P):
        check_is_fitted(self, "coef_")
        return self.intercept_[0] + self._logit(P) @ self.coef_[0]

    def predict_proba(self, P):
        p = special.expit(self.decision_function(P))
        return np.column_stack([1 - p, p])

    def predict(self, P):
        return self.classes_[(self.decision_function(P) > 0).astype(int)]


class PrimeR(ClassifierMixin, BaseEstimator):
    """PRIME-R late fusion.

    For each modality the best pipeline (learner and hyper-parameters) is chosen by stratified
    ``cv``-fold CV AUC on the training data (``ModalityClassifier``); its out-of-fold training
    probabilities (selection and model refitted in each fold, as ``cross_val_predict``) train a
    logistic meta-classifier on their logits with non-negative weights (``NonNegativeStacker``); the
    base pipelines are then refitted on all training rows. With a single modality the
    meta-classifier only recalibrates that modality's probability.

    Fitted attributes: ``bases_`` (kind -> ModalityClassifier), ``chosen_learners_``,
    ``best_params_``, ``oof_proba_``, ``meta_``, ``fusion_weights_``, ``selected_features_``,
    ``tuning_table_``, ``selection_report_``.
    """

    oof_proba_ = TableAttr()
    fusion_weights_ = TableAttr()
    selected_features_ = TableAttr()
    tuning_table_ = TableAttr()
    selection_report_ = TableAttr()

    def __init__(self, clinical_features=(), radiomics_features=(), learners=RESPONSE_LEARNERS, cv=5,
                 fast=False, grids=None, random_state=0, n_jobs=1):
        self.clinical_features = clinical_features
        self.radiomics_features = radiomics_features
        self.learners = learners
        self.cv = cv
        self.fast = fast
        self.grids = grids
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        kinds = _kinds(self.clinical_features, self.radiomics_features)
        check_columns(X, list(self.clinical_features) + list(self.radiomics_features))
        y = np.asarray(y)
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(f"response must be binary; got classes {classes.tolist()}")
        return self._fuse(X, y, {k: self._base(k).fit(X, y) for k in kinds})

    def _base(self, kind):
        """The unfitted per-modality pipeline search that ``fit`` runs for ``kind``."""
        return ModalityClassifier(self.clinical_features, self.radiomics_features, kind, self.learners,
                                  self.cv, self.fast, self.grids, self.random_state, self.n_jobs)

    def _fuse(self, X, y, bases):
        """Late fusion of modality searches already fitted on (X, y) with ``self._base`` settings."""
        kinds = list(bases)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        self.bases_, oof = dict(bases), {}
        for k, base in bases.items():
            oof[k] = base.oof_.to_numpy()   # the chosen pipeline refitted in every CV fold
        self.oof_proba_ = pd.DataFrame(oof, index=X.index)
        self.meta_ = NonNegativeStacker().fit(self.oof_proba_.to_numpy(), y)
        self.fusion_weights_ = pd.DataFrame({
            "term": ["intercept"] + [f"logit_p_{k}" for k in kinds],
            "coefficient": np.r_[self.meta_.intercept_, self.meta_.coef_.ravel()],
            "oof_auc": [np.nan] + [roc_auc_score(y, oof[k]) for k in kinds]})
        self.chosen_learners_ = {k: b.best_learner_ for k, b in self.bases_.items()}
        self.best_params_ = {k: b.best_params_ for k, b in self.bases_.items()}
        self.selected_features_ = _concat([b.selected_features_.assign(feature_kind=k, learner=b.best_learner_)
                                           for k, b in self.bases_.items()])
        self.tuning_table_ = _concat([b.tuning_table_ for b in self.bases_.values()])
        self.selection_report_ = _concat([b.selection_report_ for b in self.bases_.values()])
        return self

    def base_proba(self, X):
        """Each modality's probability of the positive class (DataFrame, one column per modality)."""
        check_is_fitted(self, "meta_")
        return pd.DataFrame({k: b.predict_proba(X)[:, 1] for k, b in self.bases_.items()},
                            index=getattr(X, "index", None))

    def predict_proba(self, X):
        return self.meta_.predict_proba(self.base_proba(X).to_numpy())

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class CoxCalibration(BaseEstimator):
    """Cox model of one z-scored risk score (Breslow ties), h(t|s) = h0(t) exp(beta z(s)).

    ``beta_``, ``se_`` and ``loglik_`` from statsmodels PHReg; the Breslow baseline cumulative hazard
    H0(t) = sum_{t_i <= t} d_i / sum_{j in R(t_i)} exp(beta z_j) (R ``basehaz(fit, centered=FALSE)``
    on the z scale); ``bic_`` = -2 loglik + log(number of events) (Volinsky & Raftery 2000).
    A constant score gets the null model (beta 0, the null partial likelihood)."""

    def fit(self, score, y):
        from statsmodels.duration.hazard_regression import PHReg
        event, time = survival_arrays(y)
        score = np.asarray(score, dtype=float).ravel()
        self.mean_, self.sd_ = float(score.mean()), float(score.std()) or 1.0
        z = (score - self.mean_) / self.sd_
        if np.ptp(score) == 0:  # a constant score carries no information: the null Cox model
            self.beta_, self.se_ = 0.0, np.nan
            self.loglik_ = cox_partial_loglik(np.zeros(len(z)), event, time)
        else:
            res = PHReg(time, z[:, None], status=event.astype(int), ties="breslow").fit(disp=0)
            self.beta_, self.se_ = float(res.params[0]), float(res.bse[0])
            self.loglik_ = float(res.llf)
            if not np.isfinite([self.beta_, self.loglik_]).all():
                raise ArithmeticError("Cox calibration of the risk score did not converge (a score that "
                                      "separates events perfectly gives a monotone likelihood)")
        self.n_events_ = int(event.sum())
        self.bic_ = -2 * self.loglik_ + np.log(self.n_events_)
        eta = np.exp(self.beta_ * z)
        ut = np.unique(time[event])
        d = np.array([np.sum(event & (time == t)) for t in ut])
        at_risk = np.array([eta[time >= t].sum() for t in ut])
        self.times_, self.cumhaz_ = ut, np.cumsum(d / at_risk)
        return self

    def linear_predictor(self, score):
        return self.beta_ * (np.asarray(score, dtype=float).ravel() - self.mean_) / self.sd_

    def survival(self, score, times):
        """S(t|s) at ``times`` -> array (n, len(times)); S = 1 before the first event time."""
        times = np.atleast_1d(np.asarray(times, dtype=float))
        idx = np.searchsorted(self.times_, times, side="right") - 1
        H0 = np.where(idx < 0, 0.0, self.cumhaz_[np.clip(idx, 0, None)])
        return np.exp(-np.outer(np.exp(self.linear_predictor(score)), H0))


class PrimeS(BaseEstimator):
    """PRIME-S: Bayesian model averaging of the base survival pipelines.

    Every (modality, learner) pipeline is tuned by CV C-index on the training data
    (``ModalitySurvival``). Each one's out-of-fold training risk score is recalibrated by a Cox model
    (``CoxCalibration``); posterior model probabilities under equal priors are approximated by
    w_m proportional to exp(-BIC_m / 2). The averaged model is
    S(t|x) = sum_m w_m S0_m(t)^exp(beta_m z_m(x)) (a mixture of survival functions, hence monotone and
    in [0, 1]) with risk score sum_m w_m beta_m z_m(x) (posterior-mean log hazard ratio). The
    pipelines are refitted on all training rows; weights and calibrations are frozen at ``fit``.

    Fitted attributes: ``bases_`` (kind -> ModalitySurvival with every learner tuned),
    ``pipelines_`` and ``calibrations_`` ("kind/learner" -> fitted pipeline / CoxCalibration),
    ``bma_table_``, ``weights_``, ``chosen_learners_`` (best learner per modality by CV C-index),
    ``selected_features_``, ``tuning_table_``, ``selection_report_``.
    """

    bma_table_ = TableAttr()
    selected_features_ = TableAttr()
    tuning_table_ = TableAttr()
    selection_report_ = TableAttr()

    def __init__(self, clinical_features=(), radiomics_features=(), learners=SURVIVAL_LEARNERS, cv=5,
                 fast=False, grids=None, random_state=0, n_jobs=1):
        self.clinical_features = clinical_features
        self.radiomics_features = radiomics_features
        self.learners = learners
        self.cv = cv
        self.fast = fast
        self.grids = grids
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        kinds = _kinds(self.clinical_features, self.radiomics_features)
        check_columns(X, list(self.clinical_features) + list(self.radiomics_features))
        survival_arrays(y)
        return self._average(X, y, {k: self._base(k).fit(X, y) for k in kinds})

    def _base(self, kind):
        """The unfitted per-modality pipeline search that ``fit`` runs for ``kind``."""
        return ModalitySurvival(self.clinical_features, self.radiomics_features, kind, self.learners,
                                self.cv, self.fast, self.grids, self.random_state, self.n_jobs)

    def _average(self, X, y, bases):
        """BMA of modality searches already fitted on (X, y) with ``self._base`` settings."""
        event, time = survival_arrays(y)
        self.bases_, self.pipelines_, self.calibrations_, rows = dict(bases), {}, {}, []
        for k, base in bases.items():
            for learner, res in base.results_.items():
                cal = CoxCalibration().fit(res.oof_, y)
                self.pipelines_[f"{k}/{learner}"] = res.best_estimator_
                self.calibrations_[f"{k}/{learner}"] = cal
                rows.append({"feature_kind": k, "learner": learner, "cv_cindex": res.best_score_,
                             "oof_cindex": concordance_index_censored(event, time, res.oof_)[0],
                             "beta": cal.beta_, "se": cal.se_, "loglik": cal.loglik_, "bic": cal.bic_})
        tab = pd.DataFrame(rows)
        delta = tab["bic"] - tab["bic"].min()
        w = np.exp(-delta / 2)
        tab["weight"] = w / w.sum()
        self.bma_table_ = tab
        self.weights_ = tab["weight"].to_numpy()
        self.chosen_learners_ = {k: b.best_learner_ for k, b in self.bases_.items()}
        self.selected_features_ = _concat([
            feature_table(p).assign(feature_kind=key.split("/")[0], learner=key.split("/")[1])
            for key, p in self.pipelines_.items()])
        self.tuning_table_ = _concat([b.tuning_table_ for b in self.bases_.values()])
        self.selection_report_ = _concat([b.selection_report_ for b in self.bases_.values()])
        return self

    def member_risk(self, X):
        """Each averaged model's own risk score (columns "kind/learner")."""
        check_is_fitted(self, "weights_")
        return pd.DataFrame({key: p.predict(self.bases_[key.split("/")[0]]._X(X))
                             for key, p in self.pipelines_.items()}, index=getattr(X, "index", None))

    def _scores(self, X):
        risk = self.member_risk(X)
        return [(w, self.calibrations_[key], risk[key].to_numpy())
                for w, key in zip(self.weights_, self.pipelines_)]

    def predict(self, X):
        """BMA risk score: posterior-mean Cox log hazard ratio (higher = shorter survival)."""
        return sum(w * cal.linear_predictor(s) for w, cal, s in self._scores(X))

    def predict_survival_function(self, X, times):
        """BMA S(t|x) at ``times`` -> array (n, len(times)), non-increasing in t, within [0, 1]."""
        return sum(w * cal.survival(s, times) for w, cal, s in self._scores(X))

    def score(self, X, y):
        """Harrell's C-index of the BMA risk score."""
        return cindex_scorer(self, X, y)


def _mean_ci(values, level=0.95):
    v = np.asarray(values, dtype=float)
    k = len(v)
    se = v.std(ddof=1) / np.sqrt(k) if k > 1 else np.nan
    q = stats.t.ppf(0.5 + level / 2, k - 1) if k > 1 else np.nan
    return v.mean(), v.mean() - q * se, v.mean() + q * se, se


def compare_modalities(X, y, clinical_features, radiomics_features, outer_cv=5, cv=5, learners=None,
                       fast=False, grids=None, random_state=0, n_jobs=1, return_folds=False, progress=None):
    """Nested-CV comparison of clinical only, radiomics only, early fusion and late fusion.

    Outer ``outer_cv``-fold stratified CV (on the response, or on the event indicator); inside each
    outer training set every model does its own ``cv``-fold tuning, selection and fusion; the outer
    held-out fold gives AUC (binary y) or Harrell's C-index (structured survival y). Returns a tidy
    table (endpoint, model, metric, estimate, lower, upper, se, n_folds, method="nested CV"):
    estimate = mean over outer folds, interval = mean +/- t_{k-1} SE across folds (fold-to-fold SE,
    which understates the full variance; Bates, Hastie & Tibshirani 2023). With ``return_folds`` the
    per-fold values (fold, model, value) are returned too: ``(table, folds)``. ``progress``: a
    callable given a message after each outer fold.
    """
    survival = np.asarray(y).dtype.names is not None
    check_columns(X, list(clinical_features) + list(radiomics_features))
    kw = dict(cv=cv, fast=fast, grids=grids, random_state=random_state, n_jobs=n_jobs)
    if survival:
        endpoint, metric = "survival", "C-index"
        outer = survival_folds(y, outer_cv, random_state + 1)
        late = PrimeS(clinical_features, radiomics_features, learners or SURVIVAL_LEARNERS, **kw)
        combine = "_average"
    else:
        y = np.asarray(y)
        endpoint, metric = "response", "AUC"
        outer = list(StratifiedKFold(outer_cv, shuffle=True, random_state=random_state + 1).split(X, y))
        late = PrimeR(clinical_features, radiomics_features, learners or RESPONSE_LEARNERS, **kw)
        combine = "_fuse"
    names = ["clinical", "radiomics", "early fusion", "late fusion"]
    rows = []
    for f, (tr, te) in enumerate(outer):
        Xtr, Xte, ytr, yte = X.iloc[tr], X.iloc[te], y[tr], y[te]
        fitted = {kind: late._base(kind).fit(Xtr, ytr) for kind in ("clinical", "radiomics", "early")}
        # late fusion combines this fold's clinical and radiomics searches: PrimeR/PrimeS.fit would
        # run exactly the same searches (same settings, rows and seeds) again
        fitted["late"] = getattr(clone(late), combine)(Xtr, ytr, {k: fitted[k] for k in ("clinical", "radiomics")})
        for name, m in zip(names, fitted.values()):
            if survival:
                value = cindex_scorer(m, Xte, yte)
            else:
                value = roc_auc_score(yte, m.predict_proba(Xte)[:, 1])
            rows.append({"fold": f, "model": name, "value": value})
        if progress is not None:
            done = ", ".join(f"{r['model']} {r['value']:.3f}" for r in rows[-len(names):])
            progress(f"nested CV ({endpoint}): outer fold {f + 1}/{len(outer)} {metric}: {done}")
    folds = pd.DataFrame(rows)
    out = []
    for name in names:
        est, lo, hi, se = _mean_ci(folds.loc[folds.model == name, "value"])
        out.append({"endpoint": endpoint, "model": name, "metric": metric, "estimate": est,
                    "lower": lo, "upper": hi, "se": se, "n_folds": len(outer), "method": "nested CV"})
    res = pd.DataFrame(out)
    return (res, folds) if return_folds else res
