"""Content-addressed cache of a study's expensive, deterministic stages.

A stage result (fitted models, the nested-CV table, cross-validated SHAP) is stored in the folder
``<output>/cache/<stage>-<key>``, where ``key`` is a hash of everything the result depends
on: the stage name, the inputs given by the caller (training features and outcomes, the study
configuration), the version and source code of prime-stats and the versions of the numerical
libraries. A rerun on the same data and configuration therefore reuses the result, and any change
to data, configuration, code or library versions computes it afresh (the idea of R's ``targets``
and of ``joblib.Memory``).

Nothing is pickled: a stage names a :class:`Codec`, by default :data:`DATA` (tables and arrays
as Parquet and ``.npy``, :func:`prime_stats.persist.dump_data`); fitted models use skops with
trusted types (see :mod:`prime_stats.study.fit`).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.metadata as md
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import joblib

from .. import __version__, persist

__all__ = ["Codec", "DATA", "StageCache", "library_versions", "source_hash"]

# the libraries whose versions go into every cache key and into provenance.json
LIBRARIES = ("numpy", "pandas", "scipy", "scikit-learn", "scikit-survival", "lifelines", "statsmodels",
             "pyradiomics-bhklab", "shap", "gseapy", "SimpleITK", "skops", "joblib", "rpy2")


@functools.lru_cache(maxsize=1)
def source_hash() -> str:
    """SHA-1 of prime-stats' own Python sources: code changed without a version bump (a
    development checkout, a patched install) never reuses results of the old code."""
    h = hashlib.sha1()
    root = Path(__file__).resolve().parents[1]
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def library_versions() -> dict[str, str | None]:
    """prime-stats (version and source hash) and the numerical libraries whose versions are part
    of every cache key."""
    out: dict[str, str | None] = {"prime-stats": __version__, "prime-stats sources": source_hash()}
    for pkg in LIBRARIES:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


@dataclass(frozen=True)
class Codec:
    """How a stage result is written into, and read back from, its cache folder."""
    save: Callable[[Any, Path], None]
    load: Callable[[Path], Any]


DATA = Codec(persist.dump_data, persist.load_data)


class StageCache:
    """``cache(stage, inputs, fn, *args, codec=DATA)`` returns ``fn(*args)``, computed once per
    distinct (stage, inputs, code and library versions). ``enabled=False`` always computes and
    stores nothing. ``log`` (a callable taking a message) is told when a result is reused."""

    def __init__(self, folder: str | Path, enabled: bool = True, log: Callable[[str], Any] | None = None):
        self.folder = Path(folder)
        self.enabled = enabled
        self.log = log or (lambda msg: None)
        self.hits: list[str] = []
        self.misses: list[str] = []

    def key(self, stage: str, inputs: Any) -> str:
        return joblib.hash((stage, library_versions(), inputs), hash_name="sha1")

    def path(self, stage: str, inputs: Any) -> Path:
        """The folder of the stage's entry (it exists once the result is stored)."""
        return self.folder / f"{stage}-{self.key(stage, inputs)}"

    def __call__(self, stage: str, inputs: Any, fn: Callable, *args, codec: Codec = DATA, **kwargs):
        if not self.enabled:
            return fn(*args, **kwargs)
        path = self.path(stage, inputs)
        if path.is_dir():
            try:
                result = codec.load(path)
            except Exception as exc:  # a truncated or foreign entry: recompute and replace it
                self.log(f"{stage}: cache entry {path.name} unreadable ({type(exc).__name__}); recomputing")
            else:
                self.hits.append(stage)
                self.log(f"{stage}: reused from the cache ({path.parent.name}/{path.name}; same data, "
                         "config, code and library versions; --no-cache recomputes)")
                return result
        result = fn(*args, **kwargs)
        self.misses.append(stage)
        tmp = path.with_name(path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        codec.save(result, tmp)
        shutil.rmtree(path, ignore_errors=True)
        tmp.rename(path)        # an interrupted run never leaves a half-written entry
        return result
