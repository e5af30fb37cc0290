"""A fitted study, frozen: score new patients and validate on any number of external cohorts.

``FrozenStudy.load(study_dir)`` reads the models and the fitted clinical encoder that
``run_study`` saved with skops, and the feature specification (which clinical and radiomics
columns the models use, radiomics settings). Nothing is refitted: new cohorts only ever receive
the frozen models (radiomics are extracted with the saved settings; the ICC-kept columns are used).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..cohort import Cohort, CohortColumns, CohortError
from ..persist import load_skops
from . import analyses
from .design import clinical_features
from .fit import read_models
from .predictions import predict_all


@dataclass
class FrozenStudy:
    """The frozen PRIME models of one study and how to build their inputs."""
    directory: Path
    spec: dict
    models: dict
    encoder: object

    @classmethod
    def load(cls, study_dir: str | Path) -> "FrozenStudy":
        d = Path(study_dir)
        spec_path = d / "models" / "study_spec.json"
        if not spec_path.is_file():
            raise CohortError(f"{d} is not a fitted study folder (no models/study_spec.json); "
                              "run 'prime-stats run CONFIG' first")
        spec = json.loads(spec_path.read_text())
        models = read_models(d / "models")
        encoder = load_skops(d / "models" / "clinical_encoder.skops")
        return cls(d, spec, models, encoder)

    @property
    def columns(self) -> CohortColumns:
        return CohortColumns(**self.spec["config"]["columns"])

    def features(self, cohort: Cohort, out: str | Path | None = None, workers: int = 1,
                 progress: bool = False) -> pd.DataFrame:
        """The design matrix of ``cohort`` built exactly as for the training data."""
        feats = self.spec["config"]["features"]
        raw = clinical_features(cohort, feats["exclude"], feats.get("categorical", ()))
        x = self.encoder.transform(raw)
        rad_cols = self.spec["radiomics_features"]
        if rad_cols:
            if cohort.manifest is None:
                raise CohortError("the frozen study uses radiomics features; give an image manifest")
            from ..imaging import extract_manifest

            out = Path(out or self.directory / "scored")
            res = extract_manifest(cohort.manifest.drop(columns=["mask_observer2"], errors="ignore"),
                                   out / "radiomics.parquet", settings=self.spec["radiomics_settings"] or None,
                                   workers=workers, cache_dir=out / "cache", progress=progress)
            if res.excluded:
                import warnings
                warnings.warn(f"radiomics failed for {res.excluded[:10]}; their values are imputed "
                              "by the frozen pipelines", stacklevel=2)
            missing = [c for c in rad_cols if c not in res.features.columns]
            if missing:
                raise CohortError(f"radiomics extraction lacks {len(missing)} feature(s) the models use, "
                                  f"e.g. {missing[:3]}")
            x = pd.concat([x, res.features.reindex(x.index)[rad_cols]], axis=1)
        return x

    def predict(self, cohort: Cohort, name: str = "new", **kwargs) -> pd.DataFrame:
        """Frozen predictions for every patient of ``cohort`` (split label ``name``)."""
        return self.predictions(cohort, name, **kwargs).frame

    def predictions(self, cohort: Cohort, name: str = "new", **kwargs):
        """:meth:`predict` as a :class:`~prime_stats.study.predictions.Predictions` (with the
        model <-> column maps)."""
        X = self.features(cohort, **kwargs)
        split = pd.Series(name, index=cohort.ids, name="split")
        return predict_all(self.models, X, cohort, split, self.columns, list(self.spec["times"]))

    def validate(self, cohorts: dict[str, Cohort] | Cohort, engine: str = "auto", **kwargs) -> pd.DataFrame:
        """Apply the frozen models to one or several external cohorts, each validated separately
        (tidy metrics with a ``split`` column naming the cohort)."""
        if isinstance(cohorts, Cohort):
            cohorts = {"external": cohorts}
        frames = []
        for name, cohort in cohorts.items():
            pred = self.predictions(cohort, name="external", **kwargs)
            m = pd.concat([analyses.response_metrics(pred, engine), analyses.survival_metrics(pred, engine)],
                          ignore_index=True)
            frames.append(m.assign(split=name))
        return pd.concat(frames, ignore_index=True)
