"""Writing and reading fitted objects and results without unrestricted pickle.

* Fitted estimators go to skops files. They are read back only when every type they hold comes
  from a trusted module (prime_stats, scikit-learn, scikit-survival, numpy, scipy, pandas, builtins,
  collections).
* Results (nested dicts, lists and prime_stats dataclasses of DataFrames, arrays and scalars) go
  to a folder: ``data.json`` describes the structure, DataFrames and Indexes are Parquet files,
  arrays ``.npy`` files written and read with ``allow_pickle=False``. Only prime_stats dataclasses
  are rebuilt from their names.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["TRUSTED_MODULES", "UntrustedFileError", "dump_skops", "load_skops", "dump_data", "load_data",
           "TableAttr"]

TRUSTED_MODULES = ("prime_stats.", "sklearn.", "sksurv.", "numpy.", "scipy.", "builtins.",
                   "collections.", "pandas.")


class UntrustedFileError(ValueError):
    """A file holds types (or a structure) that prime-stats does not load."""


def dump_skops(obj, path: str | Path) -> None:
    import skops.io as sio

    sio.dump(obj, path, compression=zipfile.ZIP_DEFLATED, compresslevel=1)


def load_skops(path: str | Path):
    """Load a skops file whose types all come from :data:`TRUSTED_MODULES`."""
    import skops.io as sio

    untrusted = sio.get_untrusted_types(file=path)
    unknown = [t for t in untrusted if not t.startswith(TRUSTED_MODULES)]
    if unknown:
        raise UntrustedFileError(f"{path}: refusing to load types outside scikit-learn/scikit-survival/"
                                 f"prime_stats: {unknown[:5]}")
    return sio.load(path, trusted=untrusted)


def dump_data(obj: Any, folder: str | Path) -> None:
    """Write ``obj`` (see the module docstring for what it may hold) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: list[str] = []

    def enc(x):
        if isinstance(x, pd.DataFrame):
            if not all(isinstance(c, str) for c in x.columns):
                raise TypeError("DataFrame columns must be strings to be stored")
            name = f"{len(files)}.parquet"
            x.to_parquet(folder / name)
            files.append(name)
            return {"frame": name}
        if isinstance(x, pd.Index):
            name = f"{len(files)}.parquet"
            pd.DataFrame(index=x).to_parquet(folder / name)
            files.append(name)
            return {"index": name}
        if isinstance(x, np.ndarray):
            name = f"{len(files)}.npy"
            np.save(folder / name, x, allow_pickle=False)
            files.append(name)
            return {"array": name}
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            cls = type(x)
            return {"dataclass": f"{cls.__module__}:{cls.__qualname__}",
                    "fields": {f.name: enc(getattr(x, f.name)) for f in dataclasses.fields(x)}}
        if isinstance(x, dict):
            if not all(isinstance(k, str) for k in x):
                raise TypeError("dict keys must be strings to be stored")
            return {"dict": {k: enc(v) for k, v in x.items()}}
        if isinstance(x, (list, tuple)):
            return {"list": [enc(v) for v in x]}
        if isinstance(x, np.generic):
            return {"value": x.item()}
        if x is None or isinstance(x, (str, bool, int, float)):
            return {"value": x}
        raise TypeError(f"cannot store a {type(x).__name__}")

    (folder / "data.json").write_text(json.dumps(enc(obj)))


def load_data(folder: str | Path) -> Any:
    """Read what :func:`dump_data` wrote."""
    folder = Path(folder)

    def file(name):
        p = folder / name
        if p.parent != folder:
            raise UntrustedFileError(f"{folder}: file name {name!r} points outside the folder")
        return p

    def dec(node):
        if "dataclass" in node:
            module, _, qualname = node["dataclass"].partition(":")
            if not module.startswith("prime_stats."):
                raise UntrustedFileError(f"{folder}: refusing to rebuild {node['dataclass']}, "
                                         "not a prime_stats class")
            cls = importlib.import_module(module)
            for part in qualname.split("."):
                cls = getattr(cls, part)
            return cls(**{k: dec(f) for k, f in node["fields"].items()})
        (kind, v), = node.items()
        if kind == "frame":
            return pd.read_parquet(file(v))
        if kind == "index":
            return pd.read_parquet(file(v)).index
        if kind == "array":
            return np.load(file(v), allow_pickle=False)
        if kind == "dict":
            return {k: dec(x) for k, x in v.items()}
        if kind == "list":
            return [dec(x) for x in v]
        if kind == "value":
            return v
        raise UntrustedFileError(f"{folder}: unknown entry {kind!r} in data.json")

    return dec(json.loads((folder / "data.json").read_text()))


def _plain_column(values: pd.Index | pd.Series):
    """A column as a numpy array (numeric, boolean or all-text columns: one array per column in a
    skops file) or, for mixed columns such as text with missing values, a plain list."""
    arr = values.to_numpy(copy=True)
    if arr.dtype != object:
        return arr
    if all(isinstance(v, str) for v in arr):
        return arr.astype(str)
    return arr.tolist()


class TableAttr:
    """A fitted attribute that reads as a pandas DataFrame (or Series) but is stored as numpy arrays
    and plain lists, so fitted models stay serialisable with skops (which refuses pandas internals)
    and a report of thousands of features is a few arrays, not thousands of skops nodes."""

    def __init__(self, series=False):
        self.series = series

    def __set_name__(self, owner, name):
        self.name, self.key = name, f"_{name}store"

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        try:
            st = obj.__dict__[self.key]
        except KeyError:
            raise AttributeError(self.name) from None
        df = pd.DataFrame(dict(zip(st["columns"], st["data"])), columns=st["columns"],
                          index=pd.Index(st["index"], name=st["index_name"]))
        return df.iloc[:, 0].rename(st["columns"][0]) if self.series else df

    def __set__(self, obj, value):
        df = value.to_frame() if isinstance(value, pd.Series) else value
        obj.__dict__[self.key] = {"columns": [str(c) for c in df.columns],
                                  "data": [_plain_column(df[c]) for c in df.columns],
                                  "index": _plain_column(df.index), "index_name": df.index.name}
