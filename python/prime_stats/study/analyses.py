"""The statistics stage of a study: frozen predictions in, tidy tables out (figures are drawn
from these tables by :mod:`prime_stats.study.render`).

Nothing here fits a model on outcomes of the internal-test or external patients: thresholds
(median risk, responder cut-off) come from the training split, and every statistic is computed
per split from the predictions of the frozen models.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from .. import rbridge
from ..cohort import CohortColumns
from ..evaluation import decision, descriptive
from ..evaluation import survival as surv
from ..evaluation.bootstrap import bootstrap_survival
from ..evaluation.calibration import clip_probability
from ..evaluation.score import DAYS_PER_MONTH, score_binary, score_survival
from .predictions import PRIME_R, PRIME_S, SPLITS, VALIDATION_SPLITS, Predictions, slug
from .record import Artefacts

NET_BENEFIT_THRESHOLDS = np.round(np.arange(0.05, 0.96, 0.01), 2)
METRIC_COLUMNS = ["endpoint", "model", "split", "metric", "time", "estimate", "se", "lower", "upper",
                  "p_value", "n", "method", "engine", "note"]


# ---------------------------------------------------------------------------------- performance
def response_metrics(pred: Predictions, engine: str) -> pd.DataFrame:
    """score_binary per split for every response model (see :func:`_score_split` for degenerate
    models)."""
    cols, frames = pred.columns, []
    if not cols.has_response or not pred.response:
        return pd.DataFrame()
    for split in SPLITS:
        g = pred.in_split(split)
        y = g[cols.response].astype(int).to_numpy()
        if len(g) < 10 or len(np.unique(y)) < 2:
            continue
        # probabilities of exactly 0 or 1 (e.g. from tree ensembles) have an infinite logit; they
        # are moved to 1e-6 / 1 - 1e-6 for the calibration regression (rms::val.prob drops them)
        probs = {m: clip_probability(g[c].to_numpy())[0] for m, c in pred.response.items()}

        def score(names, calibration=True, compare=True):
            return score_binary(y, {m: probs[m] for m in names}, engine=engine, calibration=calibration,
                                compare=compare and split != "train")
        frames.append(_score_split(score, list(probs), split).assign(endpoint="response", split=split, n=len(g)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def survival_metrics(pred: Predictions, engine: str) -> pd.DataFrame:
    """score_survival per split: C-index for every model's risk score, AUC(t)/Brier(t)/IBS/IPA and
    calibration for models with a survival function (F(t|x) = 1 - S(t|x)); see
    :func:`_score_split` for degenerate models."""
    cols, times, frames = pred.columns, pred.times, []
    if not cols.has_survival or not pred.risk:
        return pd.DataFrame()
    for split in SPLITS:
        g = pred.in_split(split)
        if len(g) < 10 or g[cols.event].sum() < 3:
            continue
        t_ok = [t for t in times if t < g[cols.time].max()]
        idx = [times.index(t) for t in t_ok]
        skipped = [t for t in times if t not in t_ok]
        # F(t|x) = 1 - S(t|x), kept inside (0, 1) for the cloglog calibration model
        risks = {m: clip_probability(1 - g[c].to_numpy()[:, idx])[0] for m, c in pred.survival.items()}
        scores = {m: g[c].to_numpy() for m, c in pred.risk.items()}
        time, event = g[cols.time].to_numpy(float), g[cols.event].astype(int).to_numpy()

        def score(names, calibration=True, compare=True):
            return score_survival(time, event, {m: risks[m] for m in names if m in risks}, times=t_ok,
                                  risk_scores={m: scores[m] for m in names}, engine=engine,
                                  calibration=calibration)
        res = _score_split(score, list(risks), split)
        if skipped:
            res = pd.concat([res, pd.DataFrame([{"model": m, "metric": "time-dependent", "time": t, "estimate": np.nan,
                                                 "note": f"{m}, {split}: horizon {t:g} is beyond this split's "
                                                         f"follow-up ({g[cols.time].max():g})"}
                                                for m in risks for t in skipped])], ignore_index=True)
        frames.append(res.assign(endpoint="survival", split=split, n=len(g)))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _score_split(score, models: list[str], split: str) -> pd.DataFrame:
    """``score(models)`` for one split; when it fails (a degenerate model: e.g. two distinct
    predicted values, where a calibration spline or a recalibration slope is undefined), each model
    is scored alone, without calibration if need be, and what could not be computed is a row with
    NaN estimate and a ``note`` naming the model, the split and the reason. The run goes on."""
    try:
        return score(models)
    except Exception:  # noqa: BLE001 - narrowed below, model by model
        pass
    frames = []
    for m in models:
        try:
            frames.append(score([m], compare=False))
            continue
        except Exception as exc:  # noqa: BLE001
            reason = f"{type(exc).__name__}: {exc}"
        try:
            frames.append(score([m], calibration=False, compare=False))
            frames.append(pd.DataFrame([{"model": m, "metric": "calibration", "estimate": np.nan,
                                         "note": f"{m}, {split}: calibration not computed ({reason})"}]))
        except Exception as exc:  # noqa: BLE001
            frames.append(pd.DataFrame([{"model": m, "metric": "all", "estimate": np.nan,
                                         "note": f"{m}, {split}: not scored ({type(exc).__name__}: {exc})"}]))
    return pd.concat(frames, ignore_index=True)


def optimism_rows(optimism: pd.DataFrame, n: int) -> pd.DataFrame:
    """The optimism-corrected estimates as metric rows (split ``optimism_corrected``), beside the
    apparent (``train``) and nested-CV rows."""
    return pd.DataFrame({"endpoint": optimism["endpoint"], "model": optimism["model"], "split": "optimism_corrected",
                         "metric": optimism["metric"], "time": optimism["time"], "estimate": optimism["corrected"],
                         "se": np.nan, "lower": np.nan, "upper": np.nan, "n": n,
                         "method": optimism["method"], "engine": optimism["engine"]})


def note_collapse(metrics: pd.DataFrame, models: dict) -> pd.DataFrame:
    """PRIME-R/PRIME-S rows say when the fusion collapsed onto one member or modality (>= 0.95 of the
    weight), so nobody reads them as a multimodal model."""
    m = metrics.assign(note=(metrics["note"] if "note" in metrics else np.nan)).astype({"note": object})
    for endpoint, key in (("response", PRIME_R), ("survival", PRIME_S)):
        fitted = models.get(endpoint, {}).get(key)
        if fitted is not None and getattr(fitted, "collapsed_", False):
            rows = (m["model"] == key) & m["note"].isna()
            m.loc[rows, "note"] = fitted.fusion_note_
    return m


def order_metrics(m: pd.DataFrame) -> pd.DataFrame:
    """The tidy metrics table with its columns in the documented order (``note`` always present:
    why a statistic is NaN)."""
    m = m.assign(note=m["note"] if "note" in m else np.nan)
    return m[[c for c in METRIC_COLUMNS if c in m.columns] + [c for c in m.columns if c not in METRIC_COLUMNS]]


def decision_tables(art: Artefacts, pred: Predictions, engine: str):
    """Net benefit of every response model against treat-all / treat-none, per validation split."""
    if not pred.columns.has_response:
        return
    for split, _, y, probs in pred.response_by_split():
        art.table(f"decision_curve_{split}", decision.net_benefit(y, probs, thresholds=NET_BENEFIT_THRESHOLDS,
                                                                  engine=engine))


CALIBRATION_HORIZONS = (365.25, 730.5)     # 12 and 24 months: the survival calibration figures


def calibration_tables(art: Artefacts, pred: Predictions, seed: int):
    """The calibration figures' tables for both endpoints, per validation split: smoothed curves with
    their 95% bootstrap bands (``calibration_curves``) and the predictions beneath them
    (``calibration_rug``); survival at 12 and 24 months for every model with S(t|x). Each endpoint and
    split, model and horizon is guarded on its own: a failure is a note and the other curves are still drawn."""
    from ..report import figures_data as fd

    cols, curves, rugs = pred.columns, [], []

    def response(g, split, model):
        p = {model: g[pred.response[model]].to_numpy()}
        curves.append(fd.calibration_curves(g[cols.response].astype(int).to_numpy(), p,
                                            random_state=seed).assign(split=split))
        rugs.append(fd.prediction_rug(p).assign(split=split))

    def survival(g, split, model, t):
        F = {model: 1 - g[pred.survival[model][pred.times.index(t)]].to_numpy()}
        curves.append(fd.calibration_curves_survival(g[cols.time].to_numpy(float), g[cols.event].to_numpy(int),
                                                     F, t, random_state=seed).assign(split=split))
        rugs.append(fd.prediction_rug(F, t).assign(split=split))

    for split in VALIDATION_SPLITS:
        g = pred.in_split(split)
        if cols.has_response and g[cols.response].nunique() == 2:
            for m in pred.response:
                art.guarded(f"calibration_curves_{slug(m)}_{split}", response, g, split, m)
        if cols.has_survival and g[cols.event].sum() >= 3:
            for t in (h for h in CALIBRATION_HORIZONS if h in pred.times and h < g[cols.time].max()):
                for m in pred.survival:
                    art.guarded(f"calibration_curves_{slug(m)}_{t / DAYS_PER_MONTH:g}m_{split}", survival,
                                g, split, m, t)
    if curves:
        art.table("calibration_curves", pd.concat(curves, ignore_index=True))
        art.table("calibration_rug", pd.concat(rugs, ignore_index=True))


def survival_decision_tables(art: Artefacts, pred: Predictions):
    """Net benefit of every survival model with S(t|x) at each horizon inside the split's follow-up
    (risk of death by the horizon as the threshold probability), per validation split."""
    cols, frames = pred.columns, []
    if not (cols.has_survival and pred.survival):
        return
    for split in ("test", "external"):
        g = pred.in_split(split)
        if g[cols.event].sum() < 3:
            continue
        for k, t in enumerate(pred.times):
            if t >= g[cols.time].max():
                continue
            risks = {m: 1 - g[c[k]].to_numpy() for m, c in pred.survival.items()}
            nb = decision.net_benefit_survival(g[cols.time].to_numpy(float), g[cols.event].to_numpy(int),
                                               risk=risks, times=t, thresholds=NET_BENEFIT_THRESHOLDS)
            frames.append(nb.assign(horizon=t, split=split))
    if frames:
        art.table("decision_curve_survival", pd.concat(frames, ignore_index=True))


CONTRAST_BOOTSTRAP = 1000      # paired bootstrap replicates of the survival model comparisons


def survival_contrasts(art: Artefacts, pred: Predictions, seed: int, B: int = CONTRAST_BOOTSTRAP):
    """Paired differences of Harrell's C, Uno's C and AUC(t) between PRIME-S and every other survival
    model (its members, early fusion, a baseline), per validation split: all models re-evaluated on the
    same B bootstrap resamples of the split (:func:`~prime_stats.evaluation.bootstrap.bootstrap_survival`,
    percentile CI and the inverted-interval p; riskRegression::Score's ``contrasts`` and
    compareC). A positive difference favours PRIME-S."""
    cols, frames = pred.columns, []
    if not (cols.has_survival and PRIME_S in pred.survival and len(pred.survival) > 1):
        return
    order = [PRIME_S] + [m for m in pred.survival if m != PRIME_S]
    for split in VALIDATION_SPLITS:
        g = pred.in_split(split)
        if len(g) < 10 or g[cols.event].sum() < 3:
            continue
        idx = [k for k, t in enumerate(pred.times) if t < g[cols.time].max()]
        risks = {m: 1 - g[pred.survival[m]].to_numpy()[:, idx] for m in order}
        scores = {m: g[pred.risk[m]].to_numpy() for m in order}
        boot = bootstrap_survival(g[cols.time].to_numpy(float), g[cols.event].to_numpy(int), risks,
                                  [pred.times[k] for k in idx], scores, B=B, seed=seed,
                                  metrics=("harrell", "uno", "auc"), bca=False)
        c = boot.contrasts(metrics=("C-index", "AUC(t)"))
        frames.append(c[c["model"].str.startswith(f"{PRIME_S} vs ")].assign(split=split, n=len(g)))
    if frames:
        art.table("survival_contrasts", pd.concat(frames, ignore_index=True).drop(columns="threshold"))


# --------------------------------------------------------------------------- survival analyses
def risk_groups(pred: Predictions) -> tuple[pd.DataFrame, surv.MedianRiskStratifier]:
    """The main survival model's risk groups: the median risk of the training split, frozen and
    applied to every split (``risk_group`` low/high, ``high_risk`` 0/1)."""
    risk_col = pred.main_risk()
    strat = surv.MedianRiskStratifier().fit(pred.in_split("train")[risk_col].to_numpy())
    d = pred.frame.copy()
    d["risk_group"] = np.asarray(strat.labels(d[risk_col].to_numpy())).astype(str)
    d["high_risk"] = (d["risk_group"] == "high").astype(int)
    return d, strat


RISK_GROUP_TABLES = ("km_groups", "km_curves", "km_at_risk", "logrank", "cox_hr", "cox_zph", "followup")
TREATMENT_TABLES = {"km_curves": "km_treatment_curves", "km_at_risk": "km_treatment_at_risk",
                    "logrank": "logrank_treatment"}


def risk_group_analyses(art: Artefacts, pred: Predictions, clinical: pd.DataFrame, engine: str,
                        adjust_for=()):
    """Median-risk groups frozen from training; KM (with median OS), log-rank, Cox HR (high vs low),
    PH check and reverse-KM follow-up in every split (training: apparent); KM by treatment in every
    split; subgroups and the adjusted Cox on the external split; the pooled adjusted Cox."""
    cols = pred.columns
    d, strat = risk_groups(pred)
    art.notes["risk_cutoff"] = (f"PRIME-S median risk score in the training split = "
                                f"{strat.cutoff_:.4f}, frozen and applied to every split; in the training "
                                f"split the groups are apparent (in-sample)")
    rows = {k: [] for k in RISK_GROUP_TABLES + tuple(TREATMENT_TABLES.values()) + ("km_medians",)}
    treatment = clinical["treatment"].reindex(d[cols.id]).to_numpy() if "treatment" in clinical else None
    for split in SPLITS:
        g = d[d["split"] == split]
        if g["risk_group"].nunique() < 2 or g[cols.event].sum() < 3:
            art.notes[f"risk_groups_{split}"] = f"{split}: fewer than 3 deaths or one risk group only"
            continue
        art.guarded(f"risk_groups_{split}", _risk_group_split, g, split, cols, pred.times, engine, rows)
        if treatment is not None:
            gt = g.assign(treatment=treatment[(d["split"] == split).to_numpy()]).dropna(subset=["treatment"])
            if gt["treatment"].nunique() >= 2:
                art.guarded(f"km_treatment_{split}", _km_by_treatment, gt, split, cols, engine, rows)
    for key, r in rows.items():
        if r:
            art.table(key, pd.concat(r, ignore_index=True))
    _subgroups_and_adjusted(art, d, cols, clinical, engine, adjust_for)
    art.guarded("pooled_cox", pooled_cox, art, d, cols, clinical, adjust_for, engine)
    return d[[cols.id, "split", cols.time, cols.event, "risk_group"]]


def _medians(km, split: str, grouping: str) -> pd.DataFrame:
    """Median OS per group (``print.survfit``), in days and months."""
    m = km.medians[["group", "n", "events", "median", "lower", "upper"]].copy()
    for c in ("median", "lower", "upper"):
        m[f"{c}_months"] = m[c] / DAYS_PER_MONTH
    return m.assign(grouping=grouping, split=split, method=km.medians.get("method", "Kaplan-Meier"),
                    engine=km.engine)


def _risk_group_split(g, split, cols, times, engine, rows):
    from ..report.figures_data import km_tables

    y, kw = (cols.time, cols.event), dict(data=g, id_col=cols.id, engine=engine)
    km = surv.kaplan_meier(*y, "risk_group", times=times, **kw)
    rows["km_groups"].append(km.at_times.assign(split=split))
    rows["km_medians"].append(_medians(km, split, "PRIME-S risk group"))
    curves, at_risk = km_tables(g, cols.time, cols.event, "risk_group", engine=engine, id_col=cols.id)
    rows["km_curves"].append(curves.assign(split=split))
    rows["km_at_risk"].append(at_risk.assign(split=split))
    rows["logrank"].append(surv.logrank_test(*y, "risk_group", **kw).assign(split=split))
    rows["followup"].append(surv.median_followup(*y, **kw).assign(split=split))
    rows["cox_hr"].append(surv.cox_hazard_ratios(*y, ["high_risk"], **kw).assign(split=split))
    rows["cox_zph"].append(surv.cox_zph(*y, ["high_risk"], **kw).assign(split=split))


def _km_by_treatment(g, split, cols, engine, rows):
    """KM by treatment arm in one split: curves and numbers at risk for the figure, log-rank, medians."""
    from ..report.figures_data import km_tables

    g = g.assign(treatment=g["treatment"].astype(str))
    y, kw = (cols.time, cols.event), dict(data=g, id_col=cols.id, engine=engine)
    km = surv.kaplan_meier(*y, "treatment", **kw)
    rows["km_medians"].append(_medians(km, split, "treatment"))
    curves, at_risk = km_tables(g, cols.time, cols.event, "treatment", engine=engine, id_col=cols.id)
    rows["km_treatment_curves"].append(curves.assign(split=split))
    rows["km_treatment_at_risk"].append(at_risk.assign(split=split))
    rows["logrank_treatment"].append(surv.logrank_test(*y, "treatment", **kw).assign(split=split))


def post_baseline(covariates, cols: CohortColumns) -> list[str]:
    """The covariates measured after treatment start (subsequent therapy, 1-month changes ``*_1m``):
    adjusting for them conditions on what happens after the prediction is made."""
    return [c for c in covariates if c == cols.subsequent_therapy or str(c).endswith("_1m")]


def _mark_post_baseline(res: pd.DataFrame, covariates, cols: CohortColumns) -> pd.DataFrame:
    """``post_baseline``: the term belongs to a covariate recorded after treatment start."""
    late = post_baseline(covariates, cols)
    return res.assign(post_baseline=[any(str(t).startswith(c) for c in late) for t in res["term"]])


def _adjustment_data(data: pd.DataFrame, covariates, cols: CohortColumns, exposure: str):
    """Complete cases on the covariates present in ``data`` that vary; returns (data, used, note)."""
    absent = [c for c in covariates if c not in data.columns]
    used = [c for c in covariates if c in data.columns]
    cc = data.dropna(subset=used)
    constant = [c for c in used if cc[c].nunique() < 2]
    used = [c for c in used if c not in constant and c != exposure]
    notes = []
    if absent:
        notes.append(f"not in the data: {', '.join(absent)}")
    if constant:
        notes.append(f"constant, left out: {', '.join(constant)}")
    if len(cc) < len(data):
        notes.append(f"{len(data) - len(cc)} patient(s) with a missing covariate left out (complete cases)")
    late = post_baseline(used, cols)
    if late:
        notes.append(f"caveat: {', '.join(late)} is recorded after treatment start (post-baseline); adjusting "
                     "for it conditions on the course after prediction, so the adjusted HR is not the HR of a "
                     "baseline prognostic model")
    return cc, used, "; ".join(notes)


def pooled_cox(art: Artefacts, d: pd.DataFrame, cols: CohortColumns, clinical: pd.DataFrame, adjust_for,
               engine: str):
    """Cox model of the PRIME-S risk group (high vs low) in all scored patients pooled (training, test,
    external), unadjusted and adjusted for the prespecified covariates and the centre
    (``survival::coxph(Surv(time, event) ~ high_risk + covariates + centre)``, Efron ties)."""
    data = d.merge(clinical.drop(columns=[c for c in (cols.time, cols.event, cols.centre) if c in clinical]),
                   left_on=cols.id, right_index=True, how="left", suffixes=("", "_clin"))
    covs = list(adjust_for) + ([cols.centre] if data[cols.centre].nunique() > 1 else [])
    data, used, note = _adjustment_data(data, covs, cols, "high_risk")
    if not used:
        raise ValueError(f"none of the prespecified covariates {list(adjust_for)} can be used ({note})")
    data = data.assign(**{cols.centre: data[cols.centre].astype(str)})
    res = surv.adjusted_hazard_ratio(cols.time, cols.event, "high_risk", used, data=data, id_col=cols.id,
                                     engine=engine)
    art.table("pooled_cox", _mark_post_baseline(res, used, cols)
              .assign(population="all scored patients (training, test, external)"))
    art.notes["pooled_cox"] = ("training patients' risk groups are apparent (the model was fitted on them)"
                               + (f"; {note}" if note else ""))


def _subgroups_and_adjusted(art, d, cols, clinical, engine, adjust_for=()):
    ext = d[d["split"] == "external"].merge(clinical, left_on=cols.id, right_index=True, how="left",
                                            suffixes=("", "_clin"))
    if len(ext) < 20:
        return
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
    art.table("subgroups", art.guarded("subgroups", surv.subgroup_hazard_ratios, cols.time, cols.event,
                                       "risk_group", subgroup_cols, data=sub, id_col=cols.id))
    art.guarded("adjusted_cox", _adjusted_external, art, ext, cols, adjust_for, engine)


def _adjusted_external(art, ext, cols, adjust_for, engine):
    """The external split's risk-group HR, unadjusted and adjusted for the prespecified covariates."""
    data, used, note = _adjustment_data(ext, adjust_for, cols, "high_risk")
    if not used:
        raise ValueError(f"none of the prespecified covariates {list(adjust_for)} can be used ({note})")
    art.table("adjusted_cox", _mark_post_baseline(surv.adjusted_hazard_ratio(
        cols.time, cols.event, "high_risk", used, data=data, id_col=cols.id, engine=engine), used, cols))
    if note:
        art.notes["adjusted_cox"] = note


