"""Benchmark: the study's SHAP stages (CV SHAP of PRIME-R and PRIME-S, SurvSHAP(t), SHAP of the frozen
models) on the demo study, the current prediction path against the one it replaced, in one process.

The current path scores each modality's distinct rows once (``models.selection.distinct_rows``; SHAP's
coalition rows repeat a modality's values many times), transforms them once through the preprocessing
PRIME-S's members of that modality share (``PrimeS._member_scores``), and reads S(t|x) from the
``return_array`` form (``explain.survival_at``). The previous path (``_before`` below, kept only here)
ran every member's whole pipeline on every coalition row and built one step function per row. Both
paths explain the same fitted models with the study's own callers (``study.fit.shap_results`` and
``frozen_shap_results``), alternately, so a shared machine slows both alike; each explanation is
checked to be the same (max |difference| over every numeric field). The refits of CV SHAP (unchanged)
are timed apart.

Data: a ``prime-stats demo`` folder (default out/bench_demo, which bench_demo.py leaves; simulated and
extracted here when absent). Writes benchmarks/results/shap.md.

    .venv/bin/python benchmarks/bench_shap.py [--demo out/bench_demo] [--workers 2] [--repeats 1]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from prime_stats import explain
from prime_stats.evaluation._survcore import survival_at as step_survival_at
from prime_stats.fusion import PrimeR, PrimeS
from prime_stats.models.selection import _ModalityBase, check_columns
from prime_stats.study import StudyConfig
from prime_stats.study.design import build_features
from prime_stats.study.fit import fit_prime, frozen_shap_results, shap_results
from prime_stats.study.run import _Progress, frozen_shap_patients, load_cohort, split_cohort

OUT = Path(__file__).resolve().parent / "results" / "shap.md"


# ------------------------------------------------------------------ the previous prediction path
def _distinct_before(self, X):
    """Every row of X[columns_], as passed."""
    check_is_fitted(self, "best_estimator_")
    check_columns(X, self.columns_)
    return X[self.columns_], np.arange(len(X))


def _member_scores_before(self, X, keys):
    """Each member's whole pipeline on every row."""
    return {key: np.asarray(self.pipelines_[key].predict(self.bases_[key.split("/")[0]]._distinct(X)[0]),
                            dtype=float) for key in keys}


def _survival_at_before(model, X, times):
    """S(t|x) through one scikit-survival step function per row."""
    times = np.asarray(times, dtype=float)
    sf = np.asarray(model.predict_survival_function(X))
    last = sf[0].x[-1]
    if times.min() < 0 or times.max() > last:
        raise ValueError(f"times must lie within the model's follow-up domain [0, {last:g}]")
    return step_survival_at(sf, times)


