"""Vectorised bootstrap of validation metrics: every replicate at once, as frequency weights.

A bootstrap replicate of n patients is a vector of counts w (how often each patient was drawn), so
every metric of fixed predictions is a *weighted* re-evaluation of the same sorted data. This module
sorts once, then evaluates a whole chunk of replicates (an n x B_chunk weight matrix) at once - no
per-replicate Python loop. Survival: numba sweeps over the time-sorted rows (one per Kaplan-Meier
curve), over each horizon's risk-sorted rows (AUC(t) and Brier(t) together) and a Fenwick tree for the
C-indices (O(n log n) per replicate); binary: cumulative sums, gathers and matrix products. The numbers
are identical (to rounding, 1e-12; ``tests/python/test_eval_bootstrap.py``) to calling the
per-replicate functions of :mod:`.discrimination`, :mod:`.overall`, :mod:`.calibration` and
:mod:`.decision` on the resampled rows.
The censoring Kaplan-Meier (IPCW weights) and the Kaplan-Meier of the null model are refitted in every
replicate, exactly as those functions do on resampled data.

Survival (:func:`bootstrap_survival`): Harrell's and Uno's C (``survival::concordance``), IPCW AUC(t)
(cumulative/dynamic, ``riskRegression::Score``), IPCW Brier(t), IPA(t), the integrated Brier score
(``pec::crps``), O/E(t) and the calibration slope (Cox on cloglog F(t|x)).
Binary (:func:`bootstrap_binary`): AUC (``pROC::auc``), Brier, IPA, logistic recalibration intercept and
slope and calibration-in-the-large (``rms::val.prob``), O/E and net benefit (``dcurves``).

Confidence intervals: percentile and BCa (Efron 1987; Efron & Tibshirani 1993, 14.3 and eq. 14.15;
the R twin is ``boot::boot.ci(type = "bca")``, which interpolates quantiles differently). The
acceleration comes from the jackknife - exact up to ``jackknife_max`` patients, delete-group (that many
groups) above; on the same resamples the interval equals ``scipy.stats.bootstrap(method="BCa")``.
Paired contrasts between models use the same replicates (percentile CI; p-value by inverting the
percentile interval: 2 (1 + min(#{diff* <= 0}, #{diff* >= 0})) / (B + 1)).

Chunk sizes are chosen to keep each work matrix near ``chunk_elements`` floats (in multiples of the
Fenwick tree's replicate block); replicate b's rows
depend only on (seed, b) (:func:`resample_indices`), so results do not depend on the chunking (beyond
rounding in the last digit) and a bootstrap can be extended or resumed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
from numba import njit
from scipy import sparse, stats
from threadpoolctl import threadpool_limits

__all__ = ["resample_indices", "resample_counts", "bootstrap_survival", "bootstrap_binary", "BootstrapResult",
           "SurvivalWeights", "BinaryWeights", "bca_interval"]
#: relative size below which a paired bootstrap difference counts as 0 in the contrast p-value
ZERO_DIFFERENCE = 1e-12

BLOCK = 8                    # replicates per generator block: replicate b depends only on (seed, b)
CHUNK_ELEMENTS = 1 << 18     # ~256K floats (2 MiB, an L2 cache) per work matrix: 1.5x faster than 8 MiB
FENWICK_BLOCK = 32           # replicates per Fenwick-tree node (int32 counts: 128 bytes, the fastest measured)
JACKKNIFE_MAX = 1000         # exact jackknife up to this n, delete-group jackknife (this many groups) above


# ----------------------------------------------------------------------------------------- resamples
def _seed(seed) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2 ** 63))
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed}")
    return seed


def resample_indices(n: int, seed: int, start: int, stop: int, strata=None) -> np.ndarray:
    """Bootstrap row indices of replicates ``start .. stop-1``, shape (stop - start, n).

    Replicate b is drawn from ``numpy.random.default_rng([seed, b // 8])`` (row b % 8 of its block),
    so it depends only on (seed, b): not on B, the chunking or the number of workers. With ``strata``
    rows are drawn with replacement within each stratum (columns grouped by stratum).
    """
    if strata is not None:
        strata = np.asarray(strata)
        if len(strata) != n:
            raise ValueError(f"strata has {len(strata)} values for {n} rows")
        groups = [np.flatnonzero(strata == s) for s in pd.unique(strata)]
    out = np.empty((stop - start, n), dtype=np.int64)
    for k in range(start // BLOCK, (stop - 1) // BLOCK + 1):
        rng = np.random.default_rng([seed, k])
        if strata is None:
            block = rng.integers(0, n, size=(BLOCK, n))
        else:
            block = np.empty((BLOCK, n), dtype=np.int64)
            pos = 0
            for members in groups:
                block[:, pos:pos + members.size] = members[rng.integers(0, members.size, (BLOCK, members.size))]
                pos += members.size
        lo, hi = max(start, k * BLOCK), min(stop, (k + 1) * BLOCK)
        out[lo - start:hi - start] = block[lo - k * BLOCK:hi - k * BLOCK]
    return out


def resample_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """Frequency weights of bootstrap index rows: float counts of shape (n, B), one column per replicate
    (patients along axis 0, so that cumulative sums run over contiguous rows)."""
    b = idx.shape[0]
    flat = (idx * b + np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * n).reshape(n, b).astype(float)


def _cumsum0(a: np.ndarray, block: int = 64) -> np.ndarray:
    """Cumulative sums down the rows (with a leading zero row) of integer counts, so exact in any order.

    With many replicate columns, running sums inside blocks of 64 rows (whole-row additions) plus the
    block offsets are ~1.5-2x faster than ``np.cumsum`` along axis 0, which strides one column at a time."""
    m, b = a.shape
    out = np.empty((m + 1, b))
    out[0] = 0.0
    mm = (m // block) * block
    if b < 16 or mm == 0:
        np.cumsum(a, axis=0, out=out[1:])
        return out
    o3 = out[1:mm + 1].reshape(mm // block, block, b)
    np.copyto(o3, a[:mm].reshape(mm // block, block, b))
    for i in range(1, block):
        np.add(o3[:, i], o3[:, i - 1], out=o3[:, i])
    o3[1:] += np.cumsum(o3[:-1, -1], axis=0)[:, None, :]
    if mm < m:
        np.cumsum(a[mm:], axis=0, out=out[mm + 1:])
        out[mm + 1:] += out[mm]
    return out


def _indicator(rows: np.ndarray, cols: np.ndarray, shape) -> sparse.csr_matrix:
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)


# ------------------------------------------------------------------------------- survival precomputation
@njit(cache=True, nogil=True)
def _km_sweep(W, nb, time, jump, at, at_order, out):
    """Kaplan-Meier of the rows flagged ``jump`` for every replicate (column of the weights ``W``), numba.

    Rows are sorted by time with events before censorings at a tie, so the at-risk count of a jump time
    u, the total weight ``nb`` minus the rows before its first jump row, is T >= u for the events' KM and
    excludes the events at u for the censoring KM (events leave the risk set first: the survival/prodlim
    convention). ``out[i]`` is the curve after the rows before position ``at[i]`` (``at_order`` sorts
    ``at``); a time absent from a replicate multiplies by exactly 1, so every replicate's curve is
    bit-identical to the unweighted KM of its resampled rows (``CensoringKM``, ``km_risk``)."""
    n, B = W.shape
    S = np.ones(B)
    removed = np.zeros(B)
    d = np.empty(B)
    k = 0
    s = 0
    while s <= n:
        while k < at_order.size and at[at_order[k]] <= s:
            for j in range(B):
                out[at_order[k], j] = S[j]
            k += 1
        if s == n:
            break
        if jump[s]:
            e = s
            for j in range(B):
                d[j] = 0.0
            while e < n and jump[e] and time[e] == time[s]:
                for j in range(B):
                    d[j] += W[e, j]
                e += 1
            for j in range(B):   # branch-free: d > 0 implies at risk >= d >= 1; d = 0 multiplies by 1
                S[j] *= 1.0 - d[j] / max(nb[j] - removed[j], 1.0)
                removed[j] += d[j]
            s = e
        else:
            for j in range(B):
                removed[j] += W[s, j]
            s += 1


@njit(cache=True, nogil=True)
def _horizon_sums(W, WG, ctrl, F_ctrl, cases, F_cases, less, leq, out):
    """Weighted sums of AUC(t) and Brier(t) at one horizon for every replicate, one pass (numba).

    ``ctrl``: rows with T > t sorted by predicted risk (``F_ctrl``); ``cases``: rows of ``WG`` (case
    weights w_i / G(T_i-) of the events with T <= t) sorted by risk (``F_cases``), with ``less``/``leq``
    the number of controls of smaller / not larger risk. ``out`` rows: sum_i WG_i (#controls below +
    1/2 #tied) (the Mann-Whitney numerator), sum_i WG_i, the controls' weight, sum_i WG_i (1 - F_i)^2,
    sum_j w_j F_j^2."""
    B = W.shape[1]
    nc, m = cases.size, ctrl.size
    cum = np.zeros(B)
    num = np.zeros(B)
    b_ctrl = np.zeros(B)
    w_case = np.zeros(B)
    b_case = np.zeros(B)
    a = 0
    c = 0
    for p in range(m + 1):       # cum = weight of the p controls of smallest risk
        while a < nc and less[a] <= p:
            i = cases[a]
            g = (1.0 - F_cases[a]) ** 2
            for j in range(B):
                num[j] += WG[i, j] * cum[j]
                w_case[j] += WG[i, j]
                b_case[j] += WG[i, j] * g
            a += 1
        while c < nc and leq[c] <= p:
            i = cases[c]
            for j in range(B):
                num[j] += WG[i, j] * cum[j]
            c += 1
        if p < m:
            r = ctrl[p]
            f2 = F_ctrl[p] * F_ctrl[p]
            for j in range(B):
                cum[j] += W[r, j]
                b_ctrl[j] += W[r, j] * f2
    out[0] = 0.5 * num
    out[1] = w_case
    out[2] = cum
    out[3] = b_case
    out[4] = b_ctrl


@njit(cache=True, nogil=True)
def _pair_sums(W, order, rank, run_end, m, tie_slot, n_tied, G_ev, ev_pos, out):
    """Harrell's (``out[0]``) and Uno's (``out[1]``, when ``G_ev`` has rows) concordant, tied-risk and
    comparable pair sums for all replicates at once (numba Fenwick tree).

    ``W[order]`` (n x B) are the frequency weights in the processing order (time descending, censorings
    before events at a tied time); ``rank``: dense 0-based rank of the risk score (``tie_slot[rank]``:
    the risk value's counter among the ``n_tied`` values shared by several rows, -1 if unique: only those
    can tie); ``run_end[p]``: for the first event of a time, one past the last event at that time (``p``
    for every other position).
    Walking that order, the rows already inserted into a Fenwick (binary indexed) tree over risk ranks are
    exactly the rows comparable with the next event time's events (T_j > T_i, or T_j == T_i with j
    censored), so per event the weights of rows with r_j < r_i, r_j == r_i and in all are summed, O(log n)
    per row and replicate, then added with the event's weight (Harrell) or weight / G(T_i-)^2 (Uno;
    ``G_ev[ev_pos[k]]`` for the k-th event). Each tree node holds the integer counts of a block of
    ``FENWICK_BLOCK`` replicates (one sweep per block; exact in any order)."""
    n, B = W.shape
    uno = G_ev.shape[0] > 0
    for j0 in range(0, B, FENWICK_BLOCK):
        nb = min(FENWICK_BLOCK, B - j0)
        w = np.empty((n, nb), dtype=np.int32)           # contiguous int32 blocks: ~3x faster than strided
        total = np.zeros(nb, dtype=np.int64)
        bad = False
        for s in range(n):
            o = order[s]
            for j in range(nb):
                x = W[o, j0 + j]
                w[s, j] = np.int32(x)
                bad |= (w[s, j] != x) | (x < 0)
                total[j] += w[s, j]
        if bad:
            raise ValueError("frequency weights must be non-negative whole numbers (bootstrap counts)")
        if total.max() >= 2 ** 31:
            raise ValueError("frequency weights must sum to less than 2**31 (int32 counts)")
        lo = np.empty(nb, dtype=np.int32)
        tree = np.zeros((m + 1, nb), dtype=np.int32)
        at_rank = np.zeros((n_tied, nb), dtype=np.int32)
        inserted = np.zeros(nb, dtype=np.int32)
        p = 0
        k = 0
        while p < n:
            q = run_end[p]
            if q == p:
                q = p + 1
            else:
                for s in range(p, q):    # events at one time: queried before any of them is inserted
                    r = rank[s]
                    for j in range(nb):
                        lo[j] = 0
                    i = r
                    while i > 0:
                        for j in range(nb):
                            lo[j] += tree[i, j]
                        i -= i & (-i)
                    t = tie_slot[r]
                    for j in range(nb):
                        a = float(w[s, j])
                        out[0, 0, j0 + j] += a * lo[j]
                        out[0, 2, j0 + j] += a * inserted[j]
                        if t >= 0:
                            out[0, 1, j0 + j] += a * at_rank[t, j]
                    if uno:
                        g = ev_pos[k]
                        for j in range(nb):
                            if w[s, j] == 0:     # not in this resample: its G may be 0, its weight is 0
                                continue
                            gg = G_ev[g, j0 + j]  # > 0 for an event in the resample (it is at risk)
                            a = w[s, j] / (gg * gg)
                            out[1, 0, j0 + j] += a * lo[j]
                            out[1, 2, j0 + j] += a * inserted[j]
                            if t >= 0:
                                out[1, 1, j0 + j] += a * at_rank[t, j]
                    k += 1
            for s in range(p, q):
                r = rank[s]
                t = tie_slot[r]
                for j in range(nb):
                    inserted[j] += w[s, j]
                if t >= 0:
                    for j in range(nb):
                        at_rank[t, j] += w[s, j]
                i = r + 1
                while i <= m:
                    for j in range(nb):
                        tree[i, j] += w[s, j]
                    i += i & (-i)
            p = q


class _Concordance:
    """Harrell's and Uno's C of one risk score for weight matrices (the pairs of ``concordance_index``:
    i an event, T_j > T_i or T_j == T_i with j censored; tied risks count 1/2), by one sort shared across
    replicates and a Fenwick-tree sweep per replicate batch (:func:`_pair_sums`). Rows are sorted by time
    (events first at a tie) and ``ev_rows`` are the event rows in that order."""

    def __init__(self, time, event, risk, ev_rows):
        n = len(time)
        self.order = np.lexsort((event, -time))
        ts, es = time[self.order], event[self.order]
        vals, rank = np.unique(risk[self.order], return_inverse=True)
        self.rank, self.m = rank.astype(np.int64), len(vals)
        tied = np.bincount(rank, minlength=len(vals)) > 1
        self.tie_slot, self.n_tied = np.where(tied, np.cumsum(tied) - 1, -1), int(tied.sum())
        ev = np.flatnonzero(es == 1)
        self.ev_pos = np.searchsorted(ev_rows, self.order[ev])   # each anchor's place among ev_rows
        self.run_end = np.arange(n)
        if ev.size:
            first = np.flatnonzero(np.r_[True, ts[ev][1:] != ts[ev][:-1]])   # first event of each event time
            self.run_end[ev[first]] = ev[np.r_[first[1:], ev.size] - 1] + 1
        self.width = n

    def sums(self, W: np.ndarray, G_ev: np.ndarray | None) -> np.ndarray:
        """(2, 3, B): (concordant, tied-risk, comparable) weighted pair sums of Harrell's C and, given the
        censoring survival G(T_i-) of ``ev_rows`` (``G_ev``), of Uno's."""
        out = np.zeros((2, 3, W.shape[1]))
        _pair_sums(W, self.order, self.rank, self.run_end, self.m, self.tie_slot, self.n_tied,
                   np.empty((0, W.shape[1])) if G_ev is None else G_ev, self.ev_pos, out)
        return out


@dataclass
class _Horizon:
    t: float
    n_before: int            # rows with T <= t (rows are time-sorted)
    cases: np.ndarray        # positions among the time-sorted events with T <= t, sorted by risk
    F_cases: np.ndarray
    ctrl: np.ndarray         # rows with T > t sorted by risk
    F_ctrl: np.ndarray
    less: np.ndarray         # per case: # controls with smaller risk
    leq: np.ndarray
    F: np.ndarray            # predicted risk at t (all rows)


class SurvivalWeights:
    """Survival metrics of fixed predictions for frequency-weight matrices (one row per replicate).

    ``risk``: (n, len(times)) predicted event probabilities F(t|x); ``score``: (n,) risk score for the
    C-indices. ``metrics`` selects from ``"harrell", "uno", "auc", "brier", "ipa", "ibs", "oe",
    "slope"``; ``ties`` ("efron" or "breslow") is the Cox likelihood of the calibration slope.
    :meth:`evaluate` returns a dict {(metric, method, time, threshold): array (B,)}.
    """

    ALL = ("harrell", "uno", "auc", "brier", "ipa", "ibs", "oe", "slope")

    def __init__(self, time, event, risk, score, times, metrics: Sequence[str] = ALL, ties: str = "breslow"):
        if ties not in ("efron", "breslow"):
            raise ValueError(f"ties must be 'efron' or 'breslow', got {ties!r}")
        self.ties = ties
        time, event = np.asarray(time, float), np.asarray(event, int)
        # rows are kept in time order (events first at a tie): :meth:`evaluate` permutes the weights once,
        # and the gathers of every metric then walk the work matrix forwards (or backwards) in memory
        self._perm = np.lexsort((1 - event, time))
        self.time, self.event = time[self._perm], event[self._perm]
        self.risk, self.score = np.asarray(risk, float)[self._perm], np.asarray(score, float)[self._perm]
        self.times = [float(t) for t in times]
        unknown = set(metrics) - set(self.ALL)
        if unknown:
            raise ValueError(f"unknown survival metric(s) {sorted(unknown)}; choose from {self.ALL}")
        self.metrics = tuple(m for m in self.ALL if m in metrics)
        n = len(self.time)
        self.n = n
        t, e = self.time, self.event
        self.ev_rows = np.flatnonzero(e == 1)                                # time-sorted events
        self.conc = _Concordance(t, e, self.score, self.ev_rows) if {"harrell", "uno"} & set(self.metrics) else None
        self.horizons = []
        for k, h in enumerate(self.times):
            n_before = int(np.searchsorted(t, h, side="right"))
            F = self.risk[:, k]
            n_cases = int(np.searchsorted(t[self.ev_rows], h, side="right"))
            cases = np.argsort(F[self.ev_rows[:n_cases]], kind="stable")
            ctrl = n_before + np.argsort(F[n_before:], kind="stable")
            fk, fc = F[self.ev_rows[cases]], F[ctrl]
            self.horizons.append(_Horizon(h, n_before, cases, fk, ctrl, fc, np.searchsorted(fc, fk, "left"),
                                          np.searchsorted(fc, fk, "right"), F))
        # Kaplan-Meier read-outs: censoring G(T_i-) at each event row and G(t), event-free S(t) at each horizon
        at_h = np.array([hz.n_before for hz in self.horizons], dtype=np.int64)
        self._at_G = np.concatenate([self.ev_rows, at_h])
        self._at_G_order = np.argsort(self._at_G, kind="stable")
        self._at_h, self._at_h_order = at_h, np.argsort(at_h, kind="stable")
        self._censored, self._evented = e == 0, e == 1                     # the two curves' jump rows
        if "slope" in self.metrics or "oe" in self.metrics:
            self._tsort = np.argsort(t, kind="stable")
            ts = t[self._tsort]
            ev_s = np.flatnonzero(e[self._tsort] == 1)
            self._ev_times = np.unique(ts[ev_s])                      # distinct event times (groups)
            self._group_start = np.searchsorted(ts, self._ev_times, side="left")   # first row of the risk set
            self._deaths = _indicator(ev_s, np.searchsorted(self._ev_times, ts[ev_s]), (n, len(self._ev_times)))
            self._distinct = []
            for hz in self.horizons:
                vals, inv = np.unique(hz.F, return_inverse=True)
                self._distinct.append(_indicator(np.arange(n), inv, (n, len(vals))))
        self._beta0 = {}

    # ------------------------------------------------------------------ helpers
    def _cox_slope(self, W: np.ndarray, x: np.ndarray, beta0: float) -> np.ndarray:
        """Cox coefficient of x (Efron or Breslow ties) for each weight column, Newton-Raphson to convergence.

        With frequency weights, a group of d tied deaths (duplicates included) contributes, for
        l = 0..d-1 and c = l/d (Efron) or c = 0 (Breslow), the terms of (S1 - c D1) / (S0 - c D0), where
        S are sums over the risk set and D over the group's deaths - the partial likelihood of the
        resampled rows (``survival::coxph``; ``statsmodels`` PHReg)."""
        o = self._tsort
        Wt, xt = W[o], x[o][:, None]
        st, Dg = self._group_start, self._deaths.T
        d = Dg @ Wt                                   # deaths per event-time group and replicate
        sum_dx = (Dg @ (Wt * xt)).sum(0)
        nd = d.sum(0)
        beta = np.full(W.shape[1], beta0)
        efron = self.ties == "efron"
        for _ in range(50):
            ex = Wt * np.exp(np.clip(xt * beta[None, :], -700, 700))
            exx = ex * xt
            exxx = exx * xt
            s0 = np.cumsum(ex[::-1], axis=0)[::-1][st]
            s1 = np.cumsum(exx[::-1], axis=0)[::-1][st]
            s2 = np.cumsum(exxx[::-1], axis=0)[::-1][st]
            U = sum_dx.copy()
            I = np.zeros_like(U)
            if efron:
                d0, d1, d2 = Dg @ ex, Dg @ exx, Dg @ exxx
                for l in range(int(d.max()) if d.size else 0):
                    on = d > l
                    c = np.where(on, l / np.where(on, d, 1.0), 0.0)
                    a0 = np.where(on, s0 - c * d0, 1.0)
                    m1 = (s1 - c * d1) / a0
                    U -= np.where(on, m1, 0.0).sum(0)
                    I += np.where(on, (s2 - c * d2) / a0 - m1 * m1, 0.0).sum(0)
            else:
                a0 = np.where(d > 0, s0, 1.0)         # groups absent from the replicate
                m1 = s1 / a0
                U -= (d * m1).sum(0)
                I += (d * (s2 / a0 - m1 * m1)).sum(0)
            step = np.where(I > 0, U / np.where(I > 0, I, 1.0), 0.0)
            beta = beta + step
            if np.all(np.abs(step) < 1e-10 * np.maximum(1.0, np.abs(beta))):
                break
        return np.where(nd > 0, beta, np.nan)

    def evaluate(self, W: np.ndarray) -> dict:
        """{(metric, method, time): values (B,)} for frequency weights W of shape (n, B)."""
        W = np.asarray(W, float)[self._perm]
        nb = W.sum(0)
        n_ev = len(self.ev_rows)
        out = {}
        G = np.empty((len(self._at_G), W.shape[1]))
        _km_sweep(W, nb, self.time, self._censored, self._at_G, self._at_G_order, G)
        np.maximum(G, 1e-300, out=G)      # G = 0 only past a resample's last (censored) time, at rows of weight 0
        G_ev, G_t = G[:n_ev], G[n_ev:]
        ms = set(self.metrics)
        if self.conc is not None:
            sums = self.conc.sums(W, G_ev if "uno" in ms else None)
            for j, metric, name in ((0, "harrell", "Harrell"), (1, "uno", "Uno (n/G2)")):
                if metric in ms:
                    conc, tie, comp = sums[j]
                    with np.errstate(divide="ignore", invalid="ignore"):
                        out[("C-index", name, np.nan, np.nan)] = np.where(comp > 0, (conc + 0.5 * tie) / comp, np.nan)
        if not ms - {"harrell", "uno"}:
            return out
        WG = W[self.ev_rows]
        WG /= G_ev                                                            # case weights w / G(T-)
        S_t = None
        if {"ipa", "oe"} & ms:
            S_t = np.empty((len(self.horizons), W.shape[1]))
            _km_sweep(W, nb, self.time, self._evented, self._at_h, self._at_h_order, S_t)
        briers = []
        for k, hz in enumerate(self.horizons):
            sums = np.empty((5, W.shape[1]))
            _horizon_sums(W, WG, hz.ctrl, hz.F_ctrl, hz.cases, hz.F_cases, hz.less, hz.leq, sums)
            num, wcase, n_ctrl, b_case, b_ctrl = sums
            ok = n_ctrl > 0                                                  # t < last follow-up
            Gt = G_t[k]
            if "auc" in ms:
                den = wcase * n_ctrl
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[("AUC(t)", "IPCW cumulative/dynamic (KM censoring)", hz.t, np.nan)] = np.where(
                        den > 0, num / den, np.nan)
            if ms & {"brier", "ipa", "ibs"}:
                with np.errstate(divide="ignore", invalid="ignore"):
                    b = np.where(ok, (b_case + b_ctrl / Gt) / nb, np.nan)
                briers.append(b)
                if "brier" in ms:
                    out[("Brier", "IPCW (KM censoring)", hz.t, np.nan)] = b
                if "ipa" in ms:
                    p0 = 1.0 - S_t[k]
                    with np.errstate(divide="ignore", invalid="ignore"):
                        b0 = ((1 - p0) ** 2 * wcase + p0 ** 2 * n_ctrl / Gt) / nb
                        out[("IPA", "1 - Brier/Brier(Kaplan-Meier)", hz.t, np.nan)] = np.where(ok, 1 - b / b0, np.nan)
            if ms & {"oe", "slope"}:
                valid = ok & ((self._distinct[k].T @ W > 0).sum(0) >= 3)
                if "oe" in ms:
                    O = 1.0 - S_t[k]
                    with np.errstate(divide="ignore", invalid="ignore"):
                        oe = np.where(valid, O / (hz.F @ W / nb), np.nan)
                    out[("O/E", "1-KM(t) / mean predicted risk", hz.t, np.nan)] = oe
                if "slope" in ms:
                    x = np.log(-np.log1p(-hz.F))
                    if k not in self._beta0:
                        self._beta0[k] = float(self._cox_slope(np.ones((self.n, 1)), x, 1.0)[0])
                    beta = self._cox_slope(W, x, self._beta0[k])
                    out[("slope", f"Cox on cloglog(F), {self.ties.capitalize()} ties", hz.t, np.nan)] = \
                        np.where(valid, beta, np.nan)
        if "ibs" in ms and len(self.times) > 1:
            tt = np.asarray(self.times)
            Bm = np.column_stack(briers)
            out[("IBS", f"IPCW, step rule over [{tt[0]:g}, {tt[-1]:g}]", tt[-1], np.nan)] = \
                (Bm[:, :-1] @ np.diff(tt)) / (tt[-1] - tt[0])
        return out

    @property
    def width(self) -> int:
        """Columns of the widest work matrix (to size chunks)."""
        return max(self.conc.width if self.conc is not None else 0, self.n)


class BinaryWeights:
    """Binary-outcome metrics of fixed predicted probabilities for frequency-weight matrices.

    Metrics: AUC (Mann-Whitney, ties 1/2), Brier, IPA (1 - Brier/Brier(prevalence)), CITL, logistic
    recalibration intercept and slope, O/E and net benefit at ``thresholds`` (test-positive when
    p >= pt and p > 0, as ``dcurves``). A replicate with one outcome class is undefined (NaN).
    """

    def __init__(self, y, prob, thresholds: Sequence[float] = ()):
        self.y, self.p = np.asarray(y, float), np.asarray(prob, float)
        self.n = len(self.y)
        pos, neg = np.flatnonzero(self.y == 1), np.flatnonzero(self.y == 0)
        self.pos, self.neg_perm = pos, neg[np.argsort(self.p[neg], kind="stable")]
        pn = self.p[self.neg_perm]
        self.less = np.searchsorted(pn, self.p[pos], "left")
        self.leq = np.searchsorted(pn, self.p[pos], "right")
        self.thresholds = [float(t) for t in thresholds]
        if self.thresholds:
            th = np.asarray(self.thresholds)
            test_pos = (self.p[:, None] >= th[None, :]) & (self.p[:, None] > 0)
            odds = th / (1 - th)
            self._nb = test_pos * (self.y[:, None] - (1 - self.y[:, None]) * odds[None, :])
        with np.errstate(divide="ignore"):
            self.lp = np.log(self.p / (1 - self.p))
        self._start = None
        self.width = self.n

    def _logistic(self, W: np.ndarray, start: np.ndarray) -> np.ndarray:
        """(intercept, slope) of y ~ logit(p) and the CITL c of y ~ offset(logit p), Newton per column."""
        y, lp = self.y[:, None], self.lp[:, None]
        a0 = np.full(W.shape[1], start[0])
        a1 = np.full(W.shape[1], start[1])
        for _ in range(50):
            mu = 1 / (1 + np.exp(-(a0 + a1 * lp)))
            v = W * mu * (1 - mu)
            r = W * (y - mu)
            g0, g1 = r.sum(0), self.lp @ r
            h00, h01, h11 = v.sum(0), self.lp @ v, (self.lp * self.lp) @ v
            det = h00 * h11 - h01 * h01
            s0 = (h11 * g0 - h01 * g1) / det
            s1 = (h00 * g1 - h01 * g0) / det
            a0, a1 = a0 + s0, a1 + s1
            if np.all(np.abs(s0) < 1e-10 * np.maximum(1, np.abs(a0))) and \
                    np.all(np.abs(s1) < 1e-10 * np.maximum(1, np.abs(a1))):
                break
        c = np.full(W.shape[1], start[2])
        for _ in range(50):
            mu = 1 / (1 + np.exp(-(lp + c)))
            step = (W * (y - mu)).sum(0) / (W * mu * (1 - mu)).sum(0)
            c = c + step
            if np.all(np.abs(step) < 1e-10 * np.maximum(1, np.abs(c))):
                break
        return np.vstack([a0, a1, c])

    def evaluate(self, W: np.ndarray) -> dict:
        """{(metric, method, threshold or NaN): values (B,)} for frequency weights W of shape (n, B)."""
        W = np.asarray(W, float)
        nb = W.sum(0)
        n1 = self.y @ W
        n0 = nb - n1
        ok = (n1 > 0) & (n0 > 0)
        out = {}
        csn = _cumsum0(W[self.neg_perm])
        h = 0.5 * (csn[self.less] + csn[self.leq])
        with np.errstate(divide="ignore", invalid="ignore"):
            out[("AUC", "Mann-Whitney", np.nan, np.nan)] = np.where(ok, (W[self.pos] * h).sum(0) / (n1 * n0), np.nan)
            b = ((self.y - self.p) ** 2 @ W) / nb
            prev = n1 / nb
            out[("Brier", "mean squared error", np.nan, np.nan)] = np.where(ok, b, np.nan)
            ipa = np.where(ok, 1 - b / (prev * (1 - prev)), np.nan)
            out[("IPA", "1 - Brier/Brier(prevalence)", np.nan, np.nan)] = ipa
            out[("O/E", "mean(y)/mean(p)", np.nan, np.nan)] = np.where(ok, n1 / (self.p @ W), np.nan)
        if np.all(np.isfinite(self.lp)) and np.unique(self.p).size > 1:
            if self._start is None:
                self._start = self._logistic(np.ones((self.n, 1)), np.zeros(3))[:, 0]
            cal = self._logistic(np.where(ok[None, :], W, 1.0), self._start)
            for j, name in enumerate(("intercept", "slope", "CITL")):
                out[(name, "logistic recalibration", np.nan, np.nan)] = np.where(ok, cal[j], np.nan)
        if self.thresholds:
            nbm = (self._nb.T @ W) / nb
            for j, pt in enumerate(self.thresholds):
                out[("net benefit", "test positive if p >= threshold (dcurves)", np.nan, pt)] = \
                    np.where(ok, nbm[j], np.nan)
        return out


# --------------------------------------------------------------------------------------- the bootstrap
def bca_interval(reps: np.ndarray, estimate: float, jack: np.ndarray, conf_level: float) -> tuple[float, float]:
    """BCa interval from bootstrap replicates, the estimate and jackknife values (Efron & Tibshirani
    1993 eq. 14.10-14.15; the same formulas and percentile rule as ``scipy.stats.bootstrap``).
    NaN when undefined (estimate outside the replicates' range, or no jackknife spread)."""
    reps = reps[np.isfinite(reps)]
    jack = jack[np.isfinite(jack)]
    if reps.size < 2 or jack.size < 3 or not np.isfinite(estimate):
        return np.nan, np.nan
    pct = (np.count_nonzero(reps < estimate) + np.count_nonzero(reps <= estimate)) / (2 * reps.size)
    z0 = stats.norm.ppf(pct)
    u = (jack.size - 1) * (jack.mean() - jack)
    den = np.sum(u ** 2) / jack.size ** 2
    if not np.isfinite(z0) or den <= 0:
        return np.nan, np.nan
    a = np.sum(u ** 3) / jack.size ** 3 / (6 * den ** 1.5)
    za = stats.norm.ppf((1 - conf_level) / 2)
    lo = stats.norm.cdf(z0 + (z0 + za) / (1 - a * (z0 + za)))
    hi = stats.norm.cdf(z0 + (z0 - za) / (1 - a * (z0 - za)))
    return float(np.percentile(reps, 100 * lo)), float(np.percentile(reps, 100 * hi))


def _jackknife_weights(n: int, seed: int, start: int, stop: int, n_groups: int) -> np.ndarray:
    """Columns start..stop-1 of the (delete-one or delete-group) jackknife weight matrix (n x G)."""
    W = np.ones((n, stop - start))
    if n_groups >= n:
        W[np.arange(start, stop), np.arange(stop - start)] = 0.0
    else:
        group = np.random.default_rng([seed, 2 ** 31]).permutation(n) % n_groups
        W[group[:, None] == np.arange(start, stop)[None, :]] = 0.0
    return W


@dataclass
class BootstrapResult:
    """Estimates, bootstrap replicates and jackknife values of every (model, metric, method, time).

    ``repr`` says what was resampled; :meth:`to_frame` (= :meth:`table`) is the tidy table with
    percentile and BCa rows, :meth:`summary` one row per statistic (BCa interval where available, else
    percentile); :meth:`contrasts` the paired differences between models.
    """

    keys: list                     # (model, metric, method, time, threshold)
    estimate: np.ndarray           # (K,)
    replicates: np.ndarray         # (B, K)
    jackknife: np.ndarray | None   # (G, K) or None
    B: int
    seed: int
    strata: bool = False
    info: dict = field(default_factory=dict)

    def _row(self, k, est, reps, jack, conf_level, ci):
        model, metric, method, t, pt = k
        v = reps[np.isfinite(reps)]
        alpha = 1 - conf_level
        base = dict(model=model, metric=metric, time=t, threshold=pt, estimate=est, engine="python",
                    se=float(np.std(v, ddof=1)) if v.size > 1 else np.nan, B=int(v.size),
                    B_failed=int(reps.size - v.size))
        rows = []
        if "percentile" in ci:
            lo, hi = (np.quantile(v, [alpha / 2, 1 - alpha / 2]) if v.size else (np.nan, np.nan))
            rows.append(dict(base, lower=float(lo), upper=float(hi),
                             method=f"{method}; percentile bootstrap ({self._label(v.size)})"))
        if "bca" in ci and jack is not None:
            lo, hi = bca_interval(reps, est, jack, conf_level)
            rows.append(dict(base, lower=lo, upper=hi, method=f"{method}; BCa bootstrap ({self._label(v.size)})"))
        return rows

    def _label(self, ok: int) -> str:
        return f"B={self.B}" + (f", {self.B - ok} undefined" if ok < self.B else "")

    def __repr__(self) -> str:
        models = list(dict.fromkeys(k[0] for k in self.keys))
        metrics = list(dict.fromkeys(k[1] for k in self.keys))
        failed = int((~np.isfinite(self.replicates)).any(axis=0).sum())
        return (f"Bootstrap (B={self.B}, seed {self.seed}{', stratified' if self.strata else ''}"
                f"{', BCa' if self.jackknife is not None else ''}): {len(self.keys)} statistics of "
                f"{len(models)} model(s) {models}\nmetrics: {', '.join(map(str, metrics))}"
                + (f"\n{failed} statistic(s) undefined in some replicates" if failed else ""))

    def to_frame(self, conf_level: float = 0.95) -> pd.DataFrame:
        """The tidy table (:meth:`table`, percentile and BCa rows)."""
        return self.table(conf_level)

    def summary(self, conf_level: float = 0.95) -> pd.DataFrame:
        """One row per (model, metric, time, threshold): the BCa interval when computed, else percentile."""
        return self.table(conf_level, ci=("bca",) if self.jackknife is not None else ("percentile",))

    def table(self, conf_level: float = 0.95, ci: Sequence[str] = ("percentile", "bca")) -> pd.DataFrame:
        """Tidy rows: model, metric, time, threshold, estimate, se (bootstrap SD), lower, upper, method,
        engine, B (defined replicates), B_failed."""
        rows = []
        for j, k in enumerate(self.keys):
            rows += self._row(k, self.estimate[j], self.replicates[:, j],
                              None if self.jackknife is None else self.jackknife[:, j], conf_level, ci)
        return pd.DataFrame(rows)

    def contrasts(self, conf_level: float = 0.95, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """Paired differences between every pair of models on the same replicates (model ``"A vs B"``,
        metric ``"<metric> difference"``): percentile CI and the p-value of the inverted percentile
        interval, 2 (1 + min(#{diff* <= 0}, #{diff* >= 0})) / (B + 1) (Davison & Hinkley 1997, eq. 4.11),
        with |diff*| <= 1e-12 x max |diff*| counted as 0."""
        models = list(dict.fromkeys(k[0] for k in self.keys))
        index = {k: j for j, k in enumerate(self.keys)}
        alpha = 1 - conf_level
        rows = []
        for i, a in enumerate(models):
            for b in models[i + 1:]:
                for k in self.keys:
                    if k[0] != a or (metrics is not None and k[1] not in metrics):
                        continue
                    kb = (b,) + k[1:]
                    if kb not in index:
                        continue
                    d = self.replicates[:, index[k]] - self.replicates[:, index[kb]]
                    v = d[np.isfinite(d)]
                    est = self.estimate[index[k]] - self.estimate[index[kb]]
                    if v.size == 0:
                        continue
                    lo, hi = np.quantile(v, [alpha / 2, 1 - alpha / 2])
                    # a difference within rounding of 0 is 0 (two models ranking alike differ by ~1e-17,
                    # whose sign would otherwise depend on the order of summation)
                    tol = ZERO_DIFFERENCE * max(1.0, float(np.max(np.abs(v))))
                    p = min(1.0, 2 * (1 + min(np.sum(v <= tol), np.sum(v >= -tol))) / (v.size + 1))
                    rows.append(dict(model=f"{a} vs {b}", metric=f"{k[1]} difference", time=k[3], threshold=k[4],
                                     estimate=est,
                                     se=float(np.std(v, ddof=1)) if v.size > 1 else np.nan, lower=float(lo),
                                     upper=float(hi), p_value=float(p), engine="python", B=int(v.size),
                                     B_failed=int(d.size - v.size),
                                     method=f"{k[2]}; paired percentile bootstrap ({self._label(v.size)})"))
        return pd.DataFrame(rows)


def _run(evaluators: Mapping[str, object], n: int, B: int, seed, strata, bca: bool, jackknife_max: int,
         chunk_elements: int, progress: bool) -> BootstrapResult:
    seed = _seed(seed)
    width = max(ev.width for ev in evaluators.values())
    chunk = max(FENWICK_BLOCK, (chunk_elements // max(width, 1)) // FENWICK_BLOCK * FENWICK_BLOCK)

    def evaluate_all(W):
        res = {}
        for name, ev in evaluators.items():
            for key, v in ev.evaluate(W).items():
                res[(name,) + key] = v
        return res

    full = evaluate_all(np.ones((n, 1)))
    keys = list(full)
    estimate = np.array([full[k][0] for k in keys])

    def collect(make_weights, total) -> np.ndarray:
        out = np.empty((total, len(keys)))
        starts = range(0, total, chunk)
        if progress:
            from tqdm.auto import tqdm
            starts = tqdm(starts, total=len(starts), unit="chunk", desc=f"bootstrap ({total} replicates)")
        for s in starts:
            e = min(total, s + chunk)
            res = evaluate_all(make_weights(s, e))
            out[s:e] = np.column_stack([res[k] for k in keys])
        return out

    # the chunks' matrix-vector products are memory-bound: BLAS threads only contend (with the other
    # chunk work and other processes; 10-20x slower on a loaded 2-core machine, benchmarks/bench_bootstrap.py)
    with threadpool_limits(limits=1, user_api="blas"):
        reps = collect(lambda s, e: resample_counts(resample_indices(n, seed, s, e, strata), n), B)
        jack = None
        if bca:
            g = min(n, jackknife_max)
            jack = collect(lambda s, e: _jackknife_weights(n, seed, s, e, g), g)
    return BootstrapResult(keys, estimate, reps, jack, B, seed, strata is not None,
                           info={"chunk": chunk, "jackknife_groups": min(n, jackknife_max) if bca else 0})


def bootstrap_survival(time, event, risks: Mapping[str, np.ndarray], times: Sequence[float],
                       scores: Mapping[str, np.ndarray] | None = None, B: int = 2000, seed=None,
                       metrics: Sequence[str] = SurvivalWeights.ALL, ties: str = "breslow", strata=None,
                       bca: bool = True, jackknife_max: int = JACKKNIFE_MAX, chunk_elements: int = CHUNK_ELEMENTS,
                       progress: bool = False) -> BootstrapResult:
    """Vectorised bootstrap of survival metrics for several models on the same replicates.

    ``risks``: {model: (n, len(times)) predicted F(t|x)}; ``scores``: {model: (n,) risk score} for the
    C-indices (default: the risk at the last time). Inputs are assumed validated (``score_survival``
    validates them). Returns a :class:`BootstrapResult` (``.table()``, ``.contrasts()``).
    """
    if B < 1:
        raise ValueError(f"bootstrap must be a positive number of replicates, got {B}")
    time, event = np.asarray(time, float), np.asarray(event, int)
    ev = {}
    for name, r in risks.items():
        r = np.asarray(r, float)
        s = r[:, -1] if scores is None or name not in scores else np.asarray(scores[name], float)
        ev[name] = SurvivalWeights(time, event, r, s, times, metrics, ties)
    return _run(ev, len(time), int(B), seed, strata, bca, jackknife_max, chunk_elements, progress)


def bootstrap_binary(y, predictions: Mapping[str, np.ndarray], B: int = 2000, seed=None,
                     thresholds: Sequence[float] = (), strata=None, bca: bool = True,
                     jackknife_max: int = JACKKNIFE_MAX, chunk_elements: int = CHUNK_ELEMENTS,
                     progress: bool = False) -> BootstrapResult:
    """Vectorised bootstrap of binary-outcome metrics for several models on the same replicates."""
    if B < 1:
        raise ValueError(f"bootstrap must be a positive number of replicates, got {B}")
    y = np.asarray(y, float)
    ev = {name: BinaryWeights(y, p, thresholds) for name, p in predictions.items()}
    return _run(ev, len(y), int(B), seed, strata, bca, jackknife_max, chunk_elements, progress)
