"""Publication figures for model validation: ROC curves, calibration plots, decision curves and
time-dependent AUC / Brier curves.  Colour-blind-safe Okabe-Ito colours; every number drawn is computed
by :mod:`prime_stats.evaluation` (nothing typed in by hand).  Each function returns a matplotlib Figure.
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

from prime_stats.evaluation.calibration import calibration_curve_binary, calibration_curve_survival
from prime_stats.evaluation.discrimination import as_binary, auc_delong
from prime_stats.report.figures_survival import OKABE_ITO

__all__ = ["plot_roc", "plot_calibration", "plot_calibration_survival", "plot_decision_curve",
           "plot_time_dependent"]


def _as_dict(predictions) -> dict[str, np.ndarray]:
    if isinstance(predictions, Mapping):
        return {str(k): np.asarray(v, dtype=float) for k, v in predictions.items()}
    return {"model": np.asarray(predictions, dtype=float)}


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(alpha=0.25, lw=0.6)


def plot_roc(y, predictions, title: str | None = None, palette: Sequence[str] = OKABE_ITO,
             figsize: tuple[float, float] = (5.2, 5.0)) -> Figure:
    """ROC curves with AUC and DeLong 95% CI in the legend (one curve per model)."""
    y = as_binary(y)
    fig, ax = plt.subplots(figsize=figsize)
    ax.plot([0, 1], [0, 1], ls=":", color="0.5", lw=1)
    for i, (name, p) in enumerate(_as_dict(predictions).items()):
        fpr, tpr, _ = roc_curve(y, p)
        a = auc_delong(y, p).iloc[0]
        ax.step(fpr, tpr, where="post", color=palette[i % len(palette)], lw=1.8,
                label=f"{name}: AUC {a.estimate:.3f} ({a.lower:.3f}-{a.upper:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="Sensitivity", aspect="equal")
    if title:
        ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    _style(ax)
    fig.tight_layout()
    return fig


def _calibration_figure(curves: dict[str, pd.DataFrame], preds: dict[str, np.ndarray], xlabel: str,
                        ylabel: str, title: str | None, palette, figsize) -> Figure:
    fig, (ax, axh) = plt.subplots(2, 1, figsize=figsize, sharex=True,
                                  gridspec_kw=dict(height_ratios=[4, 1], hspace=0.05))
    ax.plot([0, 1], [0, 1], ls=":", color="0.5", lw=1, label="Ideal")
    bins = np.linspace(0, 1, 51)
    for i, (name, c) in enumerate(curves.items()):
        col = palette[i % len(palette)]
        ax.plot(c.predicted, c.observed, color=col, lw=1.8, label=name)
        if c.lower.notna().any():
            ax.fill_between(c.predicted, c.lower, c.upper, color=col, alpha=0.18, lw=0)
        axh.hist(preds[name], bins=bins, color=col, alpha=0.55, histtype="stepfilled")
    ax.set(xlim=(0, 1), ylim=(0, 1), ylabel=ylabel)
    if title:
        ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    axh.set(xlabel=xlabel, ylabel="Count")
    axh.set_yticks([])
    for a in (ax, axh):
        _style(a)
    return fig


def plot_calibration(y, predictions, method: str = "loess", n_boot: int = 200, title: str | None = None,
                     palette: Sequence[str] = OKABE_ITO, figsize: tuple[float, float] = (5.2, 6.0),
                     random_state: int | None = 0) -> Figure:
    """Flexible calibration curves (lowess with bootstrap band, or RCS with Wald band) above a histogram
    of the predicted probabilities."""
    preds = _as_dict(predictions)
    curves = {k: calibration_curve_binary(y, p, method=method, n_boot=n_boot, random_state=random_state)
              for k, p in preds.items()}
    return _calibration_figure(curves, preds, "Predicted probability", "Observed proportion", title,
                               palette, figsize)


def plot_calibration_survival(time, event, risks, t: float, n_boot: int = 100, title: str | None = None,
                              palette: Sequence[str] = OKABE_ITO, figsize: tuple[float, float] = (5.2, 6.0),
                              random_state: int | None = 0) -> Figure:
    """Calibration of predicted risks by time ``t`` (Cox on RCS of cloglog risk, Austin et al. 2020)
    with a bootstrap band, above a histogram of the predicted risks."""
    preds = _as_dict(risks)
    curves = {k: calibration_curve_survival(time, event, p, t, n_boot=n_boot, random_state=random_state)
              for k, p in preds.items()}
    return _calibration_figure(curves, preds, f"Predicted risk by t = {t:g}", f"Observed risk by t = {t:g}",
                               title, palette, figsize)


def plot_decision_curve(nb: pd.DataFrame, y_limits: tuple[float, float] | None = None,
                        title: str | None = None, palette: Sequence[str] = OKABE_ITO,
                        figsize: tuple[float, float] = (6.0, 4.5)) -> Figure:
    """Net benefit against threshold probability for each model, treat-all and treat-none
    (``nb``: output of :func:`~prime_stats.evaluation.decision.net_benefit` or ``net_benefit_survival``)."""
    need = {"threshold", "model", "net_benefit"}
    if not need <= set(nb.columns):
        raise ValueError(f"nb must have columns {sorted(need)}")
    fig, ax = plt.subplots(figsize=figsize)
    models = [m for m in nb.model.unique() if m not in ("all", "none")]
    for i, m in enumerate(models):
        d = nb[nb.model == m].sort_values("threshold")
        ax.plot(d.threshold, d.net_benefit, color=palette[i % len(palette)], lw=1.8, label=m)
    d = nb[nb.model == "all"].sort_values("threshold")
    ax.plot(d.threshold, d.net_benefit, color="0.45", lw=1.2, label="Treat all")
    ax.axhline(0, color="black", lw=1.0, label="Treat none")
    top = float(np.nanmax(nb.net_benefit.to_numpy(float)))
    ax.set(xlim=(nb.threshold.min(), nb.threshold.max()),
           ylim=y_limits or (-0.05 * max(top, 0.01) - 0.01, 1.1 * max(top, 0.01)),
           xlabel="Threshold probability", ylabel="Net benefit")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, frameon=False)
    _style(ax)
    fig.tight_layout()
    return fig


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
    for ax, metric in zip(axes[0], present):
        for i, (model, d) in enumerate(df[df.metric == metric].groupby("model", sort=False)):
            d = d.sort_values("time")
            col = palette[i % len(palette)]
            x = d.time.to_numpy(float) / time_scale
            ax.errorbar(x, d.estimate, yerr=[d.estimate - d.lower, d.upper - d.estimate]
                        if d.lower.notna().all() else None, color=col, marker="o", ms=4, lw=1.5,
                        capsize=3, label=model)
        if metric.startswith("AUC"):
            ax.axhline(0.5, ls=":", color="0.5", lw=1)
        ax.set(xlabel=time_label, ylabel=metric)
        _style(ax)
    axes[0][0].legend(fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
