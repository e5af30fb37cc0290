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

from . import __version__, persist
from . import clinical as clin
from .cohort import Cohort, CohortColumns
from .stage_cache import Codec, StageCache


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
    engine: str = "prime"          # "prime" (PRIME-R/PRIME-S) or "baseline" (penalised GLMs)
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


@dataclass
class EvaluationConfig:
    times: list = field(default_factory=lambda: [182.625, 365.25, 730.5, 1095.75])
    engine: str = "auto"           # "auto" (R when available), "python" or "R"
    nested_cv: bool = True         # nested CV of clinical / radiomics / early / late fusion


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
        if self.reproducibility.icc_type not in ("ICC2", "ICC3"):
            raise ConfigError("config key 'reproducibility.icc_type' must be ICC2 or ICC3")
        if self.radiomics:
            from .imaging import RadiomicsSettings
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
def clinical_features(cohort: Cohort, exclude=()) -> pd.DataFrame:
    """Candidate clinical predictors with the derived indices (ALBI, PNI, Child-Pugh, NLR, MLR,
    one-month relative changes). Raw post-treatment labs are replaced by their relative change;
    the subsequent-therapy flag is post-baseline and is kept out of the predictors."""
    x = clin.add_clinical_indices(cohort.predictors())
    post = [c for c in x.columns if c.endswith("_1m")]
    drop = post + [c for c in exclude if c in x.columns]
    unknown = [c for c in exclude if c not in x.columns]
    if unknown:
        raise ConfigError(f"config key 'features.exclude': unknown column(s) {unknown}")
    x = x.drop(columns=drop)
    # the class labels duplicate their scores
    return x.drop(columns=[c for c in ("albi_grade", "child_pugh_class") if c in x.columns])

@dataclass
class FeatureSet:
    """The design matrix of every scored patient and what built it."""
    X: pd.DataFrame                      # numeric, index patient_id
    clinical: list                       # clinical predictor columns (after encoding/exclusion)
    radiomics: list                      # radiomics columns kept by the ICC filter
    excluded_missing: list               # dropped: > max_missing missing in training
    train_missing: pd.Series             # missing share per raw clinical variable in training
    icc: Any = None                      # ICCFilterResult or None
    extraction_log: pd.DataFrame | None = None
    radiomics_excluded: list = field(default_factory=list)
    encoder: Any = None                  # the ClinicalEncoder fitted on training


def _icc_patients(cohort: Cohort, split: pd.Series, cfg: StudyConfig) -> list:
    man = cohort.manifest
    has2 = man.loc[man.get("mask_observer2", pd.Series(index=man.index, dtype=object)).notna(), "patient_id"]
    train = [p for p in split.index[split == "train"] if p in set(has2)]
    rng = np.random.default_rng(cfg.seed)
    n = min(cfg.reproducibility.max_patients, len(train))
    return sorted(rng.choice(train, size=n, replace=False).tolist()) if n else []


