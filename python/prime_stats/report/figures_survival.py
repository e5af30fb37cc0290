"""Data-in adapters for the survival figures the study still draws from patient data (``analysis.py``,
``figures_explain.plot_paradox_km``): they build the stored tables with :mod:`~prime_stats.report.figures_data`
and :mod:`prime_stats.evaluation.survival`, then draw with :func:`~prime_stats.report.figures.km_figure` /
:func:`~prime_stats.report.figures.forest_figure` (the one drawing code). Once ``study/render.py`` draws
from stored tables, these adapters go with ``analysis.py``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from prime_stats.evaluation import survival as sv
from prime_stats.report.figures import OKABE_ITO, annotation_text, forest_figure, km_figure
from prime_stats.report.figures_data import at_risk_times

__all__ = ["OKABE_ITO", "plot_kaplan_meier", "plot_forest"]


def _fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def plot_kaplan_meier(data: pd.DataFrame, time: str, event: str, group: str | None = None,
                      risk_times: Sequence[float] | None = None, time_scale: float = 1.0,
                      xlabel: str = "Time", title: str | None = None, group_labels: Mapping | None = None,
                      show_logrank: bool = True, show_hr: bool = True, extra_annotation: str | None = None,
                      figsize: tuple[float, float] = (7.0, 6.0), engine: str = "python"):
    """Kaplan-Meier figure of patient data (``survival::survfit`` + ``survminer::ggsurvplot`` layout).

    ``risk_times`` (display units) sets the spacing of the ticks and of the numbers-at-risk table: a
    regular grid from 0 with its first step (default 6 when ``time_scale`` is days per month). The HR
    compares the second group of ``group_labels`` (or of the sorted levels) with the first, e.g.
    high vs low risk. ``extra_annotation`` is a second line above the panel.
    """
    t_max = float(pd.to_numeric(data[time]).max())
    step = float(risk_times[1] - risk_times[0]) if risk_times is not None and len(risk_times) > 1 else (
        6.0 if abs(time_scale - 30.4375) < 1e-9 else float(np.diff(np.histogram_bin_edges([0, t_max / time_scale],
                                                                                         bins=6))[0]))
    km = sv.kaplan_meier(time, event, group, data=data, times=at_risk_times(t_max, step, time_scale))
    levels = [str(g) for g in km.medians["group"]]
    labels = {str(k): str(v) for k, v in (group_labels or {}).items()}
    order = [g for g in labels if g in levels] + [g for g in levels if g not in labels]
    groups = {g: labels.get(g, g) for g in order}
    parts = []
    if group is not None and len(order) >= 2 and km.medians["events"].sum() > 0:
        d = data.assign(**{group: data[group].astype(str)})
        if show_logrank:
            parts.append(f"Log-rank {_fmt_p(float(sv.logrank_test(time, event, group, data=d)['p'].iloc[0]))}")
        if show_hr and len(order) == 2:
            d["_second"] = (d[group] == order[1]).astype(float)
            hr = sv.cox_hazard_ratios(time, event, ["_second"], data=d).iloc[0]
            parts.append(annotation_text({"hr": hr["estimate"], "hr_lower": hr["lower"], "hr_upper": hr["upper"],
                                          "contrast": f"{groups[order[1]]} vs {groups[order[0]]}".lower()}))
    text = ";  ".join(parts) or None
    if extra_annotation:
        text = f"{text}\n{extra_annotation}" if text else extra_annotation
    curves = km.curve.assign(group=km.curve["group"].astype(str))
    at_risk = km.at_times.assign(group=km.at_times["group"].astype(str))
    return km_figure(curves, at_risk, text, engine, groups=groups, title=title, time_scale=time_scale,
                     time_label=xlabel, width=figsize[0], height=figsize[1])


def plot_forest(table: pd.DataFrame, title: str | None = None, engine: str = "python", **kwargs):
    """Forest plot of :func:`prime_stats.evaluation.survival.subgroup_hazard_ratios` output
    (:func:`~prime_stats.report.figures.forest_figure`)."""
    return forest_figure(table, engine, title=title, **kwargs)
