"""Preprocessing before feature extraction: intensity normalisation, crop and isotropic resampling.

The order follows PyRadiomics' own pipeline (``imageoperations.normalizeImage`` on the whole image,
then crop around the mask and resample), so that filters (LoG, wavelet) see the same neighbourhood
they would inside PyRadiomics — with two additions: the mask interpolator is a setting (nearest
neighbour, or linear with a 0.5 partial-volume threshold as IBSI recommends), and the crop padding is
given in millimetres.
"""
from __future__ import annotations

import math

import numpy as np
import SimpleITK as sitk

__all__ = ["INTERPOLATORS", "normalize_intensity", "crop_and_resample"]

INTERPOLATORS = {
    "nearest": sitk.sitkNearestNeighbor,
    "linear": sitk.sitkLinear,
    "bspline": sitk.sitkBSpline,
    "gaussian": sitk.sitkGaussian,
    "lanczos": sitk.sitkLanczosWindowedSinc,
}


def normalize_intensity(image: sitk.Image, scale: float, remove_outliers: float | None = None) -> sitk.Image:
    """z-score over the whole image times ``scale`` (PyRadiomics ``normalizeImage``), float32.

    ``remove_outliers`` (in SDs) clips values beyond mean +/- that many SDs before scaling.
    """
    from radiomics import imageoperations

    return imageoperations.normalizeImage(sitk.Cast(image, sitk.sitkFloat32), normalizeScale=scale,
                                          removeOutliers=remove_outliers)


def crop_and_resample(image: sitk.Image, mask: sitk.Image, spacing: tuple[float, float, float] | None,
                      image_interpolator: str = "bspline", mask_interpolator: str = "nearest",
                      pad_mm: float = 10.0) -> tuple[sitk.Image, sitk.Image]:
    """Crop both images to the mask's bounding box plus ``pad_mm`` and resample to ``spacing`` (mm).

    The new grid keeps the image direction and is centred on the padded bounding box. Values
    outside the image are the nearest border values. ``spacing=None`` only crops (no
    interpolation). A linear mask interpolation is thresholded at 0.5.
    """
    arr = sitk.GetArrayViewFromImage(mask)
    nz = np.argwhere(arr > 0)
    lo, hi = nz.min(0)[::-1].astype(float), nz.max(0)[::-1].astype(float)  # x, y, z
    old_sp = np.asarray(image.GetSpacing())
    if spacing is None:
        pad = np.ceil(pad_mm / old_sp).astype(int)
        start = np.maximum(lo.astype(int) - pad, 0)
        stop = np.minimum(hi.astype(int) + pad + 1, np.asarray(image.GetSize()))
        size = (stop - start).tolist()
        return (sitk.RegionOfInterest(image, size, start.tolist()),
                sitk.RegionOfInterest(mask, size, start.tolist()))
    new_sp = np.asarray(spacing, dtype=float)
    e_lo = lo - 0.5 - pad_mm / old_sp
    e_hi = hi + 0.5 + pad_mm / old_sp
    n = np.array([math.ceil(v - 1e-6) for v in (e_hi - e_lo) * old_sp / new_sp], dtype=int)
    centre = (e_lo + e_hi) / 2.0
    origin_idx = centre - (n * new_sp / old_sp) / 2.0 + 0.5 * new_sp / old_sp  # first voxel centre
    origin = image.TransformContinuousIndexToPhysicalPoint(origin_idx.tolist())
    ref = sitk.Image([int(v) for v in n], sitk.sitkUInt8)
    ref.SetSpacing(new_sp.tolist())
    ref.SetOrigin(origin)
    ref.SetDirection(image.GetDirection())
    try:
        interp = INTERPOLATORS[image_interpolator]
        m_interp = INTERPOLATORS[mask_interpolator]
    except KeyError as exc:
        raise ValueError(f"unknown interpolator {exc.args[0]!r}; choose from {sorted(INTERPOLATORS)}") from None
    res_image = sitk.Resample(sitk.Cast(image, sitk.sitkFloat32), ref, sitk.Transform(), interp, 0.0,
                              sitk.sitkFloat32, True)
    if m_interp == sitk.sitkNearestNeighbor:
        res_mask = sitk.Resample(mask, ref, sitk.Transform(), m_interp, 0, sitk.sitkUInt8)
    else:
        frac = sitk.Resample(sitk.Cast(mask, sitk.sitkFloat32), ref, sitk.Transform(), m_interp, 0.0,
                             sitk.sitkFloat32)
        res_mask = sitk.Cast(frac >= 0.5, sitk.sitkUInt8)
    return res_image, res_mask
