"""Derived clinical indices used by PRIME.

Units follow the source definitions: albumin in g/L, bilirubin in umol/L, lymphocytes, monocytes
and neutrophils in 10^9/L, prothrombin time (PT) in seconds, INR unitless.

References
----------
ALBI: Johnson PJ et al. J Clin Oncol 2015;33:550-558 (score = 0.66 log10 bilirubin - 0.085 albumin;
      grade 1 <= -2.60 < grade 2 <= -1.39 < grade 3).
PNI:  Onodera T et al. Nihon Geka Gakkai Zasshi 1984;85:1001-1005 (10 x albumin g/dL +
      0.005 x lymphocytes per mm^3 = albumin g/L + 5 x lymphocytes 10^9/L).
Child-Pugh: Pugh RNH et al. Br J Surg 1973;60:646-649 (bilirubin <34 / 34-50 / >50 umol/L,
      albumin >35 / 28-35 / <28 g/L, INR <1.7 / 1.7-2.3 / >2.3, ascites and encephalopathy
      none / mild (grade 1-2) / moderate-severe (grade 3-4); class A 5-6, B 7-9, C 10-15).
"""
from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np
import pandas as pd

ALBI_CUTS = (-2.60, -1.39)


def _numeric(x, name: str) -> np.ndarray:
    arr = np.asarray(pd.to_numeric(pd.Series(np.ravel(x)), errors="coerce"), dtype=float)
    bad = ~np.isfinite(arr) & ~pd.isna(pd.Series(np.ravel(x))).to_numpy()
    if bad.any():
        raise ValueError(f"{name}: non-numeric values at positions {np.flatnonzero(bad)[:5].tolist()}")
    return arr


def albi_score(albumin_g_l, bilirubin_umol_l) -> np.ndarray:
    """ALBI score = 0.66 * log10(bilirubin [umol/L]) - 0.085 * albumin [g/L] (Johnson 2015)."""
    alb = _numeric(albumin_g_l, "albumin")
    bil = _numeric(bilirubin_umol_l, "bilirubin")
    if np.any(bil <= 0):
        raise ValueError("bilirubin: values must be > 0 umol/L for log10 in the ALBI score")
    if np.nanmax(alb, initial=0) < 10:
        warnings.warn("albumin looks like g/dL (all values < 10); ALBI expects g/L", stacklevel=2)
    return 0.66 * np.log10(bil) - 0.085 * alb


def albi_grade(score) -> np.ndarray:
    """ALBI grade 1 (score <= -2.60), 2 (-2.60 < score <= -1.39) or 3 (> -1.39); NaN stays NaN."""
    s = np.asarray(score, dtype=float)
    grade = np.where(s <= ALBI_CUTS[0], 1.0, np.where(s <= ALBI_CUTS[1], 2.0, 3.0))
    grade[np.isnan(s)] = np.nan
    return grade


def pni(albumin_g_l, lymphocytes_10e9_l) -> np.ndarray:
    """Prognostic nutritional index = albumin [g/L] + 5 * lymphocytes [10^9/L] (Onodera 1984)."""
    return _numeric(albumin_g_l, "albumin") + 5.0 * _numeric(lymphocytes_10e9_l, "lymphocytes")


def _points(x, cut_low, cut_high, increasing=True):
    """1/2/3 points: x < low -> 1, low <= x <= high -> 2, x > high -> 3 (reversed if not increasing)."""
    x = np.asarray(x, dtype=float)
    if increasing:
        pts = np.where(x < cut_low, 1.0, np.where(x <= cut_high, 2.0, 3.0))
    else:  # albumin: > high -> 1, low..high -> 2, < low -> 3
        pts = np.where(x > cut_high, 1.0, np.where(x >= cut_low, 2.0, 3.0))
    pts[np.isnan(x)] = np.nan
    return pts


