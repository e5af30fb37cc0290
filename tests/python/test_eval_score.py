"""One-call score tables: both engines give the same numbers on real data; engine selection and errors."""
import numpy as np
import pytest
from lifelines.datasets import load_gbsg2
from sklearn.datasets import load_breast_cancer

from prime_stats.evaluation import score as score_mod
from prime_stats.evaluation.score import COLUMNS, score_binary, score_survival

PBC = """suppressMessages({library(survival); library(riskRegression)});
d <- pbc[!is.na(pbc$protime) & !is.na(pbc$albumin), ]; d$ev <- as.integer(d$status == 2);
dev <- d[1:200, ]; val <- d[201:nrow(d), ];
f <- coxph(Surv(time, ev) ~ log(bili) + albumin + age + log(protime), data = dev, x = TRUE);
g <- coxph(Surv(time, ev) ~ log(bili) + age, data = dev, x = TRUE);
tt <- c(365, 730, 1095, 1825);
data.frame(time = val$time, ev = val$ev, lp = predict(f, newdata = val),
           f = predictRisk(f, newdata = val, times = tt), g = predictRisk(g, newdata = val, times = tt))"""
TIMES = [365.0, 730.0, 1095.0, 1825.0]


@pytest.fixture(scope="module")
def bc():
    d = load_breast_cancer(as_frame=True).frame
    lin = 19.8 - 1.05 * d["mean radius"] - 0.22 * d["mean texture"]
    return d.target.to_numpy(), {"radius+texture": (1 / (1 + np.exp(-lin))).to_numpy(),
                                 "radius": (1 / (1 + np.exp(-(15.2 - 1.07 * d["mean radius"])))).to_numpy()}


@pytest.fixture(scope="module")
def pbc_val(r_engine):
    d = r_engine.run_r(PBC)
    risks = {m: np.clip(d[[c for c in d.columns if c.startswith(m + ".")]].to_numpy(float), 1e-9, 1 - 1e-9)
             for m in ("f", "g")}
    return d.time.to_numpy(float), d.ev.to_numpy(int), risks, d.lp.to_numpy(float)


def _compare(a, b, keys):
    m = a.merge(b, on=keys, how="outer", suffixes=("_py", "_r"), indicator=True)
    return m


def test_score_survival_engines_agree(r_engine, pbc_val):
    t, e, risks, lp = pbc_val
    # Breslow: the slope ties the current R twin uses (it gains a ties argument on the R side)
    a = score_survival(t, e, risks, TIMES, risk_scores={"f": lp}, engine="python", ties="breslow")
    b = score_survival(t, e, risks, TIMES, risk_scores={"f": lp}, engine="R", ties="breslow")
    assert list(a.columns) == COLUMNS and list(b.columns) == COLUMNS
    assert set(a.engine) == {"python"} and set(b.engine) == {"R"}
    ties = r", (Efron|Breslow) ties$"
    a = a.assign(method=a.method.str.replace(r"IPCW, step rule over.*", "IBS", regex=True)
                 .str.replace(ties, "", regex=True))
    b = b.assign(method=b.method.str.replace(r"pec::crps over.*", "IBS", regex=True)
                 .str.replace(ties, "", regex=True))
    m = _compare(a, b, ["model", "metric", "time", "method"])
    assert (m._merge == "both").all(), m[m._merge != "both"][["model", "metric", "time", "method"]]
    assert len(m) == 2 * (2 + 4 * 3 + 1 + 4 * 6)
    np.testing.assert_allclose(m.estimate_py, m.estimate_r, atol=1e-8)
    has_se = m.se_r.notna()
    np.testing.assert_allclose(m.se_py[has_se], m.se_r[has_se], atol=1e-8)


def test_score_binary_engines_agree(r_engine, bc):
    y, preds = bc
    a = score_binary(y, preds, engine="python")
    b = score_binary(y, preds, engine="R")
    m = _compare(a, b, ["model", "metric"])
    assert (m._merge == "both").all()
    tol = np.where(m.metric.isin(["intercept", "slope", "CITL"]), 1e-6, 1e-7)   # iterative ML fits
    assert (np.abs(m.estimate_py - m.estimate_r) <= tol).all()


def test_python_engine_without_r(monkeypatch, bc):
    y, preds = bc
    monkeypatch.setattr(score_mod.rbridge, "r_available", lambda packages=(): False)
    out = score_binary(y, preds, engine="auto")
    assert set(out.engine) == {"python"}
    assert set(out.metric) >= {"AUC", "Brier", "IPA", "CITL", "slope", "Eavg", "E90", "Emax", "AUC difference"}
    d = out[out.metric == "AUC difference"].iloc[0]
    auc = out[out.metric == "AUC"].set_index("model").estimate
    assert d.model == "radius+texture vs radius"
    assert d.estimate == pytest.approx(auc["radius+texture"] - auc["radius"], abs=1e-14)
    assert 0 <= d.p_value <= 1
    with pytest.raises(RuntimeError, match="engine='R'"):
        score_binary(y, preds, engine="R")
    g = load_gbsg2()
    lin = (np.log(g.pnodes) * 0.4 - 0.002 * g.progrec - 7.0).to_numpy()
    risk = 1 - np.exp(-np.exp(lin)[:, None] * np.array([[365, 730, 1095]]))
    s = score_survival(g.time, g.cens, {"nodes": risk}, times=[365, 730, 1095], engine="auto")
    assert set(s.engine) == {"python"}
    c = s[(s.metric == "C-index") & (s.method == "Harrell")].iloc[0]
    assert 0.5 < c.lower < c.estimate < c.upper < 1


