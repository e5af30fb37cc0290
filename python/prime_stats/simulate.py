"""The simulated PRIME study: the embedded default data set and the ground truth for tests.

Generative model (all effects are written to ``truth.json`` beside the data)
--------------------------------------------------------------------------
Each patient has four latent traits, all standard normal:

* ``liver`` - hepatic dysfunction (higher is worse): lowers albumin, raises bilirubin, PT/INR, AST
  and the chance of ascites;
* ``inflammation`` - systemic inflammation: raises neutrophils, monocytes, LDH and AST, lowers
  lymphocytes; ``inflammation_1m`` (correlated 0.5) drives the one-month monocyte change;
* tumour geometry - log maximum diameter (median 30 mm) and ``irregularity`` (lobulation and
  elongation, which lower sphericity);
* ``heterogeneity`` - intratumoural texture heterogeneity and necrosis.

3-month objective response (mRECIST) is Bernoulli with
``logit p = b0 + b_size z(log diameter) + b_irr z(irregularity) + b_pni z(PNI) + b_combo [TACE+HAIC]``
(large, spherical tumours in well-nourished patients respond: tumour geometry and PNI only).

Overall survival is Weibull (shape 1.2) with log hazard
``eta = g_dmon z(dMON) + g_hbv HBV + g_albi z(ALBI) + g_ast z(log AST) + g_dpt z(dPT)
+ g_het z(heterogeneity) + g_sub subsequent_therapy + g_resp response``, i.e. survival is driven
by systemic inflammation, liver reserve and tumour heterogeneity and barely by response - the
"responder paradox". Patients are accrued uniformly over 24 months and followed to an
administrative cut-off 16 months after the last accrual (median follow-up ~26 months),
with 5%/year loss to follow-up.

Centre A (development, n=113) and centre B (external, n=133) share the outcome model; centre B
differs in case mix (older, more HBV), scanner (more noise, thicker slices) and contrast timing
(weaker arterial enhancement).

Images: per patient and phase a cropped CT volume (NIfTI, in-plane 0.7-0.9 mm, slices 2.5-5 mm)
of liver parenchyma with one lobulated tumour, hyper-enhancing in the arterial phase (AP) and
washing out in the portal-venous phase (PVP), with a smooth random texture whose amplitude and
necrotic core grow with ``heterogeneity``; its mask; and a second observer's mask that differs
by a smooth ~1 mm boundary perturbation. Every mask is one face-connected component. Tumours are smaller than real unresectable HCC
(``size_scale``) to keep radiomics extraction fast; clinical diameter is the imaged one.

Expression: for ``n_expression`` centre-A patients an RNA-seq count matrix (Hallmark genes x
patients, negative binomial) in which immune/inflammatory Hallmark sets rise with the response
linear predictor and EMT/glycolysis/mTORC1 sets rise with the survival log hazard.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage
from scipy.special import expit

from . import clinical as clin
from .genesets import hallmark_gene_sets_path, read_gmt

#: true coefficients (on the standardised latent/clinical scale described in the module docstring)
RESPONSE_EFFECTS = {"intercept": -0.15, "log_diameter": 0.9, "irregularity": -0.9, "pni": 0.8,
                    "tace_haic": 0.3}
SURVIVAL_EFFECTS = {"d_monocytes": 0.55, "hbv": 0.45, "albi_score": 0.55, "log_ast": 0.35,
                    "d_pt": 0.35, "heterogeneity": 0.45, "subsequent_therapy": -0.25,
                    "response": -0.15}
#: population location/scale used to standardise predictors in the outcome models (fixed, so the
#: outcome model does not depend on the sample)
_STANDARDISE = {"log_diameter": (np.log(30.0), 0.35), "pni": (46.0, 6.0), "d_monocytes": (0.05, 0.3),
                "albi_score": (-2.45, 0.45), "log_ast": (np.log(50.0), 0.45), "d_pt": (0.03, 0.07)}
WEIBULL_SHAPE = 1.2
MEDIAN_OS_DAYS = 640.0
IMMUNE_SETS = ["HALLMARK_INTERFERON_GAMMA_RESPONSE", "HALLMARK_INTERFERON_ALPHA_RESPONSE",
               "HALLMARK_INFLAMMATORY_RESPONSE", "HALLMARK_ALLOGRAFT_REJECTION",
               "HALLMARK_IL6_JAK_STAT3_SIGNALING"]
RISK_SETS = ["HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION", "HALLMARK_GLYCOLYSIS",
             "HALLMARK_MTORC1_SIGNALING"]


# missing-value rates of the simulated clinical table (LDH > 30 % exercises the exclusion rule)
MISSING_RATES = {"afp": 0.08, "alt": 0.06, "platelets": 0.05, "lymphocytes": 0.03, "monocytes_1m": 0.10,
                 "pt_1m": 0.12, "ldh": 0.38}


def _z(x, key):
    loc, scale = _STANDARDISE[key]
    return (np.asarray(x, float) - loc) / scale


# ----------------------------------------------------------------------------------------- clinical
def _simulate_patients(rng: np.random.Generator, n: int, centre: str, start: int,
                       size_scale: float) -> pd.DataFrame:
    b = centre == "B"
    liver = rng.normal(0, 1, n)
    infl = rng.normal(0, 1, n)
    infl_1m = 0.5 * infl + np.sqrt(0.75) * rng.normal(0, 1, n)
    het = rng.normal(0, 1, n)
    irregularity = rng.normal(0, 1, n)
    log_diam = np.log(30.0 * size_scale) + 0.35 * rng.normal(0, 1, n)
    diameter = np.clip(np.exp(log_diam), 12 * size_scale, 70 * size_scale)

    age = np.clip(rng.normal(58 if b else 55, 10, n), 25, 85).round()
    hbv = rng.binomial(1, 0.85 if b else 0.78, n)
    sex = np.where(rng.random(n) < 0.86, "M", "F")
    cirrhosis = rng.binomial(1, expit(0.2 + 1.0 * hbv + 0.6 * liver))
    albumin = np.clip(38.5 - 3.6 * liver + rng.normal(0, 2.5, n), 20, 52).round(1)
    bilirubin = np.exp(np.log(15) + 0.35 * liver + rng.normal(0, 0.3, n)).round(1)
    pt = (12.4 + 0.8 * liver + rng.normal(0, 0.6, n)).round(1)
    inr = (pt / 12.0 + rng.normal(0, 0.03, n)).round(2)
    ascites = np.minimum(rng.binomial(2, expit(-2.6 + 1.1 * liver)), 2)
    encephalopathy = (rng.random(n) < expit(-4.5 + liver)).astype(int)
    platelets = np.exp(np.log(150) - 0.25 * liver + rng.normal(0, 0.35, n)).round()
    neutrophils = np.exp(np.log(3.6) + 0.25 * infl + rng.normal(0, 0.25, n)).round(2)
    lymphocytes = np.exp(np.log(1.3) - 0.22 * infl + rng.normal(0, 0.3, n)).round(2)
    monocytes = np.exp(np.log(0.45) + 0.2 * infl + rng.normal(0, 0.22, n)).round(3)
    ldh = np.exp(np.log(210) + 0.25 * infl + 0.1 * (log_diam - np.log(30)) + rng.normal(0, 0.2, n)).round()
    ast = np.exp(np.log(48) + 0.3 * liver + 0.2 * infl + rng.normal(0, 0.35, n)).round()
    alt = np.exp(np.log(ast) - 0.15 + rng.normal(0, 0.3, n)).round()
    afp = np.exp(np.log(150) + 1.2 * (log_diam - np.log(30)) + rng.normal(0, 2.0, n)).round(1)
    monocytes_1m = (monocytes * np.exp(0.05 + 0.28 * infl_1m + rng.normal(0, 0.05, n))).round(3)
    pt_1m = (pt * (1.03 + 0.045 * liver + 0.05 * rng.normal(0, 1, n))).round(1)
    tumour_number = 1 + rng.poisson(0.7, n)
    pvtt = rng.binomial(1, 0.32, n)
    ehm = rng.binomial(1, 0.22, n)
    ecog = rng.choice([0, 1, 2], n, p=[0.55, 0.40, 0.05])
    bclc = np.where((pvtt + ehm + (ecog > 0)) > 0, "C", np.where(tumour_number > 1, "B", "A"))
    treatment = rng.choice(["TACE", "HAIC", "TACE+HAIC"], n, p=[0.4, 0.35, 0.25])
    pd1 = rng.choice(["camrelizumab", "sintilimab", "tislelizumab"], n, p=[0.45, 0.35, 0.2])
    targeted = rng.choice(["lenvatinib", "apatinib", "sorafenib"], n, p=[0.6, 0.25, 0.15])
    ids = [f"{centre}{start + i:04d}" for i in range(n)]
    return pd.DataFrame({
        "patient_id": ids, "centre": centre, "age": age, "sex": sex, "hbv": hbv,
        "cirrhosis": cirrhosis, "ecog": ecog, "bclc": bclc, "afp": afp, "albumin": albumin,
        "bilirubin": bilirubin, "ast": ast, "alt": alt, "pt": pt, "inr": inr,
        "platelets": platelets, "lymphocytes": lymphocytes, "monocytes": monocytes,
        "neutrophils": neutrophils, "ldh": ldh, "ascites": ascites,
        "encephalopathy": encephalopathy, "tumour_diameter_mm": (diameter + rng.normal(0, 1.5, n)).round(1),
        "tumour_number": tumour_number, "pvtt": pvtt, "ehm": ehm, "treatment": treatment,
        "pd1_agent": pd1, "targeted_agent": targeted, "monocytes_1m": monocytes_1m, "pt_1m": pt_1m,
        # latent truth (written to truth_patients.csv, removed from the clinical table)
        "_liver": liver, "_inflammation": infl, "_heterogeneity": het,
        "_irregularity": irregularity, "_diameter": diameter,
    })


def _outcomes(rng: np.random.Generator, df: pd.DataFrame) -> pd.DataFrame:
    n = len(df)
    d = clin.add_clinical_indices(df)
    r = RESPONSE_EFFECTS
    lp_resp = (r["intercept"] + r["log_diameter"] * _z(np.log(d["_diameter"]), "log_diameter")
               + r["irregularity"] * d["_irregularity"] + r["pni"] * _z(d["pni"], "pni")
               + r["tace_haic"] * (d["treatment"] == "TACE+HAIC"))
    p_resp = expit(lp_resp)
    response = rng.binomial(1, p_resp)
    # subsequent therapy after progression is more common in non-responders
    subsequent = rng.binomial(1, np.where(response == 1, 0.35, 0.55))
    s = SURVIVAL_EFFECTS
    eta = (s["d_monocytes"] * _z(d["d_monocytes"], "d_monocytes") + s["hbv"] * d["hbv"]
           + s["albi_score"] * _z(d["albi_score"], "albi_score")
           + s["log_ast"] * _z(np.log(d["ast"]), "log_ast") + s["d_pt"] * _z(d["d_pt"], "d_pt")
           + s["heterogeneity"] * d["_heterogeneity"] + s["subsequent_therapy"] * subsequent
           + s["response"] * response)
    eta_c = eta - s["hbv"] * 0.8  # centre the hazard so that the cohort median OS is ~600 days
    lam = np.log(2) / MEDIAN_OS_DAYS ** WEIBULL_SHAPE
    t_event = (-np.log(rng.random(n)) / (lam * np.exp(eta_c))) ** (1 / WEIBULL_SHAPE)
    accrual = rng.uniform(0, 730, n)
    admin = 730 + 490 - accrual  # administrative cut-off 16 months after the last accrual
    dropout = rng.exponential(365.25 / 0.05, n)
    censor = np.minimum(admin, dropout)
    time = np.maximum(np.minimum(t_event, censor), 1.0).round()
    event = (t_event <= censor).astype(int)
    return pd.DataFrame({"response_3m": response, "os_days": time, "os_event": event,
                         "subsequent_therapy": subsequent, "_lp_response": lp_resp,
                         "_p_response": p_resp, "_lp_survival": eta, "_potential_followup": admin},
                        index=df.index)


def _add_missing(rng, df: pd.DataFrame, rates: dict) -> pd.DataFrame:
    for col, rate in rates.items():
        if col not in df.columns:
            raise KeyError(f"missing_rates names unknown column {col!r}")
        df.loc[rng.random(len(df)) < rate, col] = np.nan
    return df


# ------------------------------------------------------------------------------------------ images
def _tumour_volume(seed: int, diameter: float, irregularity: float, heterogeneity: float,
                   centre: str, in_plane: float, slice_mm: float):
    """Return (AP, PVP, mask, mask_observer2) arrays in z, y, x order and the spacing (x, y, z)."""
    rng = np.random.default_rng(seed)
    radius = diameter / 2
    extent = diameter * 1.5 + 20.0  # mm field of view per axis
    shape = (max(int(extent / slice_mm), 8), int(extent / in_plane), int(extent / in_plane))
    zz, yy, xx = np.meshgrid(*(np.arange(s) for s in shape), indexing="ij")
    pos = np.stack([(zz - shape[0] / 2) * slice_mm, (yy - shape[1] / 2) * in_plane,
                    (xx - shape[2] / 2) * in_plane], axis=-1)
    # elongated main body: irregular tumours are more elongated and carry more/larger buds
    elong = 1.0 + 0.18 * max(irregularity + 1.0, 0.0)
    rot, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    main_r = np.array([radius * elong, radius / np.sqrt(elong), radius / np.sqrt(elong)])
    p_rot = pos @ rot
    inside = ((p_rot / main_r) ** 2).sum(-1) <= 1.0
    n_buds = int(np.clip(round(2 + 1.5 * irregularity + rng.normal(0, 0.5)), 0, 7))
    for _ in range(n_buds):
        u = rng.normal(size=3)
        u /= np.linalg.norm(u)
        centre_b = (u * main_r * 0.9) @ rot.T
        r_b = radius * rng.uniform(0.35, 0.55) * (1 + 0.1 * max(irregularity, 0))
        inside |= ((pos - centre_b) ** 2).sum(-1) <= r_b ** 2
    mask = inside.astype(np.uint8)
    # texture: smooth random field whose amplitude grows with heterogeneity, plus a necrotic core
    field_ = ndimage.gaussian_filter(rng.normal(size=shape), sigma=(1.5 / slice_mm * 2, 2.0, 2.0))
    field_ /= field_.std() + 1e-9
    amp = 12.0 + 9.0 * np.clip(heterogeneity + 1.5, 0, None)
    dist_in = ndimage.distance_transform_edt(mask, sampling=(slice_mm, in_plane, in_plane))
    necrosis_frac = expit(1.2 * heterogeneity - 0.5) * 0.6
    necrotic = dist_in > (1 - necrosis_frac) * dist_in.max()
    liver_bg = ndimage.gaussian_filter(rng.normal(size=shape), sigma=4) * 40
    noise_sd = 14.0 if centre == "B" else 9.0
    arterial_boost = 30.0 if centre == "B" else 45.0  # later arterial timing at centre B
    vols = []
    for phase_liver, tumour_offset in ((70.0, arterial_boost), (115.0, -25.0)):
        img = phase_liver + liver_bg + rng.normal(0, noise_sd, shape)
        tumour = phase_liver + tumour_offset + amp * field_
        tumour = np.where(necrotic, 25.0 + 5 * field_, tumour)
        img = np.where(mask == 1, tumour + rng.normal(0, noise_sd, shape), img)
        vols.append(np.round(img).astype(np.int16))
    # second observer: the boundary re-drawn with a smooth random inward/outward shift of ~1 mm
    blurred = ndimage.gaussian_filter(mask.astype(float), sigma=(0.4, 1.2, 1.2))
    wobble = ndimage.gaussian_filter(rng.normal(size=shape), sigma=(1.0, 5.0, 5.0))
    wobble *= 0.15 / (wobble.std() + 1e-9)
    mask2 = _one_component(blurred + wobble > rng.uniform(0.45, 0.55))
    if mask2.sum() == 0:
        mask2 = mask.copy()
    return vols[0], vols[1], _one_component(mask), mask2, (in_plane, in_plane, slice_mm)


def _one_component(mask) -> np.ndarray:
    """The largest face-connected (6-neighbour) component of a binary mask, holes filled (uint8);
    face connectivity is the strictest, so the mask is one component under any connectivity.

    The re-drawn boundary of the second observer is a threshold of a blurred mask plus a smooth noise
    field, which crosses the threshold in isolated specks away from the tumour; an observer draws one
    closed contour, so only the tumour's own component is kept (a speck would, e.g., double
    Maximum3DDiameter)."""
    lab, n = ndimage.label(mask)
    if n == 0:
        return np.zeros(mask.shape, np.uint8)
    sizes = np.bincount(lab.ravel())[1:]
    return ndimage.binary_fill_holes(lab == 1 + int(np.argmax(sizes))).astype(np.uint8)


def _write_patient_images(args) -> list[dict]:
    import SimpleITK as sitk

    pid, seed, diameter, irregularity, het, centre, in_plane, slice_mm, folder = args
    ap, pvp, mask, mask2, spacing = _tumour_volume(seed, diameter, irregularity, het, centre,
                                                   in_plane, slice_mm)
    rows = []
    for phase, vol in (("AP", ap), ("PVP", pvp)):
        paths = {}
        for kind, arr in (("image", vol), ("mask", mask), ("mask_observer2", mask2)):
            img = sitk.GetImageFromArray(arr)
            img.SetSpacing(spacing)
            img.SetOrigin((-arr.shape[2] * spacing[0] / 2, -arr.shape[1] * spacing[1] / 2, 0.0))
            name = f"{pid}_{phase}_{kind}.nii.gz"
            sitk.WriteImage(img, str(folder / name), useCompression=True)
            paths[kind] = f"images/{name}"
        rows.append({"patient_id": pid, "phase": phase, **paths})
    return rows


# -------------------------------------------------------------------------------------- expression
def _simulate_expression(rng, patients: pd.DataFrame, gmt: Path) -> tuple[pd.DataFrame, dict]:
    sets = read_gmt(gmt)
    genes = sorted({g for gs in sets.values() for g in gs})
    idx = {g: i for i, g in enumerate(genes)}
    base = rng.normal(np.log(80), 1.6, len(genes))
    z_resp = (patients["lp_response"] - patients["lp_response"].mean()) / patients["lp_response"].std()
    z_risk = (patients["lp_survival"] - patients["lp_survival"].mean()) / patients["lp_survival"].std()
    loadings = np.zeros((len(genes), 2))
    responsive = {}
    for col, names in ((0, IMMUNE_SETS), (1, RISK_SETS)):
        for name in names:
            members = [idx[g] for g in sets[name]]
            chosen = rng.choice(members, size=int(0.7 * len(members)), replace=False)
            loadings[chosen, col] += rng.uniform(0.35, 0.75, len(chosen))
            responsive[name] = len(chosen)
    latent = np.column_stack([z_resp, z_risk])
    log_mu = base[:, None] + loadings @ latent.T + rng.normal(0, 0.2, (len(genes), len(patients)))
    lib = rng.uniform(0.7, 1.3, len(patients))
    mu = np.exp(log_mu) * lib[None, :]
    dispersion = 0.15
    counts = rng.negative_binomial(1 / dispersion, 1 / (1 + mu * dispersion))
    df = pd.DataFrame(counts, index=pd.Index(genes, name="gene"), columns=patients["patient_id"])
    return df, {"response_sets": IMMUNE_SETS, "risk_sets": RISK_SETS,
                "responsive_genes_per_set": responsive, "gene_sets_file": str(gmt)}


# ---------------------------------------------------------------------------------------- the study
def simulate_cohort(n_a: int = 113, n_b: int = 133, seed: int = 2024, size_scale: float = 1.0,
                    missing_rates: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate the clinical table with outcomes; returns (clinical, latent truth per patient)."""
    if n_a < 10 or n_b < 0:
        raise ValueError("n_a must be >= 10 and n_b >= 0")
    rates = MISSING_RATES if missing_rates is None else missing_rates
    rng = np.random.default_rng(seed)
    parts = [_simulate_patients(rng, n_a, "A", 1, size_scale)]
    if n_b:
        parts.append(_simulate_patients(rng, n_b, "B", 1, size_scale))
    df = pd.concat(parts, ignore_index=True)
    df = pd.concat([df, _outcomes(rng, df)], axis=1)
    latent_cols = [c for c in df.columns if c.startswith("_")]
    truth = df[["patient_id", "centre"] + latent_cols].rename(columns=lambda c: c.lstrip("_"))
    clinical = _add_missing(rng, df.drop(columns=latent_cols), rates)
    return clinical, truth


