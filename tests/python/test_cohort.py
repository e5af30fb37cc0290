"""Cohort schema checks: every bad input gives an error naming the column, patient or file."""
import numpy as np
import pandas as pd
import pytest

from prime_stats.cohort import Cohort, CohortError
from prime_stats.simulate import simulate_cohort


@pytest.fixture(scope="module")
def clinical():
    df, _ = simulate_cohort(40, 20, seed=5)
    return df


def test_valid_cohort(clinical):
    c = Cohort(clinical)
    assert len(c) == 60 and c.ids.name == "patient_id"
    y = c.survival()
    assert y.dtype.names == ("event", "time") and y["event"].sum() == clinical["os_event"].sum()
    assert "os_days" not in c.predictors() and "subsequent_therapy" not in c.predictors()
    assert "60 patients" in repr(c)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.drop(columns="patient_id"), "ID column 'patient_id' is missing"),
    (lambda d: d.assign(patient_id=["A0001"] * len(d)), "duplicate patient IDs.*A0001"),
    (lambda d: d.assign(patient_id=[None] + list(d.patient_id[1:])), "empty on file rows \\[2\\]"),
    (lambda d: d.drop(columns="os_event"), "outcome column\\(s\\) \\['os_event'\\] missing"),
    (lambda d: d.drop(columns="response_3m"), "response_3m"),
    (lambda d: d.assign(os_event=[2] + list(d.os_event[1:])), "os_event: must be 0/1.*A0001"),
    (lambda d: d.assign(os_days=[0.0] + list(d.os_days[1:])), "os_days.*> 0.*A0001"),
    (lambda d: d.assign(os_days=[-3.0] + list(d.os_days[1:])), "os_days.*A0001"),
    (lambda d: d.assign(os_days=[np.nan] + list(d.os_days[1:])), "os_days: survival time missing.*A0001"),
    (lambda d: d.assign(response_3m=["yes"] + list(d.response_3m[1:])), "response_3m: must be 0/1"),
    (lambda d: d.drop(columns="centre"), "centre column"),
])
def test_bad_clinical_tables(clinical, mutate, message):
    with pytest.raises(CohortError, match=message):
        Cohort(mutate(clinical.copy()))


def _manifest(tmp_path, clinical, rows=None):
    img = tmp_path / "img.nii.gz"
    img.write_bytes(b"x")
    rows = rows or [{"patient_id": clinical.patient_id[0], "phase": "AP", "image": "img.nii.gz",
                     "mask": "img.nii.gz"}]
    m = pd.DataFrame(rows)
    m.to_csv(tmp_path / "manifest.csv", index=False)
    clinical.to_csv(tmp_path / "clinical.csv", index=False)
    return tmp_path / "manifest.csv"


def test_manifest_relative_paths(tmp_path, clinical):
    man = _manifest(tmp_path, clinical)
    c = Cohort.from_files(tmp_path / "clinical.csv", man)
    assert c.manifest.loc[0, "image"] == str((tmp_path / "img.nii.gz").resolve())


@pytest.mark.parametrize("row, message", [
    ({"patient_id": "Z999", "phase": "AP", "image": "img.nii.gz", "mask": "img.nii.gz"},
     "patients not in the clinical table: Z999"),
    ({"patient_id": "A0001", "phase": "delayed", "image": "img.nii.gz", "mask": "img.nii.gz"},
     "unknown phase 'DELAYED' for patient A0001"),
    ({"patient_id": "A0001", "phase": "PVP", "image": "img.nii.gz", "mask": "nope.nii.gz"},
     "patient A0001 phase PVP: mask file not found: .*nope.nii.gz"),
])
def test_bad_manifests(tmp_path, clinical, row, message):
    man = _manifest(tmp_path, clinical, [row])
    with pytest.raises(CohortError, match=message):
        Cohort.from_files(tmp_path / "clinical.csv", man)


def test_duplicate_manifest_rows_and_missing_columns(tmp_path, clinical):
    row = {"patient_id": "A0001", "phase": "AP", "image": "img.nii.gz", "mask": "img.nii.gz"}
    with pytest.raises(CohortError, match="more than one row.*A0001/AP"):
        Cohort.from_files(tmp_path / "clinical.csv", _manifest(tmp_path, clinical, [row, row]))
    pd.DataFrame([{"patient_id": "A0001", "phase": "AP", "image": "img.nii.gz"}]).to_csv(
        tmp_path / "m2.csv", index=False)
    with pytest.raises(CohortError, match=r"lacks column\(s\) \['mask'\]"):
        Cohort.from_files(tmp_path / "clinical.csv", tmp_path / "m2.csv")


def test_missing_files_and_parquet(tmp_path, clinical):
    with pytest.raises(CohortError, match="file not found: .*absent.csv"):
        Cohort.from_files(tmp_path / "absent.csv")
    clinical.to_parquet(tmp_path / "clinical.parquet")
    assert len(Cohort.from_files(tmp_path / "clinical.parquet")) == len(clinical)


def test_expression_checks(clinical):
    expr = pd.DataFrame({"A0001": [1.0, 2.0], "Z9": [3.0, 4.0]}, index=["G1", "G2"])
    with pytest.raises(CohortError, match="samples not in the clinical table: Z9"):
        Cohort(clinical, expression=expr)
    expr = pd.DataFrame({"A0001": [1.0, 2.0]}, index=["G1", "G1"])
    with pytest.raises(CohortError, match=r"duplicated gene names, e.g. \['G1'\]"):
        Cohort(clinical, expression=expr)