# ----------------------------------------------------------------------------------- descriptive
COHORT_LABELS = {"train": "Training", "test": "Internal test", "external": "External"}
MAX_CODED_LEVELS = 3     # an integer-coded variable with at most this many values is a category (e.g. ECOG)


def table_one_data(clinical: pd.DataFrame, variables, categorical=()) -> tuple[pd.DataFrame, list[str]]:
    """Table 1's display coding: 0/1 variables as no/yes, integer codes with at most
    ``MAX_CODED_LEVELS`` values (ECOG 0-2) and ``categorical`` as categories; returns the recoded
    frame and the categorical variables."""
    d, cats = clinical.copy(), []
    for c in variables:
        x = d[c]
        if not pd.api.types.is_numeric_dtype(x) or x.dtype == bool:
            cats.append(c)
            continue
        v = x.dropna()
        coded = len(v) and np.allclose(v, np.round(v)) and v.nunique() <= MAX_CODED_LEVELS
        if coded and set(v.unique()) <= {0, 1}:
            d[c] = x.map({0: "no", 1: "yes"}).astype(pd.CategoricalDtype(["no", "yes"]))
            cats.append(c)
        elif coded or c in categorical:
            levels = sorted(v.unique())
            d[c] = x.map(lambda a: np.nan if pd.isna(a) else f"{a:g}").astype(
                pd.CategoricalDtype([f"{a:g}" for a in levels]))
            cats.append(c)
    return d, cats


