"""The TRIPOD+AI validation report of a PRIME study: one self-contained HTML file and its PDF.

Input is a study output folder (written by :func:`prime_stats.study.run_study`):

- ``provenance.json`` and ``config.resolved.yaml``;
- ``artefacts.json``: ``{"tables": {key: csv}, "figures": {key: png}, "engines": {statistic: "R"|"python"},
  "notes": {key: text}}`` with paths relative to the study folder.

Every section is mapped to its TRIPOD+AI items (Collins et al., BMJ 2024;385:e078378); a section
whose tables and figures are all absent says so, with the reason from ``notes``. Patient
identifiers are removed unless ``include_identifiers=True``. Nothing is recomputed here: the report
only lays out what the study computed.
"""
from __future__ import annotations

import base64
import datetime as _dt
import json
import re
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import yaml

from .. import __version__
from ..study.record import SPLIT_SUFFIX, caption
from . import summary as sm
from . import tables as tb
from .tripod import ChecklistItem, items_for_section, load_checklist

TEMPLATES = Path(__file__).resolve().parent / "templates"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    intro: tuple = ()             # (artefact keys, sentence or callable(st) -> sentence): said when a key is present
    tables: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    always: bool = False          # built from provenance/config, present whenever those are


def _fusion_models(st) -> str:
    fw = st.tables["fusion_weights"]
    names = list(dict.fromkeys(fw["model"].astype(str))) if "model" in fw else []
    return "Fusion weights" + (f" ({'; '.join(names)})." if names else ".")


def _adjusted(st) -> str:
    a = st.tables["adjusted_cox"]
    models = [m for m in a["model"].astype(str).unique() if m != "unadjusted"] if "model" in a else []
    return "The risk group's hazard ratio unadjusted" + (f" and {'; '.join(models)}." if models else ".")


def _ci(r) -> str:
    return f"{r['estimate']:.2f} (95% CI {r['lower']:.2f} to {r['upper']:.2f}; p = {r['p']:.2g})"


def _landmark(st) -> str:
    t = st.tables["landmark_response"]
    parts = [f"{SPLIT_SUFFIX.get(r['split'], r['split'])} HR {_ci(r)}, {int(r['n_landmark'])} patients, "
             f"{int(r['events'])} deaths" for _, r in t.iterrows()]
    return ("Observed 3-month response and overall survival counted from the 3-month landmark, in patients alive and "
            "under follow-up at 3 months (Cox, responder vs non-responder): " + "; ".join(parts) + ".")


def _correlation(st) -> str:
    t = st.tables["response_risk_correlation"]
    parts = [f"{SPLIT_SUFFIX.get(r['split'], r['split'])} ({r['predictions']}) rho {_ci(r)}" for _, r in t.iterrows()]
    return "Spearman correlation of the PRIME-R probability and the PRIME-S risk score: " + "; ".join(parts) + "."


def _divergence(st) -> str:
    t = st.tables["paradox_divergence"]
    label = {"divergence": "interaction", "added value": "predicted response adjusted for PRIME-S"}
    parts = [f"{SPLIT_SUFFIX.get(r['split'], r['split'])}: {label[r['test']]} HR {_ci(r)}"
             for _, r in t[t["test"].isin(list(label))].iterrows()]
    return ("The quadrant hazard ratio measures PRIME-S among predicted responders only and would be as large with a "
            "PRIME-R that guessed at random. The tests whose null a random PRIME-R satisfies are the Cox interaction "
            "of PRIME-S risk with predicted response and predicted response adjusted for PRIME-S risk: "
            + "; ".join(parts) + ".")


def _omics_samples(st) -> str:
    t = st.tables["omics_samples"]
    t = t[t["model"] == t["model"].iloc[0]].groupby(["split", "predictions"])["n"].sum()
    parts = [f"{n} {SPLIT_SUFFIX.get(sp, sp)} ({src} predictions)" for (sp, src), n in t.items()]
    return ("Expression samples, grouped only by predictions of models not fitted on them: " + ", ".join(parts) + ".")


def _go(st) -> str:
    parts = []
    for key in ("go", "go_survival"):
        if key in st.tables and len(st.tables[key]):
            t = st.tables[key].iloc[0]
            parts.append(f"{t['model']}: query {t['query']}, universe {int(t['n_universe'])} measured genes with a GO "
                         f"annotation, {len(st.tables[key])} terms tested; {t['method']}")
    return "GO Biological Process over-representation of the differentially expressed genes (" + "; ".join(parts) + ")."


RECIPES = {"stable": "no univariate screen; radiomics reduced to one feature per cluster of |r| >= 0.9, then "
                     "stability selection of the elastic-net path repeated over resamples inside each modality "
                     "pipeline, then the learner",
           "paper": "the paper's recipe: univariate screen (response: logistic p < 0.05; survival: Cox-lasso), "
                    "then elastic-net selection, then the learner"}
LEARNER_RULES = {"best": "the candidate learner with the highest cross-validated score, the paper's rule",
                 "one_se": "the simplest candidate learner whose cross-validated score is within one standard "
                           "error of the best (Breiman et al. 1984)"}


def _selection(st) -> str:
    """The selection recipe and learner-choice rule of the resolved configuration, and the learners they kept."""
    m = st.config.get("models") or {}
    recipe, rule = m.get("recipe"), m.get("learner_choice")
    said = (f"Feature selection recipe '{recipe}' ({RECIPES.get(recipe, 'as configured')}); learner choice "
            f"'{rule}' ({LEARNER_RULES.get(rule, 'as configured')}), per modality over the cross-validated "
            "tuning of every candidate learner.")
    t = st.tables.get("tuning")
    if t is not None and {"model", "feature_kind", "learner", "chosen"} <= set(t.columns):
        kept = t[t["chosen"].astype(str).str.lower() == "true"]
        n = t.groupby(["model", "feature_kind"]).size()
        said += " Kept: " + "; ".join(f"{r.model} {r.feature_kind}: {r.learner} (of {n[(r.model, r.feature_kind)]})"
                                      for r in kept.itertuples()) + "."
    return said


def _frozen_shap(st) -> str:
    """Which SHAP explains the frozen, validated models, and on which patients."""
    keys = [(k, what) for k, what in (("shap_frozen_response", "PRIME-R's probability of response"),
                                      ("shap_frozen_survival", "PRIME-S's risk score")) if k in st.tables]
    t = st.tables[keys[0][0]]
    said = [f"explained rows: {t['explained'].iloc[0]}"] if "explained" in t else []
    bg = re.search(r"background \d+ training rows", str(t["method"].iloc[0])) if "method" in t else None
    said += [bg.group(0)] if bg else []
    return (f"SHAP of the frozen model, the one that was validated: {' and '.join(w for _, w in keys)}"
            + (f" ({'; '.join(said)}; the engine is in each table's note)." if said else "."))


