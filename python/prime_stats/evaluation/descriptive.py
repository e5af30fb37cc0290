"""Descriptive statistics: Table 1 by cohort/centre and correlation matrices with p values.

:func:`table_one` summarises each variable by group and picks its test by type and distribution:

* categorical (non-numeric, boolean, categorical dtype, numeric with <= 2 distinct values, or
  named in ``categorical``): n (%) per level; Pearson chi-square (``chisq.test``, Yates
  correction for 2x2), or Fisher's exact test when any expected count is < 5 (``fisher.test``;
  exact for 2x2, Monte-Carlo p from 100,000 tables with fixed margins for larger tables);
* continuous: mean (SD) and Welch's t-test (``t.test``) / Welch's ANOVA (``oneway.test``) when
  every group looks normal, otherwise median [Q1, Q3] and Mann-Whitney (``wilcox.test``: exact
  p when both groups have < 50 values and no ties, else normal approximation with continuity
  correction) / Kruskal-Wallis (``kruskal.test``). Normality: Shapiro-Wilk p >= ``alpha`` in
  every group (``normality="shapiro"``) or |sample skewness| <= ``skew_threshold`` in every group
  (``normality="skewness"``); ``nonnormal`` forces the non-parametric route.

Standardised mean differences: continuous (m1 - m2) / sqrt((s1^2 + s2^2) / 2); categorical the
multinomial SMD of Yang & Dalton (2012), as R's tableone; with more than two groups the mean of
the pairwise SMDs. Missing values are counted per variable and excluded from its test.

:func:`correlation_matrix` gives Spearman or Pearson coefficients with p values (``cor.test``;
Spearman with the t approximation, ``exact=FALSE``) and Benjamini-Hochberg adjusted p values
over the distinct pairs (``p.adjust(method="BH")``).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

# the statistics; standardized_mean_difference is a building block of table_one's smd column
__all__ = ["TableOne", "table_one", "CorrelationResult", "correlation_matrix"]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _is_categorical(s: pd.Series, forced: set, name: str) -> bool:
    if name in forced:
        return True
    if s.dtype == bool or isinstance(s.dtype, pd.CategoricalDtype) or not pd.api.types.is_numeric_dtype(s):
        return True
    return s.dropna().nunique() <= 2


def _smd_continuous(a: np.ndarray, b: np.ndarray) -> float:
    pooled = np.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    return float(abs(a.mean() - b.mean()) / pooled) if pooled > 0 else 0.0


def _smd_categorical(a: pd.Series, b: pd.Series, levels: list) -> float:
    """Yang & Dalton (2012) multinomial SMD (reduces to the binary-proportion SMD for 2 levels)."""
    pa = np.array([(a == lv).mean() for lv in levels])[1:]
    pb = np.array([(b == lv).mean() for lv in levels])[1:]
    diff = pa - pb

    def cov(p):
        return np.diag(p) - np.outer(p, p)

    S = (cov(pa) + cov(pb)) / 2
    if diff.size == 0:
        return 0.0
    val = diff @ np.linalg.pinv(S) @ diff
    return float(np.sqrt(max(val, 0.0)))


def standardized_mean_difference(values: pd.Series, groups: pd.Series, categorical: bool) -> float:
    """SMD between groups (mean of the pairwise SMDs when there are more than two groups)."""
    ok = values.notna()
    v, g = values[ok], groups[ok]
    levels_g = list(pd.unique(g))
    if len(levels_g) < 2:
        return np.nan
    out = []
    for ga, gb in combinations(levels_g, 2):
        a, b = v[g == ga], v[g == gb]
        if len(a) < 2 or len(b) < 2:
            continue
        if categorical:
            out.append(_smd_categorical(a, b, sorted(pd.unique(v), key=str)))
        else:
            out.append(_smd_continuous(a.to_numpy(float), b.to_numpy(float)))
    return float(np.mean(out)) if out else np.nan


def _mann_whitney(a: np.ndarray, b: np.ndarray):
    """wilcox.test defaults: exact when both n < 50 and no ties, else normal approx + continuity."""
    ties = np.unique(np.concatenate([a, b])).size < a.size + b.size
    exact = a.size < 50 and b.size < 50 and not ties
    res = stats.mannwhitneyu(a, b, alternative="two-sided", method="exact" if exact else "asymptotic",
                             use_continuity=True)
    return float(res.statistic), float(res.pvalue), "Mann-Whitney U" + (" (exact)" if exact else "")


def _welch_anova(groups: list[np.ndarray]):
    """Welch's one-way ANOVA (R oneway.test(var.equal = FALSE))."""
    k = len(groups)
    n = np.array([g.size for g in groups], float)
    m = np.array([g.mean() for g in groups])
    v = np.array([g.var(ddof=1) for g in groups])
    w = n / v
    mw = np.sum(w * m) / w.sum()
    tmp = np.sum((1 - w / w.sum()) ** 2 / (n - 1)) / (k ** 2 - 1)
    F = np.sum(w * (m - mw) ** 2) / ((k - 1) * (1 + 2 * (k - 2) * tmp))
    df2 = 1 / (3 * tmp)
    return float(F), float(stats.f.sf(F, k - 1, df2))


