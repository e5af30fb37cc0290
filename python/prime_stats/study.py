"""StudyConfig (YAML) and the orchestration of one PRIME study.

Data flow: inputs -> features -> models -> predictions -> statistics -> report. The development
centre is split once (7:3, stratified by response) into training and internal test; every learned
step is fitted on the training split only, and the internal test and external centres receive the
frozen models.
"""
from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.model_selection import train_test_split

from . import __version__
from . import clinical as clin
from .cohort import Cohort, CohortColumns


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
    test_fraction: float = 0.3
    stratify: str = "response"


@dataclass
class FeatureConfig:
    max_missing: float = 0.3
    exclude: list = field(default_factory=list)


@dataclass
class ModelConfig:
    engine: str = "baseline"       # "prime" (PRIME-R/PRIME-S) or "baseline" (penalised GLMs)
    fast: bool = False             # smaller grids and inner CV (tests, quick looks)
    n_jobs: int = 1


@dataclass
class EvaluationConfig:
    times: list = field(default_factory=lambda: [182.625, 365.25, 730.5, 1095.75])
    engine: str = "auto"           # "auto" (R when available), "python" or "R"
    bootstrap: int = 200


@dataclass
class StudyConfig:
    """A PRIME study. Relative paths are relative to the config file's folder."""
    data: DataConfig = field(default_factory=DataConfig)
    columns: CohortColumns = field(default_factory=CohortColumns)
    split: SplitConfig = field(default_factory=SplitConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    radiomics: dict = field(default_factory=dict)
    models: ModelConfig = field(default_factory=ModelConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
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
                    "features": FeatureConfig, "models": ModelConfig, "evaluation": EvaluationConfig}
        scalars = {"seed": int, "output": str, "radiomics": dict}
        known = set(sections) | set(scalars)
        unknown = [k for k in raw if k not in known]
        if unknown:
            raise ConfigError(f"unknown config key {unknown[0]!r} (allowed: {', '.join(sorted(known))})")
        kwargs: dict[str, Any] = {"base_dir": str(base_dir)}
        for key, klass in sections.items():
            if key in raw:
                kwargs[key] = _section(key, klass, raw[key])
        for key, typ in scalars.items():
            if key in raw:
                if not isinstance(raw[key], typ) or isinstance(raw[key], bool):
                    raise ConfigError(f"config key {key!r} must be {typ.__name__}, got {raw[key]!r}")
                kwargs[key] = raw[key]
        cfg = cls(**kwargs)
        cfg.check()
        return cfg

    def check(self):
        if not self.data.clinical:
            raise ConfigError("config key 'data.clinical' is required (path to the clinical table)")
        if not 0 < self.split.test_fraction < 1:
            raise ConfigError(f"config key 'split.test_fraction' must be in (0, 1), got {self.split.test_fraction}")
        if self.split.stratify not in ("response", "event", "none"):
            raise ConfigError("config key 'split.stratify' must be response, event or none")
        if not 0 < self.features.max_missing <= 1:
            raise ConfigError("config key 'features.max_missing' must be in (0, 1]")
        if self.models.engine not in ("prime", "baseline"):
            raise ConfigError("config key 'models.engine' must be 'prime' or 'baseline'")
        if self.evaluation.engine not in ("auto", "python", "R"):
            raise ConfigError("config key 'evaluation.engine' must be auto, python or R")
        if any((not isinstance(t, (int, float))) or t <= 0 for t in self.evaluation.times):
            raise ConfigError("config key 'evaluation.times' must be positive numbers of days")
        overlap = set(map(str, self.split.development)) & set(map(str, self.split.external))
        if overlap:
            raise ConfigError(f"config key 'split.external': centre(s) {sorted(overlap)} also in split.development")
        for key in ("clinical", "manifest", "expression", "features"):
            value = getattr(self.data, key)
            if value and not self.path(value).exists():
                raise ConfigError(f"config key 'data.{key}': file not found: {self.path(value)}")

    def path(self, p: str) -> Path:
        q = Path(p)
        return q if q.is_absolute() else Path(self.base_dir) / q

    @property
    def output_dir(self) -> Path:
        return self.path(self.output)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("base_dir")
        return d


def _section(name: str, klass, raw):
    if raw is None:
        return klass()
    if not isinstance(raw, dict):
        raise ConfigError(f"config key {name!r} must be a mapping, got {raw!r}")
    allowed = {f.name: f for f in fields(klass)}
    for k, v in raw.items():
        if k not in allowed:
            raise ConfigError(f"unknown config key '{name}.{k}' (allowed: {', '.join(allowed)})")
        default = getattr(klass(), k)
        if default is not None and v is not None:
            ok = (isinstance(v, (int, float)) and not isinstance(v, bool)) if isinstance(default, float) \
                else isinstance(v, type(default))
            if isinstance(default, list) and isinstance(v, (str, int)):
                raw = {**raw, k: [v]}
                ok = True
            if not ok:
                raise ConfigError(f"config key '{name}.{k}' must be {type(default).__name__}, got {v!r}")
    return klass(**raw)


# ------------------------------------------------------------------------------------------- split
def split_cohort(cohort: Cohort, cfg: StudyConfig) -> pd.Series:
    """Assign every patient to 'train', 'test' (internal) or 'external'; others are 'excluded'."""
    cols = cfg.columns
    centre = cohort.centre.astype(str)
    dev = centre.isin([str(c) for c in cfg.split.development])
    ext = centre.isin([str(c) for c in cfg.split.external])
    if dev.sum() < 20:
        raise ConfigError(f"split.development {cfg.split.development}: only {int(dev.sum())} patients "
                          f"(centres present: {sorted(centre.unique())})")
    split = pd.Series("excluded", index=cohort.ids, name="split")
    dev_ids = cohort.ids[dev.to_numpy()]
    strat = None
    if cfg.split.stratify == "response":
        strat = cohort.clinical.loc[dev_ids, cols.response]
    elif cfg.split.stratify == "event":
        strat = cohort.clinical.loc[dev_ids, cols.event]
    train, test = train_test_split(dev_ids, test_size=cfg.split.test_fraction,
                                   random_state=cfg.seed, stratify=strat)
    split[train] = "train"
    split[test] = "test"
    split[ext.to_numpy()] = "external"
    return split


# ---------------------------------------------------------------------------------------- features
def clinical_features(cohort: Cohort, cfg: StudyConfig) -> pd.DataFrame:
    """Candidate clinical predictors with the derived indices (ALBI, PNI, Child-Pugh, NLR, MLR,
    one-month relative changes). Raw post-treatment labs are replaced by their relative change;
    the subsequent-therapy flag is post-baseline and is kept out of the predictors."""
    x = clin.add_clinical_indices(cohort.predictors())
    post = [c for c in x.columns if c.endswith("_1m")]
    drop = post + [c for c in cfg.features.exclude if c in x.columns]
    unknown = [c for c in cfg.features.exclude if c not in x.columns]
    if unknown:
        raise ConfigError(f"config key 'features.exclude': unknown column(s) {unknown}")
    x = x.drop(columns=drop)
    # the class labels duplicate their scores
    return x.drop(columns=[c for c in ("albi_grade", "child_pugh_class") if c in x.columns])


def load_radiomics(cfg: StudyConfig, cohort: Cohort, progress: bool = True) -> pd.DataFrame | None:
    """Radiomics features: a precomputed table, or extraction from the manifest (cached)."""
    if cfg.data.features:
        from .cohort import read_table
        feats = read_table(cfg.path(cfg.data.features))
        idc = cfg.columns.id
        feats = feats.set_index(idc) if idc in feats.columns else feats
        feats.index = feats.index.astype(str)
        return feats
    if cohort.manifest is None:
        return None
    from .imaging import extract_manifest

    out = cfg.output_dir / "features"
    res = extract_manifest(cohort.manifest, out / "radiomics.parquet", settings=cfg.radiomics or None,
                           workers=cfg.models.n_jobs, cache_dir=out / "cache", progress=progress)
    return res.features


# ---------------------------------------------------------------------------------------- baseline
def _baseline_models(x_train: pd.DataFrame, y_resp, y_surv, cfg: StudyConfig):
    """Penalised logistic and penalised Cox on clinical features (the comparator models)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    keep = x_train.columns[x_train.isna().mean() <= cfg.features.max_missing]

    def prep():
        return make_pipeline(clin.ClinicalEncoder(), SimpleImputer(strategy="median"), StandardScaler())

    resp = make_pipeline(prep(), LogisticRegressionCV(Cs=10, cv=5, scoring="roc_auc", max_iter=5000,
                                                      l1_ratios=(0.0,), use_legacy_attributes=False))
    surv = make_pipeline(prep(), CoxPHSurvivalAnalysis(alpha=10.0, ties="efron"))
    resp.fit(x_train[keep], y_resp)
    surv.fit(x_train[keep], y_surv)
    return {"response": resp, "survival": surv, "features": list(keep)}


# -------------------------------------------------------------------------------------------- run
@dataclass
class StudyResult:
    """What a study run produced: where, and the main tables."""
    output_dir: Path
    predictions: pd.DataFrame
    metrics: pd.DataFrame
    models: dict
    split: pd.Series
    cohort: Cohort
    config: StudyConfig
    artefacts: dict = field(default_factory=dict)

    def __repr__(self):
        m = self.metrics
        return f"<StudyResult {self.output_dir}: {len(self.predictions)} predictions, {len(m)} metrics>"


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_cohort(cfg: StudyConfig) -> Cohort:
    d = cfg.data
    return Cohort.from_files(cfg.path(d.clinical), cfg.path(d.manifest) if d.manifest else None,
                             cfg.path(d.expression) if d.expression else None, columns=cfg.columns)


def run_study(config: StudyConfig | str | Path, progress: bool = True) -> StudyResult:
    """Run one PRIME study end to end and write its outputs to ``config.output``."""
    cfg = config if isinstance(config, StudyConfig) else StudyConfig.from_yaml(config)
    t0 = time.time()
    log = _Progress(progress)
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    cohort = load_cohort(cfg)
    log(f"loaded {cohort!r}")
    split = split_cohort(cohort, cfg)
    cols = cfg.columns
    x = clinical_features(cohort, cfg)
    train = split.index[split == "train"]
    y_resp = cohort.response.loc[train].astype(int).to_numpy()
    y_surv = cohort.survival(train)
    log(f"split: {split.value_counts().to_dict()}")

    models = _baseline_models(x.loc[train], y_resp, y_surv, cfg)
    log("fitted baseline clinical models (penalised logistic, penalised Cox)")
    keep = models["features"]
    scored = split.index[split != "excluded"]
    pred = pd.DataFrame({
        cols.id: scored, cols.centre: cohort.centre.loc[scored].to_numpy(),
        "split": split.loc[scored].to_numpy(),
        cols.response: cohort.response.loc[scored].to_numpy(),
        cols.time: cohort.clinical.loc[scored, cols.time].to_numpy(),
        cols.event: cohort.clinical.loc[scored, cols.event].to_numpy(),
        "model": "clinical_baseline",
        "prob_response": models["response"].predict_proba(x.loc[scored, keep])[:, 1],
        "risk_score": models["survival"].predict(x.loc[scored, keep]),
    })
    metrics = basic_metrics(pred, cols)
    pred.to_csv(out / "predictions.csv", index=False)
    metrics.to_csv(out / "metrics.csv", index=False)
    split.to_frame().to_csv(out / "split.csv")
    _write_provenance(cfg, out, time.time() - t0)
    log(f"wrote predictions.csv, metrics.csv and provenance.json to {out}")
    return StudyResult(out, pred, metrics, models, split, cohort, cfg)


def basic_metrics(pred: pd.DataFrame, cols: CohortColumns) -> pd.DataFrame:
    """AUC (response) and Harrell's C (survival) per model and split."""
    from sklearn.metrics import roc_auc_score
    from sksurv.metrics import concordance_index_censored

    rows = []
    for (model, split), g in pred.groupby(["model", "split"], sort=False):
        y = g[cols.response].astype(int)
        auc = roc_auc_score(y, g["prob_response"]) if y.nunique() == 2 else np.nan
        c = concordance_index_censored(g[cols.event].astype(bool).to_numpy(),
                                       g[cols.time].to_numpy(float), g["risk_score"].to_numpy())[0]
        rows += [{"endpoint": "response", "model": model, "split": split, "metric": "AUC",
                  "estimate": auc, "n": len(g), "method": "empirical (Mann-Whitney)", "engine": "python"},
                 {"endpoint": "survival", "model": model, "split": split, "metric": "C-index (Harrell)",
                  "estimate": c, "n": len(g), "method": "Harrell", "engine": "python"}]
    return pd.DataFrame(rows)


def _write_provenance(cfg: StudyConfig, out: Path, seconds: float):
    import importlib.metadata as md

    from . import rbridge

    versions = {}
    for pkg in ("numpy", "pandas", "scipy", "scikit-learn", "scikit-survival", "lifelines",
                "statsmodels", "pyradiomics-bhklab", "shap", "gseapy", "SimpleITK", "rpy2"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    hashes = {k: file_hash(cfg.path(v)) for k, v in asdict(cfg.data).items() if v}
    prov = {"prime_stats": __version__, "python": platform.python_version(),
            "platform": platform.platform(), "packages": versions, "R": rbridge.r_version(),
            "seed": cfg.seed, "data_sha256": hashes, "seconds": round(seconds, 1),
            "config": cfg.to_dict()}
    (out / "provenance.json").write_text(json.dumps(prov, indent=2, default=str))
    (out / "config.resolved.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


class _Progress:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.time()

    def __call__(self, msg: str):
        if self.enabled:
            import sys
            print(f"[prime-stats {time.time() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)