def radiomics_features(cohort: Cohort, split: pd.Series, cfg: StudyConfig, log) -> tuple:
    """Extract (cached) AP/PVP radiomics for every patient and keep the features whose inter-
    (and intra-) observer ICC > threshold, the ICC computed on training patients only."""
    from .imaging import extract_manifest, icc_filter

    out = cfg.output_dir / "features"
    settings = dict(cfg.radiomics)
    cache = out / "cache"
    icc_ids = _icc_patients(cohort, split, cfg)
    man = cohort.manifest.copy()
    if "mask_observer2" in man:
        man.loc[~man["patient_id"].isin(icc_ids), "mask_observer2"] = None
    log(f"radiomics: extracting {len(man)} images ({man['mask_observer2'].notna().sum() if 'mask_observer2' in man else 0} "
        f"second-observer masks for the ICC) with {cfg.models.n_jobs} worker(s)")
    res = extract_manifest(man, out / "radiomics.parquet", settings=settings, workers=cfg.models.n_jobs,
                           cache_dir=cache, progress=log.enabled)
    feats, obs2 = res.features, res.features_observer2
    failed = res.excluded
    if failed:
        log(f"radiomics: {len(failed)} patient(s) failed extraction and get imputed values: {failed[:10]}")
    icc = None
    if obs2 is not None and len(icc_ids) >= 5:
        repeat = None
        if cfg.reproducibility.intra:
            rep_man = man[man["patient_id"].isin(icc_ids)].drop(columns=["mask_observer2"], errors="ignore")
            rep_settings = {**settings, "perturbation": {"method": "contour", "radius_mm": 1.0,
                                                         "seed": cfg.seed, "targets": ["repeat"]}}
            rep = extract_manifest(rep_man, out / "radiomics_repeat.parquet", settings=rep_settings,
                                   workers=cfg.models.n_jobs, cache_dir=cache, progress=log.enabled)
            repeat = rep.features_repeat
        ids = [i for i in icc_ids if i in feats.index and i in obs2.index]
        icc = icc_filter(feats.loc[ids], obs2.loc[ids], threshold=cfg.reproducibility.icc_threshold,
                         icc_type=cfg.reproducibility.icc_type,
                         features_repeat=None if repeat is None else repeat.loc[[i for i in ids if i in repeat.index]])
        kept = icc.kept
        log(f"radiomics: {len(kept)} of {feats.shape[1]} features have ICC > "
            f"{cfg.reproducibility.icc_threshold} on {len(ids)} training patients")
    else:
        kept = list(feats.columns)
        log("radiomics: no second segmentations; ICC filter not applied")
    return feats[kept], icc, res.log, failed


def build_features(cohort: Cohort, split: pd.Series, cfg: StudyConfig, log) -> FeatureSet:
    scored = split.index[split != "excluded"]
    train = split.index[split == "train"]
    raw = clinical_features(cohort, cfg.features.exclude)
    train_missing = raw.loc[train].isna().mean()
    excluded = sorted(train_missing.index[train_missing > cfg.features.max_missing])
    if excluded:
        log(f"features: dropped {excluded} (> {cfg.features.max_missing:.0%} missing in training)")
    enc = clin.ClinicalEncoder(drop=tuple(excluded)).fit(raw.loc[train])
    x_clin = enc.transform(raw.loc[scored])
    X, rad_cols, icc, ext_log, failed = x_clin, [], None, None, []
    if cfg.data.features:
        from .cohort import read_table
        feats = read_table(cfg.path(cfg.data.features))
        feats = feats.set_index(cfg.columns.id) if cfg.columns.id in feats.columns else feats
        feats.index = feats.index.astype(str)
        missing_ids = [i for i in scored if i not in feats.index]
        if missing_ids:
            log(f"radiomics table lacks {len(missing_ids)} patient(s); their values are imputed: {missing_ids[:10]}")
        rad = feats.reindex(scored)
    elif cohort.manifest is not None:
        rad, icc, ext_log, failed = radiomics_features(cohort, split, cfg, log)
        rad = rad.reindex(scored)
    else:
        rad = None
    if rad is not None:
        rad = rad.apply(pd.to_numeric, errors="coerce")
        rmiss = rad.loc[train].isna().mean()
        drop = list(rmiss.index[rmiss > cfg.features.max_missing])
        rad = rad.drop(columns=drop)
        rad_cols = list(rad.columns)
        X = pd.concat([x_clin, rad], axis=1)
    return FeatureSet(X, list(x_clin.columns), rad_cols, excluded, train_missing, icc, ext_log, failed, enc)


# ------------------------------------------------------------------------------------------ models
def _times(cfg: StudyConfig) -> list[float]:
    return [float(t) for t in cfg.evaluation.times]


def _surv_cols(model: str, times: list[float]) -> list[str]:
    return [f"surv_{model}_{t:g}" for t in times]


