"""Internal validation by resampling the whole modelling pipeline (Harrell's bootstrap optimism).

* :func:`bootstrap_optimism` - Efron (1983); Harrell, Lee & Mark (1996); the R twin is ``rms::validate``.
  Every bootstrap sample refits a clone of the *whole* estimator or Pipeline (imputation, scaling,
  selection, tuning inside it), or a fresh one from a factory, and

      training  = perf(model_b, bootstrap sample b)      test = perf(model_b, original data)
      optimism  = mean_b (training - test)               corrected = apparent - optimism,

  returned side by side like ``rms::validate`` (plus the .632+ estimate of Efron & Tibshirani 1997 on
  request). Replicates run in parallel (joblib, or a Dask ``client``), can be resumed from a folder of
  per-replicate JSON files keyed by seed and replicate index, show progress (tqdm), and the cost of B
  refits is estimated from the apparent fit before they start.
* :func:`bootstrap_ci` - percentile CIs of any metric of fixed predictions, one call per replicate (the
  per-replicate reference of the vectorised :mod:`.bootstrap`, which it shares resamples with).

The performance measures are the vectorised metrics of :mod:`.bootstrap` (the same numbers as the
evaluation modules' functions): one prediction of model_b on the original rows, evaluated with three
weight vectors - the bootstrap counts (training), ones (test) and the out-of-bag indicator (.632+).

Binary (``predict_proba``): ``"auc"``, ``"dxy"`` (Somers' D = 2 AUC - 1), ``"brier"``, ``"ipa"``,
``"intercept"``, ``"slope"`` (logistic recalibration, ``rms::val.prob``), ``"citl"``, ``"oe"``.
Survival (scikit-survival estimators, y a structured array (event, time)): ``"c_index"`` (Harrell) and
``"uno_c"`` of ``predict``; with ``times``, from ``predict_survival_function``: ``"auc_t"``,
``"brier_t"``, ``"ipa_t"``, ``"oe_t"``, ``"slope_t"`` (one row per time) and ``"ibs"``.
A callable ``fn(fitted_estimator, X, y) -> float`` is evaluated directly on the rows.
"""
from __future__ import annotations

import json
import time as _time
import warnings
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, effective_n_jobs
from sklearn.base import clone
from threadpoolctl import threadpool_limits

from ._survcore import survival_at
from .bootstrap import BinaryWeights, SurvivalWeights, _seed, resample_counts, resample_indices

__all__ = ["bootstrap_optimism", "bootstrap_ci", "BINARY_METRICS", "SURVIVAL_METRICS"]

# name -> (metric key in the vectorised evaluators, transform)
BINARY_METRICS = {"auc": "AUC", "dxy": "AUC", "brier": "Brier", "ipa": "IPA", "intercept": "intercept",
                  "slope": "slope", "citl": "CITL", "oe": "O/E"}
SURVIVAL_METRICS = {"c_index": ("harrell", "C-index", "Harrell"), "uno_c": ("uno", "C-index", "Uno (n/G2)"),
                    "auc_t": ("auc", "AUC(t)", None), "brier_t": ("brier", "Brier", None),
                    "ipa_t": ("ipa", "IPA", None), "oe_t": ("oe", "O/E", None), "slope_t": ("slope", "slope", None),
                    "ibs": ("ibs", "IBS", None)}
_GREATER_IS_BETTER = {"brier": False, "brier_t": False, "ibs": False}


# --------------------------------------------------------------------------------------------- helpers
def _take(a, idx):
    return a.iloc[idx] if isinstance(a, (pd.DataFrame, pd.Series)) else np.asarray(a)[idx]


def _n_rows(X, y) -> int:
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}")
    if n < 2:
        raise ValueError("at least two rows are needed for bootstrapping")
    return n


def _is_survival(y) -> bool:
    return getattr(y, "dtype", None) is not None and y.dtype.names is not None


def _survival_arrays(y):
    names = y.dtype.names
    return np.asarray(y[names[1]], float), np.asarray(y[names[0]]).astype(int)


def _strata_of(y, stratify):
    if stratify is None or stratify is False:
        return None
    if stratify is True:
        return _survival_arrays(y)[1] if _is_survival(y) else np.asarray(y)
    return np.asarray(stratify)