def _looks_normal(groups: list[np.ndarray], normality: str, alpha: float, skew_threshold: float) -> bool:
    for g in groups:
        if g.size < 3 or np.ptp(g) == 0:
            return False
        if normality == "shapiro" and g.size <= 5000:
            if stats.shapiro(g).pvalue < alpha:
                return False
        elif abs(stats.skew(g, bias=False)) > skew_threshold:
            return False
    return True


@dataclass
class TableOne:
    """Table 1: ``cells`` (one row per variable/level and group) and ``tests`` (one row per variable).

    ``repr`` prints the publication table, :meth:`summary` returns it (wide: Variable, Level, Overall,
    one column per group, p, test, SMD, Missing) and :meth:`to_frame` the tidy long table (cells with
    each variable's test, p and SMD)."""

    cells: pd.DataFrame
    tests: pd.DataFrame
    groups: list
    digits: int

    def __repr__(self) -> str:
        return (f"Table 1 by group ({', '.join(map(str, self.groups))}), {len(self.tests)} variables\n"
                + self.summary().to_string(index=False))

    def to_frame(self) -> pd.DataFrame:
        """Tidy long Table 1: one row per variable, level and group, with the variable's test, p, SMD."""
        t = self.tests[["variable", "test", "statistic", "p", "smd", "engine"]].rename(
            columns={"statistic": "test_statistic"})
        return self.cells.merge(t, on="variable", how="left")

    def summary(self, overall: bool = True) -> pd.DataFrame:
        """Wide Table 1: Variable, Level, [Overall], one column per group, p, test, SMD, Missing."""
        d = self.digits
        s = self.cells.copy()

        def fmt(r):
            if r["type"] == "categorical":
                return f"{int(r['count'])} ({r['percent']:.1f})"
            if r["statistic"] == "mean (SD)":
                return f"{r['mean']:.{d}f} ({r['sd']:.{d}f})"
            return f"{r['median']:.{d}f} [{r['q1']:.{d}f}, {r['q3']:.{d}f}]"

        s["cell"] = s.apply(fmt, axis=1)
        s["group"] = s["group"].astype(str)
        s["level"] = s["level"].fillna("")
        order = (["Overall"] if overall else []) + [str(x) for x in self.groups]
        ns = s.drop_duplicates("group").set_index("group")["group_n"]
        wide = (s.pivot_table(index=["variable", "Variable_label", "level"], columns="group", values="cell",
                              aggfunc="first", sort=False)[order].reset_index())
        t = self.tests.set_index("variable")
        first = ~wide["variable"].duplicated()
        wide["p"] = [(("<0.001" if t.at[v, "p"] < 0.001 else f"{t.at[v, 'p']:.3f}")
                      if f and np.isfinite(t.at[v, "p"]) else "") for v, f in zip(wide["variable"], first)]
        wide["test"] = [t.at[v, "test"] if f else "" for v, f in zip(wide["variable"], first)]
        wide["SMD"] = [f"{t.at[v, 'smd']:.3f}" if f and np.isfinite(t.at[v, "smd"]) else ""
                       for v, f in zip(wide["variable"], first)]
        wide["Missing"] = [str(int(t.at[v, "missing"])) if f else "" for v, f in zip(wide["variable"], first)]
        wide = wide.drop(columns="variable").rename(
            columns={"Variable_label": "Variable", "level": "Level", **{c: f"{c} (n={ns[c]})" for c in order}})
        wide.columns.name = None
        return wide



