"""The report's computed Summary and Limitations: every sentence is assembled from this run's tables
(metrics, flow, fusion_weights, km_at_risk, sample_size, missingness), notes and configuration, and a
sentence whose artefact is absent is not written.

Headline numbers come from the validation splits (internal test, external) only, never from a horizon
with fewer than ``MIN_AT_RISK`` events or patients at risk (Riley et al. 2020, BMJ 368:m441 on sample
size; the same floor as commonly used for time-dependent AUC).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import tables as tb

MIN_AT_RISK = 10
COLLAPSE_SHARE = 0.95
SPLIT_NAME = {"train": "the training split", "test": "the internal test split",
              "external": "the external validation centre"}
HEADLINE = {"response": ("AUC", None), "survival": ("C-index", "Harrell")}
MAIN_MODEL = {"response": "PRIME-R", "survival": "PRIME-S"}
ENDPOINT = {"response": "Response", "survival": "Overall survival"}


def _ci(r) -> str:
    est = tb.fmt_num(r["estimate"])
    if pd.notna(r.get("lower")) and pd.notna(r.get("upper")):
        return f"{est} (95% CI {tb.fmt_num(r['lower'])} to {tb.fmt_num(r['upper'])})"
    return est


def sparse_horizons(st) -> pd.DataFrame:
    """Horizons of each validation split with fewer than ``MIN_AT_RISK`` patients at risk or events by
    then, from the numbers-at-risk table (``km_at_risk``: summed over risk groups, events cumulated)."""
    k = st.tables.get("km_at_risk")
    m = st.tables.get("metrics")
    if k is None or m is None or not {"split", "time", "n_risk", "n_event"} <= set(k.columns):
        return pd.DataFrame(columns=["split", "time", "n_risk", "events"])
    rows = []
    times = sorted(pd.to_numeric(m.get("time"), errors="coerce").dropna().unique())
    for split, g in k.groupby("split"):
        per = g.groupby("time")[["n_risk", "n_event"]].sum().sort_index()
        per["events"] = per["n_event"].cumsum()
        for t in times:
            at = per[per.index <= t + 1e-9]
            if at.empty:
                continue
            n_risk = int(per["n_risk"][per.index >= t - 1e-9].iloc[0]) if (per.index >= t - 1e-9).any() else 0
            events = int(at["events"].iloc[-1])
            if n_risk < MIN_AT_RISK or events < MIN_AT_RISK:
                rows.append({"split": str(split), "time": float(t), "n_risk": n_risk, "events": events})
    return pd.DataFrame(rows, columns=["split", "time", "n_risk", "events"])


def _headline_rows(m: pd.DataFrame, endpoint: str) -> tuple[str | None, pd.DataFrame]:
    metric, method = HEADLINE[endpoint]
    g = m[(m["endpoint"] == endpoint) & (m["metric"] == metric) & m["estimate"].notna()]
    if method and "method" in g:
        g = g[g["method"].astype(str).str.startswith(method)]
    models = list(dict.fromkeys(g["model"].astype(str)))
    models = [x for x in models if " vs " not in x]
    if not models:
        return None, g.iloc[0:0]
    main = MAIN_MODEL[endpoint] if MAIN_MODEL[endpoint] in models else models[0]
    return main, g


def fusion_shares(st) -> dict:
    """Largest modality share of each fusion model: {endpoint: (modality, share)} from fusion_weights
    (PRIME-R: the stacker's ``share`` per base model; PRIME-S: the averaging ``weight`` summed by modality)."""
    fw = st.tables.get("fusion_weights")
    out = {}
    if fw is None or "model" not in fw:
        return out
    r = fw[fw["model"].astype(str).str.startswith("PRIME-R")]
    if "share" in r and r["share"].notna().any():
        r = r[r["share"].notna()]
        i = r["share"].astype(float).idxmax()
        out["response"] = (str(r.loc[i, "term"]).replace("logit_p_", ""), float(r.loc[i, "share"]))
    s = fw[fw["model"].astype(str).str.startswith("PRIME-S")]
    if {"weight", "feature_kind"} <= set(s.columns) and s["weight"].notna().any():
        by = s.groupby("feature_kind")["weight"].sum()
        by = by / by.sum()
        out["survival"] = (str(by.idxmax()), float(by.max()))
    return out


def _para(text: str) -> dict:
    return {"kind": "para", "text": text}


def summary_blocks(st) -> list[dict]:
    """Per endpoint: the headline validated estimate with its CI per validation split, the comparison
    with the clinical model, the optimism gap and the fusion weight share."""
    m = st.tables.get("metrics")
    if m is None or not {"endpoint", "model", "split", "metric", "estimate"} <= set(m.columns):
        return [{"kind": "missing", "what": "summary", "reason": "this run wrote no metrics table"}]
    blocks, shares = [], fusion_shares(st)
    for endpoint in ("response", "survival"):
        main, g = _headline_rows(m, endpoint)
        if main is None:
            continue
        metric = HEADLINE[endpoint][0] + (" (Harrell)" if endpoint == "survival" else "")
        blocks.append({"kind": "subheading", "text": ENDPOINT[endpoint]})
        own = g[g["model"] == main]
        val = [(s, own[own["split"] == s].iloc[0]) for s in ("test", "external") if (own["split"] == s).any()]
        if val:
            parts = [f"{_ci(r)} in {SPLIT_NAME[s]} (n = {int(r['n'])})" if pd.notna(r.get("n")) else
                     f"{_ci(r)} in {SPLIT_NAME[s]}" for s, r in val]
            blocks.append(_para(f"{main}: {metric} " + "; ".join(parts) + "."))
        else:
            blocks.append(_para(f"{main}: no validation split had enough patients and events for a {metric}; "
                                "only apparent performance is available, which is optimistic by construction."))
        if "clinical" in set(g["model"]) and main != "clinical":
            clin = g[g["model"] == "clinical"]
            diffs = m[(m["endpoint"] == endpoint) & (m["model"] == f"{main} vs clinical") & m["estimate"].notna()]
            for s, r in val:
                c = clin[clin["split"] == s]
                if c.empty:
                    continue
                d = diffs[diffs["split"] == s]
                extra = ""
                if len(d):
                    p = d.iloc[0].get("p_value")
                    extra = f"; difference {_ci(d.iloc[0])}" + (f", p = {tb.fmt_p(p)}" if pd.notna(p) else "")
                blocks.append(_para(f"Clinical model in {SPLIT_NAME[s]}: {metric} {_ci(c.iloc[0])}{extra}."))
        app = own[own["split"] == "train"]
        corrected = [(s, own[own["split"] == s].iloc[0]) for s in ("nested_cv", "optimism_corrected")
                     if (own["split"] == s).any()]
        if len(app) and corrected:
            a = float(app.iloc[0]["estimate"])
            label = {"nested_cv": "nested cross-validation", "optimism_corrected": "optimism-corrected"}
            gaps = "; ".join(f"{label[s]} {tb.fmt_num(r['estimate'])} (gap {tb.fmt_num(a - r['estimate'])})"
                             for s, r in corrected)
            blocks.append(_para(f"Optimism: apparent {metric} on the training split {tb.fmt_num(a)}; {gaps}."))
        if endpoint in shares:
            kind, share = shares[endpoint]
            fused = MAIN_MODEL[endpoint]
            if share >= COLLAPSE_SHARE:
                blocks.append(_para(f"{fused}'s fusion collapsed: the {kind} modality carries {share:.2f} of the "
                                    f"weight, so {fused} is in effect a single-modality ({kind}) model."))
            else:
                blocks.append(_para(f"{fused}'s fusion weights: the {kind} modality carries {share:.2f} of the "
                                    "weight."))
    sparse = sparse_horizons(st)
    if len(sparse):
        blocks.append(_para("Horizons with fewer than 10 events or patients at risk are not used as headline "
                            "numbers; their rows are greyed in the performance table (see Limitations)."))
    return blocks


def limitations_blocks(st) -> list[dict]:
    """Events per candidate parameter against Riley's minimum sample size, the size of the test split,
    sparse horizons, dropped predictors, imputation, fusion collapse and the number of external centres."""
    blocks = []
    ss = st.tables.get("sample_size")
    if ss is not None and {"endpoint", "criterion", "n"} <= set(ss.columns):
        for endpoint, g in ss.groupby("endpoint", sort=False):
            final = g[g["criterion"] == "final"].iloc[0]
            what = "responders" if endpoint == "response" else "deaths"
            blocks.append(_para(
                f"{ENDPOINT.get(endpoint, endpoint)}: the training split has {int(final['n_available'])} patients "
                f"and {int(final['events_available'])} {what} for {int(final['parameters'])} candidate predictor "
                f"parameters, {final['epp_available']:.2f} events per candidate parameter. Riley et al.'s "
                f"minimum sample size (pmsampsize criteria, {str(final['method']).split('; ')[1]}) is "
                f"{int(final['n'])} patients ({final['epp']:.1f} events per parameter), "
                f"{final['n_available'] / final['n']:.0%} of which are available: overfitting is likely and "
                "the apparent performance is optimistic."
                if final["n_available"] < final["n"] else
                f"{ENDPOINT.get(endpoint, endpoint)}: {int(final['n_available'])} training patients meet Riley et "
                f"al.'s minimum sample size of {int(final['n'])} ({final['epp_available']:.2f} events per "
                "candidate parameter)."))
        show = ss[["endpoint", "criterion", "n", "shrinkage", "r2_cs", "max_r2_cs", "events", "epp"]].rename(
            columns={"n": "Minimum n", "r2_cs": "Anticipated R² (Cox-Snell)", "max_r2_cs": "Largest R² (Cox-Snell)",
                     "events": "Events", "epp": "Events per parameter"})
        blocks.append({"kind": "table_df", "key": "sample_size", "df": show})
    f = st.tables.get("flow")
    if f is not None and {"split", "n"} <= set(f.columns):
        test = f[f["split"] == "test"]
        if len(test):
            r = test.iloc[0]
            ev = [f"{int(r[c])} {c}" for c in ("responders", "deaths") if c in r and pd.notna(r[c])]
            blocks.append(_para(f"The internal test split has {int(r['n'])} patients"
                                + (f" ({', '.join(ev)})" if ev else "") + ": its estimates have wide intervals."))
        ext = f[f["split"] == "external"]
        if len(ext) and "centre" in ext and pd.notna(ext.iloc[0]["centre"]):
            centres = str(ext.iloc[0].get("centre", ""))
            n_c = len([c for c in centres.split(",") if c.strip()])
            blocks.append(_para(f"External validation rests on {n_c} centre{'s' if n_c != 1 else ''} "
                                f"({int(ext.iloc[0]['n'])} patients); heterogeneity across centres cannot be "
                                "estimated from one." if n_c == 1 else
                                f"External validation uses {n_c} centres ({int(ext.iloc[0]['n'])} patients)."))
    sparse = sparse_horizons(st)
    if len(sparse):
        items = "; ".join(f"{SPLIT_NAME.get(r.split, r.split)} at {tb.fmt_time(r.time)} ({r.n_risk} at risk, "
                          f"{r.events} events)" for r in sparse.itertuples())
        blocks.append(_para(f"Time-dependent estimates at horizons with fewer than {MIN_AT_RISK} patients at risk "
                            f"or events are unstable and are greyed (†) in the performance table: {items}."))
    miss = st.tables.get("missingness")
    if miss is not None and "variable" in miss:
        col = [c for c in miss.columns if str(c).startswith("excluded")]
        dropped = miss.loc[miss[col[0]].astype(bool), "variable"].astype(str).tolist() if col else []
        limit = (st.config.get("features") or {}).get("max_missing")
        if dropped:
            blocks.append(_para(f"Predictors dropped for missing values (more than {limit:.0%} missing in the "
                                f"training split): {', '.join(dropped)}." if isinstance(limit, (int, float)) else
                                f"Predictors dropped for missing values: {', '.join(dropped)}."))
    if "imputation" in st.notes:
        blocks.append(_para(f"Remaining missing values were imputed by {st.notes['imputation']}; the reasons "
                            "for missingness are not recorded in the data."))
    for endpoint, (kind, share) in fusion_shares(st).items():
        if share >= COLLAPSE_SHARE:
            blocks.append(_para(f"{MAIN_MODEL[endpoint]} is not multimodal in practice: {share:.2f} of its fusion "
                                f"weight is on the {kind} modality."))
    if not blocks:
        blocks.append({"kind": "missing", "what": "limitations",
                       "reason": "this run wrote none of the tables they are computed from"})
    return blocks
