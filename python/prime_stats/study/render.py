"""The study's figures, drawn from the tables and results the analyses stage stored; nothing here
computes a statistic that a table reports."""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..report import figures as F
from ..report import figures_data as FD
from ..report.figures_data import DAYS_PER_MONTH
from ..report import figures_explain as fe
from ..report import figures_summary as fs
from ..report import figures_validation as fv
from .predictions import PRIME_R, PRIME_S, SPLIT_LABELS, SPLITS, VALIDATION_SPLITS, Predictions
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
    for split in VALIDATION_SPLITS:
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
    if "survival_contrasts" in art.tables:
        art.figure("survival_contrasts", contrast_figure(art.tables["survival_contrasts"]))


def _metric_label(metric: str, method: str, time: float) -> str:
    if metric.startswith("C-index"):
        return "Uno's C" if "Uno" in str(method) else "Harrell's C"
    return f"AUC({time / DAYS_PER_MONTH:g} months)"


def contrast_figure(contrasts: pd.DataFrame):
    """PRIME-S minus each survival model, per metric and validation split (the stored paired-bootstrap
    table)."""
    c = contrasts.assign(panel=[_metric_label(m.replace(" difference", ""), me, t) for m, me, t in
                                zip(contrasts["metric"], contrasts["method"], contrasts["time"])],
                         row=contrasts["model"].str.replace(f"{PRIME_S} vs ", "vs ", regex=False))
    panels = [p for p in ("Harrell's C", "Uno's C") if p in set(c["panel"])] + \
        sorted({p for p in c["panel"] if p.startswith("AUC")}, key=lambda p: float(p[4:].split()[0]))
    return fs.interval_figure(c, "panel", "row", panels=panels, reference=0.0, xlim=(-0.5, 0.5),
                              xlabel="PRIME-S minus comparator (95% CI)",
                              title="Paired bootstrap differences in discrimination (positive favours PRIME-S)")


def flow_figure(art: Artefacts):
    """The patient-flow diagram from its stored table."""
    if "flow_diagram" in art.tables:
        art.figure("flow_diagram", fs.flow_diagram_figure(art.tables["flow_diagram"], title="Patient flow"))


def discrimination_figure(art: Artefacts, metrics: pd.DataFrame):
    """AUC of every response model and Harrell's and Uno's C of every survival model (early fusion
    included) in every split, from the metrics table."""
    if "metric" not in metrics:
        return
    m = metrics[metrics["split"].isin(SPLITS) & metrics["estimate"].notna()]
    resp = m[(m["endpoint"] == "response") & (m["metric"] == "AUC")].assign(panel="Response: AUC")
    c = m[(m["endpoint"] == "survival") & (m["metric"] == "C-index")]
    c = c.assign(panel=["Survival: " + _metric_label("C-index", me, np.nan) for me in c["method"]])
    d = pd.concat([resp, c], ignore_index=True)
    if d.empty:
        return
    fused = "PRIME-R / PRIME-S"
    d["model"] = d["model"].replace({PRIME_R: fused, PRIME_S: fused})
    art.figure("discrimination_summary", fs.interval_figure(
        d, "panel", "model", panels=["Response: AUC", "Survival: Harrell's C", "Survival: Uno's C"],
        rows=[fused] + [m for m in dict.fromkeys(d["model"]) if m != fused],
        reference=0.5, xlim=(0.2, 1.0), xlabel="Estimate (95% CI)",
        title="Discrimination in every split (training is apparent)"))


def correlation_figures(art: Artefacts):
    """Heatmaps of the selected predictors' correlations, from their stored tables."""
    for endpoint, name in (("response", "PRIME-R"), ("survival", "PRIME-S")):
        key = f"correlation_{endpoint}"
        if key in art.tables:
            art.figure(key, fs.correlation_heatmap(art.tables[key],
                                                   title=f"{name}: selected predictors, Spearman (training)"))


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