def descriptive_tables(art: Artefacts, clinical: pd.DataFrame, split: pd.Series, cols: CohortColumns,
                       excluded: list[str], train_missing: pd.Series, categorical=()):
    """Table 1 by analysis set (in flow order: training, internal test, external; coded variables as
    categories) and the missing-value table."""
    scored = split.index[split != "excluded"]
    variables = [c for c in clinical.columns if c != cols.centre and not c.endswith("_1m")]
    d, cats = table_one_data(clinical.loc[scored], variables, categorical)
    present = [s for s in SPLITS if (split.loc[scored] == s).any()]
    d["cohort"] = pd.Categorical(split.loc[d.index].map(COHORT_LABELS),
                                 categories=[COHORT_LABELS[s] for s in present])
    t1 = art.guarded("table1", descriptive.table_one, d, "cohort", variables, categorical=cats)
    if t1 is not None:
        art.table("table1", t1.summary())
    miss = clinical.loc[scored].isna().groupby(d["cohort"], observed=True).mean().T * 100
    miss = miss.round(1).add_suffix(" missing %")
    miss["training missing %"] = (train_missing.reindex(miss.index) * 100).round(1)
    miss["excluded (> threshold in training)"] = miss.index.isin(excluded)
    miss = miss[(miss.drop(columns=["excluded (> threshold in training)"]).sum(axis=1) > 0)]
    art.table("missingness", miss.reset_index(names="variable"))


