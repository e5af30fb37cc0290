"""Tables for the report: de-identification, number formatting, the performance table, HTML.

Formatting rules: p-values with 3 decimals and ``<0.001`` below that; counts as integers;
percentages with 1 decimal; horizons in months when they are whole months;
estimates with 3 decimals (1 above 100, thousands separators above 1000, scientific below 0.001);
long tables shortened to their most relevant rows with a note saying so.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# ----------------------------------------------------------------------------------- identifiers
_ID_TOKENS = {"id", "ids", "uid", "mrn", "ssn", "nhs", "dob", "patient", "subject", "initials",
              "name", "names", "surname", "firstname", "lastname", "fullname", "birthdate", "accession"}
# qualifiers that make "name"/"id" a non-personal label (feature_name, gene_id, term_name ...)
_NON_PERSONAL = {"feature", "features", "gene", "genes", "symbol", "entrez", "ensembl", "term", "set",
                 "geneset", "pathway", "model", "metric", "variable", "cell", "signature", "go", "kegg",
                 "item", "statistic", "test", "group", "level", "image", "phase", "centre", "center",
                 "site", "split", "package"}


def _tokens(name: str) -> list[str]:
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name))
    return [t for t in re.split(r"[^a-z0-9]+", s.lower()) if t]


def is_identifier_column(name: str) -> bool:
    """A column named like a personal identifier: id, patient_id, PatientID, mrn, name, dob, ...
    (but not feature_name, gene_id, term_name and other non-personal labels)."""
    toks = _tokens(name)
    if not any(t in _ID_TOKENS for t in toks):
        return False
    return not any(t in _NON_PERSONAL for t in toks)


@dataclass
class Identifiers:
    """Known patient identifiers, collected from id-like columns of the study's tables, to scrub
    identifier values wherever they appear (unnamed index columns, free-text notes).

    Short or purely numeric identifiers (``17``) cannot be told apart from ordinary numbers in
    text; they only remove a column whose values are all identifiers (an index written by pandas).
    """
    values: set = field(default_factory=set)

    def add_from(self, df: pd.DataFrame):
        for c in df.columns:
            if is_identifier_column(c):
                self.values.update(str(v).strip() for v in df[c].dropna().unique() if str(v).strip())

    @property
    def distinctive(self) -> set:
        return {v for v in self.values if len(v) >= 3 and not _NUMBER.match(v)}

    def _pattern(self):
        vals = sorted(self.distinctive, key=len, reverse=True)
        # bounded by anything but a letter or digit: "PRM-00003" is found in "images/PRM-00003_AP.nrrd"
        return re.compile(r"(?<![A-Za-z0-9])(" + "|".join(map(re.escape, vals)) + r")(?![A-Za-z0-9])") if vals else None

    def scrub_text(self, text: str) -> str:
        pat = self._pattern()
        return pat.sub("[identifier removed]", text) if pat else text

    def scrub_frame(self, df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """Drop identifier-named columns, text columns mentioning a distinctive identifier (also inside
        a file name), and columns made only of identifiers (at least 5 different ones)."""
        drop = [c for c in df.columns if is_identifier_column(c)]
        pat = self._pattern()
        for c in df.columns:
            if c in drop or not self.values:
                continue
            vals = df[c].dropna().map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
            mentions = pat is not None and not pd.api.types.is_numeric_dtype(df[c]) and \
                vals.map(lambda v: bool(pat.search(v))).any()
            if mentions or (len(vals) and vals.nunique() >= 5 and vals.isin(self.values).all()):
                drop.append(c)
        return df.drop(columns=drop), [str(c) for c in drop]


_NUMBER = re.compile(r"^[-+]?\d+(\.\d+)?$")


# ------------------------------------------------------------------------------------ formatting
_P_COL = re.compile(r"^(p|pr|pval|p_?val(ue)?|p\.value|p[-_ ]?adj(usted)?|adj[._ ]?p(\.?val)?|q|q[-_ ]?val(ue)?|fdr|"
                    r"fdr[-_ ]?(q|p)[-_ ]?val|nom[-_ ]?p[-_ ]?val|fwer[-_ ]?p[-_ ]?val|p_?(interaction|logrank|lr|wald|"
                    r"global|trend|het(erogeneity)?|bh|holm))$", re.I)


def is_p_column(name) -> bool:
    return bool(_P_COL.match(str(name).strip()))


def fmt_p(p) -> str:
    """p-value: ``<0.001`` or 3 decimals; blank when missing."""
    try:
        p = float(p)
    except (TypeError, ValueError):
        return str(p)
    if not np.isfinite(p):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_num(x) -> str:
    """A statistic: 3 decimals; 1 decimal from 100; thousands separators from 1000; scientific
    (2 significant digits) below 0.001; blank when missing."""
    if x is None or isinstance(x, str):
        return "" if x is None else x
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not np.isfinite(v):
        return "" if np.isnan(v) else ("∞" if v > 0 else "−∞")
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.1f}"
    if a >= 0.001:
        return f"{v:.3f}"
    return f"{v:.1e}"


def fmt_time(t) -> str:
    """A horizon in days, shown in months when it is a whole number of months (30.4375 d)."""
    try:
        t = float(t)
    except (TypeError, ValueError):
        return "" if t is None else str(t)
    if not np.isfinite(t):
        return ""
    m = t / 30.4375
    return f"{round(m)} mo" if m >= 1 and abs(m - round(m)) < 0.05 else f"{t:g} d"


def format_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Every cell as display text (see the module docstring)."""
    out = pd.DataFrame(index=df.index)
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_bool_dtype(s):
            out[c] = s.map(lambda v: "yes" if v else "no")
        elif pd.api.types.is_numeric_dtype(s):
            finite = s[np.isfinite(s.astype(float))]
            if is_p_column(c):
                out[c] = s.map(fmt_p)
            elif str(c).lower() in ("time", "time_days", "horizon"):
                out[c] = s.map(fmt_time)
            elif re.search(r"%|percent|pct", str(c), re.I):
                out[c] = s.map(lambda v: f"{v:.1f}" if pd.notna(v) and np.isfinite(v) else "")
            elif len(finite) and np.all(np.mod(finite.astype(float), 1) == 0) and finite.abs().max() < 1e9:
                out[c] = s.map(lambda v: f"{int(v):d}" if pd.notna(v) and np.isfinite(v) else "")
            else:
                out[c] = s.map(fmt_num)
        else:
            out[c] = s.map(lambda v: "" if (v is None or (isinstance(v, float) and np.isnan(v)))
                           else _json_object_text(str(v)))
    return out


