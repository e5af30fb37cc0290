"""Batch extraction of a manifest: parallel, cached, resumable, failure-isolated.

One *case* is one (patient, phase, segmentation) image/mask pair; the segmentations are ``observer1``
(manifest column ``mask``), ``observer2`` (``mask_observer2``, inter-observer) and ``repeat``
(``mask_repeat``: observer 1 segmenting again, intra-observer), the last two optional or made by the
``perturbation`` setting. Each case runs in a worker (local
processes by default, or a Dask distributed cluster when a scheduler address is given), writes its
features to a per-case cache file (atomically) and reports status ``ok``; a rerun finds the cache
file and reports ``cached``; a broken case (missing file, empty mask, geometry mismatch, crash of its
worker) is reported ``failed`` with the error and every other case is kept.

Memory per worker is bounded by design: one case at a time per worker, single-threaded ITK,
images cropped to the tumour before resampling and filtering, workers recycled every
``MAX_TASKS_PER_CHILD`` cases, and optionally a hard address-space limit (``memory_limit_mb``,
local processes; virtual memory, so allow ~1.5 GB for the libraries themselves: 3000-4000 MB is a
sensible cap; a Dask cluster uses its workers' own ``memory_limit``). A worker peaks at ~300-450 MB
resident on the 36 real CTs with the full setting (benchmarks/results/imaging.md). With ``workers=1`` the
cases run in the calling process.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import re
import time
import warnings
import zlib
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..cohort import PHASES, resolve_manifest_paths
from .extract import RadiomicsSettings, count_components, extract_case
from .io import load_case

__all__ = ["PHASES", "ExtractionResult", "read_manifest", "extract_manifest"]

MAX_TASKS_PER_CHILD = 25
_LOG_COLUMNS = ["patient_id", "phase", "observer", "status", "mask_components", "seconds", "error", "image",
                "mask"]
SEGMENTATIONS = {"observer1": "mask", "observer2": "mask_observer2", "repeat": "mask_repeat"}


@dataclass
class ExtractionResult:
    """Features (index patient_id; columns ``<phase>_<PyRadiomics name>``) and the per-case log.

    Only patients whose every phase extracted are in ``features``; the others are in the log with
    status ``failed`` and listed in ``excluded``. ``features_observer2`` (inter-observer) and
    ``features_repeat`` (intra-observer) hold the other segmentations' features (manifest columns
    ``mask_observer2`` / ``mask_repeat`` or the ``perturbation`` setting), or None; pass them to
    :func:`~prime_stats.imaging.icc_filter`. ``timing`` gives seconds per case and image type (``preprocess``, ``Original``, ...).
    """

    features: pd.DataFrame
    log: pd.DataFrame
    settings: RadiomicsSettings
    features_observer2: pd.DataFrame | None = None
    features_repeat: pd.DataFrame | None = None
    timing: pd.DataFrame = field(default_factory=pd.DataFrame)
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def excluded(self) -> list[str]:
        failed = self.log.loc[(self.log["status"] == "failed") & (self.log["observer"] == "observer1"), "patient_id"]
        return sorted(set(failed.astype(str)))


def read_manifest(manifest: str | Path | pd.DataFrame) -> pd.DataFrame:
    """Validate an image manifest and return it with absolute paths.

    Columns: patient_id, phase (AP/PVP), image, mask, optional mask_observer2 and mask_repeat (blank
    cells allowed). Relative paths are
    relative to the manifest file's folder (to the working directory for a DataFrame).
    """
    if isinstance(manifest, pd.DataFrame):
        df, base, name = manifest.copy(), Path.cwd(), "manifest DataFrame"
    else:
        path = Path(manifest)
        if not path.is_file():
            raise FileNotFoundError(f"manifest not found: {path}")
        df = pd.read_csv(path, dtype={"patient_id": str})
        base, name = path.resolve().parent, str(path)
    return resolve_manifest_paths(df, base, check_files=False, name=name)


def _file_signature(path: str | None) -> list:
    if path is None:
        return []
    p = Path(path)
    if p.is_dir():
        return sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in p.iterdir() if f.is_file())
    if p.exists():
        st = p.stat()
        return [st.st_size, st.st_mtime_ns]
    return ["missing"]


def _cache_key(task: dict[str, Any], fingerprint: str) -> str:
    from radiomics import __version__ as radiomics_version

    payload = {k: task[k] for k in ("image", "mask", "observer", "perturbation")}
    payload.update(settings=fingerprint, radiomics=radiomics_version,
                   image_sig=_file_signature(task["image"]), mask_sig=_file_signature(task["mask"]))
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


_MEMORY_LIMIT_MB: int | None = None  # set in worker processes by _init_worker


def _init_worker(memory_limit_mb: int | None) -> None:
    """Worker set-up: single-threaded ITK, optional hard address-space (virtual memory) limit."""
    import SimpleITK as sitk

    global _MEMORY_LIMIT_MB
    _MEMORY_LIMIT_MB = memory_limit_mb
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    if memory_limit_mb:
        import resource

        limit = int(memory_limit_mb) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _peak_rss_mb() -> float:
    """This process's peak resident memory (MB): VmHWM on Linux (``ru_maxrss`` would include the
    parent's peak, which survives fork+exec), ``ru_maxrss`` elsewhere."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _run_case(task: dict[str, Any]) -> dict[str, Any]:
    """Extract one case (in a worker); never raises: errors come back as status 'failed'."""
    from .reproducibility import perturb_mask

    t0 = time.perf_counter()
    out = {k: task[k] for k in ("patient_id", "phase", "observer", "image", "mask")}
    try:
        settings = RadiomicsSettings.from_dict(task["settings"])
        case = load_case(task["image"], task["mask"], label=settings.label, tolerance=settings.geometry_tolerance)
        mask = case.mask
        if task["perturbation"] is not None:
            p = task["perturbation"]
            mask = perturb_mask(mask, p["method"], p["radius_mm"], p["seed"])
        out["mask_components"] = count_components(mask)
        features, timing = extract_case(case.image, mask, settings, return_timing=True)
        cache = Path(task["cache_file"])
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps({"features": features, "timing": timing, "task": out}))
        os.replace(tmp, cache)
        out.update(status="ok", error="", features=features, timing=timing)
    except MemoryError:
        out.update(status="failed", error="MemoryError: case exceeds the worker memory limit", features=None, timing={})
    except Exception as exc:  # failure isolation: the error is the case's log entry
        error = f"{type(exc).__name__}: {exc}"
        if _MEMORY_LIMIT_MB:
            error += (f" [worker address space limited to memory_limit_mb={_MEMORY_LIMIT_MB}; a limit that is"
                      " too small makes libraries fail to load or allocate]")
        out.update(status="failed", error=error, features=None, timing={})
    out["seconds"] = time.perf_counter() - t0
    out["peak_rss_mb"] = _peak_rss_mb()
    out["pid"] = os.getpid()
    return out


