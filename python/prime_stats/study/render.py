"""The study's figures, drawn from the tables and results the analyses stage stored; nothing here
computes a statistic that a table reports."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..report import figures_explain as fe
from ..report import figures_survival as fsv
from ..report import figures_validation as fv
from .predictions import SPLIT_LABELS, Predictions
from .record import Artefacts

DAYS_PER_MONTH = 30.4375


def response_figures(art: Artefacts, pred: Predictions):
    """ROC, calibration of the main response model and decision curves per validation split."""
    cols = pred.columns
    if not pred.response:
        return
    for split in ("test", "external"):
        g = pred.in_split(split)
        y = g[cols.response].astype(int).to_numpy()
        if len(np.unique(y)) < 2:
            continue
        probs = {m: g[c].to_numpy() for m, c in pred.response.items()}
        label = SPLIT_LABELS[split]
        art.figure(f"roc_{split}", fv.plot_roc(y, probs, title=f"ROC, {label} (n={len(g)})"))
        main = next(iter(probs))
        art.figure(f"calibration_{split}", fv.plot_calibration(
            y, {main: probs[main]}, n_boot=100, title=f"Calibration of {main}, {label}"))
        if f"decision_curve_{split}" in art.tables:
            art.figure(f"decision_{split}", fv.plot_decision_curve(art.tables[f"decision_curve_{split}"],
                                                                   title=f"Decision curve, {label}"))


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


def risk_group_figures(art: Artefacts, groups: pd.DataFrame, pred: Predictions):
    """Kaplan-Meier curves of the frozen risk groups per validation split and the subgroup forest plot."""
    cols = pred.columns
    for split in ("test", "external"):
        g = groups[groups["split"] == split]
        if g["risk_group"].nunique() < 2 or g[cols.event].sum() < 3:
            continue
        art.figure(f"km_{split}", fsv.plot_kaplan_meier(
            g, cols.time, cols.event, group="risk_group", risk_times=[0, 6, 12, 24, 36],
            time_scale=DAYS_PER_MONTH, xlabel="Months", title=f"PRIME-S risk groups, {SPLIT_LABELS[split]}",
            group_labels={"low": "Low risk", "high": "High risk"}))
    if "subgroups" in art.tables:
        art.figure("forest_subgroups", fsv.plot_forest(art.tables["subgroups"],
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
