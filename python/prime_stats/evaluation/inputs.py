"""The one input contract of the evaluation layer: the survival-outcome type and one validator per input kind.

Every statistic in :mod:`prime_stats.evaluation` checks its inputs here, so the same bad input gets the
same message everywhere (and in R: :data:`MESSAGES` is copied to ``/work/notes/input_messages.md`` for
the R wrappers). A survival outcome may be given as

* two arrays (``time``, ``event``; lifelines' ``durations`` / ``event_observed`` are the same thing),
* two column names with ``data=`` (a pandas DataFrame),
* a scikit-survival structured array (``Surv.from_arrays(event, time)``) passed as ``time`` with
  ``event`` left out, or a :class:`SurvivalOutcome`; ``f(y, risk)`` then reads as ``f(y, None, risk)``
  (:func:`outcome_args`).

The data come last, as the keyword ``data=``; a DataFrame passed as ``time`` (the former data-first
order ``f(df, "time", "event")``) raises a ``TypeError`` that shows the new call.

The checks (each raises ``ValueError``/``KeyError``/``TypeError`` with a :data:`MESSAGES` text):
lengths, missing/non-finite values, 0/1 coding (1/2 codes, as ``survival::Surv``'s ``status``, get the
hint ``status - 1``), negative times, probabilities in [0, 1], a single class, all censored, strictly
increasing time grids and horizons beyond the follow-up.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd

__all__ = ["MESSAGES", "SurvivalOutcome", "as_survival", "as_float_array", "as_binary", "as_probability", "column",
           "as_risk_matrix", "check_times", "check_horizon", "same_length", "positions", "message", "outcome_and",
           "outcome_args"]

# The exact messages (str.format templates). Keep in sync with /work/notes/input_messages.md (R side).
MESSAGES = {
    "not_1d": "{name} must be one-dimensional, got shape {shape}",
    "not_numeric": "{name} must be numeric; {k} non-numeric value(s) ({where})",
    "non_finite": "{name} has {k} missing/non-finite value(s) ({where})",
    "length": "{name} has length {n} but {ref} has length {n_ref}",
    "no_rows": "{name} has no values",
    "negative_time": "{name} has {k} negative time(s) ({where})",
    "event_coding": "{name} must be coded 0 (censored) / 1 (event); {k} invalid value(s) ({where})",
    "event_coding_12": ("{name} must be coded 0 (censored) / 1 (event) but is coded 1/2 "
                        "(survival::Surv's 1 = censored, 2 = event): pass {var} - 1"),
    "binary_coding": "{name} must be coded 0/1; {k} invalid value(s) ({where})",
    "binary_coding_12": "{name} must be coded 0/1 but is coded 1/2: pass {var} - 1",
    "single_class": "{name} has only one class ({value}); {what} needs both 0 and 1",
    "no_events": "{name} has no events (all censored); {what} is undefined",
    "no_censored": "{name} has no censored patients; {what} is undefined",
    "probability": ("{name} must be probabilities in [0, 1]; {k} value(s) outside ({where}){hint}"),
    "times_increasing": "{name} must be strictly increasing; got {values}",
    "times_invalid": "{name} must be finite times >= 0; got {values}",
    "times_empty": "{name} must hold at least {k} time(s)",
    "beyond_followup": ("{name} {value:g} is at or beyond the last follow-up time ({tmax:g}); "
                        "{what} is not estimable there"),
    "column_missing": "column {col!r} not found in data (columns: {columns})",
    "data_needed": "{name} is a column name: pass the DataFrame as data=",
    "structured": ("a structured survival outcome needs a boolean event field and a numeric time field "
                   "(scikit-survival Surv.from_arrays(event, time)); got fields {fields}"),
    "event_twice": "give either a survival outcome (structured array / SurvivalOutcome) or time and event, "
                   "not both",
    "event_missing": "event is missing: give time and event, or one structured survival outcome",
    "data_first": ("time is a pandas DataFrame: the data come last, as a keyword, and time/event name its "
                   "columns: f('time', 'status', ..., data=df) (the data-first order f(df, 'time', 'status') "
                   "is not supported)"),
    "shape": "{name} must have shape (n_patients={n},) or (n_patients, n_times={k}); got {shape}",
}


def message(key: str, **fields) -> str:
    """The catalogue message ``key`` filled in with ``fields``."""
    return MESSAGES[key].format(**fields)


def positions(mask: np.ndarray, ids=None, k: int = 5) -> str:
    """'position 0, 3' (or 'patient_id P1, P4' / 'row a, b' when ``ids`` are given) for the first k hits."""
    idx = np.flatnonzero(mask)[:k]
    more = ", ..." if np.count_nonzero(mask) > k else ""
    if ids is None:
        return f"position {', '.join(map(str, idx))}{more}"
    label, vals = ids
    return f"{label} {', '.join(map(str, np.asarray(vals)[idx]))}{more}"


# ------------------------------------------------------------------------------------------ arrays
def as_float_array(x, name: str, *, allow_nan: bool = False, ids=None) -> np.ndarray:
    """1-d float array; NaN/inf (unless ``allow_nan``) and non-numbers raise naming ``name`` and positions."""
    if isinstance(x, (pd.Series, pd.Index)):
        x = x.to_numpy()
    arr = np.asarray(x)
    if arr.dtype == bool:
        arr = arr.astype(float)
    if arr.dtype.kind not in "biuf":
        coerced = pd.to_numeric(pd.Series(arr.ravel()), errors="coerce").to_numpy(dtype=float)
        bad = np.isnan(coerced) & pd.notna(pd.Series(arr.ravel())).to_numpy()
        if bad.any():
            raise ValueError(message("not_numeric", name=name, k=int(bad.sum()), where=positions(bad, ids)))
        arr = coerced.reshape(arr.shape)
    arr = arr.astype(float)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(message("not_1d", name=name, shape=np.shape(x)))
    bad = ~np.isfinite(arr)
    if bad.any() and not allow_nan:
        raise ValueError(message("non_finite", name=name, k=int(bad.sum()), where=positions(bad, ids)))
    return arr


def same_length(n: int, ref: str = "the outcome", **arrays) -> None:
    """Raise when any of ``arrays`` does not have length ``n``."""
    for name, arr in arrays.items():
        if len(arr) != n:
            raise ValueError(message("length", name=name, n=len(arr), ref=ref, n_ref=n))


def as_binary(y, name: str = "y", what: str = "this statistic", *, ids=None) -> np.ndarray:
    """0/1 integer outcome; raises for NaN, non-binary (1/2 gets the ``y - 1`` hint) or one class."""
    arr = as_float_array(y, name, ids=ids)
    if arr.size == 0:
        raise ValueError(message("no_rows", name=name))
    bad = ~np.isin(arr, (0.0, 1.0))
    if bad.any():
        if np.isin(arr, (1.0, 2.0)).all():
            raise ValueError(message("binary_coding_12", name=name, var=_bare(name)))
        raise ValueError(message("binary_coding", name=name, k=int(bad.sum()), where=positions(bad, ids)))
    if arr.min() == arr.max():
        raise ValueError(message("single_class", name=name, value=int(arr[0]), what=what))
    return arr.astype(int)


def as_probability(p, name: str = "prob", n: int | None = None, *, ids=None) -> np.ndarray:
    """Predicted probabilities in [0, 1] (values outside raise; the hint flags logits / percentages)."""
    arr = as_float_array(p, name, ids=ids)
    if n is not None:
        same_length(n, **{name: arr})
    bad = (arr < 0) | (arr > 1)
    if bad.any():
        hint = ""
        if (arr < 0).any():
            hint = "; negative values look like logits or linear predictors: transform them with expit"
        elif arr.max() <= 100:
            hint = "; values up to 100 look like percentages: divide by 100"
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(message("probability", name=name, k=int(bad.sum()),
                                 where=f"{positions(bad, ids)}; first value {arr[first]!r}", hint=hint))
    return arr


def as_risk_matrix(risk, n: int, times, name: str = "risk", *, probability: bool = False) -> np.ndarray:
    """Risks as an (n, len(times)) matrix (a 1-d array is used at every time), each column checked."""
    r = np.asarray(risk, dtype=float) if not isinstance(risk, pd.DataFrame) else risk.to_numpy(float)
    if r.ndim == 1:
        r = np.repeat(r[:, None], len(times), axis=1)
    if r.shape != (n, len(times)):
        raise ValueError(message("shape", name=name, n=n, k=len(times), shape=r.shape))
    for k in range(r.shape[1]):
        label = f"{name}[:, {k}] (time {times[k]:g})"
        (as_probability if probability else as_float_array)(r[:, k], label)
    return r


# ------------------------------------------------------------------------------------ time grids
def check_times(times, name: str = "times", *, min_size: int = 1, increasing: bool = True) -> np.ndarray:
    """A grid of finite times >= 0 (strictly increasing unless ``increasing=False``)."""
    arr = np.atleast_1d(np.asarray(list(np.atleast_1d(times)), dtype=float))
    if arr.size < min_size:
        raise ValueError(message("times_empty", name=name, k=min_size))
    if (~np.isfinite(arr)).any() or (arr < 0).any():
        raise ValueError(message("times_invalid", name=name, values=arr.tolist()))
    if increasing and np.any(np.diff(arr) <= 0):
        raise ValueError(message("times_increasing", name=name, values=arr.tolist()))
    return arr


def check_horizon(times, time: np.ndarray, name: str = "times", what: str = "this statistic",
                  inclusive: bool = False) -> None:
    """Every horizon must lie before the last follow-up time (``inclusive``: at it is allowed)."""
    tmax = float(np.max(time))
    for v in np.atleast_1d(times):
        if v > tmax or (v == tmax and not inclusive):
            raise ValueError(message("beyond_followup", name=name, value=float(v), tmax=tmax, what=what))


# ------------------------------------------------------------------------------ survival outcome
@dataclass(frozen=True)
class SurvivalOutcome:
    """A validated right-censored survival outcome: float ``time`` >= 0 and int ``event`` in {0, 1}.

    Unpacks as ``time, event = outcome``; ``to_structured()`` gives scikit-survival's array."""

    time: np.ndarray
    event: np.ndarray
    time_name: str = "time"
    event_name: str = "event"

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter((self.time, self.event))

    def __len__(self) -> int:
        return self.time.size

    def __repr__(self) -> str:
        return (f"SurvivalOutcome(n={len(self)}, events={int(self.event.sum())}, "
                f"max follow-up={self.time.max():g})")

    def to_structured(self) -> np.ndarray:
        out = np.empty(len(self), dtype=[("event", bool), ("time", float)])
        out["event"], out["time"] = self.event.astype(bool), self.time
        return out