def child_pugh_score(bilirubin_umol_l, albumin_g_l, inr, ascites, encephalopathy) -> np.ndarray:
    """Child-Pugh score (5-15). ``ascites`` and ``encephalopathy`` are graded 0 none, 1 mild
    (encephalopathy grade 1-2), 2 moderate-severe (grade 3-4)."""
    asc = _numeric(ascites, "ascites")
    enc = _numeric(encephalopathy, "encephalopathy")
    for name, v in (("ascites", asc), ("encephalopathy", enc)):
        if np.any(~np.isnan(v) & ~np.isin(v, (0, 1, 2))):
            raise ValueError(f"{name}: grades must be 0 (none), 1 (mild) or 2 (moderate-severe)")
    return (
        _points(_numeric(bilirubin_umol_l, "bilirubin"), 34, 50)
        + _points(_numeric(albumin_g_l, "albumin"), 28, 35, increasing=False)
        + _points(_numeric(inr, "inr"), 1.7, 2.3)
        + asc + 1 + enc + 1
    )


def child_pugh_class(score) -> np.ndarray:
    """Child-Pugh class A (5-6), B (7-9), C (10-15); missing score gives None."""
    s = np.asarray(score, dtype=float)
    out = np.where(s <= 6, "A", np.where(s <= 9, "B", "C")).astype(object)
    out[np.isnan(s)] = None
    return out


def ratio(numerator, denominator, name: str) -> np.ndarray:
    """Cell-count ratio such as NLR (neutrophils / lymphocytes) or MLR (monocytes / lymphocytes)."""
    num = _numeric(numerator, name)
    den = _numeric(denominator, name)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    out[den <= 0] = np.nan
    return out


def relative_change(pre, post, name: str = "lab", patient_ids: Iterable | None = None) -> np.ndarray:
    """Relative change (post - pre) / pre one month after treatment start (e.g. dMON, dPT).

    A baseline of zero or less gives NaN and a warning naming the patients affected."""
    a = _numeric(pre, name)
    b = _numeric(post, f"{name}_1m")
    zero = a <= 0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (b - a) / a
    if zero.any():
        ids = np.asarray(list(patient_ids))[zero] if patient_ids is not None else np.flatnonzero(zero)
        warnings.warn(f"relative change of {name}: baseline <= 0 for {list(ids)[:10]}; set to NaN",
                      stacklevel=2)
        out[zero] = np.nan
    return out


#: derived index -> the raw columns it needs
DERIVED_INPUTS = {
    "albi_score": ("albumin", "bilirubin"),
    "pni": ("albumin", "lymphocytes"),
    "child_pugh_score": ("bilirubin", "albumin", "inr", "ascites", "encephalopathy"),
    "nlr": ("neutrophils", "lymphocytes"),
    "mlr": ("monocytes", "lymphocytes"),
}


def add_clinical_indices(df: pd.DataFrame, change_labs: Iterable[str] | None = None,
                         post_suffix: str = "_1m") -> pd.DataFrame:
    """Return a copy of ``df`` with ALBI, PNI, Child-Pugh, NLR, MLR and the one-month relative
    changes ``d_<lab>`` for every lab with a ``<lab>_1m`` column (or those in ``change_labs``).

    Indices whose inputs are absent are skipped; existing columns are recomputed."""
    out = df.copy()
    have = set(out.columns)
    if {"albumin", "bilirubin"} <= have:
        out["albi_score"] = albi_score(out["albumin"], out["bilirubin"])
        out["albi_grade"] = albi_grade(out["albi_score"])
    if {"albumin", "lymphocytes"} <= have:
        out["pni"] = pni(out["albumin"], out["lymphocytes"])
    if set(DERIVED_INPUTS["child_pugh_score"]) <= have:
        out["child_pugh_score"] = child_pugh_score(out["bilirubin"], out["albumin"], out["inr"],
                                                   out["ascites"], out["encephalopathy"])
        out["child_pugh_class"] = child_pugh_class(out["child_pugh_score"])
    if {"neutrophils", "lymphocytes"} <= have:
        out["nlr"] = ratio(out["neutrophils"], out["lymphocytes"], "nlr")
    if {"monocytes", "lymphocytes"} <= have:
        out["mlr"] = ratio(out["monocytes"], out["lymphocytes"], "mlr")
    labs = list(change_labs) if change_labs is not None else [
        c[: -len(post_suffix)] for c in out.columns
        if c.endswith(post_suffix) and c[: -len(post_suffix)] in have]
    for lab in labs:
        post = f"{lab}{post_suffix}"
        if lab not in have or post not in have:
            raise KeyError(f"relative change of {lab!r} needs columns {lab!r} and {post!r}")
        out[f"d_{lab}"] = relative_change(out[lab], out[post], lab, out.index)
    return out