def fit_baseline(fs: FeatureSet, y_resp, y_surv, cfg: StudyConfig) -> dict:
    """Penalised logistic and penalised Cox on the clinical features (comparator engine)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    Xtr = fs.X.loc[y_resp.index, fs.clinical]
    resp = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                         LogisticRegressionCV(Cs=10, cv=5, scoring="roc_auc", max_iter=5000,
                                              l1_ratios=(0.0,), use_legacy_attributes=False))
    survm = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                          CoxPHSurvivalAnalysis(alpha=10.0, ties="efron"))
    resp.fit(Xtr, y_resp.to_numpy())
    survm.fit(Xtr, y_surv)
    return {"response": {"baseline": (resp, fs.clinical)}, "survival": {"baseline": (survm, fs.clinical)}}


def fit_prime(fs: FeatureSet, y_resp: pd.Series, y_surv, cfg: StudyConfig, log) -> dict:
    """PRIME-R (late fusion), PRIME-S (BMA) and the early-fusion comparators on the training split.
    The single-modality comparators are PRIME's own base models."""
    from .fusion import PrimeR, PrimeS
    from .models.selection import ModalityClassifier, ModalitySurvival

    kw = dict(fast=cfg.models.fast, random_state=cfg.seed, n_jobs=cfg.models.n_jobs)
    Xtr = fs.X.loc[y_resp.index]
    t0 = time.time()
    prime_r = PrimeR(fs.clinical, fs.radiomics, **kw).fit(Xtr, y_resp.to_numpy())
    log(f"PRIME-R fitted in {time.time() - t0:.0f}s: learners {prime_r.chosen_learners_}")
    t0 = time.time()
    prime_s = PrimeS(fs.clinical, fs.radiomics, **kw).fit(Xtr, y_surv)
    log(f"PRIME-S fitted in {time.time() - t0:.0f}s: BMA weights "
        + ", ".join(f"{r.feature_kind}/{r.learner}={r.weight:.2f}" for r in prime_s.bma_table_.itertuples()))
    models = {"response": {"PRIME-R": prime_r}, "survival": {"PRIME-S": prime_s}}
    if fs.radiomics and fs.clinical:
        t0 = time.time()
        models["response"]["early fusion"] = ModalityClassifier(
            fs.clinical, fs.radiomics, "early", **kw).fit(Xtr, y_resp.to_numpy())
        models["survival"]["early fusion"] = ModalitySurvival(
            fs.clinical, fs.radiomics, "early", **kw).fit(Xtr, y_surv)
        log(f"early-fusion comparators fitted in {time.time() - t0:.0f}s")
    return models


def predict_all(models: dict, fs: FeatureSet, cohort: Cohort, split: pd.Series, cols: CohortColumns,
                times: list[float]) -> pd.DataFrame:
    """One row per scored patient: outcomes, then prob_<model>, risk_<model>, surv_<model>_<t>."""
    scored = split.index[split != "excluded"]
    X = fs.X.loc[scored]
    c = cohort.clinical.loc[scored]
    pred = pd.DataFrame({cols.id: scored, cols.centre: c[cols.centre].to_numpy(),
                         "split": split.loc[scored].to_numpy()})
    for col in (cols.response, cols.time, cols.event):  # outcomes are absent when scoring new patients
        pred[col] = c[col].to_numpy() if col in c else np.nan
    for name, m in models["response"].items():
        if isinstance(m, tuple):
            est, feats = m
            pred[f"prob_{_slug(name)}"] = est.predict_proba(X[feats])[:, 1]
            continue
        pred[f"prob_{_slug(name)}"] = m.predict_proba(X)[:, 1]
        if name == "PRIME-R":
            for kind, p in m.base_proba(X).items():
                pred[f"prob_{kind}"] = p.to_numpy()
    for name, m in models["survival"].items():
        if isinstance(m, tuple):
            est, feats = m
            pred[f"risk_{_slug(name)}"] = est.predict(X[feats])
            sf = est.predict_survival_function(X[feats])
            S = np.array([[f(min(t, f.x[-1])) for t in times] for f in sf])
            pred[_surv_cols(_slug(name), times)] = S
            continue
        pred[f"risk_{_slug(name)}"] = m.predict(X)
        if hasattr(m, "predict_survival_function") and name == "PRIME-S":
            pred[_surv_cols(_slug(name), times)] = m.predict_survival_function(X, times)
        if name == "PRIME-S":  # each modality's best base model, Cox-calibrated on training OOF
            members = m.member_risk(X)
            for kind, learner in m.chosen_learners_.items():
                score = members[f"{kind}/{learner}"].to_numpy()
                cal = m.calibrations_[f"{kind}/{learner}"]
                pred[f"risk_{kind}"] = cal.linear_predictor(score)
                pred[_surv_cols(kind, times)] = cal.survival(score, times)
    return pred


