"""The study's figures, drawn from the tables and results the analyses stage stored; nothing here
computes a statistic that a table reports."""
from __future__ import annotations

import pandas as pd

from ..report import figures as F
from ..report import figures_data as FD
from ..report.figures_data import DAYS_PER_MONTH
from ..report import figures_explain as fe
from ..report import figures_validation as fv
from .predictions import SPLIT_LABELS, Predictions
from .record import Artefacts



def _one_split(table: pd.DataFrame, split: str, **where) -> pd.DataFrame:
    g = table[table["split"] == split]
    for col, value in where.items():
        g = g[g[col].astype(str) == str(value)]
    return g.drop(columns="split")


def _draw(art: Artefacts, key: str, fig):
    art.figure(key, fig, engine=F.figure_engine(fig))


def response_figures(art: Artefacts, pred: Predictions, engine: str):
    """ROC curves (from the stored predictions), calibration and decision curves (from their stored
    tables) of the response models per validation split."""
    if not pred.response:
        return
    for split, g, y, probs in pred.response_by_split():
        label = SPLIT_LABELS[split]
        art.figure(f"roc_{split}", fv.plot_roc(y, probs, title=f"ROC, {label} (n={len(g)})"))
        if "calibration_curves" in art.tables:
            curves = _one_split(art.tables["calibration_curves"], split, endpoint="response")
            if len(curves):
                rug = _one_split(art.tables["calibration_rug"], split, endpoint="response")
                _draw(art, f"calibration_{split}", F.calibration_figure(curves, rug, engine,
                                                                        title=f"Calibration, {label}"))
        if f"decision_curve_{split}" in art.tables:
            _draw(art, f"decision_{split}", F.decision_curve_figure(art.tables[f"decision_curve_{split}"], engine,
                                                                    title=f"Decision curves, {label}"))


def survival_model_figures(art: Artefacts, engine: str):
    """Calibration at 12/24 months and decision curves at each horizon of the survival models, per
    validation split, from their stored tables."""
    for split in ("test", "external"):
        label = SPLIT_LABELS[split]
        if "calibration_curves" in art.tables:
            curves = _one_split(art.tables["calibration_curves"], split, endpoint="survival")
            if len(curves):
                rug = _one_split(art.tables["calibration_rug"], split, endpoint="survival")
                _draw(art, f"calibration_survival_{split}",
                      F.calibration_figure(curves, rug, engine, title=f"Calibration of the survival models, {label}"))
        if "decision_curve_survival" in art.tables:
            nb = _one_split(art.tables["decision_curve_survival"], split)
            if len(nb):
                _draw(art, f"decision_survival_{split}",
                      F.decision_curve_figure(nb, engine, title=f"Decision curves by the horizon, {label}"))


def survival_figures(art: Artefacts, metrics: pd.DataFrame):
    """Time-dependent AUC and Brier score of every survival model on the external split."""
    if "endpoint" not in metrics:
        return
    ext = metrics[(metrics["endpoint"] == "survival") & (metrics["split"] == "external")
                  & metrics["metric"].isin(["AUC(t)", "Brier"])]
    if len(ext):
        art.figure("td_auc", fv.plot_time_dependent(ext, metrics=("AUC(t)",), time_scale=DAYS_PER_MONTH,
                                                    time_label="Months", title="Time-dependent AUC, external"))
        art.figure("brier_time", fv.plot_time_dependent(ext, metrics=("Brier",), time_scale=DAYS_PER_MONTH,
                                                        time_label="Months",
                                                        title="Brier score over time, external"))


def risk_group_figures(art: Artefacts, engine: str):
    """Kaplan-Meier curves of the frozen risk groups with numbers at risk, log-rank p and HR (high vs
    low) per validation split, and the subgroup forest plot, from their stored tables."""
    if "km_curves" in art.tables:
        for split in ("test", "external"):
            curves = _one_split(art.tables["km_curves"], split)
            if not len(curves):
                continue
            note = FD.km_annotation(_one_split(art.tables["logrank"], split), _one_split(art.tables["cox_hr"], split))
            _draw(art, f"km_{split}", F.km_figure(curves, _one_split(art.tables["km_at_risk"], split), note, engine,
                                                  groups={"low": "Low risk", "high": "High risk"},
                                                  title=f"PRIME-S risk groups, {SPLIT_LABELS[split]}"))
    if "subgroups" in art.tables:
        _draw(art, "forest_subgroups", F.forest_figure(art.tables["subgroups"], engine,
                                                       title="PRIME-S high vs low risk by subgroup, external"))


def paradox_figure(art: Artefacts, paradox_result):
    art.figure("paradox_km", fe.plot_paradox_km(paradox_result))


def explanation_figures(art: Artefacts, shap: dict, max_features: int):
    """SHAP beeswarms, the response-vs-survival divergence and SurvSHAP(t) curves."""
    for endpoint, name in (("response", "PRIME-R"), ("survival", "PRIME-S")):
        if endpoint in shap:
            art.figure(f"shap_{endpoint}", fe.plot_shap_beeswarm(shap[endpoint], max_features=max_features,
                                                                 title=f"{name}: cross-validated SHAP"))
    if "divergence" in art.tables:
        art.figure("divergence", fe.plot_divergence(art.tables["divergence"]))
    if "survshap" in shap:
        ss = shap["survshap"]
        top = list(shap["survival"].ranking["feature"][:6])
        art.figure("survshap", fe.plot_survshap(ss, features=[f for f in top if f in ss.features] or None,
                                                time_scale=DAYS_PER_MONTH, time_label="Months"))


def omics_figures(art: Artefacts, results: dict):
    """Volcano plot, the top GSEA enrichment plot and immune-infiltration boxplots."""
    art.figure("volcano", fe.plot_volcano(art.tables["de"], title="Predicted responders vs non-responders"))
    gs = results["gsea"]
    if gs is not None and len(gs.table):
        art.figure("gsea_enrichment", fe.plot_gsea_enrichment(gs, gs.table.iloc[0]["gene_set"]))
    art.figure("immune", fe.plot_score_boxplot(results["immune_scores"], results["groups"],
                                               comparison=art.tables["immune"]))
