"""Benchmark: fitting PRIME-R and PRIME-S with the default grids (all learners, 5-fold CV).

Data: the simulated PRIME clinical table (prime_stats.simulate.simulate_cohort, all centres pooled)
plus a fixed-width radiomics-like block (``N_RADIOMICS`` columns: noisy, partly log-normal linear
mixtures of the simulated tumour traits diameter / irregularity / heterogeneity, so that selection
has real structure to find). Image extraction is benchmarked with imaging, not here.

A. 246 patients, n_jobs = 1 vs n_jobs = 2: wall time, speed-up and peak resident memory of the
   process tree (main process + joblib workers, sampled every 50 ms with psutil).
B. Growth with cohort size at fixed features: 246, 1,000, 4,000 patients (n_jobs = 2).
Writes benchmarks/results/models.md.

    .venv/bin/python benchmarks/bench_models.py [sizes, default 246,1000,4000]
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from sksurv.util import Surv

from prime_stats import clinical as clin
from prime_stats.fusion import PrimeR, PrimeS
from prime_stats.simulate import simulate_cohort

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "models.md"
N_RADIOMICS = 300
DROP = {"patient_id", "centre", "response_3m", "os_days", "os_event", "subsequent_therapy",
        "monocytes_1m", "pt_1m", "albi_grade", "child_pugh_class"}


def study_data(n, seed=2024):
    n_a = max(10, round(n * 113 / 246))
    c, truth = simulate_cohort(n_a=n_a, n_b=n - n_a, seed=seed)
    x = clin.add_clinical_indices(c)
    clinical = [f for f in x.columns if f not in DROP]
    rng = np.random.default_rng(seed)
    traits = np.column_stack([np.log(truth["diameter"]), truth["irregularity"], truth["heterogeneity"]])
    traits = (traits - traits.mean(0)) / traits.std(0)
    W = rng.normal(size=(3, N_RADIOMICS)) * (rng.random((3, N_RADIOMICS)) < 0.5)
    R = traits @ W + rng.normal(size=(len(x), N_RADIOMICS)) * rng.uniform(0.3, 2.0, N_RADIOMICS)
    R[:, ::3] = np.exp(R[:, ::3] / 3)                    # skewed, radiomics-like scales
    rad = pd.DataFrame(R, columns=[f"rad_{j:03d}" for j in range(N_RADIOMICS)], index=x.index)
    X = pd.concat([x[clinical], rad], axis=1)
    y_r = x["response_3m"].to_numpy()
    y_s = Surv.from_arrays(x["os_event"].astype(bool), x["os_days"])
    return X, y_r, y_s, clinical, list(rad.columns)


class PeakRSS:
    """Peak resident memory of this process and its children (sampled)."""

    def __enter__(self):
        self.peak, self._stop = 0, threading.Event()
        proc = psutil.Process(os.getpid())

        def poll():
            while not self._stop.is_set():
                try:
                    rss = proc.memory_info().rss + sum(
                        ch.memory_info().rss for ch in proc.children(recursive=True))
                except psutil.Error:
                    rss = 0
                self.peak = max(self.peak, rss)
                time.sleep(0.05)
        self._t = threading.Thread(target=poll, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()


def fit_both(n, n_jobs):
    X, y_r, y_s, clinical, radiomics = study_data(n)
    out = {}
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        r = PrimeR(clinical, radiomics, cv=5, random_state=0, n_jobs=n_jobs).fit(X, y_r)
        out["PRIME-R s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        s = PrimeS(clinical, radiomics, cv=5, random_state=0, n_jobs=n_jobs).fit(X, y_s)
        out["PRIME-S s"] = time.perf_counter() - t1
    out["total s"] = out["PRIME-R s"] + out["PRIME-S s"]
    out["peak RSS MB"] = mem.peak / 2**20
    out["R chosen"] = ", ".join(f"{k}: {v}" for k, v in r.chosen_learners_.items())
    out["S top weight"] = "{}/{} {:.2f}".format(*s.bma_table_.sort_values("weight").iloc[-1][
        ["feature_kind", "learner", "weight"]])
    return out


def write(rows, load):
    """Write the table so far (the file is rewritten after every configuration)."""
    tab = pd.DataFrame([{"part": p, "patients": n, "n_jobs": j, **res} for p, n, j, res in rows])
    base = tab.loc[(tab.patients == 246) & (tab.n_jobs == 2), "total s"]
    if len(base):
        tab["time / time(246, n_jobs=2)"] = tab["total s"] / base.iloc[0]
    lines = [
        "# Benchmark: fitting PRIME-R and PRIME-S (default grids, all learners, 5-fold CV)",
        "",
        f"Clinical features: {len(study_data(60)[3])}; radiomics-like features: {N_RADIOMICS}; models fitted "
        f"on all patients of the simulated cohort. Machine: {os.cpu_count()} cores, load average at start "
        f"{load:.1f} (shared with other jobs: absolute times and the speed-up are pessimistic).",
        "",
        tab.to_markdown(index=False, floatfmt=".2f"),
        "",
    ]
    if len(base) and (tab.n_jobs == 1).any():
        speedup = tab.loc[(tab.patients == 246) & (tab.n_jobs == 1), "total s"].iloc[0] / base.iloc[0]
        lines += [f"Speed-up n_jobs 2 vs 1 at 246 patients: **{speedup:.2f}x** (target >= 1.7x).", ""]
    lines += ["Growth with cohort size (features fixed): last column of part B."]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


def main(sizes):
    load = os.getloadavg()[0]
    rows = [("A", 246, 1, fit_both(246, 1))]
    write(rows, load)
    rows.append(("A", 246, 2, fit_both(246, 2)))
    write(rows, load)
    for n in sizes:
        if n != 246:
            rows.append(("B", n, 2, fit_both(n, 2)))
            write(rows, load)


if __name__ == "__main__":
    sizes = [int(s) for s in sys.argv[1].split(",")] if len(sys.argv) > 1 else [246, 1000, 4000]
    main(sizes)