def model_columns(pred: pd.DataFrame, times: list[float]) -> tuple[dict, dict, dict]:
    """Model name -> prediction column(s) of a predictions table: response probabilities,
    risk scores, and S(t) columns of the models that have a survival function."""
    def name(col: str, main: str) -> str:
        key = col[5:]
        return main if key == _slug(main) else key.replace("_", " ")

    resp = {name(c, "PRIME-R"): c for c in pred.columns if c.startswith("prob_")}
    risk = {name(c, "PRIME-S"): c for c in pred.columns if c.startswith("risk_")}
    surv = {m: _surv_cols(c[5:], times) for m, c in risk.items()
            if all(x in pred.columns for x in _surv_cols(c[5:], times))}
    return resp, risk, surv


def _slug(name: str) -> str:
    return name.lower().replace("-", "_").replace(" ", "_")


# --------------------------------------------------------------------------------------- the run
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
    features: FeatureSet | None = None
    artefacts: Any = None
    report: dict | None = None

    def __repr__(self):
        return (f"<StudyResult {self.output_dir}: {len(self.predictions)} patients, "
                f"{len(self.metrics)} metric rows>")


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


def run_study(config: StudyConfig | str | Path, progress: bool = True, report: bool = True) -> StudyResult:
    """Run one PRIME study end to end: features -> models -> predictions -> statistics -> report.

    Outputs (in ``config.output``): predictions.csv, metrics.csv, split.csv, tables/*.csv,
    figures/*.png, models/*.skops, artefacts.json, provenance.json, report.html, report.pdf."""
    from . import analysis

    cfg = config if isinstance(config, StudyConfig) else StudyConfig.from_yaml(config)
    t_start = time.time()
    log = _Progress(progress)
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    cols = cfg.columns
    cohort = load_cohort(cfg)
    log(f"loaded {cohort!r}")
    split = split_cohort(cohort, cfg)
    log(f"split: {split.value_counts().to_dict()}")
    fs = build_features(cohort, split, cfg, log)
    log(f"features: {len(fs.clinical)} clinical, {len(fs.radiomics)} radiomics")
    train = split.index[split == "train"]
    y_resp = cohort.response.loc[train].astype(int)
    y_surv = cohort.survival(train)

    cache = StageCache(out / "cache", cfg.models.cache, log)
    stage_inputs = _cache_inputs(fs, y_resp, y_surv, cfg)
    if cfg.models.engine == "baseline":
        models = fit_baseline(fs, y_resp, y_surv, cfg)
        log("fitted the baseline clinical models (penalised logistic, penalised Cox)")
    else:
        models = cache("models", stage_inputs, fit_prime, fs, y_resp, y_surv, cfg, log,
                       codec=Codec(lambda m, f: write_models(m, f, cfg.models.n_jobs),
                                   lambda f: read_models(f, cfg.models.n_jobs)))
    times = _times(cfg)
    pred = predict_all(models, fs, cohort, split, cols, times)
    pred.to_csv(out / "predictions.csv", index=False)
    split.to_frame().to_csv(out / "split.csv")

    art = analysis.Artefacts(out)
    art.table("flow", analysis.flow_table(cohort, split, cols))
    resp_models, risk_models, surv_models = model_columns(pred, times)
    log("statistics: discrimination, calibration, overall performance per split")
    m_resp = analysis.response_metrics(pred, resp_models, cols, cfg.evaluation.engine)
    m_surv = analysis.survival_metrics(pred, risk_models, surv_models, times, cols, cfg.evaluation.engine)
    metrics = pd.concat([m_resp, m_surv], ignore_index=True)
    if cfg.models.engine == "prime" and cfg.evaluation.nested_cv:
        nested = art.guarded("nested_cv", cache, "nested_cv", stage_inputs, nested_cv_table, fs, y_resp, y_surv, cfg, log)
        if nested is not None:
            metrics = pd.concat([metrics, nested], ignore_index=True)
    metrics = _order_metrics(metrics)
    metrics.to_csv(out / "metrics.csv", index=False)
    art.table("metrics", metrics)
    art.guarded("response_figures", analysis.response_figures, art, pred, resp_models, cols)
    art.guarded("survival_figures", analysis.survival_figures, art, metrics)
    main_risk = "risk_prime_s" if "risk_prime_s" in pred else next(iter(risk_models.values()))
    art.guarded("risk_groups", analysis.risk_group_analyses, art, pred, main_risk, cols,
                cohort.clinical, cfg.evaluation.engine)
    art.guarded("descriptive", analysis.descriptive_tables, art, cohort.clinical, split, cols,
                fs.excluded_missing, fs.train_missing)
    if fs.icc is not None:
        art.table("icc_summary", fs.icc.summary)
    _model_tables(art, models)
    if cfg.models.engine == "prime":
        art.guarded("paradox", _paradox, art, pred, cols, models)
        if cfg.explain.shap:
            external = list(split.index[split == "external"])
            shap_key = stage_inputs + (asdict(cfg.explain), _times(cfg), fs.X.loc[external[:30]])
            art.guarded("shap", _explain, art, cache, shap_key, models, fs, y_resp, y_surv, cfg, log, external)
        if cohort.expression is not None:
            art.guarded("omics", _omics, art, cohort, pred, models, cfg, log)
    for key, df in art.tables.items():
        (out / "tables").mkdir(exist_ok=True)
        df.to_csv(out / "tables" / f"{key}.csv", index=False)
    log("saving the frozen models (skops)")
    _save_models(models, fs, cfg, out, cache.path("models", stage_inputs) if cache.enabled else None)
    _write_provenance(cfg, out, time.time() - t_start, cache)
    _write_artefacts(art, out, metrics)
    result = StudyResult(out, pred, metrics, models, split, cohort, cfg, fs, art)
    if report:
        from .report.build import build_report
        log("report: writing report.html and report.pdf")
        result.report = art.guarded("report", build_report, out)
    log(f"done in {time.time() - t_start:.0f}s; outputs in {out}")
    return result


