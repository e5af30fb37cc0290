"""Figures for explanations and biology: volcano, GSEA enrichment, ssGSEA/immune boxplots, SHAP
beeswarm and bar (with fold-to-fold spread), the response-vs-survival divergence view, SurvSHAP(t)
curves and the responder-paradox Kaplan-Meier plot.

Colour-blind safe: categories use the Okabe-Ito palette, continuous feature values the 'cividis'
map. Every number drawn comes from :mod:`prime_stats.omics`, :mod:`prime_stats.explain` or
:mod:`prime_stats.paradox` results.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - headless rendering for reports and CI
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from prime_stats.report.figures import OKABE_ITO
from prime_stats.report.figures_survival import plot_kaplan_meier

__all__ = ["plot_volcano", "plot_gsea_enrichment", "plot_score_boxplot", "plot_shap_beeswarm",
           "plot_shap_bar", "plot_divergence", "plot_survshap", "plot_paradox_km"]

_UP, _DOWN, _GREY = OKABE_ITO[1], OKABE_ITO[0], "#BBBBBB"


def plot_volcano(de: pd.DataFrame, *, fdr: float = 0.05, log_fc: float = 1.0, label_top: int = 10,
                 title: str | None = None, figsize=(6.0, 5.0)) -> Figure:
    """Volcano plot of a :func:`prime_stats.omics.differential_expression` table:
    log fold change vs -log10 p, genes passing BH ``fdr`` and |logFC| >= ``log_fc`` highlighted."""
    for c in ("gene", "log_fc", "p_value", "p_adj"):
        if c not in de.columns:
            raise ValueError(f"differential-expression table lacks column {c!r}")
    x = de["log_fc"].to_numpy(float)
    y = -np.log10(np.clip(de["p_value"].to_numpy(float), 1e-300, 1))
    sig = (de["p_adj"].to_numpy(float) < fdr) & (np.abs(x) >= log_fc)
    fig, ax = plt.subplots(figsize=figsize)
    ax.scatter(x[~sig], y[~sig], s=6, c=_GREY, lw=0, label="not significant")
    up, down = sig & (x > 0), sig & (x < 0)
    ax.scatter(x[up], y[up], s=9, c=_UP, lw=0, label=f"up ({int(up.sum())})")
    ax.scatter(x[down], y[down], s=9, c=_DOWN, lw=0, label=f"down ({int(down.sum())})")
    for i in np.argsort(-y)[:label_top]:
        ax.annotate(str(de["gene"].iloc[i]), (x[i], y[i]), fontsize=7, xytext=(3, 2),
                    textcoords="offset points")
    ax.axvline(log_fc, color="k", lw=0.6, ls=":")
    ax.axvline(-log_fc, color="k", lw=0.6, ls=":")
    contrast = de["contrast"].iloc[0] if "contrast" in de else "log fold change"
    ax.set_xlabel(f"log2 fold change ({contrast})")
    ax.set_ylabel("-log10 p")
    engine = de["engine"].iloc[0] if "engine" in de else ""
    ax.set_title(title or f"Differential expression ({engine}); BH FDR < {fdr:g}")
    ax.legend(frameon=False, fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_gsea_enrichment(gsea, gene_set: str, *, figsize=(6.0, 4.5)) -> Figure:
    """Classic GSEA enrichment plot: running enrichment score, hit positions and the ranking."""
    if gene_set not in gsea.running:
        raise KeyError(f"gene set {gene_set!r} is not in the GSEA result")
    res, hits = gsea.running[gene_set]["RES"], gsea.running[gene_set]["hits"]
    row = gsea.table.set_index("gene_set").loc[gene_set]
    fig, (a1, a2, a3) = plt.subplots(3, 1, figsize=figsize, sharex=True,
                                     gridspec_kw={"height_ratios": [3, 0.6, 1.4], "hspace": 0.05})
    a1.plot(np.arange(len(res)), res, color=OKABE_ITO[2], lw=1.6)
    a1.axhline(0, color="k", lw=0.6)
    a1.set_ylabel("Enrichment score")
    a1.set_title(f"{gene_set}\nNES {row['nes']:.2f}, FDR {row['fdr']:.3g}, "
                 f"{int(row['n_leading_edge'])} leading-edge genes", fontsize=9)
    a2.vlines(hits, 0, 1, color="k", lw=0.5)
    a2.set_yticks([])
    r = gsea.ranking.to_numpy()
    a3.fill_between(np.arange(len(r)), r, color=OKABE_ITO[5], lw=0)
    a3.axhline(0, color="k", lw=0.6)
    a3.set_ylabel("Ranking metric")
    a3.set_xlabel("Rank in ordered gene list")
    fig.subplots_adjust(left=0.14, right=0.97, top=0.88, bottom=0.12)
    return fig


def plot_score_boxplot(scores: pd.DataFrame, groups, *, comparison: pd.DataFrame | None = None,
                       gene_sets: Sequence[str] | None = None, max_sets: int = 8,
                       ylabel: str = "ssGSEA score", figsize=None) -> Figure:
    """Per-sample scores (sets x samples) by group, one panel per set, with BH-adjusted
    Mann-Whitney p from ``comparison`` (:func:`prime_stats.omics.compare_scores`)."""
    g = pd.Series(np.asarray(groups), index=scores.columns) if not isinstance(groups, pd.Series) \
        else groups.reindex(scores.columns)
    if g.isna().any():
        raise ValueError(f"no group for sample(s) {list(g.index[g.isna()][:5])}")
    if gene_sets is None:
        gene_sets = list(comparison["gene_set"].head(max_sets)) if comparison is not None \
            else list(scores.index[:max_sets])
    levels = sorted(pd.unique(g).tolist(), key=str)
    padj = comparison.set_index("gene_set")["p_adj"] if comparison is not None else None
    n = len(gene_sets)
    ncol = min(4, n)
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=figsize or (2.4 * ncol, 2.6 * nrow), squeeze=False)
    rng = np.random.default_rng(0)
    for ax, s in zip(axes.ravel(), gene_sets):
        data = [scores.loc[s, (g == lv).to_numpy()].to_numpy(float) for lv in levels]
        bp = ax.boxplot(data, widths=0.55, patch_artist=True, showfliers=False,
                        medianprops={"color": "black"})
        for patch, col in zip(bp["boxes"], OKABE_ITO):
            patch.set_facecolor(col)
            patch.set_alpha(0.35)
        for i, (d, col) in enumerate(zip(data, OKABE_ITO)):
            ax.scatter(i + 1 + rng.uniform(-0.12, 0.12, len(d)), d, s=8, color=col, lw=0)
        ax.set_xticks(range(1, len(levels) + 1), [str(lv) for lv in levels], fontsize=8)
        title = s.replace("HALLMARK_", "")
        if padj is not None and s in padj.index:
            title += f"\nBH p = {padj[s]:.2g}"
        ax.set_title(title, fontsize=8)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    axes[0, 0].set_ylabel(ylabel)
    fig.tight_layout()
    return fig


def _top(shap_result, max_features):
    return list(shap_result.ranking["feature"].head(max_features))


def plot_shap_beeswarm(shap_result, *, max_features: int = 15, title: str | None = None,
                       figsize=None, xlabel: str | None = None) -> Figure:
    """Beeswarm of SHAP values (by default cross-validated, held-out: ``xlabel`` says otherwise);
    colour = feature value rank within the feature (cividis: low dark blue, high yellow)."""
    feats = _top(shap_result, max_features)[::-1]
    fig, ax = plt.subplots(figsize=figsize or (6.5, max(2.6, 0.35 * len(feats) + 1.4)))
    rng = np.random.default_rng(0)
    for i, f in enumerate(feats):
        v = shap_result.values[f].to_numpy(float)
        x = shap_result.data[f].to_numpy(float) if f in shap_result.data else np.full(len(v), np.nan)
        ok = np.isfinite(x)
        colour = np.full(len(v), 0.5)
        if ok.sum() > 1:
            colour[ok] = pd.Series(x[ok]).rank(pct=True).to_numpy()
        jitter = rng.normal(0, 0.09, len(v))
        sc = ax.scatter(v, i + jitter, c=colour, cmap="cividis", vmin=0, vmax=1, s=7, lw=0)
    ax.axvline(0, color="k", lw=0.6)
    ax.set_yticks(range(len(feats)), feats, fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
    ax.set_xlabel(xlabel or f"SHAP value ({shap_result.output} scale), held-out folds")
    ax.set_title(title or f"{shap_result.explainer}", fontsize=8)
    cb = fig.colorbar(sc, ax=ax, pad=0.01, aspect=30)
    cb.set_ticks([0, 1], labels=["low", "high"])
    cb.set_label("feature value")
    fig.tight_layout()
    return fig


def plot_shap_bar(shap_result, *, max_features: int = 15, title: str | None = None,
                  figsize=None) -> Figure:
    """Mean |SHAP| ranking with the fold-to-fold spread (mean +/- SD over CV folds; min-max dots)."""
    r = shap_result.ranking.head(max_features).iloc[::-1]
    fig, ax = plt.subplots(figsize=figsize or (6.0, 0.33 * len(r) + 1.2))
    y = np.arange(len(r))
    ax.barh(y, r["mean_abs_shap"], color=OKABE_ITO[0], alpha=0.8, xerr=r["sd_folds"],
            error_kw={"lw": 0.8, "capsize": 2})
    ax.scatter(r["min_folds"], y, s=8, color="k", marker="|")
    ax.scatter(r["max_folds"], y, s=8, color="k", marker="|")
    ax.set_yticks(y, r["feature"], fontsize=8)
    ax.set_xlabel(f"mean |SHAP| ({shap_result.output}); bars: SD over folds, ticks: fold range")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_divergence(divergence: pd.DataFrame, *, top: int = 10, labels=("PRIME-R (response)",
                                                                       "PRIME-S (survival)"),
                    figsize=None) -> Figure:
    """The paper's divergence view: each feature's share of response importance (left) beside its
    share of survival importance (right), from :func:`prime_stats.explain.divergence_table`."""
    d = divergence.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=figsize or (7.0, 0.35 * len(d) + 1.4))
    y = np.arange(len(d))
    ax.barh(y, -d["response_share"], color=OKABE_ITO[0], label=labels[0])
    ax.barh(y, d["survival_share"], color=OKABE_ITO[1], label=labels[1])
    ax.axvline(0, color="k", lw=0.8)
    ax.set_yticks(y, d["feature"], fontsize=8)
    lim = max(d["response_share"].max(), d["survival_share"].max()) * 1.1 or 1
    ax.set_xlim(-lim, lim)
    ticks = ax.get_xticks()
    ax.set_xticks(ticks, [f"{abs(t):.0%}" for t in ticks])
    ax.set_xlabel("share of mean |SHAP|")
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_survshap(survshap_result, *, features: Sequence[str] | None = None, max_features: int = 6,
                  patient=None, time_scale: float = 1.0, time_label: str = "Time",
                  figsize=(6.5, 4.2)) -> Figure:
    """SurvSHAP(t) curves: mean |SHAP(t)| per feature over time (global), or one patient's signed
    SHAP(t) curves when ``patient`` (an index label of the explained rows) is given."""
    res = survshap_result
    feats = list(features) if features is not None else list(res.ranking["feature"].head(max_features))
    idx = [res.features.index(f) for f in feats]
    t = res.times / time_scale
    fig, ax = plt.subplots(figsize=figsize)
    if patient is None:
        curves = np.abs(res.values).mean(axis=0)[:, idx]
        ylabel = "mean |SurvSHAP(t)|"
    else:
        if patient not in res.index:
            raise KeyError(f"patient {patient!r} was not explained")
        curves = res.values[list(res.index).index(patient)][:, idx]
        ylabel = f"SurvSHAP(t), patient {patient}"
        ax.axhline(0, color="k", lw=0.6)
    for k, f in enumerate(feats):
        ax.plot(t, curves[:, k], marker="o", ms=3, lw=1.6, color=OKABE_ITO[k % len(OKABE_ITO)], label=f)
    ax.set_xlabel(time_label)
    ax.set_ylabel(ylabel)
    ax.set_title(res.explainer, fontsize=8)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return fig


def plot_paradox_km(paradox_result, *, time_scale: float = 30.4375,
                    xlabel: str = "Time since treatment start (months)",
                    title: str | None = "Responder paradox: overall survival by PRIME-R x PRIME-S quadrant",
                    figsize=(7.0, 6.4)) -> Figure:
    """Kaplan-Meier curves of the four quadrants with numbers at risk; above the panel the log-rank p
    and the paradox HR (responder/high vs responder/low risk), never over the curves."""
    data = paradox_result.data.assign(quadrant=paradox_result.data["quadrant"].astype(str))
    short = {q: q.replace("non-responder", "NR").replace("responder", "R") for q in data["quadrant"].unique()}
    hr = paradox_result.hazard_ratio.iloc[0]
    ci = np.array([hr["lower"], hr["upper"]], dtype=float)
    if np.isfinite(ci).all() and ci[0] > 0:
        line = f"R/high vs R/low risk: HR {hr['estimate']:.2f} (95% CI {hr['lower']:.2f}-{hr['upper']:.2f})"
    else:   # a quadrant without events or with one patient: the Cox HR is not estimable
        line = "R/high vs R/low risk: HR not estimable (a quadrant too small or without deaths)"
    extra = f"{line}\nR = predicted responder (PRIME-R), risk = PRIME-S"
    return plot_kaplan_meier(data, "os_days", "os_event", "quadrant", time_scale=time_scale, xlabel=xlabel,
                             title=title, group_labels=short, show_logrank=True, show_hr=False,
                             extra_annotation=extra, figsize=figsize)