def table_one(data: pd.DataFrame, group: str, variables: Sequence[str] | None = None,
              categorical: Sequence[str] = (), nonnormal: Sequence[str] = (), normality: str = "shapiro",
              alpha: float = 0.05, skew_threshold: float = 1.0, fisher_min_expected: float = 5.0,
              digits: int = 1, random_state=0, engine: str = "auto") -> TableOne:
    """Table 1 by ``group`` (e.g. centre or cohort) with tests chosen per variable (module docstring).

    ``random_state`` seeds the Monte-Carlo Fisher test of tables larger than 2x2. Python only (each test
    is checked against its R function in tests/validation; ``engine="R"`` raises).
    """
    from .. import rbridge

    rbridge.python_only(engine, "table_one")
    if group not in data.columns:
        raise KeyError(f"group column {group!r} not found in data")
    g = data[group]
    if g.isna().any():
        raise ValueError(f"group column {group!r} has {int(g.isna().sum())} missing value(s)")
    groups = list(g.cat.categories) if isinstance(g.dtype, pd.CategoricalDtype) else sorted(pd.unique(g), key=str)
    groups = [x for x in groups if (g == x).any()]
    if len(groups) < 2:
        raise ValueError(f"group column {group!r} has one level only ({groups}); Table 1 needs >= 2 groups")
    if normality not in ("shapiro", "skewness"):
        raise ValueError(f"normality must be 'shapiro' or 'skewness', got {normality!r}")
    variables = [c for c in data.columns if c != group] if variables is None else list(variables)
    missing_cols = [c for c in variables if c not in data.columns]
    if missing_cols:
        raise KeyError(f"variable column(s) {missing_cols} not found in data")
    forced_cat, forced_nonnormal = set(categorical), set(nonnormal)
    summ, tests = [], []
    for var in variables:
        x = data[var]
        if x.notna().sum() == 0:
            raise ValueError(f"variable column {var!r} has no non-missing values")
        is_cat = _is_categorical(x, forced_cat, var)
        if not is_cat and not pd.api.types.is_numeric_dtype(x):
            raise ValueError(f"variable column {var!r} is not numeric")
        row_t = {"variable": var, "type": "categorical" if is_cat else "continuous",
                 "missing": int(x.isna().sum())}
        if is_cat:
            levels = sorted(pd.unique(x.dropna()), key=str)
            tab = pd.crosstab(pd.Categorical(g, categories=groups), pd.Categorical(x, categories=levels),
                              dropna=True).to_numpy()
            for lab, sub in [("Overall", x)] + [(gr, x[g == gr]) for gr in groups]:
                nn = int(sub.notna().sum())
                for lv in levels:
                    c = int((sub == lv).sum())
                    summ.append({"variable": var, "level": str(lv), "group": lab, "group_n": int(len(sub)),
                                 "type": "categorical", "statistic": "n (%)", "n": nn, "count": c,
                                 "percent": 100 * c / nn if nn else np.nan,
                                 "missing": int(sub.isna().sum())})
            keep_r, keep_c = tab.sum(1) > 0, tab.sum(0) > 0
            tab = tab[keep_r][:, keep_c]
            if tab.shape[0] < 2 or tab.shape[1] < 2:
                row_t.update(test="not testable (one level or one group)", statistic=np.nan, p=np.nan,
                             min_expected=np.nan)
            else:
                expected = stats.contingency.expected_freq(tab)
                row_t["min_expected"] = float(expected.min())
                if expected.min() < fisher_min_expected:
                    if tab.shape == (2, 2):
                        res = stats.fisher_exact(tab)
                        row_t.update(test="Fisher's exact", statistic=float(res.statistic), p=float(res.pvalue))
                    else:
                        res = stats.fisher_exact(tab, method=stats.MonteCarloMethod(
                            n_resamples=100_000, rng=np.random.default_rng(random_state)))
                        row_t.update(test="Fisher's exact (Monte-Carlo p, 1e5 tables)",
                                     statistic=float(res.statistic), p=float(res.pvalue))
                else:
                    res = stats.chi2_contingency(tab, correction=True)
                    yates = " (Yates)" if tab.shape == (2, 2) else ""
                    row_t.update(test="Pearson chi-square" + yates, statistic=float(res.statistic),
                                 p=float(res.pvalue))
        else:
            vals = [x[(g == gr)].dropna().to_numpy(float) for gr in groups]
            if any(v.size < 2 for v in vals):
                normal = False
            else:
                normal = var not in forced_nonnormal and _looks_normal(vals, normality, alpha, skew_threshold)
            stat_label = "mean (SD)" if normal else "median [IQR]"
            for lab, sub in [("Overall", x)] + [(gr, x[g == gr]) for gr in groups]:
                v = sub.dropna().to_numpy(float)
                summ.append({"variable": var, "level": None, "group": lab, "group_n": int(len(sub)),
                             "type": "continuous", "statistic": stat_label, "n": int(v.size),
                             "mean": v.mean() if v.size else np.nan,
                             "sd": v.std(ddof=1) if v.size > 1 else np.nan,
                             "median": np.median(v) if v.size else np.nan,
                             "q1": np.quantile(v, 0.25) if v.size else np.nan,
                             "q3": np.quantile(v, 0.75) if v.size else np.nan,
                             "missing": int(sub.isna().sum())})
            if any(v.size < 2 for v in vals):
                row_t.update(test="not testable (a group has < 2 values)", statistic=np.nan, p=np.nan)
            elif len(groups) == 2:
                if normal:
                    res = stats.ttest_ind(vals[0], vals[1], equal_var=False)
                    row_t.update(test="Welch t-test", statistic=float(res.statistic), p=float(res.pvalue))
                else:
                    st, p, name = _mann_whitney(vals[0], vals[1])
                    row_t.update(test=name, statistic=st, p=p)
            else:
                if normal:
                    st, p = _welch_anova(vals)
                    row_t.update(test="Welch ANOVA", statistic=st, p=p)
                else:
                    res = stats.kruskal(*vals)
                    row_t.update(test="Kruskal-Wallis", statistic=float(res.statistic), p=float(res.pvalue))
            row_t["normal"] = normal
        row_t["smd"] = standardized_mean_difference(x, g, is_cat)
        tests.append(row_t)
    summary = pd.DataFrame(summ)
    summary["Variable_label"] = np.where(summary["type"] == "categorical", summary["variable"] + ", n (%)",
                                         summary["variable"] + ", " + summary["statistic"])
    tests = pd.DataFrame(tests)
    tests["engine"] = "python"
    return TableOne(summary, tests, groups, digits)


