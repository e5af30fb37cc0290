"""Default hyper-parameter grids (modest, so that the whole study fits in minutes on 2 cores).

Keys use the Pipeline step name ``model__``. ``fast=True`` gives a two-point grid per learner for
tests and quick runs.
"""
from __future__ import annotations

__all__ = ["default_grid"]

_GRIDS = {
    "bagging": {"model__n_estimators": [50, 100], "model__max_samples": [0.7, 1.0]},
    "adaboost": {"model__n_estimators": [50, 100], "model__learning_rate": [0.1, 0.5]},
    # the meta-learner's penalty only: every stacking fit refits its three base learners on five
    # internal folds, so each grid point costs 18 fits (the SVM keeps C = 1)
    "stacking": {"model__final_estimator__C": [0.1, 1.0]},
    "rotation_forest": {"model__n_estimators": [10, 30], "model__max_depth": [3, None]},
    "stochastic_gb": {"model__learning_rate": [0.05, 0.1], "model__max_depth": [2, 3]},
    "rsf": {"model__min_samples_leaf": [5, 15], "model__max_features": ["sqrt", None]},
    "gbsa": {"model__learning_rate": [0.05, 0.1], "model__max_depth": [1, 2]},
    "fast_svm": {"model__alpha": [0.01, 0.1, 1.0]},
    # penalised learners: penalty on z-scored inputs, from strong to weak
    "ridge_logistic": {"model__C": [0.01, 0.03, 0.1, 0.3, 1.0]},
    "enet_logistic": {"model__C": [0.03, 0.1, 0.3, 1.0]},
    "coxnet": {"model__alphas": [[0.2], [0.1], [0.05], [0.02]]},
    "ridge_cox": {"model__alpha": [100.0, 30.0, 10.0, 3.0, 1.0]},
}

_FAST = {
    "bagging": {"model__n_estimators": [30], "model__max_samples": [0.7, 1.0]},
    "adaboost": {"model__n_estimators": [30], "model__learning_rate": [0.1, 0.5]},
    "stacking": {"model__final_estimator__C": [0.1, 1.0], "model__rf__n_estimators": [30]},
    "rotation_forest": {"model__n_estimators": [10], "model__max_depth": [3, None]},
    "stochastic_gb": {"model__n_estimators": [50], "model__learning_rate": [0.05, 0.1]},
    "rsf": {"model__n_estimators": [50], "model__min_samples_leaf": [5, 15]},
    "gbsa": {"model__n_estimators": [50], "model__learning_rate": [0.05, 0.1]},
    "fast_svm": {"model__alpha": [0.1, 1.0]},
    "ridge_logistic": {"model__C": [0.03, 0.3]},
    "enet_logistic": {"model__C": [0.1, 1.0]},
    "coxnet": {"model__alphas": [[0.1], [0.03]]},
    "ridge_cox": {"model__alpha": [30.0, 3.0]},
}


def default_grid(learner, fast=False):
    """Parameter grid (dict of lists, ``model__`` prefixed) for a learner name."""
    table = _FAST if fast else _GRIDS
    if learner not in table:
        raise ValueError(f"no default grid for learner {learner!r}; known: {sorted(table)}")
    return {k: list(v) for k, v in table[learner].items()}
