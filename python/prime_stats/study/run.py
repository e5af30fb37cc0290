"""One PRIME study, end to end, in the order of a paper's methods section:
split -> features -> models -> predictions -> statistics -> figures -> report.

By default the whole development centre is the training split and internal validation is nested CV
(``split.test_fraction: 0.3`` holds out the paper's stratified internal test); every learned step
is fitted on the training split only, and the internal test and external centres receive the
frozen models.
"""
from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..cohort import Cohort
from ..evaluation.score import DAYS_PER_MONTH
from . import analyses, development, render
from .config import StudyConfig
from .design import FeatureSet, build_features, check_horizons, load_cohort, split_cohort
from .fit import (FROZEN_BACKGROUND, fit_baseline, fit_prime, frozen_shap_results, nested_cv_table, optimism_table,
                  read_models, save_frozen_models, shap_results, stage_inputs, write_models)
from .predictions import PRIME_R, PRIME_S, Predictions, predict_all
from .record import Artefacts, write_provenance
from .stage_cache import Codec, StageCache


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


def run_study(config: StudyConfig | str | Path, progress: bool = True, report: bool = True) -> StudyResult:
    """Run one PRIME study end to end: features -> models -> predictions -> statistics -> report.

    Outputs (in ``config.output``): predictions.csv (+ predictions.json, the model <-> column map),
    metrics.csv, split.csv, tables/*.csv, figures/*.png, models/*.skops, artefacts.json,
    provenance.json, report.html, report.pdf."""
    cfg = config if isinstance(config, StudyConfig) else StudyConfig.from_yaml(config)
    t_start = time.time()
    log = _Progress(progress)
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    engine = cfg.evaluation.engine

    # split and features
    cols = cfg.columns
    cohort = load_cohort(cfg)
    log(f"loaded {cohort!r}")
    split = split_cohort(cohort, cfg)
    log(f"split: {split.value_counts().to_dict()}")
    check_horizons(cohort, split, cfg)
    fs = build_features(cohort, split, cfg, log)
    log(f"features: {len(fs.clinical)} clinical, {len(fs.radiomics)} radiomics")
    train = split.index[split == "train"]
    y_resp = cohort.response.loc[train].astype(int) if cols.has_response else None
    y_surv = cohort.survival(train) if cols.has_survival else None

    # models (training split only) and their frozen predictions
    cache = StageCache(out / "cache", cfg.models.cache, log)
    inputs = stage_inputs(fs, train, y_resp, y_surv, cfg)
    prime = cfg.models.family == "prime"
    if prime:
        models = cache("models", inputs, fit_prime, fs, train, y_resp, y_surv, cfg, log,
                       codec=Codec(lambda m, f: write_models(m, f, cfg.models.n_jobs),
                                   lambda f: read_models(f, cfg.models.n_jobs)))
    else:
        models = fit_baseline(fs, train, y_resp, y_surv)
        log("fitted the baseline clinical models (ridge logistic, ridge Cox)")
    pred = predict_all(models, fs.X, cohort, split, cols, cfg.times)
    pred.write(out)
    split.to_frame().to_csv(out / "split.csv")

    # statistics
    art = Artefacts(out)
    art.table("flow", analyses.flow_table(cohort, split, cols))
    art.table("flow_diagram", art.guarded("flow_diagram", analyses.flow_diagram_table, cohort, split, cols,
                                          cfg.split.development, cfg.split.external, fs.radiomics_excluded))
    log("statistics: discrimination, calibration, overall performance per split")
    metrics = pd.concat([analyses.response_metrics(pred, engine), analyses.survival_metrics(pred, engine)],
                        ignore_index=True)
    if prime and cfg.evaluation.nested_cv:
        nested = art.guarded("nested_cv", cache, "nested_cv", inputs, nested_cv_table, fs, train, y_resp, y_surv,
                             cfg, log)
        if nested is not None:
            metrics = pd.concat([metrics, nested], ignore_index=True)
        else:
            art.notes["nested_cv"] = "not run: nested CV compares modalities and this study has only one"
    if prime and cfg.evaluation.bootstrap:
        optimism = art.guarded("optimism", cache, "optimism", inputs + (cfg.evaluation.bootstrap,), optimism_table,
                               fs, train, y_resp, y_surv, cfg, log, out / "cache" / "optimism-replicates")
        if optimism is not None:
            art.table("optimism", optimism)
            metrics = pd.concat([metrics, analyses.optimism_rows(optimism, len(train))], ignore_index=True)
    metrics = analyses.order_metrics(analyses.note_collapse(metrics, models))
    metrics.to_csv(out / "metrics.csv", index=False)
    art.table("metrics", metrics)
    art.guarded("decision_curves", analyses.decision_tables, art, pred, engine)
    art.guarded("decision_curves_survival", analyses.survival_decision_tables, art, pred)
    art.guarded("calibration_curves", analyses.calibration_tables, art, pred, cfg.seed)
    art.guarded("survival_contrasts", analyses.survival_contrasts, art, pred, cfg.seed)
    groups = None
    if cols.has_survival:
        groups = art.guarded("risk_groups", analyses.risk_group_analyses, art, pred, cohort.clinical, engine,
                             cfg.evaluation.adjust_for)
    art.guarded("descriptive", analyses.descriptive_tables, art, cohort.clinical, split, cols,
                fs.excluded_missing, fs.train_missing, cfg.features.categorical)
    art.guarded("correlation", analyses.correlation_tables, art, fs.X, train, models)
    if fs.icc is not None:
        art.table("icc_summary", fs.icc.summary)
    analyses.model_tables(art, models)
    art.guarded("sample_size", development.record, art, models, len(fs.clinical) + len(fs.radiomics), y_resp,
                y_surv, cfg.times)
    paradox = shap = omics = None
    if prime:
        if cols.has_response and cols.has_survival:
            paradox = art.guarded("paradox", analyses.paradox_analysis, art, pred, models, engine)
        if cfg.explain.shap:
            shap = art.guarded("shap", _explanations, art, cache, inputs, models, fs, train, y_resp, y_surv, cfg,
                               log, list(split.index[split == "external"]))
            if cfg.explain.frozen:
                art.guarded("shap_frozen", _frozen_explanations, art, cache, inputs, models, fs, train, split, cfg,
                            log)
        if cohort.expression is not None and cols.has_response:
            omics = art.guarded("omics", _omics, art, cohort, pred, models, cfg, log)

    # figures, drawn from the stored tables and results
    art.guarded("flow_figure", render.flow_figure, art)
    art.guarded("discrimination_figure", render.discrimination_figure, art, metrics)
    art.guarded("correlation_figures", render.correlation_figures, art)
    art.guarded("response_figures", render.response_figures, art, pred, engine)
    art.guarded("survival_figures", render.survival_figures, art, metrics)
    art.guarded("survival_model_figures", render.survival_model_figures, art, engine)
    if groups is not None:
        art.guarded("risk_group_figures", render.risk_group_figures, art, engine)
    if paradox is not None:
        art.guarded("paradox_figure", render.paradox_figure, art, paradox)
    if shap is not None:
        art.guarded("shap_figures", render.explanation_figures, art, shap, cfg.explain.max_features)
    art.guarded("shap_frozen_figures", render.frozen_explanation_figures, art, cfg.explain.max_features)
    if omics is not None:
        art.guarded("omics_figures", render.omics_figures, art, omics)

    # the frozen study and its record
    log("saving the frozen models (skops)")
    save_frozen_models(models, fs, cfg, out, cache.path("models", inputs) if cache.enabled else None)
    write_provenance(cfg, time.time() - t_start, cache)
    art.write(metrics)
    result = StudyResult(out, pred.frame, metrics, models, split, cohort, cfg, fs, art)
    if report:
        from ..report.build import build_report
        log("report: writing report.html and report.pdf")
        result.report = art.guarded("report", build_report, out)
    log(f"done in {time.time() - t_start:.0f}s; outputs in {out}")
    return result


