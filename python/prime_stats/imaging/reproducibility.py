"""Feature reproducibility: intraclass correlation between segmentations, and mask perturbation.

ICCs use the two-way ANOVA of Shrout & Fleiss (1979) and McGraw & Wong (1996) for two raters (the
two feature tables), computed in numpy for all features at once with the same formulas as
``pingouin.intraclass_corr`` (pingouin is the reference in the tests): mean squares MSB (targets),
MSJ (raters) and MSE (residual); ``ICC2`` = ICC(A,1), two-way random effects, absolute agreement,
single rater, = (MSB - MSE) / (MSB + (k-1) MSE + k (MSJ - MSE) / n), with McGraw & Wong's 95% CI
(Satterthwaite degrees of freedom); ``ICC3`` = ICC(C,1), two-way mixed effects, consistency, single
rater, = (MSB - MSE) / (MSB + (k-1) MSE), with the F-based 95% CI. F = MSB / MSE on (n-1, (n-1)(k-1))
degrees of freedom. The CI is reported at full precision (pingouin rounds it to 2 decimals).

Where no second segmentation exists, :func:`perturb_mask` makes one (Zwanenburg et al. 2019,
Sci Rep 9:614, "image perturbation" for radiomics robustness): a dilation or erosion by a fixed
margin, or a contour randomisation that moves the boundary along its normal by a spatially smooth
Gaussian random displacement.
"""
from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import stats

__all__ = ["ICC_TYPES", "ICCFilterResult", "icc_table", "icc_filter", "summarise_icc", "perturb_mask",
           "parse_feature_name"]

# prime-stats name -> pingouin 0.7 "Type" label
ICC_TYPES = {"ICC2": "ICC(A,1)", "ICC3": "ICC(C,1)"}
_ICC_DESCRIPTION = {
    "ICC2": "ICC(2,1) two-way random, absolute agreement, single rater (pingouin ICC(A,1))",
    "ICC3": "ICC(3,1) two-way mixed, consistency, single rater (pingouin ICC(C,1))",
}
_NAME = re.compile(r"^(?:(?P<phase>[A-Za-z0-9]+)_)?(?P<image>original|log-[^_]+|wavelet-[^_]+|[a-z]+(?:-[^_]+)?)_"
                   r"(?P<cls>firstorder|shape|glcm|glrlm|glszm|gldm|ngtdm)_(?P<name>.+)$")


def parse_feature_name(column: str) -> dict[str, str | None]:
    """Split e.g. ``AP_wavelet-LLH_glcm_Contrast`` into phase, image filter, image type, class and name."""
    m = _NAME.match(column)
    if m is None:
        return {"phase": None, "image_filter": None, "image_type": None, "feature_class": None, "feature_name": column}
    image = m["image"]
    return {"phase": m["phase"], "image_filter": image, "image_type": image.split("-")[0],
            "feature_class": m["cls"], "feature_name": m["name"]}