def _new_estimator(estimator):
    """A fresh unfitted model: a clone of an estimator, or a factory's product."""
    if hasattr(estimator, "fit"):
        return clone(estimator)
    if callable(estimator):
        return estimator()
    raise TypeError(f"estimator must be a scikit-learn estimator or a factory, got {type(estimator).__name__}")


class _Metrics:
    """The requested performance measures of one fitted model for weight columns (training/test/oob)."""

    def __init__(self, scoring, y, times):
        self.y, self.times = y, None if times is None else [float(t) for t in times]
        self.survival = _is_survival(y)
        names = [scoring] if isinstance(scoring, str) or callable(scoring) else list(scoring)
        table = SURVIVAL_METRICS if self.survival else BINARY_METRICS
        self.names, self.callables = [], {}
        for s in names:
            if callable(s):
                self.callables[getattr(s, "__name__", "metric")] = s
            elif s not in table:
                other = BINARY_METRICS if self.survival else SURVIVAL_METRICS
                hint = " (a survival metric: y must be a structured array)" if s in other else ""
                raise ValueError(f"unknown metric {s!r}{hint}; built-in metrics for this outcome: {sorted(table)}")
            else:
                if self.survival and table[s][0] not in ("harrell", "uno") and not self.times:
                    raise ValueError(f"metric {s!r} needs times= (horizons for the survival function)")
                self.names.append(s)
        if self.survival:
            self.t, self.e = _survival_arrays(y)

    def rows(self) -> list[tuple[str, float]]:
        """(metric, time) of every output row."""
        out = []
        for s in self.names:
            if self.survival and s.endswith("_t"):
                out += [(s, t) for t in self.times]
            elif s == "ibs":
                out.append((s, self.times[-1]))
            else:
                out.append((s, np.nan))
        return out + [(name, np.nan) for name in self.callables]

    def evaluate(self, fitted, X, W: np.ndarray, rows_of: Sequence[np.ndarray | None]) -> dict:
        """{(metric, time): values per weight column} of ``fitted`` on the original rows ``X``."""
        out = {}
        if self.names and not self.survival:
            p = np.clip(np.asarray(fitted.predict_proba(X))[:, 1], 1e-12, 1 - 1e-12)
            res = {k[0]: v for k, v in BinaryWeights(self.y, p).evaluate(W).items()}
            for s in self.names:
                v = res.get(BINARY_METRICS[s], np.full(W.shape[1], np.nan))
                out[(s, np.nan)] = 2 * v - 1 if s == "dxy" else v
        elif self.names:
            score = np.asarray(fitted.predict(X), float)
            F = np.zeros((len(score), 0))
            if self.times:
                F = 1 - survival_at(fitted.predict_survival_function(X), self.times)
            ev = SurvivalWeights(self.t, self.e, F, score, self.times or [],
                                 metrics=sorted({SURVIVAL_METRICS[s][0] for s in self.names}))
            res = ev.evaluate(W)
            for s in self.names:
                _, metric, method = SURVIVAL_METRICS[s]
                for (m, meth, t, _), v in res.items():
                    if m == metric and (method is None or meth == method):
                        out[(s, np.nan if np.isnan(t) or s in ("c_index", "uno_c") else t)] = v
        for name, fn in self.callables.items():
            vals = []
            for r in rows_of:
                try:
                    vals.append(float(fn(fitted, _take(X, r), _take(self.y, r))) if r is None or len(r) else np.nan)
                except ValueError:
                    vals.append(np.nan)
            out[(name, np.nan)] = np.array(vals)
        return out

    def no_information(self, fitted, X, metric: str) -> float:
        """gamma of Efron & Tibshirani (1997): the performance when predictions and outcomes are independent."""
        if metric in ("auc", "c_index", "uno_c"):
            return 0.5
        if metric == "dxy":
            return 0.0
        if metric == "brier":
            y, p = np.asarray(self.y, float), np.asarray(fitted.predict_proba(X))[:, 1]
            return float(np.mean(y) - 2 * np.mean(y) * np.mean(p) + np.mean(p ** 2))
        return np.nan