def flow_table(cohort, split: pd.Series, cols: CohortColumns) -> pd.DataFrame:
    """Patients, responders and deaths per analysis set."""
    c = cohort.clinical
    rows = []
    for s in ("train", "test", "external", "excluded"):
        ids = split.index[split == s]
        if len(ids) == 0:
            continue
        row = {"split": s, "centre": ", ".join(sorted(c.loc[ids, cols.centre].astype(str).unique())),
               "n": len(ids)}
        if cols.has_response:
            row.update(responders=int(c.loc[ids, cols.response].sum()),
                       response_rate=float(c.loc[ids, cols.response].mean()))
        if cols.has_survival:
            row.update(deaths=int(c.loc[ids, cols.event].sum()))
        rows.append(row)
    return pd.DataFrame(rows)


def flow_diagram_table(cohort, split: pd.Series, cols: CohortColumns, development, external,
                       imputed_radiomics=()) -> pd.DataFrame:
    """The patient-flow diagram as a table, one box per row (level ``centre`` -> ``split``, with
    ``exclusion`` boxes beside): box, level, parent, label, n, responders, deaths, detail. Counts come
    from the split and the cohort; ``imputed_radiomics`` (patients whose radiomics were imputed) is
    reported per split."""
    c = cohort.clinical
    centre = c[cols.centre].astype(str)
    dev, ext = {str(x) for x in development}, {str(x) for x in external}
    imputed = set(map(str, imputed_radiomics))

    def counts(ids):
        out = {"n": len(ids)}
        if cols.has_response:
            out["responders"] = int(c.loc[ids, cols.response].sum())
        if cols.has_survival:
            out["deaths"] = int(c.loc[ids, cols.event].sum())
        return out

    rows = []
    for ctr in sorted(centre.unique()):
        ids = centre.index[centre == ctr]
        role = "development" if ctr in dev else "external validation" if ctr in ext else "not used"
        rows.append({"box": f"centre {ctr}", "level": "centre", "parent": "", "label": f"Centre {ctr} ({role})",
                     **counts(ids), "detail": ""})
        gone = ids[split.loc[ids] == "excluded"]
        if len(gone):
            rows.append({"box": f"excluded {ctr}", "level": "exclusion", "parent": f"centre {ctr}",
                         "label": "Excluded", **counts(gone),
                         "detail": "centre not listed in split.development or split.external"})
    for s in SPLITS:
        ids = split.index[split == s]
        if not len(ids):
            continue
        parents = sorted(centre.loc[ids].unique())
        n_imp = len(imputed & set(map(str, ids)))
        rows.append({"box": s, "level": "split", "parent": ", ".join(f"centre {p}" for p in parents),
                     "label": {"train": "Training", "test": "Internal test", "external": "External validation"}[s],
                     **counts(ids), "detail": f"{n_imp} with imputed radiomics" if n_imp else ""})
    return pd.DataFrame(rows)