def simulate_study(out_dir, n_a: int = 113, n_b: int = 133, seed: int = 2024, images: bool = True,
                   n_expression: int = 33, size_scale: float = 1.0, gene_sets: str | None = None,
                   workers: int = 1, progress: bool = False) -> dict:
    """Write a simulated PRIME study to ``out_dir`` and return the paths written.

    Files: clinical.csv, manifest.csv + images/ (if ``images``), expression_counts.tsv.gz
    (if a Hallmark GMT is found), truth.json, truth_patients.csv and study.yaml (a StudyConfig
    ready for ``prime-stats run``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clinical, truth = simulate_cohort(n_a, n_b, seed, size_scale)
    clinical.to_csv(out / "clinical.csv", index=False)
    truth.to_csv(out / "truth_patients.csv", index=False)
    written = {"clinical": str(out / "clinical.csv"), "truth_patients": str(out / "truth_patients.csv")}
    rng = np.random.default_rng([seed, 7])
    if images:
        folder = out / "images"
        folder.mkdir(exist_ok=True)
        seeds = np.random.SeedSequence([seed, 11]).spawn(len(truth))
        jobs = []
        for k, row in truth.iterrows():
            b = row["centre"] == "B"
            in_plane = float(rng.uniform(0.7, 0.9))
            slice_mm = float(rng.choice([3.0, 5.0] if b else [2.5, 3.0]))
            jobs.append((row["patient_id"], int(seeds[k].generate_state(1)[0]), row["diameter"],
                         row["irregularity"], row["heterogeneity"], row["centre"], in_plane,
                         slice_mm, folder))
        from joblib import Parallel, delayed
        from tqdm.auto import tqdm
        it = tqdm(jobs, desc="simulating CT volumes", unit="patient", disable=not progress)
        rows = Parallel(n_jobs=workers)(delayed(_write_patient_images)(j) for j in it)
        manifest = pd.DataFrame([r for rs in rows for r in rs])
        manifest.to_csv(out / "manifest.csv", index=False)
        written["manifest"] = str(out / "manifest.csv")
    gmt = hallmark_gene_sets_path(gene_sets)
    expr_info = None
    if n_expression and gmt is not None:
        sub = truth.merge(clinical[["patient_id"]], on="patient_id")
        sub = sub[sub["centre"] == "A"].head(n_expression)
        expr, expr_info = _simulate_expression(rng, sub, gmt)
        expr.to_csv(out / "expression_counts.tsv.gz", sep="\t")
        written["expression"] = str(out / "expression_counts.tsv.gz")
    elif n_expression:
        expr_info = {"skipped": "Hallmark GMT not found; pass gene_sets= or set PRIMESTATS_GENESETS"}
    info = {
        "generator": "prime_stats.simulate", "seed": seed, "n_a": n_a, "n_b": n_b,
        "size_scale": size_scale,
        "response_model": {"link": "logit", "effects": RESPONSE_EFFECTS,
                           "drivers": ["tumour_diameter_mm", "sphericity (irregularity, negative)", "pni"]},
        "survival_model": {"baseline": "Weibull", "shape": WEIBULL_SHAPE,
                           "median_os_days_reference": MEDIAN_OS_DAYS, "effects": SURVIVAL_EFFECTS,
                           "drivers": ["d_monocytes", "hbv", "albi_score", "ast", "d_pt",
                                       "intratumoural heterogeneity (texture)"]},
        "standardisation": {k: list(v) for k, v in _STANDARDISE.items()},
        "missing_rates": MISSING_RATES,
        "censoring": "uniform accrual 0-730 d, administrative cut-off at 1220 d, 5%/year dropout",
        "centre_B_shift": "older, more HBV, noise SD 14 vs 9 HU, thicker slices, arterial boost 30 vs 45 HU",
        "expression": expr_info,
    }
    (out / "truth.json").write_text(json.dumps(info, indent=2, default=float))
    written["truth"] = str(out / "truth.json")
    config = {"data": {"clinical": "clinical.csv"}, "seed": seed, "output": "results",
              # fixed bin count: bounded grey levels keep texture informative and extraction fast
              "radiomics": {"bin_count": 32, "bin_width": None}}
    if images:
        config["data"]["manifest"] = "manifest.csv"
    if "expression" in written:
        config["data"]["expression"] = "expression_counts.tsv.gz"
    import yaml
    (out / "study.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    written["config"] = str(out / "study.yaml")
    return written