def _tasks(df: pd.DataFrame, settings: RadiomicsSettings, cache_dir: Path) -> list[dict[str, Any]]:
    sdict, fp = settings.to_dict(), settings.fingerprint()
    tasks = []
    for row in df.itertuples(index=False):
        row = row._asdict()
        variants = [("observer1", row["mask"], None)]
        pert = settings.perturbation or {}
        for seg in ("observer2", "repeat"):
            if row.get(SEGMENTATIONS[seg]):
                variants.append((seg, row[SEGMENTATIONS[seg]], None))
            elif pert and seg in pert.get("targets", ("observer2", "repeat")):
                p = {"method": pert["method"], "radius_mm": float(pert.get("radius_mm", 1.0))}
                p["seed"] = int(pert.get("seed", 0)) + zlib.crc32(f"{row['patient_id']}|{row['phase']}|{seg}".encode())
                variants.append((seg, row["mask"], p))
        for observer, mask, pert in variants:
            task = {"patient_id": row["patient_id"], "phase": row["phase"], "observer": observer,
                    "image": row["image"], "mask": mask, "perturbation": pert, "settings": sdict}
            safe = re.sub(r"[^A-Za-z0-9._-]", "_", row["patient_id"])
            task["cache_file"] = str(cache_dir / f"{safe}_{row['phase']}_{observer}_{_cache_key(task, fp)}.json")
            tasks.append(task)
    return tasks