def _replicate(estimator, X, y, metrics: _Metrics, b: int, seed: int, strata, want_oob, inner_threads) -> dict:
    """Refit on bootstrap sample b and score on it, on the original rows (and out of bag)."""
    n = len(X)
    idx = resample_indices(n, seed, b, b + 1, strata)[0]
    rec = {"seed": seed, "replicate": b, "n": n, "error": ""}
    t0 = _time.perf_counter()
    try:
        with threadpool_limits(limits=inner_threads):
            fitted = _new_estimator(estimator).fit(_take(X, idx), _take(y, idx))
            rec["fit_seconds"] = _time.perf_counter() - t0
            counts = resample_counts(idx[None, :], n)[:, 0]
            cols = [counts, np.ones(n)] + ([(counts == 0).astype(float)] if want_oob else [])
            rows_of = [idx, None] + ([np.flatnonzero(counts == 0)] if want_oob else [])
            vals = metrics.evaluate(fitted, X, np.column_stack(cols), rows_of)
        for (m, t), v in vals.items():
            key = m if np.isnan(t) else f"{m}@{t:g}"
            rec[f"{key}|training"], rec[f"{key}|test"] = float(v[0]), float(v[1])
            if want_oob:
                rec[f"{key}|oob"] = float(v[2])
    except Exception as exc:  # a failed refit (e.g. one outcome class only) drops the replicate
        rec["error"] = f"{type(exc).__name__}: {exc}"
    return rec


def _chunk(estimator, X, y, metrics, bs, seed, strata, want_oob, inner_threads):
    return [_replicate(estimator, X, y, metrics, b, seed, strata, want_oob, inner_threads) for b in bs]


class _Store:
    """Per-replicate results as JSON files ``<folder>/seed<seed>_rep<b>.json`` (no pickle)."""

    def __init__(self, folder, seed: int, n: int, keys: list[str]):
        self.folder = None if folder is None else Path(folder)
        self.seed, self.n, self.keys = seed, n, keys
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)

    def _path(self, b: int) -> Path:
        return self.folder / f"seed{self.seed}_rep{b:06d}.json"

    def load(self, b: int) -> dict | None:
        if self.folder is None or not self._path(b).exists():
            return None
        rec = json.loads(self._path(b).read_text())
        if rec.get("n") != self.n or rec.get("metrics") != self.keys:
            return None          # written for other data or metrics: recompute
        return rec

    def save(self, rec: dict) -> None:
        if self.folder is not None:
            tmp = self._path(rec["replicate"]).with_suffix(".tmp")
            tmp.write_text(json.dumps(dict(rec, metrics=self.keys), allow_nan=True))
            tmp.replace(self._path(rec["replicate"]))


