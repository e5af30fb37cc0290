"""Model fitting on the training split: PRIME-R, PRIME-S and their comparators, nested CV,
cross-validated SHAP and SHAP of the frozen models, and the frozen models' files (skops)."""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .. import persist
from .config import StudyConfig
from .design import FeatureSet
from .predictions import PRIME_R, PRIME_S, slug


def fit_baseline(fs: FeatureSet, train_ids, y_resp, y_surv) -> dict:
    """Ridge logistic regression and ridge Cox on the clinical features (the comparator family);
    an endpoint whose outcome is None is skipped."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sksurv.linear_model import CoxPHSurvivalAnalysis

    Xtr = fs.X.loc[train_ids, fs.clinical]
    models: dict = {"response": {}, "survival": {}}
    if y_resp is not None:
        resp = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                             LogisticRegressionCV(Cs=10, cv=5, scoring="roc_auc", max_iter=5000,
                                                  l1_ratios=(0.0,), use_legacy_attributes=False))
        models["response"]["baseline"] = (resp.fit(Xtr, y_resp.to_numpy()), fs.clinical)
    if y_surv is not None:
        survm = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                              CoxPHSurvivalAnalysis(alpha=10.0, ties="efron"))
        models["survival"]["baseline"] = (survm.fit(Xtr, y_surv), fs.clinical)
    return models


def selection_settings(cfg: StudyConfig) -> dict:
    """The feature-selection recipe and learner-choice rule every PRIME model of the study uses."""
    return dict(recipe=cfg.models.recipe, learner_choice=cfg.models.learner_choice)


def fit_prime(fs: FeatureSet, train_ids, y_resp, y_surv, cfg: StudyConfig, log) -> dict:
    """PRIME-R (late fusion), PRIME-S (model averaging) and the early-fusion comparators on the
    training split; an endpoint whose outcome is None is skipped. The single-modality comparators
    are PRIME's own base models."""
    from ..fusion import PrimeR, PrimeS
    from ..models.selection import ModalityClassifier, ModalitySurvival

    kw = dict(fast=cfg.models.fast, random_state=cfg.seed, n_jobs=cfg.models.n_jobs, **selection_settings(cfg))
    Xtr = fs.X.loc[train_ids]
    early = bool(fs.radiomics and fs.clinical)
    models: dict = {"response": {}, "survival": {}}
    if y_resp is not None:
        t0 = time.time()
        prime_r = PrimeR(fs.clinical, fs.radiomics, **kw).fit(Xtr, y_resp.to_numpy())
        log(f"PRIME-R fitted in {time.time() - t0:.0f}s: learners {prime_r.chosen_learners_}"
            + (f"; {prime_r.fusion_note_}" if prime_r.collapsed_ else ""))
        models["response"][PRIME_R] = prime_r
        if early:
            models["response"]["early fusion"] = ModalityClassifier(
                fs.clinical, fs.radiomics, "early", **kw).fit(Xtr, y_resp.to_numpy())
    if y_surv is not None:
        t0 = time.time()
        prime_s = PrimeS(fs.clinical, fs.radiomics, averaging=cfg.models.averaging, **kw).fit(Xtr, y_surv)
        log(f"PRIME-S fitted in {time.time() - t0:.0f}s: {cfg.models.averaging} weights "
            + ", ".join(f"{r.feature_kind}/{r.learner}={r.weight:.2f}" for r in prime_s.weights_table_.itertuples())
            + (f"; {prime_s.fusion_note_}" if prime_s.collapsed_ else ""))
        models["survival"][PRIME_S] = prime_s
        if early:
            models["survival"]["early fusion"] = ModalitySurvival(
                fs.clinical, fs.radiomics, "early", **kw).fit(Xtr, y_surv)
    return models


def nested_cv_table(fs: FeatureSet, train_ids, y_resp, y_surv, cfg: StudyConfig, log) -> pd.DataFrame | None:
    """Nested CV (inner tuning, outer estimate) of clinical, radiomics, early and late fusion for
    each endpoint present; None when there is only one modality."""
    from ..fusion import compare_modalities

    if not (fs.clinical and fs.radiomics):
        return None
    Xtr = fs.X.loc[train_ids]
    kw = dict(outer_cv=5, cv=5, fast=cfg.models.fast, random_state=cfg.seed, n_jobs=cfg.models.n_jobs,
              progress=log, averaging=cfg.models.averaging, **selection_settings(cfg))
    t0 = time.time()
    tabs = [compare_modalities(Xtr, y, fs.clinical, fs.radiomics, **kw)
            for y in (None if y_resp is None else y_resp.to_numpy(), y_surv) if y is not None]
    log(f"nested CV of the modality comparison in {time.time() - t0:.0f}s")
    tab = pd.concat(tabs, ignore_index=True)
    tab["model"] = np.where(tab["model"] == "late fusion",
                            np.where(tab["endpoint"] == "response", PRIME_R, PRIME_S), tab["model"])
    return tab.assign(split="nested_cv", engine="python", n=len(Xtr))


