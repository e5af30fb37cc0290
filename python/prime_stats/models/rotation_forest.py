"""Rotation Forest (Rodriguez, Kuncheva & Alonso 2006, IEEE TPAMI 28:1619-1630).

For each tree: split the features at random into disjoint subsets of (about) ``n_features_per_subset``
features; for each subset draw a random non-empty subset of the classes, take a bootstrap sample of
``sample_fraction`` (75 %) of the training rows of those classes, and run PCA on that sample keeping
every component; arrange the loadings in a block-diagonal rotation matrix (rows/columns in the original
feature order) and fit a decision tree on the rotated full training set ``(X - centre) @ R``.
Class probabilities are the average of the trees' probabilities.
"""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.tree import DecisionTreeClassifier
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["RotationForestClassifier"]


class RotationForestClassifier(ClassifierMixin, BaseEstimator):
    """Rotation Forest classifier with decision-tree base learners.

    Parameters
    ----------
    n_estimators : number of rotated trees (paper default 10).
    n_features_per_subset : M, features per disjoint subset (paper: 3).
    sample_fraction : fraction of the selected classes' rows bootstrapped for each PCA (paper: 0.75).
    max_depth, min_samples_leaf, max_features : passed to each DecisionTreeClassifier.
    random_state : seed for subsets, class subsets, bootstraps and trees.
    """

    def __init__(self, n_estimators=10, n_features_per_subset=3, sample_fraction=0.75,
                 max_depth=None, min_samples_leaf=1, max_features=None, random_state=None):
        self.n_estimators = n_estimators
        self.n_features_per_subset = n_features_per_subset
        self.sample_fraction = sample_fraction
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.random_state = random_state

    def _rotation(self, X, y_idx, rng):
        """One rotation: returns (subsets, centre, R) with R block-diagonal and orthogonal."""
        n, p = X.shape
        perm = rng.permutation(p)
        n_sub = max(1, int(np.ceil(p / self.n_features_per_subset)))
        subsets = [s for s in np.array_split(perm, n_sub) if len(s)]
        R = np.zeros((p, p))
        centre = np.zeros(p)
        n_classes = len(self.classes_)
        for s in subsets:
            k = rng.randint(1, n_classes + 1)
            cls = rng.choice(n_classes, size=k, replace=False)
            rows = np.flatnonzero(np.isin(y_idx, cls))
            m = max(2, int(round(self.sample_fraction * len(rows))))
            boot = rng.choice(rows, size=m, replace=True)
            Z = X[np.ix_(boot, s)]
            mu = Z.mean(axis=0)
            # principal axes = eigenvectors of the scatter matrix, all kept (a full orthonormal
            # basis even when m < |s|), ordered by decreasing variance
            evals, evecs = np.linalg.eigh((Z - mu).T @ (Z - mu))
            R[np.ix_(s, s)] = evecs[:, ::-1]
            centre[s] = mu
        return subsets, centre, R

    def fit(self, X, y):
        X, y = validate_data(self, X, y, dtype=float)
        check_classification_targets(y)
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        rng = check_random_state(self.random_state)
        tree = DecisionTreeClassifier(max_depth=self.max_depth, min_samples_leaf=self.min_samples_leaf,
                                      max_features=self.max_features)
        self.subsets_, self.centres_, self.rotations_, self.estimators_ = [], [], [], []
        for _ in range(self.n_estimators):
            subsets, centre, R = self._rotation(X, y_idx, rng)
            t = clone(tree).set_params(random_state=rng.randint(np.iinfo(np.int32).max))
            t.fit((X - centre) @ R, y_idx)
            self.subsets_.append(subsets)
            self.centres_.append(centre)
            self.rotations_.append(R)
            self.estimators_.append(t)
        return self

    def predict_proba(self, X):
        check_is_fitted(self, "estimators_")
        X = validate_data(self, X, dtype=float, reset=False)
        proba = np.zeros((X.shape[0], len(self.classes_)))
        for t, c, R in zip(self.estimators_, self.centres_, self.rotations_):
            pt = t.predict_proba((X - c) @ R)
            proba[:, t.classes_] += pt
        return proba / len(self.estimators_)

    def predict(self, X):
        check_is_fitted(self, "estimators_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    @property
    def feature_importances_(self):
        """Impurity importances of the trees mapped back to the original features through |R|
        (each rotated axis' importance shared in proportion to its squared loadings)."""
        check_is_fitted(self, "estimators_")
        imp = np.zeros(self.n_features_in_)
        for t, R in zip(self.estimators_, self.rotations_):
            imp += (R ** 2) @ t.feature_importances_
        s = imp.sum()
        return imp / s if s > 0 else imp
