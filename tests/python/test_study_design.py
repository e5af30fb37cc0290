"""Study designs beyond the default: one endpoint only, no internal test split, and the checks that
stop bad input before any model is fitted; a degenerate (null-signal) model that still finishes."""
import numpy as np
import pandas as pd
import pytest

from prime_stats.cli import main
from prime_stats.cohort import CohortError
from prime_stats.simulate import simulate_cohort
from prime_stats.study import ConfigError, StudyConfig, run_study


@pytest.fixture(scope="module")
def clinical():
    df, _ = simulate_cohort(90, 60, seed=5)
    return df


def _config(folder, clinical, **sections):
    folder.mkdir(parents=True, exist_ok=True)
    clinical.to_csv(folder / "clinical.csv", index=False)
    raw = {"data": {"clinical": "clinical.csv"}, "seed": 5, "models": {"family": "baseline"},
           "explain": {"shap": False}, "evaluation": {"engine": "python", "nested_cv": False}}
    for k, v in sections.items():
        raw[k] = {**raw.get(k, {}), **v} if isinstance(v, dict) else v
    return StudyConfig.from_dict(raw, base_dir=folder)


def test_survival_only_study(tmp_path, clinical):
    cfg = _config(tmp_path / "s", clinical.drop(columns="response_3m"), columns={"response": None},
                  split={"test_fraction": 0.3})
    res = run_study(cfg, progress=False, report=False)
    assert set(res.metrics.endpoint) == {"survival"}
    assert not any(c.startswith("prob_") for c in res.predictions.columns)
    assert "response_3m" not in res.predictions.columns
    # the split is stratified by the event when there is no response ("auto")
    ev = res.cohort.clinical["os_event"].groupby(res.split).mean()
    assert abs(ev["train"] - ev["test"]) < 0.06
    assert {"km_groups", "flow"} <= set(res.artefacts.tables)
    assert "responders" not in res.artefacts.tables["flow"].columns


def test_response_only_study_with_prime_models(tmp_path, clinical):
    cfg = _config(tmp_path / "r", clinical.drop(columns=["os_days", "os_event"]),
                  columns={"time": None, "event": None}, models={"family": "prime", "fast": True},
                  evaluation={"nested_cv": True})
    res = run_study(cfg, progress=False, report=False)
    assert set(res.metrics.endpoint) == {"response"}
    assert "prob_prime_r" in res.predictions and not any(c.startswith("risk_") for c in res.predictions)
    assert "km_groups" not in res.artefacts.tables and "paradox" not in res.artefacts.tables
    assert res.artefacts.notes["nested_cv"].startswith("not run")


def test_no_internal_test_split(tmp_path, clinical):
    cfg = _config(tmp_path / "t0", clinical, split={"test_fraction": 0})
    res = run_study(cfg, progress=False, report=False)
    assert set(res.split) == {"train", "external"}
    assert (res.split == "train").sum() == 90 and set(res.metrics.split) == {"train", "external"}


@pytest.mark.parametrize("sections, message", [
    ({"columns": {"time": None}}, "columns.time and columns.event must both"),
    ({"columns": {"response": None, "time": None, "event": None}}, "needs an endpoint"),
    ({"columns": {"response": None}, "split": {"stratify": "response"}}, "'split.stratify' is 'response'"),
    ({"split": {"test_fraction": 1}}, r"'split.test_fraction' must be in \[0, 1\)"),
    ({"evaluation": {"bootstrap": -1}}, "'evaluation.bootstrap' must be >= 0"),
])
def test_bad_designs_name_the_key(tmp_path, clinical, sections, message):
    with pytest.raises(ConfigError, match=message):
        _config(tmp_path / "bad", clinical, **sections)


def test_whole_number_doubles_are_accepted_for_int_settings(tmp_path, clinical):
    cfg = _config(tmp_path / "i", clinical, seed=7.0, evaluation={"bootstrap": 20.0})
    assert cfg.seed == 7 and isinstance(cfg.seed, int) and cfg.evaluation.bootstrap == 20
    with pytest.raises(ConfigError, match="'seed' must be int, got 7.5"):
        _config(tmp_path / "i2", clinical, seed=7.5)


def test_horizons_beyond_follow_up_stop_before_fitting(tmp_path, clinical):
    months = clinical.assign(os_days=clinical["os_days"] / 30.4375)   # times given in months
    cfg = _config(tmp_path / "m", months)
    with pytest.raises(ConfigError, match=r"'evaluation.times': horizon\(s\) \[.*\] are at or beyond the last "
                                          r"follow-up \(os_days ranges"):
        run_study(cfg, progress=False, report=False)
    assert not (tmp_path / "m" / "results" / "predictions.csv").exists()