def _from_data(data, col, name: str, ids):
    if data is None:
        raise ValueError(message("data_needed", name=name))
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if col not in data.columns:
        raise KeyError(message("column_missing", col=col, columns=list(data.columns)[:20]))
    return data[col].to_numpy(), f"column {col!r}"


def _bare(name: str) -> str:
    """'status' from "column 'status'" (the variable a user would subtract 1 from)."""
    m = re.fullmatch(r"column '(.*)'", name)
    return m.group(1) if m else name


def row_ids(data, id_col: str | None):
    """(label, values) used by :func:`positions` to name patients (id column) or rows (index)."""
    if data is None:
        return None
    if id_col is not None and id_col in data.columns:
        return (id_col, data[id_col].to_numpy())
    return ("row", data.index.to_numpy())


def as_survival(time, event=None, *, data: pd.DataFrame | None = None, id_col: str | None = "patient_id",
                require_events: bool = True, require_censored: bool = False,
                what: str = "this statistic") -> SurvivalOutcome:
    """The single survival-outcome validator (module docstring for the accepted forms and checks).

    ``require_events``: all-censored data raise (``no_events``); otherwise they are allowed (e.g. a
    Kaplan-Meier curve that stays at 1). ``require_censored``: data without censoring raise.
    """
    if isinstance(time, SurvivalOutcome):
        if event is not None:
            raise ValueError(MESSAGES["event_twice"])
        t, e, tn, en, ids = time.time, time.event.astype(float), time.time_name, time.event_name, None
    elif isinstance(time, np.ndarray) and time.dtype.names is not None:
        if event is not None:
            raise ValueError(MESSAGES["event_twice"])
        names = time.dtype.names
        ev = [f for f in names if time.dtype[f].kind == "b"]
        tm = [f for f in names if time.dtype[f].kind in "iuf"]
        if len(names) != 2 or len(ev) != 1 or len(tm) != 1:
            raise ValueError(message("structured", fields=list(names)))
        t, e, tn, en, ids = time[tm[0]], time[ev[0]], tm[0], ev[0], None
    else:
        if isinstance(time, pd.DataFrame):
            raise TypeError(MESSAGES["data_first"])
        if event is None:
            raise ValueError(MESSAGES["event_missing"])
        ids = row_ids(data, id_col)
        tn, en = "time", "event"
        if isinstance(time, str):
            time, tn = _from_data(data, time, "time", ids)
        if isinstance(event, str):
            event, en = _from_data(data, event, "event", ids)
        t, e = time, event
    t = as_float_array(t, tn, ids=ids)
    e = as_float_array(np.asarray(e).astype(float) if np.asarray(e).dtype == bool else e, en, ids=ids)
    if t.size == 0:
        raise ValueError(message("no_rows", name=tn))
    same_length(t.size, ref=tn, **{en: e})
    neg = t < 0
    if neg.any():
        raise ValueError(message("negative_time", name=tn, k=int(neg.sum()), where=positions(neg, ids)))
    bad = ~np.isin(e, (0.0, 1.0))
    if bad.any():
        if np.isin(e, (1.0, 2.0)).all():
            raise ValueError(message("event_coding_12", name=en, var=_bare(en)))
        raise ValueError(message("event_coding", name=en, k=int(bad.sum()), where=positions(bad, ids)))
    if require_events and e.sum() == 0:
        raise ValueError(message("no_events", name=en, what=what))
    if require_censored and e.sum() == e.size:
        raise ValueError(message("no_censored", name=en, what=what))
    return SurvivalOutcome(t, e.astype(int), tn, en)


