"""ICC filtering (pingouin) checked against the Shrout & Fleiss ANOVA formulas, on features of real
CT tumours segmented twice (second segmentation by contour randomisation); mask perturbation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from prime_stats.imaging import crop_and_resample, extract_case, icc_filter, icc_table, load_case, perturb_mask

SMALL_CASES = ("STS_002", "STS_003", "STS_008", "STS_012", "STS_015", "STS_024", "STS_025", "STS_041",
               "STS_042", "STS_050")
SETTINGS = {"image_types": {"Original": {}}, "feature_classes": ["firstorder", "shape", "glrlm"],
            "resampled_spacing": None}  # native grid keeps the test fast


def _shrout_fleiss(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """ICC(2,1) and ICC(3,1) from the two-way ANOVA mean squares (Shrout & Fleiss 1979)."""
    data = np.c_[x, y]
    n, k = data.shape
    grand = data.mean()
    msr = k * ((data.mean(1) - grand) ** 2).sum() / (n - 1)
    msc = n * ((data.mean(0) - grand) ** 2).sum() / (k - 1)
    sse = ((data - data.mean(1, keepdims=True) - data.mean(0, keepdims=True) + grand) ** 2).sum()
    mse = sse / ((n - 1) * (k - 1))
    icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    icc3 = (msr - mse) / (msr + (k - 1) * mse)
    return icc2, icc3


@pytest.fixture(scope="module")
def two_observers(shared_data):
    root = shared_data / "ibsi" / "sts_ct"
    obs1, obs2, rep = {}, {}, {}
    for i, name in enumerate(SMALL_CASES):
        case = load_case(root / name / "CT_image.nii.gz", root / name / "CT_mask.nii.gz")
        obs1[name] = extract_case(case.image, case.mask, SETTINGS)
        obs2[name] = extract_case(case.image, perturb_mask(case.mask, "contour", 1.5, seed=i), SETTINGS)
        rep[name] = extract_case(case.image, perturb_mask(case.mask, "contour", 1.0, seed=100 + i), SETTINGS)

    def frame(d):
        df = pd.DataFrame.from_dict(d, orient="index").add_prefix("AP_")
        df.index.name = "patient_id"
        return df

    return frame(obs1), frame(obs2), frame(rep)


@pytest.mark.parametrize("icc_type", ["ICC2", "ICC3"])
def test_icc_matches_shrout_fleiss_formulas(two_observers, icc_type):
    a, b, _ = two_observers
    table = icc_table(a, b, icc_type)
    assert len(table) == a.shape[1] and (table["n"] == len(SMALL_CASES)).all()
    tested = table.dropna(subset=["estimate"])
    assert len(tested) >= a.shape[1] - 2  # only constant features (if any) are untested
    for row in tested.itertuples():
        ref = _shrout_fleiss(a[row.feature].to_numpy(), b[row.feature].to_numpy())[icc_type == "ICC3"]
        assert row.estimate == pytest.approx(ref, abs=1e-10), row.feature
        assert row.lower - 0.006 <= row.estimate <= row.upper + 0.006  # CI reported to 2 decimals
    assert set(tested["image_type"]) == {"original"} and set(tested["phase"]) == {"AP"}


def test_icc_filter_inter_and_intra(two_observers):
    a, b, rep = two_observers
    rng = np.random.default_rng(0)
    a = a.assign(AP_original_firstorder_Noise=rng.normal(size=len(a)))
    b = b.assign(AP_original_firstorder_Noise=rng.normal(size=len(b)))
    rep = rep.assign(AP_original_firstorder_Noise=a["AP_original_firstorder_Noise"])  # reproducible within
    kept, table, summary = icc_filter(a, b, threshold=0.75, icc_type="ICC2", features_repeat=rep)
    assert set(table["comparison"]) == {"inter", "intra"}
    assert "AP_original_firstorder_Noise" not in kept  # passes intra, fails inter
    for f in ("AP_original_shape_VoxelVolume", "AP_original_shape_Maximum3DDiameter",
              "AP_original_firstorder_Median"):
        assert f in kept
    ests = table.pivot(index="feature", columns="comparison", values="estimate")
    expected = sorted(ests.index[(ests["inter"] > 0.75) & (ests["intra"] > 0.75)])
    assert sorted(kept) == expected
    overall = summary[(summary["image_type"] == "all")].iloc[0]
    assert overall["n_kept"] == len(kept) and overall["n_features"] == a.shape[1]
    by_class = summary[summary["image_type"] != "all"]
    assert by_class["n_kept"].sum() == len(kept)
    assert set(by_class["feature_class"]) == {"firstorder", "shape", "glrlm"}
    strict, _, _ = icc_filter(a, b, threshold=0.75, use_lower_bound=True)
    assert set(strict) <= set(icc_filter(a, b, threshold=0.75).kept)


def test_icc_input_errors(two_observers):
    a, b, _ = two_observers
    with pytest.raises(ValueError, match="icc_type"):
        icc_table(a, b, "ICC1k")
    with pytest.raises(ValueError, match="only 2 patients"):
        icc_table(a.iloc[:2], b)
    with pytest.raises(ValueError, match="threshold"):
        icc_filter(a, b, threshold=75)


def test_perturbations(shared_data):
    root = shared_data / "ibsi" / "sts_ct" / "STS_002"
    case = load_case(root / "CT_image.nii.gz", root / "CT_mask.nii.gz")
    _, mask = crop_and_resample(case.image, case.mask, None, pad_mm=10.0)
    m = sitk.GetArrayFromImage(mask).astype(bool)

    def arr(img):
        return sitk.GetArrayFromImage(img).astype(bool)

    def dice(p):
        return 2 * (m & p).sum() / (m.sum() + p.sum())

    np.testing.assert_array_equal(arr(perturb_mask(mask, "contour", 1e-9, seed=3)), m)
    d1, d2 = arr(perturb_mask(mask, "contour", 1.0, seed=3)), arr(perturb_mask(mask, "contour", 3.0, seed=3))
    assert 1.0 > dice(d1) > dice(d2) > 0.7
    np.testing.assert_array_equal(d1, arr(perturb_mask(mask, "contour", 1.0, seed=3)))  # seeded
    assert abs(d1.sum() / m.sum() - 1) < 0.05  # unbiased: volume preserved on average
    dil, ero = arr(perturb_mask(mask, "dilate", 2.0)), arr(perturb_mask(mask, "erode", 2.0))
    assert (dil >= m).all() and (ero <= m).all() and dil.sum() > m.sum() > ero.sum()
    with pytest.raises(ValueError, match="empty"):
        perturb_mask(mask, "erode", 100.0)
    with pytest.raises(ValueError, match="method"):
        perturb_mask(mask, "shrink")
