"""The study configuration: :class:`StudyConfig`, read from YAML, every key checked and named in
its error."""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from ..cohort import CohortColumns
from ..evaluation.score import DEFAULT_TIMES


class ConfigError(ValueError):
    """Invalid study configuration; the message names the offending key."""


# ------------------------------------------------------------------------------------------ config
@dataclass
class DataConfig:
    clinical: str = ""
    manifest: str | None = None
    expression: str | None = None
    features: str | None = None  # a precomputed radiomics table (patients x features)


@dataclass
class SplitConfig:
    development: list = field(default_factory=lambda: ["A"])
    external: list = field(default_factory=lambda: ["B"])
    test_fraction: float = 0.0      # 0: develop on the whole centre (validated by nested CV); 0.3: the paper
    stratify: str = "auto"         # auto: by response when the study has it, else by event


@dataclass
class FeatureConfig:
    max_missing: float = 0.3
    exclude: list = field(default_factory=list)
    categorical: list = field(default_factory=list)   # text-coded predictors (others must be numeric)


@dataclass
class ModelConfig:
    family: str = "prime"          # "prime" (PRIME-R/PRIME-S) or "baseline" (penalised GLMs)
    recipe: str = "stable"         # feature selection: "stable" (stability selection) or "paper" (p < 0.05 screen)
    learner_choice: str = "one_se"  # per modality: "one_se" (simplest learner within 1 SE of the best CV score) or "best" (the paper)
    averaging: str = "bagged_stacking"  # PRIME-S: "bagged_stacking", "stacking", "pseudo_bma_plus", "bic_softmax"
    fast: bool = False             # smaller grids and inner CV (tests, quick looks)
    n_jobs: int = 1
    cache: bool = True             # reuse fitted models, nested CV and SHAP from <output>/cache when
    #                                data, config, code and library versions are unchanged


@dataclass
class ReproducibilityConfig:
    icc_threshold: float = 0.75
    icc_type: str = "ICC2"          # ICC2 = ICC(2,1) absolute agreement; ICC3 = ICC(3,1) consistency
    max_patients: int = 30          # training patients with a second segmentation used for the ICC
    intra: bool = True              # also a repeated (perturbed) segmentation for intra-observer ICC


@dataclass
class ExplainConfig:
    shap: bool = True
    cv: int = 5
    survshap: bool = True
    max_features: int = 12          # explained features per model (top by importance)
    frozen: bool = True             # also SHAP of the frozen PRIME-R / PRIME-S (with explain.shap)
    frozen_rows: int = 40           # explained patients per validation split for the frozen models' SHAP


@dataclass
class EvaluationConfig:
    times: list = field(default_factory=lambda: list(DEFAULT_TIMES))
    engine: str = "auto"           # "auto" (R when available), "python" or "R"
    nested_cv: bool = True         # nested CV of clinical / radiomics / early / late fusion
    bootstrap: int = 0             # Harrell bootstrap optimism of the whole pipeline (replicates; 0: none)
    # prespecified covariates of the adjusted Cox models of the PRIME-S risk group (absent ones are noted)
    adjust_for: list = field(default_factory=lambda: ["age", "ecog", "bclc", "pvtt", "ehm", "subsequent_therapy"])