def _cv_shap(st) -> str:
    k = (st.config.get("explain") or {}).get("cv")
    return ("CV-averaged SHAP of fast-grid refits: PRIME-R and PRIME-S refitted with the fast grids on the "
            f"features the frozen models selected and with the learners their predictions use, in "
            f"{f'{k}-fold' if k else 'K-fold'} cross-validation of the training split, each refit explaining its "
            "held-out fold (a description of the frozen models' choices, not of the frozen models themselves).")


def _survshap(st) -> str:
    t = st.tables["survshap"]
    rows = f" (explained rows: {t['explained'].iloc[0]})" if "explained" in t else ""
    return f"SurvSHAP(t) of the frozen PRIME-S{rows}."


CAL_FIGURES = ("calibration_test", "calibration_external", "calibration_survival_test",
               "calibration_survival_external")
SECTIONS: tuple[Section, ...] = (
    Section("summary", "Summary", ((("metrics",), "The headline validated estimates per endpoint, computed from "
                                                   "this run's tables."),)),
    Section("design", "Study design and data use",
            ((("*config",), "How the centres were used, the endpoints and horizons, and the analysis settings, read "
                            "from the resolved study configuration."),), always=True),
    Section("flow", "Participant flow", ((("flow", "flow_diagram"), "Participants and outcome events in each "
                                                                    "analysis set."),
                                         (("followup",), "Follow-up by the reverse Kaplan-Meier method.")),
            ("flow", "followup"), ("flow_diagram",)),
    Section("table1", "Participant characteristics",
            ((("table1",), "Baseline characteristics by analysis set, with the test used for each comparison and "
                           "the standardised mean difference (SMD)."),), ("table1",)),
    Section("missingness", "Missing data",
            ((("missingness",), "Missing values per candidate predictor before any exclusion or imputation."),
             (("*imputation",), lambda st: f"Imputation: {st.notes['imputation']}.")), ("missingness",)),
    Section("reproducibility", "Radiomic feature reproducibility",
            ((("icc_summary",), "Inter- and intra-observer agreement (ICC) of the radiomic features and how many "
                                "passed the reproducibility filter."),), ("icc_summary",)),
    Section("specification", "Model specification",
            ((("features_response", "features_survival"), "The selected predictors with their coefficients or "
                                                           "importances."),
             (("tuning",), _selection),
             (("hyperparameters",), "The tuned hyperparameters."), (("fusion_weights",), _fusion_models),
             (("correlation_response", "correlation_survival"), "The correlation of the selected predictors "
                                                                 "(training split).")),
            ("features_response", "features_survival", "tuning", "hyperparameters", "fusion_weights"),
            ("correlation_response", "correlation_survival")),
    Section("performance", "Model performance",
            ((("metrics",), "Every model in every validation set, with 95% confidence intervals."),),
            ("metrics", "optimism")),
    Section("discrimination", "Discrimination",
            ((("discrimination_summary",), "Every model's AUC, Harrell's and Uno's C in every split."),
             (("roc_test", "roc_external"), "ROC curves of the response models."),
             (("td_auc",), "Time-dependent AUC of the survival models."),
             (("survival_contrasts",), "PRIME-S against each other survival model: paired bootstrap differences "
                                       "of the C-indices and AUC(t).")),
            ("survival_contrasts",), ("discrimination_summary", "roc_test", "roc_external", "td_auc",
                                      "survival_contrasts")),
    Section("calibration", "Calibration and overall accuracy",
            ((("*calibration_metrics",), "Calibration intercept, slope and summary errors."),
             (CAL_FIGURES, "Calibration curves with their 95% bands."),
             (("brier_time",), "The Brier score over time.")),
            ("calibration_response", "calibration_survival"), CAL_FIGURES + ("brier_time",)),
    Section("utility", "Clinical utility",
            ((("decision_curve_test", "decision_curve_external", "decision_test", "decision_external"),
              "Decision-curve analysis of the response models: net benefit across threshold probabilities against "
              "treat-all and treat-none."),
             (("decision_curve_survival", "decision_survival_test", "decision_survival_external"),
              "Net benefit of the survival models at each horizon.")),
            ("decision_curve*",), ("decision_test", "decision_external", "decision_survival_test",
                                   "decision_survival_external")),
    Section("risk_groups", "Risk stratification",
            ((("km_groups", "logrank", "cox_hr", "km_test", "km_external"),
              "Patients split at the risk threshold frozen on the training data."),
             (("km_train", "km_test", "km_external"), "Kaplan-Meier curves with numbers at risk in every split "
                                                     "(training: apparent)."),
             (("km_medians",), "Median overall survival per group."),
             (("logrank",), "Log-rank tests."), (("cox_hr",), "Cox hazard ratios, high versus low risk."),
             (("logrank_treatment", "km_treatment_test", "km_treatment_external"), "Survival by treatment.")),
            ("km_medians", "km_groups", "logrank", "cox_hr", "logrank_treatment"),
            ("km_train", "km_test", "km_external", "km_treatment_train", "km_treatment_test",
             "km_treatment_external")),
    Section("subgroups", "Subgroup analyses",
            ((("subgroups", "forest_subgroups"), "Hazard ratio of the high- versus low-risk group within clinical "
                                                 "subgroups."),), ("subgroups",), ("forest_subgroups",)),
    Section("adjusted", "Adjusted Cox analysis",
            ((("adjusted_cox",), _adjusted),
             (("pooled_cox",), "The risk group's hazard ratio in all scored patients pooled, unadjusted and "
                               "adjusted for the prespecified covariates and the centre."),
             (("cox_zph",), "The proportional-hazards check (Schoenfeld residuals).")),
            ("adjusted_cox", "pooled_cox", "cox_zph"), ("pooled_cox",)),
    Section("explain", "Model explanations",
            ((("shap_frozen_response", "shap_frozen_survival"), _frozen_shap),
             (("shap_response", "shap_survival"), _cv_shap),
             (("survshap",), _survshap),
             (("divergence",), "The divergence between the predictors driving response and those driving "
                               "survival (CV-averaged SHAP).")),
            ("shap_frozen_response", "shap_frozen_survival", "shap_response", "shap_survival", "survshap",
             "divergence"),
            ("shap_frozen_response", "shap_frozen_survival", "shap_response", "shap_survival", "survshap",
             "divergence")),
    Section("paradox", "The responder paradox",
            ((("paradox", "paradox_hr", "paradox_km"), "Patients cross-classified by predicted response and predicted "
                                                        "survival risk (thresholds frozen on the training data), and "
                                                        "their survival, per split."),
             (("landmark_response",), _landmark), (("response_risk_correlation",), _correlation),
             (("paradox_divergence",), _divergence)),
            ("paradox", "paradox_hr", "landmark_response", "response_risk_correlation", "paradox_divergence"),
            ("paradox_km",)),
    Section("omics", "Transcriptomics",
            ((("omics_samples",), _omics_samples),
             (("de",), "Differential expression between PRIME-R predicted responders and non-responders."),
             (("de_survival",), "Differential expression between PRIME-S high- and low-risk patients."),
             (("gsea", "gsea_survival"), "Gene-set enrichment (GSEA, Hallmark) of each comparison."),
             (("go", "go_survival"), _go),
             (("ssgsea",), "ssGSEA scores."),
             (("immune", "immune_survival"), "Immune-cell infiltration (ssGSEA) by group.")),
            ("omics_samples", "de", "gsea", "go", "ssgsea", "immune", "de_survival", "gsea_survival", "go_survival",
             "immune_survival"),
            ("volcano", "gsea_enrichment", "immune", "volcano_survival", "gsea_enrichment_survival",
             "immune_survival")),
    Section("limitations", "Limitations",
            ((("sample_size", "flow", "missingness", "metrics"), "Limitations computed from this run's tables."),)),
    Section("provenance", "Provenance",
            ((("*provenance",), "What produced these numbers: software versions, the engine (R or Python) behind "
                                "each statistic, the random seed, SHA-256 hashes of the input files and the full "
                                "configuration."),), always=True),
)
SECTION_KEYS = tuple(s.key for s in SECTIONS) + ("additional", "checklist")