def correlation_tables(art: Artefacts, X: pd.DataFrame, train_ids, models: dict):
    """Spearman correlations (BH-adjusted p) of each fused model's selected predictors in the training
    split (:func:`~prime_stats.evaluation.descriptive.correlation_matrix`), one long table per endpoint."""
    for endpoint, key in (("response", PRIME_R), ("survival", PRIME_S)):
        m = models.get(endpoint, {}).get(key)
        if m is None:
            continue
        feats = [f for f in dict.fromkeys(m.selected_features_["feature"].astype(str)) if f in X.columns]
        if len(feats) < 2:
            art.notes[f"correlation_{endpoint}"] = f"{key} selected fewer than two predictors"
            continue
        res = art.guarded(f"correlation_{endpoint}", descriptive.correlation_matrix, X.loc[train_ids], feats)
        if res is not None:
            art.table(f"correlation_{endpoint}", res.long.assign(split="train"))


# --------------------------------------------------------------------------- model description
def model_tables(art: Artefacts, models: dict):
    """Selected predictors, tuned hyperparameters, every candidate learner's CV score with the learner-choice
    rule, and fusion weights of PRIME-R and PRIME-S."""
    hp = []
    if PRIME_R in models.get("response", {}):
        m = models["response"][PRIME_R]
        art.table("features_response", m.selected_features_)
        hp += [{"endpoint": "response", "model": str(k), "hyperparameters": json.dumps(v, default=str)}
               for k, v in getattr(m, "best_params_", {}).items()]
    if PRIME_S in models.get("survival", {}):
        m = models["survival"][PRIME_S]
        art.table("features_survival", m.selected_features_)
        hp += [{"endpoint": "survival", "model": f"{k}/{le}",
                "hyperparameters": json.dumps(b.results_[le].best_params_, default=str)}
               for k, b in m.bases_.items() for le in b.results_]
    if hp:
        art.table("hyperparameters", pd.DataFrame(hp))
    tuning = [models[endpoint][key].tuning_table_.assign(endpoint=endpoint, model=key)
              for endpoint, key in (("response", PRIME_R), ("survival", PRIME_S)) if key in models.get(endpoint, {})]
    if tuning:
        art.table("tuning", pd.concat(tuning, ignore_index=True)[
            ["endpoint", "model", "feature_kind", "recipe", "learner", "cv_score", "cv_sd", "cv_se", "rule", "chosen"]])
    fw = []
    if PRIME_R in models.get("response", {}):
        fw.append(models["response"][PRIME_R].fusion_weights_.assign(model="PRIME-R (ridge non-negative stacker)"))
    if PRIME_S in models.get("survival", {}):
        m = models["survival"][PRIME_S]
        fw.append(m.weights_table_.assign(model=f"PRIME-S ({m.averaging})"))
    for endpoint, key in (("response", PRIME_R), ("survival", PRIME_S)):
        m = models.get(endpoint, {}).get(key)
        if m is not None and getattr(m, "collapsed_", False):
            art.notes[f"fusion_collapse_{endpoint}"] = m.fusion_note_
    if fw:
        art.table("fusion_weights", pd.concat(fw, ignore_index=True))


