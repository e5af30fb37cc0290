"""The Cohort: clinical table, outcomes, centre, image manifest and expression, with schema checks.

Every check raises :class:`CohortError` with a message naming the column, patient or file at fault.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

PHASES = ("AP", "PVP")
MANIFEST_COLUMNS = ("patient_id", "phase", "image", "mask")


class CohortError(ValueError):
    """Invalid cohort input; the message names the column, patient or file."""


@dataclass(frozen=True)
class CohortColumns:
    """Names of the identifying and outcome columns in the clinical table."""
    id: str = "patient_id"
    centre: str = "centre"
    response: str | None = "response_3m"      # None: a survival-only study
    time: str | None = "os_days"              # None (with event None): a response-only study
    event: str | None = "os_event"
    subsequent_therapy: str | None = "subsequent_therapy"

    def __post_init__(self):
        if (self.time is None) != (self.event is None):
            raise CohortError("columns.time and columns.event must both name columns, or both be null "
                              f"(a response-only study); got time={self.time!r}, event={self.event!r}")
        if self.response is None and self.time is None:
            raise CohortError("columns.response and columns.time are both null: a study needs an endpoint")

    @property
    def has_response(self) -> bool:
        return self.response is not None

    @property
    def has_survival(self) -> bool:
        return self.time is not None

    @property
    def outcomes(self) -> tuple[str, ...]:
        return tuple(c for c in (self.response, self.time, self.event) if c is not None)

    @property
    def reserved(self) -> tuple[str, ...]:
        cols = (self.id, self.centre, *self.outcomes)
        return cols + ((self.subsequent_therapy,) if self.subsequent_therapy else ())


def read_table(path: str | Path) -> pd.DataFrame:
    """Read CSV/TSV (optionally gzipped) or Parquet."""
    p = Path(path)
    if not p.is_file():
        raise CohortError(f"file not found: {p}")
    name = p.name.lower()
    if name.endswith(".parquet") or name.endswith(".pq"):
        return pd.read_parquet(p)
    sep = "\t" if (".tsv" in name or ".txt" in name) else ","
    return pd.read_csv(p, sep=sep)


def _patients(ids: Iterable, limit: int = 5) -> str:
    ids = list(ids)
    more = f" (+{len(ids) - limit} more)" if len(ids) > limit else ""
    return ", ".join(map(str, ids[:limit])) + more


@dataclass
class Cohort:
    """A validated PRIME cohort.

    ``clinical`` is indexed by patient ID and holds the centre, the outcomes and every candidate
    predictor. ``manifest`` (optional) has one row per patient and phase with absolute paths to
    image, mask and optional second-observer mask. ``expression`` (optional) is genes x samples.
    """
    clinical: pd.DataFrame
    columns: CohortColumns = field(default_factory=CohortColumns)
    manifest: pd.DataFrame | None = None
    expression: pd.DataFrame | None = None
    require_outcomes: bool = True
    source: dict = field(default_factory=dict)

    def __post_init__(self):
        self.clinical = validate_clinical(self.clinical, self.columns, self.require_outcomes)
        if self.manifest is not None:
            self.manifest = validate_manifest(self.manifest, self.clinical.index)
        if self.expression is not None:
            self.expression = validate_expression(self.expression, self.clinical.index)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_files(cls, clinical: str | Path, manifest: str | Path | None = None,
                   expression: str | Path | None = None, columns: CohortColumns | None = None,
                   require_outcomes: bool = True, check_files: bool = True) -> "Cohort":
        """Read a cohort from a clinical CSV/Parquet, an optional manifest CSV (paths relative
        to the manifest's folder) and an optional genes x samples expression table."""
        columns = columns or CohortColumns()
        table = read_table(clinical)
        man = None
        if manifest is not None:
            man = read_table(manifest)
            man = resolve_manifest_paths(man, Path(manifest).parent, check_files=check_files,
                                         name=str(manifest))
        expr = None
        if expression is not None:
            expr = read_table(expression)
            expr = expr.set_index(expr.columns[0])
        return cls(table, columns, man, expr, require_outcomes,
                   source={"clinical": str(clinical), "manifest": str(manifest) if manifest else None,
                           "expression": str(expression) if expression else None})

    # ------------------------------------------------------------------ accessors
    @property
    def ids(self) -> pd.Index:
        return self.clinical.index

    @property
    def centre(self) -> pd.Series:
        return self.clinical[self.columns.centre]

    @property
    def response(self) -> pd.Series:
        return self.clinical[self.columns.response]

    def survival(self, ids: Iterable | None = None) -> np.ndarray:
        """Survival outcome as a scikit-survival structured array (event, time)."""
        from sksurv.util import Surv

        sub = self.clinical if ids is None else self.clinical.loc[list(ids)]
        return Surv.from_arrays(sub[self.columns.event].astype(bool).to_numpy(),
                                sub[self.columns.time].astype(float).to_numpy(),
                                name_event="event", name_time="time")

    def predictors(self) -> pd.DataFrame:
        """Candidate predictors: every clinical column except ID, centre and outcomes."""
        return self.clinical.drop(columns=[c for c in self.columns.reserved if c in self.clinical])

    def subset(self, ids: Iterable) -> "Cohort":
        ids = list(ids)
        unknown = [i for i in ids if i not in self.clinical.index]
        if unknown:
            raise CohortError(f"unknown patients: {_patients(unknown)}")
        man = None if self.manifest is None else self.manifest[self.manifest["patient_id"].isin(ids)]
        expr = None
        if self.expression is not None:
            expr = self.expression[[c for c in self.expression.columns if c in set(ids)]]
        return Cohort(self.clinical.loc[ids].reset_index(), self.columns, man, expr,
                      self.require_outcomes, self.source)

    def __len__(self) -> int:
        return len(self.clinical)

    def __repr__(self) -> str:
        cen = self.centre.value_counts().sort_index().to_dict() if self.columns.centre in self.clinical else {}
        parts = [f"Cohort: {len(self)} patients", f"centres {cen}"]
        if self.columns.response in self.clinical:
            parts.append(f"response rate {self.response.mean():.1%}")
        if self.columns.event in self.clinical:
            parts.append(f"{int(self.clinical[self.columns.event].sum())} deaths")
        if self.manifest is not None:
            parts.append(f"{len(self.manifest)} images")
        if self.expression is not None:
            parts.append(f"expression {self.expression.shape[0]} genes x {self.expression.shape[1]} samples")
        return "<" + ", ".join(parts) + ">"


def validate_clinical(df: pd.DataFrame, cols: CohortColumns, require_outcomes: bool = True) -> pd.DataFrame:
    """Check IDs and outcomes; return the table indexed by patient ID."""
    if not isinstance(df, pd.DataFrame):
        raise CohortError("clinical table must be a pandas DataFrame")
    df = df.copy()
    if df.index.name == cols.id and cols.id not in df.columns:
        df = df.reset_index()
    if cols.id not in df.columns:
        raise CohortError(f"clinical table: ID column {cols.id!r} is missing "
                          f"(columns: {_patients(df.columns, 8)})")
    ids = df[cols.id]
    if ids.isna().any():
        rows = (np.flatnonzero(ids.isna()) + 2).tolist()  # +2: header line and 1-based rows
        raise CohortError(f"clinical table: column {cols.id!r} is empty on file rows {rows[:10]}")
    df[cols.id] = ids.astype(str).str.strip()
    dup = df[cols.id][df[cols.id].duplicated()].unique()
    if len(dup):
        raise CohortError(f"clinical table: duplicate patient IDs in {cols.id!r}: {_patients(dup)}")
    if cols.centre not in df.columns:
        raise CohortError(f"clinical table: centre column {cols.centre!r} is missing")
    df[cols.centre] = df[cols.centre].astype(str)
    df = df.set_index(cols.id)
    needed = cols.outcomes if require_outcomes else ()
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise CohortError(f"clinical table: outcome column(s) {missing} missing")
    if cols.has_response and cols.response in df.columns:
        _check_binary(df, cols.response, allow_missing=not require_outcomes)
    if cols.has_survival and cols.event in df.columns:
        _check_binary(df, cols.event, allow_missing=not require_outcomes)
    if cols.has_survival and cols.time in df.columns:
        t = pd.to_numeric(df[cols.time], errors="coerce")
        nonnum = df.index[t.isna() & df[cols.time].notna()]
        if len(nonnum):
            raise CohortError(f"{cols.time}: non-numeric survival time for patients {_patients(nonnum)}")
        if require_outcomes and t.isna().any():
            raise CohortError(f"{cols.time}: survival time missing for patients {_patients(df.index[t.isna()])}")
        bad = df.index[t <= 0]
        if len(bad):
            raise CohortError(f"{cols.time}: survival time must be > 0; zero or negative for patients "
                              f"{_patients(bad)}")
        df[cols.time] = t.astype(float)
    if cols.subsequent_therapy and cols.subsequent_therapy in df.columns:
        _check_binary(df, cols.subsequent_therapy, allow_missing=True)
    return df


def _check_binary(df: pd.DataFrame, col: str, allow_missing: bool):
    v = pd.to_numeric(df[col], errors="coerce")
    bad = df.index[(v.notna() & ~v.isin([0, 1])) | (v.isna() & df[col].notna())]
    if len(bad):
        examples = df.loc[bad[:3], col].tolist()
        raise CohortError(f"{col}: must be 0/1; got {examples} for patients {_patients(bad)}")
    if not allow_missing and v.isna().any():
        raise CohortError(f"{col}: missing for patients {_patients(df.index[v.isna()])}")
    df[col] = v.astype("Int64") if v.isna().any() else v.astype(int)


SEGMENTATION_COLUMNS = ("mask", "mask_observer2", "mask_repeat")


def check_manifest(manifest: pd.DataFrame, name: str = "manifest") -> pd.DataFrame:
    """The one manifest schema check: required columns, no empty cells, phases AP/PVP (case and
    spaces ignored), one row per patient and phase. ``name`` (the file) starts every message."""
    man = manifest.copy()
    missing = [c for c in MANIFEST_COLUMNS if c not in man.columns]
    if missing:
        raise CohortError(f"{name} lacks column(s) {missing}; required: {list(MANIFEST_COLUMNS)}")
    for col in MANIFEST_COLUMNS:
        empty = man[col].isna() | (man[col].astype(str).str.strip() == "")
        if empty.any():
            raise CohortError(f"{name}: column {col!r} is empty in row(s) {list(np.flatnonzero(empty) + 1)}")
    man["patient_id"] = man["patient_id"].astype(str).str.strip()
    man["phase"] = man["phase"].astype(str).str.strip().str.upper()
    bad = ~man["phase"].isin(PHASES)
    if bad.any():
        r = man.loc[bad].iloc[0]
        raise CohortError(f"{name}: unknown phase {r['phase']!r} for patient {r['patient_id']} "
                          f"(allowed: {', '.join(PHASES)}; {int(bad.sum())} bad row(s))")
    dup = man.duplicated(["patient_id", "phase"], keep=False)
    if dup.any():
        raise CohortError(f"{name}: more than one row for patient/phase "
                          f"{_patients(sorted(set(man.loc[dup, 'patient_id'] + '/' + man.loc[dup, 'phase'])))}")
    return man.reset_index(drop=True)


def resolve_manifest_paths(manifest: pd.DataFrame, base: Path, check_files: bool = True,
                           name: str = "manifest") -> pd.DataFrame:
    """:func:`check_manifest`, then image/mask paths made absolute (relative ones are relative to
    ``base``, the manifest's folder) and, with ``check_files``, checked to exist."""
    man = check_manifest(manifest, name)
    path_cols = [c for c in ("image", *SEGMENTATION_COLUMNS) if c in man.columns]

    def absolute(p):
        if pd.isna(p) or str(p).strip() == "":
            return None
        q = Path(str(p)).expanduser()
        return str(q if q.is_absolute() else (base / q).resolve())

    for c in path_cols:
        man[c] = man[c].map(absolute)
    if check_files:
        for c in path_cols:
            for pid, phase, p in zip(man["patient_id"], man["phase"], man[c]):
                if p is not None and not Path(p).exists():
                    raise CohortError(f"{name}: patient {pid} phase {phase}: {c} file not found: {p}")
    return man


def validate_manifest(manifest: pd.DataFrame, known_ids: pd.Index) -> pd.DataFrame:
    """:func:`check_manifest` plus: every patient is in the clinical table."""
    man = check_manifest(manifest)
    unknown = sorted(set(man["patient_id"]) - set(known_ids))
    if unknown:
        raise CohortError(f"manifest: rows for patients not in the clinical table: {_patients(unknown)}")
    return man


def validate_expression(expr: pd.DataFrame, known_ids: pd.Index) -> pd.DataFrame:
    """Genes x samples; every sample must be a known patient (then :func:`check_expression`)."""
    expr = expr.copy()
    expr.columns = expr.columns.astype(str)
    unknown = [c for c in expr.columns if c not in set(known_ids)]
    if unknown:
        raise CohortError(f"expression: samples not in the clinical table: {_patients(unknown)}")
    try:
        return check_expression(expr, min_samples=1)
    except (TypeError, ValueError) as exc:
        raise CohortError(str(exc)) from exc


def check_expression(expr: pd.DataFrame, *, name: str = "expression", min_samples: int = 2) -> pd.DataFrame:
    """Validate a genes x samples matrix: unique gene and sample names, numeric, finite (the one
    expression validator, used by the cohort and by every omics analysis)."""
    if not isinstance(expr, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame (genes in rows, samples in columns)")
    if expr.shape[0] < 2 or expr.shape[1] < min_samples:
        raise ValueError(f"{name} has shape {expr.shape}; need genes in rows and >= {min_samples} samples in columns")
    dup = expr.index[expr.index.duplicated()].unique()
    if len(dup):
        raise ValueError(f"{name}: {len(dup)} duplicated gene names, e.g. {list(dup[:5])}; "
                         "collapse duplicates (e.g. keep the most variable probe) first")
    dup = expr.columns[expr.columns.duplicated()].unique()
    if len(dup):
        raise ValueError(f"{name}: duplicated sample names {list(dup[:5])}")
    bad = [c for c in expr.columns if not pd.api.types.is_numeric_dtype(expr[c])]
    if bad:
        raise ValueError(f"{name}: sample column(s) {bad[:5]} are not numeric")
    values = expr.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        i, j = np.argwhere(~np.isfinite(values))[0]
        n_bad = int((~np.isfinite(values)).sum())
        raise ValueError(f"{name}: {n_bad} missing/infinite values, first at gene {expr.index[i]!r}, "
                         f"sample {expr.columns[j]!r}; impute or drop them first")
    out = expr.astype(float)
    out.index = out.index.astype(str)
    out.columns = out.columns.astype(str)
    return out
