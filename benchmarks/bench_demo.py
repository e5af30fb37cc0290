"""Benchmark of the README's main command: simulate -> extract -> run -> report on the
simulated 246-patient study, three runs back to back with the same command on the same machine:
cold (empty output folder), rerun (reuses the simulated data, the radiomics feature cache and
the stage cache of fitted models, nested CV and SHAP) and rerun with ``--no-cache`` (reuses the
data and the feature cache only; every model is refitted). Reports wall time per stage and the
ratios to the cold run.

    .venv/bin/python benchmarks/bench_demo.py [--out out/bench_demo] [--workers 2]
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

STAGE = re.compile(r"\[prime-stats\s+([\d.]+)s\] (.*)")


def run(out: Path, workers: int, *extra: str) -> tuple[float, list[tuple[float, str]]]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "prime_stats.cli", "demo", "--out", str(out),
                           "--workers", str(workers), *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"demo failed:\n{proc.stderr[-3000:]}")
    stages = [(float(m.group(1)), m.group(2)) for m in map(STAGE.match, proc.stderr.splitlines()) if m]
    return wall, stages


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="out/bench_demo")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    cold, cold_stages = run(out, args.workers)
    warm, warm_stages = run(out, args.workers)
    refit, refit_stages = run(out, args.workers, "--no-cache")
    lines = ["# Demo benchmark (`prime-stats demo`, 246 simulated patients, both phases)", "",
             f"workers: {args.workers}", "",
             "| run | wall time (s) | ratio to cold |", "|---|---|---|",
             f"| cold (simulate + extract + run + report) | {cold:.0f} | 1.00 |",
             f"| rerun (reuses data, feature cache and stage cache) | {warm:.0f} | {warm / cold:.2f} |",
             f"| rerun --no-cache (reuses data and feature cache; refits every model) | {refit:.0f} | "
             f"{refit / cold:.2f} |", "",
             "## Stage log, cold run (elapsed seconds at each message)", ""]
    lines += [f"- {t:7.1f}s {msg}" for t, msg in cold_stages]
    lines += ["", "## Stage log, rerun", ""] + [f"- {t:7.1f}s {msg}" for t, msg in warm_stages]
    lines += ["", "## Stage log, rerun --no-cache", ""] + [f"- {t:7.1f}s {msg}" for t, msg in refit_stages]
    dest = Path(__file__).parent / "results" / "demo.md"
    dest.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:9]))


if __name__ == "__main__":
    main()