MAX_ROWS = {"table1": 400, "missingness": 80, "hyperparameters": 80, "de": 25, "gsea": 25, "ssgsea": 30,
            "immune": 30, "de_survival": 25, "gsea_survival": 25, "immune_survival": 30, "go": 25, "go_survival": 25,
            "shap_response": 20, "shap_survival": 20, "survshap": 20, "decision_curve": 60,
            "shap_frozen_response": 20, "shap_frozen_survival": 20}
# notes that are not about one artefact, shown in these sections (keys: analysis steps of study.py)
NOTE_SECTIONS = {"nested_cv": ("performance",), "shap_frozen": ("explain",), "response_figures": ("discrimination", "calibration", "utility"),
                 "survival_figures": ("discrimination", "calibration"), "risk_groups": ("risk_groups",),
                 "risk_cutoff": ("risk_groups",), "descriptive": ("table1", "missingness"),
                 "paradox_thresholds": ("paradox",), "shap": ("explain",),
                 "omics_response": ("omics",), "omics_survival": ("omics",), "go": ("omics",),
                 "go_response": ("omics",), "go_survival": ("omics",),
                 **{f"{k}_{sp}": ("paradox",) for sp in ("train", "test", "external")
                    for k in ("paradox", "landmark_response", "response_risk_correlation", "paradox_divergence")}}
CALIBRATION_METRICS = {"citl", "intercept", "slope", "o/e", "e/o", "ici", "eavg", "e50", "e90", "emax",
                       "calibration slope", "calibration intercept", "calibration-in-the-large"}
DEFAULT_MAX_ROWS = 40
# tables laid out by a computed section, or drawn as a figure, rather than listed under "Additional results"
SHOWN_ELSEWHERE = {"sample_size", "calibration_curves", "calibration_rug", "shap_frozen_values"}
RANKED = {"shap_response", "shap_survival", "shap_frozen_response", "shap_frozen_survival", "survshap",
          "features_response", "features_survival", "de", "gsea", "de_survival", "gsea_survival", "go", "go_survival"}
UNCLIPPED = {"hyperparameters", "tuning", "fusion_weights", "features_response", "features_survival"}  # model spec: whole
BY_MODEL = {"fusion_weights"}   # one table per model: PRIME-R's stacker coefficients and PRIME-S's weights differ in layout
KEEP_ROWS = 20            # tables up to this many rows are not split across pages
PER_PATIENT_ROWS = 20     # per-patient tables longer than this are summarised, not listed
FLOW_LABEL = {"train": "Training", "test": "Internal test", "external": "External validation"}
ENDPOINT_TITLE = {"response": "PRIME-R: 3-month objective response", "survival": "PRIME-S: overall survival"}


# ----------------------------------------------------------------------------------- the study
@dataclass
class _Study:
    root: Path
    provenance: dict
    config: dict
    tables: dict = field(default_factory=dict)      # key -> DataFrame
    figures: dict = field(default_factory=dict)     # key -> (bytes, width px, height px, dpi)
    engines: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)       # "table:key" / "figure:key" -> relative path
    unusable: dict = field(default_factory=dict)    # key -> reason
    figure_engines: dict = field(default_factory=dict)  # figure key -> "R" | "python"


def _weights_layout(df: pd.DataFrame) -> pd.DataFrame:
    """One model's fusion weights as read: its own columns, the term or member first, then the
    estimate and its interval; simplex weights (PRIME-S, with their interval) and shares to 3
    decimals, so that a weight the solver drove to 1e-300 reads 0."""
    df = df.dropna(axis=1, how="all")
    lead = [c for c in ("term", "feature_kind", "learner", "coefficient", "weight", "lower", "upper")
            if c in df]
    df = df[lead + [c for c in df.columns if c not in lead]].copy()
    on_simplex = ["weight", "lower", "upper", "share"] if "weight" in df else ["share"]
    for c in (c for c in on_simplex if c in df):
        df[c] = df[c].round(3)
    return df