def _json_object_text(v: str) -> str:
    """A JSON object cell (e.g. tuned hyperparameters) as "key = value; ..." (floats to 4 significant
    digits: a penalty of 0.00316 stays 0.00316); other text unchanged."""
    if not (v.startswith("{") and v.endswith("}")):
        return v
    try:
        d = json.loads(v)
    except ValueError:
        return v
    return "; ".join(f"{k} = {format(x, '.4g') if isinstance(x, float) else x}" for k, x in d.items()) \
        if isinstance(d, dict) else v


def clip_text(df: pd.DataFrame, limit: int = 60) -> tuple[pd.DataFrame, str]:
    """Cut display text longer than ``limit`` characters (e.g. leading-edge gene lists)."""
    long = df.map(lambda v: len(v) > limit)
    if not long.to_numpy().any():
        return df, ""
    cols = [str(c) for c in df.columns[long.any(axis=0)]]
    return (df.map(lambda v: v if len(v) <= limit else v[:limit - 1].rstrip() + "…"),
            f"Text longer than {limit} characters cut in column(s) {', '.join(cols)}. ")


# ------------------------------------------------------------------------------------ shortening
_IMPORTANCE = ("mean_abs_shap", "importance", "mean_abs", "abs_shap", "shap", "abs_coef", "coef", "coefficient",
               "nes", "logfc", "estimate")
_NB_GRID = np.round(np.arange(0.05, 1.0, 0.05), 2)


