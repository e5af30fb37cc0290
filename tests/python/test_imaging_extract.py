"""Radiomics extraction on real CT (IBSI / TCIA soft-tissue sarcoma) and the IBSI digital phantom."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy.spatial import ConvexHull
from scipy.spatial.distance import pdist

from prime_stats.imaging import RadiomicsSettings, extract_case, extract_files, load_case

SHAPE_ONLY = {"image_types": {"Original": {}}, "feature_classes": ["shape"], "resampled_spacing": None}
ORIGINAL = {"image_types": {"Original": {}}}


def _cases(shared_data):
    root = shared_data / "ibsi" / "sts_ct"
    cases = sorted(p for p in root.glob("STS_*") if (p / "CT_image.nii.gz").is_file())
    assert len(cases) == 36, f"expected 36 real CT cases in {root}, found {len(cases)}"
    return cases


def _physical(mask: sitk.Image, idx_zyx: np.ndarray) -> np.ndarray:
    """Physical coordinates (mm) of continuous voxel indices given in numpy (z, y, x) order."""
    d = np.asarray(mask.GetDirection()).reshape(3, 3)
    return (idx_zyx[:, ::-1] * np.asarray(mask.GetSpacing())) @ d.T + np.asarray(mask.GetOrigin())


def _independent_shape(mask: sitk.Image) -> dict[str, float]:
    """Shape descriptors from the voxel mask alone (numpy / scipy / scikit-image), IBSI definitions."""
    from skimage.measure import marching_cubes

    arr = sitk.GetArrayFromImage(mask).astype(bool)
    sp = np.asarray(mask.GetSpacing())
    vox = np.argwhere(arr).astype(float)
    out = {"VoxelVolume": arr.sum() * float(np.prod(sp))}
    # mesh (marching cubes at 0.5 on the zero-padded mask): volume by the divergence theorem
    verts, faces, _, _ = marching_cubes(np.pad(arr, 1).astype(np.float32), 0.5, spacing=tuple(sp[::-1]))
    tri = verts[faces]
    out["MeshVolume"] = abs(np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum()) / 6.0
    # marching-cubes vertices of a binary mask are the midpoints of inside/outside neighbour pairs
    mids = []
    padded = np.pad(arr, 1)
    for axis in range(3):
        a, b = padded, np.roll(padded, -1, axis=axis)
        edge = np.argwhere(a != b).astype(float)
        edge[:, axis] += 0.5
        mids.append(edge - 1.0)
    pts = _physical(mask, np.vstack(mids))
    hull = pts[ConvexHull(pts).vertices]
    out["Maximum3DDiameter"] = pdist(hull).max()
    cov = np.cov(_physical(mask, vox).T)
    out["MajorAxisLength"] = 4.0 * np.sqrt(np.linalg.eigvalsh(cov).max())
    return out


def test_settings_validation_names_the_key():
    with pytest.raises(ValueError, match="binwidth"):
        RadiomicsSettings.from_dict({"binwidth": 5})
    with pytest.raises(ValueError, match="image_interpolator"):
        RadiomicsSettings.from_dict({"image_interpolator": "cubic"})
    with pytest.raises(ValueError, match="LoG"):
        RadiomicsSettings.from_dict({"image_types": {"LoG": {}}})
    with pytest.raises(ValueError, match="feature_classes"):
        RadiomicsSettings.from_dict({"feature_classes": ["glcm", "texture"]})
    with pytest.raises(ValueError, match="bin_count"):
        RadiomicsSettings.from_dict({"bin_width": 2.0, "bin_count": 32})
    assert RadiomicsSettings().pyradiomics_settings()["binCount"] == 64
    s = RadiomicsSettings.from_dict({"bin_width": 25, "normalize": False})
    assert s.bin_count is None and s.pyradiomics_settings()["binWidth"] == 25
    d = RadiomicsSettings().to_dict()
    assert RadiomicsSettings.from_dict(d) == RadiomicsSettings()
    assert d["resampled_spacing"] == [1.0, 1.0, 1.0] and d["image_types"]["LoG"] == {"sigma": [4.0]}


def test_shape_features_agree_with_independent_mask_computation(shared_data):
    pytest.importorskip("skimage", reason="scikit-image computes the independent reference mesh")
    rows = []
    for case_dir in _cases(shared_data):
        case = load_case(case_dir / "CT_image.nii.gz", case_dir / "CT_mask.nii.gz")
        feats = extract_case(case.image, case.mask, SHAPE_ONLY)
        nz = np.argwhere(sitk.GetArrayFromImage(case.mask))
        lo, hi = nz.min(0)[::-1], nz.max(0)[::-1]  # the reference works on the tumour's bounding box
        ref = _independent_shape(sitk.RegionOfInterest(case.mask, (hi - lo + 1).tolist(), lo.tolist()))
        for name, value in ref.items():
            rows.append((case_dir.name, name, feats[f"original_shape_{name}"], value))
        assert all(np.isfinite(v) for v in feats.values()), case_dir.name
    df = pd.DataFrame(rows, columns=["case", "feature", "pyradiomics", "independent"])
    df["rel"] = (df["pyradiomics"] / df["independent"] - 1).abs()
    worst = df.groupby("feature")["rel"].max()
    assert (worst < 0.01).all(), worst
    # voxel counting and the vertex-set diameter are exact; the mesh volume differs only where the two
    # marching-cubes implementations triangulate ambiguous cubes differently (observed max 0.15 %);
    # the axis length only by the covariance's n vs n-1 (observed max 0.009 %)
    assert worst["VoxelVolume"] < 1e-9 and worst["Maximum3DDiameter"] < 1e-6
    assert worst["MeshVolume"] < 0.005 and worst["MajorAxisLength"] < 1e-3


def test_shape_on_resampled_grid_matches_the_mask_extracted(shared_data):
    """With the default 1 mm resampling, shape describes the resampled mask (checked the same way)."""
    pytest.importorskip("skimage", reason="scikit-image computes the independent reference mesh")
    from prime_stats.imaging.preprocess import crop_and_resample

    for case_dir in _cases(shared_data)[::18]:
        case = load_case(case_dir / "CT_image.nii.gz", case_dir / "CT_mask.nii.gz")
        _, mask1 = crop_and_resample(case.image, case.mask, (1.0, 1.0, 1.0), "bspline", "nearest", 10.0)
        assert mask1.GetSpacing() == (1.0, 1.0, 1.0)
        feats = extract_case(case.image, case.mask, {**SHAPE_ONLY, "resampled_spacing": [1, 1, 1]})
        ref = _independent_shape(mask1)
        for name, value in ref.items():
            assert feats[f"original_shape_{name}"] == pytest.approx(value, rel=0.01), (case_dir.name, name)
        native = sitk.GetArrayFromImage(case.mask).sum() * np.prod(case.mask.GetSpacing())
        assert ref["VoxelVolume"] == pytest.approx(native, rel=0.05)  # resampling keeps the tumour volume


def test_texture_varies_across_real_tumours_and_collapses_with_pyradiomics_defaults(shared_data):
    cases = _cases(shared_data)[1::6]
    texture = {"image_types": {"Original": {}}, "feature_classes": ["firstorder", "glcm", "glrlm"]}
    ours, naive = [], []
    for case_dir in cases:
        img, msk = case_dir / "CT_image.nii.gz", case_dir / "CT_mask.nii.gz"
        ours.append(extract_files(img, msk, texture))
        # PyRadiomics defaults with normalisation on: scale 1, bin width 25
        naive.append(extract_files(img, msk, {**texture, "normalize_scale": 1.0, "bin_width": 25.0,
                                              "feature_classes": ["glcm", "glrlm"]}))
    ours, naive = pd.DataFrame(ours), pd.DataFrame(naive)
    assert np.isfinite(ours.to_numpy()).all()
    for col in ours.columns[ours.columns.str.contains("glcm|glrlm")]:
        assert ours[col].nunique() == len(ours), col  # no two tumours share a texture value
    assert ours["original_glcm_Contrast"].std() / ours["original_glcm_Contrast"].mean() > 0.2
    for col in ("original_glrlm_RunEntropy", "original_glcm_JointEntropy"):  # bits: spread > 1 bit
        assert np.ptp(ours[col]) > 1.0, col
    # PyRadiomics defaults: (nearly) every tumour in one grey level, no contrast, no joint entropy
    assert (naive["original_glcm_Contrast"] < 0.01).all() and (ours["original_glcm_Contrast"] > 1).all()
    assert naive["original_glcm_JointEntropy"].median() < 0.01 < ours["original_glcm_JointEntropy"].min()


def test_full_default_settings_on_one_real_case(shared_data):
    case_dir = _cases(shared_data)[1]
    feats, timing = extract_files(case_dir / "CT_image.nii.gz", case_dir / "CT_mask.nii.gz", None,
                                  return_timing=True)
    names = pd.Index(feats)
    assert np.isfinite(list(feats.values())).all()
    assert set(timing) == {"preprocess", "Original", "LoG", "Wavelet"}
    assert names.str.startswith("original_shape_").sum() == 14
    assert names.str.startswith("log-sigma-4-0-mm-3D_").sum() == 93
    assert names.str.startswith("wavelet-").sum() == 8 * 93
    assert len(feats) == 14 + 93 * 10


def test_ibsi_digital_phantom_loads_and_matches_ibsi_reference(shared_data):
    """IBSI 1 digital phantom, no resampling or discretisation artefacts (Zwanenburg et al. 2020,
    reference values of the phantom: volume 556 mm3 (mesh) / 592 mm3 (voxels), mean 2.15,
    variance 3.05, skewness 1.08, excess kurtosis -0.355, energy 567)."""
    folder = shared_data / "ibsi" / "digital_phantom"
    settings = {"image_types": {"Original": {}}, "feature_classes": ["shape", "firstorder", "glcm", "glrlm"],
                "resampled_spacing": None, "normalize": False, "bin_width": 1.0, "voxel_array_shift": 0.0}
    f = extract_files(folder / "image.nii.gz", folder / "mask.nii.gz", settings)
    assert np.isfinite(list(f.values())).all()
    assert f["original_shape_MeshVolume"] == pytest.approx(556, abs=0.5)
    assert f["original_shape_VoxelVolume"] == pytest.approx(592, abs=0.5)
    assert f["original_firstorder_Mean"] == pytest.approx(2.15, abs=0.005)
    assert f["original_firstorder_Variance"] == pytest.approx(3.05, abs=0.005)
    assert f["original_firstorder_Skewness"] == pytest.approx(1.08, abs=0.005)
    assert f["original_firstorder_Kurtosis"] - 3 == pytest.approx(-0.355, abs=0.0005)
    assert f["original_firstorder_Energy"] == pytest.approx(567, abs=0.5)
    # with the default 1 mm resampling the phantom (2 mm voxels) extracts too
    g = extract_files(folder / "image.nii.gz", folder / "mask.nii.gz", {"image_types": {"Original": {}}})
    assert np.isfinite(list(g.values())).all()


def test_mask_interpolator_setting(shared_data):
    """Linear (partial-volume, >= 0.5) and nearest-neighbour mask resampling describe the same tumour."""
    case_dir = _cases(shared_data)[1]
    shape = {"image_types": {"Original": {}}, "feature_classes": ["shape"]}
    nn = extract_files(case_dir / "CT_image.nii.gz", case_dir / "CT_mask.nii.gz", shape)
    lin = extract_files(case_dir / "CT_image.nii.gz", case_dir / "CT_mask.nii.gz",
                        {**shape, "mask_interpolator": "linear"})
    assert nn["original_shape_VoxelVolume"] != lin["original_shape_VoxelVolume"]
    for name in ("VoxelVolume", "Maximum3DDiameter", "MajorAxisLength"):
        assert lin[f"original_shape_{name}"] == pytest.approx(nn[f"original_shape_{name}"], rel=0.03), name
    # the linear mask is smoother: less surface per volume than the staircase of nearest neighbour
    assert lin["original_shape_SurfaceVolumeRatio"] < nn["original_shape_SurfaceVolumeRatio"]


def _with_island(mask: sitk.Image) -> sitk.Image:
    """The real mask plus a 3x3x3-voxel island in a corner of the field of view, far from the tumour."""
    arr = sitk.GetArrayFromImage(mask)
    arr[1:4, 1:4, 1:4] = 1
    out = sitk.GetImageFromArray(arr)
    out.CopyInformation(mask)
    return out


def test_mask_components_are_counted_and_the_largest_kept(shared_data):
    """Mask QC: a real sarcoma GTV (one component) plus an added island has two components
    (SimpleITK and scipy.ndimage agree, 26-connectivity); ``mask_components: largest`` extracts
    exactly the real mask's features, ``keep`` lets the island inflate the diameter. STS_044's
    own GTV has two components."""
    from scipy import ndimage

    from prime_stats.imaging import count_components, largest_component

    root = shared_data / "ibsi" / "sts_ct"
    case = load_case(root / "STS_002" / "CT_image.nii.gz", root / "STS_002" / "CT_mask.nii.gz")
    island = _with_island(case.mask)
    assert count_components(case.mask) == 1 and count_components(island) == 2
    ref = ndimage.label(sitk.GetArrayFromImage(island), structure=np.ones((3, 3, 3)))[1]
    assert ref == 2
    np.testing.assert_array_equal(sitk.GetArrayFromImage(largest_component(island)),
                                  sitk.GetArrayFromImage(case.mask))
    real = sitk.ReadImage(str(root / "STS_044" / "CT_mask.nii.gz"))
    assert count_components(real) == ndimage.label(sitk.GetArrayFromImage(real) > 0, np.ones((3, 3, 3)))[1] == 2
    whole = extract_case(case.image, case.mask, SHAPE_ONLY)
    keep = extract_case(case.image, island, SHAPE_ONLY)
    largest = extract_case(case.image, island, {**SHAPE_ONLY, "mask_components": "largest"})
    assert largest == whole
    d = "original_shape_Maximum3DDiameter"
    assert keep[d] > whole[d] + 20
    with pytest.raises(ValueError, match="mask_components"):
        RadiomicsSettings.from_dict({"mask_components": "biggest"})
