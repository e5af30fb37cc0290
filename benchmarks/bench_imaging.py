"""Benchmark of the radiomics engine on the 36 real CTs (IBSI / TCIA soft-tissue sarcoma).

Runs ``extract_manifest`` with the full default setting (Original + LoG sigma 4 + Wavelet, all seven
classes, 1 mm resampling) three times in this process: sequential (1 worker, cold cache), parallel
(2 local worker processes, cold cache) and a rerun on the warm cache. Reports cases/minute and the
speed-up against the sequential run, peak RSS per worker process, and the time split by image type.
Writes benchmarks/results/imaging.md.

    .venv/bin/python benchmarks/bench_imaging.py [--cases N] [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATA = (REPO / ".." / "shared" / "data" / "ibsi" / "sts_ct").resolve()


def _manifest(n: int | None) -> pd.DataFrame:
    cases = sorted(p for p in DATA.glob("STS_*") if (p / "CT_image.nii.gz").is_file())[:n]
    return pd.DataFrame({"patient_id": [p.name for p in cases], "phase": "AP",
                         "image": [str(p / "CT_image.nii.gz") for p in cases],
                         "mask": [str(p / "CT_mask.nii.gz") for p in cases]})


def _cpu_seconds() -> float:
    """CPU time of this process plus its finished (reaped) child processes."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run(manifest, out, workers, cache):
    from prime_stats.imaging import extract_manifest

    load = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), _cpu_seconds()
    res = extract_manifest(manifest, out, None, workers=workers, cache_dir=cache, progress=False)
    return res, time.perf_counter() - t0, load, _cpu_seconds() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=None, help="first N cases only (default all 36)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "imaging.md"))
    args = ap.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"real CT folder {DATA} is absent")
    manifest = _manifest(args.cases)
    n = len(manifest)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seq, t_seq, load_seq, cpu_seq = _run(manifest, tmp / "seq" / "f.parquet", 1, tmp / "cache_seq")
        par, t_par, load_par, cpu_par = _run(manifest, tmp / "par" / "f.parquet", args.workers, tmp / "cache_par")
        hit, t_hit, load_hit, cpu_hit = _run(manifest, tmp / "par" / "f.parquet", args.workers, tmp / "cache_par")
    assert (seq.log["status"] == "ok").all() and (par.log["status"] == "ok").all(), "a case failed"
    assert (hit.log["status"] == "cached").all()
    pd.testing.assert_frame_equal(seq.features, par.features)

    rows = [("sequential, 1 worker (cold)", t_seq, load_seq, cpu_seq),
            (f"parallel, {args.workers} workers (cold)", t_par, load_par, cpu_par),
            (f"rerun on cache, {args.workers} workers", t_hit, load_hit, cpu_hit)]
    lines = [
        "# Radiomics engine benchmark (bench_imaging.py)",
        "",
        f"{n} real CT cases (IBSI / TCIA soft-tissue sarcoma), full default setting: Original + LoG (sigma 4 mm) + "
        f"Wavelet (8 bands), 7 classes, 1 mm B-spline resampling, 64 bins; {seq.features.shape[1]} features per case. "
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), shared with other jobs; "
        "the 1-minute load average at the start of each run is given because other processes compete for the cores. "
        "CPU = CPU seconds of this process and its worker processes; cores obtained = CPU / wall time "
        "(2.0 would be both cores for the whole run). Equal CPU per case in both runs means the parallel run "
        "adds no work; its wall-time gain is then limited only by the cores the other jobs leave free.",
        "",
        "| run | wall time (s) | cases / minute | speed-up vs sequential | CPU (s) | CPU per case (s) | cores obtained | load average |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, t, load, cpu in rows:
        lines.append(f"| {name} | {t:.1f} | {60 * n / t:.1f} | {t_seq / t:.2f}x | {cpu:.1f} | {cpu / n:.2f} | "
                     f"{cpu / t:.2f} | {load:.1f} |")
    rss = par.timing.groupby("pid")["peak_rss_mb"].max()
    lines += ["", "Peak resident memory per worker process (MB, VmHWM; workers are recycled every "
              "25 cases so a pid may serve fewer cases): "
              + ", ".join(f"{v:.0f}" for v in rss.sort_values(ascending=False)),
              f"(sequential run, whole calling process: {seq.timing['peak_rss_mb'].max():.0f} MB).", ""]
    split = seq.timing[["preprocess", "Original", "LoG", "Wavelet"]]
    total = split.to_numpy().sum()
    lines += ["Time by image type (sequential run, summed over cases):", "",
              "| step | seconds | share | per case median (s) | per case max (s) |", "|---|---:|---:|---:|---:|"]
    for col in split:
        lines.append(f"| {col} | {split[col].sum():.1f} | {split[col].sum() / total:.0%} | "
                     f"{split[col].median():.2f} | {split[col].max():.2f} |")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