def test_input_errors(bc):
    y, preds = bc
    with pytest.raises(ValueError, match="engine"):
        score_binary(y, preds, engine="julia")
    with pytest.raises(ValueError, match="non-empty dict"):
        score_binary(y, preds["radius"])
    with pytest.raises(ValueError, match=r"predictions\['radius'\]"):
        score_binary(y, {"radius": preds["radius"][:-1]}, engine="python")
    t = np.linspace(10, 1000, 50)
    e = np.tile([0, 1], 25)
    with pytest.raises(ValueError, match="beyond the last follow-up"):
        score_survival(t, e, {"m": np.full((50, 2), 0.3)}, times=[500, 1000], engine="python")
    with pytest.raises(ValueError, match="strictly increasing"):
        score_survival(t, e, {"m": np.full((50, 2), 0.3)}, times=[500, 100], engine="python")


def test_validation_figures_render(bc, tmp_path):
    import matplotlib.pyplot as plt

    from prime_stats.evaluation.decision import net_benefit
    from prime_stats.report import figures_validation as fv

    y, preds = bc
    figs = [fv.plot_roc(y, preds), fv.plot_calibration(y, preds, n_boot=20),
            fv.plot_decision_curve(net_benefit(y, preds, np.arange(0, 0.95, 0.05)))]
    g = load_gbsg2()
    lin = (np.log(g.pnodes) * 0.4 - 0.002 * g.progrec - 7.0).to_numpy()
    risk = 1 - np.exp(-np.exp(lin)[:, None] * np.array([[365, 730, 1095]]))
    s = score_survival(g.time, g.cens, {"nodes": risk}, times=[365, 730, 1095], engine="python", calibration=False)
    figs.append(fv.plot_time_dependent(s, time_scale=30.4375, time_label="Months"))
    figs.append(fv.plot_calibration_survival(g.time, g.cens, {"nodes": risk[:, 1]}, 730, n_boot=10))
    for i, f in enumerate(figs):
        # the legend of the ROC figure carries the DeLong CI computed by auc_delong
        f.savefig(tmp_path / f"fig{i}.png", dpi=60)
        assert (tmp_path / f"fig{i}.png").stat().st_size > 5000
    roc_labels = [t.get_text() for t in figs[0].axes[0].get_legend().get_texts()]
    assert all("AUC" in t and "-" in t for t in roc_labels)
    with pytest.raises(ValueError, match="metric"):
        fv.plot_time_dependent(s, metrics=("nonexistent",))
    plt.close("all")


def test_r_package_versions_are_read_without_loading(r_engine):
    ref = r_engine.run_r('as.character(packageVersion("survival"))')
    assert r_engine.r_package_version("survival") == (ref if isinstance(ref, str) else ref[0])
    assert r_engine.r_package_version("noSuchPackageXYZ") is None


def test_every_statistic_with_an_r_twin_gives_the_same_numbers_in_both_engines(r_engine, pbc_val, bc):
    from prime_stats.evaluation import calibration as cal
    from prime_stats.evaluation import decision as dec
    from prime_stats.evaluation import discrimination as disc
    from prime_stats.evaluation import overall as ov

    t, e, risks, lp = pbc_val
    R = risks["f"]
    y, preds = bc
    p1, p2 = preds.values()
    calls = [
        (disc.concordance_index, (t, e, lp), {"timewt": "n/G2"}),
        (disc.time_dependent_auc, (t, e, R, TIMES), {}),
        (ov.brier_survival, (t, e, R, TIMES), {}),
        (ov.integrated_brier_score, (t, e, R, TIMES), {}),
        (cal.calibration_survival, (t, e, R[:, 1], [730.0]), {"ties": "breslow"}),
        (disc.auc_delong, (y, p1), {}),
        (disc.delong_test, (y, p1, p2), {}),
        (ov.brier_binary, (y, p1), {}),
        (cal.calibration_binary, (y, p1), {}),
        (dec.net_benefit, (y, p1, [0.1, 0.3, 0.5]), {}),
    ]
    for fn, args, kw in calls:
        a = fn(*args, engine="python", **kw)
        b = fn(*args, engine="R", **kw)
        assert set(b.engine) == {"R"}, fn.__name__
        col = "net_benefit" if "net_benefit" in a else "estimate"
        tol = 1e-6 if fn in (cal.calibration_binary,) else 1e-8
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), atol=tol,
                                   err_msg=fn.__name__)