def bootstrap_optimism(estimator, X, y, scoring: Sequence | str = ("auc", "brier", "slope", "intercept"),
                       B: int = 200, plus632: bool = False, n_jobs: int = 1, random_state=None,
                       stratify=None, inner_threads: int | None = 1, times: Sequence[float] | None = None,
                       folder=None, client=None, progress: bool = False, max_seconds: float | None = None,
                       warn_seconds: float = 600.0) -> pd.DataFrame:
    """Bootstrap optimism-corrected performance of a whole scikit-learn / scikit-survival pipeline.

    Parameters
    ----------
    estimator : unfitted estimator or Pipeline (cloned for every refit), or a factory returning one.
    X, y : training data (y binary 0/1, or a scikit-survival structured array (event, time)).
    scoring : metric names (module docstring) or callables ``fn(fitted, X, y)``.
    B : bootstrap replicates; failed refits are dropped and counted in ``B_failed``.
    plus632 : also the .632+ estimate (Efron & Tibshirani 1997) from the out-of-bag performance.
    n_jobs : joblib workers. client : a ``dask.distributed.Client`` or a scheduler address - replicates
        run on that cluster.
    random_state : seed; replicate b's sample depends only on (seed, b), not on n_jobs or the chunking.
    stratify : None, True (resample within outcome/event classes) or an array of strata.
    inner_threads : BLAS/OpenMP threads per refit (1 avoids oversubscription with many small fits).
    times : horizons for the time-dependent survival metrics.
    folder : persist each replicate as JSON there and reuse the ones already present (resume).
    progress : tqdm progress bar.
    max_seconds, warn_seconds : the apparent fit is timed first; if B refits are estimated to take more
        than ``warn_seconds`` a warning names the cost, above ``max_seconds`` a RuntimeError aborts.

    Returns
    -------
    DataFrame, one row per metric (and time): apparent, training, test, optimism, corrected,
    optimism_se (Monte-Carlo SE), [oob, no_information, estimate_632plus], B, B_failed, method, engine.
    ``attrs["replicates"]`` holds the per-replicate values ({column: list}; ``pd.DataFrame(...)`` of it is
    the replicate table; plain lists so that the result still prints and concatenates), ``attrs["cost"]``
    the cost estimate.
    """
    if B < 1:
        raise ValueError(f"B must be >= 1, got {B}")
    n = _n_rows(X, y)
    if isinstance(client, str):
        from distributed import Client

        with Client(client) as c:
            return bootstrap_optimism(estimator, X, y, scoring, B, plus632, n_jobs, random_state, stratify,
                                      inner_threads, times, folder, c, progress, max_seconds, warn_seconds)
    metrics = _Metrics(scoring, y, times)
    seed = _seed(random_state)
    strata = _strata_of(y, stratify)
    keys = [m if np.isnan(t) else f"{m}@{t:g}" for m, t in metrics.rows()]
    store = _Store(folder, seed, n, keys)

    # apparent performance, and the cost of one refit
    t0 = _time.perf_counter()
    with threadpool_limits(limits=inner_threads):
        fitted = _new_estimator(estimator).fit(X, y)
    fit_s = _time.perf_counter() - t0
    apparent = {(m, t): float(v[0]) for (m, t), v in
                metrics.evaluate(fitted, X, np.ones((n, 1)), [None]).items()}
    done = {b: rec for b in range(B) if (rec := store.load(b)) is not None}
    todo = [b for b in range(B) if b not in done]
    workers = max(1, len(client.nthreads()) if client is not None else effective_n_jobs(n_jobs))
    est_s = fit_s * len(todo) / min(workers, max(len(todo), 1))
    name = type(estimator).__name__ if hasattr(estimator, "fit") else getattr(estimator, "__name__", "factory")
    cost = {"fit_seconds": fit_s, "replicates_to_run": len(todo), "workers": workers, "estimated_seconds": est_s}
    msg = (f"refitting {name} {len(todo)} times is estimated to take {est_s / 60:.1f} min "
           f"(one fit on all {n} rows took {fit_s:.2f} s; {workers} worker(s))")
    if max_seconds is not None and est_s > max_seconds:
        raise RuntimeError(f"{msg}, above max_seconds={max_seconds:g}: reduce B, use more workers or a cheaper model")
    if est_s > warn_seconds:
        warnings.warn(msg, stacklevel=2)

    want_oob = plus632
    records = list(done.values())
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=B, initial=len(done), unit="refit", desc="bootstrap optimism")
    if todo:
        size = max(1, min(8, len(todo) // (4 * workers) or 1))
        chunks = [todo[i:i + size] for i in range(0, len(todo), size)]
        args = (X, y, metrics)
        if client is not None:
            from distributed import as_completed

            futures = [client.submit(_chunk, estimator, *args, c, seed, strata, want_oob, inner_threads,
                                     pure=False) for c in chunks]
            results = (f.result() for f in as_completed(futures))
        else:
            results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                delayed(_chunk)(estimator, *args, c, seed, strata, want_oob, inner_threads) for c in chunks)
        for part in results:
            for rec in part:
                store.save(rec)
                records.append(rec)
            if bar is not None:
                bar.update(len(part))
    if bar is not None:
        bar.close()

    reps = pd.DataFrame(records).sort_values("replicate").reset_index(drop=True)
    ok = reps["error"].fillna("") == ""
    if not ok.any():
        raise RuntimeError(f"every bootstrap refit failed; first error: {reps['error'].iloc[0]}")
    good = reps[ok]
    rows = []
    for (m, t), key in zip(metrics.rows(), keys):
        diff = good[f"{key}|training"] - good[f"{key}|test"]
        opt = float(diff.mean())
        app = apparent[(m, t)]
        row = {"metric": m, "time": t, "apparent": app, "training": float(good[f"{key}|training"].mean()),
               "test": float(good[f"{key}|test"].mean()), "optimism": opt, "corrected": app - opt,
               "optimism_se": float(diff.std(ddof=1) / np.sqrt(diff.count())) if diff.count() > 1 else np.nan,
               "B": int(ok.sum()), "B_failed": int((~ok).sum()),
               "method": "bootstrap optimism correction (Harrell), whole pipeline refitted"}
        if plus632:
            row.update(_plus632(m, app, float(good[f"{key}|oob"].mean()),
                                metrics.no_information(fitted, X, m)))
        rows.append(row)
    out = pd.DataFrame(rows)
    out["engine"] = "python"
    out.attrs["replicates"] = reps.to_dict("list")
    out.attrs["cost"] = cost
    return out


def _plus632(metric: str, app: float, oob: float, gamma: float) -> dict:
    """Efron & Tibshirani (1997) .632+ estimate for a loss or (sign-flipped) gain measure."""
    if not np.isfinite(gamma):
        return {"oob": oob, "no_information": np.nan, "estimate_632plus": np.nan}
    sign = 1.0 if not _GREATER_IS_BETTER.get(metric, True) else -1.0  # work on the loss scale
    L_app, L_oob, L_gam = sign * app, sign * oob, sign * gamma
    L_oob1 = min(L_oob, L_gam)
    R = (L_oob1 - L_app) / (L_gam - L_app) if (L_oob1 > L_app and L_gam > L_app) else 0.0
    w = 0.632 / (1 - 0.368 * R)
    return {"oob": oob, "no_information": gamma, "estimate_632plus": sign * ((1 - w) * L_app + w * L_oob1)}


# --------------------------------------------------------------------------------------------------------
def bootstrap_ci(metric: Callable, *arrays, B: int = 2000, conf_level: float = 0.95, n_jobs: int = 1,
                 random_state=None, stratify=None) -> pd.DataFrame:
    """Percentile bootstrap CIs of ``metric(*arrays)``, one call per replicate (rows resampled together).

    For any statistic; the metrics of :mod:`.bootstrap` are far faster there and use the same
    resamples (:func:`.bootstrap.resample_indices`). ``metric`` returns a float or a dict of floats.
    Replicates where the metric is undefined (NaN, or ValueError) are dropped and counted in
    ``B_failed``. Returns metric, estimate, lower, upper, se (bootstrap SD), B, B_failed, method.
    """
    if not arrays:
        raise ValueError("give at least one array to resample")
    if not 0 < conf_level < 1:
        raise ValueError("conf_level must be in (0, 1)")
    n = len(arrays[0])
    for a in arrays:
        if len(a) != n:
            raise ValueError(f"all arrays must have the same length ({n}); got {len(a)}")
    est = metric(*arrays)
    est = est if isinstance(est, Mapping) else {"metric": est}
    strata = np.asarray(arrays[0]) if stratify is True else (None if stratify is None else np.asarray(stratify))
    seed = _seed(random_state)

    def chunk(lo, hi):
        out = []
        for idx in resample_indices(n, seed, lo, hi, strata):
            try:
                v = metric(*[_take(a, idx) for a in arrays])
            except ValueError:  # e.g. AUC with one class in the resample
                v = np.nan
            out.append(v if isinstance(v, Mapping) else {"metric": v})
        return out

    bounds = np.linspace(0, B, min(B, 4 * max(n_jobs, 1)) + 1).astype(int)
    parts = Parallel(n_jobs=n_jobs)(delayed(chunk)(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo)
    reps = pd.DataFrame([r for part in parts for r in part], columns=list(est))
    alpha = 1 - conf_level
    rows = []
    for name, value in est.items():
        v = reps[name].to_numpy(float)
        v = v[np.isfinite(v)]
        rows.append({"metric": name, "estimate": float(value),
                     "lower": float(np.quantile(v, alpha / 2)) if v.size else np.nan,
                     "upper": float(np.quantile(v, 1 - alpha / 2)) if v.size else np.nan,
                     "se": float(np.std(v, ddof=1)) if v.size > 1 else np.nan,
                     "B": int(v.size), "B_failed": int(B - v.size),
                     "method": f"percentile bootstrap ({conf_level:.0%})", "engine": "python"})
    out = pd.DataFrame(rows)
    out.attrs["replicates"] = reps.to_dict("list")
    return out
