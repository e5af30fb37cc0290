"""Summary figures drawn from stored tables: estimates with 95% CIs side by side (discrimination of every
model in every split, paired model differences, adjusted hazard ratios), the patient-flow diagram and the
correlation heatmap. matplotlib only; nothing here computes a statistic. Splits are always in flow order
(training, internal test, external) and each split has its own colour and marker, so points that
coincide stay distinguishable; a CI leaving the axis ends in an arrow.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from prime_stats.report.figures import OKABE_ITO

__all__ = ["interval_figure", "flow_diagram_figure", "correlation_heatmap"]

SPLIT_ORDER = ("train", "test", "external")
SPLIT_NAMES = {"train": "training (apparent)", "test": "internal test", "external": "external"}
_MARKERS = {"train": "o", "test": "s", "external": "D"}


def _finite_range(values: np.ndarray, log: bool) -> tuple[float, float]:
    v = values[np.isfinite(values) & ((values > 0) if log else True)]
    return (float(v.min()), float(v.max())) if v.size else ((0.5, 2.0) if log else (0.0, 1.0))


def interval_figure(table: pd.DataFrame, panel: str, row: str, *, panels: Sequence[str] | None = None,
                    rows: Sequence[str] | None = None, reference: float | None = None, log: bool = False,
                    xlim: tuple[float, float] | None = None, xlabel: str | Sequence[str] = "Estimate (95% CI)",
                    title: str | None = None, width: float | None = None, max_columns: int = 3) -> Figure:
    """Estimates with 95% CIs: one panel per value of ``panel``, one row per value of ``row``, one point per
    split (flow order, offset vertically, own colour and marker). ``table``: panel, row, split, estimate,
    lower, upper. ``reference``: a dashed vertical line (0.5 for AUC/C, 0 for differences, 1 for HRs).
    ``xlim`` bounds the axis (per figure); a CI beyond it ends in an arrow. ``xlabel``: one for the figure
    or one per panel. Panels wrap after ``max_columns``.
    """
    need = [panel, row, "split", "estimate", "lower", "upper"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"interval table lacks column(s) {missing} (has {list(table.columns)})")
    if table.empty:
        raise ValueError("interval table is empty")
    t = table.assign(**{panel: table[panel].astype(str), row: table[row].astype(str)})
    panels = [p for p in (panels or dict.fromkeys(t[panel])) if p in set(t[panel])]
    rows = [r for r in (rows or dict.fromkeys(t[row])) if r in set(t[row])]
    splits = [s for s in SPLIT_ORDER if s in set(t["split"])] + \
        [s for s in dict.fromkeys(t["split"]) if s not in SPLIT_ORDER]
    allv = t[["estimate", "lower", "upper"]].to_numpy(float).ravel()
    lo, hi = xlim or _finite_range(allv, log)
    if xlim is None:
        pad = (np.log(hi) - np.log(lo)) * 0.06 if log else (hi - lo) * 0.06 or 0.05
        lo, hi = (np.exp(np.log(lo) - pad), np.exp(np.log(hi) + pad)) if log else (lo - pad, hi + pad)
    per_panel = not isinstance(xlabel, str)
    ncol = min(len(panels), max_columns)
    nrow = int(np.ceil(len(panels) / ncol))
    label_w = 0.12 + 0.075 * max(len(r) for r in rows)
    width = width or min(label_w + 3.3 * ncol + 0.4, 13.0)
    panel_h = 0.55 + (0.42 if len(rows) < 6 else 0.3) * len(rows) * max(1, len(splits)) ** 0.5
    top = 0.2 + 0.3 * (title is not None)
    bottom = 0.75 + 0.25 * (not per_panel)
    height = top + bottom + nrow * (panel_h + 0.35)
    fig = Figure(figsize=(width, height))
    grid = fig.add_gridspec(nrow, ncol, left=label_w / width, right=1 - 0.2 / width, bottom=bottom / height,
                            top=1 - (top + 0.3) / height, wspace=0.08, hspace=0.55 / panel_h)
    step = 0.6 / max(len(splits), 1)
    handles = {}
    for k, p in enumerate(panels):
        ax = fig.add_subplot(grid[k // ncol, k % ncol])
        if log:
            ax.set_xscale("log")
            ticks = [v for v in (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32) if lo <= v <= hi]
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{v:g}" for v in ticks])
            ax.minorticks_off()
        ax.set_xlim(lo, hi)
        ax.set_ylim(-0.6, len(rows) - 0.4)
        if reference is not None:
            ax.axvline(reference, color="0.45", lw=0.9, ls=(0, (4, 3)))
        d = t[t[panel] == p]
        for i, r in enumerate(rows):
            y0 = len(rows) - 1 - i
            for j, s in enumerate(splits):
                sel = d[(d[row] == r) & (d["split"] == s)]
                if sel.empty or not np.isfinite(sel["estimate"].iloc[0]):
                    continue
                e, a, b = (float(sel[c].iloc[0]) for c in ("estimate", "lower", "upper"))
                y = y0 + (len(splits) - 1) / 2 * step - j * step
                col = OKABE_ITO[(SPLIT_ORDER.index(s) if s in SPLIT_ORDER else j) % len(OKABE_ITO)]
                if np.isfinite(a) and np.isfinite(b):
                    ax.plot([max(a, lo), min(b, hi)], [y, y], color=col, lw=1.5, solid_capstyle="butt")
                    for beyond, end, start in ((b > hi, hi, max(a, lo)), (a < lo, lo, min(b, hi))):
                        if beyond:
                            ax.annotate("", xy=(end, y), xytext=(start, y),
                                        arrowprops=dict(arrowstyle="-|>", color=col, lw=1.5, mutation_scale=10,
                                                        shrinkA=0, shrinkB=0))
                if lo <= e <= hi:
                    (h,) = ax.plot(e, y, _MARKERS.get(s, "o"), color=col, ms=5.5, mec="white", mew=0.6,
                                   label=SPLIT_NAMES.get(s, s), clip_on=False)  # a point on the edge stays whole
                    handles.setdefault(s, h)
        ax.set_yticks(range(len(rows) - 1, -1, -1))
        ax.set_yticklabels(rows if k % ncol == 0 else [""] * len(rows), fontsize=9)
        ax.tick_params(axis="y", length=0)
        ax.set_title(p, fontsize=10)
        if per_panel:
            ax.set_xlabel(xlabel[k], fontsize=9)
        ax.tick_params(axis="x", labelsize=8)
        ax.spines[["top", "right"]].set_visible(False)
        ax.grid(axis="x", alpha=0.3, lw=0.5)
    if not per_panel:
        fig.text(0.5 * (1 + label_w / width), 0.42 / height, xlabel, ha="center", va="center", fontsize=9.5)
    fig.legend([handles[s] for s in splits if s in handles], [SPLIT_NAMES.get(s, s) for s in splits if s in handles],
               loc="lower center", ncol=max(len(handles), 1), frameon=False, fontsize=9, bbox_to_anchor=(0.5, 0.0))
    if title:
        fig.text(0.15 / width, 1 - 0.1 / height, title, ha="left", va="top", fontsize=11)
    fig.prime_stats_engine = "python"
    return fig


def flow_diagram_figure(flow: pd.DataFrame, title: str | None = None) -> Figure:
    """CONSORT-style flow diagram from the stored ``flow_diagram`` table (box, level, parent, label, n,
    responders, deaths, detail): centres on top, exclusions beside them, analysis sets below, arrows
    from each centre to the sets it feeds."""
    need = ["box", "level", "parent", "label", "n"]
    missing = [c for c in need if c not in flow.columns]
    if missing:
        raise ValueError(f"flow_diagram table lacks column(s) {missing}")
    f = flow.fillna({"parent": "", "detail": ""})
    centres, splits = f[f["level"] == "centre"], f[f["level"] == "split"]
    excl = f[f["level"] == "exclusion"]
    box_w, box_h, gap = 2.5, 1.05, 0.45
    ncol = max(len(centres) + len(excl), len(splits), 1)
    width = max(ncol * (box_w + gap) + 0.4, 6.0)
    height = 4.2 + 0.3 * (title is not None)
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes([0, 0, 1, 1 - 0.3 * (title is not None) / height])
    ax.set_xlim(0, width)
    ax.set_ylim(0, 4.2)
    ax.set_axis_off()

    def text(r) -> str:
        lines = [str(r["label"]), f"n = {int(r['n'])}"]
        counts = [f"{int(r[c])} {c}" for c in ("responders", "deaths") if c in r and pd.notna(r[c])]
        if counts:
            lines.append(", ".join(counts))
        if str(r.get("detail", "")):
            lines.append(str(r["detail"]))
        return "\n".join(lines)

    def draw(x, y, r, colour):
        ax.add_patch(FancyBboxPatch((x - box_w / 2, y - box_h / 2), box_w, box_h,
                                    boxstyle="round,pad=0.02,rounding_size=0.08", fc=colour, ec="0.25", lw=0.9))
        ax.text(x, y, text(r), ha="center", va="center", fontsize=8.5, wrap=True)

    pos = {}
    top_boxes = [(r, "centre") for _, r in centres.iterrows()]
    top_boxes = sum(([(r, "centre")] + [(e, "exclusion") for _, e in excl[excl["parent"] == r["box"]].iterrows()]
                     for r, _ in top_boxes), [])
    x0 = (width - len(top_boxes) * (box_w + gap) + gap) / 2 + box_w / 2
    for i, (r, kind) in enumerate(top_boxes):
        x, y = x0 + i * (box_w + gap), 3.3 if kind == "centre" else 3.3
        draw(x, y, r, "#dbe9f6" if kind == "centre" else "#f6e3d6")
        pos[r["box"]] = (x, y)
        if kind == "exclusion":
            px, py = pos[r["parent"]]
            ax.annotate("", xy=(x - box_w / 2, y), xytext=(px + box_w / 2, py),
                        arrowprops=dict(arrowstyle="-|>", color="0.3", lw=0.9))
    xs = (width - len(splits) * (box_w + gap) + gap) / 2 + box_w / 2
    for i, (_, r) in enumerate(splits.iterrows()):
        x, y = xs + i * (box_w + gap), 1.0
        draw(x, y, r, "#e3f1e4")
        for p in [q.strip() for q in str(r["parent"]).split(",") if q.strip()]:
            if p in pos:
                px, py = pos[p]
                ax.annotate("", xy=(x, y + box_h / 2), xytext=(px, py - box_h / 2),
                            arrowprops=dict(arrowstyle="-|>", color="0.3", lw=0.9))
    if title:
        fig.text(0.15 / width, 1 - 0.08 / height, title, ha="left", va="top", fontsize=11)
    fig.prime_stats_engine = "python"
    return fig


def correlation_heatmap(long: pd.DataFrame, title: str | None = None, max_label: int = 28) -> Figure:
    """Heatmap of a stored correlation table (``descriptive.correlation_matrix(...).long``: var1, var2,
    estimate, p_adj): coefficients on a diverging scale from -1 to 1, printed in the cells, with a star
    where the BH-adjusted p < 0.05."""
    need = ["var1", "var2", "estimate", "p_adj"]
    missing = [c for c in need if c not in long.columns]
    if missing:
        raise ValueError(f"correlation table lacks column(s) {missing}")
    names = list(dict.fromkeys(list(long["var1"].astype(str)) + list(long["var2"].astype(str))))
    k = len(names)
    r = np.eye(k)
    star = np.zeros((k, k), dtype=bool)
    ix = {n: i for i, n in enumerate(names)}
    for _, row in long.iterrows():
        i, j = ix[str(row["var1"])], ix[str(row["var2"])]
        r[i, j] = r[j, i] = row["estimate"]
        star[i, j] = star[j, i] = bool(row["p_adj"] < 0.05) if pd.notna(row["p_adj"]) else False
    labels = [n if len(n) <= max_label else n[: max_label - 1] + "…" for n in names]
    cell = 0.48 if k <= 14 else 0.34
    left = 0.6 + 0.068 * max(len(s) for s in labels)
    width, height = left + cell * k + 1.2, left + cell * k + 0.3 + 0.3 * (title is not None)
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes([left / width, left / height, cell * k / width, cell * k / height])
    shown = r.copy()
    np.fill_diagonal(shown, np.nan)           # the diagonal (1) in grey, so the scale shows the pairs
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="0.88")
    im = ax.imshow(shown, cmap=cmap, norm=TwoSlopeNorm(0.0, -1.0, 1.0))
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticklabels(labels, fontsize=8)
    if k <= 14:
        for i in range(k):
            for j in range(k):
                if i != j and np.isfinite(r[i, j]):
                    ax.text(j, i, f"{r[i, j]:.2f}" + ("*" if star[i, j] else ""), ha="center", va="center",
                            fontsize=7, color="white" if abs(r[i, j]) > 0.6 else "black")
    cax = fig.add_axes([(left + cell * k + 0.25) / width, left / height, 0.15 / width, cell * k / height])
    fig.colorbar(im, cax=cax).set_label("Spearman's rho", fontsize=8)
    cax.tick_params(labelsize=7)
    ax.set_title("* BH-adjusted p < 0.05", fontsize=8, loc="left")
    if title:
        fig.text(0.15 / width, 1 - 0.08 / height, title, ha="left", va="top", fontsize=11)
    fig.prime_stats_engine = "python"
    return fig