@dataclass
class StudyConfig:
    """A PRIME study. Relative paths are relative to the config file's folder."""
    data: DataConfig = field(default_factory=DataConfig)
    columns: CohortColumns = field(default_factory=CohortColumns)
    split: SplitConfig = field(default_factory=SplitConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    radiomics: dict = field(default_factory=dict)
    reproducibility: ReproducibilityConfig = field(default_factory=ReproducibilityConfig)
    models: ModelConfig = field(default_factory=ModelConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    explain: ExplainConfig = field(default_factory=ExplainConfig)
    gene_sets: str | None = None
    seed: int = 2024
    output: str = "results"
    base_dir: str = "."

    # -------------------------------------------------------------- reading
    @classmethod
    def from_yaml(cls, path: str | Path) -> "StudyConfig":
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        return cls.from_dict(raw, base_dir=p.parent.resolve())

    @classmethod
    def from_dict(cls, raw: dict, base_dir: str | Path = ".") -> "StudyConfig":
        if not isinstance(raw, dict):
            raise ConfigError("config must be a mapping of keys to values")
        sections = {"data": DataConfig, "columns": CohortColumns, "split": SplitConfig,
                    "features": FeatureConfig, "reproducibility": ReproducibilityConfig,
                    "models": ModelConfig, "evaluation": EvaluationConfig, "explain": ExplainConfig}
        scalars = {"seed": int, "output": str, "radiomics": dict, "gene_sets": str}
        known = set(sections) | set(scalars)
        unknown = [k for k in raw if k not in known]
        if unknown:
            raise ConfigError(f"unknown config key {unknown[0]!r} (allowed: {', '.join(sorted(known))})")
        kwargs: dict[str, Any] = {"base_dir": str(base_dir)}
        for key, klass in sections.items():
            if key in raw:
                kwargs[key] = _section(key, klass, raw[key])
        for key, typ in scalars.items():
            if key in raw and raw[key] is None and getattr(cls, key, "") is None:   # optional: gene_sets
                continue
            if key in raw:
                raw = {**raw, key: _whole_number(raw[key]) if typ is int else raw[key]}
                if not isinstance(raw[key], typ) or isinstance(raw[key], bool):
                    raise ConfigError(f"config key {key!r} must be {typ.__name__}, got {raw[key]!r}")
                kwargs[key] = raw[key]
        cfg = cls(**kwargs)
        cfg.check()
        return cfg

    def check(self):
        if not self.data.clinical:
            raise ConfigError("config key 'data.clinical' is required (path to the clinical table)")
        if not 0 <= self.split.test_fraction < 1:
            raise ConfigError(f"config key 'split.test_fraction' must be in [0, 1) (0: develop on the whole "
                              f"development centre), got {self.split.test_fraction}")
        if self.evaluation.bootstrap < 0:
            raise ConfigError(f"config key 'evaluation.bootstrap' must be >= 0, got {self.evaluation.bootstrap}")
        if self.split.stratify not in ("auto", "response", "event", "none"):
            raise ConfigError("config key 'split.stratify' must be auto, response, event or none")
        if self.split.stratify == "response" and not self.columns.has_response:
            raise ConfigError("config key 'split.stratify' is 'response' but columns.response is null")
        if self.split.stratify == "event" and not self.columns.has_survival:
            raise ConfigError("config key 'split.stratify' is 'event' but columns.event is null")
        if not 0 < self.features.max_missing <= 1:
            raise ConfigError("config key 'features.max_missing' must be in (0, 1]")
        if self.models.family not in ("prime", "baseline"):
            raise ConfigError("config key 'models.family' must be 'prime' or 'baseline'")
        if self.models.recipe not in ("stable", "paper"):
            raise ConfigError("config key 'models.recipe' must be 'stable' or 'paper'")
        if self.models.learner_choice not in ("one_se", "best"):
            raise ConfigError("config key 'models.learner_choice' must be 'one_se' or 'best'")
        if self.models.averaging not in ("bagged_stacking", "stacking", "pseudo_bma_plus", "bic_softmax"):
            raise ConfigError("config key 'models.averaging' must be bagged_stacking, stacking, pseudo_bma_plus "
                              "or bic_softmax")
        if self.explain.frozen_rows < 1:
            raise ConfigError(f"config key 'explain.frozen_rows' must be >= 1, got {self.explain.frozen_rows}")
        if self.evaluation.engine not in ("auto", "python", "R"):
            raise ConfigError("config key 'evaluation.engine' must be auto, python or R")
        if any((not isinstance(t, (int, float))) or t <= 0 for t in self.evaluation.times):
            raise ConfigError("config key 'evaluation.times' must be positive numbers of days")
        overlap = set(map(str, self.split.development)) & set(map(str, self.split.external))
        if overlap:
            raise ConfigError(f"config key 'split.external': centre(s) {sorted(overlap)} also in split.development")
        if self.reproducibility.icc_type not in ("ICC2", "ICC3"):
            raise ConfigError("config key 'reproducibility.icc_type' must be ICC2 or ICC3")
        if self.radiomics:
            from ..imaging import RadiomicsSettings
            try:
                RadiomicsSettings.from_dict(self.radiomics)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"config key 'radiomics': {exc}") from exc
        for key in ("clinical", "manifest", "expression", "features"):
            value = getattr(self.data, key)
            if value and not self.path(value).exists():
                raise ConfigError(f"config key 'data.{key}': file not found: {self.path(value)}")
        if self.gene_sets and not self.path(self.gene_sets).exists():
            raise ConfigError(f"config key 'gene_sets': file not found: {self.path(self.gene_sets)}")

    def path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else Path(self.base_dir) / q

    @property
    def times(self) -> list[float]:
        """The evaluation horizons in days, as floats."""
        return [float(t) for t in self.evaluation.times]

    @property
    def output_dir(self) -> Path:
        return self.path(self.output)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("base_dir")
        return d


RENAMED = {("models", "engine"): "family"}   # old key -> new key, accepted with a deprecation warning


def _section(name: str, klass, raw):
    if raw is None:
        return klass()
    if not isinstance(raw, dict):
        raise ConfigError(f"config key {name!r} must be a mapping, got {raw!r}")
    for (sec, old), new in RENAMED.items():
        if sec == name and old in raw:
            if new in raw:
                raise ConfigError(f"config keys '{sec}.{old}' and '{sec}.{new}' both given; "
                                  f"'{sec}.{old}' is the old name of '{sec}.{new}'")
            warnings.warn(f"config key '{sec}.{old}' is deprecated; use '{sec}.{new}'",
                          FutureWarning, stacklevel=4)
            raw = {(new if k == old else k): v for k, v in raw.items()}
    allowed = {f.name: f for f in fields(klass)}
    for k, v in raw.items():
        if k not in allowed:
            raise ConfigError(f"unknown config key '{name}.{k}' (allowed: {', '.join(allowed)})")
        default = getattr(klass(), k)
        if isinstance(default, int) and not isinstance(default, bool):
            v = _whole_number(v)
            raw = {**raw, k: v}
        if default is not None and v is not None:
            ok = (isinstance(v, (int, float)) and not isinstance(v, bool)) if isinstance(default, float) \
                else isinstance(v, type(default))
            if isinstance(default, list) and isinstance(v, (str, int)):
                raw = {**raw, k: [v]}
                ok = True
            if not ok:
                raise ConfigError(f"config key '{name}.{k}' must be {type(default).__name__}, got {v!r}")
    try:
        return klass(**raw)
    except ValueError as exc:     # e.g. CohortColumns' own consistency checks
        raise ConfigError(f"config key {name!r}: {exc}") from exc


def _whole_number(v):
    """7.0 -> 7 (R and YAML give whole numbers as doubles); anything else unchanged."""
    return int(v) if isinstance(v, float) and v.is_integer() else v