# --------------------------------------------------------------------------------------------
# correlations
# --------------------------------------------------------------------------------------------
@dataclass
class CorrelationResult:
    """``long`` (one row per distinct pair: var1, var2, n, estimate, p, p_adj) and wide ``r``/``p``/``p_adj``.

    :meth:`to_frame` returns ``long``; :meth:`summary` the wide matrix of "r (adjusted p)" cells."""

    long: pd.DataFrame
    r: pd.DataFrame
    p: pd.DataFrame
    p_adj: pd.DataFrame

    def __repr__(self) -> str:
        return (f"{self.long['method'].iloc[0]}, {len(self.r)} variables\n"
                + self.summary().to_string())

    def to_frame(self) -> pd.DataFrame:
        return self.long.copy()

    def summary(self) -> pd.DataFrame:
        def cell(r, p):
            return "" if not np.isfinite(r) else f"{r:.2f} ({'<0.001' if p < 0.001 else f'{p:.3f}'})"

        return pd.DataFrame([[cell(self.r.iat[i, j], self.p_adj.iat[i, j]) if i != j else "1"
                              for j in range(len(self.r))] for i in range(len(self.r))],
                            index=self.r.index, columns=self.r.columns)


def correlation_matrix(data: pd.DataFrame, columns: Sequence[str] | None = None, method: str = "spearman",
                       adjust: str = "fdr_bh", engine: str = "auto") -> CorrelationResult:
    """Pairwise Spearman/Pearson correlations (pairwise-complete) with p and BH-adjusted p values
    (R: ``cor.test`` and ``p.adjust``; Python only, ``engine="R"`` raises)."""
    from statsmodels.stats.multitest import multipletests

    from .. import rbridge

    rbridge.python_only(engine, "correlation_matrix")
    if method not in ("spearman", "pearson"):
        raise ValueError(f"method must be 'spearman' or 'pearson', got {method!r}")
    columns = list(data.columns) if columns is None else list(columns)
    absent = [c for c in columns if c not in data.columns]
    if absent:
        raise KeyError(f"column(s) {absent} not found in data")
    nonnum = [c for c in columns if not pd.api.types.is_numeric_dtype(data[c])]
    if nonnum:
        raise ValueError(f"column(s) {nonnum} are not numeric")
    if len(columns) < 2:
        raise ValueError("at least two columns are needed for a correlation matrix")
    rows = []
    for a, b in combinations(columns, 2):
        ok = data[a].notna() & data[b].notna()
        xa, xb = data.loc[ok, a].to_numpy(float), data.loc[ok, b].to_numpy(float)
        if ok.sum() < 3 or np.ptp(xa) == 0 or np.ptp(xb) == 0:
            r, p = np.nan, np.nan
        elif method == "spearman":
            res = stats.spearmanr(xa, xb)
            r, p = float(res.statistic), float(res.pvalue)
        else:
            res = stats.pearsonr(xa, xb)
            r, p = float(res.statistic), float(res.pvalue)
        rows.append({"var1": a, "var2": b, "n": int(ok.sum()), "estimate": r, "p": p})
    long = pd.DataFrame(rows)
    finite = long["p"].notna()
    long["p_adj"] = np.nan
    if finite.any():
        long.loc[finite, "p_adj"] = multipletests(long.loc[finite, "p"], method=adjust)[1]
    long["method"] = f"{method} correlation, {adjust} adjustment"
    long["engine"] = "python"

    def wide(col, diag):
        m = pd.DataFrame(np.nan, index=columns, columns=columns)
        for _, r in long.iterrows():
            m.at[r["var1"], r["var2"]] = m.at[r["var2"], r["var1"]] = r[col]
        np.fill_diagonal(m.values, diag)
        return m

    return CorrelationResult(long, wide("estimate", 1.0), wide("p", 0.0), wide("p_adj", 0.0))