def _png_size(data: bytes) -> tuple[int, int, float]:
    """Width and height in pixels and the resolution in dpi (pHYs chunk; 100 dpi, matplotlib's
    default, when the file does not say)."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG file")
    w, h = struct.unpack(">II", data[16:24])
    dpi, pos = 100.0, 8
    while pos + 8 <= len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        if ctype == b"pHYs" and length == 9:
            ppu_x, _, unit = struct.unpack(">IIB", data[pos + 8:pos + 17])
            if unit == 1 and ppu_x > 0:
                dpi = ppu_x * 0.0254
            break
        if ctype == b"IDAT":
            break
        pos += 12 + length
    return w, h, dpi


def _resolve(root: Path, rel: str, kind: str, key: str) -> Path:
    if not isinstance(rel, str) or not rel:
        raise ValueError(f"artefacts.json: {kind} {key!r} must map to a relative path, got {rel!r}")
    return (root / rel).resolve()


def _load_study(study_dir: Path) -> _Study:
    root = Path(study_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"study folder not found: {root}")
    art_path = root / "artefacts.json"
    if not art_path.is_file():
        raise FileNotFoundError(f"{art_path} not found: the report needs the artefacts index written by a study run")
    try:
        art = json.loads(art_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{art_path}: not valid JSON ({exc})") from exc
    for k in ("tables", "figures", "engines", "notes"):
        if not isinstance(art.get(k, {}), dict):
            raise ValueError(f"{art_path}: {k!r} must be a mapping of keys to values")
    prov_path = root / "provenance.json"
    prov = json.loads(prov_path.read_text()) if prov_path.is_file() else {}
    cfg_path = root / "config.resolved.yaml"
    cfg = (yaml.safe_load(cfg_path.read_text()) or {}) if cfg_path.is_file() else dict(prov.get("config") or {})
    st = _Study(root, prov, cfg, engines=dict(art.get("engines", {})),
                figure_engines=dict(art.get("figure_engines", {})),
                notes={str(k): str(v) for k, v in art.get("notes", {}).items()})
    for key, rel in art.get("tables", {}).items():
        p = _resolve(root, rel, "table", key)
        st.paths[f"table:{key}"] = rel
        if not p.is_file():
            st.unusable[f"table:{key}"] = f"listed in artefacts.json but {rel} was not found"
            continue
        try:
            st.tables[key] = pd.read_csv(p)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            st.unusable[f"table:{key}"] = f"{rel} could not be read as CSV ({exc})"
    for key, rel in art.get("figures", {}).items():
        p = _resolve(root, rel, "figure", key)
        st.paths[f"figure:{key}"] = rel
        if not p.is_file():
            st.unusable[f"figure:{key}"] = f"listed in artefacts.json but {rel} was not found"
            continue
        data = p.read_bytes()
        try:
            st.figures[key] = (data, *_png_size(data))
        except ValueError:
            st.unusable[f"figure:{key}"] = f"{rel} is not a PNG image"
    for k, why in st.unusable.items():
        warnings.warn(f"report: {k} skipped: {why}", stacklevel=3)
    return st


# ------------------------------------------------------------------------------------ rendering
class _Counter:
    def __init__(self):
        self.table = 0
        self.figure = 0


def _table_block(df: pd.DataFrame, caption: str, note: str, counter: _Counter, css: str = "") -> dict:
    counter.table += 1
    return {"kind": "table", "html": tb.to_html(df, f"Table {counter.table}. {caption}", css),
            "note": note, "keep": len(df) <= KEEP_ROWS}


CONTENT_MM = 172.0      # A4 text width in the stylesheet
MAX_FIG_MM = 225.0      # tallest figure on a page
PAIR_MM = 135.0         # figures up to this natural width may sit two to a row (>= 0.63 scale)
SINGLE_MM = 145.0       # a lone figure that is not wide (width <= 1.5 height) is kept to this width


def _figure(key: str, st: _Study, counter: _Counter, caption: str) -> dict:
    """A figure at its natural size (pixels / dpi), shrunk to fit the page."""
    data, w, h, dpi = st.figures[key]
    counter.figure += 1
    w_mm, h_mm = 25.4 * w / dpi, 25.4 * h / dpi
    width_cap = CONTENT_MM if w_mm > 1.5 * h_mm else SINGLE_MM
    scale = min(1.0, width_cap / w_mm, MAX_FIG_MM / h_mm)
    return {"src": "data:image/png;base64," + base64.b64encode(data).decode("ascii"),
            "caption": f"Figure {counter.figure}. {caption}", "alt": caption, "note": st.notes.get(key, ""),
            "natural_mm": w_mm, "width_mm": round(w_mm * scale, 1), "half": False}


class _Builder:
    def __init__(self, st: _Study, include_identifiers: bool):
        self.st = st
        self.ids = tb.Identifiers()
        self.include_identifiers = include_identifiers
        if not include_identifiers:
            for df in st.tables.values():
                self.ids.add_from(df)
            for name in ("predictions.csv", "split.csv"):
                p = st.root / name
                if p.is_file():
                    self.ids.add_from(pd.read_csv(p, nrows=100_000))
        self.counter = _Counter()

    def text(self, s: str) -> str:
        return s if self.include_identifiers else self.ids.scrub_text(s)

    def prepare(self, key: str, df: pd.DataFrame | None = None) -> tuple[pd.DataFrame, str]:
        df = self.st.tables[key] if df is None else df
        note = ""
        if not self.include_identifiers:
            df, dropped = self.ids.scrub_frame(df)
            if dropped:
                names = ["(unnamed index)" if c.startswith("Unnamed:") else c for c in dropped]
                note += f"Patient identifier column(s) removed: {', '.join(names)}. "
                if len(df) > PER_PATIENT_ROWS:
                    note += (f"Per-patient table ({len(df)} patients) summarised by column; the rows are in "
                             f"{self.st.paths[f'table:{key}']}. ")
                    return tb.summarise_rows(df), note
        wide = tb.decision_wide(df) if key.startswith("decision_curve") else None
        if wide is not None:
            df = wide
            note += "Net benefit per strategy. "
        if key in RANKED:
            ranked = tb.rank_rows(df)
            if ranked is not None:
                df = ranked[0]
                note += f"Ordered by {ranked[1]}. "
        df, short = tb.shorten(df, MAX_ROWS.get(key, MAX_ROWS.get(key.rpartition("_")[0], DEFAULT_MAX_ROWS)))
        df, hoisted = tb.tidy_for_display(df)
        return df, (note + short + hoisted).replace("the CSV file", self.st.paths[f"table:{key}"])

    def expand(self, keys, available) -> list[str]:
        """Artefact keys of a section: ``name*`` matches name, name_test, name_external, ..."""
        out = []
        for k in keys:
            if k.endswith("*"):
                base = k[:-1]
                hits = [a for a in available if a == base or a.startswith(base + "_")]
                order = {f"{base}_{s}": i for i, s in enumerate(SPLIT_SUFFIX)}
                out += sorted(hits, key=lambda a: (order.get(a, len(order)), a))
            elif k in available:
                out.append(k)
        return out

    def caption(self, key: str) -> str:
        return caption("table", key) or key

    def missing(self, kind: str, key: str) -> dict:
        what = caption(kind, key)
        reason = self.st.unusable.get(f"{kind}:{key}") or self.st.notes.get(key)
        no_test_split = ((self.st.config or {}).get("split") or {}).get("test_fraction") == 0
        if not reason and key.endswith("_test") and no_test_split:
            reason = ("not applicable: no internal test split (split.test_fraction 0: the whole development "
                      "centre is the training set)")
        reason = reason or "not produced by this study run"
        return {"kind": "missing", "what": f"{what or key} ({kind} '{key}')", "reason": self.text(reason)}

    def table(self, key: str, rows: pd.DataFrame | None = None, model: str = "") -> dict:
        df, note = self.prepare(key, rows)
        shown, clipped = tb.format_frame(df), ""
        if key not in UNCLIPPED:
            shown, clipped = tb.clip_text(shown)
        extra = self.st.notes.get(key, "")
        return _table_block(shown, self.caption(key) + (f": {model}" if model else ""),
                            self.text(f"{extra} {note}{clipped}").strip(), self.counter,
                            "t1" if key == "table1" else "")

    def tables(self, key: str) -> list[dict]:
        """A table's blocks: one per model for the tables in BY_MODEL (each with its own columns)."""
        df = self.st.tables[key]
        if key in BY_MODEL and "model" in df and df["model"].nunique() > 1:
            return [self.table(key, _weights_layout(df[df["model"] == m].drop(columns="model")), str(m))
                    for m in dict.fromkeys(df["model"])]
        return [self.table(key)]

    def figures(self, keys) -> dict:
        figs = []
        for k in keys:
            drawn = {"R": " Drawn by R (ggplot2 / survminer).", "python": " Drawn by Python (matplotlib)."}
            f = _figure(k, self.st, self.counter,
                        (caption("figure", k) or k) + drawn.get(self.st.figure_engines.get(k), ""))
            f["note"] = self.text(f["note"])
            figs.append(f)
        i = 0
        while i + 1 < len(figs):      # pair neighbours that stay readable at half the text width
            if figs[i]["natural_mm"] <= PAIR_MM and figs[i + 1]["natural_mm"] <= PAIR_MM:
                figs[i]["half"] = figs[i + 1]["half"] = True
                i += 2
            else:
                i += 1
        return {"kind": "figures", "items": figs}

    # ---------------------------------------------------------------- special sections
    def design(self) -> list[dict]:
        cfg = self.st.config or {}
        if not cfg:
            return [{"kind": "missing", "what": "study configuration (config.resolved.yaml)",
                     "reason": "config.resolved.yaml and provenance.json carry no configuration"}]
        g = lambda sec, k, d=None: (cfg.get(sec) or {}).get(k, d)  # noqa: E731
        tf = g("split", "test_fraction")
        cols = cfg.get("columns") or {}
        times = g("evaluation", "times") or []
        rows = [
            ("Development centre(s)", ", ".join(map(str, g("split", "development", []) or [])) or "not set"),
            ("External validation centre(s)", ", ".join(map(str, g("split", "external", []) or [])) or "none"),
            ("Development split", "not set" if not isinstance(tf, (int, float))
             else "none: the whole development centre is the training set (no internal test split)" if tf == 0
             else f"{1 - tf:.0%} training / {tf:.0%} internal test, stratified by {g('split', 'stratify', 'none')}"),
            ("Data use", self.data_use(g("models", "family", "prime"))),
            ("Response endpoint", f"{cols.get('response', 'response_3m')} (binary)" if cols.get("response", 1)
             else "none"),
            ("Survival endpoint", f"{cols.get('time', 'os_days')} (days), event indicator {cols.get('event', 'os_event')}"
             if cols.get("time", 1) and cols.get("event", 1) else "none"),
            ("Evaluation horizons", ", ".join(tb.fmt_time(t) for t in times) or "not set"),
            ("Missing-data rule", f"candidate predictors with more than {g('features', 'max_missing', 0.3):.0%} "
                                  "missing values in the training split excluded"
                                  if isinstance(g("features", "max_missing"), (int, float)) else "not set"),
            ("Models", self.models_row(g)),
            ("Internal validation", self.internal_validation()),
            ("Statistics engine requested", str(g("evaluation", "engine", "auto"))),
            ("Random seed", str(cfg.get("seed", self.st.provenance.get("seed", "not set")))),
        ]
        df = pd.DataFrame(rows, columns=["Setting", "Value"])
        return [_table_block(df.map(self.text), "Study design", "", self.counter, "kv")]

    def data_use(self, family: str) -> str:
        steps = ("imputation, scaling, feature selection, hyperparameter tuning and fusion" if family == "prime"
                 else "imputation, scaling and the penalised regression")
        f = self.st.tables.get("flow")
        splits = set(f["split"].astype(str)) if f is not None and "split" in f else set()
        rec = [lab for k, lab in (("test", "the internal test split"), ("external", "the external centre(s)"))
               if k in splits]
        return (f"Every learned step ({steps}) is fitted on the training split only"
                + (f"; {' and '.join(rec)} received the frozen models." if rec else "."))

    def models_row(self, g) -> str:
        fam = g("models", "family", "?")
        if fam != "prime":
            return f"{fam} (ridge logistic and ridge Cox regression on the clinical predictors)" \
                if fam == "baseline" else str(fam)
        return (f"PRIME (selection recipe '{g('models', 'recipe', '?')}', learner choice "
                f"'{g('models', 'learner_choice', '?')}', survival model averaging "
                f"'{g('models', 'averaging', '?')}'" + (", fast grids)" if g("models", "fast") else ")"))

    def internal_validation(self) -> str:
        m = self.st.tables.get("metrics")
        splits = set(m["split"].astype(str)) if m is not None and "split" in m else set()
        said = []
        if "train" in splits:
            said.append("apparent performance on the training split")
        if "nested_cv" in splits:
            said.append("nested cross-validation within the training split")
        if "optimism_corrected" in splits:
            b = (self.st.config.get("evaluation") or {}).get("bootstrap")
            said.append(f"Harrell's bootstrap optimism correction ({b} replicates)" if b else
                        "Harrell's bootstrap optimism correction")
        return "; ".join(said) if said else "none in this run"

    def flow_diagram(self) -> dict | None:
        f = self.st.tables.get("flow")
        if f is None or not {"split", "n"} <= set(f.columns):
            return None
        boxes = []
        for r in f.to_dict("records"):
            lines = [f"n = {tb.fmt_num(r['n']) if not float(r['n']).is_integer() else int(r['n'])}"]
            for c, lab in (("responders", "responders"), ("deaths", "deaths"), ("events", "events")):
                if c in r and pd.notna(r[c]):
                    lines.append(f"{int(r[c])} {lab}")
            centre = f" (centre {r['centre']})" if "centre" in r and pd.notna(r.get("centre")) else ""
            boxes.append({"title": FLOW_LABEL.get(str(r["split"]), str(r["split"]).capitalize()) + centre,
                          "lines": lines})
        return {"kind": "flow", "boxes": boxes}

    @staticmethod
    def clipping_note(curves: pd.DataFrame) -> str:
        """Which models had predictions of exactly 0 or 1 moved inside (0, 1) for the calibration curves."""
        if "n_clipped" not in curves:
            return ""
        keys = [c for c in ("endpoint", "split", "horizon", "model") if c in curves]
        per = curves.groupby(keys, dropna=False)["n_clipped"].first()
        per = per[per > 0]
        if per.empty:
            return ""
        parts = []
        for idx, k in per.items():
            d = dict(zip(keys, idx if isinstance(idx, tuple) else (idx,)))
            where = f"{d.get('model')}, {d.get('split', '')}" + (f" at {tb.fmt_time(d['horizon'])}"
                                                                  if pd.notna(d.get("horizon")) else "")
            parts.append(f"{where}: {int(k)} of {int(curves.loc[curves['model'] == d.get('model'), 'n'].iloc[0])}")
        return ("Predicted probabilities or risks of exactly 0 or 1 have an infinite logit/cloglog; they were moved "
                "to 1e-6 / 1 - 1e-6 before the calibration curves and statistics (rms::val.prob instead drops them): "
                + "; ".join(parts) + ".")

    def metrics_frame(self, calibration: bool) -> pd.DataFrame:
        """The tidy metrics table: calibration measures only, or everything else."""
        df = self.st.tables.get("metrics")
        if df is None or "metric" not in df.columns:
            return pd.DataFrame()
        if not self.include_identifiers:
            df = self.ids.scrub_frame(df)[0]
        is_cal = df["metric"].astype(str).str.lower().isin(CALIBRATION_METRICS)
        return df[is_cal if calibration else ~is_cal]

    def performance(self, calibration: bool = False) -> list[dict]:
        df = self.metrics_frame(calibration)
        what = "Calibration" if calibration else "Discrimination and overall performance"
        blocks = []
        if not len(df):
            return blocks
        sparse = sm.sparse_horizons(self.st)
        for endpoint, wide, meth in tb.performance_tables(df, sparse=set(zip(sparse["split"], sparse["time"]))):
            blocks.append({"kind": "subheading", "text": ENDPOINT_TITLE.get(endpoint, endpoint or "All endpoints")})
            grey = wide.map(lambda v: str(v).endswith(tb.SPARSE_MARK)).to_numpy().any()
            blocks.append(_table_block(wide, f"{what}: estimate (95% CI) in each validation set",
                                       f"{tb.SPARSE_MARK} Greyed: fewer than {sm.MIN_AT_RISK} patients at risk or "
                                       "events by this horizon in this split; unstable, not used in the summary."
                                       if grey else "", self.counter, "perf"))
            if len(meth) == 1:
                blocks.append({"kind": "note", "text": "; ".join(f"{c}: {v}" for c, v in meth.iloc[0].items()) + "."})
            else:
                meth, same = tb.tidy_for_display(meth)
                blocks.append(_table_block(meth, "Methods and engines behind the estimates above", same,
                                           self.counter, "meth"))
        extra = self.st.notes.get("metrics", "")
        if extra and not calibration:
            blocks.append({"kind": "note", "text": self.text(extra)})
        return blocks

    def provenance(self) -> list[dict]:
        p, blocks = self.st.provenance, []
        if not p:
            blocks.append({"kind": "missing", "what": "provenance.json", "reason": "not found in the study folder"})
        else:
            sw = [("prime-stats", p.get("prime_stats", __version__)), ("Python", p.get("python", "")),
                  ("R", p.get("R") or "not available"), ("Platform", p.get("platform", ""))]
            sw += [(k, v or "not installed") for k, v in (p.get("packages") or {}).items()]
            blocks.append(_table_block(pd.DataFrame(sw, columns=["Software", "Version"]).astype(str),
                                       "Software versions", "", self.counter, "kv"))
            run = [("Random seed", str(p.get("seed", ""))), ("Run time", f"{p.get('seconds', '?')} s"),
                   ("Report generated", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))]
            sc = p.get("stage_cache") or {}
            if sc.get("reused"):
                run.append(("Reused from the stage cache", ", ".join(sc["reused"]) + " (computed by an earlier "
                            "run on the same training data, outcomes, seed, settings and library versions)"))
            blocks.append(_table_block(pd.DataFrame(run, columns=["Item", "Value"]), "Run", "", self.counter, "kv"))
            hashes = p.get("data_sha256") or {}
            if hashes:
                blocks.append(_table_block(pd.DataFrame(list(hashes.items()), columns=["Input", "SHA-256"]),
                                           "Input data hashes", "", self.counter, "kv hash"))
        eng = dict(self.st.engines)
        m = self.st.tables.get("metrics")
        rows = [(k, v) for k, v in eng.items()]
        if m is not None and {"metric", "engine"} <= set(m.columns):
            per = m.groupby("metric", sort=False)["engine"].agg(lambda s: ", ".join(sorted(set(map(str, s.dropna())))))
            rows += [(f"performance: {k}", v) for k, v in per.items() if k not in eng]
        if rows:
            blocks.append(_table_block(pd.DataFrame(rows, columns=["Statistic", "Engine"]).astype(str),
                                       "Engine that computed each statistic", "", self.counter, "kv"))
        else:
            blocks.append({"kind": "missing", "what": "engines per statistic", "reason": "artefacts.json lists none"})
        shown = {k for s in SECTIONS for k in s.tables + s.figures + (s.key,)} | set(NOTE_SECTIONS)
        other = {k: v for k, v in self.st.notes.items() if k not in shown and k not in self.st.tables
                 and k not in self.st.figures}
        if other:
            blocks.append(_table_block(pd.DataFrame(list(other.items()), columns=["Note", "Text"]).map(self.text),
                                       "Run notes", "", self.counter, "kv"))
        if self.st.config:
            cfg_text = yaml.safe_dump(self.st.config, sort_keys=False)
            blocks.append({"kind": "pre", "title": "Resolved configuration (config.resolved.yaml)",
                           "text": self.text(cfg_text)})
        return blocks

    # ---------------------------------------------------------------- all sections
    def section(self, s: Section) -> tuple[list[dict], bool]:
        """Blocks of one section and whether it has any content."""
        if s.key == "design":
            return self.design(), bool(self.st.config)
        if s.key == "provenance":
            return self.provenance(), bool(self.st.provenance)
        if s.key in ("summary", "limitations"):
            made = (sm.summary_blocks if s.key == "summary" else sm.limitations_blocks)(self.st)
            blocks = [_table_block(tb.tidy_for_display(tb.format_frame(b["df"]))[0], self.caption(b["key"]), "",
                                   self.counter) if b["kind"] == "table_df" else
                      {**b, "text": self.text(b["text"])} if "text" in b else b for b in made]
            return blocks, any(b["kind"] != "missing" for b in blocks)
        blocks, present = [], False
        for k, secs in NOTE_SECTIONS.items():
            if s.key in secs and k in self.st.notes:
                blocks.append({"kind": "note", "text": self.text(f"{k.replace('_', ' ').capitalize()}: "
                                                                 f"{self.st.notes[k]}")})
        if s.key in self.st.notes:
            blocks.append({"kind": "note", "text": self.text(self.st.notes[s.key])})
        if s.key == "flow":
            d = self.flow_diagram()
            if d:
                blocks.append(d)
        tables = self.expand(s.tables, self.st.tables)
        figures = self.expand(s.figures, self.st.figures)
        covered = set()      # absent tables whose content the tidy metrics already give
        if s.key == "calibration" and "calibration_curves" in self.st.tables:
            note = self.clipping_note(self.st.tables["calibration_curves"])
            if note:
                blocks.append({"kind": "note", "text": note})
        if s.key == "calibration" and "metrics" in self.st.tables:
            cal = self.metrics_frame(calibration=True)
            if len(cal) and "endpoint" in cal.columns:
                try:
                    blocks += self.performance(calibration=True)
                    present = True
                    covered = {f"calibration_{e}" for e in cal["endpoint"].astype(str).unique()}
                except ValueError:
                    pass      # the performance section reports the malformed metrics table
        if s.key == "performance" and tables:
            try:
                blocks += self.performance()
                present = True
            except ValueError as exc:
                warnings.warn(f"report: table:metrics skipped: {exc}", stacklevel=2)
                blocks.append({"kind": "missing", "what": "performance table (table 'metrics')",
                               "reason": self.text(str(exc))})
        else:
            for k in tables:       # the section's tables, then its figures
                blocks += self.tables(k)
                present = True
            if figures:
                blocks.append(self.figures(figures))
                present = True
        absent = [("table", k.rstrip("*")) for k in s.tables
                  if not self.expand([k], self.st.tables) and k not in covered] + \
                 [("figure", k) for k in s.figures if k not in self.st.figures]
        missing = [self.missing(kind, k) for kind, k in absent]
        if not present and len(missing) > 1 and len({m["reason"] for m in missing}) == 1:
            # nothing at all, for one reason: say it once
            names = "; ".join(f"{kind}s {', '.join(repr(k) for kd, k in absent if kd == kind)}"
                              for kind in ("table", "figure") if any(kd == kind for kd, _ in absent))
            missing = [{"kind": "missing", "what": f"this section ({names})", "reason": missing[0]["reason"]}]
        blocks += missing
        return blocks, present

    def additional(self) -> list[dict]:
        blocks = []
        known_t = {k for s in SECTIONS for k in self.expand(s.tables, self.st.tables)}
        known_f = {k for s in SECTIONS for k in self.expand(s.figures, self.st.figures)}
        for k in self.st.tables:
            if k not in known_t and k not in SHOWN_ELSEWHERE:
                blocks.append(self.table(k))
        extra_f = [k for k in self.st.figures if k not in known_f]
        if extra_f:
            blocks.append(self.figures(extra_f))
        return blocks