def _aligned(a: pd.DataFrame, b: pd.DataFrame, what: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = a.index.intersection(b.index)
    cols = a.columns.intersection(b.columns)
    if len(ids) < 3:
        raise ValueError(f"{what}: only {len(ids)} patients appear in both feature tables; ICC needs >= 3")
    if len(cols) == 0:
        raise ValueError(f"{what}: the two feature tables share no feature column")
    return a.loc[ids, cols].astype(float), b.loc[ids, cols].astype(float)


_COLUMNS = ["feature", "phase", "image_filter", "image_type", "feature_class", "feature_name", "comparison",
            "icc_type", "estimate", "lower", "upper", "F", "df1", "df2", "pval", "n", "method"]


def _icc_two_way(a: np.ndarray, b: np.ndarray, icc_type: str, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """ICC(A,1) (``ICC2``) or ICC(C,1) (``ICC3``) of every column of two n x p arrays (the two raters).

    Same formulas as ``pingouin.intraclass_corr`` (0.x), except that the residual sum of squares is
    summed from the residuals rather than obtained as SS_total - SS_targets - SS_raters, which is
    more accurate when the two raters nearly agree.
    """
    y = np.stack([a, b])  # raters x targets x features
    k, n = y.shape[:2]
    grand = y.mean(axis=(0, 1))
    target_means = y.mean(axis=0)
    rater_means = y.mean(axis=1)
    df1, df2 = n - 1, (n - 1) * (k - 1)
    msb = k * ((target_means - grand) ** 2).sum(axis=0) / df1
    msj = n * ((rater_means - grand) ** 2).sum(axis=0) / (k - 1)
    mse = ((y - target_means - rater_means[:, None, :] + grand) ** 2).sum(axis=(0, 1)) / df2
    with np.errstate(divide="ignore", invalid="ignore"):
        fval = msb / mse
        pval = stats.f.sf(fval, df1, df2)
        if icc_type == "ICC3":
            icc = (msb - mse) / (msb + (k - 1) * mse)
            f_lo = fval / stats.f.ppf(1 - alpha / 2, df1, df2)
            f_hi = fval * stats.f.ppf(1 - alpha / 2, df2, df1)
            lower = (f_lo - 1) / (f_lo + (k - 1))
            upper = (f_hi - 1) / (f_hi + (k - 1))
        else:
            icc = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
            fj = msj / mse
            vn = df2 * (k * icc * fj + n * (1 + (k - 1) * icc) - k * icc) ** 2
            vd = df1 * k**2 * icc**2 * fj**2 + (n * (1 + (k - 1) * icc) - k * icc) ** 2
            v = vn / vd
            f_u = stats.f.ppf(1 - alpha / 2, n - 1, v)
            f_l = stats.f.ppf(1 - alpha / 2, v, n - 1)
            lower = n * (msb - f_u * mse) / (f_u * (k * msj + (k * n - k - n) * mse) + n * msb)
            upper = n * (f_l * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f_l * msb)
    return {"estimate": icc, "lower": lower, "upper": upper, "F": fval, "pval": pval,
            "df1": np.full(icc.shape, float(df1)), "df2": np.full(icc.shape, float(df2))}


def icc_table(features_a: pd.DataFrame, features_b: pd.DataFrame, icc_type: str = "ICC2",
              comparison: str = "inter") -> pd.DataFrame:
    """ICC of every feature shared by two patients x features tables (rows matched on the index).

    Columns: feature, phase, image_filter, image_type, feature_class, feature_name, comparison,
    icc_type, estimate, lower, upper, F, df1, df2, pval, n, method. A feature with a non-finite
    value in either table, or constant over both tables, gets estimate (and the rest) NaN.
    """
    if icc_type not in ICC_TYPES:
        raise ValueError(f"icc_type must be one of {list(ICC_TYPES)}, got {icc_type!r}")
    a, b = _aligned(features_a, features_b, comparison)
    n = len(a)
    x, y = a.to_numpy(), b.to_numpy()
    both = np.concatenate([x, y])
    finite = np.isfinite(both).all(axis=0)
    valid = finite & (np.ptp(np.where(finite, both, 0.0), axis=0) > 0)
    res = _icc_two_way(x[:, valid], y[:, valid], icc_type)
    table = pd.DataFrame([parse_feature_name(c) for c in a.columns])
    table.insert(0, "feature", list(a.columns))
    table["comparison"] = comparison
    table["icc_type"] = icc_type
    for key in ("estimate", "lower", "upper", "F", "df1", "df2", "pval"):
        col = np.full(len(valid), np.nan)
        col[valid] = res[key]
        table[key] = col
    table["n"] = n
    table["method"] = _ICC_DESCRIPTION[icc_type]
    return table[_COLUMNS]


def summarise_icc(table: pd.DataFrame) -> pd.DataFrame:
    """Features tested and kept by phase, image type and feature class (plus an overall row per phase)."""
    kept = table.groupby("feature")["kept"].all()
    per = table.drop_duplicates("feature").set_index("feature")[["phase", "image_type", "feature_class"]]
    per = per.assign(kept=kept).fillna({"phase": "-", "image_type": "-", "feature_class": "-"})
    g = per.groupby(["phase", "image_type", "feature_class"])["kept"].agg(n_features="size", n_kept="sum")
    total = per.groupby("phase")["kept"].agg(n_features="size", n_kept="sum")
    total.index = pd.MultiIndex.from_tuples([(p, "all", "all") for p in total.index],
                                            names=["phase", "image_type", "feature_class"])
    out = pd.concat([g, total]).reset_index()
    out["fraction_kept"] = out["n_kept"] / out["n_features"]
    return out


class ICCFilterResult(NamedTuple):
    kept: list[str]
    table: pd.DataFrame
    summary: pd.DataFrame


def icc_filter(features_obs1: pd.DataFrame, features_obs2: pd.DataFrame, threshold: float = 0.75,
               icc_type: str = "ICC2", features_repeat: pd.DataFrame | None = None,
               use_lower_bound: bool = False) -> ICCFilterResult:
    """Keep features whose ICC exceeds ``threshold`` between observers (inter) and, when
    ``features_repeat`` (observer 1's repeated segmentation) is given, also within observer (intra).

    ``use_lower_bound`` applies the threshold to the lower 95% limit instead of the estimate
    (Koo & Li 2016). Returns ``(kept, table, summary)``: the kept column names in the order of
    ``features_obs1``, the tidy ICC table (one row per feature and comparison, with ``kept``),
    and :func:`summarise_icc`.
    """
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold!r}")
    tables = [icc_table(features_obs1, features_obs2, icc_type, "inter")]
    if features_repeat is not None:
        tables.append(icc_table(features_obs1, features_repeat, icc_type, "intra"))
    table = pd.concat(tables, ignore_index=True)
    crit = table["lower"] if use_lower_bound else table["estimate"]
    table["kept"] = (crit > threshold).to_numpy()
    # a feature is kept only if it passes every comparison and was tested in every comparison
    passed = table.groupby("feature")["kept"].agg(lambda s: bool(s.all()) and len(s) == len(tables))
    table["kept"] = table["feature"].map(passed)
    kept = [c for c in features_obs1.columns if passed.get(c, False)]
    return ICCFilterResult(kept, table, summarise_icc(table))


def _ball_radius(mask: sitk.Image, radius_mm: float) -> list[int]:
    return [int(round(radius_mm / s)) for s in mask.GetSpacing()]


def perturb_mask(mask: sitk.Image, method: str = "contour", radius_mm: float = 1.0, seed: int = 0,
                 correlation_mm: float = 5.0) -> sitk.Image:
    """A second, plausibly different segmentation of the same tumour.

    ``dilate`` / ``erode``: binary morphology with a ball of ``radius_mm`` (rounded per axis to
    whole voxels). ``contour``: the boundary is moved along its normal by a random displacement
    field d(x) ~ N(0, radius_mm^2) that is smooth over ``correlation_mm`` (Gaussian-filtered white
    noise rescaled to SD ``radius_mm``); new mask = {signed distance to the contour < d(x)}.
    Raises if the result is empty.
    """
    mask = sitk.Cast(mask > 0, sitk.sitkUInt8)
    if method in ("dilate", "erode"):
        r = _ball_radius(mask, radius_mm)
        f = sitk.BinaryDilate if method == "dilate" else sitk.BinaryErode
        out = f(mask, r, sitk.sitkBall, 0, 1)
    elif method == "contour":
        rng = np.random.default_rng(seed)
        # symmetric signed distance (mm) to the contour midway between inside and outside voxels
        kw = dict(insideIsPositive=False, squaredDistance=False, useImageSpacing=True)
        sdm = 0.5 * (sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(mask, **kw))
                     - sitk.GetArrayFromImage(sitk.SignedMaurerDistanceMap(1 - mask, **kw)))
        noise = sitk.GetImageFromArray(rng.standard_normal(sdm.shape))
        noise.CopyInformation(mask)
        field_ = sitk.GetArrayFromImage(sitk.SmoothingRecursiveGaussian(noise, correlation_mm))
        field_ = (field_ - field_.mean()) / field_.std() * radius_mm
        arr = (sdm < field_).astype(np.uint8)
        out = sitk.GetImageFromArray(arr)
        out.CopyInformation(mask)
    else:
        raise ValueError(f"perturbation method must be 'contour', 'dilate' or 'erode', got {method!r}")
    if int(sitk.GetArrayViewFromImage(out).sum()) == 0:
        raise ValueError(f"mask perturbation {method!r} (radius {radius_mm} mm) left an empty mask")
    return out