@contextlib.contextmanager
def patched(pairs):
    """Set (owner, name, value) attributes for the duration of the block."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in pairs]
    for owner, name, value in pairs:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


BEFORE = [(_ModalityBase, "_distinct", _distinct_before), (PrimeS, "_member_scores", _member_scores_before),
          (explain, "survival_at", _survival_at_before)]


# ------------------------------------------------------------------ timing
class Clock:
    """Seconds and results of each explain call (labelled in call order) and the refits inside them."""

    def __init__(self):
        self.calls, self.refit = [], 0.0

    def timed(self, label, fn):
        def run(*args, **kwargs):
            refit0, t0 = self.refit, time.perf_counter()
            res = fn(*args, **kwargs)
            self.calls.append((label(args), time.perf_counter() - t0, self.refit - refit0, res))
            return res
        return run

    def fit_timer(self, fit):
        def run(est, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fit(est, *args, **kwargs)
            finally:
                self.refit += time.perf_counter() - t0
        return run


def explain_all(models, fs, train, y_resp, y_surv, cfg, external, explained):
    clock = Clock()
    wraps = [(explain, "cv_shap", clock.timed(
                 lambda a: "CV SHAP, PRIME-R" if a[2].dtype.names is None else "CV SHAP, PRIME-S", explain.cv_shap)),
             (explain, "survshap", clock.timed(lambda a: "SurvSHAP(t), frozen PRIME-S", explain.survshap)),
             (explain, "frozen_shap", clock.timed(
                 lambda a: f"frozen SHAP, {'PRIME-R' if isinstance(a[0], PrimeR) else 'PRIME-S'}",
                 explain.frozen_shap)),
             (PrimeR, "fit", clock.fit_timer(PrimeR.fit)), (PrimeS, "fit", clock.fit_timer(PrimeS.fit))]
    with patched(wraps):
        shap_results(models, fs, train, y_resp, y_surv, cfg, external)
        frozen_shap_results(models, fs, train, explained, cfg)
    return clock.calls


def max_difference(a, b) -> float:
    """Largest |a - b| over the numeric fields of two explanations (inf if their shapes differ)."""
    worst = 0.0
    for field, x in vars(a).items():
        y = getattr(b, field)
        if isinstance(x, pd.DataFrame):
            x, y = x.select_dtypes("number").to_numpy(), y.select_dtypes("number").to_numpy()
        x, y = np.asarray(x), np.asarray(y)
        if x.dtype.kind == "f":
            if x.shape != y.shape:
                return np.inf
            worst = max(worst, float(np.nanmax(np.abs(x - y), initial=0.0)))
    return worst


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--demo", default="out/bench_demo")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    demo = Path(args.demo).resolve()
    if not (demo / "data" / "study.yaml").is_file():
        from prime_stats.simulate import simulate_study
        simulate_study(demo / "data", seed=2024, workers=args.workers, progress=True)
    cfg = StudyConfig.from_yaml(demo / "data" / "study.yaml")
    cfg.output = str(demo / "results")   # the demo's radiomics feature cache
    cfg.models.n_jobs = args.workers
    load = os.getloadavg()[0]
    log = _Progress(True)
    cohort = load_cohort(cfg)
    split = split_cohort(cohort, cfg)
    fs = build_features(cohort, split, cfg, log)
    train = split.index[split == "train"]
    y_resp, y_surv = cohort.response.loc[train].astype(int), cohort.survival(train)
    models = fit_prime(fs, train, y_resp, y_surv, cfg, log)
    external = list(split.index[split == "external"])
    explained = frozen_shap_patients(split, cfg)   # the frozen models' patients, as the study samples them

    rows = []
    for rep in range(args.repeats):
        with patched(BEFORE):
            before = explain_all(models, fs, train, y_resp, y_surv, cfg, external, explained)
        after = explain_all(models, fs, train, y_resp, y_surv, cfg, external, explained)
        for (label, t0, r0, res0), (label1, t1, r1, res1) in zip(before, after):
            assert label == label1
            rows.append({"repeat": rep + 1, "stage": label, "before s": t0, "after s": t1, "after / before": t1 / t0,
                         "refits s (before, after)": f"{r0:.1f}, {r1:.1f}",
                         "explaining s before": t0 - r0, "explaining s after": t1 - r1,
                         "explaining after / before": (t1 - r1) / (t0 - r0),
                         "max abs difference": max_difference(res0, res1)})
    tab = pd.DataFrame(rows)
    total = tab.groupby("repeat")[["before s", "after s"]].sum()
    lines = ["# Benchmark: the study's SHAP stages, current prediction path vs the previous one", "",
             f"Demo study ({len(train)} training patients, {len(fs.clinical)} clinical and {len(fs.radiomics)} "
             f"radiomics features, {len(explained)} patients for the frozen models' SHAP); PRIME-S weights "
             + ", ".join(f"{r.feature_kind}/{r.learner}={r.weight:.2f}" for r in
                         models["survival"]["PRIME-S"].weights_table_.itertuples() if r.weight > 0.005)
             + f". Workers: {args.workers}; machine: {os.cpu_count()} cores, load average at start {load:.1f} "
             "(shared with other jobs: compare the ratios, measured alternately in one process, rather than "
             "the absolute seconds).", "",
             "'explaining' excludes the refits of CV SHAP (PRIME-R / PRIME-S fitted on each training fold), "
             "which this change does not touch. 'max abs difference': over every numeric field of the "
             "explanation (SHAP values, base values, data, per-fold importance, ranking); differences of the "
             "order of 1e-16 relative are round-off: a linear member's matrix product can differ in the last bit "
             "with the size of the batch, which the deduplication changes.", "",
             tab.to_markdown(index=False, floatfmt=".3g"), "",
             "Total over the five explanations: " + "; ".join(
                 f"repeat {r}: {b:.1f} s before, {a:.1f} s after ({a / b:.2f}x the time)"
                 for r, (b, a) in total.iterrows()) + "."]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