SPLIT_ROLE = {"train": "apparent performance on the training split (optimistic by construction)",
              "nested_cv": "nested cross-validation of the whole modelling pipeline within the training split",
              "optimism_corrected": "Harrell's bootstrap optimism correction of the whole modelling pipeline",
              "test": "the internal test split, which received the frozen models",
              "external": "the external centre, which received the frozen models"}


def _has(st: _Study, key: str) -> bool:
    """Whether this run produced artefact ``key`` (``*name``: the configuration, provenance, a note, or
    calibration rows in the metrics table)."""
    if key == "*config":
        return bool(st.config)
    if key == "*provenance":
        return bool(st.provenance)
    if key == "*calibration_metrics":
        m = st.tables.get("metrics")
        return m is not None and "metric" in m and m["metric"].astype(str).str.lower().isin(CALIBRATION_METRICS).any()
    if key.startswith("*"):
        return key[1:] in st.notes
    return key in st.tables or key in st.figures


def _intro(s: Section, st: _Study) -> str:
    """A section's introduction, assembled from the sentences whose artefacts this run produced (never a
    fixed claim); for the performance section, the validation designs that ran."""
    said = [text(st) if callable(text) else text for keys, text in s.intro if any(_has(st, k) for k in keys)]
    if not said:
        return "This run produced nothing for this section; the notes below say why."
    if s.key == "performance" and "split" in st.tables["metrics"]:
        ran = [SPLIT_ROLE[k] for k in SPLIT_ROLE if k in set(st.tables["metrics"]["split"].astype(str))]
        if ran:
            said.append("This run estimated performance by: " + "; ".join(ran) + ".")
    return " ".join(said)