BINARY_OPTIMISM = ("auc", "brier", "ipa", "intercept", "slope")
SURVIVAL_OPTIMISM = ("c_index", "uno_c")


def optimism_table(fs: FeatureSet, train_ids, y_resp, y_surv, cfg: StudyConfig, log, folder: Path) -> pd.DataFrame:
    """Harrell's bootstrap optimism of PRIME-R and PRIME-S (``evaluation.bootstrap`` replicates): the
    whole pipeline (selection, tuning, fusion) refitted on each bootstrap sample of the training split
    and tested on the original rows, as ``rms::validate``. Rows: endpoint, model, metric, time, apparent,
    training, test, optimism, corrected, optimism_se, B, B_failed, method, engine. Replicates persist
    in ``folder`` (a rerun resumes). Survival metrics are the C-indices (Harrell, Uno): PRIME-S is refitted
    as a ranking model here."""
    from ..evaluation.resampling import BINARY_METRICS, SURVIVAL_METRICS, bootstrap_optimism
    from ..fusion import PrimeR, PrimeS

    kw = dict(fast=cfg.models.fast, random_state=cfg.seed, n_jobs=1, **selection_settings(cfg))
    Xtr = fs.X.loc[train_ids]
    common = dict(B=cfg.evaluation.bootstrap, n_jobs=cfg.models.n_jobs, random_state=cfg.seed,
                  progress=log.enabled, warn_seconds=300.0)
    frames = []
    t0 = time.time()
    if y_resp is not None:
        tab = bootstrap_optimism(PrimeR(fs.clinical, fs.radiomics, **kw), Xtr, y_resp.to_numpy(),
                                 scoring=BINARY_OPTIMISM, stratify=True, folder=folder / "response", **common)
        frames.append(tab.assign(endpoint="response", model=PRIME_R, metric=tab["metric"].map(BINARY_METRICS)))
    if y_surv is not None:
        tab = bootstrap_optimism(PrimeS(fs.clinical, fs.radiomics, averaging=cfg.models.averaging, **kw), Xtr, y_surv,
                                 scoring=SURVIVAL_OPTIMISM, folder=folder / "survival", **common)
        method = {k: v[2] for k, v in SURVIVAL_METRICS.items()}
        frames.append(tab.assign(endpoint="survival", model=PRIME_S,
                                 method=tab["metric"].map(method) + "; " + tab["method"],
                                 metric=tab["metric"].map({k: v[1] for k, v in SURVIVAL_METRICS.items()})))
    log(f"bootstrap optimism ({cfg.evaluation.bootstrap} refits per endpoint) in {time.time() - t0:.0f}s")
    return pd.concat(frames, ignore_index=True)


def stage_inputs(fs: FeatureSet, train_ids, y_resp, y_surv, cfg: StudyConfig) -> tuple:
    """What the model stages depend on: the training features and outcomes, the seed and the model
    settings (not the worker count, which does not change results)."""
    settings = {k: v for k, v in asdict(cfg.models).items() if k not in ("n_jobs", "cache")}
    return (fs.X.loc[train_ids], fs.clinical, fs.radiomics, y_resp, y_surv, cfg.seed, settings)


def shap_results(models, fs: FeatureSet, train_ids, y_resp, y_surv, cfg: StudyConfig, external_ids=()) -> dict:
    """Cross-validated SHAP of PRIME-R and PRIME-S on the training split (fit on four fifths,
    explain the held-out fifth) and SurvSHAP(t) of the frozen PRIME-S on up to 30 external patients
    with a training background, at the horizons inside its follow-up. The refits explain the final
    PRIME models' choices: their inputs are the features those models selected on the whole
    training split and their candidate learners the ones those models' predictions use
    (``predicting_learners_``; the fast grids are re-tuned in each fold). A description of the final
    models, not a performance estimate. Returns {"response": ShapResult, "survival": ShapResult,
    "survshap": SurvShapResult}."""
    from sklearn.base import clone

    from .. import explain
    from ..fusion import PrimeR, PrimeS

    Xtr = fs.X.loc[train_ids]
    res = {}
    for endpoint, key, y in (("response", PRIME_R, None if y_resp is None else y_resp.to_numpy()),
                             ("survival", PRIME_S, y_surv)):
        if y is None:
            continue
        m = models[endpoint][key]
        used = list(dict.fromkeys(m.selected_features_["feature"]))[: cfg.explain.max_features * 2]
        clin_used = [f for f in used if f in fs.clinical]
        rad_used = [f for f in used if f in fs.radiomics]
        klass = PrimeR if endpoint == "response" else PrimeS
        est = klass(clin_used, rad_used, learners=m.predicting_learners_, fast=True, random_state=cfg.seed,
                    n_jobs=cfg.models.n_jobs,
                    **selection_settings(cfg), **({"oof_repeats": 1} if klass is PrimeR else
                                                 {"averaging": cfg.models.averaging}))
        res[endpoint] = explain.cv_shap(clone(est), Xtr[clin_used + rad_used], y, cv=cfg.explain.cv,
                                        random_state=cfg.seed)
    if cfg.explain.survshap and y_surv is not None:
        explained = fs.X.loc[external_ids[:30]] if len(external_ids) else Xtr.iloc[:30]
        # the horizons inside the frozen model's follow-up (its survival function ends there)
        last = models["survival"][PRIME_S].predict_survival_function(Xtr.iloc[:1])[0].x[-1]
        res["survshap"] = explain.survshap(models["survival"][PRIME_S], explained, [t for t in cfg.times if t <= last],
                                           background=Xtr, n_background=FROZEN_BACKGROUND, random_state=cfg.seed)
    return res