def _from_cache(task: dict[str, Any]) -> dict[str, Any] | None:
    path = Path(task["cache_file"])
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, OSError):
        return None  # a damaged cache file is recomputed
    out = {k: task[k] for k in ("patient_id", "phase", "observer", "image", "mask")}
    out.update(status="cached", error="", seconds=0.0, features=data["features"], timing=data["timing"],
               mask_components=data["task"].get("mask_components"))
    return out


def _run_local(tasks, workers, memory_limit_mb, bar):
    if workers == 1:
        import SimpleITK as sitk

        threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)  # as in a worker; restored below
        try:
            for t in tasks:
                yield _run_case(t)
                bar.update()
        finally:
            sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
        return
    ctx = mp.get_context("spawn")
    # Workers are recycled by running the cases in batches of MAX_TASKS_PER_CHILD per worker, each
    # batch in a fresh pool (CPython 3.11's max_tasks_per_child can deadlock the executor once the
    # first workers retire, cpython gh-115634).
    batch = workers * MAX_TASKS_PER_CHILD
    for start in range(0, len(tasks), batch):
        chunk = tasks[start:start + batch]
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                 initargs=(memory_limit_mb,)) as pool:
            futures = {pool.submit(_run_case, t): t for t in chunk}
            for fut in as_completed(futures):
                try:
                    yield fut.result()
                except Exception as exc:  # the worker process died (e.g. killed for memory)
                    t = futures[fut]
                    yield {**{k: t[k] for k in ("patient_id", "phase", "observer", "image", "mask")},
                           "status": "failed", "error": f"worker process died: {type(exc).__name__}: {exc}"
                           + (f" [memory_limit_mb={memory_limit_mb}]" if memory_limit_mb else ""),
                           "seconds": float("nan"), "features": None, "timing": {}}
                bar.update()


def _run_dask(tasks, scheduler, bar):
    from distributed import Client
    from distributed import as_completed as dask_completed

    with Client(scheduler) as client:
        client.run(_init_worker, None)  # single-threaded ITK; memory is bounded by the workers' memory_limit
        futures = client.map(_run_case, tasks, pure=False)
        index = {f.key: t for f, t in zip(futures, tasks)}
        for fut in dask_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # lost worker, unpicklable error, ...
                t = index[fut.key]
                yield {**{k: t[k] for k in ("patient_id", "phase", "observer", "image", "mask")},
                       "status": "failed", "error": f"dask: {type(exc).__name__}: {exc}",
                       "seconds": float("nan"), "features": None, "timing": {}}
            bar.update()


def _warn_components(log: pd.DataFrame, s: RadiomicsSettings) -> None:
    """Warn, naming the cases, when masks hold more than one connected component."""
    multi = log[log["mask_components"].fillna(0) > 1]
    if multi.empty:
        return
    cases = [f"{r.patient_id}/{r.phase}/{r.observer} ({r.mask_components})" for r in multi.itertuples()]
    if s.mask_components == "keep":
        action = "every component was extracted (radiomics setting mask_components: keep; set it to largest to keep the largest component only)"
    else:
        action = "only the largest component was extracted (mask_components: largest)"
    warnings.warn(f"{len(cases)} mask(s) have more than one connected component (26-connectivity; "
                  f"count in brackets): {', '.join(cases[:20])}{' ...' if len(cases) > 20 else ''}; {action}",
                  UserWarning, stacklevel=3)


