"""The study's analysis tables (issue 12, item 3) against direct calls to the evaluation functions, R's
survival package and the Python dcurves package, on the golden clinical table with fixed predictions
(no model is fitted here)."""
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from prime_stats.cohort import Cohort, CohortColumns
from prime_stats.evaluation import descriptive
from prime_stats.evaluation import survival as surv
from prime_stats.evaluation.bootstrap import bootstrap_survival
from prime_stats.evaluation.discrimination import concordance_index
from prime_stats.evaluation.score import DEFAULT_TIMES
from prime_stats.report import figures_data as fd
from prime_stats.study import analyses, render
from prime_stats.study.predictions import PRIME_S, Predictions
from prime_stats.study.record import Artefacts

GOLDEN = Path(__file__).parent / "golden"
COLS = CohortColumns()


@pytest.fixture(scope="module")
def study():
    """The golden clinical table (centre A split 7:3, centre B external, 12 patients of a centre C that
    the design leaves out) and predictions of three survival models and two response models."""
    df = pd.read_csv(GOLDEN / "clinical.csv", dtype={"patient_id": str})
    extra = df[df.centre == "B"].head(12).assign(centre="C", patient_id=lambda d: "C" + d.patient_id)
    cohort = Cohort(pd.concat([df, extra], ignore_index=True))
    c = cohort.clinical
    rng = np.random.default_rng(3)
    split = pd.Series("excluded", index=c.index, name="split")
    a = c.index[c.centre == "A"]
    test = rng.choice(a, size=27, replace=False)
    split[a] = "train"
    split[test] = "test"
    split[c.index[c.centre == "B"]] = "external"
    pred = Predictions.for_patients(cohort, split, COLS, list(DEFAULT_TIMES))
    x = c.loc[pred.ids]
    z = lambda v: (v - v.mean()) / v.std()  # noqa: E731
    lps = {PRIME_S: 0.8 * z(-x.albumin) + 0.5 * z(x.ecog) + 0.3 * rng.normal(size=len(x)),
           "clinical": 0.6 * z(-x.albumin) + 0.6 * rng.normal(size=len(x)),
           "early fusion": 0.4 * z(x.tumour_diameter_mm) + 0.8 * rng.normal(size=len(x))}
    t = np.asarray(pred.times)
    for m, lp in lps.items():
        lp = lp.to_numpy()
        pred.add_risk(m, lp, np.exp(-np.outer(np.exp(lp), t / 900.0)))
    for m, lp in (("PRIME-R", z(x.tumour_diameter_mm)), ("clinical", z(x.albumin))):
        pred.add_probability(m, 1 / (1 + np.exp(-lp.to_numpy())))
    return SimpleNamespace(cohort=cohort, split=split, pred=pred)


@pytest.fixture
def art(tmp_path):
    return Artefacts(tmp_path)


def test_survival_contrasts_are_paired_differences_of_the_c_index(study, art):
    pred = study.pred
    analyses.survival_contrasts(art, pred, seed=11, B=200)
    tab = art.tables["survival_contrasts"]
    assert set(tab["model"]) == {"PRIME-S vs clinical", "PRIME-S vs early fusion"}
    assert set(tab["split"]) == {"test", "external"}
    for split in ("test", "external"):
        g = pred.in_split(split)
        t, e = g.os_days.to_numpy(float), g.os_event.to_numpy(int)
        for other in ("clinical", "early fusion"):
            for tw, method in (("n", "Harrell"), ("n/G2", "Uno")):
                direct = (concordance_index(t, e, g[pred.risk[PRIME_S]], tw, engine="python").estimate.iloc[0]
                          - concordance_index(t, e, g[pred.risk[other]], tw, engine="python").estimate.iloc[0])
                row = tab[(tab.split == split) & (tab.model == f"PRIME-S vs {other}")
                          & (tab.metric == "C-index difference") & tab.method.str.startswith(method)]
                assert len(row) == 1 and row.estimate.iloc[0] == pytest.approx(direct, abs=1e-12)
        # the intervals are those of the vectorised paired bootstrap on the same resamples
        idx = [k for k, h in enumerate(pred.times) if h < t.max()]
        order = [PRIME_S, "clinical", "early fusion"]
        boot = bootstrap_survival(t, e, {m: 1 - g[pred.survival[m]].to_numpy()[:, idx] for m in order},
                                  [pred.times[k] for k in idx], {m: g[pred.risk[m]].to_numpy() for m in order},
                                  B=200, seed=11, metrics=("harrell", "uno", "auc"), bca=False)
        ref = boot.contrasts(metrics=("C-index", "AUC(t)"))
        ref = ref[ref.model.str.startswith("PRIME-S vs")].reset_index(drop=True)
        mine = tab[tab.split == split].reset_index(drop=True)
        np.testing.assert_allclose(mine[["estimate", "lower", "upper", "p_value"]], ref[["estimate", "lower", "upper",
                                                                                         "p_value"]], atol=1e-12)
    assert (tab.metric == "AUC(t) difference").any()


