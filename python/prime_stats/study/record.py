"""What a study run leaves behind: the one writer of ``artefacts.json`` (tables, figures, the
engine behind each statistic, notes) and ``provenance.json``, and the registry of every artefact
key, which the report imports."""
from __future__ import annotations

import hashlib
import json
import platform
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from .. import __version__
from .config import StudyConfig
from .stage_cache import StageCache, library_versions

INDEX = "artefacts.json"
PROVENANCE = "provenance.json"
FIGURE_DPI = 150

# ------------------------------------------------------------------------------ the key registry
# Every table and figure a study may write, with its caption. Keys in PER_SPLIT are written once per
# evaluation split as ``<key>_<split>`` (e.g. ``km_external``).
TABLES = {
    "flow": "Participants, responders and deaths per analysis set",
    "flow_diagram": "Patient flow: centres, exclusions and analysis sets (the flow diagram's table)",
    "followup": "Follow-up (reverse Kaplan-Meier)",
    "table1": "Baseline characteristics",
    "missingness": "Missing values per variable",
    "icc_summary": "Feature reproducibility (ICC)",
    "metrics": "Performance of every model in every validation set",
    "optimism": "Bootstrap optimism correction (Harrell): apparent, training, test, optimism, corrected",
    "features_response": "PRIME-R: selected predictors",
    "features_survival": "PRIME-S: selected predictors",
    "hyperparameters": "Tuned hyperparameters",
    "tuning": "Learner choice: every candidate learner's cross-validated score per modality, the rule and the "
              "learner kept",
    "sample_size": "Events per candidate parameter and the minimum sample size (Riley et al. 2020)",
    "fusion_weights": "Fusion weights (meta-classifier coefficients; model-averaging weights)",
    "km_groups": "Survival by risk group",
    "km_medians": "Median overall survival by PRIME-S risk group and by treatment, every split",
    "km_treatment_curves": "Kaplan-Meier curves by treatment (the figures' table)",
    "km_treatment_at_risk": "Numbers at risk by treatment every 6 months",
    "logrank_treatment": "Log-rank tests by treatment",
    "survival_contrasts": "PRIME-S minus each survival model: paired bootstrap differences of C-index and AUC(t)",
    "pooled_cox": "PRIME-S risk group (high vs low) in all patients pooled, unadjusted and adjusted",
    "correlation_response": "Spearman correlations of PRIME-R's selected predictors (training)",
    "correlation_survival": "Spearman correlations of PRIME-S's selected predictors (training)",
    "km_curves": "Kaplan-Meier curves by risk group (the figure's table)",
    "km_at_risk": "Numbers at risk by risk group every 6 months",
    "calibration_curves": "Calibration curves with their 95% bands (the figures' table)",
    "calibration_rug": "Predictions under the calibration curves",
    "decision_curve_survival": "Net benefit by the survival horizon",
    "logrank": "Log-rank tests",
    "cox_hr": "Cox hazard ratios, high vs low risk",
    "cox_zph": "Proportional-hazards test",
    "subgroups": "Hazard ratios within subgroups",
    "adjusted_cox": "PRIME-S risk group (high vs low), external: unadjusted and adjusted hazard ratios",
    "calibration_response": "Calibration of the response models",
    "calibration_survival": "Calibration of the survival models",
    "shap_response": "PRIME-R: mean |SHAP| per feature, cross-validated over fast-grid refits",
    "shap_survival": "PRIME-S: mean |SHAP| per feature, cross-validated over fast-grid refits",
    "shap_frozen_response": "Frozen PRIME-R (the validated model): mean |SHAP| of P(response) per feature, "
                            "test and external patients",
    "shap_frozen_survival": "Frozen PRIME-S (the validated model): mean |SHAP| of the risk score per feature, "
                            "test and external patients",
    "shap_frozen_values": "SHAP values of the frozen models per explained patient (the figures' table)",
    "survshap": "Frozen PRIME-S: SurvSHAP(t) importance",
    "divergence": "Response versus survival drivers",
    "paradox": "Responder-paradox quadrants per split (thresholds frozen on training)",
    "paradox_hr": "Responder paradox: PRIME-S high vs low risk among predicted responders, per split",
    "landmark_response": "Observed 3-month response and overall survival from the 3-month landmark, per split",
    "response_risk_correlation": "Spearman correlation of the PRIME-R probability and the PRIME-S risk, per split",
    "paradox_divergence": "Divergence test: PRIME-S risk x predicted response (Cox), per split",
    "omics_samples": "Expression samples per split, prediction source and predicted group",
    "de": "Differentially expressed genes, PRIME-R predicted responders vs non-responders",
    "gsea": "Gene-set enrichment (GSEA), PRIME-R predicted groups",
    "ssgsea": "ssGSEA scores by group",
    "immune": "Immune-cell infiltration, PRIME-R predicted groups",
    "de_survival": "Differentially expressed genes, PRIME-S high vs low risk",
    "gsea_survival": "Gene-set enrichment (GSEA), PRIME-S risk groups",
    "immune_survival": "Immune-cell infiltration, PRIME-S risk groups",
    "go": "GO Biological Process over-representation of the PRIME-R DE genes (enrichGO rules)",
    "go_survival": "GO Biological Process over-representation of the PRIME-S DE genes (enrichGO rules)",
}
FIGURES = {
    "flow_diagram": "Patient flow diagram",
    "discrimination_summary": "Discrimination of every model in every split: AUC (response); Harrell's and Uno's C (survival)",
    "survival_contrasts": "PRIME-S minus each survival model: C-index and AUC(t) differences with 95% bootstrap CIs",
    "pooled_cox": "PRIME-S risk group (high vs low), unadjusted and adjusted: all patients pooled and external",
    "correlation_response": "Correlation of PRIME-R's selected predictors (Spearman, training)",
    "correlation_survival": "Correlation of PRIME-S's selected predictors (Spearman, training)",
    "td_auc": "Time-dependent AUC",
    "brier_time": "Brier score over time",
    "forest_subgroups": "Subgroup hazard ratios",
    "shap_response": "Cross-validated SHAP of fast-grid refits, PRIME-R",
    "shap_survival": "Cross-validated SHAP of fast-grid refits, PRIME-S",
    "shap_frozen_response": "SHAP of the frozen PRIME-R (the validated model), test and external patients",
    "shap_frozen_survival": "SHAP of the frozen PRIME-S risk score (the validated model), test and external patients",
    "survshap": "SurvSHAP(t) of the frozen PRIME-S",
    "divergence": "Response versus survival drivers",
    "paradox_km": "Survival by responder-paradox quadrant",
    "volcano": "Volcano plot, PRIME-R predicted responders vs non-responders",
    "gsea_enrichment": "GSEA enrichment, PRIME-R predicted groups",
    "immune": "Immune-cell infiltration, PRIME-R predicted groups",
    "volcano_survival": "Volcano plot, PRIME-S high vs low risk",
    "gsea_enrichment_survival": "GSEA enrichment, PRIME-S risk groups",
    "immune_survival": "Immune-cell infiltration, PRIME-S risk groups",
    "go": "GO Biological Process over-representation of the PRIME-R DE genes (enrichGO rules)",
    "go_survival": "GO Biological Process over-representation of the PRIME-S DE genes (enrichGO rules)",
}
PER_SPLIT_TABLES = {"decision_curve": "Net benefit"}
PER_SPLIT_FIGURES = {"roc": "ROC curves", "calibration": "Calibration of the response models",
                     "decision": "Decision curves", "km": "Kaplan-Meier curves by risk group",
                     "km_treatment": "Kaplan-Meier curves by treatment",
                     "calibration_survival": "Calibration of the survival models",
                     "decision_survival": "Decision curves at the survival horizons"}