def _median_line(medians: pd.DataFrame, labels: dict) -> str | None:
    """'Median OS, months (95% CI): Low risk not reached; High risk 10.4 (6.5-20.9)' from the stored
    medians of one split and grouping, in the legend's order."""
    if medians is None or medians.empty:
        return None

    def months(v):
        return "NA" if pd.isna(v) else f"{v / DAYS_PER_MONTH:.1f}"

    by = medians.assign(group=medians["group"].astype(str)).set_index("group")
    parts = [f"{lab} not reached" if pd.isna(by.at[g, "median"]) else
             f"{lab} {months(by.at[g, 'median'])} ({months(by.at[g, 'lower'])}-{months(by.at[g, 'upper'])})"
             for g, lab in labels.items() if g in by.index]
    return "Median OS, months (95% CI): " + "; ".join(parts)


def risk_group_figures(art: Artefacts, engine: str):
    """Kaplan-Meier curves of the frozen risk groups (numbers at risk, log-rank p, HR high vs low, median
    OS) in every split, KM by treatment in every split, the subgroup forest plot and the adjusted hazard
    ratios, from their stored tables."""
    med = art.tables.get("km_medians")
    risk_labels = {"low": "Low risk", "high": "High risk"}
    for split in SPLITS:
        if "km_curves" in art.tables:
            curves = _one_split(art.tables["km_curves"], split)
            if len(curves):
                note = FD.km_annotation(_one_split(art.tables["logrank"], split),
                                        _one_split(art.tables["cox_hr"], split))
                text = "\n".join(x for x in (F.annotation_text(note), _median_line(
                    None if med is None else _one_split(med, split, grouping="PRIME-S risk group"), risk_labels)) if x)
                _draw(art, f"km_{split}", F.km_figure(curves, _one_split(art.tables["km_at_risk"], split), text, engine,
                                                      groups=risk_labels, title=f"PRIME-S risk groups, {SPLIT_LABELS[split]}"))
        if "km_treatment_curves" in art.tables:
            curves = _one_split(art.tables["km_treatment_curves"], split)
            if len(curves):
                arms = {g: g for g in sorted(curves["group"].astype(str).unique())}
                lr = _one_split(art.tables["logrank_treatment"], split)
                text = "\n".join(x for x in (F.annotation_text({"logrank_p": float(lr["p"].iloc[0])}), _median_line(
                    None if med is None else _one_split(med, split, grouping="treatment"), arms)) if x)
                _draw(art, f"km_treatment_{split}", F.km_figure(
                    curves, _one_split(art.tables["km_treatment_at_risk"], split), text, engine, groups=arms,
                    title=f"Overall survival by treatment, {SPLIT_LABELS[split]}"))
    if "subgroups" in art.tables:
        _draw(art, "forest_subgroups", F.forest_figure(art.tables["subgroups"], engine,
                                                       title="PRIME-S high vs low risk by subgroup, external"))
    frames = [art.tables[k].assign(population=p) for k, p in (("pooled_cox", "All patients pooled"),
                                                              ("adjusted_cox", "External"))
              if k in art.tables]
    if frames:
        art.figure("pooled_cox", adjusted_cox_figure(pd.concat(frames, ignore_index=True)))


def adjusted_cox_figure(table: pd.DataFrame):
    """Hazard ratios of the unadjusted and adjusted Cox models (one panel per population), log axis."""
    late = table["post_baseline"].fillna(False).astype(bool) if "post_baseline" in table else False
    terms = table["term"].astype(str).replace({"high_risk": "PRIME-S high vs low risk"})
    t = table.assign(split=["unadjusted" if m == "unadjusted" else "adjusted" for m in table["model"]],
                     term=np.where(late, terms + " (post-baseline)", terms))
    rows = ["PRIME-S high vs low risk"] + [x for x in dict.fromkeys(t["term"]) if x != "PRIME-S high vs low risk"]
    return fs.interval_figure(t, "population", "term", rows=rows, reference=1.0, log=True, xlim=(0.1, 20.0),
                              xlabel="Hazard ratio (95% CI, log scale)",
                              title="Cox models of the PRIME-S risk group, adjusted for the prespecified covariates")


