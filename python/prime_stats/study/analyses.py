"""The statistics stage of a study: frozen predictions in, tidy tables and figures out.

Nothing here fits a model on outcomes of the internal-test or external patients: thresholds
(median risk, responder cut-off) come from the training split, and every statistic is computed
per split from the predictions of the frozen models.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .cohort import CohortColumns  # noqa: E402
from .evaluation import decision, descriptive  # noqa: E402
from .evaluation import survival as surv  # noqa: E402
from .evaluation.score import score_binary, score_survival  # noqa: E402

EVAL_SPLITS = ("train", "test", "external")
SPLIT_LABELS = {"train": "training (apparent)", "test": "internal test", "external": "external"}
DAYS_PER_MONTH = 30.4375


@dataclass
class Artefacts:
    """Tables (DataFrames) and figures (PNG paths) produced for the report, plus notes."""
    out: Path
    tables: dict = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    notes: dict = field(default_factory=dict)
    engines: dict = field(default_factory=dict)

    def table(self, key: str, df: pd.DataFrame | None):
        if df is not None:
            self.tables[key] = df

    def figure(self, key: str, fig):
        folder = self.out / "figures"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{key}.png"
        fig.savefig(path, dpi=150, bbox_inches="tight")
        plt.close(fig)
        self.figures[key] = path

    def guarded(self, key: str, fn, *args, **kwargs):
        """Run one analysis; a failure is recorded as a note for the report instead of lost."""
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported, never swallowed silently
            warnings.warn(f"{key}: {type(exc).__name__}: {exc}", stacklevel=2)
            self.notes[key] = f"not computed: {type(exc).__name__}: {exc}"
            return None


def _engine(cfg_engine: str) -> str:
    return {"R": "R", "python": "python"}.get(cfg_engine, "auto")


# ---------------------------------------------------------------------------------- discrimination
def response_metrics(pred: pd.DataFrame, models: dict[str, str], cols: CohortColumns,
                     engine: str) -> pd.DataFrame:
    """score_binary per split for every response model (columns of ``pred`` named in ``models``)."""
    frames = []
    for split in EVAL_SPLITS:
        g = pred[pred["split"] == split]
        y = g[cols.response].astype(int).to_numpy()
        if len(g) < 10 or len(np.unique(y)) < 2:
            continue
        # probabilities of exactly 0 or 1 (e.g. from tree ensembles) have an infinite logit; they
        # are moved to 1e-6 / 1 - 1e-6 for the calibration regression (rms::val.prob cannot use them)
        res = score_binary(y, {m: np.clip(g[c].to_numpy(), 1e-6, 1 - 1e-6) for m, c in models.items()},
                           engine=_engine(engine), compare=split != "train")
        frames.append(res.assign(endpoint="response", split=split, n=len(g)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def survival_metrics(pred: pd.DataFrame, risk_cols: dict[str, str], surv_cols: dict[str, list[str]],
                     times: list[float], cols: CohortColumns, engine: str) -> pd.DataFrame:
    """score_survival per split: C-index for every model's risk score, AUC(t)/Brier(t)/IBS/IPA and
    calibration for models with a survival function (F(t|x) = 1 - S(t|x))."""
    frames = []
    for split in EVAL_SPLITS:
        g = pred[pred["split"] == split]
        if len(g) < 10 or g[cols.event].sum() < 3:
            continue
        t_ok = [t for t in times if t < g[cols.time].max()]
        idx = [times.index(t) for t in t_ok]
        # F(t|x) = 1 - S(t|x), kept inside (0, 1) for the cloglog calibration model
        risks = {m: np.clip(1 - g[c].to_numpy()[:, idx], 1e-6, 1 - 1e-6) for m, c in surv_cols.items()}
        res = score_survival(g[cols.time].to_numpy(float), g[cols.event].astype(int).to_numpy(), risks,
                             times=t_ok, risk_scores={m: g[c].to_numpy() for m, c in risk_cols.items()},
                             engine=_engine(engine))
        frames.append(res.assign(endpoint="survival", split=split, n=len(g)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# ---------------------------------------------------------------------------------------- figures
def response_figures(art: Artefacts, pred: pd.DataFrame, models: dict[str, str], cols: CohortColumns):
    from .report import figures_validation as fv

    for split in ("test", "external"):
        g = pred[pred["split"] == split]
        y = g[cols.response].astype(int).to_numpy()
        if len(np.unique(y)) < 2:
            continue
        probs = {m: g[c].to_numpy() for m, c in models.items()}
        label = SPLIT_LABELS[split]
        art.figure(f"roc_{split}", fv.plot_roc(y, probs, title=f"ROC, {label} (n={len(g)})"))
        main = next(iter(models))
        art.figure(f"calibration_{split}", fv.plot_calibration(
            y, {main: probs[main]}, n_boot=100, title=f"Calibration of {main}, {label}"))
        nb = decision.net_benefit(y, probs, thresholds=np.round(np.arange(0.05, 0.96, 0.01), 2))
        art.table(f"decision_curve_{split}", nb)
        art.figure(f"decision_{split}", fv.plot_decision_curve(nb, title=f"Decision curve, {label}"))


def survival_figures(art: Artefacts, metrics: pd.DataFrame):
    from .report import figures_validation as fv

    ext = metrics[(metrics["split"] == "external") & metrics["metric"].isin(["AUC(t)", "Brier"])]
    if len(ext):
        fig = fv.plot_time_dependent(ext, metrics=("AUC(t)",), time_scale=DAYS_PER_MONTH,
                                     time_label="Months", title="Time-dependent AUC, external")
        art.figure("td_auc", fig)
        fig = fv.plot_time_dependent(ext, metrics=("Brier",), time_scale=DAYS_PER_MONTH,
                                     time_label="Months", title="Brier score over time, external")
        art.figure("brier_time", fig)


# --------------------------------------------------------------------------- survival analyses
def risk_group_analyses(art: Artefacts, pred: pd.DataFrame, risk_col: str, cols: CohortColumns,
                        clinical: pd.DataFrame, engine: str):
    """Median-risk groups frozen from training; KM, log-rank, Cox HR, subgroups, adjusted Cox,
    PH check and reverse-KM follow-up per split."""
    eng = _engine(engine)
    strat = surv.MedianRiskStratifier().fit(pred.loc[pred["split"] == "train", risk_col].to_numpy())
    d = pred.copy()
    d["risk_group"] = np.asarray(strat.labels(d[risk_col].to_numpy())).astype(str)
    d["high_risk"] = (d["risk_group"] == "high").astype(int)
    art.notes["risk_cutoff"] = (f"PRIME-S median risk score in the training split = "
                                f"{strat.cutoff_:.4f}, frozen and applied to every split")
    km_rows, lr_rows, hr_rows, fu_rows, zph_rows = [], [], [], [], []
    for split in ("test", "external"):
        g = d[d["split"] == split]
        if g["risk_group"].nunique() < 2 or g[cols.event].sum() < 3:
            art.notes[f"risk_groups_{split}"] = f"{split}: fewer than 3 deaths or one risk group only"
            continue
        art.guarded(f"risk_groups_{split}", _risk_group_split, art, g, split, cols, eng,
                    km_rows, lr_rows, hr_rows, zph_rows, fu_rows)
    for key, rows in (("km_groups", km_rows), ("logrank", lr_rows), ("cox_hr", hr_rows),
                      ("cox_zph", zph_rows), ("followup", fu_rows)):
        if rows:
            art.table(key, pd.concat(rows, ignore_index=True))
    _subgroups_and_adjusted(art, d, cols, clinical, eng)
    return d[[cols.id, "risk_group"]]


def _risk_group_split(art, g, split, cols, eng, km_rows, lr_rows, hr_rows, zph_rows, fu_rows):
    from .report import figures_survival as fs

    kw = dict(time=cols.time, event=cols.event, id_col=cols.id)
    km = surv.kaplan_meier(g, group="risk_group", times=[182.625, 365.25, 730.5, 1095.75], **kw)
    km_rows.append(km.at_times.assign(split=split))
    lr_rows.append(surv.logrank_test(g, group="risk_group", engine=eng, **kw).assign(split=split))
    fu_rows.append(surv.median_followup(g, engine=eng, **kw).assign(split=split))
    art.figure(f"km_{split}", fs.plot_kaplan_meier(
        g, cols.time, cols.event, group="risk_group", risk_times=[0, 6, 12, 24, 36],
        time_scale=DAYS_PER_MONTH, xlabel="Months", title=f"PRIME-S risk groups, {SPLIT_LABELS[split]}",
        group_labels={"low": "Low risk", "high": "High risk"}))
    hr_rows.append(surv.cox_hazard_ratios(g, covariates=["high_risk"], engine=eng, **kw).assign(split=split))
    zph_rows.append(surv.cox_zph(g, covariates=["high_risk"], engine=eng, **kw).assign(split=split))


def _subgroups_and_adjusted(art, d, cols, clinical, eng):
    from .report import figures_survival as fs

    ext = d[d["split"] == "external"].merge(clinical, left_on=cols.id, right_index=True, how="left",
                                            suffixes=("", "_clin"))
    if len(ext) >= 20:
        sub = pd.DataFrame({cols.id: ext[cols.id], cols.time: ext[cols.time], cols.event: ext[cols.event],
                            "risk_group": ext["high_risk"]})
        subgroup_cols = []
        if "treatment" in ext:
            sub["treatment"] = ext["treatment"]
            subgroup_cols.append("treatment")
        if "age" in ext:
            sub["age"] = np.where(ext["age"] >= 60, ">= 60 years", "< 60 years")
            subgroup_cols.append("age")
        if "tumour_diameter_mm" in ext:
            burden = (ext["tumour_diameter_mm"] > 50) | (ext.get("tumour_number", 1) > 3)
            sub["tumour_burden"] = np.where(burden, "high burden", "low burden")
            art.notes["tumour_burden"] = "high tumour burden: largest diameter > 50 mm or more than 3 nodules"
            subgroup_cols.append("tumour_burden")
        if "ehm" in ext:
            sub["ehm"] = np.where(ext["ehm"] == 1, "extrahepatic metastasis", "no EHM")
            subgroup_cols.append("ehm")
        tab = art.guarded("subgroups", surv.subgroup_hazard_ratios, sub, cols.time, cols.event,
                          "risk_group", subgroup_cols, id_col=cols.id)
        if tab is not None:
            art.table("subgroups", tab)
            art.figure("forest_subgroups", fs.plot_forest(tab, title="PRIME-S high vs low risk by subgroup, external"))
        if cols.subsequent_therapy and cols.subsequent_therapy in ext:
            adj = art.guarded("adjusted_cox", surv.adjusted_hazard_ratio, ext, cols.time, cols.event,
                              "high_risk", [cols.subsequent_therapy], id_col=cols.id, engine=eng)
            art.table("adjusted_cox", adj)


# ----------------------------------------------------------------------------------- descriptive
def descriptive_tables(art: Artefacts, clinical: pd.DataFrame, split: pd.Series, cols: CohortColumns,
                       excluded: list[str], train_missing: pd.Series):
    d = clinical.loc[split.index[split != "excluded"]].copy()
    d["cohort"] = split.loc[d.index].map({"train": "Training", "test": "Internal test",
                                          "external": "External"})
    variables = [c for c in d.columns if c not in (cols.centre, "cohort") and not c.endswith("_1m")]
    t1 = art.guarded("table1", descriptive.table_one, d, "cohort", variables)
    if t1 is not None:
        art.table("table1", t1.formatted())
    miss = d.drop(columns=["cohort"]).isna().groupby(d["cohort"]).mean().T * 100
    miss = miss.round(1).add_suffix(" missing %")
    miss["training missing %"] = (train_missing.reindex(miss.index) * 100).round(1)
    miss["excluded (> threshold in training)"] = miss.index.isin(excluded)
    miss = miss[(miss.drop(columns=["excluded (> threshold in training)"]).sum(axis=1) > 0)]
    art.table("missingness", miss.reset_index(names="variable"))


def flow_table(cohort, split: pd.Series, cols: CohortColumns) -> pd.DataFrame:
    c = cohort.clinical
    rows = []
    for s in ("train", "test", "external", "excluded"):
        ids = split.index[split == s]
        if len(ids) == 0:
            continue
        rows.append({"split": s, "centre": ", ".join(sorted(c.loc[ids, cols.centre].astype(str).unique())),
                     "n": len(ids), "responders": int(c.loc[ids, cols.response].sum()),
                     "response_rate": float(c.loc[ids, cols.response].mean()),
                     "deaths": int(c.loc[ids, cols.event].sum())})
    return pd.DataFrame(rows)


# -------------------------------------------------------------------------------------- omics
def omics_analyses(art: Artefacts, expression: pd.DataFrame, groups: pd.Series, gene_sets_path,
                   seed: int):
    """DE (limma-voom / Welch), GSEA on the Hallmark sets and immune infiltration between the
    PRIME-R predicted responders and non-responders among patients with expression data."""
    from . import omics
    from .report import figures_explain as fe

    samples = [s for s in expression.columns if s in groups.index]
    g = groups.loc[samples]
    if g.nunique() < 2 or g.value_counts().min() < 3:
        art.notes["omics"] = "fewer than 3 patients with expression data in a predicted group"
        return
    expr = expression[samples]
    de = omics.differential_expression(expr, g, reference="non-responder")
    art.table("de", de)
    art.figure("volcano", fe.plot_volcano(de, title="Predicted responders vs non-responders"))
    if gene_sets_path is not None:
        gs = omics.gsea_prerank(de, omics.read_gmt(gene_sets_path), permutations=1000, seed=seed)
        art.table("gsea", gs.table)
        if len(gs.table):
            art.figure("gsea_enrichment", fe.plot_gsea_enrichment(gs, gs.table.iloc[0]["gene_set"]))
    scores, comparison = omics.immune_infiltration(expr, g)
    art.table("immune", comparison)
    art.figure("immune", fe.plot_score_boxplot(scores.scores, g, comparison=comparison))
