"""The prediction table (:class:`Predictions`): one row per patient, one column per model output.
It is the only owner of the column names (``prob_<model>``, ``risk_<model>``, ``surv_<model>_<day>``)
and of the model <-> column maps; nothing else builds or parses those names."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..cohort import Cohort, CohortColumns
from ..evaluation._survcore import survival_at

PRIME_R = "PRIME-R"
PRIME_S = "PRIME-S"
SPLITS = ("train", "test", "external")          # flow order, used by every table and figure
VALIDATION_SPLITS = ("test", "external")        # the splits that received the frozen models
SPLIT_LABELS = {"train": "training (apparent)", "test": "internal test", "external": "external"}
CSV, INDEX = "predictions.csv", "predictions.json"


def slug(name: str) -> str:
    """``'early fusion'`` -> ``'early_fusion'``, ``'PRIME-R'`` -> ``'prime_r'``."""
    return name.lower().replace("-", "_").replace(" ", "_")


@dataclass
class Predictions:
    """Frozen predictions of every model for every scored patient, with the outcomes.

    ``frame`` holds id, centre, split, the outcome columns and the model outputs; ``response``
    maps each response model to its probability column, ``risk`` each survival model to its risk
    score column, ``survival`` the survival models that have S(t|x) to their columns at ``times``.
    """
    frame: pd.DataFrame
    columns: CohortColumns
    times: list[float]
    response: dict[str, str] = field(default_factory=dict)
    risk: dict[str, str] = field(default_factory=dict)
    survival: dict[str, list[str]] = field(default_factory=dict)

    # --------------------------------------------------------------------- building
    @classmethod
    def for_patients(cls, cohort: Cohort, split: pd.Series, cols: CohortColumns,
                     times: list[float]) -> "Predictions":
        """An empty table for the scored patients of ``split`` (not 'excluded'), with their
        outcomes (NaN when scoring new patients without outcomes)."""
        scored = split.index[split != "excluded"]
        c = cohort.clinical.loc[scored]
        frame = pd.DataFrame({cols.id: scored, cols.centre: c[cols.centre].to_numpy(),
                              "split": split.loc[scored].to_numpy()})
        for col in cols.outcomes:
            frame[col] = c[col].to_numpy() if col in c else np.nan
        return cls(frame, cols, [float(t) for t in times])

    def add_probability(self, model: str, p) -> None:
        col = f"prob_{slug(model)}"
        self.frame[col] = np.asarray(p, dtype=float)
        self.response[model] = col

    def add_risk(self, model: str, risk, survival=None) -> None:
        """Risk score (higher = worse) and, if given, S(t|x) at :attr:`times` (n x len(times))."""
        col = f"risk_{slug(model)}"
        self.frame[col] = np.asarray(risk, dtype=float)
        self.risk[model] = col
        if survival is not None:
            cols = [f"surv_{slug(model)}_{t:g}" for t in self.times]
            self.frame[cols] = np.asarray(survival, dtype=float)
            self.survival[model] = cols

    # ---------------------------------------------------------------------- reading
    @property
    def ids(self) -> pd.Series:
        return self.frame[self.columns.id]

    def in_split(self, split: str) -> pd.DataFrame:
        return self.frame[self.frame["split"] == split]

    def response_by_split(self):
        """``(split, rows, y, {model: probability})`` for each validation split (test, external) whose
        response has both classes."""
        for split in VALIDATION_SPLITS:
            g = self.in_split(split)
            y = g[self.columns.response].astype(int).to_numpy()
            if len(np.unique(y)) == 2:
                yield split, g, y, {m: g[c].to_numpy() for m, c in self.response.items()}

    def main_risk(self) -> str:
        """PRIME-S's risk column, else the first survival model's."""
        return self.risk.get(PRIME_S) or next(iter(self.risk.values()))

    def write(self, folder: str | Path) -> None:
        """``predictions.csv`` and ``predictions.json`` (the model <-> column maps and horizons)."""
        folder = Path(folder)
        self.frame.to_csv(folder / CSV, index=False)
        (folder / INDEX).write_text(json.dumps(
            {"times": self.times, "response": self.response, "risk": self.risk,
             "survival": self.survival}, indent=2))

    @classmethod
    def read(cls, folder: str | Path, cols: CohortColumns) -> "Predictions":
        folder = Path(folder)
        index = json.loads((folder / INDEX).read_text())
        frame = pd.read_csv(folder / CSV, dtype={cols.id: str})
        return cls(frame, cols, index["times"], index["response"], index["risk"], index["survival"])

    def __repr__(self):
        return (f"<Predictions: {len(self.frame)} patients; response models {list(self.response)}; "
                f"survival models {list(self.risk)}>")


def predict_all(models: dict, X: pd.DataFrame, cohort: Cohort, split: pd.Series, cols: CohortColumns,
                times: list[float]) -> Predictions:
    """Every model's predictions for every scored patient: PRIME-R and its per-modality base
    probabilities, PRIME-S and each modality's best base model (Cox-calibrated on training
    out-of-fold scores), the comparators (early fusion with its pipeline's S(t|x), so it is scored on
    every survival metric); ``(estimator, features)`` pairs for the baseline family."""
    pred = Predictions.for_patients(cohort, split, cols, times)
    X = X.loc[pred.ids]
    for name, m in models.get("response", {}).items():
        if isinstance(m, tuple):
            est, feats = m
            pred.add_probability(name, est.predict_proba(X[feats])[:, 1])
            continue
        pred.add_probability(name, m.predict_proba(X)[:, 1])
        if name == PRIME_R:
            for kind, p in m.base_proba(X).items():
                pred.add_probability(kind, p.to_numpy())
    for name, m in models.get("survival", {}).items():
        if isinstance(m, tuple):
            est, feats = m
            pred.add_risk(name, est.predict(X[feats]), survival_at(est.predict_survival_function(X[feats]), pred.times))
            continue
        if name == PRIME_S:
            pred.add_risk(name, m.predict(X), survival_at(m.predict_survival_function(X), pred.times))
            members = m.member_risk(X)
            for kind, learner in m.chosen_learners_.items():
                score = members[f"{kind}/{learner}"].to_numpy()
                cal = m.calibrations_[f"{kind}/{learner}"]
                pred.add_risk(kind, cal.linear_predictor(score), cal.survival(score, pred.times))
        else:   # a ModalitySurvival comparator (early fusion): its best pipeline's own S(t|x)
            pred.add_risk(name, m.predict(X), survival_at(m.predict_survival_function(X), pred.times))
    return pred