def nested_cv_table(fs: FeatureSet, y_resp, y_surv, cfg: StudyConfig, log) -> pd.DataFrame:
    """Nested CV (inner tuning, outer estimate) of clinical, radiomics, early and late fusion."""
    from .fusion import compare_modalities

    if not (fs.clinical and fs.radiomics):
        return None
    Xtr = fs.X.loc[y_resp.index]
    kw = dict(outer_cv=5, cv=5, fast=cfg.models.fast, random_state=cfg.seed, n_jobs=cfg.models.n_jobs,
              progress=log)
    t0 = time.time()
    r = compare_modalities(Xtr, y_resp.to_numpy(), fs.clinical, fs.radiomics, **kw)
    s = compare_modalities(Xtr, y_surv, fs.clinical, fs.radiomics, **kw)
    log(f"nested CV of the modality comparison in {time.time() - t0:.0f}s")
    tab = pd.concat([r, s], ignore_index=True)
    tab["model"] = np.where(tab["model"] == "late fusion",
                            np.where(tab["endpoint"] == "response", "PRIME-R", "PRIME-S"), tab["model"])
    return tab.assign(split="nested_cv", engine="python", n=len(Xtr))


def _cache_inputs(fs: FeatureSet, y_resp, y_surv, cfg: StudyConfig) -> tuple:
    """What the model stages depend on: the training features and outcomes, the seed and the model
    settings (not the worker count, which does not change results)."""
    settings = {k: v for k, v in asdict(cfg.models).items() if k not in ("n_jobs", "cache")}
    return (fs.X.loc[y_resp.index], fs.clinical, fs.radiomics, y_resp, y_surv, cfg.seed, settings)


