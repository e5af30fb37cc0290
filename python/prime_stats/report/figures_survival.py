"""Publication figures for survival analyses: Kaplan-Meier curves with a numbers-at-risk table and
subgroup forest plots. Colours follow the colour-blind-safe Okabe-Ito palette.

All numbers drawn come from :mod:`prime_stats.evaluation.survival` (nothing is typed in by hand).
"""
from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - headless rendering for reports and CI
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from prime_stats.evaluation import survival as sv

__all__ = ["OKABE_ITO", "plot_kaplan_meier", "plot_forest"]

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def plot_kaplan_meier(data: pd.DataFrame, time: str, event: str, group: str | None = None,
                      risk_times: Sequence[float] | None = None, time_scale: float = 1.0,
                      xlabel: str = "Time", ylabel: str = "Survival probability", title: str | None = None,
                      group_labels: dict | None = None, conf_int: bool = True, show_logrank: bool = True,
                      show_hr: bool = True, palette: Sequence[str] = OKABE_ITO,
                      figsize: tuple[float, float] = (6.5, 5.2)) -> Figure:
    """Kaplan-Meier curves by group with log-CI bands, censoring marks and a numbers-at-risk table.

    ``time_scale`` divides times for display (e.g. 30.4375 to plot days in months); ``risk_times``
    are in display units. With two groups the log-rank p and the Cox HR (second level vs first,
    95% CI) are annotated.
    """
    km = sv.kaplan_meier(data, time, event, group)
    levels = list(km.summary["group"])
    labels = {lv: str((group_labels or {}).get(lv, lv)) for lv in levels}
    tmax = float(pd.to_numeric(data[time]).max()) / time_scale
    if risk_times is None:
        risk_times = np.round(np.linspace(0, tmax, 6), 1 if tmax < 10 else 0)
    risk_times = [float(t) for t in risk_times]
    n_groups = len(levels)
    fig = plt.figure(figsize=figsize)
    table_h = 0.045 * (n_groups + 1)
    ax = fig.add_axes([0.2, 0.1 + table_h + 0.07, 0.76, 0.82 - table_h - 0.07])
    axr = fig.add_axes([0.2, 0.1, 0.76, table_h], sharex=ax)
    for i, lv in enumerate(levels):
        c = km.curve[km.curve["group"] == lv]
        col = palette[i % len(palette)]
        x = np.concatenate([[0.0], c["time"].to_numpy() / time_scale])
        s = np.concatenate([[1.0], c["surv"].to_numpy()])
        ax.step(x, s, where="post", color=col, lw=1.8, label=labels[lv])
        if conf_int:
            lo = np.concatenate([[1.0], np.nan_to_num(c["lower"].to_numpy(), nan=0.0)])
            up = np.concatenate([[1.0], np.nan_to_num(c["upper"].to_numpy(), nan=0.0)])
            ax.fill_between(x, lo, up, step="post", color=col, alpha=0.18, lw=0)
        cens = c[c["n_censor"] > 0]
        ax.plot(cens["time"] / time_scale, cens["surv"], "|", color=col, ms=6, mew=1.2)
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0, tmax * 1.02)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, lw=0.5)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, loc="upper right", fontsize=9)
    plt.setp(ax.get_xticklabels(), visible=False)
    if title:
        ax.set_title(title, fontsize=11)
    notes = []
    if group is not None and n_groups >= 2 and show_logrank and km.summary["events"].sum() > 0:
        lr = sv.logrank_test(data, time, event, group)
        notes.append(f"Log-rank {_fmt_p(float(lr['p'].iloc[0]))}")
    if group is not None and n_groups == 2 and show_hr and km.summary["events"].sum() > 0:
        d = pd.DataFrame({"t": pd.to_numeric(data[time]).to_numpy(), "e": data[event].to_numpy(),
                          "g": (data[group].to_numpy() == levels[1]).astype(float)})
        hr = sv.cox_hazard_ratios(d, "t", "e", ["g"], id_col=None).iloc[0]
        notes.append(f"HR {labels[levels[1]]} vs {labels[levels[0]]}: "
                     f"{hr['estimate']:.2f} ({hr['lower']:.2f}-{hr['upper']:.2f})")
    if notes:
        ax.text(0.02, 0.04, "\n".join(notes), transform=ax.transAxes, fontsize=9, va="bottom",
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="0.8", alpha=0.9))
    # numbers-at-risk table
    t_all = pd.to_numeric(data[time]).to_numpy(float) / time_scale
    g_all = np.zeros(len(data), dtype=int) if group is None else data[group].to_numpy()
    for i, lv in enumerate(levels):
        y = n_groups - i
        tg = t_all[g_all == lv] if group is not None else t_all
        for rt in risk_times:
            axr.text(rt, y, f"{int((tg >= rt).sum())}", ha="center", va="center", fontsize=8.5,
                     color=palette[i % len(palette)])
    axr.set_ylim(0.3, n_groups + 0.7)
    axr.set_yticks(range(n_groups, 0, -1))
    axr.set_yticklabels([labels[lv] for lv in levels], fontsize=8.5)
    for tick, i in zip(axr.get_yticklabels(), range(n_groups)):
        tick.set_color(palette[i % len(palette)])
    axr.set_xticks(risk_times)
    axr.set_xlabel(xlabel)
    axr.set_title("Number at risk", fontsize=9, loc="left", pad=3)
    axr.spines[["top", "right", "left"]].set_visible(False)
    axr.tick_params(axis="y", length=0, pad=14)
    return fig