def _explanations(art: Artefacts, cache: StageCache, inputs: tuple, models, fs: FeatureSet, train, y_resp,
                  y_surv, cfg: StudyConfig, log, external_ids=()) -> dict:
    """SHAP rankings, the response-vs-survival divergence and SurvSHAP(t) (cached with the models)."""
    from .. import explain

    t0 = time.time()
    key = inputs + (asdict(cfg.explain), cfg.times, fs.X.loc[external_ids[:30]])
    res = cache("shap", key, shap_results, models, fs, train, y_resp, y_surv, cfg, external_ids)
    for endpoint, key in (("response", PRIME_R), ("survival", PRIME_S)):
        if endpoint in res:
            art.table(f"shap_{endpoint}", res[endpoint].ranking.assign(
                method=f"{cfg.explain.cv}-fold refits on the frozen model's selected features, candidate "
                       f"learners {', '.join(models[endpoint][key].predicting_learners_)} (those the frozen "
                       "model's predictions use)"))
    if "response" in res and "survival" in res:
        art.table("divergence", explain.divergence_table(res["response"], res["survival"], top=10))
    if "survshap" in res:
        ss = res["survshap"]
        who = f"{len(ss.index)} external patients" if len(external_ids) else f"{len(ss.index)} training patients"
        horizons = ", ".join(f"{t / DAYS_PER_MONTH:g}" for t in ss.times)
        art.table("survshap", ss.ranking[ss.ranking["importance"] > 0].assign(  # features that change S(t|x)
            method=f"{ss.explainer}; frozen PRIME-S; background {FROZEN_BACKGROUND} training patients; "
                   f"horizons {horizons} months", explained=who))
    log(f"explanations (CV SHAP, SurvSHAP(t)) in {time.time() - t0:.0f}s")
    return res