def _order_metrics(m: pd.DataFrame) -> pd.DataFrame:
    first = ["endpoint", "model", "split", "metric", "time", "estimate", "se", "lower", "upper",
             "p_value", "n", "method", "engine"]
    return m[[c for c in first if c in m.columns] + [c for c in m.columns if c not in first]]


def _model_tables(art, models: dict):
    for endpoint, key in (("response", "PRIME-R"), ("survival", "PRIME-S")):
        m = models.get(endpoint, {}).get(key)
        if m is None:
            continue
        art.table(f"features_{endpoint}", m.selected_features_)
        hp = pd.DataFrame([{"endpoint": endpoint, "model": str(k), "hyperparameters": json.dumps(v, default=str)}
                           for k, v in getattr(m, "best_params_", {}).items()])
        if endpoint == "survival":
            hp = pd.DataFrame([{"endpoint": endpoint, "model": f"{k}/{le}",
                                "hyperparameters": json.dumps(b.results_[le].best_params_, default=str)}
                               for k, b in m.bases_.items() for le in b.results_])
        art.tables["hyperparameters"] = pd.concat([art.tables.get("hyperparameters", pd.DataFrame()), hp],
                                                  ignore_index=True)
    fw = []
    if "PRIME-R" in models.get("response", {}):
        fw.append(models["response"]["PRIME-R"].fusion_weights_.assign(model="PRIME-R (non-negative logistic stacker)"))
    if "PRIME-S" in models.get("survival", {}):
        fw.append(models["survival"]["PRIME-S"].bma_table_.assign(model="PRIME-S (BMA)"))
    if fw:
        art.table("fusion_weights", pd.concat(fw, ignore_index=True))


def _frozen_thresholds(models: dict, pred: pd.DataFrame, cols: CohortColumns):
    """Responder cut-off (Youden) from PRIME-R's out-of-fold training probabilities (the
    meta-classifier applied to the bases' OOF probabilities; in-sample probabilities of tree
    ensembles are overfitted) and the PRIME-S training median risk."""
    from .paradox import freeze_thresholds

    tr = pred[pred["split"] == "train"]
    prime_r = models["response"]["PRIME-R"]
    oof = pd.Series(prime_r.meta_.predict_proba(prime_r.oof_proba_.to_numpy())[:, 1],
                    index=prime_r.oof_proba_.index).loc[tr[cols.id]]
    return freeze_thresholds(oof.to_numpy(), tr[cols.response], tr["risk_prime_s"])


def _paradox(art, pred: pd.DataFrame, cols: CohortColumns, models: dict):
    from .paradox import responder_paradox
    from .report.figures_explain import plot_paradox_km

    th = _frozen_thresholds(models, pred, cols)
    art.notes["paradox_thresholds"] = (f"responder threshold {th.response_threshold:.3f} ({th.response_rule}, "
                                       f"out-of-fold training probabilities); "
                                       f"risk threshold {th.risk_threshold:.3f} ({th.risk_rule}); both from training")
    ext = pred[pred["split"] == "external"]
    res = responder_paradox(ext["prob_prime_r"], ext["risk_prime_s"], ext[cols.response], ext[cols.time],
                            ext[cols.event], thresholds=th, patient_id=ext[cols.id])
    art.table("paradox", res.table)
    art.table("paradox_hr", res.hazard_ratio)
    art.figure("paradox_km", plot_paradox_km(res))
    return th