FROZEN_BACKGROUND = 30    # training patients in the background of the frozen models' SHAP


def frozen_shap_results(models, fs: FeatureSet, train_ids, explained: pd.Series, cfg: StudyConfig) -> dict:
    """SHAP of the frozen PRIME-R (P(response), ``predict_proba``) and PRIME-S (its risk score,
    ``predict``): the validated models themselves, not refits, on the patients of ``explained``
    (patient id -> split) with a background of :data:`FROZEN_BACKGROUND` training patients
    (:func:`prime_stats.explain.frozen_shap`). Returns {"response": ShapResult, "survival": ShapResult}
    for the endpoints fitted."""
    from .. import explain

    res = {}
    for endpoint, key in (("response", PRIME_R), ("survival", PRIME_S)):
        m = models.get(endpoint, {}).get(key)
        if m is not None:
            res[endpoint] = explain.frozen_shap(m, fs.X.loc[explained.index], background=fs.X.loc[train_ids],
                                                groups=explained.to_numpy(), n_background=FROZEN_BACKGROUND,
                                                random_state=cfg.seed)
    return res


def write_models(models: dict, folder: Path, n_jobs: int = 1) -> dict:
    """Each fitted model to ``folder/<endpoint>_<name>.skops`` (one model per worker: skops walks
    every tree node in Python, seconds per model) and ``index.json`` ({endpoint: {name: file}})."""
    from joblib import Parallel, delayed

    folder.mkdir(parents=True, exist_ok=True)
    index, jobs = {}, []
    for endpoint, ms in models.items():
        for name, m in ms.items():
            f = f"{endpoint}_{slug(name)}.skops"
            jobs.append((m, folder / f))
            index.setdefault(endpoint, {})[name] = f
    # max_nbytes=None: no memmapped arguments, which skops would store as memmaps it cannot load
    Parallel(n_jobs=max(1, min(n_jobs, len(jobs))), max_nbytes=None)(
        delayed(persist.dump_skops)(m, path) for m, path in jobs)
    (folder / "index.json").write_text(json.dumps(index, indent=2))
    return index


def read_models(folder: Path, n_jobs: int = 1) -> dict:
    """The models :func:`write_models` wrote (skops, trusted types only; one file per worker)."""
    from joblib import Parallel, delayed

    index = json.loads((folder / "index.json").read_text())
    files = [(ep, name, f) for ep, ms in index.items() for name, f in ms.items()]
    loaded = Parallel(n_jobs=max(1, min(n_jobs, len(files))))(
        delayed(persist.load_skops)(folder / f) for _, _, f in files)
    models: dict = {}
    for (ep, name, _), m in zip(files, loaded):
        models.setdefault(ep, {})[name] = m
    return models


def save_frozen_models(models: dict, fs: FeatureSet, cfg: StudyConfig, out: Path, written: Path | None = None):
    """Fitted models and the fitted feature step with skops (no unrestricted pickle), and the
    feature specification beside them, so that new patients can be scored by the frozen study.
    ``written``: a folder where :func:`write_models` already wrote these models (the stage cache
    entry); its files are copied instead of being serialised again."""
    import shutil

    folder = out / "models"
    if written is not None and (written / "index.json").is_file():
        folder.mkdir(exist_ok=True)
        index = json.loads((written / "index.json").read_text())
        for f in [*(f for ms in index.values() for f in ms.values()), "index.json"]:
            shutil.copyfile(written / f, folder / f)
    else:
        index = write_models(models, folder, cfg.models.n_jobs)
    persist.dump_skops(fs.encoder, folder / "clinical_encoder.skops")
    spec = {"models": index, "clinical_features": fs.clinical, "radiomics_features": fs.radiomics,
            "excluded_missing": fs.excluded_missing, "radiomics_settings": cfg.radiomics,
            "family": cfg.models.family, "times": cfg.times, "config": cfg.to_dict()}
    (folder / "study_spec.json").write_text(json.dumps(spec, indent=2, default=str))