def _run_details(st: _Study) -> dict:
    """What this run itself says for the TRIPOD+AI items it can describe (from the configuration, the
    artefacts and the files in the study folder)."""
    cfg = st.config or {}
    g = lambda sec, k, d=None: (cfg.get(sec) or {}).get(k, d)  # noqa: E731
    data = cfg.get("data") or {}
    cols = cfg.get("columns") or {}
    out = {"5a": "Data files: " + ", ".join(f"{k} = {v}" for k, v in data.items() if v)
                 + f"; development centre(s) {', '.join(map(str, g('split', 'development', []) or []))}, "
                   f"external centre(s) {', '.join(map(str, g('split', 'external', []) or [])) or 'none'}."}
    if data.get("features"):
        pre = f"Radiomic features read precomputed from {data['features']} (no image pre-processing in this run)"
    elif data.get("manifest"):
        pre = ("Images pre-processed and features extracted with the radiomics settings "
               f"{cfg.get('radiomics') or 'defaults'}; ICC filter > {g('reproducibility', 'icc_threshold')} "
               f"({g('reproducibility', 'icc_type')})")
    else:
        pre = "No imaging data in this run (clinical predictors only)"
    out["7"] = pre + "."
    ends = []
    if cols.get("response"):
        ends.append(f"response: {cols['response']} (binary)")
    if cols.get("time") and cols.get("event"):
        ends.append(f"survival: {cols['time']} with event {cols['event']}, horizons "
                    + ", ".join(tb.fmt_time(t) for t in g("evaluation", "times", []) or []))
    out["8a"] = "Outcomes " + "; ".join(ends) + "." if ends else ""
    ss = st.tables.get("sample_size")
    n_par = f"{int(ss['parameters'].iloc[0])} candidate predictor parameters; " if ss is not None and len(ss) else ""
    fam = g("models", "family", "?")
    out["9a"] = n_par + (f"selection recipe '{g('models', 'recipe')}' within each modality pipeline, learner "
                         f"choice '{g('models', 'learner_choice')}', fitted on the training split" if fam == "prime"
                         else "all clinical predictors, ridge-penalised") + "."
    miss = [f"more than {g('features', 'max_missing'):.0%} missing in training: excluded"
            if isinstance(g("features", "max_missing"), (int, float)) else ""]
    if "imputation" in st.notes:
        miss.append(f"then {st.notes['imputation']}")
    out["11"] = "; ".join(m for m in miss if m) + "."
    m = st.tables.get("metrics")
    splits = set(m["split"].astype(str)) if m is not None and "split" in m else set()
    iv = [lab for k, lab in (("nested_cv", "nested CV"), ("optimism_corrected", "bootstrap optimism correction"))
          if k in splits]
    out["12c"] = (f"Model family {fam}" + (f" ({'fast' if g('models', 'fast') else 'full'} tuning grids)"
                                            if fam == "prime" else "")
                  + "; internal validation: " + (", ".join(iv) if iv else "apparent performance only") + ".")
    if m is not None and "metric" in m:
        out["12e"] = "Measures in this run: " + ", ".join(dict.fromkeys(m["metric"].astype(str))) + "."
    f = st.tables.get("flow")
    if f is not None and {"split", "n"} <= set(f.columns):
        out["20a"] = "; ".join(f"{FLOW_LABEL.get(str(r['split']), r['split'])} n = {int(r['n'])}"
                               for r in f.to_dict("records")) + "."
    files = sorted(p.name for p in (st.root / "models").glob("*.skops")) if (st.root / "models").is_dir() else []
    if files:
        out["22"] = (f"Frozen models saved with skops in models/ ({', '.join(files)}); "
                     "prime_stats.study.FrozenStudy.load(study folder) scores new patients.")
    if {"test", "external"} & splits:
        out["23b"] = ("Performance reported separately for "
                      + " and ".join(SPLIT_ROLE[k].split(",")[0] for k in ("test", "external") if k in splits) + ".")
    return {k: v for k, v in out.items() if v}


