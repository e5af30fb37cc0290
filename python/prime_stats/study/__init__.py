"""The top floor: a PRIME study from its configuration to its report, and the frozen study that
scores new patients. Modules, in the order data flows through them: config, design, fit,
predictions, analyses, render, record, run; frozen and stage_cache serve run."""
from .config import ConfigError, StudyConfig
from .design import load_cohort, split_cohort
from .frozen import FrozenStudy
from .run import StudyResult, run_study

__all__ = ["ConfigError", "StudyConfig", "StudyResult", "FrozenStudy", "run_study", "load_cohort",
           "split_cohort"]