def test_text_in_a_numeric_predictor_is_an_input_error(tmp_path, clinical):
    bad = clinical.astype({"afp": object})
    bad.loc[[3, 17], "afp"] = ["<5", ">1000"]
    cfg = _config(tmp_path / "txt", bad)
    with pytest.raises(CohortError, match=r"column 'afp' is numeric but has text value\(s\) \['<5', '>1000'\] "
                                          r"for patient\(s\) \['A0004', 'A0018'\]"):
        run_study(cfg, progress=False, report=False)
    # the CLI says so with exit code 3
    (tmp_path / "txt" / "study.yaml").write_text("data: {clinical: clinical.csv}\nmodels: {family: baseline}\n")
    assert main(["run", str(tmp_path / "txt" / "study.yaml"), "--quiet", "--no-report"]) == 3
    # declared categorical, the same column is used as levels
    ok = _config(tmp_path / "cat", bad, features={"categorical": ["afp"]})
    res = run_study(ok, progress=False, report=False)
    assert any(c.startswith("afp=") for c in res.features.clinical)


def test_decimal_commas_are_an_input_error(tmp_path, clinical):
    bad = clinical.assign(albumin=clinical["albumin"].map(lambda v: f"{v:.1f}".replace(".", ",")))
    with pytest.raises(CohortError, match="column 'albumin' looks numeric with decimal commas"):
        run_study(_config(tmp_path / "comma", bad), progress=False, report=False)


@pytest.mark.parametrize("engine", ["python", "auto"])
def test_null_signal_finishes_with_notes_instead_of_crashing(tmp_path, clinical, engine):
    """Outcomes permuted and every predictor constant: every model predicts (almost) one value.
    The run completes; statistics that are undefined are NaN with a note naming model and split."""
    null = clinical.copy()
    rng = np.random.default_rng(0)
    for c in null.columns:
        if c not in ("patient_id", "centre", "response_3m", "os_days", "os_event"):
            null[c] = null[c].iloc[0]
    null[["os_days", "os_event"]] = null[["os_days", "os_event"]].to_numpy()[rng.permutation(len(null))]
    cfg = _config(tmp_path / "null", null, evaluation={"engine": engine})
    assert main(["run", str(_write_yaml(cfg, tmp_path / "null")), "--quiet", "--no-report"]) == 0
    m = pd.read_csv(tmp_path / "null" / "results" / "metrics.csv")
    assert len(m) > 0
    noted = m[m["note"].notna()]
    assert len(noted) and noted["estimate"].isna().all()
    assert noted["note"].str.contains("baseline, ").all()


def _write_yaml(cfg, folder):
    import yaml
    d = cfg.to_dict()
    d["output"] = "results"
    (folder / "study.yaml").write_text(yaml.safe_dump(d))
    return folder / "study.yaml"


def test_bootstrap_optimism_of_the_whole_pipeline_beside_apparent(tmp_path, clinical):
    """split.test_fraction 0 + evaluation.bootstrap B: PRIME-R and PRIME-S refitted on B bootstrap
    samples; apparent, optimism and corrected side by side (rms::validate), corrected rows in metrics."""
    cfg = _config(tmp_path / "opt", clinical, split={"test_fraction": 0}, evaluation={"bootstrap": 2},
                  models={"family": "prime", "fast": True})
    res = run_study(cfg, progress=False, report=False)
    opt = res.artefacts.tables["optimism"]
    assert set(opt["model"]) == {"PRIME-R", "PRIME-S"} and (opt["B"] == 2).all()
    assert {"AUC", "Brier", "slope", "C-index"} <= set(opt["metric"])
    np.testing.assert_allclose(opt["corrected"], opt["apparent"] - opt["optimism"])
    m = res.metrics
    corr = m[(m.split == "optimism_corrected") & (m.model == "PRIME-R") & (m.metric == "AUC")]
    app = m[(m.split == "train") & (m.model == "PRIME-R") & (m.metric == "AUC")]
    assert len(corr) == 1 and len(app) == 1
    row = opt[(opt.model == "PRIME-R") & (opt.metric == "AUC")].iloc[0]
    assert corr.estimate.iloc[0] == pytest.approx(row["corrected"])
    assert app.estimate.iloc[0] == pytest.approx(row["apparent"], abs=1e-9)   # the same apparent AUC
