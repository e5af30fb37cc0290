"""The report's survival and validation figures, drawn from stored tables by R or by matplotlib.

One function per figure; each takes the tables a study stores (``tables/*.csv``, built by
:mod:`prime_stats.report.figures_data` and :mod:`prime_stats.evaluation`) and an ``engine``, resolved
like the numbers' engine (:func:`prime_stats.rbridge.resolve_engine`: "auto" = R when R and the
packages are installed, "python", "R"):

* :func:`km_figure` - Kaplan-Meier curves with CIs, censoring marks, a numbers-at-risk table under the
  axis, and the log-rank p and HR (high vs low) above the panel, never over the curves. R:
  ``survminer::ggsurvplot`` (``ps_plot_km`` in ``R/plots.R``).
* :func:`calibration_figure` - rms-style calibration (``rms::val.prob`` / ``calibrate`` plots): the
  smoothed curve, its pointwise 95% band, a rug of the predictions and the ideal line; one panel per
  model (and per horizon for survival). R: ``ps_plot_calibration`` (ggplot2).
* :func:`decision_curve_figure` - net benefit of the models, treat-all and treat-none, binary or at a
  survival horizon, in the style of R's ``dcurves::plot.dca``. R: ``ps_plot_decision``.
* :func:`forest_figure` - subgroup HRs on a log axis with arrows where a CI leaves the axis. R:
  ``ps_plot_forest``.

Both engines draw the same numbers (the stored table) with the same layout. Time tables are in days;
axes show months (``time_scale`` days per month) with a tick every 6 months. Without ``path`` a
function returns a matplotlib Figure (an R-drawn figure is embedded as its image); with ``path`` it
writes a PNG of exactly ``width`` x ``height`` inches at ``dpi`` and returns a :class:`FigureFile`.
Either way :func:`figure_engine` says which engine drew it, for the caption.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import transforms
from matplotlib.ticker import MultipleLocator
from matplotlib.figure import Figure

from prime_stats import rbridge
from prime_stats.report.figures_data import DAYS_PER_MONTH

__all__ = ["OKABE_ITO", "LINESTYLES", "line_width", "FigureFile", "figure_engine", "annotation_text", "km_figure",
           "calibration_figure", "decision_curve_figure", "forest_figure"]

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
# solid, dashed, dotted, dot-dash, long dash: curves that coincide stay distinguishable
LINESTYLES = ["-", (0, (5, 2.5)), (0, (1.2, 1.6)), (0, (5, 2, 1.2, 2)), (0, (9, 3))]
_R_LINETYPES = ["solid", "52", "12", "5212", "93"]  # the same dash patterns in ggplot2's hex notation
_R_PACKAGES = {"km": ("survival", "survminer", "ggplot2"), "other": ("ggplot2",)}


@dataclass(frozen=True)
class FigureFile:
    """A figure written to ``path`` by ``engine`` ("R" or "python"). ``risk_table`` (KM only) holds the
    numbers at risk as printed under the plot (group, time, n_risk), read back from the drawn object."""
    path: Path
    engine: str
    risk_table: pd.DataFrame | None = None


def figure_engine(fig) -> str:
    """The engine that drew a figure returned by this module ("R" or "python")."""
    if isinstance(fig, FigureFile):
        return fig.engine
    engine = getattr(fig, "prime_stats_engine", None)
    if engine is None:
        raise ValueError("this figure was not drawn by prime_stats.report.figures")
    return engine


def _need(df: pd.DataFrame, cols: Sequence[str], what: str) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{what} must be a DataFrame, got {type(df).__name__}")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} table lacks column(s) {missing} (has {list(df.columns)})")
    if df.empty:
        raise ValueError(f"{what} table is empty")
    if "split" in df.columns and df["split"].nunique() > 1:
        raise ValueError(f"{what} table holds the splits {sorted(df['split'].astype(str).unique())}: pass one "
                         "split's rows")
    return df


def _engine(engine: str, kind: str) -> str:
    return rbridge.resolve_engine(engine, _R_PACKAGES[kind])


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def annotation_text(annotation: Mapping | str | None) -> str | None:
    """The KM annotation line printed above the panel by both engines, from
    :func:`~prime_stats.report.figures_data.km_annotation` (or a string, used as is)."""
    if annotation is None or isinstance(annotation, str):
        return annotation
    parts = []
    if np.isfinite(annotation.get("logrank_p", np.nan)):
        parts.append(f"Log-rank {_fmt_p(annotation['logrank_p'])}")
    if np.isfinite(annotation.get("hr", np.nan)):
        parts.append(f"HR {annotation.get('contrast', 'high vs low risk')} {annotation['hr']:.2f} "
                     f"(95% CI {annotation['hr_lower']:.2f}-{annotation['hr_upper']:.2f})")
    return ";  ".join(parts) or None


def line_width(i: int) -> float:
    """Points: each later model is drawn thinner on top, so a curve that coincides with an earlier one
    shows inside it (together with its own colour and dash pattern)."""
    return max(2.2 - 0.5 * i, 0.8)


def _horizon_label(h: float, time_scale: float, unit: str) -> str:
    return f"{round(h / time_scale, 1):g} {unit}"


# ------------------------------------------------------------------------------------- output
def _python_out(fig: Figure, path, dpi: int):
    fig.prime_stats_engine = "python"
    if path is None:
        return fig
    path = Path(path)
    fig.savefig(path, dpi=dpi, format="png")  # no bbox_inches: the PNG is exactly width x height
    return FigureFile(path, "python", getattr(fig, "prime_stats_risk_table", None))


def _r_out(builder: str, path, width: float, height: float, dpi: int, **kwargs):
    if path is not None:
        res = rbridge.draw_r_figure(builder, Path(path), width=width, height=height, dpi=dpi, **kwargs)
        return FigureFile(Path(path), "R", res.get("risk_table"))
    import matplotlib.image as mpimg

    with tempfile.TemporaryDirectory(prefix="ps_fig_") as tmp:
        target = Path(tmp) / "figure.png"
        res = rbridge.draw_r_figure(builder, target, width=width, height=height, dpi=dpi, **kwargs)
        img = mpimg.imread(target)
    risk = res.get("risk_table")
    fig = Figure(figsize=(img.shape[1] / dpi, img.shape[0] / dpi), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(img, interpolation="none")
    ax.set_axis_off()
    fig.prime_stats_engine = "R"
    fig.prime_stats_risk_table = risk
    return fig


def _axes_inches(fig: Figure, left: float, bottom: float, width: float, height: float):
    W, H = fig.get_size_inches()
    return fig.add_axes([left / W, bottom / H, width / W, height / H])


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(alpha=0.3, lw=0.5)


# --------------------------------------------------------------------------------- Kaplan-Meier
def _km_levels(curves: pd.DataFrame, at_risk: pd.DataFrame, groups: Mapping | None) -> dict[str, str]:
    present = list(dict.fromkeys(curves["group"].astype(str)))
    if groups is None:
        groups = {g: g for g in present}
    groups = {str(k): str(v) for k, v in groups.items()}
    unknown = [g for g in present if g not in groups]
    if unknown:
        raise ValueError(f"curve group(s) {unknown} are not in groups {list(groups)}")
    missing = sorted(set(groups) & set(present) - set(at_risk["group"].astype(str)))
    if missing:
        raise ValueError(f"at_risk table has no rows for group(s) {missing}")
    return {g: lab for g, lab in groups.items() if g in present}


def km_figure(curves: pd.DataFrame, at_risk: pd.DataFrame, annotation: Mapping | str | None = None,
              engine: str = "auto", path=None, *, groups: Mapping | None = None, title: str | None = None,
              legend_title: str = "", time_scale: float = DAYS_PER_MONTH,
              time_label: str = "Time since treatment start (months)", width: float = 7.0,
              height: float = 6.0, dpi: int = 150):
    """Kaplan-Meier figure from a stored curve table and numbers-at-risk table.

    ``curves``: group, time, n_risk, n_event, n_censor, surv, lower, upper (``kaplan_meier(...).curve``,
    std_err optional); ``at_risk``: group, time, n_risk on the tick grid (``figures_data.km_tables``),
    whose times (divided by ``time_scale``) are the x-axis ticks. ``annotation``: the output of
    ``figures_data.km_annotation`` (log-rank p, HR high vs low) or a string; printed above the panel.
    ``groups``: ordered {group value: legend label} (default: order of appearance). R engine:
    ``survminer::ggsurvplot`` with ``risk.table = TRUE`` (``ps_plot_km``).
    """
    _need(curves, ["group", "time", "n_risk", "n_event", "n_censor", "surv", "lower", "upper"], "curves")
    _need(at_risk, ["group", "time", "n_risk"], "at_risk")
    levels = _km_levels(curves, at_risk, groups)
    text = annotation_text(annotation)
    eng = _engine(engine, "km")
    if eng == "R":
        cu = curves.assign(group=curves["group"].astype(str))
        if "std_err" not in cu:
            cu["std_err"] = np.nan
        ar = at_risk.assign(group=at_risk["group"].astype(str))
        return _r_out("ps_plot_km", path, width, height, dpi,
                      curves=cu[["group", "time", "n_risk", "n_event", "n_censor", "surv", "std_err", "lower",
                                 "upper"]],
                      at_risk=ar[["group", "time", "n_risk"]], annotation=text, levels=list(levels),
                      labels=list(levels.values()), time_scale=float(time_scale), time_label=time_label,
                      title=title, legend_title=legend_title)
    return _python_out(_km_python(curves, at_risk, text, levels, title, legend_title, time_scale, time_label,
                                  width, height), path, dpi)


def _km_python(curves, at_risk, text, levels, title, legend_title, time_scale, time_label, width, height):
    fig = Figure(figsize=(width, height))
    n_g = len(levels)
    ticks = np.sort(pd.to_numeric(at_risk["time"]).unique()) / time_scale
    t_max = max(float(pd.to_numeric(curves["time"]).max()) / time_scale, float(ticks.max()))
    left, right = 1.15, 0.25
    table_h = 0.26 * n_g + 0.1
    n_text = 0 if text is None else text.count("\n") + 1
    top = 0.12 + 0.32 * (title is not None) + 0.22 * n_text + 0.1 * (n_text > 0) + 0.32
    main_bottom = 0.55 + table_h + 0.32 + 0.62
    ax = _axes_inches(fig, left, main_bottom, width - left - right, height - top - main_bottom)
    axr = _axes_inches(fig, left, 0.55, width - left - right, table_h)
    handles = []
    for i, (g, label) in enumerate(levels.items()):
        c = curves[curves["group"].astype(str) == g].sort_values("time")
        col, ls = OKABE_ITO[i % len(OKABE_ITO)], LINESTYLES[i % len(LINESTYLES)]
        x = np.concatenate([[0.0], pd.to_numeric(c["time"]).to_numpy(float) / time_scale])
        s = np.concatenate([[1.0], c["surv"].to_numpy(float)])
        lo = np.concatenate([[1.0], c["lower"].to_numpy(float)])
        up = np.concatenate([[1.0], c["upper"].to_numpy(float)])
        ax.fill_between(x, np.nan_to_num(lo, nan=0.0), np.nan_to_num(up, nan=0.0), step="post", color=col,
                        alpha=0.16, lw=0)
        (h,) = ax.step(x, s, where="post", color=col, lw=1.8, ls=ls, label=label)
        handles.append(h)
        cens = c[c["n_censor"] > 0]
        ax.plot(pd.to_numeric(cens["time"]) / time_scale, cens["surv"], "+", color=col, ms=6, mew=1.1)
    ax.set_ylim(0, 1.03)
    ax.set_xlim(-0.02 * t_max, t_max * 1.02)
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    ax.set_ylabel("Survival probability")
    ax.set_xlabel(time_label)
    _style(ax)
    ax.legend(handles=handles, title=legend_title or None, loc="lower center", bbox_to_anchor=(0.5, 1.0),
              ncol=n_g, frameon=False, fontsize=9, handlelength=3)
    y_text = height - 0.12
    if title:
        fig.text(left / width, y_text / height, title, ha="left", va="top", fontsize=12)
        y_text -= 0.32
    if text:
        fig.text(left / width, y_text / height, text, ha="left", va="top", fontsize=9.5)
    # numbers at risk: the stored table, printed at the ticks
    printed = []
    for i, (g, label) in enumerate(levels.items()):
        y = n_g - i
        rows = at_risk[at_risk["group"].astype(str) == g]
        for t, n in zip(pd.to_numeric(rows["time"]) / time_scale, rows["n_risk"]):
            axr.text(t, y, f"{int(n)}", ha="center", va="center", fontsize=9, color=OKABE_ITO[i % len(OKABE_ITO)])
            printed.append({"group": g, "time": float(t * time_scale), "n_risk": int(n)})
    axr.set_xlim(ax.get_xlim())
    axr.set_ylim(0.4, n_g + 0.6)
    axr.set_yticks(range(n_g, 0, -1))
    axr.set_yticklabels(list(levels.values()), fontsize=9)
    for i, tick in enumerate(axr.get_yticklabels()):
        tick.set_color(OKABE_ITO[i % len(OKABE_ITO)])
    axr.set_xticks(ticks)
    axr.set_xticklabels([f"{t:g}" for t in ticks])
    axr.set_xlabel(time_label)
    axr.set_title("Number at risk", fontsize=10, loc="left", pad=4)
    axr.spines[["top", "right", "left"]].set_visible(False)
    axr.tick_params(axis="y", length=0)
    fig.prime_stats_risk_table = pd.DataFrame(printed)
    return fig


# ---------------------------------------------------------------------------------- calibration
def calibration_figure(curves: pd.DataFrame, rug: pd.DataFrame | None = None, engine: str = "auto", path=None,
                       *, title: str | None = None, time_scale: float = DAYS_PER_MONTH, time_unit: str = "months",
                       width: float | None = None, height: float | None = None, dpi: int = 150):
    """rms-style calibration figure from a stored calibration-curve table (``figures_data.calibration_curves``
    or ``calibration_curves_survival``: endpoint, horizon, model, predicted, observed, lower, upper) and
    the rug of predictions (``figures_data.prediction_rug``: model, horizon, predicted).

    One panel per model (columns) and horizon (rows), each with the ideal line, the curve, its band and
    the rug, so no curve hides another. Survival panels show the predicted vs observed risk of death by
    the horizon (in ``time_unit``). R engine: ``ps_plot_calibration`` (ggplot2 ``facet_grid``).
    """
    _need(curves, ["endpoint", "horizon", "model", "predicted", "observed", "lower", "upper"], "curves")
    if rug is not None:
        _need(rug, ["model", "horizon", "predicted"], "rug")
        if "endpoint" in rug:
            rug = rug[rug["endpoint"].astype(str) == str(curves["endpoint"].iloc[0])]
    models = list(dict.fromkeys(curves["model"].astype(str)))
    horizons = list(pd.unique(pd.to_numeric(curves["horizon"]).round(6)))  # NaN (binary) once
    survival = str(curves["endpoint"].iloc[0]) == "survival"
    what = "risk of death" if survival else "probability"
    xlab = f"Predicted {what}"
    ylab = "Observed risk of death (smoothed)" if survival else "Observed proportion (smoothed)"
    width = width or min(2.9 * len(models) + 0.9, 12.0)
    height = height or 2.9 * len(horizons) + 1.1 + 0.3 * (title is not None)
    eng = _engine(engine, "other")
    if eng == "R":
        cu = curves.assign(model=curves["model"].astype(str))
        rg = None if rug is None else rug.assign(model=rug["model"].astype(str))
        return _r_out("ps_plot_calibration", path, width, height, dpi, curves=cu, rug=rg, models=models,
                      time_scale=float(time_scale), time_unit=time_unit, xlab=xlab, ylab=ylab, title=title)
    return _python_out(_calibration_python(curves, rug, models, horizons, survival, xlab, ylab, title,
                                           time_scale, time_unit, width, height), path, dpi)


def _calibration_python(curves, rug, models, horizons, survival, xlab, ylab, title, time_scale, time_unit,
                        width, height):
    fig = Figure(figsize=(width, height))
    top = 0.3 * (title is not None) + 0.35
    grid = fig.add_gridspec(len(horizons), len(models), left=0.75 / width, right=1 - 0.15 / width,
                            bottom=0.8 / height, top=1 - top / height, wspace=0.25, hspace=0.35)
    hi = np.nanmax(curves[["predicted", "observed", "upper"]].to_numpy(float))
    if rug is not None:
        hi = max(hi, float(np.nanquantile(rug["predicted"].to_numpy(float), 0.99)))
    lim = min(1.0, np.ceil(hi * 10 + 1e-9) / 10)
    h_all = pd.to_numeric(curves["horizon"]).round(6)
    for r, h in enumerate(horizons):
        for c, m in enumerate(models):
            ax = fig.add_subplot(grid[r, c])
            sel = (curves["model"].astype(str) == m) & ((h_all == h) | (h_all.isna() & pd.isna(h)))
            d = curves[sel].sort_values("predicted")
            col = OKABE_ITO[c % len(OKABE_ITO)]
            ax.plot([0, lim], [0, lim], color="0.45", lw=1, ls=(0, (4, 3)))
            ax.fill_between(d["predicted"], d["lower"], d["upper"], color=col, alpha=0.22, lw=0)
            ax.plot(d["predicted"], d["observed"], color=col, lw=1.9)
            if rug is not None:
                rh = pd.to_numeric(rug["horizon"]).round(6)
                x = rug[(rug["model"].astype(str) == m) & ((rh == h) | (rh.isna() & pd.isna(h)))]["predicted"]
                tr = transforms.blended_transform_factory(ax.transData, ax.transAxes)
                ax.vlines(x.to_numpy(float), 0, 0.035, transform=tr, color="0.2", lw=0.5, alpha=0.7)
            ax.set_xlim(0, lim)
            ax.set_ylim(0, lim)
            ax.set_aspect("equal", adjustable="box")
            _style(ax)
            head = m if not survival else f"{m}, by {_horizon_label(h, time_scale, time_unit)}"
            ax.set_title(head, fontsize=9.5)
            if r == len(horizons) - 1:
                ax.set_xlabel(xlab, fontsize=9)
            if c == 0:
                ax.set_ylabel(ylab, fontsize=9)
            ax.tick_params(labelsize=8)
            ticks = np.arange(0, lim + 1e-9, 0.1 if lim <= 0.5 else 0.2)
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
    fig.text(0.75 / width, 0.08 / height, "Dashed line: ideal calibration; band: pointwise 95% CI; rug: predictions",
             ha="left", va="bottom", fontsize=8.5)
    if title:
        fig.suptitle(title, x=0.75 / width, ha="left", y=1 - 0.1 / height, va="top", fontsize=11)
    return fig


# ------------------------------------------------------------------------------- decision curves
def _nb_labels(net_benefit: pd.DataFrame) -> list[str]:
    models = [m for m in dict.fromkeys(net_benefit["model"].astype(str)) if m not in ("all", "none")]
    if not models:
        raise ValueError("net_benefit table has no model rows besides 'all' and 'none'")
    return models


def decision_curve_figure(net_benefit: pd.DataFrame, engine: str = "auto", path=None, *, title: str | None = None,
                          time_scale: float = DAYS_PER_MONTH, time_unit: str = "months",
                          width: float | None = None, height: float = 4.6, dpi: int = 150):
    """Decision curve from a stored net-benefit table (``evaluation.decision.net_benefit`` /
    ``net_benefit_survival``: threshold, model, net_benefit with the "all" and "none" rows; a
    ``horizon`` column for survival, one panel per horizon). Models, treat-all (grey) and treat-none
    (black) with distinct colours and line types; y axis from -0.05 to the largest net benefit, x axis
    in percent, as ``dcurves::plot.dca``. R engine: ``ps_plot_decision`` (ggplot2).
    """
    _need(net_benefit, ["threshold", "model", "net_benefit"], "net_benefit")
    models = _nb_labels(net_benefit)
    nb = net_benefit.assign(model=net_benefit["model"].astype(str))
    if "horizon" not in nb:
        nb["horizon"] = np.nan
    horizons = list(pd.unique(pd.to_numeric(nb["horizon"]).round(6)))
    survival = not pd.isna(horizons[0])
    xlab = "Threshold probability" + (" (risk of death by the horizon)" if survival else "")
    width = width or 5.2 * len(horizons) + 1.9
    eng = _engine(engine, "other")
    if eng == "R":
        return _r_out("ps_plot_decision", path, width, height, dpi,
                      net_benefit=nb[["threshold", "model", "net_benefit", "horizon"]], models=models,
                      linetypes=_R_LINETYPES, time_scale=float(time_scale), time_unit=time_unit, xlab=xlab,
                      title=title)
    return _python_out(_decision_python(nb, models, horizons, survival, xlab, title, time_scale, time_unit,
                                        width, height), path, dpi)


def _decision_python(nb, models, horizons, survival, xlab, title, time_scale, time_unit, width, height):
    fig = Figure(figsize=(width, height))
    legend_w = 1.9
    top = 0.3 * (title is not None) + 0.35 * survival + 0.15
    grid = fig.add_gridspec(1, len(horizons), left=0.75 / width, right=1 - legend_w / width,
                            bottom=0.6 / height, top=1 - top / height, wspace=0.12)
    top_nb = float(np.nanmax(nb["net_benefit"].to_numpy(float)))
    ylim = (-0.05, max(top_nb, 0.01) * 1.08)
    h_all = pd.to_numeric(nb["horizon"]).round(6)
    for k, h in enumerate(horizons):
        ax = fig.add_subplot(grid[0, k], sharey=fig.axes[0] if k else None)
        d = nb[(h_all == h) | (h_all.isna() & pd.isna(h))]
        series = [(m, m, OKABE_ITO[i % len(OKABE_ITO)], LINESTYLES[i % len(LINESTYLES)], line_width(i))
                  for i, m in enumerate(models)]
        # the references are thin lines on top: where a model treats everyone it coincides with treat-all,
        # and both stay visible
        series += [("all", "Treat all", "0.5", "-", 0.9), ("none", "Treat none", "black", "-", 0.8)]
        for key, label, col, ls, lw in series:
            s = d[d["model"] == key].sort_values("threshold")
            ax.plot(s["threshold"], s["net_benefit"], color=col, ls=ls, lw=lw, label=label)
        ax.xaxis.set_major_locator(MultipleLocator(0.1))
        ax.set_ylim(*ylim)
        ax.set_xlim(float(d["threshold"].min()), float(d["threshold"].max()))
        ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        ax.set_xlabel(xlab, fontsize=9)
        if k == 0:
            ax.set_ylabel("Net benefit")
        else:
            ax.tick_params(labelleft=False)
        if survival:
            ax.set_title(f"Horizon {_horizon_label(h, time_scale, time_unit)}", fontsize=9.5)
        _style(ax)
    fig.axes[-1].legend(loc="upper left", bbox_to_anchor=(1.03, 1.0), frameon=False, fontsize=8.5,
                        handlelength=3.2)
    if title:
        fig.suptitle(title, x=0.75 / width, ha="left", y=1 - 0.08 / height, va="top", fontsize=11)
    return fig


# -------------------------------------------------------------------------------------- forest
def _forest_rows(subgroups: pd.DataFrame, labels: Mapping) -> pd.DataFrame:
    """One display row per header and level, top to bottom, with the text columns of the forest plot."""
    rows = []
    for sg, block in subgroups.groupby("subgroup", sort=False):
        if sg == "Overall":
            r = block.iloc[0]
            rows.append(dict(label="Overall", header=True, **_forest_cells(r)))
            continue
        p = pd.to_numeric(block["p_interaction"]).iloc[0]
        name = str(labels.get(sg, sg)).replace("_", " ")
        rows.append(dict(label=name[:1].upper() + name[1:], header=True, estimate=np.nan,
                         lower=np.nan, upper=np.nan, n_events="", hr_text="",
                         p_text="" if not np.isfinite(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")))
        for _, r in block.iterrows():
            rows.append(dict(label=f"    {r['level']}", header=False, **_forest_cells(r)))  # indented
    out = pd.DataFrame(rows)
    out["y"] = np.arange(len(out))[::-1].astype(float)
    return out


def _forest_cells(r) -> dict:
    est, lo, hi = (float(r[k]) for k in ("estimate", "lower", "upper"))
    note = str(r.get("note", "") if pd.notna(r.get("note", "")) else "").split(" (")[0]  # its first words
    hr_text = f"{est:.2f} ({lo:.2f}-{hi:.2f})" if np.isfinite(est) else ("NA" + (f" ({note})" if note else ""))
    return dict(estimate=est, lower=lo, upper=hi, n_events=f"{int(r['n'])} ({int(r['events'])})",
                hr_text=hr_text, p_text="")


def _forest_xlim(rows: pd.DataFrame, xlim) -> tuple[float, float]:
    if xlim is not None:
        return float(xlim[0]), float(xlim[1])
    est = rows["estimate"].to_numpy(float)
    est = est[np.isfinite(est)]
    lo = min(0.25, float(est.min()) / 2) if est.size else 0.25
    hi = max(4.0, float(est.max()) * 2) if est.size else 4.0
    return max(lo, 1 / 64), min(hi, 64.0)


_FOREST_LEFT, _FOREST_RIGHT = 2.6, 3.9  # inches beside the panel: labels left, text columns right
_FOREST_COLS = (1.04, 1.40, 1.95)       # text columns at these fractions of the panel width


def forest_figure(subgroups: pd.DataFrame, engine: str = "auto", path=None, *, title: str | None = None,
                  contrast: str = "high vs low risk", labels: Mapping | None = None,
                  xlim: tuple[float, float] | None = None, width: float = 9.5, height: float | None = None,
                  dpi: int = 150):
    """Forest plot from a stored subgroup table (``evaluation.survival.subgroup_hazard_ratios``:
    subgroup, level, n, events, estimate, lower, upper, p_interaction). HR (``contrast``) and 95% CI on a
    log axis limited to ``xlim`` (default: from the estimates, at least 0.25-4); a CI leaving the axis
    ends in an arrow. Text columns: n (events), HR (95% CI), interaction p. ``labels``: display names
    of the subgroup variables ({column: label}). R engine: ``ps_plot_forest``.
    """
    _need(subgroups, ["subgroup", "level", "n", "events", "estimate", "lower", "upper", "p_interaction"],
          "subgroups")
    labels = dict(labels or {})
    rows = _forest_rows(subgroups, labels)
    lim = _forest_xlim(rows, xlim)
    height = height or 1.3 + 0.27 * len(rows) + 0.3 * (title is not None)
    xlab = f"Hazard ratio, {contrast} (95% CI, log scale)"
    eng = _engine(engine, "other")
    if eng == "R":
        cols = ["subgroup", "level", "n", "events", "estimate", "lower", "upper", "p_interaction"]
        sg = subgroups[cols + (["note"] if "note" in subgroups else [])].copy()
        sg["subgroup"] = [str(labels.get(v, v)) for v in sg["subgroup"]]
        sg["level"] = sg["level"].astype(str)
        if "note" in sg:
            sg["note"] = sg["note"].fillna("").astype(str)
        return _r_out("ps_plot_forest", path, width, height, dpi, subgroups=sg, xlim=np.asarray(lim), xlab=xlab,
                      title=title, figure_width=float(width), left=_FOREST_LEFT, right=_FOREST_RIGHT, columns=np.asarray(_FOREST_COLS))
    return _python_out(_forest_python(rows, lim, xlab, title, width, height), path, dpi)


def _forest_python(rows, lim, xlab, title, width, height):
    fig = Figure(figsize=(width, height))
    top = 0.55 + 0.3 * (title is not None)
    panel_w = width - _FOREST_LEFT - _FOREST_RIGHT
    ax = _axes_inches(fig, _FOREST_LEFT, 0.6, panel_w, height - 0.6 - top)
    x_label = -(_FOREST_LEFT - 0.15) / panel_w  # labels start 0.15 in from the left edge
    n = len(rows)
    ax.set_xscale("log")
    ax.set_xlim(*lim)
    ax.set_ylim(-0.6, n - 0.4)
    ax.axvline(1.0, color="0.4", lw=0.8, ls=(0, (4, 3)))
    col = OKABE_ITO[0]
    lo_lim, hi_lim = lim
    ytr = ax.get_yaxis_transform()
    for _, r in rows.iterrows():
        y = r["y"]
        ax.text(x_label, y, r["label"], transform=ytr, ha="left", va="center",
                fontsize=9, fontweight="bold" if r["header"] else "normal")
        for x, key in zip(_FOREST_COLS, ("n_events", "hr_text", "p_text")):
            ax.text(x, y, r[key], transform=ytr, ha="left", va="center", fontsize=9)
        if not np.isfinite(r["estimate"]):
            continue
        a, b = max(r["lower"], lo_lim), min(r["upper"], hi_lim)
        ax.plot([a, b], [y, y], color=col, lw=1.4, solid_capstyle="butt")
        for beyond, end, start in ((r["upper"] > hi_lim, hi_lim, max(a, hi_lim / 1.35)),
                                   (r["lower"] < lo_lim, lo_lim, min(b, lo_lim * 1.35))):
            if beyond:
                ax.annotate("", xy=(end, y), xytext=(start, y),
                            arrowprops=dict(arrowstyle="-|>", color=col, lw=1.4, mutation_scale=10,
                                            shrinkA=0, shrinkB=0))
        if lo_lim <= r["estimate"] <= hi_lim:
            ax.plot(r["estimate"], y, "D" if r["header"] else "s", color=col, ms=6 if r["header"] else 5)
    for x, head in zip((x_label, *_FOREST_COLS), ("Subgroup", "n (events)", "HR (95% CI)", "P interaction")):
        ax.text(x, n - 0.4 + 0.25, head, transform=ytr, ha="left", va="bottom", fontsize=9, fontweight="bold")
    ax.set_yticks([])
    ax.spines[["top", "right", "left"]].set_visible(False)
    ax.set_xlabel(xlab, fontsize=9)
    ticks = [t for t in (1 / 64, 1 / 32, 1 / 16, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64) if lo_lim <= t <= hi_lim]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks], fontsize=8)
    ax.minorticks_off()
    if title:
        fig.text(0.15 / width, 1 - 0.1 / height, title, ha="left", va="top", fontsize=11)
    return fig
