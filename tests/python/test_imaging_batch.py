"""Batch extraction: manifest checks, failure isolation, cache/resume, local processes, Dask, and the
simulated study's dual-phase volumes. Real CTs from ../shared/data/ibsi/sts_ct."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from prime_stats.imaging import RadiomicsSettings, extract_manifest, icc_filter, read_manifest

FAST = {"image_types": {"Original": {}}, "feature_classes": ["firstorder", "shape"], "resampled_spacing": None}


@pytest.fixture()
def study(shared_data, tmp_path):
    """Three patients x two phases of real CT (copied so they can be broken), relative paths."""
    root = shared_data / "ibsi" / "sts_ct"
    src = {"P1": ("STS_002", "STS_008"), "P2": ("STS_025", "STS_041"), "P3": ("STS_042", "STS_003")}
    rows = []
    for pid, pair in src.items():
        for phase, name in zip(("AP", "PVP"), pair):
            d = tmp_path / "data" / pid / phase
            d.mkdir(parents=True)
            shutil.copy(root / name / "CT_image.nii.gz", d / "ct.nii.gz")
            shutil.copy(root / name / "CT_mask.nii.gz", d / "mask.nii.gz")
            rows.append({"patient_id": pid, "phase": phase, "image": f"data/{pid}/{phase}/ct.nii.gz",
                         "mask": f"data/{pid}/{phase}/mask.nii.gz"})
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def test_manifest_validation(study, tmp_path):
    df = read_manifest(study)
    assert df["image"].map(lambda p: p.startswith(str(tmp_path))).all()  # relative to the manifest folder
    raw = pd.read_csv(study)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['mask'\]"):
        read_manifest(raw.drop(columns="mask"))
    bad = raw.copy()
    bad.loc[3, "phase"] = "DP"
    with pytest.raises(ValueError, match="unknown phase 'DP' for patient P2"):
        read_manifest(bad)
    with pytest.raises(ValueError, match="P1/AP"):
        read_manifest(pd.concat([raw, raw.iloc[[0]]]))
    with pytest.raises(ValueError, match="workers"):
        extract_manifest(study, tmp_path / "f.parquet", FAST, workers=0)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_manifest(tmp_path / "nope.csv")


def test_broken_cases_are_isolated_and_a_rerun_resumes(study, tmp_path):
    data = tmp_path / "data"
    (data / "P3" / "PVP" / "ct.nii.gz").rename(data / "P3" / "PVP" / "ct.bak.nii.gz")  # missing file
    mask = sitk.ReadImage(str(data / "P2" / "AP" / "mask.nii.gz"))
    sitk.WriteImage(mask * 0, str(data / "P2" / "AP" / "mask.nii.gz"))  # empty mask
    out = tmp_path / "out" / "features.parquet"

    res = extract_manifest(study, out, FAST, progress=False)
    log = res.log.set_index(["patient_id", "phase"])
    assert log.loc[("P1", "AP"), "status"] == "ok" and log.loc[("P2", "PVP"), "status"] == "ok"
    assert log.loc[("P2", "AP"), "status"] == "failed" and "EmptyMaskError" in log.loc[("P2", "AP"), "error"]
    assert "P2/AP/mask.nii.gz" in log.loc[("P2", "AP"), "error"]
    assert "P3/PVP/ct.nii.gz" in log.loc[("P3", "PVP"), "error"]
    assert list(res.features.index) == ["P1"] and res.excluded == ["P2", "P3"]
    assert res.features.columns[0].startswith("AP_original_") and res.features.columns[-1].startswith("PVP_original_")
    assert "AP_original_shape_Maximum3DDiameter" in res.features and np.isfinite(res.features.to_numpy()).all()
    # written beside `out`
    pd.testing.assert_frame_equal(pd.read_parquet(out), res.features)
    assert pd.read_csv(out.parent / "features_log.csv").shape[0] == 6
    saved = yaml.safe_load((out.parent / "features_settings.yaml").read_text())["radiomics"]
    assert RadiomicsSettings.from_dict(saved) == RadiomicsSettings.from_dict(FAST)

    # rerun: finished cases come from the cache, broken ones are tried again
    cache_files = {p: p.stat().st_mtime_ns for p in (out.parent / "features_cache").glob("*.json")}
    assert len(cache_files) == 4
    res2 = extract_manifest(study, out, FAST, progress=False)
    assert (res2.log["status"] == ["cached", "cached", "failed", "cached", "cached", "failed"]).all()
    assert cache_files == {p: p.stat().st_mtime_ns for p in (out.parent / "features_cache").glob("*.json")}
    pd.testing.assert_frame_equal(res2.features, res.features)

    # fix the two cases: only they are computed
    (data / "P3" / "PVP" / "ct.bak.nii.gz").rename(data / "P3" / "PVP" / "ct.nii.gz")
    sitk.WriteImage(mask, str(data / "P2" / "AP" / "mask.nii.gz"))
    res3 = extract_manifest(study, out, FAST, progress=False)
    assert list(res3.log["status"]) == ["cached", "cached", "ok", "cached", "cached", "ok"]
    assert list(res3.features.index) == ["P1", "P2", "P3"] and res3.excluded == []
    # other settings are other cache entries
    res4 = extract_manifest(study, out, {**FAST, "bin_width": 4.0}, progress=False)
    assert (res4.log["status"] == "ok").all()


def test_processes_and_perturbed_second_observer(study, tmp_path):
    settings = {**FAST, "perturbation": {"method": "contour", "radius_mm": 1.0, "seed": 7}}
    with pytest.raises(ValueError, match="targets"):
        extract_manifest(study, tmp_path / "x.parquet", {**FAST, "perturbation": {"method": "contour", "targets": ["x"]}})
    one = extract_manifest(study, tmp_path / "a" / "f.parquet", settings, workers=1, progress=False)
    two = extract_manifest(study, tmp_path / "b" / "f.parquet", settings, workers=2, progress=False)
    assert (two.log["status"] == "ok").all() and len(two.log) == 18
    assert list(two.log["observer"][:3]) == ["observer1", "observer2", "repeat"]
    assert two.timing["pid"].nunique() == 2  # really two worker processes
    pd.testing.assert_frame_equal(one.features, two.features)
    pd.testing.assert_frame_equal(one.features_observer2, two.features_observer2)
    pd.testing.assert_frame_equal(one.features_repeat, two.features_repeat)
    assert (tmp_path / "b" / "f_observer2.parquet").is_file() and (tmp_path / "b" / "f_repeat.parquet").is_file()
    vol1 = one.features["AP_original_shape_VoxelVolume"]
    vol2 = one.features_observer2["AP_original_shape_VoxelVolume"]
    vol3 = one.features_repeat["AP_original_shape_VoxelVolume"]
    assert not np.allclose(vol1, vol2) and np.allclose(vol1, vol2, rtol=0.2)
    assert not np.allclose(vol2, vol3) and np.allclose(vol1, vol3, rtol=0.2)  # independent perturbations


def test_memory_limit_fails_cases_not_the_run(study, tmp_path):
    res = extract_manifest(study, tmp_path / "f.parquet", FAST, workers=2, memory_limit_mb=300, progress=False)
    assert (res.log["status"] == "failed").all() and res.features.empty
    assert res.log["error"].str.contains("memory_limit_mb=300").all()
    assert res.excluded == ["P1", "P2", "P3"]


def test_dask_cluster_gives_the_same_table(study, tmp_path):
    distributed = pytest.importorskip("distributed")
    local = extract_manifest(study, tmp_path / "a" / "f.parquet", FAST, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        res = extract_manifest(study, tmp_path / "b" / "f.parquet", FAST, scheduler=cluster.scheduler_address,
                               progress=False)
    assert (res.log["status"] == "ok").all()
    pd.testing.assert_frame_equal(local.features, res.features)


def test_simulated_study_extracts_in_both_phases(tmp_path):
    sim = pytest.importorskip("prime_stats.simulate")
    paths = sim.simulate_study(tmp_path / "sim", n_a=10, n_b=0, seed=1, n_expression=0)
    manifest = pd.read_csv(paths["manifest"])
    manifest = manifest[manifest["patient_id"].isin(manifest["patient_id"].unique()[:4])]
    small = tmp_path / "sim" / "manifest_4.csv"  # beside the images: relative paths still resolve
    manifest.to_csv(small, index=False)
    res = extract_manifest(small, tmp_path / "f.parquet",
                           {"image_types": {"Original": {}}, "feature_classes": ["firstorder", "shape", "glcm"]},
                           progress=False)
    assert (res.log["status"] == "ok").all(), res.log["error"].tolist()
    assert len(res.features) == manifest["patient_id"].nunique() == 4
    for phase in ("AP", "PVP"):
        cols = res.features.columns[res.features.columns.str.startswith(f"{phase}_")]
        assert f"{phase}_original_shape_Maximum3DDiameter" in cols and f"{phase}_original_glcm_Contrast" in cols
    assert np.isfinite(res.features.to_numpy()).all()
    # the two phases of a patient are different images of the same tumour
    assert not np.allclose(res.features["AP_original_firstorder_Mean"], res.features["PVP_original_firstorder_Mean"])
    assert res.features["AP_original_glcm_Contrast"].nunique() == 4
    if "mask_observer2" in manifest:
        assert res.features_observer2 is not None and res.features_observer2.shape == res.features.shape
        kept, table, summary = icc_filter(res.features, res.features_observer2)
        assert set(summary["phase"]) == {"AP", "PVP"} and "AP_original_shape_VoxelVolume" in kept


def test_workers_are_recycled_without_deadlock(study, tmp_path, monkeypatch):
    """More cases than workers x MAX_TASKS_PER_CHILD: the pool is renewed batch by batch and the
    run completes (CPython 3.11's max_tasks_per_child deadlocked here after 2 x 25 cases)."""
    from prime_stats.imaging import batch

    monkeypatch.setattr(batch, "MAX_TASKS_PER_CHILD", 2)
    settings = {**FAST, "perturbation": {"method": "contour", "radius_mm": 1.0, "seed": 3}}
    res = extract_manifest(study, tmp_path / "r" / "f.parquet", settings, workers=2, progress=False)
    assert len(res.log) == 18 and (res.log["status"] == "ok").all()
    assert res.timing["pid"].nunique() > 2  # fresh workers for every batch of 2 x 2 cases


def test_mask_components_logged_per_case_and_warned(study, tmp_path):
    """A real mask with an added island: the log counts each case's components, ``keep`` warns
    naming the case, ``largest`` gives the features of the real mask."""
    path = tmp_path / "data" / "P2" / "AP" / "mask.nii.gz"
    clean = extract_manifest(study, tmp_path / "clean" / "f.parquet", FAST, progress=False)
    mask = sitk.ReadImage(str(path))
    arr = sitk.GetArrayFromImage(mask)
    arr[1:4, 1:4, 1:4] = 1
    island = sitk.GetImageFromArray(arr)
    island.CopyInformation(mask)
    sitk.WriteImage(island, str(path))
    with pytest.warns(UserWarning, match=r"P2/AP/observer1 \(2\).*mask_components: keep"):
        kept = extract_manifest(study, tmp_path / "keep" / "f.parquet", FAST, progress=False)
    counts = kept.log.set_index(["patient_id", "phase"])["mask_components"]
    assert counts[("P2", "AP")] == 2 and (counts.drop(("P2", "AP")) == 1).all()
    assert pd.read_csv(kept.paths["log"])["mask_components"].tolist() == counts.tolist()
    with pytest.warns(UserWarning, match="only the largest component"):
        largest = extract_manifest(study, tmp_path / "largest" / "f.parquet",
                                   {**FAST, "mask_components": "largest"}, progress=False)
    col = "AP_original_shape_Maximum3DDiameter"
    assert kept.features.loc["P2", col] > clean.features.loc["P2", col] + 20
    pd.testing.assert_frame_equal(largest.features, clean.features)
    with pytest.warns(UserWarning, match="P2/AP/observer1"):                  # from the cache
        again = extract_manifest(study, tmp_path / "keep" / "f.parquet", FAST, progress=False)
    assert (again.log["status"] == "cached").all() and again.log["mask_components"].tolist() == counts.tolist()
