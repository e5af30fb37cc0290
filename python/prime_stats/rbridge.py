"""The only module that talks to R (through rpy2).

R-native statistics live in the R package ``primestats`` (the ``R/`` folder of this repository).
``call_r("ps_r_something", x=..., y=...)`` runs one of its functions in rpy2's embedded R and
returns plain Python objects: an R data.frame becomes a pandas DataFrame, a named list a dict,
an atomic vector a numpy array (length-1 vectors a scalar).

In a source checkout the functions are sourced from ``R/*.R`` (always current); otherwise the
installed package ``primestats`` is used (``R_LIBS``, e.g. the project's ``.Rlib``). When R, rpy2 or a needed R package is
missing, :func:`r_available` is False and callers fall back to their Python implementation.
Set ``PRIMESTATS_NO_R=1`` to force the Python engine.
"""
from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

_LOCK = threading.Lock()
_REPO_R_DIR = Path(__file__).resolve().parents[2] / "R"
_NA_INTEGER = -(2 ** 31)
_CHILD_ENV = ("LD_LIBRARY_PATH", "PYTHON_SESSION_INITIALIZED")  # R's NA_integer_ as rpy2 hands it over


class RUnavailableError(RuntimeError):
    """R, rpy2 or a required R package is not available."""


@functools.lru_cache(maxsize=None)
def _robjects():
    if os.environ.get("PRIMESTATS_NO_R") == "1":
        raise RUnavailableError("R disabled by PRIMESTATS_NO_R=1")
    saved = {k: os.environ.get(k) for k in _CHILD_ENV}
    try:
        import rpy2.robjects as ro  # noqa: WPS433 (the one place rpy2 is imported)
    except Exception as exc:  # ImportError, or R shared library not found
        raise RUnavailableError(f"rpy2/R not usable: {exc}") from exc
    finally:
        # Starting R exports R's LD_LIBRARY_PATH into this process's environment; child processes
        # (worker pools, Dask nannies) would then load the system's libpython extension modules.
        # The running process is unaffected: its loader read LD_LIBRARY_PATH at start-up.
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return ro


@functools.lru_cache(maxsize=None)
def _primestats_env():
    """An R environment holding the primestats functions (installed package or sourced R/)."""
    ro = _robjects()
    r = ro.r
    if (_REPO_R_DIR.parent / "DESCRIPTION").is_file():  # a source checkout: its R/ is current
        env = r("new.env()")
        for f in sorted(_REPO_R_DIR.glob("*.R")):
            r["sys.source"](str(f), envir=env)
        return env
    if bool(r('isTRUE(requireNamespace("primestats", quietly = TRUE))')[0]):
        return r('asNamespace("primestats")')
    raise RUnavailableError("R package primestats is not installed and R/ sources were not found")


@functools.lru_cache(maxsize=None)
def r_has_packages(packages: tuple[str, ...]) -> bool:
    ro = _robjects()
    return all(bool(ro.r(f'isTRUE(requireNamespace("{p}", quietly = TRUE))')[0]) for p in packages)


def r_available(packages: Iterable[str] = ()) -> bool:
    """True when R and every package named in ``packages`` can be used."""
    try:
        with _LOCK:
            _primestats_env()
            return r_has_packages(tuple(packages))
    except RUnavailableError:
        return False


def resolve_engine(engine: str, packages: Iterable[str] = ()) -> str:
    """The engine that computes a statistic: "R" or "python". ``engine`` is "auto" (R when R and
    every package in ``packages`` can be used, else Python), "python" or "R" ("r" is accepted);
    "R" raises a clear error when R or a package is missing."""
    requested = {"auto": "auto", "python": "python", "r": "R"}.get(str(engine).lower())
    if requested is None:
        raise ValueError(f"engine must be 'auto', 'python' or 'R', got {engine!r}")
    if requested == "python":
        return "python"
    ok = r_available(packages)
    if requested == "R" and not ok:
        raise RuntimeError(f"engine='R' requested but R or one of the R packages {list(packages)} "
                           "is not available")
    return "R" if ok else "python"


def python_only(engine: str, statistic: str) -> str:
    """Resolve ``engine`` for a statistic that has no R twin: "auto"/"python" -> "python", "R" raises."""
    e = str(engine).lower()
    if e not in ("auto", "python", "r"):
        raise ValueError(f"engine must be 'auto', 'python' or 'R', got {engine!r}")
    if e == "r":
        raise ValueError(f"{statistic} has no R implementation: use engine='python' or 'auto'")
    return "python"


def r_version() -> str | None:
    try:
        return str(_robjects().r("R.version.string")[0])
    except RUnavailableError:
        return None


def r_package_version(package: str) -> str | None:
    """The installed version of an R package (read from its DESCRIPTION, without loading it)."""
    try:
        v = _robjects().r(f'if (nzchar(system.file(package = "{package}"))) '
                          f'as.character(packageVersion("{package}")) else ""')[0]
    except RUnavailableError:
        return None
    return str(v) or None