def paradox_figure(art: Artefacts, paradox):
    """The quadrant Kaplan-Meier plot of one split (``paradox`` = (split, ParadoxResult)), named in the title."""
    split, res = paradox
    art.figure("paradox_km", fe.plot_paradox_km(
        res, title=f"Responder paradox, {SPLIT_LABELS[split]}: overall survival by PRIME-R x PRIME-S quadrant"))


def explanation_figures(art: Artefacts, shap: dict, max_features: int):
    """SHAP beeswarms, the response-vs-survival divergence and SurvSHAP(t) curves."""
    for endpoint, name in (("response", "PRIME-R"), ("survival", "PRIME-S")):
        if endpoint in shap:
            art.figure(f"shap_{endpoint}", fe.plot_shap_beeswarm(shap[endpoint], max_features=max_features,
                                                                 title=f"{name}: cross-validated SHAP of "
                                                                       "fast-grid refits"))
    if "divergence" in art.tables:
        art.figure("divergence", fe.plot_divergence(art.tables["divergence"]))
    if "survshap" in shap:
        ss = shap["survshap"]
        top = list(shap["survival"].ranking["feature"][:6])
        art.figure("survshap", fe.plot_survshap(ss, features=[f for f in top if f in ss.features] or None,
                                                time_scale=DAYS_PER_MONTH, time_label="Months"))


def frozen_explanation_figures(art: Artefacts, max_features: int):
    """Beeswarms of the frozen PRIME-R and PRIME-S SHAP values, from their stored tables."""
    from ..explain import ShapResult

    long = art.tables.get("shap_frozen_values")
    for endpoint, name, what in (("response", "PRIME-R", "P(response)"), ("survival", "PRIME-S", "the risk score")):
        key = f"shap_frozen_{endpoint}"
        if long is None or key not in art.tables:
            continue
        rank = art.tables[key]
        g = long[long["endpoint"] == endpoint]
        per_row = g.drop_duplicates("row").set_index("row")["split"]
        r = ShapResult(values=g.pivot(index="row", columns="feature", values="shap"),
                       data=g.pivot(index="row", columns="feature", values="value"),
                       base_values=np.full(len(per_row), np.nan), fold=per_row.to_numpy(),
                       fold_importance=pd.DataFrame(), ranking=rank, explainer=str(rank["method"].iloc[0]),
                       output=str(rank["output"].iloc[0]))
        who = ", ".join(f"{n} {s}" for s, n in per_row.value_counts().reindex(["test", "external"]).dropna()
                        .astype(int).items())
        art.figure(key, fe.plot_shap_beeswarm(
            r, max_features=max_features, title=f"{name}: SHAP of the frozen (validated) model ({who} patients)",
            xlabel=f"SHAP value of {what} ({r.output} scale), frozen model"))


def omics_figures(art: Artefacts, results: dict):
    """Per arm that ran (PRIME-R predicted groups; PRIME-S risk groups): volcano plot, the top GSEA
    enrichment plot and immune-infiltration boxplots."""
    titles = {"response": "PRIME-R predicted responders vs non-responders",
              "survival": "PRIME-S high vs low risk"}
    for endpoint, res in results.items():
        sfx = res["suffix"]
        art.figure(f"volcano{sfx}", fe.plot_volcano(art.tables[f"de{sfx}"], title=titles[endpoint]))
        gs = res["gsea"]
        if gs is not None and len(gs.table):
            art.figure(f"gsea_enrichment{sfx}", fe.plot_gsea_enrichment(gs, gs.table.iloc[0]["gene_set"]))
        art.figure(f"immune{sfx}", fe.plot_score_boxplot(res["immune_scores"], res["groups"],
                                                          comparison=art.tables[f"immune{sfx}"]))