def _checklist_rows(items: list[ChecklistItem], present: dict, numbers: dict, titles: dict,
                    details: dict | None = None) -> list[dict]:
    rows, details = [], details or {}
    for it in items:
        links = [k for k in it.sections if present.get(k)]
        see = [k for k in it.see if present.get(k)]
        if it.sections and links and it.partial:
            status, cls = f"Partly addressed; missing: {it.partial}", "partial"
        elif it.sections and links:
            status, cls = "Addressed", "auto"
        elif it.sections:
            status, cls = "Not available in this run: for the authors", "na"
        else:
            status, cls = "For the authors", "authors"
        note = " ".join(x for x in (f"This run: {details[it.id]}" if it.id in details and links else "", it.note) if x)
        rows.append({"id": it.id, "part": it.part, "topic": it.topic if it.topic == it.part else f"{it.part}: {it.topic}", "text": it.text, "status": status,
                     "cls": cls, "note": note,
                     "links": [{"href": f"#sec-{k}", "label": f"§{numbers[k]} {titles[k]}"} for k in links + see]})
    return rows


def render_html(study_dir: str | Path, include_identifiers: bool = False, title: str | None = None) -> tuple[str, list[str]]:
    """The report as one self-contained HTML string, and the keys of sections with no content."""
    page, missing, _ = _render(study_dir, include_identifiers, title)
    return page, missing


