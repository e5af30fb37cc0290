"""StudyConfig validation, the split, and a small simulate -> run through the CLI."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from prime_stats.cli import main
from prime_stats.study import ConfigError, StudyConfig, run_study, split_cohort, load_cohort


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    assert main(["simulate", "--out", str(out), "--seed", "7", "--n-a", "90", "--n-b", "60",
                 "--no-images", "--n-expression", "0", "--quiet"]) == 0
    cfg = yaml.safe_load((out / "study.yaml").read_text())
    cfg["models"] = {"family": "baseline"}
    cfg["split"] = {"test_fraction": 0.3}    # the paper's internal test split, which these tests check
    (out / "study.yaml").write_text(yaml.safe_dump(cfg))
    return out


def test_simulate_run_end_to_end(sim, capsys):
    assert main(["run", str(sim / "study.yaml"), "--quiet", "--no-report"]) == 0
    printed = capsys.readouterr().out
    assert "AUC" in printed and "outputs in" in printed
    res = sim / "results"
    pred = pd.read_csv(res / "predictions.csv")
    assert set(pred.split) == {"train", "test", "external"}
    assert (pred.split == "external").sum() == 60
    assert pred.prob_baseline.between(0, 1).all() and pred.risk_baseline.notna().all()
    s = pred.filter(like="surv_baseline_").to_numpy()
    assert (np.diff(s, axis=1) <= 1e-12).all() and ((s >= 0) & (s <= 1)).all()
    metrics = pd.read_csv(res / "metrics.csv")
    assert {"endpoint", "model", "split", "metric", "estimate", "lower", "upper", "engine"} <= set(metrics.columns)
    auc = metrics.query("metric == 'AUC' and split == 'external'")
    assert len(auc) == 1 and 0.3 < auc.estimate.iloc[0] < 1 and auc.lower.iloc[0] < auc.estimate.iloc[0]
    c = metrics[metrics.metric.str.startswith("C-index") & (metrics.split == "external")]
    assert len(c) >= 1 and c.estimate.between(0.5, 1).all()
    assert {"train", "test", "external"} <= set(metrics.split)
    prov = json.loads((res / "provenance.json").read_text())
    assert prov["seed"] == 7 and len(prov["data_sha256"]["clinical"]) == 64


def test_split_is_stratified_reproducible_and_disjoint(sim):
    cfg = StudyConfig.from_yaml(sim / "study.yaml")
    cohort = load_cohort(cfg)
    s1, s2 = split_cohort(cohort, cfg), split_cohort(cohort, cfg)
    pd.testing.assert_series_equal(s1, s2)
    dev = cohort.centre == "A"
    assert (s1[dev] != "external").all() and (s1[~dev] == "external").all()
    assert abs((s1 == "test").sum() - 0.3 * dev.sum()) <= 1
    rr = cohort.response.groupby(s1).mean()
    assert abs(rr["train"] - rr["test"]) < 0.08


def test_same_config_same_numbers(sim, tmp_path):
    cfg = StudyConfig.from_yaml(sim / "study.yaml")
    cfg.output = str(tmp_path / "a")
    a = run_study(cfg, progress=False, report=False).predictions
    cfg.output = str(tmp_path / "b")
    b = run_study(cfg, progress=False, report=False).predictions
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize("raw, message", [
    ({}, "'data.clinical' is required"),
    ({"data": {"clinical": "clinical.csv"}, "sed": 1}, "unknown config key 'sed'"),
    ({"data": {"clinical": "clinical.csv"}, "split": {"test_fracton": 0.3}}, "'split.test_fracton'"),
    ({"data": {"clinical": "clinical.csv"}, "split": {"test_fraction": 1.5}}, "'split.test_fraction'"),
    ({"data": {"clinical": "clinical.csv"}, "seed": "x"}, "'seed' must be int"),
    ({"data": {"clinical": "nope.csv"}}, "'data.clinical': file not found"),
    ({"data": {"clinical": "clinical.csv"}, "models": {"family": "magic"}}, "'models.family'"),
    ({"data": {"clinical": "clinical.csv"}, "evaluation": {"times": [365, -1]}}, "'evaluation.times'"),
    ({"data": {"clinical": "clinical.csv"}, "split": {"external": ["A"]}}, "'split.external'"),
])
def test_bad_config_names_the_key(sim, raw, message):
    with pytest.raises(ConfigError, match=message):
        StudyConfig.from_dict(raw, base_dir=sim)


def test_cli_exit_codes_and_messages(sim, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"data": {"clinical": str(sim / "clinical.csv")}, "outptu": "x"}))
    r = subprocess.run([sys.executable, "-m", "prime_stats.cli", "run", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown config key 'outptu'" in r.stderr
    broken = pd.read_csv(sim / "clinical.csv")
    broken.loc[4, "os_event"] = 3
    broken.to_csv(tmp_path / "clinical.csv", index=False)
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump({"data": {"clinical": "clinical.csv"}}))
    r = subprocess.run([sys.executable, "-m", "prime_stats.cli", "run", str(tmp_path / "ok.yaml")],
                       capture_output=True, text=True)
    assert r.returncode == 3 and "os_event: must be 0/1" in r.stderr and "A0005" in r.stderr
    r = subprocess.run([sys.executable, "-m", "prime_stats.cli", "simulate", "--help"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "example:" in r.stdout


def test_prime_engine_on_clinical_features(sim, tmp_path):
    """PRIME-R / PRIME-S (fast grids) end to end on a clinical-only cohort: frozen models,
    survival functions, risk groups and the responder paradox."""
    raw = yaml.safe_load((sim / "study.yaml").read_text())
    raw.update(models={"family": "prime", "fast": True}, explain={"shap": False},
               evaluation={"nested_cv": False}, output=str(tmp_path / "prime"))
    cfg = StudyConfig.from_dict(raw, base_dir=sim)
    res = run_study(cfg, progress=False, report=False)
    pred = res.predictions
    assert {"prob_prime_r", "risk_prime_s"} <= set(pred.columns)
    s = pred.filter(like="surv_prime_s_").to_numpy()
    assert (np.diff(s, axis=1) <= 1e-12).all() and ((s >= 0) & (s <= 1)).all()
    m = res.metrics
    ext = m[(m.split == "external") & (m.model == "PRIME-S") & (m.metric == "C-index")
          & m.method.str.contains("Harrell")]
    assert len(ext) == 1 and ext.estimate.iloc[0] > 0.55  # survival drivers are clinical in the simulator
    tables = set(res.artefacts.tables)
    assert {"flow", "table1", "missingness", "metrics", "fusion_weights", "km_groups", "paradox"} <= tables
    # evaluation.engine "auto": the risk-group survival statistics run in R when it is installed
    from prime_stats import rbridge
    expected = "R" if rbridge.r_available(("survival",)) else "python"
    for key in ("logrank", "cox_hr", "cox_zph"):
        assert set(res.artefacts.tables[key]["engine"]) == {expected}, key
    assert (res.output_dir / "models" / "response_prime_r.skops").is_file()
    art = json.loads((res.output_dir / "artefacts.json").read_text())
    assert "km_external" in art["figures"] and "risk_cutoff" in art["notes"]
    # issue 12's analyses run in a default prime study (or leave a note): flow diagram, KM in every split
    # and by treatment with median OS, paired C-index differences, pooled adjusted Cox, correlations
    assert {"flow_diagram", "km_medians", "survival_contrasts", "pooled_cox", "km_treatment_curves",
            "correlation_survival"} <= set(art["tables"])
    assert {"flow_diagram", "discrimination_summary", "km_train", "km_treatment_external", "pooled_cox",
            "survival_contrasts", "correlation_survival"} <= set(art["figures"])

    # SHAP of the frozen models (the validated PRIME-R / PRIME-S, no refit) on a few test and external
    # patients: the values add up to each patient's own validated prediction; figures from the stored tables
    from prime_stats.study import render
    from prime_stats.study.record import Artefacts
    from prime_stats.study.run import _frozen_explanations
    from prime_stats.study.stage_cache import StageCache

    art = Artefacts(tmp_path / "frozen")
    small = StudyConfig.from_dict({**raw, "explain": {"frozen_rows": 4}}, base_dir=sim)
    shap = _frozen_explanations(art, StageCache(tmp_path / "cache", enabled=False), (), res.models, res.features,
                                res.split.index[res.split == "train"], res.split, small, lambda msg: None)
    by_id = pred.set_index(res.config.columns.id)
    for endpoint, column in (("response", "prob_prime_r"), ("survival", "risk_prime_s")):
        r = shap[endpoint]
        assert sorted(pd.Series(r.fold).value_counts()) == [4, 4]
        np.testing.assert_allclose(r.base_values + r.values.sum(axis=1), by_id.loc[r.values.index, column], atol=1e-8)
        t = art.tables[f"shap_frozen_{endpoint}"]
        assert {"mean_abs_shap_test", "mean_abs_shap_external"} <= set(t) and (t["mean_abs_shap"] > 0).all()
        assert t["explained"].iloc[0].startswith("4 of ") and "background 30 training rows" in t["method"].iloc[0]
    render.frozen_explanation_figures(art, 12)
    assert {"shap_frozen_response", "shap_frozen_survival"} <= set(art.figures)

    # the frozen study scores the same patients identically and validates new cohorts separately
    from prime_stats.cohort import Cohort
    from prime_stats.study import FrozenStudy
    from prime_stats.simulate import simulate_cohort

    frozen = FrozenStudy.load(res.output_dir)
    ext = res.cohort.subset(res.split.index[res.split == "external"])
    again = frozen.predict(ext, name="external")
    np.testing.assert_allclose(again["prob_prime_r"], pred.loc[pred.split == "external", "prob_prime_r"])
    np.testing.assert_allclose(again["risk_prime_s"], pred.loc[pred.split == "external", "risk_prime_s"])
    new, _ = simulate_cohort(30, 40, seed=99)
    cohorts = {"centre_C": Cohort(new[new.centre == "A"]), "centre_D": Cohort(new[new.centre == "B"])}
    val = frozen.validate(cohorts, engine="python")
    assert set(val.split) == {"centre_C", "centre_D"}
    assert set(val.query("metric == 'AUC'").model) >= {"PRIME-R"}
    no_outcomes = new.drop(columns=["response_3m", "os_days", "os_event"])
    p = frozen.predict(Cohort(no_outcomes, require_outcomes=False))
    assert len(p) == 70 and p["prob_prime_r"].between(0, 1).all()


def test_rerun_reuses_cached_models_and_any_change_refits(sim, tmp_path, capsys):
    """The stage cache: a rerun on the same data and config reuses the fitted models (identical
    predictions and metrics); a new seed or changed training outcomes refit; --no-cache refits."""
    raw = yaml.safe_load((sim / "study.yaml").read_text())
    raw.update(models={"family": "prime", "fast": True}, explain={"shap": False},
               evaluation={"nested_cv": False, "engine": "python"}, output=str(tmp_path / "prime"))
    cfg = StudyConfig.from_dict(raw, base_dir=sim)
    first = run_study(cfg, progress=True, report=False)
    assert "reused from the cache" not in capsys.readouterr().err
    assert len(list((tmp_path / "prime" / "cache").glob("models-*"))) == 1
    # no pickle anywhere in the cache: skops models, JSON, Parquet and .npy only
    suffixes = {f.suffix for f in (tmp_path / "prime" / "cache").rglob("*") if f.is_file()}
    assert suffixes <= {".skops", ".json", ".parquet", ".npy"}, suffixes
    again = run_study(cfg, progress=True, report=False)
    assert "models: reused from the cache" in capsys.readouterr().err
    prov = json.loads((tmp_path / "prime" / "provenance.json").read_text())
    assert prov["stage_cache"]["reused"] == ["models"] and prov["stage_cache"]["computed"] == []
    pd.testing.assert_frame_equal(first.predictions, again.predictions)
    pd.testing.assert_frame_equal(first.metrics, again.metrics)
    # the frozen models are the cache entry's skops files, copied rather than serialised again
    import filecmp
    entry = next((tmp_path / "prime" / "cache").glob("models-*"))
    for f in entry.glob("*.skops"):
        assert filecmp.cmp(f, tmp_path / "prime" / "models" / f.name, shallow=False), f.name

    cfg.seed = 8
    run_study(cfg, progress=True, report=False)
    assert "reused from the cache" not in capsys.readouterr().err
    assert len(list((tmp_path / "prime" / "cache").glob("models-*"))) == 2
    cfg.seed = 7
    cfg.models.cache = False
    run_study(cfg, progress=True, report=False)
    assert "reused from the cache" not in capsys.readouterr().err


def test_stage_cache_keys_on_inputs_and_survives_a_corrupt_entry(tmp_path, monkeypatch):
    from prime_stats.study.stage_cache import StageCache

    calls, messages = [], []
    cache = StageCache(tmp_path, log=messages.append)

    def work(x):
        calls.append(x)
        return {"double": 2 * x}

    df = pd.DataFrame({"a": [1.0, 2.0]})
    assert cache("stage", (df, 1), work, 3) == {"double": 6}
    assert cache("stage", (df.copy(), 1), work, 3) == {"double": 6} and calls == [3]
    df2 = df.assign(a=[1.0, 2.5])
    cache("stage", (df2, 1), work, 3)
    cache("other", (df, 1), work, 3)
    assert calls == [3, 3, 3] and cache.hits == ["stage"]
    path = cache.path("stage", (df, 1))
    (path / "data.json").write_text("{not json")
    assert cache("stage", (df, 1), work, 4) == {"double": 8}
    assert any("unreadable" in m for m in messages)
    assert not list(tmp_path.glob("*.tmp"))
    # the key covers prime-stats' own source code, not only its version string
    from prime_stats.study import stage_cache
    monkeypatch.setattr(stage_cache, "source_hash", lambda: "edited sources")
    assert cache("stage", (df, 1), work, 4) == {"double": 8} and calls[-1] == 4 and len(calls) == 5
    off = StageCache(tmp_path / "off", enabled=False)
    off("stage", (df, 1), work, 5)
    assert calls[-1] == 5 and not (tmp_path / "off").exists()
