"""Leakage-safe feature selection as scikit-learn transformers.

Every selector learns only from the rows passed to ``fit`` (the training fold), so a Pipeline
``impute -> scale -> select -> model`` refits the whole chain in every resample. Each selector keeps
a tidy ``report_`` DataFrame (feature, statistic, value, kept, reason) for the TRIPOD+AI report and
supports ``get_feature_names_out`` / ``set_output(transform="pandas")`` so column names survive.

Two selection recipes (``recipe=`` of the modality estimators and of PrimeR / PrimeS):

* ``"stable"`` (default): drop > 30 % missing, median-impute, drop constant features, z-score,
  [radiomics: :class:`CorrelationFilter`, one representative per cluster of |r| >= 0.9], then
  :class:`StabilitySelector` (complementary-pairs stability selection of the elastic-net
  logistic or Cox path, Meinshausen & Buehlmann 2010; Shah & Samworth 2013) - no univariate
  p-value screen; the penalised learners (ridge / elastic-net logistic, ridge Cox, CoxNet) compete
  with the ensembles as the refit;
* ``"paper"``: the PRIME paper's recipe, exactly as below.

The paper's recipe (Methods of the PRIME paper), kept as ``recipe='paper'``:

* response: drop > 30 % missing, median-impute, radiomics variance < 0.01 (raw scale) removed,
  z-score, clinical univariate logistic screen (p < 0.05), elastic-net logistic regression
  (5-fold CV deviance, l1_ratio 0.5, saga), keep |coef| > 1e-4;
* survival: drop > 30 % missing, median-impute, radiomics variance < 0.1 (raw scale) removed,
  z-score, Cox-lasso screen, elastic-net Cox, top 10 by |coef|; both Cox penalties are chosen by
  cross-validated partial likelihood (scikit-survival ``CoxnetSurvivalAnalysis`` paths).
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectorMixin
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.validation import check_is_fitted, validate_data

from .persist import TableAttr

__all__ = [
    "ClinicalEncoder",
    "MissingnessFilter",
    "VarianceFilter",
    "CorrelationFilter",
    "UnivariateLogisticScreen",
    "ElasticNetLogisticSelector",
    "CoxnetSelector",
    "StabilitySelector",
    "cox_partial_loglik",
    "survival_arrays",
    "survival_folds",
    "selection_report",
    "selected_features",
]


def survival_arrays(y):
    """Return (event: bool array, time: float array) from a scikit-survival structured array."""
    y = np.asarray(y)
    if y.dtype.names is None or len(y.dtype.names) != 2:
        raise ValueError(
            "survival target must be a structured array with (event, time) fields, e.g. "
            "sksurv.util.Surv.from_arrays(event, time); got dtype %r" % (y.dtype,))
    ev_name, t_name = y.dtype.names
    event = y[ev_name].astype(bool)
    time = y[t_name].astype(float)
    if np.any(~np.isfinite(time)) or np.any(time <= 0):
        bad = np.flatnonzero(~np.isfinite(time) | (time <= 0))[:5]
        raise ValueError(f"survival times must be finite and > 0; offending rows {bad.tolist()}")
    return event, time


def survival_folds(y, cv=5, random_state=None):
    """Stratified K-fold splits of a survival target, stratified on the event indicator."""
    event, _ = survival_arrays(y)
    skf = StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state)
    return list(skf.split(np.zeros(len(event)), event))


def _names(est, n):
    names = getattr(est, "feature_names_in_", None)
    return np.asarray(names, dtype=object) if names is not None else np.array(
        [f"x{i}" for i in range(n)], dtype=object)


def _check_numeric(X):
    if isinstance(X, pd.DataFrame):
        bad = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
        if bad:
            raise ValueError(
                f"non-numeric feature column(s) {bad[:10]}: encode categorical variables "
                "(e.g. one-hot or ordinal codes) before modelling")


class _Reporting(SelectorMixin, BaseEstimator):
    """Shared plumbing: support mask + tidy report."""

    report_ = TableAttr()

    def _get_support_mask(self):
        check_is_fitted(self, "support_")
        return self.support_

    def _finish(self, statistic, values, support, reasons):
        self.support_ = np.asarray(support, dtype=bool)
        names = _names(self, len(self.support_))
        self.report_ = pd.DataFrame({
            "step": type(self).__name__, "feature": names, "statistic": statistic,
            "value": np.asarray(values, dtype=float), "kept": self.support_, "reason": reasons})
        return self


class MissingnessFilter(_Reporting):
    """Drop features whose training-set missing fraction exceeds ``max_missing`` (paper: 30 %)."""

    def __init__(self, max_missing=0.3):
        self.max_missing = max_missing

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def fit(self, X, y=None):
        _check_numeric(X)
        with np.errstate(invalid="ignore"):  # numpy's finiteness scan over NaN-bearing columns
            X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=float)
        frac = np.isnan(X).mean(axis=0)
        keep = frac <= self.max_missing
        reasons = np.where(keep, f"missing <= {self.max_missing:.0%}",
                           f"missing > {self.max_missing:.0%}")
        return self._finish("missing_fraction", frac, keep, reasons)


class VarianceFilter(_Reporting):
    """Drop features with training-set variance (ddof=0, on the feature's own scale) below
    ``threshold`` (paper: 0.01 response radiomics, 0.1 survival). Place it before z-scoring."""

    def __init__(self, threshold=0.01):
        self.threshold = threshold

    def fit(self, X, y=None):
        X = validate_data(self, X, dtype=float)
        var = X.var(axis=0)
        keep = var >= self.threshold
        reasons = np.where(keep, f"variance >= {self.threshold:g}", f"variance < {self.threshold:g}")
        return self._finish("variance", var, keep, reasons)


class CorrelationFilter(_Reporting):
    """Redundancy filter: one representative per cluster of near-duplicate features.

    Complete-linkage hierarchical clustering of the features on the distance 1 - |r| (Pearson r on
    the training rows), cut at 1 - ``threshold``, so that every pair within a cluster has
    |r| >= ``threshold`` (radiomics practice: e.g. Zwanenburg et al. 2020, IBSI; R
    ``caret::findCorrelation(cutoff = 0.9)`` removes the same kind of redundancy greedily). Each
    cluster keeps its medoid, the member with the largest mean |r| to the others (ties: the first
    column). Unsupervised (``y`` is ignored), so it adds no outcome leakage; constant columns should
    be removed before it. Fitted: ``support_``, ``cluster_`` (cluster label per feature)."""

    def __init__(self, threshold=0.9):
        self.threshold = threshold

    def fit(self, X, y=None):
        from scipy.cluster.hierarchy import fcluster, linkage
        from scipy.spatial.distance import squareform

        X = validate_data(self, X, dtype=float)
        if not 0 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1]; got {self.threshold!r}")
        p = X.shape[1]
        if p < 2:
            self.cluster_ = np.ones(p, dtype=int)
            return self._finish("max_abs_r_in_cluster", np.zeros(p), np.ones(p, bool),
                                np.full(p, "single feature", dtype=object))
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.abs(np.corrcoef(X, rowvar=False))
        r = np.nan_to_num(r, nan=0.0)
        np.fill_diagonal(r, 1.0)
        dist = np.clip(1.0 - r, 0.0, None)
        labels = fcluster(linkage(squareform(dist, checks=False), method="complete"),
                          t=1.0 - self.threshold + 1e-12, criterion="distance")
        keep = np.zeros(p, dtype=bool)
        represented = np.empty(p, dtype=object)
        names = _names(self, p)
        max_r = np.zeros(p)
        for lab in np.unique(labels):
            members = np.flatnonzero(labels == lab)
            sub = r[np.ix_(members, members)]
            medoid = members[int(np.argmax(sub.mean(axis=1)))]
            keep[medoid] = True
            represented[members] = f"redundant with {names[medoid]} (|r| >= {self.threshold:g})"
            represented[medoid] = ("cluster representative" if len(members) > 1 else "no |r| >= "
                                   f"{self.threshold:g}")
            max_r[members] = (sub - np.eye(len(members))).max(axis=1) if len(members) > 1 else 0.0
        self.cluster_ = labels
        return self._finish("max_abs_r_in_cluster", max_r, keep, represented)


def _logistic_lr_pvalue(x, y):
    """Likelihood-ratio test p-value of a one-covariate logistic regression (Newton-Raphson MLE;
    same statistic as R's ``anova(glm(y ~ x, binomial), test = "LRT")``)."""
    n = len(y)
    p0 = y.mean()
    ll0 = n * (p0 * np.log(p0) + (1 - p0) * np.log(1 - p0))
    if np.ptp(x) == 0:
        return 0.0, 1.0
    xs = (x - x.mean()) / x.std()
    Z = np.column_stack([np.ones(n), xs])
    beta = np.array([np.log(p0 / (1 - p0)), 0.0])
    ll = ll0
    for _ in range(100):
        eta = np.clip(Z @ beta, -30, 30)
        p = 1 / (1 + np.exp(-eta))
        W = p * (1 - p)
        H = Z.T @ (Z * W[:, None])
        step = np.linalg.solve(H + 1e-10 * np.eye(2), Z.T @ (y - p))
        beta = beta + step
        eta = np.clip(Z @ beta, -30, 30)
        ll_new = np.sum(y * eta - np.logaddexp(0, eta))
        if abs(ll_new - ll) < 1e-10:
            ll = ll_new
            break
        ll = ll_new
    lr = max(2 * (ll - ll0), 0.0)
    return beta[1] / x.std(), stats.chi2.sf(lr, 1)


class UnivariateLogisticScreen(_Reporting):
    """Keep features whose univariate logistic regression likelihood-ratio p-value is < ``alpha``
    (paper: 0.05). If none passes, the ``min_features`` smallest p-values are kept and the report
    says so (a pipeline cannot continue with zero features)."""

    def __init__(self, alpha=0.05, min_features=1):
        self.alpha = alpha
        self.min_features = min_features

    def fit(self, X, y):
        X = validate_data(self, X, dtype=float)
        y = np.asarray(y)
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(f"univariate logistic screen needs a binary outcome; got classes {classes}")
        yb = (y == classes[1]).astype(float)
        res = np.array([_logistic_lr_pvalue(X[:, j], yb) for j in range(X.shape[1])])
        self.coef_, self.pvalues_ = res[:, 0], res[:, 1]
        keep = self.pvalues_ < self.alpha
        reasons = np.where(keep, f"p < {self.alpha:g}", f"p >= {self.alpha:g}").astype(object)
        if keep.sum() < self.min_features:
            top = np.argsort(self.pvalues_, kind="stable")[: self.min_features]
            keep[top] = True
            reasons[top] = f"fallback: smallest p (none < {self.alpha:g})"
        return self._finish("lrt_pvalue", self.pvalues_, keep, reasons)


class ElasticNetLogisticSelector(_Reporting):
    """Elastic-net logistic regression (saga, ``l1_ratio`` 0.5) with C chosen on the training data by
    stratified ``cv``-fold CV binomial deviance (glmnet's default criterion; AUC is rank-based and
    nearly flat in C, so it under-selects) over ``Cs`` values log-spaced in [1e-4, 1e4] (as
    ``LogisticRegressionCV``; ties -> the stronger penalty); keep features with |coef| >
    ``threshold`` (paper: 1e-4). Expects z-scored input. If the CV-optimal penalty zeroes every
    coefficient, the ``min_features`` largest |coef| at the weakest penalty on the grid are kept
    and the report says so."""

    def __init__(self, l1_ratio=0.5, Cs=10, cv=5, threshold=1e-4, min_features=1,
                 max_iter=2000, tol=1e-3, random_state=None):
        self.l1_ratio = l1_ratio
        self.Cs = Cs
        self.cv = cv
        self.threshold = threshold
        self.min_features = min_features
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _lr(self, C):
        return LogisticRegression(C=C, l1_ratio=self.l1_ratio, solver="saga", max_iter=self.max_iter,
                                  tol=self.tol, random_state=self.random_state)

    def _path(self, X, y):
        """Coefficients along the C grid (warm-started, strongest penalty first)."""
        lr = self._lr(self.Cs_[0]).set_params(warm_start=True)
        for C in self.Cs_:
            lr.set_params(C=C).fit(X, y)
            yield lr.coef_.ravel().copy(), float(lr.intercept_[0])

    def fit(self, X, y):
        X = validate_data(self, X, dtype=float)
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(f"elastic-net logistic selection needs a binary outcome; got {classes}")
        yb = (np.asarray(y) == classes[1]).astype(float)
        self.Cs_ = np.logspace(-4, 4, self.Cs) if np.isscalar(self.Cs) else np.sort(np.asarray(self.Cs, float))
        folds = StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state)
        dev = np.zeros((self.cv, len(self.Cs_)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for k, (tr, va) in enumerate(folds.split(X, yb)):
                for j, (b, b0) in enumerate(self._path(X[tr], yb[tr])):
                    eta = X[va] @ b + b0
                    dev[k, j] = 2 * np.mean(np.logaddexp(0, eta) - yb[va] * eta)
            self.cv_deviance_ = dev.mean(axis=0)
            best = int(np.argmin(self.cv_deviance_))
            self.C_ = float(self.Cs_[best])
            coef = self._lr(self.C_).fit(X, yb).coef_.ravel()
            keep = np.abs(coef) > self.threshold
            reasons = np.where(keep, f"|coef| > {self.threshold:g}", f"|coef| <= {self.threshold:g}").astype(object)
            if keep.sum() < self.min_features:
                coef = self._lr(float(self.Cs_[-1])).fit(X, yb).coef_.ravel()
                top = np.argsort(-np.abs(coef), kind="stable")[: self.min_features]
                keep[top] = True
                reasons[top] = "fallback: largest |coef| at weakest penalty (CV penalty kept none)"
        self.coef_ = coef
        return self._finish("coefficient", coef, keep, reasons)


def cox_partial_loglik(eta, event, time):
    """Cox log partial likelihood with Breslow ties: sum over events of
    eta_i - log sum_{j: t_j >= t_i} exp(eta_j) (the package's one Cox, ``_survcore.cox_loglik``)."""
    from .evaluation._survcore import cox_loglik

    return cox_loglik(eta, time, event)


class CoxnetSelector(_Reporting):
    """Penalised Cox selection with scikit-survival ``CoxnetSurvivalAnalysis``.

    ``l1_ratio=1`` is the Cox-lasso screen, ``l1_ratio=0.5`` the elastic-net Cox step. The penalty
    alpha is chosen on the training data by ``cv``-fold (event-stratified) cross-validation over the
    path: ``criterion="deviance"`` (default, glmnet's ``cv.glmnet(family = "cox")``) maximises the
    cross-validated partial likelihood of Verweij & van Houwelingen (1993),
    mean_k [l(b_-k) - l_-k(b_-k)]; ``criterion="cindex"`` maximises the mean held-out Harrell's C
    (rank-based, flat in alpha, so it tends to pick sparse models). Ties -> the sparser model.
    Features with a non-zero coefficient are kept, at most ``top_k`` of them by |coef| (paper: 10).
    If the chosen penalty keeps none, the ``min_features`` first features to enter the path are kept
    and the report says so. Expects z-scored input and a scikit-survival structured ``y``.
    """

    def __init__(self, l1_ratio=1.0, cv=5, top_k=None, min_features=1, n_alphas=50,
                 alpha_min_ratio=0.01, criterion="deviance", random_state=None):
        self.l1_ratio = l1_ratio
        self.cv = cv
        self.top_k = top_k
        self.min_features = min_features
        self.n_alphas = n_alphas
        self.alpha_min_ratio = alpha_min_ratio
        self.criterion = criterion
        self.random_state = random_state

    def _coxnet(self, **kw):
        from sksurv.linear_model import CoxnetSurvivalAnalysis
        return CoxnetSurvivalAnalysis(l1_ratio=self.l1_ratio, n_alphas=self.n_alphas,
                                      alpha_min_ratio=self.alpha_min_ratio, **kw)

    def fit(self, X, y):
        from sksurv.metrics import concordance_index_censored
        if self.criterion not in ("deviance", "cindex"):
            raise ValueError(f"criterion must be 'deviance' or 'cindex'; got {self.criterion!r}")
        X = validate_data(self, X, dtype=float)
        event, time = survival_arrays(y)
        full = self._coxnet().fit(X, y)
        alphas = full.alphas_
        scores = np.full((self.cv, len(alphas)), np.nan)
        for k, (tr, va) in enumerate(survival_folds(y, self.cv, self.random_state)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "all coefficients are zero"
                    m = self._coxnet(alphas=alphas).fit(X[tr], y[tr])
            except ArithmeticError:
                continue  # leaves NaN for this fold; reported through cv_failed_folds_
            for j in range(min(len(alphas), m.coef_.shape[1])):  # a fold's path may stop early
                b = m.coef_[:, j]
                if self.criterion == "deviance":
                    scores[k, j] = (cox_partial_loglik(X @ b, event, time)
                                    - cox_partial_loglik(X[tr] @ b, event[tr], time[tr]))
                else:
                    scores[k, j] = concordance_index_censored(event[va], time[va], X[va] @ b)[0]
        self.cv_failed_folds_ = int(np.isnan(scores).all(axis=1).sum())
        if self.cv_failed_folds_ == self.cv:
            raise ArithmeticError("Coxnet failed to fit on every CV fold; check for extreme values")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns past a short path
            self.cv_scores_ = np.nanmean(scores, axis=0)
        best = int(np.flatnonzero(self.cv_scores_ >= np.nanmax(self.cv_scores_) - 1e-12)[0])
        self.alpha_ = float(alphas[best])
        self.alphas_ = alphas
        coef = full.coef_[:, best].copy()
        nz = np.abs(coef) > 0
        keep = nz.copy()
        reasons = np.where(nz, "non-zero at CV alpha", "zero at CV alpha").astype(object)
        if self.top_k is not None and nz.sum() > self.top_k:
            order = np.argsort(-np.abs(coef), kind="stable")
            keep[:] = False
            keep[order[: self.top_k]] = True
            reasons[nz & ~keep] = f"non-zero but outside top {self.top_k} |coef|"
            reasons[keep] = f"top {self.top_k} |coef|"
        if keep.sum() < self.min_features:
            entered = np.argmax(np.abs(full.coef_) > 0, axis=1).astype(float)
            entered[~(np.abs(full.coef_) > 0).any(axis=1)] = np.inf
            top = np.argsort(entered, kind="stable")[: self.min_features]
            keep[top] = True
            reasons[top] = "fallback: first to enter the path (CV alpha kept none)"
        self.coef_ = coef
        return self._finish("coefficient", coef, keep, reasons)


class StabilitySelector(_Reporting):
    """Complementary-pairs stability selection (Meinshausen & Buehlmann 2010, JRSS-B 72:417;
    Shah & Samworth 2013, JRSS-B 75:55) of a penalised path, fitted on the training rows only.

    ``n_resamples`` / 2 random splits of the rows into two halves (stratified on the outcome, or on
    the event indicator) give ``n_resamples`` subsamples of size n / 2. On each, the elastic-net
    path is computed over two decades of the penalty (``family="logistic"``: the binomial deviance's
    quadratic approximation at the null model, i.e. glmnet's first IRLS step, by coordinate descent
    with sklearn ``enet_path``; ``family="gaussian"``: the same least-squares path of a numeric
    outcome; ``family="cox"``: the scikit-survival ``CoxnetSurvivalAnalysis`` path), followed only
    until ``n_per_resample`` features have entered, and those first features are "selected" (the
    region of the path where q = ``n_per_resample`` variables are chosen, M&B section 2.4). A
    feature's selection probability is the share of subsamples that selected it;
    features with probability >= ``threshold`` are kept, at most ``max_features`` (highest
    probability first) and at least ``min_features`` (the report says when the fallback applies).
    With q variables per subsample among p, the expected number of noise features kept is at most
    q^2 / ((2 threshold - 1) p) (M&B theorem 1 under exchangeability). ``family="auto"`` picks Cox
    for a structured survival ``y``, logistic for two classes, gaussian otherwise. Expects z-scored
    input. R twin: ``stabs::stabsel`` with ``glmnet.lasso`` (``sampling.type = "SS"``, ``q``,
    ``cutoff``).

    Fitted: ``support_``, ``selection_probability_``, ``n_failed_resamples_``, ``report_``.
    """

    def __init__(self, family="auto", l1_ratio=0.5, n_resamples=50, n_per_resample=10, threshold=0.6,
                 min_features=1, max_features=None, n_lambdas=20, random_state=None):
        self.family = family
        self.l1_ratio = l1_ratio
        self.n_resamples = n_resamples
        self.n_per_resample = n_per_resample
        self.threshold = threshold
        self.min_features = min_features
        self.max_features = max_features
        self.n_lambdas = n_lambdas
        self.random_state = random_state

    def _entry_order(self, X, y, family):
        """Path position at which each feature first enters (inf = never), and |coef| there."""
        if family == "cox":
            # scikit-survival's Coxnet path over two decades below its own alpha_max (read from a
            # two-point path that stops just under it), followed only until ``n_per_resample``
            # features have entered: the path is warm-started in grid order, so its first k
            # solutions are the same numbers whether the grid stops at k or goes on
            from sksurv.linear_model import CoxnetSurvivalAnalysis
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                top = CoxnetSurvivalAnalysis(l1_ratio=self.l1_ratio, n_alphas=2,
                                             alpha_min_ratio=1 - 1e-9).fit(X, y).alphas_[0]
                grid = np.geomspace(top, top * 0.01, self.n_lambdas)
                for k in range(min(4, self.n_lambdas), self.n_lambdas + 4, 4):
                    coef = CoxnetSurvivalAnalysis(l1_ratio=self.l1_ratio, alphas=grid[:k]).fit(X, y).coef_
                    if np.count_nonzero(np.abs(coef).max(axis=1)) >= self.n_per_resample:
                        break
        else:
            # the binomial deviance's quadratic approximation at the null model (glmnet's first
            # IRLS step: constant weights p(1-p), working response proportional to y - p) is a
            # least-squares elastic net of the centred outcome, solved along the path by
            # coordinate descent; its entry order starts as the logistic score tests' order
            # (sklearn ``enet_path``, warm-started along the grid); the path is followed only until
            # ``n_per_resample`` features have entered, since later entries are never used
            from sklearn.linear_model import enet_path
            yc = y - y.mean()
            Xc = np.asfortranarray(X - X.mean(axis=0))
            alpha_max = np.abs(Xc.T @ yc).max() / (len(yc) * self.l1_ratio)
            if not alpha_max > 0:
                raise ArithmeticError("no feature is correlated with the outcome")
            grid = np.geomspace(alpha_max, alpha_max * 0.01, self.n_lambdas)
            coef = np.zeros((X.shape[1], 0))
            start = None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                for chunk in np.array_split(grid, max(1, self.n_lambdas // 4)):
                    _, c, _ = enet_path(Xc, yc, l1_ratio=self.l1_ratio, alphas=chunk, coef_init=start,
                                        check_input=False)
                    coef = np.column_stack([coef, c])
                    start = np.ascontiguousarray(c[:, -1])
                    if np.count_nonzero(np.abs(coef).max(axis=1)) >= self.n_per_resample:
                        break
        nz = np.abs(coef) > 0
        entry = np.where(nz.any(axis=1), np.argmax(nz, axis=1), np.inf)
        return entry, np.abs(coef).max(axis=1)

    def fit(self, X, y):
        X = validate_data(self, X, dtype=float)
        y = np.asarray(y)
        if len(y) < 4:
            raise ValueError(f"stability selection needs at least 4 rows; got n_samples = {len(y)}")
        family = self.family
        if family == "auto":
            family = ("cox" if y.dtype.names is not None
                      else "logistic" if len(np.unique(y)) == 2 else "gaussian")
        if family not in ("logistic", "cox", "gaussian"):
            raise ValueError(f"family must be 'auto', 'logistic', 'gaussian' or 'cox'; got {self.family!r}")
        if not 0.5 < self.threshold <= 1:
            raise ValueError(f"threshold must be in (0.5, 1]; got {self.threshold!r}")
        if family == "cox":
            strata, _ = survival_arrays(y)
            target = y
        elif family == "logistic":
            classes = np.unique(y)
            if len(classes) != 2:
                raise ValueError(f"stability selection (logistic) needs a binary outcome; got {classes}")
            strata = target = (y == classes[1]).astype(int)
        else:
            target = y.astype(float)
            strata = np.zeros(len(y), dtype=int)
        rng = np.random.default_rng(self.random_state)
        p = X.shape[1]
        q = min(self.n_per_resample, p)
        counts, done = np.zeros(p), 0
        for _ in range(max(1, self.n_resamples // 2)):
            halves = [[], []]
            for level in np.unique(strata):           # stratified random halves
                idx = rng.permutation(np.flatnonzero(strata == level))
                cut = len(idx) // 2 + (rng.random() < 0.5) * (len(idx) % 2)
                halves[0].extend(idx[:cut])
                halves[1].extend(idx[cut:])
            for h in halves:
                h = np.sort(np.asarray(h))
                if family != "cox" and np.ptp(target[h]) == 0:
                    continue
                try:
                    entry, size = self._entry_order(X[h], target[h], family)
                except (ArithmeticError, ValueError):
                    continue                          # counted in n_failed_resamples_
                order = np.lexsort((-size, entry))[:q]
                order = order[np.isfinite(entry[order])]
                counts[order] += 1
                done += 1
        self.n_failed_resamples_ = 2 * max(1, self.n_resamples // 2) - done
        if done == 0:
            raise ArithmeticError("stability selection failed on every subsample")
        prob = counts / done
        self.selection_probability_ = prob
        keep = prob >= self.threshold
        reasons = np.where(keep, f"selection probability >= {self.threshold:g}",
                           f"selection probability < {self.threshold:g}").astype(object)
        rank = np.argsort(-prob, kind="stable")
        if self.max_features is not None and keep.sum() > self.max_features:
            over = rank[self.max_features:]
            reasons[over[keep[over]]] = f"stable but outside the top {self.max_features}"
            keep[over] = False
        if keep.sum() < self.min_features:
            top = rank[: self.min_features]
            reasons[top[~keep[top]]] = f"fallback: highest selection probability (none >= {self.threshold:g})"
            keep[top] = True
        return self._finish("selection_probability", prob, keep, reasons)


def selection_report(pipeline):
    """Tidy table of every selector's decisions in a fitted Pipeline (or a GridSearchCV)."""
    pipe = getattr(pipeline, "best_estimator_", pipeline)
    parts = []
    for name, step in pipe.steps:
        rep = getattr(step, "report_", None)
        if rep is None and hasattr(step, "transformers_"):  # ColumnTransformer of pipelines
            for bname, sub, _ in step.transformers_:
                if hasattr(sub, "steps"):
                    r = selection_report(sub)
                    if len(r):
                        r = r.assign(block=bname)
                        parts.append(r)
            continue
        if rep is not None:
            parts.append(rep.assign(pipeline_step=name))
    if not parts:
        return pd.DataFrame(columns=["step", "feature", "statistic", "value", "kept", "reason"])
    return pd.concat(parts, ignore_index=True)


def selected_features(pipeline):
    """Names of the features that reach the final estimator of a fitted Pipeline."""
    pipe = getattr(pipeline, "best_estimator_", pipeline)
    return list(pipe[:-1].get_feature_names_out())


class ClinicalEncoder(TransformerMixin, BaseEstimator):
    """Turn a mixed clinical table into a numeric design matrix (scikit-learn transformer).

    Numeric columns pass through (missing values stay NaN for the imputer downstream);
    text/categorical columns are one-hot encoded against the levels seen in ``fit`` (first level
    dropped as reference; an unseen level in new data gives all-zero indicators). Only the
    training data's levels are learned, so it is safe inside cross-validation.
    """

    def __init__(self, drop: tuple[str, ...] = ()):
        self.drop = drop

    def fit(self, X: pd.DataFrame, y=None):
        X = X.drop(columns=[c for c in self.drop if c in X.columns])
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.categorical_ = {}
        for c in X.columns:
            if not pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]):
                levels = sorted(X[c].dropna().astype(str).unique())
                self.categorical_[c] = levels
        self.numeric_ = [c for c in X.columns if c not in self.categorical_]
        names = list(self.numeric_)
        for c, levels in self.categorical_.items():
            names += [f"{c}={lv}" for lv in levels[1:]]
        self.feature_names_out_ = np.asarray(names, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise KeyError(f"clinical columns missing from new data: {missing}")
        out = X[self.numeric_].apply(pd.to_numeric, errors="coerce").astype(float)
        for c, levels in self.categorical_.items():
            v = X[c].astype("string")
            for lv in levels[1:]:
                col = (v == lv).astype(float)
                col[v.isna().to_numpy()] = np.nan
                out[f"{c}={lv}"] = col
        return out[list(self.feature_names_out_)]

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_out_