def shorten(df: pd.DataFrame, max_rows: int) -> tuple[pd.DataFrame, str]:
    """At most ``max_rows`` rows, keeping the most relevant: decision-curve rows at thresholds
    0.05, 0.10, ...; otherwise the smallest adjusted p / p, or the largest |importance|."""
    note = ""
    if "threshold" in df.columns and df["threshold"].nunique() > len(_NB_GRID):
        th = pd.to_numeric(df["threshold"], errors="coerce")
        keep = np.zeros(len(df), bool)
        uniq = np.sort(th.dropna().unique())
        for g in _NB_GRID:
            nearest = uniq[np.argmin(np.abs(uniq - g))]
            if abs(nearest - g) < 0.0125:
                keep |= (th == nearest).to_numpy()
        if keep.any():
            df = df[keep]
            note = "Shown at thresholds 0.05, 0.10, ..., 0.95. "
    if len(df) <= max_rows:
        return df, note
    n = len(df)
    ranked = rank_rows(df)
    if ranked is None:
        return df.head(max_rows), note + f"First {max_rows} of {n} rows shown; the full table is in the CSV file. "
    df, how = ranked
    return df.head(max_rows), note + f"{max_rows} of {n} rows shown ({how}); the full table is in the CSV file. "


def rank_rows(df: pd.DataFrame) -> tuple[pd.DataFrame, str] | None:
    """Rows by relevance: smallest adjusted p, else smallest p, else largest |importance|
    (mean |SHAP|, importance, coefficient, NES, log FC, estimate; rows of importance 0 are left out
    when others are not); None if no such column."""
    p_cols = [c for c in df.columns if is_p_column(c)]
    adjusted = [c for c in p_cols if re.search(r"adj|fdr|q|fwer|bh|holm", str(c), re.I)]
    for c in adjusted + p_cols:
        order = pd.to_numeric(df[c], errors="coerce").sort_values(kind="stable").index
        return df.loc[order], f"smallest {c}"
    for name in _IMPORTANCE:
        cols = [c for c in df.columns if str(c).lower() == name and pd.api.types.is_numeric_dtype(df[c])]
        if cols:
            size = df[cols[0]].abs()
            zero = size == 0
            if zero.any() and not zero.all():      # padding: features the model gives no weight
                size = size[~zero]
            order = size.sort_values(ascending=False, kind="stable").index
            dropped = f"; {int(zero.sum())} rows with {cols[0]} = 0 left out" if len(order) < len(df) else ""
            return df.loc[order], f"largest |{cols[0]}|{dropped}"
    return None


# ------------------------------------------------------------------------------ performance table
SPLIT_ORDER = ["apparent", "train", "nested_cv", "optimism_corrected", "test", "external"]
SPLIT_LABEL = {"apparent": "Apparent", "train": "Apparent (training)", "nested_cv": "Nested CV",
               "optimism_corrected": "Optimism-corrected", "test": "Internal test", "external": "External"}


def _ci_cell(r) -> str:
    est = fmt_num(r.get("estimate"))
    lo, hi = r.get("lower"), r.get("upper")
    if est and lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi):
        return f"{est} ({fmt_num(lo)} to {fmt_num(hi)})"
    return est


SPARSE_MARK = "\u2020"