# --------------------------------------------------------------------------------------- paradox
OOF, FROZEN = "out-of-fold", "frozen model"


def unfitted_predictions(models: dict, pred: Predictions) -> pd.DataFrame:
    """PRIME-R probability and PRIME-S risk of every scored patient from a model that was not fitted on
    that patient: out-of-fold for training rows (:meth:`PrimeR.oof_predict_proba`,
    :meth:`PrimeS.oof_predict`), the frozen models' predictions for test and external rows. Indexed by
    patient id; columns split, predictions, probability, risk, response, time, event."""
    cols = pred.columns
    f = pred.frame.set_index(cols.id)
    out = pd.DataFrame({"split": f["split"], "predictions": np.where(f["split"] == "train", OOF, FROZEN),
                        "probability": f[pred.response[PRIME_R]], "risk": f[pred.risk[PRIME_S]],
                        "response": f[cols.response], "time": f[cols.time], "event": f[cols.event]})
    tr = out.index[out["split"] == "train"]
    out.loc[tr, "probability"] = models["response"][PRIME_R].oof_predict_proba().loc[tr].to_numpy()
    out.loc[tr, "risk"] = models["survival"][PRIME_S].oof_predict().loc[tr].to_numpy()
    return out


def frozen_thresholds(models: dict, pred: Predictions):
    """Responder cut-off (Youden) from PRIME-R's out-of-fold training probabilities (the
    meta-classifier applied to the bases' OOF probabilities; in-sample probabilities of tree
    ensembles are overfitted) and the PRIME-S training median risk."""
    from ..paradox import freeze_thresholds

    cols = pred.columns
    tr = pred.in_split("train")
    oof = models["response"][PRIME_R].oof_predict_proba().loc[tr[cols.id]]
    return freeze_thresholds(oof.to_numpy(), tr[cols.response], tr[pred.risk[PRIME_S]])


