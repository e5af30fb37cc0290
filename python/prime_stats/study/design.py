"""The study design: which patients are in which split, and the design matrix (clinical
predictors with derived indices, reproducible radiomics) that every model receives."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from .. import clinical as clin
from ..cohort import Cohort, CohortError, read_table
from ..features import ClinicalEncoder
from .config import ConfigError, StudyConfig


def load_cohort(cfg: StudyConfig) -> Cohort:
    """The cohort named by ``data.*`` (schema-checked by :class:`~prime_stats.cohort.Cohort`)."""
    d = cfg.data
    return Cohort.from_files(cfg.path(d.clinical), cfg.path(d.manifest) if d.manifest else None,
                             cfg.path(d.expression) if d.expression else None, columns=cfg.columns)


def split_cohort(cohort: Cohort, cfg: StudyConfig) -> pd.Series:
    """Assign every patient to 'train', 'test' (internal) or 'external'; others are 'excluded'.
    The development centres are split once (``split.test_fraction``, stratified by the outcome
    ``split.stratify`` names); with ``test_fraction`` 0 they are all training."""
    cols = cfg.columns
    centre = cohort.centre.astype(str)
    dev = centre.isin([str(c) for c in cfg.split.development])
    ext = centre.isin([str(c) for c in cfg.split.external])
    if dev.sum() < 20:
        raise ConfigError(f"split.development {cfg.split.development}: only {int(dev.sum())} patients "
                          f"(centres present: {sorted(centre.unique())})")
    split = pd.Series("excluded", index=cohort.ids, name="split")
    dev_ids = cohort.ids[dev.to_numpy()]
    by = cfg.split.stratify
    if by == "auto":
        by = "response" if cols.has_response else "event"
    strat = cohort.clinical.loc[dev_ids, {"response": cols.response, "event": cols.event}[by]] \
        if by != "none" else None
    if cfg.split.test_fraction > 0:
        train, test = train_test_split(dev_ids, test_size=cfg.split.test_fraction,
                                       random_state=cfg.seed, stratify=strat)
        split[train] = "train"
        split[test] = "test"
    else:
        split[dev_ids] = "train"
    split[ext.to_numpy()] = "external"
    return split


def check_horizons(cohort: Cohort, split: pd.Series, cfg: StudyConfig) -> None:
    """Before any fitting: every evaluation horizon lies inside the follow-up of the scored patients
    (a horizon beyond the last observed time cannot be validated anywhere, e.g. when the times are
    in months). A horizon beyond one split's follow-up is skipped in that split with a note."""
    if not cfg.columns.has_survival:
        return
    t = cohort.clinical.loc[split.index[split != "excluded"], cfg.columns.time]
    beyond = [h for h in cfg.times if h >= t.max()]
    if beyond:
        raise ConfigError(f"config key 'evaluation.times': horizon(s) {beyond} are at or beyond the last "
                          f"follow-up ({cfg.columns.time} ranges {t.min():g} to {t.max():g}); horizons are in "
                          f"the units of {cfg.columns.time!r} (days by default)")


# ---------------------------------------------------------------------------------------- features
def clinical_features(cohort: Cohort, exclude=(), categorical=()) -> pd.DataFrame:
    """Candidate clinical predictors with the derived indices (ALBI, PNI, Child-Pugh, NLR, MLR,
    one-month relative changes). Raw post-treatment labs are replaced by their relative change;
    the subsequent-therapy flag is post-baseline and is kept out of the predictors."""
    check_numeric_predictors(cohort.predictors(), categorical)
    x = clin.add_clinical_indices(cohort.predictors())
    post = [c for c in x.columns if c.endswith("_1m")]
    drop = post + [c for c in exclude if c in x.columns]
    for key, names in (("exclude", exclude), ("categorical", categorical)):
        unknown = [c for c in names if c not in x.columns]
        if unknown:
            raise ConfigError(f"config key 'features.{key}': unknown column(s) {unknown}")
    x = x.drop(columns=drop)
    for c in categorical:     # declared categorical: encoded as levels even when the codes are numbers
        if c in x:
            x[c] = x[c].astype("string")
    # the class labels duplicate their scores
    return x.drop(columns=[c for c in ("albi_grade", "child_pugh_class") if c in x.columns])


def check_numeric_predictors(x: pd.DataFrame, categorical=()) -> None:
    """A predictor whose values are mostly numbers but include text ('<5', '12,3', 'n/a') is an
    input error naming the column and patients, unless it is declared in ``features.categorical``
    (text-coded columns such as sex or treatment are recognised as categorical by themselves)."""
    for col in x.columns:
        if col in categorical or pd.api.types.is_numeric_dtype(x[col]):
            continue
        v = x[col].dropna()
        if v.empty:
            continue
        as_num = pd.to_numeric(v, errors="coerce")
        comma = pd.to_numeric(v.astype(str).str.replace(",", ".", regex=False), errors="coerce")
        if as_num.notna().mean() < 0.5 and comma.notna().mean() >= 0.5:
            raise CohortError(f"clinical table: column {col!r} looks numeric with decimal commas "
                              f"(e.g. {v.iloc[0]!r} for patient {v.index[0]}); write decimals with '.', "
                              f"or declare the column in features.categorical")
        if as_num.notna().mean() >= 0.5:
            bad = v.index[as_num.isna()]
            raise CohortError(f"clinical table: column {col!r} is numeric but has text value(s) "
                              f"{sorted(set(map(str, v[bad])))[:5]} for patient(s) {list(bad[:10])}; fix them, "
                              f"or declare the column in features.categorical")


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
    from ..imaging import extract_manifest, icc_filter

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
    raw = clinical_features(cohort, cfg.features.exclude, cfg.features.categorical)
    train_missing = raw.loc[train].isna().mean()
    excluded = sorted(train_missing.index[train_missing > cfg.features.max_missing])
    if excluded:
        log(f"features: dropped {excluded} (> {cfg.features.max_missing:.0%} missing in training)")
    enc = ClinicalEncoder(drop=tuple(excluded)).fit(raw.loc[train])
    x_clin = enc.transform(raw.loc[scored])
    X, rad_cols, icc, ext_log, failed = x_clin, [], None, None, []
    if cfg.data.features:
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
