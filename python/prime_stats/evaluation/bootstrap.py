"""Vectorised bootstrap of validation metrics: every replicate at once, as frequency weights.

A bootstrap replicate of n patients is a vector of counts w (how often each patient was drawn), so
every metric of fixed predictions is a *weighted* re-evaluation of the same sorted data. This module
sorts once, then evaluates a whole chunk of replicates (a B_chunk x n weight matrix) with cumulative
sums, gathers and matrix products, and the C-indices with one numba Fenwick-tree sweep (O(n log n) per
replicate) - no per-replicate Python loop - and gives numbers identical (to
rounding, 1e-12; ``tests/python/test_eval_bootstrap.py``) to calling the per-replicate functions of
:mod:`.discrimination`, :mod:`.overall`, :mod:`.calibration` and :mod:`.decision` on the resampled rows.
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
class _KaplanMeier:
    """Per-replicate (weighted) Kaplan-Meier of the events or of the censorings (reverse KM) on the
    original data's distinct times; a time absent from a replicate contributes a factor of exactly 1,
    so every replicate's curve is bit-identical to the unweighted KM of its resampled rows
    (``CensoringKM`` and ``km_risk``). Rows must be sorted by time (as :class:`SurvivalWeights` keeps them)."""

    def __init__(self, time: np.ndarray, event: np.ndarray, censoring: bool):
        jump = event == 0 if censoring else event == 1
        self.u = np.unique(time[jump])
        n = len(time)
        self._jump = _indicator(np.flatnonzero(jump), np.searchsorted(self.u, time[jump]), (n, len(self.u)))
        self._first = np.searchsorted(time, self.u, side="left")   # T >= u from here (distinct, increasing)
        if censoring:  # events at a censoring time leave its risk set first (survival/prodlim convention)
            ev = event == 1
            at_u = np.isin(time, self.u) & ev
            self._ties = _indicator(np.flatnonzero(at_u), np.searchsorted(self.u, time[at_u]), (n, len(self.u)))
        else:
            self._ties = None

    def surv(self, W: np.ndarray) -> np.ndarray:
        """S_b(u) at each distinct jump time (len(u) x B) for weights W (n x B)."""
        if not len(self.u):
            return np.ones((0, W.shape[1]))
        d = self._jump.T @ W
        seg = np.add.reduceat(W, self._first, axis=0)                # rows from one jump time to the next
        at_risk = np.cumsum(seg[::-1], axis=0)[::-1]                  # integer counts: exact in any order
        if self._ties is not None:
            at_risk = at_risk - self._ties.T @ W
        with np.errstate(divide="ignore", invalid="ignore"):
            h = np.where(d > 0, d / at_risk, 0.0)
        return np.cumprod(1.0 - h, axis=0)

    def at(self, S: np.ndarray, s, left: bool = False) -> np.ndarray:
        """S_b(s) (right-continuous) or S_b(s-) (``left``) for times ``s``: len(s) x B."""
        idx = np.searchsorted(self.u, np.asarray(s, float), side="left" if left else "right") - 1
        S1 = np.concatenate([np.ones((1, S.shape[1])), S], axis=0)
        return S1[idx + 1]


@njit(cache=True, nogil=True)
def _pair_sums(Wp, rank, run_end, m, less, tie, comp):
    """Weighted comparable-pair sums of every event, for all replicates at once (numba).

    ``Wp`` (n x B): frequency weights in the processing order (time descending, censorings before events
    at a tied time); ``rank``: dense 0-based rank of the risk score; ``run_end[p]``: for the first event
    of a time, one past the last event at that time (``p`` for every other position). Walking that order,
    the rows already inserted into a Fenwick (binary indexed) tree over risk ranks are exactly the rows
    comparable with the next event time's events (T_j > T_i, or T_j == T_i with j censored), so per event
    ``less`` = sum of w_j with r_j < r_i, ``tie`` = with r_j == r_i and ``comp`` = all of them: O(n log n)
    per replicate. Each tree node holds the integer counts of a block of ``FENWICK_BLOCK`` replicates
    (one sweep per block; exact in any order)."""
    n, B = Wp.shape
    n_ev = less.shape[0]
    for j0 in range(0, B, FENWICK_BLOCK):
        nb = min(FENWICK_BLOCK, B - j0)
        w = np.empty((n, nb), dtype=np.int32)           # contiguous int32 blocks: ~3x faster than strided
        for s in range(n):
            for j in range(nb):
                x = Wp[s, j0 + j]
                w[s, j] = np.int32(x)
                if w[s, j] != x or x < 0:
                    raise ValueError("frequency weights must be non-negative whole numbers (bootstrap counts)")
        lo = np.zeros((n_ev, nb), dtype=np.int32)
        ti, co = np.empty((n_ev, nb), dtype=np.int32), np.empty((n_ev, nb), dtype=np.int32)
        tree = np.zeros((m + 1, nb), dtype=np.int32)
        at_rank = np.zeros((m, nb), dtype=np.int32)
        total = np.zeros(nb, dtype=np.int32)
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
                        ti[k, j] = at_rank[r, j]
                        co[k, j] = total[j]
                    i = r
                    while i > 0:
                        for j in range(nb):
                            lo[k, j] += tree[i, j]
                        i -= i & (-i)
                    k += 1
            for s in range(p, q):
                r = rank[s]
                for j in range(nb):
                    at_rank[r, j] += w[s, j]
                    total[j] += w[s, j]
                i = r + 1
                while i <= m:
                    for j in range(nb):
                        tree[i, j] += w[s, j]
                    i += i & (-i)
            p = q
        less[:, j0:j0 + nb] = lo
        tie[:, j0:j0 + nb] = ti
        comp[:, j0:j0 + nb] = co


class _Concordance:
    """Harrell's and Uno's C of one risk score for weight matrices (the pairs of ``concordance_index``:
    i an event, T_j > T_i or T_j == T_i with j censored; tied risks count 1/2), by one sort shared across
    replicates and a Fenwick-tree sweep per replicate batch (:func:`_pair_sums`)."""

    def __init__(self, time, event, risk):
        n = len(time)
        self.order = np.lexsort((event, -time))
        ts, es = time[self.order], event[self.order]
        vals, rank = np.unique(risk[self.order], return_inverse=True)
        self.rank, self.m = rank.astype(np.int64), len(vals)
        ev = np.flatnonzero(es == 1)
        self.events = self.order[ev]             # original row of each anchor, in the processing order
        self.run_end = np.arange(n)
        if ev.size:
            first = np.flatnonzero(np.r_[True, ts[ev][1:] != ts[ev][:-1]])   # first event of each event time
            self.run_end[ev[first]] = ev[np.r_[first[1:], ev.size] - 1] + 1
        self.width = n

    def counts(self, W: np.ndarray, anchors: Sequence[np.ndarray]):
        """(concordant, tied-risk, comparable) weighted pair sums for each anchor-weight matrix."""
        if W.shape[0] and W.sum(0).max() >= 2 ** 31:
            raise ValueError("frequency weights must sum to less than 2**31 (int32 counts)")
        less, tie, comp = (np.empty((len(self.events), W.shape[1]), dtype=np.int32) for _ in range(3))
        _pair_sums(W[self.order], self.rank, self.run_end, self.m, less, tie, comp)
        return [((A * less).sum(0), (A * tie).sum(0), (A * comp).sum(0)) for A in anchors]


@dataclass
class _Horizon:
    t: float
    cases: np.ndarray        # positions in the event list (time-sorted events with T <= t)
    ctrl: np.ndarray         # rows with T > t
    ctrl_perm: np.ndarray    # controls sorted by risk
    less: np.ndarray         # per case: # controls with smaller risk (index into the sorted controls)
    leq: np.ndarray
    F: np.ndarray            # predicted risk at t (all rows)
    is_ctrl: np.ndarray      # 1.0 for controls (full length: a matrix-vector product instead of a gather)
    F2_ctrl: np.ndarray      # F^2 for controls, 0 elsewhere


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
        self.gkm = _KaplanMeier(t, e, censoring=True)
        self.ekm = _KaplanMeier(t, e, censoring=False) if {"ipa", "oe"} & set(self.metrics) else None
        ev_rows = np.flatnonzero(e == 1)
        self.ev_rows = ev_rows[np.argsort(t[ev_rows], kind="stable")]
        self.conc = _Concordance(t, e, self.score) if {"harrell", "uno"} & set(self.metrics) else None
        self.horizons = []
        for k, h in enumerate(self.times):
            ncase = int(np.searchsorted(t[self.ev_rows], h, side="right"))
            ctrl = np.flatnonzero(t > h)
            F = self.risk[:, k]
            cp = ctrl[np.argsort(F[ctrl], kind="stable")]
            fc = F[cp]
            fk = F[self.ev_rows[:ncase]]
            is_ctrl = (t > h).astype(float)
            self.horizons.append(_Horizon(h, np.arange(ncase), ctrl, cp, np.searchsorted(fc, fk, "left"),
                                          np.searchsorted(fc, fk, "right"), F, is_ctrl, is_ctrl * F ** 2))
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
        out = {}
        G = self.gkm.surv(W)
        Gm_ev = self.gkm.at(G, self.time[self.ev_rows], left=True)          # G_b(T_i-) for events
        ms = set(self.metrics)
        if self.conc is not None:
            c = self.conc
            A = W[c.events]
            anchors, names = [], []
            if "harrell" in ms:
                anchors.append(A)
                names.append("Harrell")
            if "uno" in ms:
                gm = self.gkm.at(G, self.time[c.events], left=True)
                anchors.append(A / np.maximum(gm, 1e-300) ** 2)
                names.append("Uno (n/G2)")
            for name, (conc, tie, comp) in zip(names, c.counts(W, anchors)):
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[("C-index", name, np.nan, np.nan)] = np.where(comp > 0, (conc + 0.5 * tie) / comp, np.nan)
        We = W[self.ev_rows]
        WG = np.divide(We, Gm_ev, out=np.zeros_like(We), where=We > 0)      # case weights w / G(T-)
        S_ev = self.ekm.surv(W) if self.ekm is not None else None
        briers = []
        for k, hz in enumerate(self.horizons):
            n_ctrl = hz.is_ctrl @ W
            ok = n_ctrl > 0                                                  # t < last follow-up
            Gt = self.gkm.at(G, [hz.t])[0]
            WGk = WG[hz.cases]
            Fk = hz.F[self.ev_rows[hz.cases]]
            wcase = WGk.sum(0)
            if "auc" in ms:
                csc = _cumsum0(W[hz.ctrl_perm])
                h = 0.5 * (csc[hz.less] + csc[hz.leq])
                den = wcase * n_ctrl
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[("AUC(t)", "IPCW cumulative/dynamic (KM censoring)", hz.t, np.nan)] = np.where(
                        den > 0, (WGk * h).sum(0) / den, np.nan)
            if ms & {"brier", "ipa", "ibs"}:
                with np.errstate(divide="ignore", invalid="ignore"):
                    b = ((1 - Fk) ** 2 @ WGk + hz.F2_ctrl @ W / Gt) / nb
                b = np.where(ok, b, np.nan)
                briers.append(b)
                if "brier" in ms:
                    out[("Brier", "IPCW (KM censoring)", hz.t, np.nan)] = b
                if "ipa" in ms:
                    p0 = 1.0 - self.ekm.at(S_ev, [hz.t])[0]
                    with np.errstate(divide="ignore", invalid="ignore"):
                        b0 = ((1 - p0) ** 2 * wcase + p0 ** 2 * n_ctrl / Gt) / nb
                        out[("IPA", "1 - Brier/Brier(Kaplan-Meier)", hz.t, np.nan)] = np.where(ok, 1 - b / b0, np.nan)
            if ms & {"oe", "slope"}:
                valid = ok & ((self._distinct[k].T @ W > 0).sum(0) >= 3)
                if "oe" in ms:
                    O = 1.0 - self.ekm.at(S_ev, [hz.t])[0]
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
        interval, 2 (1 + min(#{diff* <= 0}, #{diff* >= 0})) / (B + 1) (Davison & Hinkley 1997, eq. 4.11)."""
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
                    p = min(1.0, 2 * (1 + min(np.sum(v <= 0), np.sum(v >= 0))) / (v.size + 1))
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