def test_risk_groups_every_split_medians_treatment_and_pooled_cox(study, art):
    pred, c = study.pred, study.cohort.clinical
    analyses.risk_group_analyses(art, pred, c, "python", adjust_for=["age", "ecog", "bclc", "subsequent_therapy",
                                                                     "not_a_column"])
    t = art.tables
    for key in ("km_curves", "km_at_risk", "logrank", "cox_hr", "km_treatment_curves", "logrank_treatment"):
        assert list(dict.fromkeys(t[key]["split"])) == ["train", "test", "external"], key
    assert "km_train" not in art.notes and "apparent" in art.notes["risk_cutoff"]
    d, _ = analyses.risk_groups(pred)
    med = t["km_medians"]
    for split in ("train", "test", "external"):
        g = d[d.split == split]
        km = surv.kaplan_meier("os_days", "os_event", "risk_group", data=g, engine="python")
        mine = med[(med.split == split) & (med.grouping == "PRIME-S risk group")].set_index("group")
        ref = km.medians.set_index("group")
        pd.testing.assert_series_equal(mine["median"], ref["median"], check_names=False)
        assert (mine["median_months"] * 30.4375).equals(mine["median"]) or np.allclose(
            mine["median_months"].dropna() * 30.4375, mine["median"].dropna())
        gt = g.assign(treatment=c.loc[g.patient_id, "treatment"].to_numpy())
        kt = surv.kaplan_meier("os_days", "os_event", "treatment", data=gt, engine="python").medians.set_index("group")
        mt = med[(med.split == split) & (med.grouping == "treatment")].set_index("group")
        np.testing.assert_array_equal(mt.loc[kt.index, "events"], kt["events"])
        np.testing.assert_allclose(mt.loc[kt.index, "median"], kt["median"])
    # the HR reads high vs low everywhere
    hr = t["cox_hr"]
    assert set(hr.term) == {"high_risk"}
    # pooled Cox: the same model fitted directly, with the centre; the absent covariate and the
    # post-baseline one are named
    pooled = t["pooled_cox"]
    data = d.merge(c.drop(columns=["os_days", "os_event", "centre"]), left_on="patient_id", right_index=True)
    ref = surv.cox_hazard_ratios("os_days", "os_event",
                                 ["high_risk", "age", "ecog", "bclc", "subsequent_therapy", "centre"],
                                 data=data, engine="python")
    adj = pooled[pooled.model.str.startswith("adjusted")].reset_index(drop=True)
    np.testing.assert_allclose(adj.estimate, ref.estimate, rtol=1e-10)
    assert list(adj.term) == list(ref.term)
    assert adj.loc[adj.term == "subsequent_therapy", "post_baseline"].all() and not adj.post_baseline.iloc[0]
    assert "not_a_column" in art.notes["pooled_cox"] and "post-baseline" in art.notes["pooled_cox"]
    assert "post-baseline" in art.notes["adjusted_cox"]
    ext = t["adjusted_cox"]
    assert ext.n.iloc[0] == (pred.frame.split == "external").sum()