def _to_r(value: Any):
    ro = _robjects()
    from rpy2.robjects import pandas2ri, numpy2ri
    from rpy2.robjects.conversion import localconverter

    if value is None:
        return ro.NULL
    if isinstance(value, dict):
        return ro.vectors.ListVector({k: _to_r(v) for k, v in value.items()})
    if isinstance(value, pd.DataFrame):
        with localconverter(ro.default_converter + pandas2ri.converter):
            return ro.conversion.get_conversion().py2rpy(value.reset_index(drop=True))
    if isinstance(value, pd.Series):
        value = value.to_numpy()
    if isinstance(value, (list, tuple)):
        value = np.asarray(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "b":
            return ro.BoolVector(value.tolist())
        if value.dtype.kind in "iu":
            return ro.IntVector(value.tolist())
        if value.dtype.kind == "f":
            return ro.FloatVector(value.tolist())
        return ro.StrVector([str(v) for v in value.tolist()])
    if isinstance(value, (bool, np.bool_)):
        return ro.BoolVector([bool(value)])
    if isinstance(value, (int, np.integer)):
        return ro.IntVector([int(value)])
    if isinstance(value, (float, np.floating)):
        return ro.FloatVector([float(value)])
    if isinstance(value, str):
        return ro.StrVector([value])
    raise TypeError(f"cannot pass {type(value).__name__} to R")


def _from_r(obj: Any):
    ro = _robjects()
    from rpy2.robjects import pandas2ri
    from rpy2.robjects.conversion import localconverter
    from rpy2.rinterface import NULLType

    if isinstance(obj, NULLType):
        return None
    if isinstance(obj, ro.vectors.DataFrame):
        with localconverter(ro.default_converter + pandas2ri.converter):
            df = ro.conversion.get_conversion().rpy2py(obj)
        df = df.reset_index(drop=True).copy()  # own the memory, not a view into R's
        for col in df.columns:
            if df[col].dtype.kind == "i" and (df[col] == _NA_INTEGER).any():
                df[col] = df[col].where(df[col] != _NA_INTEGER).astype(float)
        return df
    if isinstance(obj, ro.vectors.ListVector) or (
        isinstance(obj, ro.vectors.ListSexpVector) if hasattr(ro.vectors, "ListSexpVector") else False
    ):
        names = list(obj.names) if obj.names is not ro.NULL else [str(i) for i in range(len(obj))]
        return {n: _from_r(v) for n, v in zip(names, obj)}
    if isinstance(obj, (ro.vectors.FloatVector, ro.vectors.IntVector, ro.vectors.BoolVector,
                        ro.vectors.StrVector, ro.vectors.FactorVector)):
        if isinstance(obj, ro.vectors.FactorVector):
            arr = np.asarray([obj.levels[i - 1] if i > 0 else None for i in obj])
        else:
            arr = np.asarray(list(obj))
            if isinstance(obj, ro.vectors.FloatVector):
                arr = arr.astype(float)
            elif isinstance(obj, ro.vectors.IntVector) and (arr == _NA_INTEGER).any():
                arr = np.where(arr == _NA_INTEGER, np.nan, arr.astype(float))  # NA_integer_
        names = obj.names
        if names is not ro.NULL and names is not None and len(arr) > 1:
            return pd.Series(arr, index=list(names))
        return arr.item() if arr.size == 1 else arr
    return obj


def call_r(function: str, **kwargs: Any):
    """Call ``primestats::<function>(...)`` in embedded R and convert the result to Python."""
    with _LOCK:
        env = _primestats_env()
        ro = _robjects()
        fn = ro.r["get"](function, envir=env)
        r_args = {k: _to_r(v) for k, v in kwargs.items()}
        try:
            result = fn(**r_args)
        except Exception as exc:  # rpy2.rinterface_lib.embedded.RRuntimeError
            raise RuntimeError(f"R function {function} failed: {exc}") from exc
        return _from_r(result)


def run_r(code: str):
    """Evaluate R code (for validation scripts and tests) and convert the result."""
    with _LOCK:
        return _from_r(_robjects().r(code))


# ------------------------------------------------------------------------------------------------
# Figures (R/plots.R): ggplot2 / survminer builders drawn to PNG inside R (owner: report/figures.py)
# ------------------------------------------------------------------------------------------------
def draw_r_figure(builder: str, path, width: float, height: float, dpi: int, **tables: Any) -> dict:
    """Build a figure with ``primestats::<builder>(...)`` from tables (DataFrames, vectors, strings)
    and write it with ``ps_plot_save`` to a PNG of ``width`` x ``height`` inches at ``dpi``. The
    ggplot object stays in R. Returns ``{"file": str, "risk_table": DataFrame | None}``; the risk
    table (ggsurvplot only) holds the numbers at risk printed under the plot: group, time, n_risk."""
    with _LOCK:
        env = _primestats_env()
        ro = _robjects()
        build = ro.r["get"](builder, envir=env)
        save = ro.r["get"]("ps_plot_save", envir=env)
        r_args = {k: _to_r(v) for k, v in tables.items()}
        try:
            plot = build(**r_args)
            res = save(plot, file=str(path), width=float(width), height=float(height), dpi=int(dpi))
        except Exception as exc:  # rpy2.rinterface_lib.embedded.RRuntimeError
            raise RuntimeError(f"R figure {builder} failed: {exc}") from exc
        return _from_r(res)