def _wide(records: list[dict[str, Any]], observer: str, patients: list[str], phases: dict[str, list[str]]):
    recs = [r for r in records if r["observer"] == observer]
    if not recs:
        return None
    ok = {(r["patient_id"], r["phase"]): r["features"] for r in recs if r["status"] in ("ok", "cached")}
    rows, index = [], []
    for pid in patients:
        if all((pid, ph) in ok for ph in phases[pid]):
            row = {}
            for ph in PHASES:
                if (pid, ph) in ok:
                    row.update({f"{ph}_{k}": v for k, v in ok[(pid, ph)].items()})
            rows.append(row)
            index.append(pid)
    out = pd.DataFrame(rows, index=pd.Index(index, name="patient_id"))
    ordered = [c for ph in PHASES for c in out.columns if c.startswith(f"{ph}_")]
    return out[ordered].astype(float)


def extract_manifest(manifest: str | Path | pd.DataFrame, out: str | Path,
                     settings: RadiomicsSettings | dict | None = None, workers: int = 1,
                     scheduler: str | None = None, cache_dir: str | Path | None = None,
                     progress: bool = True, memory_limit_mb: int | None = None) -> ExtractionResult:
    """Extract radiomic features for every case of a manifest and write them beside ``out``.

    Writes ``out`` (parquet, index patient_id), ``<out stem>_log.csv`` (one row per case: patient_id,
    phase, observer, status ok/cached/failed, mask_components (connected components of the mask
    as read, before ``mask_components: largest`` applies), seconds, error; a UserWarning names the
    cases with more than one component), ``<out stem>_settings.yaml`` and, when
    other segmentations exist, ``<out stem>_observer2.parquet`` / ``<out stem>_repeat.parquet``. The per-case cache defaults to
    ``<out stem>_cache/`` beside ``out``; with a Dask ``scheduler`` it must be on a file system the
    workers share, as must the image paths.
    """
    s = RadiomicsSettings.coerce(settings)
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    df = read_manifest(manifest)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    cache = Path(cache_dir) if cache_dir is not None else out.parent / f"{stem}_cache"
    cache.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    tasks = _tasks(df, s, cache)
    records, todo = [], []
    for t in tasks:
        hit = _from_cache(t)
        (records.append(hit) if hit is not None else todo.append(t))
    with tqdm(total=len(tasks), initial=len(records), desc="radiomics cases", unit="case",
              disable=not progress) as bar:
        runner = _run_dask(todo, scheduler, bar) if scheduler else _run_local(todo, workers, memory_limit_mb, bar)
        records.extend(runner)

    order = {(t["patient_id"], t["phase"], t["observer"]): i for i, t in enumerate(tasks)}
    records.sort(key=lambda r: order[(r["patient_id"], r["phase"], r["observer"])])
    log = pd.DataFrame([{k: r.get(k) for k in _LOG_COLUMNS} for r in records], columns=_LOG_COLUMNS)
    log["mask_components"] = log["mask_components"].astype("Int64")
    _warn_components(log, s)
    timing = pd.DataFrame([{"patient_id": r["patient_id"], "phase": r["phase"], "observer": r["observer"],
                            "status": r["status"], "peak_rss_mb": r.get("peak_rss_mb"), "pid": r.get("pid"),
                            **r["timing"]} for r in records])
    patients = list(dict.fromkeys(df["patient_id"]))
    phases = df.groupby("patient_id", sort=False)["phase"].agg(list).to_dict()
    tables = {seg: _wide(records, seg, patients, phases) for seg in SEGMENTATIONS}

    paths = {"features": out, "log": out.parent / f"{stem}_log.csv",
             "settings": out.parent / f"{stem}_settings.yaml", "cache": cache}
    tables["observer1"].to_parquet(out)
    log.to_csv(paths["log"], index=False)
    s.to_yaml(paths["settings"])
    for seg in ("observer2", "repeat"):
        if tables[seg] is not None:
            paths[f"features_{seg}"] = out.parent / f"{stem}_{seg}.parquet"
            tables[seg].to_parquet(paths[f"features_{seg}"])
    return ExtractionResult(features=tables["observer1"], log=log, settings=s,
                            features_observer2=tables["observer2"], features_repeat=tables["repeat"],
                            timing=timing, paths=paths)