def _render(study_dir, include_identifiers: bool, title: str | None) -> tuple[str, list[str], list[dict]]:
    import jinja2

    st = _load_study(Path(study_dir))
    items = load_checklist(known_sections=SECTION_KEYS)
    b = _Builder(st, include_identifiers)
    sections, present, missing = [], {}, []
    for i, s in enumerate(SECTIONS, start=1):
        blocks, has = b.section(s)
        present[s.key] = has
        if not has:
            missing.append(s.key)
        rep, sup = items_for_section(items, s.key)
        sections.append({"key": s.key, "number": i, "title": s.title, "intro": _intro(s, st), "blocks": blocks,
                         "reports": rep, "supports": sup, "present": has})
    extra = b.additional()
    if extra:
        n = len(sections) + 1
        sections.append({"key": "additional", "number": n, "title": "Additional results",
                         "intro": "Tables and figures in artefacts.json that no standard section covers.",
                         "blocks": extra, "reports": [], "supports": [], "present": True})
        present["additional"] = True
    numbers = {s["key"]: s["number"] for s in sections}
    titles = {s["key"]: s["title"] for s in sections}
    checklist = _checklist_rows(items, present, numbers, titles, _run_details(st))
    n_auto = sum(r["cls"] == "auto" for r in checklist)
    n_partial = sum(r["cls"] == "partial" for r in checklist)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    page = env.get_template("report.html.j2").render(
        title=title or "PRIME-R and PRIME-S: TRIPOD+AI validation report",
        subtitle=f"prime-stats {st.provenance.get('prime_stats', __version__)} · study folder “{st.root.resolve().name}” · "
                 f"generated {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        css=(TEMPLATES / "report.css").read_text(), sections=sections, checklist=checklist,
        checklist_number=len(sections) + 1, n_auto=n_auto, n_partial=n_partial, n_items=len(checklist),
        identifiers_included=include_identifiers, missing=missing)
    return page, missing, checklist


def build_report(study_dir, out_html=None, out_pdf=None, include_identifiers: bool = False,
                 title: str | None = None) -> dict:
    """Write the study's TRIPOD+AI report: ``report.html`` (self-contained: CSS inline, figures as
    data URIs) and ``report.pdf`` (WeasyPrint), by default into ``study_dir``, and the filled
    checklist ``tripod_ai_checklist.csv`` (item, status, report sections and their PDF pages) beside
    the PDF, for the journal submission.

    Returns ``{"html": path, "pdf": path, "checklist": path, "missing_sections": [section keys with
    no content]}`` (paths as strings, so the R front end receives plain character values).
    Patient identifiers (id/name/mrn-like columns and their values) are removed unless
    ``include_identifiers=True``.
    """
    root = Path(study_dir)
    page, missing, checklist = _render(root, include_identifiers, title)
    out_html = Path(out_html) if out_html else root / "report.html"
    out_pdf = Path(out_pdf) if out_pdf else root / "report.pdf"
    out_html.write_text(page, encoding="utf-8")
    pages = _write_pdf(page, out_pdf)
    out_csv = out_pdf.with_name("tripod_ai_checklist.csv")
    rows = [{"item": r["id"], "topic": r["topic"], "recommendation": r["text"], "status": r["status"],
             "report_sections": "; ".join(link["label"] for link in r["links"]),
             "pdf_pages": ", ".join(str(pages[link["href"][1:]]) for link in r["links"] if link["href"][1:] in pages),
             "note": r["note"]} for r in checklist]
    pd.DataFrame(rows).to_csv(out_csv, index=False)
    return {"html": str(out_html), "pdf": str(out_pdf), "checklist": str(out_csv), "missing_sections": missing}


def write_pdf(page: str, out_pdf: str | Path) -> Path:
    """Render the report HTML to PDF with WeasyPrint (no network access: every resource is inline)."""
    _write_pdf(page, out_pdf)
    return Path(out_pdf)


def _write_pdf(page: str, out_pdf) -> dict:
    """Write the PDF; return the page number (1-based) of every anchor."""
    import logging

    import weasyprint

    logging.getLogger("fontTools").setLevel(logging.ERROR)
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    fetcher_class = getattr(weasyprint.urls, "URLFetcher", None)
    if fetcher_class is not None:      # WeasyPrint >= 66: refuse everything but data: URIs
        fetcher = fetcher_class(allowed_protocols={"data"}, fail_on_errors=True)
    else:
        def fetcher(url, *args, **kwargs):
            if not url.startswith("data:"):
                raise ValueError(f"report refers to an external resource {url!r}; it must be self-contained")
            return weasyprint.default_url_fetcher(url, *args, **kwargs)
    doc = weasyprint.HTML(string=page, url_fetcher=fetcher).render()
    doc.write_pdf(str(out_pdf))
    pages: dict = {}
    for i, pg in enumerate(doc.pages, start=1):
        for anchor in pg.anchors:          # a section running over pages: its first page
            pages.setdefault(anchor, i)
    return pages


__all__ = ["build_report", "render_html", "write_pdf", "SECTIONS", "SECTION_KEYS"]