def performance_tables(metrics: pd.DataFrame, sparse=frozenset()) -> list[tuple[str, pd.DataFrame, pd.DataFrame]]:
    """One wide table per endpoint: rows model x metric x time, columns the validation splits,
    cells "estimate (lower to upper)"; and the method/engine behind each metric. Cells of the
    (split, time) pairs in ``sparse`` end in ``SPARSE_MARK`` (drawn greyed)."""
    need = ["model", "split", "metric", "estimate"]
    missing = [c for c in need if c not in metrics.columns]
    if missing:
        raise ValueError(f"metrics table lacks column(s) {missing} (have {list(metrics.columns)})")
    m = metrics.copy()
    for c, default in (("endpoint", ""), ("time", np.nan), ("lower", np.nan), ("upper", np.nan),
                       ("method", ""), ("engine", "")):
        if c not in m.columns:
            m[c] = default
    m["cell"] = [_ci_cell(r) + (SPARSE_MARK if (str(r["split"]), r["time"]) in sparse else "")
                 for r in m.to_dict("records")]
    m["Time"] = m["time"].map(fmt_time)
    m["time_sort"] = pd.to_numeric(m["time"], errors="coerce").fillna(-1.0)
    splits = [s for s in SPLIT_ORDER if s in set(m["split"])] + sorted(set(m["split"]) - set(SPLIT_ORDER), key=str)
    out = []
    for endpoint, g in m.groupby("endpoint", sort=False):
        g = g.assign(split=pd.Categorical(g["split"], splits))
        wide = g.pivot_table(index=["model", "metric", "time_sort", "Time"], columns="split", values="cell",
                             aggfunc="first", observed=True, sort=False)
        wide = wide.reindex(columns=[s for s in splits if s in wide.columns])
        wide = wide.reset_index()
        first = {c: {v: i for i, v in enumerate(dict.fromkeys(g[c]))} for c in ("model", "metric")}
        wide = wide.sort_values(["model", "metric", "time_sort"], kind="stable",
                                key=lambda s: s.map(first[s.name]) if s.name in first else s)
        wide = wide.drop(columns="time_sort").rename(columns={"model": "Model", "metric": "Metric",
                                                              **SPLIT_LABEL})
        wide.columns.name = None
        if (wide["Time"] == "").all():
            wide = wide.drop(columns="Time")
        wide = wide.fillna("")
        # blank repeated model names for readability
        wide["Model"] = wide["Model"].where(~wide["Model"].duplicated(), "")
        meth = (g.assign(split=g["split"].astype(str))
                 .groupby(["metric", "method", "engine"], sort=False, dropna=False)["split"]
                 .agg(lambda s: ", ".join(SPLIT_LABEL.get(x, x) for x in dict.fromkeys(s)))
                 .reset_index().rename(columns={"metric": "Metric", "method": "Method", "engine": "Engine",
                                                "split": "Splits"}))
        out.append((str(endpoint), wide, meth.fillna("")))
    return out


# ---------------------------------------------------------------------------------------- layout
_HEADERS = {"estimate": "Estimate", "lower": "Lower", "upper": "Upper", "se": "SE", "p": "p", "n": "n",
            "mean_abs_shap": "Mean |SHAP|", "coef": "Coefficient", "hr": "HR", "df": "df", "smd": "SMD",
            "auc": "AUC", "icc": "ICC", "nes": "NES", "logfc": "log FC", "oe2_e": "(O−E)²/E", "oe2_v": "(O−E)²/V",
            "padj": "Adjusted p", "p_interaction": "p (interaction)", "n_missing": "n missing", "z": "z", "t": "t"}
_HOIST = ("method", "engine", "conf_type", "type", "test", "splits", "explained", "output", "aggregation")