def test_pooled_cox_matches_r_coxph(study, tmp_path):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript not installed")
    art = Artefacts(tmp_path)
    pred, c = study.pred, study.cohort.clinical
    analyses.risk_group_analyses(art, pred, c, "python", adjust_for=["age", "ecog", "bclc", "subsequent_therapy"])
    d, _ = analyses.risk_groups(pred)
    data = d.merge(c.drop(columns=["os_days", "os_event", "centre"]), left_on="patient_id", right_index=True)
    data[["os_days", "os_event", "high_risk", "age", "ecog", "bclc", "subsequent_therapy", "centre"]].to_csv(
        tmp_path / "d.csv", index=False)
    code = (f"library(survival); d <- read.csv('{tmp_path / 'd.csv'}'); "
            "f <- coxph(Surv(os_days, os_event) ~ high_risk + age + ecog + bclc + subsequent_therapy + centre, d); "
            "write.csv(data.frame(hr = exp(coef(f)), lo = exp(confint(f))[, 1]), stdout(), row.names = FALSE)")
    env = {"R_LIBS": str(Path(__file__).resolve().parents[2].parent / "main" / ".Rlib"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        pytest.skip(f"R survival unavailable: {out.stderr[-200:]}")
    from io import StringIO
    r = pd.read_csv(StringIO(out.stdout))
    adj = art.tables["pooled_cox"]
    adj = adj[adj.model.str.startswith("adjusted")]
    np.testing.assert_allclose(adj.estimate, r.hr, rtol=1e-6)
    np.testing.assert_allclose(adj.lower, r.lo, rtol=1e-6)


def test_flow_diagram_counts(study):
    flow = analyses.flow_diagram_table(study.cohort, study.split, COLS, ["A"], ["B"], imputed_radiomics=["A0001"])
    c = study.cohort.clinical
    box = flow.set_index("box")
    for ctr in ("A", "B", "C"):
        assert box.at[f"centre {ctr}", "n"] == (c.centre == ctr).sum()
    assert box.at["excluded C", "n"] == 12 and box.at["excluded C", "parent"] == "centre C"
    assert "not used" in box.at["centre C", "label"]
    assert list(flow[flow.level == "split"].box) == ["train", "test", "external"]
    assert box.loc[["train", "test"], "n"].sum() == box.at["centre A", "n"]
    assert box.at["external", "deaths"] == c.loc[c.centre == "B", "os_event"].sum()
    imputed_in = "train" if study.split["A0001"] == "train" else "test"
    assert box.at[imputed_in, "detail"] == "1 with imputed radiomics"


def test_table_one_in_flow_order_with_categories(study, art):
    analyses.descriptive_tables(art, study.cohort.clinical, study.split, COLS, [], pd.Series(dtype=float))
    t1 = art.tables["table1"]
    groups = [c for c in t1.columns if "(n=" in c]
    assert [g.split(" (n=")[0] for g in groups] == ["Overall", "Training", "Internal test", "External"]
    ecog = t1[t1.Variable.str.startswith("ecog")]
    assert ecog.Variable.iloc[0] == "ecog, n (%)" and list(ecog.Level) == ["0", "1", "2"]
    assert list(t1[t1.Variable.str.startswith("hbv")].Level) == ["no", "yes"]
    # counts are those of the raw codes
    tr = study.cohort.clinical.loc[study.split == "train"]
    assert ecog.iloc[0]["Training (n=63)"].startswith(f"{(tr.ecog == 0).sum()} (")


def test_correlation_tables_call_correlation_matrix(study, art):
    X = study.cohort.clinical[["albumin", "bilirubin", "ast", "age"]]
    train = study.split.index[study.split == "train"]
    models = {"survival": {PRIME_S: SimpleNamespace(selected_features_=pd.DataFrame(
        {"feature": ["albumin", "bilirubin", "ast", "albumin", "absent"]}))}}
    analyses.correlation_tables(art, X, train, models)
    ref = descriptive.correlation_matrix(X.loc[train], ["albumin", "bilirubin", "ast"]).long
    pd.testing.assert_frame_equal(art.tables["correlation_survival"].drop(columns="split"), ref)
    assert "correlation_response" not in art.tables


def test_survival_calibration_every_model_and_a_failure_is_a_note(study, art):
    pred = study.pred
    g = pred.in_split("external")
    pred2 = Predictions(pred.frame.copy(), pred.columns, pred.times, dict(pred.response), dict(pred.risk),
                        dict(pred.survival))
    pred2.add_risk("constant", np.zeros(len(pred2.frame)), np.full((len(pred2.frame), len(pred2.times)), 0.7))
    analyses.calibration_tables(art, pred2, seed=5)
    cur = art.tables["calibration_curves"]
    s = cur[(cur.endpoint == "survival") & (cur.split == "external")]
    assert set(s.model) == {PRIME_S, "clinical", "early fusion"}
    assert sorted(s.horizon.unique()) == [365.25, 730.5]
    assert any(k.startswith("calibration_curves_constant_12m") for k in art.notes)
    ref = fd.calibration_curves_survival(g.os_days.to_numpy(float), g.os_event.to_numpy(int),
                                         {PRIME_S: 1 - g[pred.survival[PRIME_S][1]].to_numpy()}, 365.25,
                                         random_state=5)
    mine = s[(s.model == PRIME_S) & (s.horizon == 365.25)].drop(columns="split").reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, ref)


def test_survival_decision_curve_matches_dcurves(study, art):
    dcurves = pytest.importorskip("dcurves")
    pred = study.pred
    analyses.survival_decision_tables(art, pred)
    nb = art.tables["decision_curve_survival"]
    g = pred.in_split("external")
    t = 730.5
    df = pd.DataFrame({"time": g.os_days.to_numpy(float), "event": g.os_event.to_numpy(int),
                       "PRIME_S": 1 - g[pred.survival[PRIME_S][pred.times.index(t)]].to_numpy()})
    ref = dcurves.dca(data=df, outcome="event", modelnames=["PRIME_S"], thresholds=analyses.NET_BENEFIT_THRESHOLDS,
                      time=t, time_to_outcome_col="time")
    ref = ref[ref.model == "PRIME_S"].set_index("threshold").net_benefit.astype(float)
    mine = nb[(nb.split == "external") & (nb.horizon == t) & (nb.model == PRIME_S)].set_index("threshold").net_benefit
    np.testing.assert_allclose(mine.loc[ref.index], ref, atol=1e-12)


def test_new_figures_render_from_the_stored_tables(study, art):
    pred, c = study.pred, study.cohort.clinical
    analyses.risk_group_analyses(art, pred, c, "python", adjust_for=["age", "subsequent_therapy"])
    analyses.survival_contrasts(art, pred, seed=1, B=100)
    art.table("flow_diagram", analyses.flow_diagram_table(study.cohort, study.split, COLS, ["A"], ["B"]))
    render.risk_group_figures(art, "python")
    render.survival_model_figures(art, "python")
    render.flow_figure(art)
    for key in ("km_train", "km_test", "km_external", "km_treatment_train", "km_treatment_external", "pooled_cox",
                "survival_contrasts", "flow_diagram"):
        assert art.figures[key].is_file(), key


def test_paradox_and_omics_use_only_predictions_not_fitted_on_the_patient(study, art):
    """Training rows take PRIME-R's and PRIME-S's out-of-fold predictions, test/external rows the frozen
    models'; every paradox table names its split; the omics groups come from those predictions."""
    pred = study.pred
    f = pred.frame.set_index("patient_id")
    tr = f.index[f["split"] == "train"]
    oof_p = pd.Series(np.linspace(0.05, 0.95, len(tr)), index=tr)
    oof_r = pd.Series(np.linspace(-1, 1, len(tr)), index=tr)
    models = {"response": {"PRIME-R": SimpleNamespace(oof_predict_proba=lambda: oof_p)},
              "survival": {PRIME_S: SimpleNamespace(oof_predict=lambda: oof_r)}}
    d = analyses.unfitted_predictions(models, pred)
    np.testing.assert_allclose(d.loc[tr, "probability"], oof_p)
    np.testing.assert_allclose(d.loc[tr, "risk"], oof_r)
    assert (d.loc[tr, "predictions"] == analyses.OOF).all()
    ext = f.index[f["split"] == "external"]
    np.testing.assert_allclose(d.loc[ext, "probability"], f.loc[ext, pred.response["PRIME-R"]])
    np.testing.assert_allclose(d.loc[ext, "risk"], f.loc[ext, pred.risk[PRIME_S]])
    assert (d.loc[ext, "predictions"] == analyses.FROZEN).all()

    split, res = analyses.paradox_analysis(art, pred, models, "python")
    assert split == "external"
    for key in ("paradox", "paradox_hr", "landmark_response", "response_risk_correlation", "paradox_divergence"):
        assert art.tables[key]["split"].notna().all(), key
    assert set(art.tables["landmark_response"]["split"]) == {"train", "test", "external"}
    corr = art.tables["response_risk_correlation"].set_index("split")
    assert corr.loc["train", "predictions"] == analyses.OOF and corr.loc["external", "predictions"] == analyses.FROZEN
    assert set(art.tables["paradox"]["split"]) <= {"test", "external"}      # never the training split

    th = analyses.frozen_thresholds(models, pred)
    groups = analyses.omics_groups(d, th)
    assert (groups["response"].loc[tr] == np.where(oof_p >= th.response_threshold, "responder",
                                                   "non-responder")).all()
    assert (groups["survival"].loc[ext] == np.where(f.loc[ext, pred.risk[PRIME_S]] > th.risk_threshold,
                                                    "high risk", "low risk")).all()
