"""PRIME-R / PRIME-S learners, default grids and model selection (the paper's learners plus penalised GLMs)."""
from .grids import default_grid
from .response import (PAPER_RESPONSE_LEARNERS, RECIPES, RESPONSE_LEARNERS, make_response_learner,
                       make_response_pipeline)
from .rotation_forest import RotationForestClassifier
from .selection import (ModalityClassifier, ModalitySurvival, TuneResult, check_columns,
                        feature_table, repeated_oof, tune, tune_learners)
from .survival import (PAPER_SURVIVAL_LEARNERS, SURVIVAL_LEARNERS, CoxCalibratedSurvivalSVM, cindex_scorer,
                       make_survival_learner, make_survival_pipeline)

__all__ = [
    "default_grid", "RESPONSE_LEARNERS", "PAPER_RESPONSE_LEARNERS", "PAPER_SURVIVAL_LEARNERS", "RECIPES",
    "repeated_oof", "make_response_learner", "make_response_pipeline",
    "RotationForestClassifier", "ModalityClassifier", "ModalitySurvival", "check_columns",
    "feature_table", "tune", "tune_learners", "TuneResult", "SURVIVAL_LEARNERS", "CoxCalibratedSurvivalSVM", "cindex_scorer",
    "make_survival_learner", "make_survival_pipeline",
]
