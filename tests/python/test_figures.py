"""The report's figure layer (report/figures.py, report/figures_data.py, R/plots.R): every figure drawn
by both engines from the same stored table (written to CSV and read back), the numbers at risk printed
under the survminer plot equal to the stored table, PNG sizes, and the table functions checked against R.

Data: survival::lung (lifelines.datasets.load_lung), the Wisconsin breast-cancer data (scikit-learn)
and GBSG2 (scikit-survival).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung
from matplotlib.figure import Figure
from PIL import Image
from sklearn.datasets import load_breast_cancer
from sksurv.datasets import load_gbsg2

from prime_stats.evaluation import survival as sv
from prime_stats.evaluation.calibration import calibration_curve_binary, clip_probability
from prime_stats.evaluation.decision import net_benefit, net_benefit_survival
from prime_stats.report import figures as F
from prime_stats.report import figures_data as FD

MONTH = FD.DAYS_PER_MONTH


@pytest.fixture(scope="module")
def lung():
    d = load_lung()
    d["patient_id"] = [f"L{i:03d}" for i in range(len(d))]
    d["sexc"] = d["sex"].map({1: "male", 2: "female"})
    d["male"] = (d["sex"] == 1).astype(int)
    return d


@pytest.fixture(scope="module")
def bc():
    d = load_breast_cancer(as_frame=True).frame
    lin = 19.8 - 1.05 * d["mean radius"] - 0.22 * d["mean texture"]
    p1 = (1 / (1 + np.exp(-lin))).to_numpy()
    p2 = (1 / (1 + np.exp(-(15.2 - 1.07 * d["mean radius"])))).to_numpy()
    return d.target.to_numpy(), {"radius+texture": p1, "radius": p2}


@pytest.fixture(scope="module")
def gbsg():
    X, y = load_gbsg2()
    lin = (np.log(X["pnodes"].astype(float)) * 0.4 - 0.002 * X["progrec"].astype(float) - 7.0).to_numpy()
    risk = {h: 1 - np.exp(-np.exp(lin) * h) for h in (365.25, 730.5)}
    return y["time"].astype(float), y["cens"].astype(int), risk


def _store(tmp_path, **tables) -> dict[str, pd.DataFrame]:
    """Write tables as the study does (tables/*.csv) and read them back: figures see only stored tables."""
    out = {}
    for name, df in tables.items():
        df.to_csv(tmp_path / f"{name}.csv", index=False)
        out[name] = pd.read_csv(tmp_path / f"{name}.csv")
    return out


def _png_ok(path, width, height, dpi):
    im = Image.open(path)
    assert im.size == (round(width * dpi), round(height * dpi))
    a = np.asarray(im.convert("L"), dtype=float)
    assert a.std() > 5 and (a < 128).mean() > 0.002  # not blank: dark ink on the page


def _need_r(r_engine, *packages):
    if not r_engine.r_available(packages):
        pytest.skip(f"R packages {packages} are not installed")


@pytest.fixture(scope="module")
def km_stored(lung, tmp_path_factory):
    curves, at_risk = FD.km_tables(lung, "time", "status", "sexc")
    lr = sv.logrank_test("time", "status", "sexc", data=lung)
    hr = sv.cox_hazard_ratios("time", "status", ["male"], data=lung)
    return _store(tmp_path_factory.mktemp("km"), km_curves=curves, km_at_risk=at_risk, logrank=lr, cox_hr=hr)


# ------------------------------------------------------------------------------------- tables
def test_at_risk_times_every_six_months():
    t = FD.at_risk_times(1022.0)  # lung's last follow-up: 33.6 months
    np.testing.assert_allclose(t / MONTH, [0, 6, 12, 18, 24, 30])
    assert FD.at_risk_times(36 * MONTH)[-1] == pytest.approx(36 * MONTH)
    with pytest.raises(ValueError, match="max_time"):
        FD.at_risk_times(np.nan)


def test_km_tables_count_patients_at_risk(lung, km_stored):
    ar = km_stored["km_at_risk"]
    for (g, t), n in ar.set_index(["group", "time"])["n_risk"].items():
        assert n == ((lung["sexc"] == g) & (lung["time"] >= t)).sum()
    assert ar.loc[ar["time"] == 0].set_index("group")["n_risk"].to_dict() == {"female": 90, "male": 138}


def test_km_annotation_reads_one_direction(km_stored):
    a = FD.km_annotation(km_stored["logrank"], km_stored["cox_hr"], term="male", contrast="male vs female")
    # survival's printed coxph(Surv(time, status) ~ sex, lung): exp(coef) 0.588 for female vs male
    assert a["hr"] == pytest.approx(1 / 0.588, rel=2e-3)
    assert a["logrank_p"] == pytest.approx(0.00131, rel=0.02)  # survdiff chi-square 10.3 on 1 df
    assert F.annotation_text(a) == "Log-rank p = 0.001;  HR male vs female 1.70 (95% CI 1.23-2.36)"
    with pytest.raises(ValueError, match="term 'high_risk'"):
        FD.km_annotation(km_stored["logrank"], km_stored["cox_hr"])


def test_km_tables_match_r_survfit(r_engine, lung, km_stored):
    res = r_engine.run_r(
        "local({ d <- survival::lung; f <- survival::survfit(survival::Surv(time, status) ~ sex, data = d);"
        " s <- summary(f, times = seq(0, 1022, by = 6 * 30.4375), extend = TRUE);"
        " data.frame(sex = as.character(s$strata), time = s$time, n_risk = s$n.risk, surv = s$surv) })")
    ar = km_stored["km_at_risk"]
    py = ar.assign(sex=ar["group"].map({"male": "sex=1", "female": "sex=2"})).sort_values(["sex", "time"])
    np.testing.assert_allclose(py["n_risk"], res["n_risk"])
    np.testing.assert_allclose(py["surv"], res["surv"], rtol=1e-10)


def test_calibration_tables_long_and_equal_to_the_curves(bc):
    y, preds = bc
    tab = FD.calibration_curves(y, preds, n_boot=20)
    assert list(tab["model"].unique()) == ["radius+texture", "radius"]
    # the table's curve is the one of the predictions moved inside [1e-6, 1 - 1e-6] (n_clipped of them)
    moved, n_moved = clip_probability(preds["radius"])
    one = calibration_curve_binary(y, moved, n_boot=20)
    block = tab[tab["model"] == "radius"]
    np.testing.assert_allclose(block[["predicted", "observed", "lower", "upper"]],
                               one[["predicted", "observed", "lower", "upper"]], rtol=1e-12)
    assert (block["n_clipped"] == n_moved).all()
    assert (tab["endpoint"] == "response").all() and tab["horizon"].isna().all()
    rug = FD.prediction_rug(preds)
    assert len(rug) == 2 * len(y) and set(rug.columns) == {"endpoint", "model", "horizon", "predicted"}


def test_calibration_curve_matches_r_lowess(r_engine, bc):
    y, preds = bc
    tab = FD.calibration_curves(y, {"m": preds["radius"]}, n_boot=0)
    obs = r_engine.call_r("approx", x=r_engine.call_r("lowess", x=preds["radius"], y=y.astype(float), f=2 / 3,
                                                       iter=0, delta=0.01 * np.ptp(preds["radius"]))["x"],
                          y=r_engine.call_r("lowess", x=preds["radius"], y=y.astype(float), f=2 / 3, iter=0,
                                            delta=0.01 * np.ptp(preds["radius"]))["y"],
                          xout=tab["predicted"].to_numpy(), ties="mean")["y"]
    np.testing.assert_allclose(tab["observed"], obs, rtol=1e-6, atol=1e-9)


def test_survival_calibration_curve_matches_r(r_engine, gbsg):
    time, event, risk = gbsg
    F2 = risk[730.5]
    tab = FD.calibration_curves_survival(time, event, {"nodes": F2}, 730.5, n_boot=0)
    code = """function(time, event, F, grid, t) {
      cll <- log(-log1p(-F)); B <- Hmisc::rcspline.eval(cll, nk = 3, inclx = TRUE)
      fit <- survival::coxph(survival::Surv(time, event) ~ B, ties = "breslow")
      bh <- survival::basehaz(fit, centered = FALSE); H0 <- max(bh$hazard[bh$time <= t])
      G <- Hmisc::rcspline.eval(log(-log1p(-grid)), knots = attr(B, "knots"), inclx = TRUE)
      1 - exp(-H0 * exp(as.numeric(G %*% stats::coef(fit)))) }"""
    import rpy2.robjects as ro  # the test reads R directly; the package itself goes through rbridge

    fn = ro.r(code)
    obs = np.asarray(fn(ro.FloatVector(time), ro.FloatVector(event), ro.FloatVector(F2),
                        ro.FloatVector(tab["predicted"]), 730.5))
    np.testing.assert_allclose(tab["observed"], obs, rtol=1e-6)
    assert (tab["horizon"] == 730.5).all() and (tab["endpoint"] == "survival").all()


# ---------------------------------------------------------------------------------- KM figure
def test_km_python_engine_from_stored_tables(km_stored, tmp_path):
    ann = FD.km_annotation(km_stored["logrank"], km_stored["cox_hr"], term="male", contrast="male vs female")
    groups = {"female": "Female", "male": "Male"}
    fig = F.km_figure(km_stored["km_curves"], km_stored["km_at_risk"], ann, "python", groups=groups)
    assert isinstance(fig, Figure) and F.figure_engine(fig) == "python"
    ax, axr = fig.axes
    np.testing.assert_allclose(ax.get_xticks(), [0, 6, 12, 18, 24, 30])
    assert "months" in ax.get_xlabel() and "months" in axr.get_xlabel()  # units on every time axis
    printed = fig.prime_stats_risk_table
    stored = km_stored["km_at_risk"][["group", "time", "n_risk"]]
    pd.testing.assert_frame_equal(printed.sort_values(["group", "time"]).reset_index(drop=True),
                                  stored.sort_values(["group", "time"]).reset_index(drop=True), check_dtype=False)
    # the annotation sits above the panel, outside the curves
    fig.canvas.draw()
    note = next(t for t in fig.texts if t.get_text().startswith("Log-rank"))
    assert note.get_window_extent().y0 > ax.get_window_extent().y1
    assert note.get_text() == F.annotation_text(ann)
    # coinciding curves stay distinguishable: different dash patterns
    styles = [ln.get_linestyle() for ln in ax.get_lines() if ln.get_label() in groups.values()]
    assert len(set(styles)) == 2
    out = F.km_figure(km_stored["km_curves"], km_stored["km_at_risk"], ann, "python", tmp_path / "km.png",
                      width=7, height=6, dpi=100)
    assert out.engine == "python" and out.path == tmp_path / "km.png"
    _png_ok(out.path, 7, 6, 100)


@pytest.mark.needs_r
def test_km_r_engine_prints_the_stored_numbers_at_risk(r_engine, km_stored, tmp_path):
    _need_r(r_engine, "survminer", "ggplot2")
    ann = FD.km_annotation(km_stored["logrank"], km_stored["cox_hr"], term="male", contrast="male vs female")
    out = F.km_figure(km_stored["km_curves"], km_stored["km_at_risk"], ann, "R", tmp_path / "km_r.png",
                      groups={"female": "Female", "male": "Male"}, width=7, height=6, dpi=100)
    assert out.engine == "R"
    _png_ok(out.path, 7, 6, 100)
    printed = out.risk_table.sort_values(["group", "time"]).reset_index(drop=True)
    stored = km_stored["km_at_risk"].sort_values(["group", "time"]).reset_index(drop=True)
    assert printed["group"].tolist() == stored["group"].tolist()
    np.testing.assert_allclose(printed["time"], stored["time"], rtol=1e-9)
    np.testing.assert_array_equal(printed["n_risk"].astype(int), stored["n_risk"].astype(int))
    # a stored table that disagrees with the curves is refused, not drawn
    bad = km_stored["km_at_risk"].copy()
    bad.loc[1, "n_risk"] += 1
    with pytest.raises(RuntimeError, match="differ from the stored at_risk"):
        F.km_figure(km_stored["km_curves"], bad, ann, "R", tmp_path / "bad.png")
    fig = F.km_figure(km_stored["km_curves"], km_stored["km_at_risk"], ann, "R", dpi=80)  # no path: a Figure
    assert isinstance(fig, Figure) and F.figure_engine(fig) == "R"
    assert tuple(np.round(fig.get_size_inches() * 80)) == (560, 480)


def test_km_adapter_for_patient_data(lung):
    from prime_stats.report.figures_survival import plot_kaplan_meier

    fig = plot_kaplan_meier(lung, "time", "status", "sexc", risk_times=[0, 6, 12, 24], time_scale=MONTH,
                            xlabel="Months")
    np.testing.assert_allclose(fig.axes[0].get_xticks(), [0, 6, 12, 18, 24, 30])  # a regular grid
    texts = {t.get_text() for t in fig.axes[1].texts}
    assert {"138", "90"} <= texts
    assert any("HR male vs female 1.70" in t.get_text() for t in fig.texts)


# --------------------------------------------------------------------------- the other figures
@pytest.fixture(scope="module")
def validation_stored(bc, gbsg, lung, tmp_path_factory):
    y, preds = bc
    preds = {**preds, "copy of radius": preds["radius"].copy()}  # a collapsed model: identical curves
    time, event, risk = gbsg
    cal_s = pd.concat([FD.calibration_curves_survival(time, event, {"nodes": risk[h]}, h, n_boot=20) for h in risk])
    rug_s = pd.concat([FD.prediction_rug({"nodes": risk[h]}, h) for h in risk])
    nb_s = pd.concat([net_benefit_survival(time, event, {"nodes": risk[h]}, h, np.arange(0, 0.9, 0.02)).assign(horizon=h)
                      for h in risk])
    d = lung.dropna(subset=["ph.ecog"]).copy()
    d["risk"] = np.where(d["ph.ecog"] >= 1, 1, 0)
    d["age_group"] = np.where(d["age"] >= 65, ">= 65 years", "< 65 years")
    sub = sv.subgroup_hazard_ratios("time", "status", "risk", ["sexc", "age_group"], data=d)
    return _store(tmp_path_factory.mktemp("val"),
                  calibration_curves=FD.calibration_curves(y, preds, n_boot=20),
                  calibration_rug=FD.prediction_rug(preds), calibration_curves_survival=cal_s,
                  calibration_rug_survival=rug_s,
                  decision_curve=net_benefit(y, preds, np.round(np.arange(0, 0.96, 0.01), 2)),
                  decision_curve_survival=nb_s, subgroups=sub)


def _draw_both(r_engine, tmp_path, name, draw, width, height):
    outs = {}
    engines = ["python"] + (["R"] if r_engine is not None and r_engine.r_available(("ggplot2",)) else [])
    for eng in engines:
        out = draw(eng, tmp_path / f"{name}_{eng}.png")
        assert out.engine == eng
        _png_ok(out.path, width, height, 100)
        outs[eng] = out
    return outs


@pytest.fixture(scope="module")
def r_or_none():
    from prime_stats import rbridge

    return rbridge if rbridge.r_available(("ggplot2",)) else None


@pytest.mark.parametrize("endpoint", ["response", "survival"])
def test_calibration_figure_both_engines(validation_stored, r_or_none, tmp_path, endpoint):
    sfx = "" if endpoint == "response" else "_survival"
    curves, rug = validation_stored[f"calibration_curves{sfx}"], validation_stored[f"calibration_rug{sfx}"]
    _draw_both(r_or_none, tmp_path, f"cal_{endpoint}",
               lambda e, p: F.calibration_figure(curves, rug, e, p, width=8, height=6, dpi=100), 8, 6)
    fig = F.calibration_figure(curves, rug, "python")
    n_panels = curves["model"].nunique() * curves["horizon"].fillna(-1).nunique()
    assert len(fig.axes) == n_panels  # one panel per model and horizon: no curve hides another
    for ax in fig.axes:
        assert len(ax.collections) == 2  # the band and the rug
        lo, hi = ax.get_xlim()
        assert lo == 0 and hi <= 1
    if endpoint == "survival":
        assert {ax.get_title() for ax in fig.axes} == {"nodes, by 12 months", "nodes, by 24 months"}


@pytest.mark.parametrize("endpoint", ["response", "survival"])
def test_decision_curve_figure_both_engines(validation_stored, r_or_none, tmp_path, endpoint):
    nb = validation_stored["decision_curve" if endpoint == "response" else "decision_curve_survival"]
    _draw_both(r_or_none, tmp_path, f"dca_{endpoint}",
               lambda e, p: F.decision_curve_figure(nb, e, p, width=8, height=4.5, dpi=100), 8, 4.5)
    fig = F.decision_curve_figure(nb, "python")
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    assert {"Treat all", "Treat none"} <= set(lines)
    if endpoint == "response":
        # the copy coincides with "radius": another colour, dash pattern and a thinner line on top
        a, b = lines["radius"], lines["copy of radius"]
        np.testing.assert_allclose(a.get_ydata(), b.get_ydata())
        assert a.get_color() != b.get_color() and a.get_linewidth() > b.get_linewidth()
        assert a.get_zorder() <= b.get_zorder() and F.LINESTYLES[1] != F.LINESTYLES[2]
    else:
        assert [x.get_title() for x in fig.axes] == ["Horizon 12 months", "Horizon 24 months"]
    assert ax.get_ylim()[0] == pytest.approx(-0.05)


def test_forest_figure_both_engines_with_arrows(validation_stored, r_or_none, tmp_path):
    sub = validation_stored["subgroups"]
    lim = (0.6, 2.5)
    _draw_both(r_or_none, tmp_path, "forest",
               lambda e, p: F.forest_figure(sub, e, p, xlim=lim, width=9.5, height=4.5, dpi=100), 9.5, 4.5)
    fig = F.forest_figure(sub, "python", xlim=lim, labels={"sexc": "sex", "age_group": "age"})
    ax = fig.axes[0]
    arrows = [a for a in ax.texts if getattr(a, "arrow_patch", None) is not None]
    n_beyond = int((sub["upper"] > lim[1]).sum() + (sub["lower"] < lim[0]).sum())
    assert n_beyond > 0 and len(arrows) == n_beyond  # every CI that leaves the axis ends in an arrow
    texts = {t.get_text() for t in ax.texts}
    assert {"Sex", "Age", "    female", f"{sub['p_interaction'].iloc[1]:.3f}"} <= texts
    assert ax.get_xlim() == pytest.approx(lim)


def test_figure_errors_name_the_table_and_column(km_stored):
    with pytest.raises(ValueError, match=r"curves table lacks column\(s\) \['surv'\]"):
        F.km_figure(km_stored["km_curves"].drop(columns="surv"), km_stored["km_at_risk"], None, "python")
    with pytest.raises(ValueError, match="at_risk table has no rows for group"):
        F.km_figure(km_stored["km_curves"], km_stored["km_at_risk"].query("group == 'male'"), None, "python")
    with pytest.raises(ValueError, match="engine must be"):
        F.km_figure(km_stored["km_curves"], km_stored["km_at_risk"], None, "matlab")
    two = pd.concat([km_stored["km_curves"].assign(split="test"), km_stored["km_curves"].assign(split="external")])
    with pytest.raises(ValueError, match=r"holds the splits \['external', 'test'\]: pass one split's rows"):
        F.km_figure(two, km_stored["km_at_risk"], None, "python")
    with pytest.raises(ValueError, match="no model rows"):
        F.decision_curve_figure(pd.DataFrame({"threshold": [0.1], "model": ["all"], "net_benefit": [0.2]}), "python")


def test_interval_figure_flow_order_and_arrows_beyond_the_axis():
    from matplotlib.text import Annotation

    from prime_stats.report.figures_summary import interval_figure

    t = pd.DataFrame({"panel": "C", "row": ["a", "a", "a", "b"], "split": ["external", "train", "test", "test"],
                      "estimate": [0.7, 0.8, 0.45, 0.6], "lower": [0.6, 0.7, 0.1, 0.5], "upper": [0.8, 0.9, 0.6, 0.7]})
    fig = interval_figure(t, "panel", "row", reference=0.5, xlim=(0.3, 1.0))
    ax = fig.axes[0]
    arrows = [c for c in ax.get_children() if isinstance(c, Annotation)]
    assert len(arrows) == 1 and arrows[0].xy[0] == pytest.approx(0.3)     # the test CI below 0.3
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["training (apparent)", "internal test", "external"]


def test_roc_legend_sits_under_the_axes(bc):
    from prime_stats.report.figures_validation import plot_roc

    y, preds = bc
    p = preds["radius"]
    fig = plot_roc(y, {"A": p, "B": p})     # two identical curves: distinct dash patterns and widths
    fig.canvas.draw()
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_label() in ax.get_legend_handles_labels()[1]]
    assert lines[0].get_linestyle() != lines[1].get_linestyle() and lines[0].get_linewidth() > lines[1].get_linewidth()
    leg = ax.get_legend().get_window_extent()
    assert leg.y1 <= ax.get_window_extent().y0
