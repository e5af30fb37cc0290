"""ICC filtering checked against pingouin.intraclass_corr (per feature) and the Shrout & Fleiss ANOVA
formulas, on a simulated table and on features of real CT tumours segmented twice (second segmentation
by contour randomisation); mask perturbation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
import SimpleITK as sitk

from prime_stats.imaging import crop_and_resample, extract_case, icc_filter, icc_table, load_case, perturb_mask
from prime_stats.imaging.reproducibility import ICC_TYPES

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
def simulated_pair():
    """30 patients x 200 features: log-normal true values on very different scales, measurement noise
    from near-perfect to pure noise, a systematic rater bias on some features; plus a constant
    feature and one with a missing value."""
    rng = np.random.default_rng(42)
    n, p = 30, 200
    true = rng.lognormal(2, 1, size=(n, p)) * 10.0 ** rng.uniform(-3, 6, size=p)
    sd = true.std(0) * 10.0 ** rng.uniform(-3, 0.5, size=p)
    bias = np.where(rng.random(p) < 0.3, rng.normal(0, 1, size=p), 0.0) * true.std(0)
    ids = [f"P{i:02d}" for i in range(n)]
    cols = [f"AP_{('original', 'wavelet-LLH', 'log-sigma-2-0-mm-3D')[j % 3]}_"
            f"{('firstorder', 'glcm', 'shape', 'glszm')[j % 4]}_F{j}" for j in range(p)]
    a = pd.DataFrame(true + sd * rng.normal(size=(n, p)), index=ids, columns=cols)
    b = pd.DataFrame(true + bias + sd * rng.normal(size=(n, p)), index=ids, columns=cols)
    a["AP_original_shape_Constant"] = b["AP_original_shape_Constant"] = 7.0
    a["AP_original_firstorder_Missing"] = rng.normal(size=n)
    b["AP_original_firstorder_Missing"] = a["AP_original_firstorder_Missing"] + rng.normal(size=n)
    b.iloc[3, -1] = np.nan
    return a, b


def _pingouin_icc(x: np.ndarray, y: np.ndarray, icc_type: str) -> pd.Series:
    n = len(x)
    data = pd.DataFrame({"t": np.r_[np.arange(n), np.arange(n)], "r": np.repeat([0, 1], n), "v": np.r_[x, y]})
    return pg.intraclass_corr(data, targets="t", raters="r", ratings="v").set_index("Type").loc[ICC_TYPES[icc_type]]


@pytest.mark.parametrize("icc_type", ["ICC2", "ICC3"])
def test_icc_table_matches_pingouin(simulated_pair, icc_type):
    a, b = simulated_pair
    table = icc_table(a, b, icc_type, "intra").set_index("feature")
    assert list(table.index) == list(a.columns) and (table["n"] == 30).all()
    assert (table["comparison"] == "intra").all() and (table["icc_type"] == icc_type).all()
    untested = ["AP_original_shape_Constant", "AP_original_firstorder_Missing"]
    assert table.loc[untested, ["estimate", "lower", "upper", "F", "df1", "df2", "pval"]].isna().all().all()
    assert table.drop(untested)["estimate"].notna().all()
    assert table.loc["AP_wavelet-LLH_glcm_F1", ["phase", "image_filter", "image_type", "feature_class",
                                               "feature_name"]].tolist() == ["AP", "wavelet-LLH", "wavelet",
                                                                             "glcm", "F1"]
    est = table.drop(untested)["estimate"]
    assert est.min() < 0.2 and est.max() > 0.999  # the simulation spans poor to near-perfect agreement
    # pingouin rounds CI95 to 2 decimals by default (pg.options["round.column.CI95"] = 2): compare at full
    # precision with that rounding switched off, then against the default output to within half a unit
    # in the second decimal.
    saved = pg.options.copy()
    try:
        pg.options["round.column.CI95"] = None
        exact = {c: _pingouin_icc(a[c].to_numpy(), b[c].to_numpy(), icc_type) for c in est.index}
    finally:
        pg.options.clear()
        pg.options.update(saved)
    rounded = {c: _pingouin_icc(a[c].to_numpy(), b[c].to_numpy(), icc_type) for c in est.index}
    for c in est.index:
        row, ref = table.loc[c], exact[c]
        np.testing.assert_allclose(row[["estimate", "df1", "df2"]].to_numpy(float),
                                   np.array([ref["ICC"], ref["df1"], ref["df2"]], float), rtol=1e-9, atol=0, err_msg=c)
        # pingouin gets SS_residual as SS_total - SS_targets - SS_raters, which loses about log10(F) digits
        # (F = 2.7e6: 6e-10 relative error against exact rational arithmetic; ours 3e-14), so F gets a
        # tolerance growing with F, and pval (about F^(-df/2) far in the tail) 20 times that.
        rtol_f = max(1e-9, 1e-14 * ref["F"])
        assert row["F"] == pytest.approx(ref["F"], rel=rtol_f, abs=0), c
        assert row["pval"] == pytest.approx(ref["pval"], rel=20 * rtol_f, abs=0), c
        np.testing.assert_allclose(row[["lower", "upper"]].to_numpy(float), ref["CI95"], rtol=1e-9, atol=1e-12,
                                   err_msg=c)
        np.testing.assert_allclose(row[["lower", "upper"]].to_numpy(float), rounded[c]["CI95"], rtol=0,
                                   atol=0.005 + 1e-12, err_msg=c)


def test_icc_exact_offset_is_perfect_consistency():
    # y = x + 1: pingouin gets SS_residual as a difference of sums (-> about -1e-16, F < 0, p = 1);
    # summing the residuals gives MSE ~ 0, hence ICC(C,1) = 1 and p ~ 0.
    x = np.random.default_rng(0).normal(size=(20, 1))
    table = icc_table(pd.DataFrame(x, columns=["f"]), pd.DataFrame(x + 1, columns=["f"]), "ICC3")
    assert table.at[0, "estimate"] == pytest.approx(1.0, abs=1e-12)
    assert table.at[0, "F"] > 1e12 and table.at[0, "pval"] < 1e-100


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
        assert row.lower <= row.estimate <= row.upper
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