def paradox_analysis(art: Artefacts, pred: Predictions, models: dict, engine: str):
    """The responder paradox, each part in every split where it can be computed, the split always named:
    the quadrants and the paradox HR (test, external; thresholds frozen on training); the 3-month
    landmark analysis of observed response (every split); the PRIME-R vs PRIME-S correlation and the
    divergence test on predictions not fitted on the patients (training out-of-fold, test, external).
    Each split and analysis is guarded on its own. Returns (split, quadrant result) for the figure: the
    external split's when it ran, else the internal test's."""
    from .. import paradox as px

    th = frozen_thresholds(models, pred)
    art.notes["paradox_thresholds"] = (f"responder threshold {th.response_threshold:.3f} ({th.response_rule}, "
                                       f"out-of-fold training probabilities); "
                                       f"risk threshold {th.risk_threshold:.3f} ({th.risk_rule}); both from training")
    d = unfitted_predictions(models, pred)
    frames: dict[str, list] = {k: [] for k in ("paradox", "paradox_hr", "landmark_response",
                                                "response_risk_correlation", "paradox_divergence")}
    result = None
    for split in SPLITS:
        g = d[d["split"] == split]
        if not len(g):
            continue
        source = g["predictions"].iloc[0]
        lm = art.guarded(f"landmark_response_{split}", px.landmark_response, g["response"], g["time"], g["event"],
                         split=split, engine=engine)
        frames["landmark_response"].append(lm)
        frames["response_risk_correlation"].append(art.guarded(
            f"response_risk_correlation_{split}", px.response_risk_correlation, g["probability"], g["risk"],
            split=split, predictions=source))
        frames["paradox_divergence"].append(art.guarded(
            f"paradox_divergence_{split}", px.divergence_test, g["probability"], g["risk"], g["time"], g["event"],
            thresholds=th, split=split, predictions=source))
        if split == "train":
            continue
        res = art.guarded(f"paradox_{split}", px.responder_paradox, g["probability"], g["risk"], g["response"],
                          g["time"], g["event"], thresholds=th, patient_id=g.index, engine=engine)
        if res is not None:
            frames["paradox"].append(res.table.assign(split=split))
            frames["paradox_hr"].append(res.hazard_ratio.assign(
                split=split, note="PRIME-S among predicted responders only: as large with a random PRIME-R; "
                                  "see the divergence test"))
            result = (split, res) if split == "external" or result is None else result
    for key, parts in frames.items():
        parts = [p for p in parts if p is not None]
        if parts:
            art.table(key, pd.concat(parts, ignore_index=True))
    return result