SPLIT_SUFFIX = {"train": "training set", "test": "internal test set", "external": "external validation centre"}
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def caption(kind: str, key: str) -> str | None:
    """The registered caption of table or figure ``key`` (None when it is not registered)."""
    fixed, per_split = (TABLES, PER_SPLIT_TABLES) if kind == "table" else (FIGURES, PER_SPLIT_FIGURES)
    if key in fixed:
        return fixed[key]
    base, _, split = key.rpartition("_")
    if base in per_split and split in SPLIT_SUFFIX:
        return f"{per_split[base]}, {SPLIT_SUFFIX[split]}"
    return None


def _check_key(kind: str, key: str) -> str:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"{kind} key {key!r} must be letters, digits, '_', '.' or '-' (it names a file)")
    if caption(kind, key) is None:
        raise KeyError(f"{kind} key {key!r} is not in the artefact registry (prime_stats.study.record)")
    return key


# ------------------------------------------------------------------------------------ artefacts
@dataclass
class Artefacts:
    """Tables (DataFrames) and figures (PNG files) of one study run, with notes for the report.

    ``table``/``figure`` accept registered keys only; :meth:`write` saves the tables and writes
    ``artefacts.json``."""
    out: Path
    tables: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    figure_engines: dict = field(default_factory=dict)     # key -> "R" | "python" (who drew it)

    def table(self, key: str, df: pd.DataFrame | None):
        if df is not None:
            self.tables[_check_key("table", key)] = df

    def figure(self, key: str, fig, engine: str = "python"):
        """Save a matplotlib Figure (closed afterwards) or copy a PNG file as ``figures/<key>.png``;
        ``engine`` says who drew it (R's ggplot2/survminer or Python's matplotlib)."""
        import shutil

        import matplotlib.pyplot as plt

        folder = self.out / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{_check_key('figure', key)}.png"
        if isinstance(fig, (str, Path)):
            src = Path(fig)
            if not src.is_file() or src.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
                raise ValueError(f"figure {key!r}: {src} is not a PNG file")
            if src.resolve() != path.resolve():
                shutil.copyfile(src, path)
        else:
            fig.savefig(path, dpi=FIGURE_DPI, bbox_inches="tight")
            plt.close(fig)
        self.figures[key] = path
        self.figure_engines[key] = engine

    def guarded(self, key: str, fn, *args, **kwargs):
        """Run one analysis; a failure is recorded as a note for the report instead of lost."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported, never swallowed silently
            warnings.warn(f"{key}: {type(exc).__name__}: {exc}", stacklevel=2)
            self.notes[key] = f"not computed: {type(exc).__name__}: {exc}"
            return None

    def write(self, metrics: pd.DataFrame | None = None) -> Path:
        """``tables/<key>.csv`` and ``artefacts.json``: tables, figures, the engine(s) behind each
        statistic of ``metrics`` (default: the ``metrics`` table), and the notes."""
        (self.out / "tables").mkdir(parents=True, exist_ok=True)
        for key, df in self.tables.items():
            df.to_csv(self.out / "tables" / f"{key}.csv", index=False)
        metrics = self.tables.get("metrics") if metrics is None else metrics
        engines: dict[str, set] = {}
        if metrics is not None and {"metric", "engine"} <= set(metrics.columns):
            for (metric, engine), _ in metrics.groupby(["metric", "engine"]):
                engines.setdefault(str(metric), set()).add(str(engine))
        doc = {"tables": {k: f"tables/{k}.csv" for k in self.tables},
               "figures": {k: str(Path(p).relative_to(self.out)) for k, p in self.figures.items()},
               "engines": {k: "/".join(sorted(v)) for k, v in engines.items()},
               "figure_engines": self.figure_engines,
               "notes": self.notes}
        path = self.out / INDEX
        path.write_text(json.dumps(doc, indent=2))
        return path


def read_artefacts(study_dir) -> dict:
    """The artefacts index of ``study_dir`` (empty sections when there is none)."""
    p = Path(study_dir) / INDEX
    art = json.loads(p.read_text()) if p.is_file() else {}
    return {k: dict(art.get(k, {})) for k in ("tables", "figures", "engines", "notes")}


# ----------------------------------------------------------------------------------- provenance
def file_hash(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_provenance(cfg: StudyConfig, seconds: float, cache: StageCache) -> Path:
    """``provenance.json`` (versions of prime-stats, Python, the libraries and R packages, the seed,
    input SHA-256 hashes, the configuration, what came from the stage cache) and
    ``config.resolved.yaml``."""
    from .. import rbridge

    out = cfg.output_dir
    r_packages = {p: rbridge.r_package_version(p) for p in
                  ("survival", "rms", "riskRegression", "pROC", "pec", "GSVA", "limma", "edgeR")}
    hashes = {k: file_hash(cfg.path(v)) for k, v in cfg.to_dict()["data"].items() if v}
    packages = {k: v for k, v in library_versions().items() if not k.startswith("prime-stats")}
    prov = {"prime_stats": __version__, "python": platform.python_version(),
            "platform": platform.platform(), "packages": packages, "R": rbridge.r_version(),
            "R_packages": r_packages, "seed": cfg.seed, "data_sha256": hashes,
            "seconds": round(seconds, 1), "config": cfg.to_dict(),
            "stage_cache": {"enabled": cache.enabled, "folder": str(cache.folder), "reused": cache.hits,
                            "computed": cache.misses}}
    path = out / PROVENANCE
    path.write_text(json.dumps(prov, indent=2, default=str))
    (out / "config.resolved.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    return path
