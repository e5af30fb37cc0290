"""Model explanations: cross-validated SHAP, SurvSHAP(t) and the response-vs-survival divergence.

* :func:`cv_shap` - SHAP values with K-fold cross-validation averaging (the PRIME paper's scheme):
  a clone of the estimator (the whole Pipeline) is fitted on K-1 folds and explains the held-out
  fold, so every patient is explained by a model that never saw them. Single-output tree models
  (alone or as the last step of a Pipeline) use ``shap.TreeExplainer`` on the features the tree
  sees (interventional, on the model's raw margin); everything else (stacking/fusion models, SVMs,
  survival ensembles) uses model-agnostic interventional Shapley values on the raw inputs:
  exact enumeration of all coalitions up to ``exact_max_features`` active features, the antithetic
  permutation estimator above (both vectorised here, one model call per explained row, so that
  no JIT compilation is paid per process; checked against closed forms, brute-force
  enumeration and TreeSHAP in the tests).
  Background data always come from the training folds only. Features that do not change the
  model's output get exactly 0 (null player) and are left out of the Shapley computation; they
  are found by adaptive group testing (blocks of columns replaced at once, halved while they
  change the output), checked against the per-column screen's meaning (see _screened_shapley).
* :func:`frozen_shap` - SHAP of the frozen (validated) model itself, with the same engines and a
  background of its training rows: what the validated model does, beside cv_shap's refits.
* :func:`survshap` - SurvSHAP(t) (Krzyziński et al., Knowledge-Based Systems 2023): Shapley values
  of the survival function S(t|x) at a grid of times (the value of a coalition is the mean of
  S(t|x_S, b_-S) over background rows b, as in the authors' ``survshap`` package), with the
  time-aggregated importance: ``integral`` = trapezoid integral of |SHAP(t)| over the grid (the
  package's "integral" aggregation), averaged over patients, and ``importance`` = that integral
  divided by the grid's span (a time-averaged mean |SHAP(t)|, on the survival-probability scale).
* :func:`divergence_table` - response drivers beside survival drivers (importance shares).

Reference: Lundberg & Lee (2017) SHAP; Lundberg et al. (2020) TreeSHAP.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np
import pandas as pd
from sklearn.base import clone, is_classifier
from sklearn.model_selection import KFold, StratifiedKFold
from scipy.special import logit
from sklearn.pipeline import Pipeline

from .evaluation._survcore import step_at, survival_at as step_survival_at

__all__ = ["ShapResult", "cv_shap", "frozen_shap", "interventional_shapley", "SurvShapResult", "survshap", "survival_at",
           "divergence_table"]


@dataclass
class ShapResult:
    """Cross-validated SHAP values.

    ``values``: held-out SHAP value per patient (rows, index of X) and feature; a feature that a
    fold's pipeline did not pass to its model gets 0 there. ``fold``: each row's fold (frozen_shap:
    its group label). ``data``: the feature values the
    explainer saw (NaN where not used). ``fold_importance``: mean |SHAP| per fold (rows) and feature.
    ``ranking``: feature, mean_abs_shap (over all patients), sd/min/max over folds, share, rank.
    """

    values: pd.DataFrame
    data: pd.DataFrame
    base_values: np.ndarray
    fold: np.ndarray
    fold_importance: pd.DataFrame
    ranking: pd.DataFrame
    explainer: str
    output: str


def _is_survival_target(y) -> bool:
    y = np.asarray(y)
    return y.dtype.names is not None and len(y.dtype.names) == 2


def _splitter(estimator, y, cv: int, random_state):
    if _is_survival_target(y):
        strata = np.asarray(y[y.dtype.names[0]]).astype(int)
        return StratifiedKFold(cv, shuffle=True, random_state=random_state).split(np.zeros(len(y)), strata)
    if is_classifier(estimator):
        return StratifiedKFold(cv, shuffle=True, random_state=random_state).split(np.zeros(len(y)), y)
    return KFold(cv, shuffle=True, random_state=random_state).split(np.zeros(len(y)))


def _prediction_function(model, columns, output: str):
    """f(X array) -> one number per row, on the ``output`` scale."""

    def f(arr):
        df = pd.DataFrame(np.asarray(arr), columns=columns)
        if output == "probability":
            return model.predict_proba(df)[:, 1]
        if output == "log-odds":
            return logit(np.clip(model.predict_proba(df)[:, 1], 1e-15, 1 - 1e-15))
        return np.asarray(model.predict(df), dtype=float)

    return f


def _default_output(estimator, y) -> str:
    if is_classifier(estimator):
        return "probability"
    return "risk" if _is_survival_target(y) else "prediction"


def _transformed_names(pre: Pipeline, columns) -> list[str]:
    try:
        return [str(c) for c in pre.get_feature_names_out(list(columns))]
    except Exception:  # a transformer without get_feature_names_out
        return None


def _tree_explanation(model, X_train: pd.DataFrame, X_test: pd.DataFrame, output: str, n_background: int, rng):
    """TreeSHAP of the final model on the features it sees; None when shap cannot read the model
    or its output is multi-dimensional (then the model-agnostic engine is used)."""
    import shap

    if isinstance(model, Pipeline) and len(model.steps) > 1:
        pre, final = model[:-1], model[-1]
        Xtr = pre.transform(X_train)
        Xte = pre.transform(X_test)
        names = _transformed_names(pre, X_train.columns)
        if names is None or len(names) != np.asarray(Xte).shape[1]:
            return None
    else:
        final, Xtr, Xte, names = model, X_train, X_test, list(map(str, X_train.columns))
    # scikit-learn trees compare float32 features with float32 thresholds; rounding to float32 here
    # makes shap's tree traversal take the same branches (else values near a split differ)
    Xtr = np.asarray(Xtr, dtype=np.float32).astype(float)
    Xte = np.asarray(Xte, dtype=np.float32).astype(float)
    bg = Xtr[rng.choice(len(Xtr), size=min(n_background, len(Xtr)), replace=False)]
    try:
        # the raw margin: interventional TreeSHAP is exact there (log-odds for boosting, the mean
        # leaf probability for forests); shap's "probability" transform is only approximate
        explainer = shap.TreeExplainer(final, data=shap.maskers.Independent(bg, max_samples=len(bg)),
                                       feature_perturbation="interventional", model_output="raw")
        sv = explainer.shap_values(Xte, check_additivity=False)
    except Exception:  # model type not supported by TreeExplainer
        return None
    scale = {"log_odds": "log-odds", "probability": "probability"}.get(explainer.model.tree_output,
                                                                        output)
    sv = np.asarray(sv)
    if sv.ndim == 3:
        # multi-output trees (forest classifiers): shap 0.51's interventional TreeSHAP departs from
        # the exact Shapley values of predict_proba (checked in the tests), so use the exact engine
        return None
    base = float(np.atleast_1d(np.asarray(explainer.expected_value, dtype=float))[0])
    return sv, Xte, names, np.full(len(Xte), base), "shap.TreeExplainer (interventional)", scale, None


# rows x columns of one model call in the screen: 2**23 float64 cells = 64 MB of input per call
_SCREEN_MAX_CELLS = 1 << 23


def _block_changes(f, X_test: np.ndarray, bg: np.ndarray, base: np.ndarray, blocks: list,
                   max_cells: int = _SCREEN_MAX_CELLS) -> np.ndarray:
    """Group tests: for each block (array of column indices), does replacing all its columns at
    once, in any row of X_test, by their values in any background row change f's output (beyond
    atol 1e-12)? For a one-column block this is exactly the per-column test.

    The replaced rows of all blocks are batched into model calls of at most ``max_cells`` cells
    (bounded memory), one background row after the other, so that a block stops being tested as
    soon as it changed the output; background rows equal on a block are tried once."""
    n, p = X_test.shape
    base = np.asarray(base, dtype=float).reshape(n, -1)
    tries = []  # the background rows with distinct values on each block
    for cols in blocks:
        vals = np.ascontiguousarray(bg[:, cols])
        keys = vals.view(np.dtype((np.void, vals.itemsize * vals.shape[1]))).ravel()
        tries.append(np.sort(np.unique(keys, return_index=True)[1]))
    step = max(1, min(n, max_cells // p))  # explained rows per unit of work
    units = [(t, ks[r], i) for r in range(len(bg)) for t, ks in enumerate(tries) if r < len(ks)
             for i in range(0, n, step)]
    per_call = max(1, max_cells // (step * p))
    changed = np.zeros(len(blocks), dtype=bool)
    pos = 0
    while pos < len(units):
        batch = []
        while pos < len(units) and len(batch) < per_call:
            if not changed[units[pos][0]]:
                batch.append(units[pos])
            pos += 1
        if not batch:
            break
        sizes = [min(step, n - i) for _, _, i in batch]
        Z = np.empty((sum(sizes), p))
        r0 = 0
        for (t, k, i), s in zip(batch, sizes):
            Z[r0:r0 + s] = X_test[i:i + s]
            Z[r0:r0 + s, blocks[t]] = bg[k, blocks[t]]
            r0 += s
        out = np.asarray(f(Z), dtype=float).reshape(len(Z), -1)
        r0 = 0
        for (t, k, i), s in zip(batch, sizes):
            if not np.allclose(out[r0:r0 + s], base[i:i + s], rtol=0, atol=1e-12):
                changed[t] = True
            r0 += s
    return changed


def _active_features(f, X_test: np.ndarray, bg: np.ndarray, *, base: np.ndarray | None = None,
                     block_size: int | None = None, max_cells: int = _SCREEN_MAX_CELLS) -> np.ndarray:
    """Features the fitted model's output depends on: column j is active when replacing it, in any
    held-out row, by any background value changes the output. Inactive features (e.g. dropped by
    the pipeline's selection step) have Shapley value 0 exactly (null-player axiom).

    Adaptive group testing (few active columns among many): blocks of ``block_size`` columns
    (default ceil(sqrt(p))) are replaced together by each background row's values; a block that
    changes no output is taken as inactive, one that does is halved, recursively, down to single
    columns, which are active exactly by the per-column test. ``block_size=1`` is the plain
    per-column screen. A block test could in principle miss columns whose effects cancel within
    the block; :func:`_screened_shapley` checks the reduced game and then falls back to
    ``block_size=1``. ``base``: f(X_test) when already known."""
    X_test = np.asarray(X_test, dtype=float)
    bg = np.asarray(bg, dtype=float)
    p = X_test.shape[1]
    if base is None:
        base = f(X_test)
    if block_size is None:
        block_size = int(np.ceil(np.sqrt(p)))
    block_size = max(1, int(block_size))
    pending = [np.arange(s, min(s + block_size, p)) for s in range(0, p, block_size)]
    active = np.zeros(p, dtype=bool)
    while pending:
        changed = _block_changes(f, X_test, bg, base, pending, max_cells)
        split = []
        for cols, ch in zip(pending, changed):
            if not ch:
                continue
            if len(cols) == 1:
                active[cols[0]] = True
            else:
                split += [cols[:len(cols) // 2], cols[len(cols) // 2:]]
        pending = split
    return active


def _reduced_game(f_full, fixed: np.ndarray, active: np.ndarray, max_cells: int = _SCREEN_MAX_CELLS):
    """f on the active columns, the others held at ``fixed`` (model calls of at most ``max_cells``
    full-width cells, so that a wide model's coalition rows stay within bounded memory)."""
    step = max(1, max_cells // len(fixed))

    def f(z):
        out = []
        for i in range(0, len(z), step):
            full = np.tile(fixed, (len(z[i:i + step]), 1))
            full[:, active] = z[i:i + step]
            out.append(np.asarray(f_full(full), dtype=float))
        return np.concatenate(out)

    return f


def _shapley_weights(q: int) -> np.ndarray:
    """w(|S|) = |S|! (q - |S| - 1)! / q! for coalitions S not containing the feature."""
    return np.array([factorial(k) * factorial(q - k - 1) / factorial(q) for k in range(q)])


def interventional_shapley(f, X: np.ndarray, background: np.ndarray, *, exact_max_features: int = 8,
                           n_permutations: int = 10, random_state=0) -> tuple[np.ndarray, np.ndarray, str]:
    """Interventional Shapley values of ``f`` (rows -> outputs, 1-D or n x T) for each row of X.

    The value of a coalition S is v(S) = mean over background rows b of f(x_S, b_{-S}) (Janzing
    et al. 2020; shap's Independent masker). With q <= ``exact_max_features`` features every
    coalition is enumerated (exact); above, ``n_permutations`` random feature orders and their
    reverses (antithetic sampling, Mitchell et al. 2022) are walked, which keeps efficiency exact:
    sum_j phi_j = f-value of x minus v(empty). Returns (values n x q [x T], base n [x T], name).
    """
    X = np.asarray(X, dtype=float)
    bg = np.asarray(background, dtype=float)
    n, q = X.shape
    m = len(bg)
    rng = np.random.default_rng(random_state)
    if q <= exact_max_features:
        codes = np.arange(2 ** q)
        masks = ((codes[:, None] >> np.arange(q)) & 1).astype(bool)  # coalition c holds j if bit j
        w = _shapley_weights(q)[masks.sum(axis=1).clip(max=q - 1)]
        name = "exact interventional Shapley (all coalitions)"
        per_row = len(masks) * m

        def coalition_rows(x):
            return np.where(masks[:, None, :], x[None, None, :], bg[None, :, :]).reshape(-1, q), None
    else:
        name = f"antithetic permutation Shapley ({n_permutations} orders + reverses)"
        per_row = 2 * n_permutations * (q + 1) * m

        def coalition_rows(x):
            orders = np.array([rng.permutation(q) for _ in range(n_permutations)])
            orders = np.concatenate([orders, orders[:, ::-1]])
            steps = np.zeros((len(orders), q + 1, q), dtype=bool)
            for k in range(q):
                steps[:, k + 1] = steps[:, k]
                steps[np.arange(len(orders)), k + 1, orders[:, k]] = True
            flat = steps.reshape(-1, q)
            return np.where(flat[:, None, :], x[None, None, :], bg[None, :, :]).reshape(-1, q), orders

    # the coalition rows of several explained rows go to f together (<= _SCREEN_MAX_CELLS cells)
    batch = max(1, _SCREEN_MAX_CELLS // (per_row * q))
    values, base = [], []
    for i0 in range(0, n, batch):
        built = [coalition_rows(x) for x in X[i0:i0 + batch]]
        out = np.asarray(f(np.concatenate([Z for Z, _ in built])), dtype=float).reshape(len(built), per_row, -1)
        for v_rows, (_, orders) in zip(out, built):
            if orders is None:
                v = v_rows.reshape(len(masks), m, -1).mean(axis=1)  # C x T
                phi = np.empty((q, v.shape[1]))
                for j in range(q):
                    without = codes[~masks[:, j]]
                    phi[j] = (w[without, None] * (v[without | (1 << j)] - v[without])).sum(axis=0)
                b0 = v[0]
            else:
                v = v_rows.reshape(len(orders), q + 1, m, -1).mean(axis=2)
                gain = np.diff(v, axis=1)  # orders x q x T, gain of the k-th feature in each order
                phi = np.zeros((q, v.shape[2]))
                for o in range(len(orders)):
                    phi[orders[o]] += gain[o]
                phi /= len(orders)
                b0 = v[0, 0]
            values.append(phi)
            base.append(b0)
    values, base = np.asarray(values), np.asarray(base)
    if values.shape[2] == 1:
        values, base = values[:, :, 0], base[:, 0]
    return values, base, name


def _screened_shapley(f_full, xt: np.ndarray, bg: np.ndarray, exact_max_features: int,
                      n_permutations: int, seed: int, candidates: np.ndarray | None = None):
    """Interventional Shapley values on the active features only (inactive ones get exactly 0).

    The inactive columns are held at the first background row's values. ``candidates`` (boolean
    mask, e.g. the columns a fitted PRIME model selected) narrows the screen: when the game on the
    candidates alone reproduces f on the explained and background rows, the other columns are
    inactive and only the candidates are screened. With the group-tested screen
    (:func:`_active_features`) the reduced game must reproduce f on those rows (so that efficiency
    holds for the full model); if it does not (effects that cancel within a tested block), the exact
    per-column screen is used instead."""
    p = xt.shape[1]
    out_x = np.asarray(f_full(xt), dtype=float)
    out_bg = np.asarray(f_full(bg), dtype=float)
    base_out = out_bg.mean(axis=0)
    fixed = bg[0].copy()
    ref = np.concatenate([out_x, out_bg])
    atol = 1e-10 * max(float(np.abs(ref).max(initial=0.0)), np.finfo(float).tiny)

    def reproduces(mask):
        red = np.asarray(_reduced_game(f_full, fixed, mask)(np.concatenate([xt, bg])[:, mask]), dtype=float)
        return red.shape == ref.shape and np.allclose(red, ref, rtol=0, atol=atol)

    if p <= exact_max_features:
        active = np.ones(p, dtype=bool)
    else:
        if candidates is not None and 0 < candidates.sum() < p and reproduces(candidates):
            idx = np.flatnonzero(candidates)
            active = np.zeros(p, dtype=bool)
            active[idx[_active_features(_reduced_game(f_full, fixed, candidates), xt[:, idx], bg[:, idx],
                                        base=out_x)]] = True
        else:
            active = _active_features(f_full, xt, bg, base=out_x)
        if not active.all() and not reproduces(active):
            active = _active_features(f_full, xt, bg, base=out_x, block_size=1)
    values = np.zeros((len(xt), p) + np.shape(base_out))
    if not active.any():
        return values, np.tile(base_out, (len(xt),) + (1,) * np.ndim(base_out)), "constant model", 0
    sv, base, name = interventional_shapley(_reduced_game(f_full, fixed, active), xt[:, active],
                                            bg[:, active], exact_max_features=exact_max_features,
                                            n_permutations=n_permutations, random_state=seed)
    values[:, active] = sv
    return values, base, name, int(active.sum())


def _selected_columns(model, cols) -> np.ndarray | None:
    """Mask of the columns a fitted PRIME model (``selected_features_`` table) kept, or None."""
    table = getattr(model, "selected_features_", None)
    if not isinstance(table, pd.DataFrame) or "feature" not in table:
        return None
    return np.isin(np.asarray(cols, dtype=object), table["feature"].astype(str).to_numpy())


def _agnostic_explanation(model, X_train, X_test, output, n_background, exact_max_features,
                          n_permutations, rng):
    cols = list(X_train.columns)
    bg = X_train.to_numpy(dtype=float)
    bg = bg[rng.choice(len(bg), size=min(n_background, len(bg)), replace=False)]
    xt = X_test.to_numpy(dtype=float)
    names = list(map(str, cols))
    values, base, name, n_active = _screened_shapley(_prediction_function(model, cols, output), xt, bg,
                                                     exact_max_features, n_permutations,
                                                     int(rng.integers(2**31 - 1)), _selected_columns(model, names))
    return values, xt, names, base, name, output, n_active


def _explain_fitted(model, X_train: pd.DataFrame, X_test: pd.DataFrame, explainer: str, output: str,
                    n_background: int, exact_max_features: int, n_permutations: int, rng):
    """SHAP of one fitted model for the rows of X_test with a background sample of X_train: TreeSHAP
    when ``explainer`` allows it and shap can read the model, else the model-agnostic engine."""
    res = None
    if explainer in ("auto", "tree"):
        res = _tree_explanation(model, X_train, X_test, output, n_background, rng)
        if res is None and explainer == "tree":
            raise ValueError(f"shap.TreeExplainer cannot explain {type(model).__name__}; "
                             "use explainer='agnostic'")
    if res is None:
        res = _agnostic_explanation(model, X_train, X_test, output, n_background,
                                    exact_max_features, n_permutations, rng)
    return res


def _check_features(X, name: str = "X"):
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame with named feature columns")
    if X.index.has_duplicates:
        raise ValueError(f"{name} has duplicated row labels (e.g. "
                         f"{list(X.index[X.index.duplicated()][:3])}); give each patient a unique index")
    bad = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if bad:
        raise ValueError(f"non-numeric feature column(s) {bad[:5]}: encode them before explaining")


def cv_shap(estimator, X: pd.DataFrame, y, *, cv: int = 5, explainer: str = "auto",
            output: str | None = None, n_background: int = 50, exact_max_features: int = 8,
            n_permutations: int = 10, random_state: int = 0) -> ShapResult:
    """K-fold cross-validated SHAP for any scikit-learn / scikit-survival estimator or Pipeline.

    ``explainer``: "auto" (TreeExplainer when the final model is a supported tree ensemble, else
    model-agnostic), "tree" (fail if unsupported) or "agnostic". ``output`` (agnostic path):
    "probability" (classifiers, P(y=1)), "log-odds", "risk" (survival models, ``predict``) or
    "prediction". TreeSHAP explains the tree ensemble's raw margin (log-odds for boosting, the
    prediction for regression forests); forest *classifiers* use the exact engine on P(y=1)
    because shap's multi-output TreeSHAP is not exact. ``ShapResult.output`` names the scale.
    """
    _check_features(X)
    if explainer not in ("auto", "tree", "agnostic"):
        raise ValueError(f"explainer must be 'auto', 'tree' or 'agnostic', not {explainer!r}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    output = output or _default_output(estimator, y)
    rng = np.random.default_rng(random_state)
    folds = list(_splitter(estimator, y, cv, random_state))
    n = len(X)
    parts, data_parts, base, fold_id, fold_imp = [], [], np.empty(n), np.empty(n, int), []
    names_used, scales, actives = set(), set(), []
    for k, (tr, te) in enumerate(folds):
        model = clone(estimator).fit(X.iloc[tr], y[tr] if not isinstance(y, pd.Series) else y.iloc[tr])
        sv, xv, names, b, names_used_k, scale, n_active = _explain_fitted(
            model, X.iloc[tr], X.iloc[te], explainer, output, n_background, exact_max_features, n_permutations, rng)
        names_used.add(names_used_k)
        scales.add(scale)
        if n_active is not None:
            actives.append(n_active)
        idx = X.index[te]
        parts.append(pd.DataFrame(sv, index=idx, columns=names))
        data_parts.append(pd.DataFrame(xv, index=idx, columns=names))
        base[te], fold_id[te] = b, k
        fold_imp.append(pd.Series(np.abs(sv).mean(axis=0), index=names, name=k))
    explainer_name = "; ".join(sorted(names_used))
    if actives:
        explainer_name += (f"; features that change the output, per fold: "
                           f"{', '.join(map(str, actives))} of {X.shape[1]}")
    values = pd.concat(parts).reindex(X.index)
    order = list(dict.fromkeys(c for p in parts for c in p.columns))
    values = values[order].fillna(0.0)
    data = pd.concat(data_parts).reindex(X.index)[order]
    fold_importance = pd.DataFrame(fold_imp).reindex(columns=order).fillna(0.0)
    fold_importance.index.name = "fold"
    mean_abs = values.abs().mean(axis=0)
    ranking = pd.DataFrame({
        "feature": order, "mean_abs_shap": mean_abs.to_numpy(),
        "sd_folds": fold_importance.std(axis=0, ddof=1).to_numpy(),
        "min_folds": fold_importance.min(axis=0).to_numpy(),
        "max_folds": fold_importance.max(axis=0).to_numpy(),
        "n_folds_used": np.array([sum(c in p.columns for p in parts) for c in order]),
    })
    ranking["share"] = ranking["mean_abs_shap"] / ranking["mean_abs_shap"].sum()
    ranking = ranking.sort_values("mean_abs_shap", ascending=False, kind="mergesort").reset_index(drop=True)
    ranking["rank"] = np.arange(1, len(ranking) + 1)
    return ShapResult(values=values, data=data, base_values=base, fold=fold_id,
                      fold_importance=fold_importance, ranking=ranking,
                      explainer=explainer_name, output="; ".join(sorted(scales)))


def frozen_shap(model, X: pd.DataFrame, *, background: pd.DataFrame, groups=None, explainer: str = "auto",
                output: str | None = None, n_background: int = 30, exact_max_features: int = 8,
                n_permutations: int = 10, random_state: int = 0) -> ShapResult:
    """SHAP of one fitted model, as it was frozen and validated, for the rows of X.

    Nothing is refitted (unlike :func:`cv_shap`): the same engines (TreeSHAP when shap reads the
    model, else interventional Shapley values on the raw inputs with the active-feature screen)
    explain ``model`` with ``n_background`` rows sampled from ``background`` (its training rows).
    ``output``: "probability" (classifiers, the default), "log-odds", "risk" (``predict``, the default
    otherwise) or "prediction". ``groups``: a label per row of X (e.g. the split); ``fold`` holds it
    and ``fold_importance`` is the mean |SHAP| per group. Features that never change the output
    (exactly 0, null player) are left out of ``values`` and ``ranking``.
    """
    _check_features(X)
    _check_features(background, "background")
    if list(X.columns) != list(background.columns):
        raise ValueError("X and background must have the same columns in the same order")
    if explainer not in ("auto", "tree", "agnostic"):
        raise ValueError(f"explainer must be 'auto', 'tree' or 'agnostic', not {explainer!r}")
    groups = np.asarray(["all"] * len(X) if groups is None else groups).astype(str)
    if len(groups) != len(X):
        raise ValueError(f"groups has {len(groups)} labels but X has {len(X)} rows")
    output = output or ("probability" if is_classifier(model) else "risk")
    rng = np.random.default_rng(random_state)
    sv, xv, names, base, name, scale, n_active = _explain_fitted(
        model, background, X, explainer, output, n_background, exact_max_features, n_permutations, rng)
    values = pd.DataFrame(sv, index=X.index, columns=names)
    used = values.columns[(values != 0).any(axis=0)]
    values, data = values[used], pd.DataFrame(xv, index=X.index, columns=names)[used]
    fold_importance = values.abs().groupby(groups).mean()
    fold_importance.index.name = "group"
    mean_abs = values.abs().mean(axis=0)
    ranking = pd.DataFrame({"feature": pd.Series(list(used), dtype=object), "mean_abs_shap": mean_abs.to_numpy()})
    ranking["share"] = ranking["mean_abs_shap"] / ranking["mean_abs_shap"].sum()
    ranking = ranking.sort_values("mean_abs_shap", ascending=False, kind="mergesort").reset_index(drop=True)
    ranking["rank"] = np.arange(1, len(ranking) + 1)
    if n_active is not None:
        name += f"; {n_active} of {X.shape[1]} features change the output"
    return ShapResult(values=values, data=data, base_values=np.asarray(base, dtype=float), fold=groups,
                      fold_importance=fold_importance, ranking=ranking,
                      explainer=f"{name}; background {min(n_background, len(background))} training rows",
                      output=scale)


# --------------------------------------------------------------------------------------------
# SurvSHAP(t)
# --------------------------------------------------------------------------------------------
def survival_at(model, X: pd.DataFrame, times) -> np.ndarray:
    """S(t|x) at ``times`` for each row of X (n x len(times)).

    Accepts models whose ``predict_survival_function`` returns scikit-survival step functions
    (scikit-survival's models, prime_stats' PrimeS and ModalitySurvival; evaluated by
    :func:`prime_stats.evaluation._survcore.survival_at`; a model with ``unique_times_`` gives, as
    scikit-survival's do, the same functions as an array on that grid with ``return_array=True``,
    read by the same rule, :func:`~prime_stats.evaluation._survcore.step_at`) or a lifelines-style
    times x samples DataFrame. Times beyond the model's last time are refused: nothing is explained
    past follow-up.
    """
    times = np.asarray(times, dtype=float)

    def check_domain(last):
        if times.min() < 0 or times.max() > last:
            raise ValueError(f"times must lie within the model's follow-up domain [0, {last:g}], "
                             f"got [{times.min():g}, {times.max():g}]")

    grid = getattr(model, "unique_times_", None)
    if grid is not None:
        grid = np.asarray(grid, dtype=float)
        check_domain(grid[-1])
        return step_at(grid, np.asarray(model.predict_survival_function(X, return_array=True), dtype=float),
                       times, 1.0)
    sf = model.predict_survival_function(X)
    if isinstance(sf, pd.DataFrame):
        return sf.to_numpy(dtype=float).T
    sf = np.asarray(sf)
    if sf.dtype == object:
        check_domain(sf[0].x[-1])
        return step_survival_at(sf, times)
    raise TypeError(f"predict_survival_function returned {type(sf).__name__} of shape {sf.shape}; "
                    "expected scikit-survival step functions or a DataFrame")


@dataclass
class SurvShapResult:
    """SurvSHAP(t): ``values`` (n x times x features), ``base_values`` (n x times, E[S(t)]
    over the background), ``prediction`` S(t|x), ``importance`` (long: time, feature,
    mean_abs_shap) and ``ranking`` (feature, importance = time-averaged mean |SHAP(t)|,
    integral, max_abs_shap, share, rank)."""

    values: np.ndarray
    base_values: np.ndarray
    prediction: np.ndarray
    times: np.ndarray
    features: list
    index: pd.Index
    importance: pd.DataFrame
    ranking: pd.DataFrame
    explainer: str


def survshap(model, X: pd.DataFrame, times, *, background: pd.DataFrame, n_background: int = 50,
             exact_max_features: int = 8, n_permutations: int = 10,
             random_state: int = 0) -> SurvShapResult:
    """SurvSHAP(t) of a fitted survival model for the rows of X.

    The model is treated as a black box returning S(t|x) at ``times``; interventional Shapley
    values (:func:`interventional_shapley`) use ``background`` rows (training data only). Values
    sum, at each t, to S(t|x) - E_background[S(t|x')] (efficiency).
    """
    if not isinstance(X, pd.DataFrame) or not isinstance(background, pd.DataFrame):
        raise TypeError("X and background must be pandas DataFrames")
    if list(X.columns) != list(background.columns):
        raise ValueError("X and background must have the same columns in the same order")
    times = np.sort(np.asarray(times, dtype=float))
    if times.size < 1:
        raise ValueError("times must not be empty")
    cols = list(X.columns)
    rng = np.random.default_rng(random_state)
    survival_at(model, X.iloc[:1], times)  # fail early with a clear message on bad times

    def f(arr):
        return survival_at(model, pd.DataFrame(np.asarray(arr), columns=cols), times)

    bg = background.to_numpy(dtype=float)
    bg = bg[rng.choice(len(bg), size=min(n_background, len(bg)), replace=False)]
    p = len(cols)
    sv, base, name, n_active = _screened_shapley(f, X.to_numpy(dtype=float), bg, exact_max_features,
                                                 n_permutations, random_state, _selected_columns(model, cols))
    name = f"SurvSHAP(t): {name} on {n_active} of {p} features (the others do not change S(t|x))"
    values = np.transpose(sv.reshape(len(X), p, len(times)), (0, 2, 1))  # n x T x p
    base = base.reshape(len(X), len(times))
    mean_abs = np.abs(values).mean(axis=0)  # T x p
    importance = pd.DataFrame({"time": np.repeat(times, p), "feature": np.tile(cols, len(times)),
                               "mean_abs_shap": mean_abs.ravel()})
    if times.size > 1:
        integral = np.trapezoid(mean_abs, times, axis=0)
        agg = integral / (times[-1] - times[0])
    else:
        integral, agg = np.full(p, np.nan), mean_abs[0]
    ranking = pd.DataFrame({"feature": cols, "importance": agg, "integral": integral,
                            "max_abs_shap": mean_abs.max(axis=0)})
    ranking = ranking.sort_values("importance", ascending=False, kind="mergesort").reset_index(drop=True)
    ranking["share"] = ranking["importance"] / ranking["importance"].sum()
    ranking["rank"] = np.arange(1, p + 1)
    ranking["aggregation"] = "time-averaged mean |SHAP(t)| (trapezoid over the time grid)"
    return SurvShapResult(values=values, base_values=base, prediction=f(X.to_numpy(dtype=float)),
                          times=times, features=cols, index=X.index, importance=importance,
                          ranking=ranking, explainer=name)


# --------------------------------------------------------------------------------------------
# divergence view
# --------------------------------------------------------------------------------------------
def _ranking_of(obj) -> pd.DataFrame:
    if isinstance(obj, (ShapResult, SurvShapResult)):
        r = obj.ranking
    elif isinstance(obj, pd.DataFrame):
        r = obj
    else:
        raise TypeError("pass a ShapResult, SurvShapResult or a ranking DataFrame")
    col = "mean_abs_shap" if "mean_abs_shap" in r.columns else "importance"
    if "feature" not in r.columns or col not in r.columns:
        raise ValueError("a ranking needs columns 'feature' and 'mean_abs_shap' (or 'importance')")
    return pd.DataFrame({"feature": r["feature"].astype(str), "importance": r[col].astype(float)})


def divergence_table(response, survival, *, top: int = 10) -> pd.DataFrame:
    """Response drivers beside survival drivers.

    Importances are turned into shares (each model's mean |SHAP| divided by its total, because
    probability and risk scales differ). Columns: feature, response_share, response_rank,
    survival_share, survival_rank, difference (response - survival share) and driver:
    "response" / "survival" (among that model's top ``top`` features with non-zero importance
    only), "both" or "neither".
    """
    r, s = _ranking_of(response), _ranking_of(survival)
    out = r.merge(s, on="feature", how="outer", suffixes=("_response", "_survival")).fillna(0.0)
    for m in ("response", "survival"):
        imp = out[f"importance_{m}"]
        out[f"{m}_share"] = imp / imp.sum() if imp.sum() > 0 else 0.0
        out[f"{m}_rank"] = imp.rank(ascending=False, method="min").astype(int)
    # a driver is among the model's ``top`` features *and* has a non-zero importance
    in_r = (out["response_rank"] <= top) & (out["response_share"] > 0)
    in_s = (out["survival_rank"] <= top) & (out["survival_share"] > 0)
    out["driver"] = np.select([in_r & in_s, in_r, in_s], ["both", "response", "survival"], "neither")
    out["difference"] = out["response_share"] - out["survival_share"]
    out = out[["feature", "response_share", "response_rank", "survival_share", "survival_rank",
               "difference", "driver"]]
    key = np.maximum(out["response_share"], out["survival_share"])
    return out.iloc[np.argsort(-key.to_numpy(), kind="stable")].reset_index(drop=True)