# -------------------------------------------------------------------------------------- omics
# (endpoint, model, suffix of its table/figure keys, the two groups (reference first))
OMICS_ARMS = (("response", PRIME_R, "", ("non-responder", "responder")),
              ("survival", PRIME_S, "_survival", ("low risk", "high risk")))


def omics_groups(d: pd.DataFrame, thresholds) -> dict[str, pd.Series]:
    """Each arm's predicted groups from :func:`unfitted_predictions` (never a prediction fitted on the
    patient): PRIME-R responder if probability >= the frozen responder threshold; PRIME-S high risk if
    risk > the frozen training median risk."""
    return {"response": pd.Series(np.where(d["probability"] >= thresholds.response_threshold, "responder",
                                           "non-responder"), index=d.index),
            "survival": pd.Series(np.where(d["risk"] > thresholds.risk_threshold, "high risk", "low risk"),
                                  index=d.index)}


GO_FDR = 0.05     # DE genes (BH) that form the GO over-representation query


def omics_analyses(art: Artefacts, expression: pd.DataFrame, d: pd.DataFrame, thresholds, gene_sets_path,
                   seed: int, engine: str, go_path=None) -> dict:
    """DE (limma-voom / Welch), GSEA on the Hallmark sets and immune infiltration between the PRIME-R
    predicted groups (responder vs non-responder) and between the PRIME-S risk groups (high vs low),
    among patients with expression data, from predictions not fitted on them
    (:func:`unfitted_predictions`: out-of-fold for training rows), and GO Biological Process
    over-representation of the DE genes (BH < ``GO_FDR``; universe = measured genes) when a GO GMT
    ``go_path`` is given. ``omics_samples`` counts the samples per split, prediction source and group.
    Each arm (and its GO analysis) is guarded on its own. Returns, per arm that ran,
    the GSEA result, immune scores and groups (for the figures)."""
    samples = [s for s in expression.columns if s in d.index]
    if not samples:
        raise ValueError("no expression sample matches a scored patient id")
    d = d.loc[samples]
    groups = omics_groups(d, thresholds)
    art.table("omics_samples", pd.concat([
        pd.DataFrame({"split": d["split"], "predictions": d["predictions"], "model": model, "group": groups[ep]})
        for ep, model, _, _ in OMICS_ARMS]).value_counts().rename("n").reset_index()
        .sort_values(["model", "split", "group"], kind="mergesort", ignore_index=True))
    out = {}
    for endpoint, model, suffix, levels in OMICS_ARMS:
        res = art.guarded(f"omics{suffix or '_response'}", _omics_arm, art, expression[samples], groups[endpoint],
                          model, suffix, levels, gene_sets_path, seed, engine, go_path)
        if res is not None:
            out[endpoint] = res
    return out


def _omics_arm(art, expr, g, model, suffix, levels, gene_sets_path, seed, engine, go_path=None):
    from .. import omics
    from ..genesets import read_gmt

    counts = g.value_counts()
    if g.nunique() < 2 or counts.min() < 3:
        raise ValueError(f"{model}: fewer than 3 patients with expression data in a group ({counts.to_dict()})")
    de = omics.differential_expression(expr, g, reference=levels[0], engine=engine).assign(model=model)
    art.table(f"de{suffix}", de)
    if go_path is not None:
        art.guarded(f"go{suffix or '_response'}", _go, art, de, list(expr.index), model, suffix, go_path)
    gs = None
    if gene_sets_path is not None:
        gs = omics.gsea_prerank(de, read_gmt(gene_sets_path), permutations=1000, seed=seed)
        art.table(f"gsea{suffix}", gs.table.assign(model=model))
    scores, comparison = omics.immune_infiltration(expr, g, engine=engine, reference=levels[0])
    art.table(f"immune{suffix}", comparison.assign(model=model))
    return {"gsea": gs, "immune_scores": scores.scores, "groups": g, "model": model, "suffix": suffix}


def _go(art, de, universe, model, suffix, go_path):
    """GO BP over-representation (enrichGO's rules) of one arm's DE genes at BH < GO_FDR."""
    from .. import omics

    query = de.loc[de["p_adj"] < GO_FDR, "gene"]
    if query.empty:
        raise ValueError(f"{model}: no gene is differentially expressed at BH < {GO_FDR}, so GO enrichment "
                         f"has no query")
    art.table(f"go{suffix}", omics.enrich_go(query, universe, gene_sets=go_path, engine="python")
              .assign(model=model, query=f"DE genes at BH < {GO_FDR} ({len(query)})"))
