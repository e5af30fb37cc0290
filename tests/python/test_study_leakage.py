"""Leakage guards at the level of the whole study run.

1. External and internal-test outcomes never reach a learned step: permuting them leaves every
   prediction unchanged (PRIME engine: selection, tuning, fusion, BMA weights, thresholds).
2. With the development centre's outcomes permuted, external discrimination is at chance level:
   |AUC - 0.5| and |C - 0.5| within 3 null standard errors.
"""
import numpy as np
import pandas as pd
import pytest
import yaml

from prime_stats.simulate import simulate_cohort
from prime_stats.study import StudyConfig, run_study


def _study(tmp_path, clinical: pd.DataFrame, name: str, family: str):
    folder = tmp_path / name
    folder.mkdir()
    clinical.to_csv(folder / "clinical.csv", index=False)
    raw = {"data": {"clinical": "clinical.csv"}, "seed": 3, "models": {"family": family, "fast": True},
           "explain": {"shap": False}, "evaluation": {"nested_cv": False, "engine": "python"}}
    return run_study(StudyConfig.from_dict(raw, base_dir=folder), progress=False, report=False)


@pytest.fixture(scope="module")
def cohort():
    df, _ = simulate_cohort(90, 120, seed=21)
    return df


def test_held_out_outcomes_never_influence_the_models(tmp_path, cohort):
    rng = np.random.default_rng(0)
    a = _study(tmp_path, cohort, "original", "prime")
    external = a.split.index[a.split == "external"]
    test = a.split.index[a.split == "test"]
    shuffled = cohort.set_index("patient_id")
    for col in ("response_3m", "os_days", "os_event"):
        shuffled.loc[external, col] = rng.permutation(shuffled.loc[external, col].to_numpy())
    # the split is stratified by response, so internal-test patients keep their response and
    # exchange their survival outcomes
    order = rng.permutation(len(test))
    shuffled.loc[test, ["os_days", "os_event"]] = shuffled.loc[test, ["os_days", "os_event"]].to_numpy()[order]
    b = _study(tmp_path, shuffled.reset_index(), "shuffled", "prime")
    pd.testing.assert_series_equal(a.split, b.split)
    cols = [c for c in a.predictions.columns if c.startswith(("prob_", "risk_", "surv_"))]
    pd.testing.assert_frame_equal(a.predictions[cols], b.predictions[cols])


def test_permuted_training_outcomes_give_chance_external_performance(tmp_path, cohort):
    rng = np.random.default_rng(1)
    perm = cohort.copy()
    dev = perm["centre"] == "A"
    for col in ("response_3m",):
        perm.loc[dev, col] = rng.permutation(perm.loc[dev, col].to_numpy())
    idx = np.flatnonzero(dev)
    perm.loc[dev, ["os_days", "os_event"]] = perm.loc[dev, ["os_days", "os_event"]].to_numpy()[rng.permutation(len(idx))]
    res = _study(tmp_path, perm, "permuted", "baseline")
    ext = res.metrics.query("split == 'external'")
    n1 = int(cohort.loc[~dev, "response_3m"].sum())
    n0 = int((~dev).sum()) - n1
    se_auc = np.sqrt((n0 + n1 + 1) / (12 * n0 * n1))  # Mann-Whitney null SD of the AUC
    auc = ext.query("metric == 'AUC'").estimate.iloc[0]
    assert abs(auc - 0.5) < 3 * se_auc, (auc, se_auc)
    c = ext[(ext.metric == "C-index") & ext.method.str.contains("Harrell")].estimate.iloc[0]
    assert abs(c - 0.5) < 3 * se_auc, c