def tidy_for_display(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Drop empty columns, put grouping columns (endpoint, split) first and move columns with one
    value on every row (method, engine, ...) into a note, so that the table keeps only what varies."""
    notes = []
    empty = [c for c in df.columns if df[c].isna().all() or (df[c].astype(str).str.strip() == "").all()]
    df = df.drop(columns=empty)
    lead = [c for c in df.columns if str(c).lower() in ("endpoint", "split")]      # grouping columns first
    df = df[lead + [c for c in df.columns if c not in lead]]
    if len(df) >= 1:
        for c in df.columns:
            if (str(c).lower() in _HOIST and not pd.api.types.is_numeric_dtype(df[c])
                    and df[c].nunique(dropna=False) == 1):
                notes.append(f"{str(c).replace('_', ' ').capitalize()}: {df[c].iloc[0]}.")
                df = df.drop(columns=c)
    return df, " ".join(notes)


def summarise_rows(df: pd.DataFrame, max_levels: int = 6) -> pd.DataFrame:
    """One line per column of a per-patient table: counts (%) of each level for categorical columns
    (at most ``max_levels`` distinct values), median [IQR] and range for numeric ones."""
    rows = []
    for c in df.columns:
        s = df[c].dropna()
        if s.nunique() <= max_levels:
            counts = s.value_counts(sort=False).sort_index()
            text = "; ".join(f"{k}: {v} ({100 * v / len(s):.1f}%)" for k, v in counts.items())
        elif pd.api.types.is_numeric_dtype(s):
            q = s.quantile([0.25, 0.5, 0.75])
            text = (f"median {fmt_num(q[0.5])} [IQR {fmt_num(q[0.25])}, {fmt_num(q[0.75])}], "
                    f"range {fmt_num(s.min())} to {fmt_num(s.max())}")
        else:
            text = f"{s.nunique()} distinct values"
        rows.append({"Column": str(c), "n": len(s), "Summary": text})
    return pd.DataFrame(rows)


def header_label(name) -> str:
    """Readable column header: known statistic names, else underscores as spaces, first letter up."""
    s = str(name)
    if s.startswith("Unnamed:"):
        return ""
    if s.lower() in _HEADERS:
        return _HEADERS[s.lower()]
    if re.fullmatch(r"[a-z0-9_]+", s):
        s = s.replace("_", " ")
        return s[:1].upper() + s[1:]
    return s.replace("_", " ").replace("-", "\u2011")   # non-breaking hyphen: "p-val" stays whole


def decision_wide(df: pd.DataFrame) -> pd.DataFrame | None:
    """Net benefit with one row per threshold (and validation set) and one column per strategy."""
    if not {"threshold", "model", "net_benefit"} <= set(df.columns):
        return None
    index = [c for c in ("split", "endpoint", "time") if c in df.columns and df[c].nunique() > 1] + ["threshold"]
    models = list(dict.fromkeys(df["model"].astype(str)))
    order = [m for m in models if m not in ("all", "none")] + [m for m in ("all", "none") if m in models]
    w = df.assign(model=df["model"].astype(str)).pivot_table(index=index, columns="model", values="net_benefit",
                                                          aggfunc="first", sort=False)
    w = w[order].rename(columns={"all": "Treat all", "none": "Treat none"}).reset_index()
    w.columns.name = None
    return w


# ------------------------------------------------------------------------------------------ HTML
_NUMERIC_TEXT = re.compile(r"^[<−\-+]?[0-9][0-9.,]*(e[-+]?\d+)?( \(.*\)| \[.*\])?\u2020?$")


def _bracket_nbsp(text: str) -> str:
    """No line breaks inside "(0.62 to 0.72)" or "[46.0, 61.0]": a cell may only break before them."""
    return re.sub(r"[(\[][^)\]]*[)\]]", lambda m: m.group(0).replace(" ", "\u00a0"), text)


def to_html(df: pd.DataFrame, caption: str = "", css_class: str = "") -> str:
    """An escaped HTML table of display text (``format_frame`` output), its caption kept with it and
    its header repeated after page breaks."""
    ncol = df.shape[1]
    size = "narrow" if ncol <= 4 else "wide" if ncol > 8 else ""
    cls = " ".join(c for c in ["data", css_class, size, "xwide" if ncol > 11 else ""] if c)
    # a column is right-aligned when every non-empty cell is a number (or "number (CI)")
    numeric = [all(_NUMERIC_TEXT.match(str(v)) for v in df[c] if str(v) != "") and (df[c] != "").any()
               for c in df.columns]
    head = "".join(('<th class="num">' if num else "<th>") + html.escape(header_label(c)) + "</th>"
                   for c, num in zip(df.columns, numeric))
    rows = []
    for rec in df.itertuples(index=False):
        cells = [f'<td class="num{" sparse" if str(v).endswith(SPARSE_MARK) else ""}">'
                 f'{html.escape(_bracket_nbsp(str(v)))}</td>' if num
                 else f"<td>{html.escape(str(v))}</td>" for v, num in zip(rec, numeric)]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f'<p class="caption">{html.escape(caption)}</p>' if caption else ""
    return (f'{cap}<table class="{cls}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table>")
