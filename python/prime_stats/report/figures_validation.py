"""Publication figures for model validation from patient-level predictions: ROC curves and
time-dependent AUC / Brier curves, plus data-in adapters for the calibration and decision-curve figures
(they build the tables with :mod:`~prime_stats.report.figures_data` / :mod:`prime_stats.evaluation.decision`
and draw with :mod:`prime_stats.report.figures`). Colour-blind-safe Okabe-Ito colours and distinct line
styles, so a curve that coincides with another stays visible; every number drawn is computed by
:mod:`prime_stats.evaluation` (nothing typed in by hand). Each function returns a matplotlib Figure.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - headless rendering for reports and CI
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from prime_stats.evaluation.discrimination import as_binary, auc_delong
from prime_stats.report.figures import (LINESTYLES, OKABE_ITO, calibration_figure, decision_curve_figure,
                                        line_width)
from prime_stats.report.figures_data import (DAYS_PER_MONTH, calibration_curves, calibration_curves_survival,
                                             prediction_rug)

__all__ = ["plot_roc", "plot_calibration", "plot_calibration_survival", "plot_decision_curve",
           "plot_time_dependent"]

_MARKERS = ["o", "s", "^", "D", "v"]


def _as_dict(predictions) -> dict[str, np.ndarray]:
    if isinstance(predictions, Mapping):
        return {str(k): np.asarray(v, dtype=float) for k, v in predictions.items()}
    return {"model": np.asarray(predictions, dtype=float)}


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(alpha=0.25, lw=0.6)


def plot_roc(y, predictions, title: str | None = None, palette: Sequence[str] = OKABE_ITO,
             figsize: tuple[float, float] = (5.2, 5.0)) -> Figure:
    """ROC curves with AUC and DeLong 95% CI in the legend (one curve per model). The ROC points are
    joined by straight lines (tied scores give a diagonal segment, as ``pROC::plot.roc``; the area under
    them is the AUC); each model has its own colour, dash pattern and width, drawn thinner on top, so a
    model whose curve coincides with another's stays visible; the legend sits under the axes, never over
    the curves."""
    y = as_binary(y)
    preds = _as_dict(predictions)
    fig = plt.figure(figsize=(figsize[0], figsize[1] + 0.22 * len(preds)))
    ax = fig.add_subplot(111)
    ax.plot([0, 1], [0, 1], ls=":", color="0.5", lw=1)
    for i, (name, p) in enumerate(preds.items()):
        fpr, tpr, _ = roc_curve(y, p)
        a = auc_delong(y, p).iloc[0]
        ax.plot(fpr, tpr, color=palette[i % len(palette)], lw=line_width(i), ls=LINESTYLES[i % len(LINESTYLES)],
                label=f"{name}: AUC {a.estimate:.3f} ({a.lower:.3f}-{a.upper:.3f})", clip_on=False)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="1 - specificity", ylabel="Sensitivity", aspect="equal")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.16), fontsize=8, frameon=False, handlelength=3.2)
    _style(ax)
    fig.tight_layout()
    return fig


def plot_calibration(y, predictions, method: str = "loess", n_boot: int = 200, title: str | None = None,
                     random_state: int | None = 0, engine: str = "python"):
    """Flexible calibration curves (lowess with bootstrap band, or RCS with Wald band) with a rug of the
    predicted probabilities, one panel per model (:func:`~prime_stats.report.figures.calibration_figure`
    on :func:`~prime_stats.report.figures_data.calibration_curves`)."""
    preds = _as_dict(predictions)
    curves = calibration_curves(y, preds, method=method, n_boot=n_boot, random_state=random_state)
    return calibration_figure(curves, prediction_rug(preds), engine, title=title)


def plot_calibration_survival(time, event, risks, t: float, n_boot: int = 100, title: str | None = None,
                              random_state: int | None = 0, time_scale: float = DAYS_PER_MONTH,
                              time_unit: str = "months", engine: str = "python"):
    """Calibration of predicted risks by time ``t`` (Cox on RCS of cloglog risk, Austin et al. 2020)
    with a bootstrap band and a rug of the predicted risks, one panel per model."""
    preds = _as_dict(risks)
    curves = calibration_curves_survival(time, event, preds, t, n_boot=n_boot, random_state=random_state)
    return calibration_figure(curves, prediction_rug(preds, t), engine, title=title, time_scale=time_scale,
                              time_unit=time_unit)


def plot_decision_curve(nb: pd.DataFrame, title: str | None = None, engine: str = "python"):
    """Net benefit against threshold probability for each model, treat-all and treat-none
    (``nb``: output of :func:`~prime_stats.evaluation.decision.net_benefit` or ``net_benefit_survival``;
    :func:`~prime_stats.report.figures.decision_curve_figure`)."""
    return decision_curve_figure(nb, engine, title=title)


def plot_time_dependent(scores: pd.DataFrame, metrics: Sequence[str] = ("AUC(t)", "Brier"),
                        time_scale: float = 1.0, time_label: str = "Time", title: str | None = None,
                        palette: Sequence[str] = OKABE_ITO, figsize: tuple[float, float] | None = None) -> Figure:
    """Time-dependent metrics (e.g. AUC(t) and Brier(t)) with 95% CI per model, one panel per metric
    (``scores``: output of ``score_survival``, ``time_dependent_auc`` or ``brier_survival``)."""
    df = scores.copy()
    if "model" not in df:
        df["model"] = "model"
    df = df[df.metric.isin(metrics) & df.time.notna()]
    if df.empty:
        raise ValueError(f"scores has no rows with metric in {list(metrics)} and a time")
    present = [m for m in metrics if m in set(df.metric)]
    fig, axes = plt.subplots(1, len(present), figsize=figsize or (4.6 * len(present), 3.9), squeeze=False)
    n_models = df["model"].nunique()
    x_all = df.time.to_numpy(float) / time_scale
    dodge = 0.015 * (x_all.max() - min(x_all.min(), 0.0))  # models side by side, so equal values stay visible
    for ax, metric in zip(axes[0], present):
        for i, (model, d) in enumerate(df[df.metric == metric].groupby("model", sort=False)):
            d = d.sort_values("time")
            col = palette[i % len(palette)]
            x = d.time.to_numpy(float) / time_scale + dodge * (i - 0.5 * (n_models - 1))
            ax.errorbar(x, d.estimate,
                        yerr=[d.estimate - d.lower, d.upper - d.estimate] if d.lower.notna().all() else None,
                        color=col, marker=_MARKERS[i % len(_MARKERS)], ms=4.5, lw=line_width(i), elinewidth=1,
                        ls=LINESTYLES[i % len(LINESTYLES)], capsize=3, label=model)
        if metric.startswith("AUC"):
            ax.axhline(0.5, ls=":", color="0.5", lw=1)
        if time_scale == DAYS_PER_MONTH:  # months: a tick every 6 months
            ax.set_xticks(np.arange(0, x_all.max() + 6, 6))
        ax.set(xlabel=time_label, ylabel=metric)
        _style(ax)
    axes[0][0].legend(fontsize=8, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=min(n_models, 3))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
