"""Internal validation by resampling the whole modelling pipeline.

* :func:`bootstrap_optimism` - Harrell's bootstrap optimism correction (Efron 1983; Harrell, Lee &
  Mark 1996; ``rms::validate``): every bootstrap sample refits a clone of the *whole* estimator or
  Pipeline (imputation, scaling, selection, tuning inside it), and

      optimism   = mean_b [ perf(model_b, bootstrap sample b) - perf(model_b, original data) ]
      corrected  = apparent - optimism.

  Optionally the .632+ estimate (Efron & Tibshirani 1997) from the out-of-bag performance and the
  no-information performance.
* :func:`bootstrap_ci` - percentile bootstrap confidence intervals of any metric of fixed
  predictions (rows resampled with replacement, optionally within strata).

Both are reproducible from ``random_state`` whatever ``n_jobs`` is: all bootstrap indices are drawn
up front from one generator and the replicates are then run in parallel with joblib.

Built-in scorers (``scorer(estimator, X, y) -> float``): ``"auc"``, ``"dxy"`` (Somers' D = 2 AUC - 1),
``"brier"``, ``"slope"`` and ``"intercept"`` (logistic recalibration y ~ a + b logit(p), the
``Intercept``/``Slope`` rows of ``rms::validate``), ``"citl"`` (calibration-in-the-large,
y ~ offset(logit p)) for binary classifiers; ``"c_index"`` (Harrell's C of ``predict``) for
scikit-survival estimators. Any callable with the same signature can be passed as well.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from scipy import stats
from threadpoolctl import threadpool_limits

__all__ = ["Scorer", "SCORERS", "get_scorer", "bootstrap_optimism", "bootstrap_ci",
           "logistic_calibration", "auc_mann_whitney"]


# --------------------------------------------------------------------------------------------
# scorers
# --------------------------------------------------------------------------------------------
def _proba(estimator, X) -> np.ndarray:
    p = estimator.predict_proba(X)
    return p[:, 1] if p.ndim == 2 else p


def _binary(y) -> np.ndarray:
    y = np.asarray(y)
    if not np.isin(y, (0, 1)).all():
        raise ValueError("binary metrics need y coded 0/1")
    return y.astype(float)


def logistic_calibration(y, p) -> tuple[float, float, float]:
    """Logistic recalibration of predicted probabilities ``p``.

    Returns (intercept, slope) of y ~ a + b * logit(p) and the calibration-in-the-large a' of
    y ~ offset(logit(p)) (rms::val.prob's ``Intercept``/``Slope``; Cox 1958), by Newton-Raphson.
    """
    y = _binary(y)
    p = np.clip(np.asarray(p, float), 1e-12, 1 - 1e-12)
    lp = np.log(p / (1 - p))
    Z = np.column_stack([np.ones_like(lp), lp])
    beta = np.zeros(2)
    for _ in range(100):
        mu = 1 / (1 + np.exp(-(Z @ beta)))
        W = mu * (1 - mu)
        step = np.linalg.solve((Z * W[:, None]).T @ Z, Z.T @ (y - mu))
        beta += step
        if np.max(np.abs(step)) < 1e-10:
            break
    a = 0.0
    for _ in range(100):
        mu = 1 / (1 + np.exp(-(lp + a)))
        step = np.sum(y - mu) / np.sum(mu * (1 - mu))
        a += step
        if abs(step) < 1e-12:
            break
    return float(beta[0]), float(beta[1]), float(a)


@dataclass(frozen=True)
class Scorer:
    """A performance measure ``fn(estimator, X, y)``.

    ``greater_is_better`` orients the .632+ estimate; ``no_information(estimator, X, y)`` gives
    the performance expected when predictions and outcomes are independent (gamma in Efron &
    Tibshirani 1997) or is None when the measure has none (calibration slope/intercept).
    """

    name: str
    fn: Callable
    greater_is_better: bool
    no_information: Callable | None = None

    def __call__(self, estimator, X, y) -> float:
        return float(self.fn(estimator, X, y))


def auc_mann_whitney(y, p) -> float:
    """AUC as the Mann-Whitney statistic with mid-ranks for ties (equals roc_auc_score); NaN if one class."""
    y = _binary(y)
    n1 = y.sum()
    n0 = y.size - n1
    if n1 == 0 or n0 == 0:
        return np.nan
    r = stats.rankdata(p)
    return float((r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _auc(est, X, y):
    return auc_mann_whitney(y, _proba(est, X))


def _brier_noinfo(est, X, y):
    y, p = _binary(y), _proba(est, X)
    # (1/n^2) sum_i sum_j (y_i - p_j)^2 in closed form
    return float(np.mean(y) - 2 * np.mean(y) * np.mean(p) + np.mean(p ** 2))


def _c_index(est, X, y):
    from sksurv.metrics import concordance_index_censored

    names = y.dtype.names
    return concordance_index_censored(y[names[0]].astype(bool), y[names[1]], est.predict(X))[0]


SCORERS: dict[str, Scorer] = {
    "auc": Scorer("auc", _auc, True, lambda e, X, y: 0.5),
    "dxy": Scorer("dxy", lambda e, X, y: 2 * _auc(e, X, y) - 1, True, lambda e, X, y: 0.0),
    "brier": Scorer("brier", lambda e, X, y: np.mean((_proba(e, X) - _binary(y)) ** 2), False,
                    _brier_noinfo),
    "slope": Scorer("slope", lambda e, X, y: logistic_calibration(y, _proba(e, X))[1], True),
    "intercept": Scorer("intercept", lambda e, X, y: logistic_calibration(y, _proba(e, X))[0], True),
    "citl": Scorer("citl", lambda e, X, y: logistic_calibration(y, _proba(e, X))[2], True),
    "c_index": Scorer("c_index", _c_index, True, lambda e, X, y: 0.5),
}


def get_scorer(scoring) -> Scorer:
    """A :class:`Scorer` from a built-in name, a Scorer, or a callable ``fn(estimator, X, y)``."""
    if isinstance(scoring, Scorer):
        return scoring
    if isinstance(scoring, str):
        if scoring not in SCORERS:
            raise ValueError(f"unknown metric {scoring!r}; built-in metrics: {sorted(SCORERS)}")
        return SCORERS[scoring]
    if callable(scoring):
        return Scorer(getattr(scoring, "__name__", "metric"), scoring, True)
    raise TypeError(f"metric must be a name, a Scorer or a callable, got {type(scoring).__name__}")


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _take(a, idx):
    return a.iloc[idx] if isinstance(a, (pd.DataFrame, pd.Series)) else np.asarray(a)[idx]


def _n_rows(X, y) -> int:
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}")
    if n < 2:
        raise ValueError("at least two rows are needed for bootstrapping")
    return n


def _strata_of(y, stratify):
    if stratify is None or stratify is False:
        return None
    if stratify is True:
        if getattr(y, "dtype", None) is not None and y.dtype.names:
            return np.asarray(y[y.dtype.names[0]])
        return np.asarray(y)
    return np.asarray(stratify)


def _draw_indices(n: int, B: int, random_state, strata=None) -> np.ndarray:
    """B x n bootstrap row indices (within strata when given), from one seeded generator."""
    rng = np.random.default_rng(random_state)
    if strata is None:
        return rng.integers(0, n, size=(B, n))
    if len(strata) != n:
        raise ValueError(f"stratify has {len(strata)} values for {n} rows")
    out = np.empty((B, n), dtype=np.int64)
    pos = 0
    for s in pd.unique(strata):
        members = np.flatnonzero(strata == s)
        out[:, pos:pos + members.size] = members[rng.integers(0, members.size, size=(B, members.size))]
        pos += members.size
    return out


def _chunks(B: int, n_jobs: int):
    n_chunks = max(1, min(B, 4 * max(n_jobs, 1)))
    return np.array_split(np.arange(B), n_chunks)


# --------------------------------------------------------------------------------------------
# optimism correction
# --------------------------------------------------------------------------------------------
def _optimism_chunk(estimator, X, y, scorers, indices, want_oob, inner_threads):
    with threadpool_limits(limits=inner_threads):
        return _optimism_replicates(estimator, X, y, scorers, indices, want_oob)


class _Predictions:
    """The fitted estimator with predict/predict_proba remembered per data object, so that several
    scorers evaluated on the same rows predict once."""

    def __init__(self, estimator):
        self._est, self._memo = estimator, {}

    def _cached(self, method, X):
        key = (method, id(X))
        if key not in self._memo:
            self._memo[key] = (X, getattr(self._est, method)(X))  # keep X alive so its id stays unique
        return self._memo[key][1]

    def predict_proba(self, X):
        return self._cached("predict_proba", X)

    def predict(self, X):
        return self._cached("predict", X)

    def __getattr__(self, name):
        return getattr(self._est, name)


def _optimism_replicates(estimator, X, y, scorers, indices, want_oob):
    n = len(X)
    rows = []
    for idx in indices:
        row = {}
        try:
            Xb, yb = _take(X, idx), _take(y, idx)
            est = _Predictions(clone(estimator).fit(Xb, yb))
            oob = np.setdiff1d(np.arange(n), idx)
            Xo, yo = _take(X, oob), _take(y, oob)
            for s in scorers:
                row[f"{s.name}_boot"] = s(est, Xb, yb)
                row[f"{s.name}_orig"] = s(est, X, y)
                if want_oob:
                    try:
                        row[f"{s.name}_oob"] = s(est, Xo, yo) if oob.size else np.nan
                    except ValueError:  # e.g. one class only out of bag
                        row[f"{s.name}_oob"] = np.nan
            row["error"] = ""
        except Exception as exc:  # a failed refit (e.g. one outcome class only) drops the replicate
            row = {"error": f"{type(exc).__name__}: {exc}"}
        rows.append(row)
    return rows


def bootstrap_optimism(estimator, X, y, scoring: Sequence | str = ("auc", "brier", "slope", "intercept"),
                       B: int = 200, plus632: bool = False, n_jobs: int = 1, random_state=None,
                       stratify=None, inner_threads: int | None = 1) -> pd.DataFrame:
    """Bootstrap optimism-corrected performance of a whole scikit-learn estimator or Pipeline.

    Parameters
    ----------
    estimator : unfitted estimator or Pipeline; it is cloned and refitted on every bootstrap
        sample (and once on all data for the apparent performance).
    X, y : training data (y binary 0/1, or a scikit-survival structured array for ``"c_index"``).
    scoring : metric names from :data:`SCORERS`, :class:`Scorer` objects or callables.
    B : number of bootstrap replicates; failed refits are dropped and counted in ``B_failed``.
    plus632 : also return the .632+ estimate (Efron & Tibshirani 1997), using the mean
        out-of-bag performance; NaN for metrics without a no-information value.
    n_jobs : joblib workers. random_state : seed; results do not depend on ``n_jobs``.
    stratify : None, True (resample within outcome/event classes) or an array of strata.
    inner_threads : BLAS/OpenMP threads per replicate (None: library default). One thread avoids
        oversubscription on many small refits (3-4x faster serially, benchmarks/results/resampling.md)
        and is what joblib's workers use anyway.

    Returns
    -------
    DataFrame with one row per metric: apparent, optimism, corrected, optimism_se (Monte-Carlo
    SE of the optimism), [oob, no_information, estimate_632plus], B, B_failed, method.
    ``attrs["replicates"]`` holds the per-replicate performances.
    """
    scorers = [get_scorer(s) for s in ([scoring] if isinstance(scoring, (str, Scorer)) else scoring)]
    if B < 1:
        raise ValueError(f"B must be >= 1, got {B}")
    n = _n_rows(X, y)
    fitted = _Predictions(clone(estimator).fit(X, y))
    apparent = {s.name: s(fitted, X, y) for s in scorers}
    indices = _draw_indices(n, B, random_state, _strata_of(y, stratify))
    parts = Parallel(n_jobs=n_jobs)(
        delayed(_optimism_chunk)(estimator, X, y, scorers, indices[c], plus632, inner_threads)
        for c in _chunks(B, n_jobs))
    reps = pd.DataFrame([r for part in parts for r in part])
    ok = reps["error"] == ""
    if not ok.any():
        raise RuntimeError(f"every bootstrap refit failed; first error: {reps['error'].iloc[0]}")
    good = reps[ok]
    rows = []
    for s in scorers:
        diff = good[f"{s.name}_boot"] - good[f"{s.name}_orig"]
        opt = float(diff.mean())
        row = {"metric": s.name, "apparent": apparent[s.name], "optimism": opt,
               "corrected": apparent[s.name] - opt,
               "optimism_se": float(diff.std(ddof=1) / np.sqrt(diff.count())) if diff.count() > 1 else np.nan,
               "B": int(ok.sum()), "B_failed": int((~ok).sum()),
               "method": "bootstrap optimism correction (Harrell), whole pipeline refitted"}
        if plus632:
            row.update(_plus632(s, apparent[s.name], float(good[f"{s.name}_oob"].mean()), fitted, X, y))
        rows.append(row)
    out = pd.DataFrame(rows)
    out["engine"] = "python"
    out.attrs["replicates"] = reps
    return out


def _plus632(scorer: Scorer, app: float, oob: float, fitted, X, y) -> dict:
    """Efron & Tibshirani (1997) .632+ estimate for a loss or (sign-flipped) gain measure."""
    if scorer.no_information is None:
        return {"oob": oob, "no_information": np.nan, "estimate_632plus": np.nan}
    gamma = float(scorer.no_information(fitted, X, y))
    sign = -1.0 if scorer.greater_is_better else 1.0  # work on the loss scale
    L_app, L_oob, L_gam = sign * app, sign * oob, sign * gamma
    L_oob1 = min(L_oob, L_gam)
    R = (L_oob1 - L_app) / (L_gam - L_app) if (L_oob1 > L_app and L_gam > L_app) else 0.0
    w = 0.632 / (1 - 0.368 * R)
    est = (1 - w) * L_app + w * L_oob1
    return {"oob": oob, "no_information": gamma, "estimate_632plus": sign * est}


# --------------------------------------------------------------------------------------------
# percentile CIs of fixed predictions
# --------------------------------------------------------------------------------------------
def _ci_chunk(metric, arrays, indices):
    out = []
    for idx in indices:
        try:
            v = metric(*[_take(a, idx) for a in arrays])
        except ValueError:  # e.g. AUC with one class in the resample
            v = np.nan
        out.append(v if isinstance(v, Mapping) else {"metric": v})
    return out


def bootstrap_ci(metric: Callable, *arrays, B: int = 2000, conf_level: float = 0.95, n_jobs: int = 1,
                 random_state=None, stratify=None) -> pd.DataFrame:
    """Percentile bootstrap CIs of ``metric(*arrays)`` (rows of all arrays resampled together).

    ``metric`` returns a float or a dict of floats (several statistics share the same
    resamples). Replicates where the metric is undefined (NaN, or ValueError) are dropped and
    counted in ``B_failed``. Returns metric, estimate (on the original data), lower, upper,
    se (bootstrap SD), B, B_failed, method.
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
    indices = _draw_indices(n, B, random_state, strata)
    parts = Parallel(n_jobs=n_jobs)(delayed(_ci_chunk)(metric, arrays, indices[c]) for c in _chunks(B, n_jobs))
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
    out.attrs["replicates"] = reps
    return out