def column(x, data: pd.DataFrame | None, name: str):
    """``x`` itself, or the column ``x`` of ``data`` when ``x`` is a column name."""
    if isinstance(x, str):
        return _from_data(data, x, name, None)[0]
    return x


def _is_outcome(x) -> bool:
    return isinstance(x, SurvivalOutcome) or (isinstance(x, np.ndarray) and x.dtype.names is not None)


def outcome_args(time, event, *others) -> tuple:
    """``(time, event, *others)`` of a call ``f(time, event, a, b, ...)``; when ``time`` is a structured
    outcome, ``f(y, a, b)`` (the last slot left empty) reads as ``f(y, None, a, b)``."""
    if _is_outcome(time) and event is not None and others and others[-1] is None:
        return (time, None, event, *others[:-1])
    return (time, event, *others)


def outcome_and(time, event, other, *, data: pd.DataFrame | None = None, other_name: str = "risk",
                **checks):
    """(SurvivalOutcome, other) for the ``f(time, event, risk)`` convention.

    ``time`` may be a structured outcome, then ``f(y, risk)`` and ``f(y, risk=...)`` both work; column
    names are read from ``data``. ``checks`` go to :func:`as_survival`."""
    time, event, other = outcome_args(time, event, other)
    if other is None:
        raise ValueError(f"{other_name} is missing")
    return as_survival(time, event, data=data, **checks), column(other, data, other_name)