def shap_results(models, fs: FeatureSet, y_resp, y_surv, cfg: StudyConfig, external_ids=()) -> dict:
    """Cross-validated SHAP of PRIME-R and PRIME-S on the training split (fit on four fifths,
    explain the held-out fifth) and SurvSHAP(t) of the frozen PRIME-S on up to 30 external patients
    with a training background. The explained inputs are the features the final PRIME models
    selected on the whole training split (a description of those models, not a performance
    estimate). Returns {"response": ShapResult, "survival": ShapResult, "survshap": SurvShapResult}."""
    from sklearn.base import clone

    from . import explain
    from .fusion import PrimeR, PrimeS

    Xtr = fs.X.loc[y_resp.index]
    res = {}
    for endpoint, key, y in (("response", "PRIME-R", y_resp.to_numpy()), ("survival", "PRIME-S", y_surv)):
        m = models[endpoint][key]
        used = list(dict.fromkeys(m.selected_features_["feature"]))[: cfg.explain.max_features * 2]
        clin_used = [f for f in used if f in fs.clinical]
        rad_used = [f for f in used if f in fs.radiomics]
        klass = PrimeR if endpoint == "response" else PrimeS
        est = klass(clin_used, rad_used, fast=True, random_state=cfg.seed, n_jobs=cfg.models.n_jobs)
        res[endpoint] = explain.cv_shap(clone(est), Xtr[clin_used + rad_used], y, cv=cfg.explain.cv,
                                        random_state=cfg.seed)
    if cfg.explain.survshap:
        explained = fs.X.loc[external_ids[:30]] if len(external_ids) else Xtr.iloc[:30]
        res["survshap"] = explain.survshap(models["survival"]["PRIME-S"], explained, _times(cfg),
                                           background=Xtr, n_background=30, random_state=cfg.seed)
    return res


def _explain(art, cache, key, models, fs: FeatureSet, y_resp, y_surv, cfg: StudyConfig, log, external_ids=()):
    """SHAP tables and figures (beeswarms, divergence, SurvSHAP(t)) from :func:`shap_results`."""
    from . import explain
    from .report import figures_explain as fe

    t0 = time.time()
    res = cache("shap", key, shap_results, models, fs, y_resp, y_surv, cfg, external_ids)
    for endpoint, name in (("response", "PRIME-R"), ("survival", "PRIME-S")):
        art.table(f"shap_{endpoint}", res[endpoint].ranking)
        art.figure(f"shap_{endpoint}", fe.plot_shap_beeswarm(res[endpoint], max_features=cfg.explain.max_features,
                                                             title=f"{name}: cross-validated SHAP"))
    div = explain.divergence_table(res["response"], res["survival"], top=10)
    art.table("divergence", div)
    art.figure("divergence", fe.plot_divergence(div))
    if "survshap" in res:
        ss = res["survshap"]
        top = list(res["survival"].ranking["feature"][:6])
        art.table("survshap", ss.ranking)
        art.figure("survshap", fe.plot_survshap(ss, features=[f for f in top if f in ss.features] or None,
                                                time_scale=30.4375, time_label="Months"))
    log(f"explanations (CV SHAP, SurvSHAP(t)) in {time.time() - t0:.0f}s")


def _omics(art, cohort: Cohort, pred: pd.DataFrame, models: dict, cfg: StudyConfig, log):
    from . import analysis
    from .simulate import _find_gene_sets

    th = _frozen_thresholds(models, pred, cfg.columns).response_threshold
    p = pred.set_index(cfg.columns.id)["prob_prime_r"]
    groups = pd.Series(np.where(p >= th, "responder", "non-responder"), index=p.index)
    gmt = cfg.path(cfg.gene_sets) if cfg.gene_sets else _find_gene_sets(None)
    t0 = time.time()
    analysis.omics_analyses(art, cohort.expression, groups, gmt, cfg.seed)
    log(f"transcriptomics (DE, GSEA, immune ssGSEA) in {time.time() - t0:.0f}s")


def write_models(models: dict, folder: Path, n_jobs: int = 1) -> dict:
    """Each fitted model to ``folder/<endpoint>_<name>.skops`` (one model per worker: skops walks
    every tree node in Python, seconds per model) and ``index.json`` ({endpoint: {name: file}})."""
    from joblib import Parallel, delayed

    folder.mkdir(parents=True, exist_ok=True)
    index, jobs = {}, []
    for endpoint, ms in models.items():
        for name, m in ms.items():
            f = f"{endpoint}_{_slug(name)}.skops"
            jobs.append((m, folder / f))
            index.setdefault(endpoint, {})[name] = f
    Parallel(n_jobs=max(1, min(n_jobs, len(jobs))))(delayed(persist.dump_skops)(m, path) for m, path in jobs)
    (folder / "index.json").write_text(json.dumps(index, indent=2))
    return index