def plot_forest(table: pd.DataFrame, title: str | None = None, xlabel: str = "Hazard ratio (95% CI)",
                color: str = OKABE_ITO[0], figsize_width: float = 8.5) -> Figure:
    """Forest plot of :func:`prime_stats.evaluation.survival.subgroup_hazard_ratios` output.

    One row per subgroup level (headers in bold), the HR and 95% CI on a log axis, and text
    columns for n (events), HR (95% CI) and the interaction p value.
    """
    need = {"subgroup", "level", "n", "events", "estimate", "lower", "upper", "p_interaction"}
    missing = need - set(table.columns)
    if missing:
        raise ValueError(f"forest table lacks column(s) {sorted(missing)}")
    rows = []  # (label, is_header, record or None)
    for sg, block in table.groupby("subgroup", sort=False):
        if sg == "Overall":
            rows.append(("Overall", True, block.iloc[0]))
            continue
        rows.append((str(sg), True, None))
        for _, r in block.iterrows():
            rows.append((f"   {r['level']}", False, r))
    n_rows = len(rows)
    height = 1.2 + 0.28 * n_rows
    fig = plt.figure(figsize=(figsize_width, height))
    ax = fig.add_axes([0.24, 0.75 / height, 0.28, 1 - 1.45 / height])
    finite = table[np.isfinite(table["lower"]) & np.isfinite(table["upper"])]
    lo = float(min(finite["lower"].min(), 0.5)) if len(finite) else 0.5
    hi = float(max(finite["upper"].max(), 2.0)) if len(finite) else 2.0
    ax.set_xscale("log")
    ax.set_xlim(lo / 1.15, hi * 1.15)
    ax.set_ylim(-0.7, n_rows - 0.3)
    ax.axvline(1.0, color="0.4", lw=0.8, ls="--")
    p_int_done = set()
    for i, (label, header, r) in enumerate(rows):
        y = n_rows - 1 - i
        weight = "bold" if header else "normal"
        ax.text(-0.02, y, label, transform=ax.get_yaxis_transform(), ha="right", va="center",
                fontsize=9, fontweight=weight)
        if header and r is None:
            p = table.loc[table["subgroup"] == label, "p_interaction"].iloc[0]
            if np.isfinite(p) and label not in p_int_done:
                ax.text(2.15, y, f"{p:.3f}" if p >= 0.001 else "<0.001", transform=ax.get_yaxis_transform(),
                        ha="left", va="center", fontsize=9)
                p_int_done.add(label)
            continue
        ax.text(1.05, y, f"{int(r['n'])} ({int(r['events'])})", transform=ax.get_yaxis_transform(),
                ha="left", va="center", fontsize=9)
        if np.isfinite(r["estimate"]):
            ax.plot([r["lower"], r["upper"]], [y, y], color=color, lw=1.4)
            ax.plot(r["estimate"], y, "s" if not header else "D", color=color, ms=5 if not header else 6)
            txt = f"{r['estimate']:.2f} ({r['lower']:.2f}-{r['upper']:.2f})"
        else:
            txt = f"NA ({r.get('note', '')})" if str(r.get("note", "")) else "NA"
        ax.text(1.45, y, txt, transform=ax.get_yaxis_transform(), ha="left", va="center", fontsize=9)
    top = n_rows - 0.35
    for x, head in [(-0.02, "Subgroup"), (1.05, "n (events)"), (1.45, "HR (95% CI)"), (2.15, "P interaction")]:
        ax.text(x, top + 0.55, head, transform=ax.get_yaxis_transform(), ha="right" if x < 0 else "left",
                va="bottom", fontsize=9, fontweight="bold", clip_on=False)
    ax.set_yticks([])
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.set_xlabel(xlabel, fontsize=9)
    ticks = [t for t in (0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32) if lo / 1.15 <= t <= hi * 1.15]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks], fontsize=8)
    ax.minorticks_off()
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.1 / height)
    return fig