def frozen_shap_patients(split: pd.Series, cfg: StudyConfig) -> pd.Series:
    """The patients whose frozen-model SHAP the study computes (patient id -> split): up to
    ``explain.frozen_rows`` test and external patients each, a sample seeded by ``cfg.seed``, in the
    split's order."""
    rng = np.random.default_rng(cfg.seed)
    explained = []
    for s in ("test", "external"):
        ids = split.index[split == s]
        if len(ids) > cfg.explain.frozen_rows:
            ids = ids[np.sort(rng.choice(len(ids), cfg.explain.frozen_rows, replace=False))]
        explained.append(pd.Series(s, index=ids))
    return pd.concat(explained)


def _frozen_explanations(art: Artefacts, cache: StageCache, inputs: tuple, models, fs: FeatureSet, train, split,
                         cfg: StudyConfig, log) -> dict:
    """SHAP of the frozen PRIME-R and PRIME-S on up to ``explain.frozen_rows`` test and external patients
    each (a seeded sample, in the split's order): per-model rankings with the mean |SHAP| per split and
    the method, and the top features' values per patient (the figures' table; cached with the models)."""
    explained = frozen_shap_patients(split, cfg)
    if explained.empty:
        art.notes["shap_frozen"] = "not computed: no test or external patients to explain"
        return {}
    t0 = time.time()
    key = inputs + (cfg.explain.frozen_rows, FROZEN_BACKGROUND, fs.X.loc[explained.index])
    res = cache("shap_frozen", key, frozen_shap_results, models, fs, train, explained, cfg)
    counts = explained.value_counts()
    who = ", ".join(f"{counts[s]} of {(split == s).sum()} {s}" for s in ("test", "external") if s in counts)
    values = []
    for endpoint, r in res.items():
        if r.ranking.empty:
            art.notes[f"shap_frozen_{endpoint}"] = ("not tabulated: every SHAP value is 0 (the frozen model gives "
                                                    "the same output for every explained patient)")
            continue
        by_split = r.fold_importance.T.add_prefix("mean_abs_shap_")
        art.table(f"shap_frozen_{endpoint}", r.ranking.join(by_split, on="feature").assign(
            output=r.output, method=r.explainer, explained=f"{who} patients"))
        top = list(r.ranking["feature"][:cfg.explain.max_features])
        values.append(pd.DataFrame({
            "endpoint": endpoint, "split": np.repeat(r.fold, len(top)),
            "row": np.repeat(np.arange(len(r.values)), len(top)), "feature": np.tile(top, len(r.values)),
            "shap": r.values[top].to_numpy().ravel(), "value": r.data[top].to_numpy().ravel()}))
    if values:
        art.table("shap_frozen_values", pd.concat(values, ignore_index=True))
    log(f"SHAP of the frozen models ({who} patients) in {time.time() - t0:.0f}s")
    return res


def _omics(art: Artefacts, cohort: Cohort, pred: Predictions, models: dict, cfg: StudyConfig, log):
    """Transcriptomics of PRIME-R's predicted groups and PRIME-S's risk groups (thresholds frozen on
    training; out-of-fold predictions for training patients)."""
    from ..genesets import hallmark_gene_sets_path

    th = analyses.frozen_thresholds(models, pred)
    d = analyses.unfitted_predictions(models, pred)
    gmt = hallmark_gene_sets_path(cfg.path(cfg.gene_sets) if cfg.gene_sets else None)
    t0 = time.time()
    go = art.guarded("go", _go_gene_sets)
    res = analyses.omics_analyses(art, cohort.expression, d, th, gmt, cfg.seed, cfg.evaluation.engine, go)
    log(f"transcriptomics (DE, GSEA, GO, immune ssGSEA; PRIME-R and PRIME-S groups) in {time.time() - t0:.0f}s")
    return res


def _go_gene_sets() -> Path:
    """The GO BP GMT: an existing export (:func:`~prime_stats.genesets.go_gene_sets_path`), else the
    one exported once per machine and annotation release (:func:`~prime_stats.omics.cached_go_gene_sets`)."""
    from .. import omics
    from ..genesets import go_gene_sets_path

    return go_gene_sets_path() or omics.cached_go_gene_sets("BP")


class _Progress:
    """Stage log on stderr with the elapsed time (silent when ``enabled`` is False)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.t0 = time.time()

    def __call__(self, msg: str):
        if self.enabled:
            print(f"[prime-stats {time.time() - self.t0:6.1f}s] {msg}", file=sys.stderr, flush=True)