def read_models(folder: Path, n_jobs: int = 1) -> dict:
    """The models :func:`write_models` wrote (skops, trusted types only; one file per worker)."""
    from joblib import Parallel, delayed

    index = json.loads((folder / "index.json").read_text())
    files = [(ep, name, f) for ep, ms in index.items() for name, f in ms.items()]
    loaded = Parallel(n_jobs=max(1, min(n_jobs, len(files))))(
        delayed(persist.load_skops)(folder / f) for _, _, f in files)
    models: dict = {}
    for (ep, name, _), m in zip(files, loaded):
        models.setdefault(ep, {})[name] = m
    return models


def _save_models(models: dict, fs: FeatureSet, cfg: StudyConfig, out: Path, written: Path | None = None):
    """Fitted models and the fitted feature step with skops (no unrestricted pickle), and the
    feature specification beside them, so that new patients can be scored by the frozen study.
    ``written``: a folder where :func:`write_models` already wrote these models (the stage cache
    entry); its files are copied instead of being serialised again."""
    import shutil

    folder = out / "models"
    if written is not None and (written / "index.json").is_file():
        folder.mkdir(exist_ok=True)
        index = json.loads((written / "index.json").read_text())
        for f in [*(f for ms in index.values() for f in ms.values()), "index.json"]:
            shutil.copyfile(written / f, folder / f)
    else:
        index = write_models(models, folder, cfg.models.n_jobs)
    persist.dump_skops(fs.encoder, folder / "clinical_encoder.skops")
    spec = {"models": index, "clinical_features": fs.clinical, "radiomics_features": fs.radiomics,
            "excluded_missing": fs.excluded_missing, "radiomics_settings": cfg.radiomics,
            "engine": cfg.models.engine, "times": _times(cfg), "config": cfg.to_dict()}
    (folder / "study_spec.json").write_text(json.dumps(spec, indent=2, default=str))


def _write_artefacts(art, out: Path, metrics: pd.DataFrame):
    engines = {}
    if "engine" in metrics:
        for (metric, engine), _ in metrics.groupby(["metric", "engine"]):
            engines.setdefault(str(metric), set()).add(str(engine))
    doc = {"tables": {k: f"tables/{k}.csv" for k in art.tables},
           "figures": {k: str(Path(p).relative_to(out)) for k, p in art.figures.items()},
           "engines": {k: "/".join(sorted(v)) for k, v in engines.items()},
           "notes": art.notes}
    (out / "artefacts.json").write_text(json.dumps(doc, indent=2))


def _write_provenance(cfg: StudyConfig, out: Path, seconds: float, cache: StageCache):
    import importlib.metadata as md

    from . import rbridge

    versions = {}
    for pkg in ("numpy", "pandas", "scipy", "scikit-learn", "scikit-survival", "lifelines",
                "statsmodels", "pyradiomics-bhklab", "shap", "gseapy", "SimpleITK", "skops", "rpy2"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    r_packages = {p: rbridge.r_package_version(p) for p in
                  ("survival", "rms", "riskRegression", "pROC", "pec", "GSVA", "limma", "edgeR")}
    hashes = {k: file_hash(cfg.path(v)) for k, v in asdict(cfg.data).items() if v}
    prov = {"prime_stats": __version__, "python": platform.python_version(),
            "platform": platform.platform(), "packages": versions, "R": rbridge.r_version(),
            "R_packages": r_packages, "seed": cfg.seed, "data_sha256": hashes,
            "seconds": round(seconds, 1), "config": cfg.to_dict(),
            "stage_cache": {"enabled": cache.enabled, "folder": str(cache.folder), "reused": cache.hits,
                            "computed": cache.misses}}
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
