"""The TRIPOD+AI report: sections, figures, absent artefacts, self-containment, PDF, identifiers.

The study folder fixture holds real statistics computed with prime_stats on real public data
(sklearn's breast-cancer set for the binary endpoint, GBSG2 for survival) and real matplotlib plots.
"""
from __future__ import annotations

import json
import re
import shutil
from html import unescape
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from scipy import stats  # noqa: E402

from prime_stats.evaluation import calibration, decision, descriptive, discrimination  # noqa: E402
from prime_stats.evaluation import survival as sv  # noqa: E402
from prime_stats.report import build as rb  # noqa: E402
from prime_stats.report import tables as tb  # noqa: E402
from prime_stats.study.record import Artefacts, caption, read_artefacts  # noqa: E402
from prime_stats.report.tripod import load_checklist  # noqa: E402

IDS_PREFIX = "PRM-"


def _ids(n, start=0):
    return [f"{IDS_PREFIX}{i:05d}" for i in range(start, start + n)]


def _plot(kind: str, **data):
    fig, ax = plt.subplots(figsize=(8.0, 3.6) if kind == "forest" else (4.2, 3.8))
    if kind == "roc":
        from sklearn.metrics import roc_curve
        fpr, tpr, _ = roc_curve(data["y"], data["p"])
        ax.plot(fpr, tpr, color="#0072B2")
        ax.plot([0, 1], [0, 1], ls=":", color="grey")
        ax.set(xlabel="1 - specificity", ylabel="Sensitivity")
    elif kind == "km":
        for g, col in ((0, "#0072B2"), (1, "#D55E00")):
            d = data["df"][data["df"]["risk_group"] == g]
            km = sv.kaplan_meier("time", "event", data=d, id_col=None).curve
            ax.step(np.r_[0, km["time"]], np.r_[1, km["surv"]], where="post", color=col, label=f"group {g}")
        ax.legend()
        ax.set(xlabel="Days", ylabel="Survival")
    elif kind == "forest":
        s = data["sub"].dropna(subset=["estimate"])
        ax.errorbar(s["estimate"], np.arange(len(s)), xerr=[s["estimate"] - s["lower"], s["upper"] - s["estimate"]],
                    fmt="s", color="#0072B2")
        ax.axvline(1, ls=":", color="grey")
        ax.set_xscale("log")
        ax.set_yticks(np.arange(len(s)), [f"{a}: {b}" for a, b in zip(s["subgroup"], s["level"])])
    else:
        ax.plot(data["x"], data["y"], "o-")
    fig.tight_layout()
    return fig


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """A small but real study output folder following the study.py contract."""
    from lifelines.datasets import load_gbsg2
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    root = tmp_path_factory.mktemp("study")
    rng = np.random.default_rng(7)

    # ---- binary endpoint: breast-cancer features, split train / test / external
    bc = load_breast_cancer(as_frame=True)
    Xb = bc.data.iloc[:, :8]
    yb = (bc.target == 0).astype(int).to_numpy()          # 1 = malignant, the "event" of interest
    split_b = np.array(["train"] * 250 + ["test"] * 110 + ["external"] * (len(yb) - 360), dtype=object)
    rng.shuffle(split_b)
    lr = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)).fit(Xb[split_b == "train"],
                                                                                    yb[split_b == "train"])
    pb = lr.predict_proba(Xb)[:, 1]

    # ---- survival endpoint: GBSG2
    gb = load_gbsg2()
    gb = gb.assign(time=gb["time"].astype(float), event=gb["cens"].astype(int))
    split_s = np.array(["train"] * 300 + ["test"] * 130 + ["external"] * (len(gb) - 430), dtype=object)
    rng.shuffle(split_s)
    gb["split"] = split_s
    gb["patient_id"] = _ids(len(gb))
    covs = ["age", "tsize", "pnodes", "progrec"]
    tr = gb[gb["split"] == "train"]
    cox = sv.cox_hazard_ratios("time", "event", covs, data=tr)
    beta = np.log(cox.set_index("term")["estimate"][covs].to_numpy())
    gb["risk"] = gb[covs].to_numpy(float) @ beta
    cut = float(np.median(gb.loc[gb["split"] == "train", "risk"]))
    gb["risk_group"] = (gb["risk"] > cut).astype(int)

    tables = {}

    def put(key, df):
        tables[key] = df

    put("flow", pd.DataFrame([
        {"split": s, "centre": "B" if s == "external" else "A", "n": int((split_s == s).sum()),
         "responders": int(yb[split_b == s].sum()), "deaths": int(gb.loc[gb["split"] == s, "event"].sum())}
        for s in ("train", "test", "external")]))
    put("followup", sv.median_followup("time", "event", data=gb))
    # (grouped by cohort labels: TableOne.summary() overwrites a group named "test" with its test column)
    cohort = gb.assign(cohort=gb["split"].map({"train": "Training", "test": "Internal test", "external": "External"}))
    put("table1", descriptive.table_one(cohort, "cohort", variables=["age", "tsize", "pnodes", "tgrade", "menostat"],
                                        categorical=["tgrade", "menostat"]).summary())
    put("missingness", pd.DataFrame({"variable": covs, "n_missing": 0, "percent": 0.0}))
    coefs = lr[-1].coef_[0]
    put("features_response", pd.DataFrame({"feature": Xb.columns, "coefficient": coefs}))
    put("features_survival", cox[["term", "estimate", "lower", "upper", "p"]])
    put("hyperparameters", pd.DataFrame({"model": ["logistic"], "hyperparameters": [json.dumps(
        {"model__C": 1.0, "model__penalty": "l2", "select__l1_ratio": 0.5, "select__threshold": 0.0001,
         "model__class_weight": None})]}))

    rows = []
    for s in ("train", "test", "external"):
        m = split_b == s
        a = discrimination.auc_delong(yb[m], pb[m]).iloc[0]
        rows.append({"endpoint": "response", "model": "logistic", "split": "apparent" if s == "train" else s,
                     "metric": "AUC", "time": np.nan, "estimate": a["estimate"], "lower": a["lower"],
                     "upper": a["upper"], "method": "DeLong", "engine": "python"})
        g = gb[gb["split"] == s]
        c = discrimination.concordance_index(g["time"], g["event"], g["risk"]).iloc[0]
        rows.append({"endpoint": "survival", "model": "cox", "split": "apparent" if s == "train" else s,
                     "metric": "C-index", "time": np.nan, "estimate": c["estimate"], "lower": c["lower"],
                     "upper": c["upper"], "method": "Harrell", "engine": "python"})
        td = discrimination.time_dependent_auc(g["time"], g["event"], g["risk"], [365.25, 730.5])
        for r in td.to_dict("records"):
            rows.append({"endpoint": "survival", "model": "cox", "split": "apparent" if s == "train" else s,
                         "metric": "AUC(t)", "time": r["time"], "estimate": r["estimate"], "lower": r["lower"],
                         "upper": r["upper"], "method": "IPCW", "engine": "python"})
        if s != "train":
            cal = calibration.calibration_binary(yb[m], pb[m]).set_index("metric")
            for metric in ("CITL", "slope"):
                r = cal.loc[metric]
                rows.append({"endpoint": "response", "model": "logistic", "split": s, "metric": metric,
                             "time": np.nan, "estimate": r["estimate"], "lower": r["lower"], "upper": r["upper"],
                             "method": "logistic recalibration", "engine": "python"})
    put("metrics", pd.DataFrame(rows))
    mt = split_b == "test"
    put("calibration_response", calibration.calibration_binary(yb[mt], pb[mt]))
    put("decision_curve_test", decision.net_benefit(yb[mt], {"logistic": pb[mt]}))
    ext = gb[gb["split"] == "external"]
    put("km_groups", sv.kaplan_meier("time", "event", "risk_group", data=ext).medians)
    put("logrank", sv.logrank_test("time", "event", "risk_group", data=ext))
    put("cox_hr", sv.cox_hazard_ratios("time", "event", ["risk_group"], data=ext))
    sub = sv.subgroup_hazard_ratios("time", "event", "risk_group", ["menostat", "horTh"], data=ext)
    put("subgroups", sub)
    put("adjusted_cox", sv.adjusted_hazard_ratio("time", "event", "risk_group", ["horTh"], data=ext))
    shap_like = np.abs((StandardScaler().fit_transform(Xb) * coefs)).mean(axis=0)
    put("shap_response", pd.DataFrame({"feature": Xb.columns, "mean_abs_shap": shap_like}))
    # a per-patient table carrying identifiers, once as a named column and once as an unnamed index
    per_patient = ext[["patient_id", "risk", "risk_group"]].set_index("patient_id").rename_axis(None)
    t_stat = [(c, *stats.ttest_ind(bc.data.loc[yb == 1, c], bc.data.loc[yb == 0, c], equal_var=False))
              for c in bc.data.columns]
    de = pd.DataFrame(t_stat, columns=["gene", "t", "p"])
    de["padj"] = np.minimum(1, de["p"] * len(de))
    put("de", de)                                          # 30 rows > 25: shortened with a note
    # gene-set enrichment of the same ranking, laid out like gseapy's prerank report
    sets = {f"HALLMARK_{c.upper().replace(' ', '_')}_SIGNATURE_SET": [c] for c in de["gene"][:12]}
    ranked = de.set_index("gene")["t"].sort_values(ascending=False)
    put("gsea", pd.DataFrame([{"Term": k, "NES": float(ranked[v].mean() / ranked.std()),
                               "NOM p-val": float(de.set_index("gene").loc[v[0], "p"]),
                               "FDR q-val": float(de.set_index("gene").loc[v[0], "padj"]),
                               "Lead_genes": ";".join(ranked.index[:25])} for k, v in sets.items()]))

    figures = {}

    def fig(key, kind, **data):
        figures[key] = _plot(kind, **data)

    fig("roc_test", "roc", y=yb[mt], p=pb[mt])
    fig("km_external", "km", df=ext)
    fig("forest_subgroups", "forest", sub=sub)
    dm = tables["decision_curve_test"][tables["decision_curve_test"]["model"] == "logistic"]
    fig("decision_test", "line", x=dm["threshold"], y=dm["net_benefit"])

    notes = {"fusion_weights": "single-modality run: no fusion model was fitted",
             "roc_external": "external ROC not drawn in this test run",
             "metrics": "Confidence intervals: DeLong (AUC) and infinitesimal jackknife (C-index).",
             "excluded": f"patient {IDS_PREFIX}00003 excluded: no portal-venous phase image",
             "paradox_km": "quadrants need thresholds <0.5 & >0.2 <b>frozen</b>",
             "risk_cutoff": f"median training risk {cut:.4f}, frozen"}
    art = Artefacts(root, notes=notes)
    for key, df in tables.items():
        art.table(key, df)
    for key, f in figures.items():
        art.figure(key, f)
    art.write()
    # a per-patient table written with its index (an unnamed column of identifiers), added by hand
    (root / "tables" / "paradox.csv").write_text(per_patient.to_csv())
    art = json.loads((root / "artefacts.json").read_text())
    art["tables"]["paradox"] = "tables/paradox.csv"
    (root / "artefacts.json").write_text(json.dumps(art, indent=2))
    cfg = {"data": {"clinical": "clinical.csv"}, "split": {"development": ["A"], "external": ["B"],
                                                          "test_fraction": 0.3, "stratify": "response"},
           "features": {"max_missing": 0.3}, "models": {"family": "baseline", "fast": True},
           "evaluation": {"times": [182.625, 365.25, 730.5], "engine": "python", "bootstrap": 50}, "seed": 11}
    (root / "config.resolved.yaml").write_text(yaml.safe_dump(cfg))
    (root / "provenance.json").write_text(json.dumps({
        "prime_stats": "0.1.0", "python": "3.11", "platform": "linux", "R": None, "seed": 11, "seconds": 1.0,
        "packages": {"numpy": np.__version__, "pandas": pd.__version__},
        "data_sha256": {"clinical": "ab" * 32}, "config": cfg,
        "stage_cache": {"enabled": True, "reused": ["models", "nested_cv"], "computed": []}}))
    pd.DataFrame({"patient_id": gb["patient_id"], "split": gb["split"]}).to_csv(root / "split.csv", index=False)
    return root


@pytest.fixture(scope="module")
def built(study_dir):
    res = rb.build_report(study_dir)
    assert res["html"] == str(study_dir / "report.html") and res["pdf"] == str(study_dir / "report.pdf")
    return res, Path(res["html"]).read_text(encoding="utf-8")


def _visible_text(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]+"', "", page))


# ----------------------------------------------------------------------------------- contents
def test_every_section_and_given_figure_is_in_the_report(built, study_dir):
    res, page = built
    art = json.loads((study_dir / "artefacts.json").read_text())
    for s in rb.SECTIONS:
        assert f'id="sec-{s.key}"' in page, s.key
    assert 'id="sec-checklist"' in page
    for key in art["figures"]:
        assert caption("figure", key) in page, key
    for key in art["tables"]:
        if key != "metrics":
            assert caption("table", key) in page, key
    assert page.count("<img ") == len(art["figures"])
    # sections with nothing at all are reported back, sections with content are not
    assert res["missing_sections"] == ["reproducibility"]


def test_notes_and_split_tables_land_in_their_sections(built):
    _, page = built
    risk = page[page.index('id="sec-risk_groups"'):page.index('id="sec-subgroups"')]
    assert "Risk cutoff: median training risk" in risk
    utility = page[page.index('id="sec-utility"'):page.index('id="sec-risk_groups"')]
    assert "Net benefit, internal test set" in utility and "decision_curve_test" not in page
    prov = page[page.index('id="sec-provenance"'):]
    assert "Run notes" in prov and "risk_cutoff" not in prov
    assert "Reused from the stage cache" in prov and "models, nested_cv" in prov


def test_absent_artefacts_are_marked_with_their_reason(built):
    _, page = built
    text = _visible_text(page)
    assert "single-modality run: no fusion model was fitted" in text
    assert "external ROC not drawn in this test run" in text
    assert "ICC" in text and "not produced by this study run" in text   # absent without a note
    assert text.count("not available") >= 5


def test_performance_table_shows_estimate_and_ci_per_split(built, study_dir):
    _, page = built
    m = pd.read_csv(study_dir / "tables" / "metrics.csv")
    r = m[(m["metric"] == "AUC") & (m["split"] == "external")].iloc[0]
    cell = f"{r['estimate']:.3f} ({r['lower']:.3f}\u00a0to\u00a0{r['upper']:.3f})"   # no break inside the CI
    assert cell in page
    wide = dict((e, w) for e, w, _ in tb.performance_tables(m))
    assert list(wide["response"].columns) == ["Model", "Metric", "Apparent", "Internal test", "External"]
    surv = wide["survival"]
    assert list(surv["Time"]) == ["", "12 mo", "24 mo"]   # C-index first, then AUC(t) by horizon
    assert "Methods and engines" in page and "IPCW" in page


def test_performance_table_without_intervals_or_horizons():
    """The shape study.basic_metrics writes today: no time, lower or upper columns."""
    m = pd.DataFrame({"endpoint": ["response", "response", "survival"], "model": "clinical_baseline",
                      "split": ["train", "external", "external"], "metric": ["AUC", "AUC", "C-index (Harrell)"],
                      "estimate": [0.81234, 0.7, 0.66], "n": [79, 133, 133], "method": "empirical", "engine": "python"})
    out = {e: w for e, w, _ in tb.performance_tables(m)}
    assert list(out["response"].columns) == ["Model", "Metric", "Apparent (training)", "External"]
    assert out["response"].iloc[0].tolist() == ["clinical_baseline", "AUC", "0.812", "0.700"]
    with pytest.raises(ValueError, match="split"):
        tb.performance_tables(m.drop(columns="split"))


def test_calibration_measures_sit_in_the_calibration_section(built):
    _, page = built
    perf = page[page.index('id="sec-performance"'):page.index('id="sec-discrimination"')]
    cal = page[page.index('id="sec-calibration"'):page.index('id="sec-utility"')]
    assert "Calibration: estimate (95% CI) in each validation set" in cal
    assert "<td>slope</td>" in cal and "<td>slope</td>" not in perf and "<td>AUC</td>" in perf
    # the response calibration table is covered by the metrics; the survival one is still missing
    assert "table &#39;calibration_survival&#39;" in cal and "table &#39;calibration_response&#39;" not in cal


def test_numbers_are_formatted(built):
    _, page = built
    assert tb.fmt_p(0.0004) == "<0.001" and tb.fmt_p(0.01234) == "0.012" and tb.fmt_p(np.nan) == ""
    assert tb.fmt_num(0.85349) == "0.853" and tb.fmt_num(596.04) == "596.0" and tb.fmt_num(15528) == "15,528"
    assert tb.fmt_num(-0.00004) == "-4.0e-05" and tb.fmt_time(365.25) == "12 mo" and tb.fmt_time(100) == "100 d"
    f = tb.format_frame(pd.DataFrame({"n": [12.0, 3.0], "p": [1e-6, 0.2], "estimate": [1.23456, np.nan],
                                      "test missing %": [6.0, 0.25], "time": [365.25, 100.0]}))
    assert f.to_dict("list") == {"n": ["12", "3"], "p": ["<0.001", "0.200"], "estimate": ["1.235", ""],
                                 "test missing %": ["6.0", "0.2"], "time": ["12 mo", "100 d"]}
    assert "<0.001" in page.replace("&lt;", "<")


def test_text_is_escaped_and_long_cells_are_cut(built):
    _, page = built
    assert "thresholds &lt;0.5 &amp; &gt;0.2 &lt;b&gt;frozen&lt;/b&gt;" in page and "<b>frozen" not in page
    assert "Text longer than 60 characters cut in column(s) Lead_genes" in page
    assert "HALLMARK_MEAN_RADIUS_SIGNATURE_SET" in page


def test_rankings_are_ordered(built):
    _, page = built
    shap = page[page.index("mean |SHAP| per feature"):]
    shap = shap[:shap.index("</table>")]
    values = [float(v) for v in re.findall(r'<td class="num">([0-9.]+)</td>', shap)]
    assert len(values) == 8 and values == sorted(values, reverse=True)
    assert "Ordered by largest |mean_abs_shap|" in page
    g = pd.DataFrame({"Term": list("abc"), "NOM p-val": [0.01, 0.2, 0.03], "FDR q-val": [0.3, 0.1, 0.2]})
    assert list(tb.rank_rows(g)[0]["Term"]) == ["b", "c", "a"]      # adjusted p before nominal p
    imp = pd.DataFrame({"feature": list("abcd"), "importance": [0.0, -0.5, 0.0, 0.2]})
    ranked, how = tb.rank_rows(imp)
    assert list(ranked["feature"]) == ["b", "d"] and how == "largest |importance|; 2 rows with importance = 0 left out"
    assert len(tb.rank_rows(imp.assign(importance=0.0))[0]) == 4     # all zero: nothing to rank, all kept


def test_hyperparameters_are_shown_whole(built):
    _, page = built
    assert ("model__C = 1; model__penalty = l2; select__l1_ratio = 0.5; select__threshold = 0.0001; "
            "model__class_weight = None") in page


def test_long_tables_are_shortened_with_a_note(built, study_dir):
    _, page = built
    de = pd.read_csv(study_dir / "tables" / "de.csv")
    assert "25 of 30 rows shown (smallest padj); the full table is in tables/de.csv" in page
    worst = de.sort_values("padj").iloc[-1]["gene"]
    best = de.sort_values("padj").iloc[0]["gene"]
    assert best in page and worst not in page
    assert "Shown at thresholds 0.05, 0.10" in page        # decision curve kept at round thresholds


# ----------------------------------------------------------------------------- self-containment
def test_html_is_self_contained_without_broken_links(built):
    _, page = built
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    hrefs = re.findall(r'href="([^"]*)"', page)
    assert hrefs, "the report has a table of contents"
    for h in hrefs:
        assert h.startswith("#") and h[1:] in ids, f"broken or external link {h!r}"
    srcs = re.findall(r'<img[^>]*\ssrc="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<link" not in page and "<script" not in page
    assert not re.search(r"url\((?!data:)", page.replace("url(data:", ""))
    assert not re.search(r'(src|href)="(https?:|file:|//)', page)


def test_pdf_renders_several_pages(built):
    res, _ = built
    pdf = Path(res["pdf"])
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if not shutil.which("pdfinfo"):
        pytest.skip("poppler-utils (pdfinfo) not installed")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert pages > 1
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "TRIPOD+AI checklist" in text and "Model performance" in text


# ---------------------------------------------------------------------------------- identifiers
def test_no_patient_identifiers_unless_asked(built, study_dir, tmp_path):
    res, page = built
    ids = pd.read_csv(study_dir / "split.csv")["patient_id"]
    assert not any(i in page for i in ids), "a patient identifier leaked into the HTML"
    assert IDS_PREFIX not in page
    assert "[identifier removed]" in page                    # the free-text note was scrubbed
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(res["pdf"]), "-"], capture_output=True, text=True).stdout
        assert IDS_PREFIX not in text
    # the same study with identifiers requested shows them: the check above can fail
    out = rb.build_report(study_dir, out_html=tmp_path / "r.html", out_pdf=tmp_path / "r.pdf",
                          include_identifiers=True, title="With identifiers")
    page_ids = Path(out["html"]).read_text()
    assert IDS_PREFIX in page_ids and "With identifiers" in page_ids


def test_numeric_identifiers_remove_index_columns_but_not_levels():
    ids = tb.Identifiers()
    ids.add_from(pd.DataFrame({"patient_id": range(1, 247)}))
    t = pd.DataFrame({"Unnamed: 0": [3, 17, 45, 101, 200, 5], "level": ["1", "2", "1", "2", "1", "2"],
                      "estimate": [1.0, 2.0, 3.0, 1.5, 2.5, 0.5]})
    out, dropped = ids.scrub_frame(t)
    assert dropped == ["Unnamed: 0"] and list(out.columns) == ["level", "estimate"]
    assert ids.scrub_text("HR 1.52 in 17 of 101 patients") == "HR 1.52 in 17 of 101 patients"
    ids.add_from(pd.DataFrame({"patient_id": ["HCC-007", "HCC-012"]}))
    assert ids.scrub_text("mask missing: images/HCC-007_AP.nrrd; HCC-0120 fine") == \
        "mask missing: images/[identifier removed]_AP.nrrd; HCC-0120 fine"
    t = pd.DataFrame({"image": ["images/HCC-012_PVP.nrrd", "x.nrrd"], "ok": ["a", "b"]})
    assert ids.scrub_frame(t)[1] == ["image"]


@pytest.mark.parametrize("name,expected", [
    ("patient_id", True), ("PatientID", True), ("id", True), ("MRN", True), ("name", True), ("Unnamed: 0", False),
    ("subject", True), ("feature_name", False), ("gene_id", False), ("term name", False), ("n_patients", False),
    ("identifier", False), ("estimate", False), ("date_of_birth", False), ("dob", True)])
def test_identifier_columns(name, expected):
    assert tb.is_identifier_column(name) is expected


# ------------------------------------------------------------------------------------ checklist
def test_checklist_covers_every_tripod_ai_item(built):
    _, page = built
    items = load_checklist(known_sections=rb.SECTION_KEYS)
    assert len(items) == 52 and sorted({it.main for it in items}) == list(range(1, 28))
    table = page[page.index('id="sec-checklist"'):]
    rows = re.findall(r'<tr class="(auto|partial|authors|na)"><td class="item">([0-9a-g]+)</td>', table)
    assert [r[1] for r in rows] == [it.id for it in items]
    status = dict((i, c) for c, i in rows)
    assert status["17"] == "authors" and status["1"] == "authors"           # ethics, title
    assert status["23a"] == "auto" and status["20a"] == "partial"           # performance; flow lacks screening
    assert status["22"] == "partial" and status["5a"] == "partial"          # model access; data sources
    # item 7 maps to reproducibility (absent here) and provenance (present): partly reported, linked to provenance
    assert status["7"] == "partial"
    row7 = table[table.index('<td class="item">7</td>'):].split("</tr>")[0]
    assert "#sec-provenance" in row7 and "#sec-reproducibility" not in row7


def test_filled_checklist_csv_gives_sections_and_pdf_pages(built):
    res, _ = built
    cl = pd.read_csv(res["checklist"], dtype=str).fillna("")
    assert len(cl) == 52 and cl["item"].iloc[0] == "1" and cl["item"].iloc[-1] == "27c"
    row = cl.set_index("item").loc["23a"]
    assert row["status"] == "Addressed" and "Model performance" in row["report_sections"]
    pages = [int(p) for p in row["pdf_pages"].split(", ")]
    assert len(pages) == row["report_sections"].count("§") and all(p >= 1 for p in pages)
    if shutil.which("pdftotext"):   # the page given for the performance section really holds it
        text = subprocess.run(["pdftotext", "-f", str(pages[0]), "-l", str(pages[0]), res["pdf"], "-"],
                              capture_output=True, text=True, check=True).stdout
        assert "Model performance" in text
    assert cl.set_index("item").loc["17", "status"] == "For the authors"


def test_checklist_file_is_validated(tmp_path):
    from prime_stats.report.tripod import checklist_path
    raw = yaml.safe_load(checklist_path().read_text())
    raw["items"] = [it for it in raw["items"] if it["id"] != "18c"]
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="52 sub-items"):
        load_checklist(p)
    raw = yaml.safe_load(checklist_path().read_text())
    raw["items"][4]["section"] = "no_such_section"
    p.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match="no_such_section"):
        load_checklist(p, known_sections=rb.SECTION_KEYS)


# ------------------------------------------------------------------------------------ bad input
def test_bad_study_folders_give_clear_errors(tmp_path, study_dir):
    with pytest.raises(FileNotFoundError, match="study folder not found"):
        rb.build_report(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="artefacts.json"):
        rb.build_report(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(study_dir, broken)
    art = json.loads((broken / "artefacts.json").read_text())
    art["figures"]["td_auc"] = "tables/metrics.csv"        # not a PNG
    art["tables"]["cox_zph"] = "tables/missing.csv"        # listed but absent
    art["tables"]["extra_stats"] = "tables/flow.csv"       # a key no section knows
    (broken / "artefacts.json").write_text(json.dumps(art))
    pd.read_csv(broken / "tables" / "metrics.csv").drop(columns="split").to_csv(broken / "tables" / "metrics.csv")
    with pytest.warns(UserWarning) as record:
        page, missing = rb.render_html(broken)
    assert sorted(str(w.message).split(":")[1].strip().split()[0] for w in record) == ["figure", "table", "table"]
    assert "metrics table lacks column(s) [&#39;split&#39;]" in page and "performance" in missing
    assert 'id="sec-additional"' in page and "extra_stats" in page
    ids = set(re.findall(r'\sid="([^"]+)"', page))
    assert all(h[1:] in ids for h in re.findall(r'href="([^"]*)"', page))
    assert "tables/metrics.csv is not a PNG image" in page
    assert "listed in artefacts.json but tables/missing.csv was not found" in page


# ------------------------------------------------------------------------------------ artefacts
def test_artefacts_accept_registered_keys_only_and_index_what_they_wrote(tmp_path):
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([0, 1], [0, 1])
    art = Artefacts(tmp_path)
    art.table("flow", pd.DataFrame({"split": ["train"], "n": [10]}))
    art.table("metrics", pd.DataFrame({"metric": ["AUC", "AUC", "C-index"], "engine": ["R", "python", "R"]}))
    art.figure("roc_test", fig)
    art.figure("km_test", tmp_path / "figures" / "roc_test.png")
    art.notes["td_auc"] = "no survival model"
    art.write()
    index = read_artefacts(tmp_path)
    assert index["tables"] == {"flow": "tables/flow.csv", "metrics": "tables/metrics.csv"}
    assert index["engines"] == {"AUC": "R/python", "C-index": "R"}
    assert set(index["figures"]) == {"roc_test", "km_test"} and index["notes"] == {"td_auc": "no survival model"}
    assert (tmp_path / "figures" / "km_test.png").read_bytes() == (tmp_path / "figures" / "roc_test.png").read_bytes()
    w, h, dpi = rb._png_size((tmp_path / "figures" / "roc_test.png").read_bytes())
    assert w > 100 and h > 50 and abs(dpi - 150) < 0.5
    assert pd.read_csv(tmp_path / "tables" / "flow.csv").to_dict("list") == {"split": ["train"], "n": [10]}
    with pytest.raises(KeyError, match="'roc_curve_test' is not in the artefact registry"):
        art.table("roc_curve_test", pd.DataFrame())
    with pytest.raises(ValueError, match="key '../x'"):
        art.table("../x", pd.DataFrame())
    with pytest.raises(ValueError, match="not a PNG"):
        art.figure("roc_external", tmp_path / "tables" / "flow.csv")


def test_a_nearly_empty_study_still_gives_a_complete_report(tmp_path):
    art = Artefacts(tmp_path)
    art.table("flow", pd.DataFrame({"split": ["train", "external"], "n": [80, 133]}))
    art.write()
    res = rb.build_report(tmp_path)
    page = Path(res["html"]).read_text()
    assert set(res["missing_sections"]) == {s.key for s in rb.SECTIONS} - {"flow"}
    omics = page[page.index('id="sec-omics"'):page.index('id="sec-limitations"')]
    assert omics.count("not available</span>") == 1
    assert "this section (tables &#39;omics_samples&#39;, &#39;de&#39;, &#39;gsea&#39;, &#39;go&#39;" in omics
    assert "provenance.json: not found in the study folder" in page
    cl = pd.read_csv(res["checklist"], dtype=str).fillna("")
    assert (cl.set_index("item").loc["23a", "status"] == "Not available in this run: for the authors")


def test_fusion_weights_are_one_table_per_model_without_the_other_models_columns(tmp_path):
    fw = pd.DataFrame({
        "term": ["intercept", "logit_p_clinical", "logit_p_radiomics", None, None],
        "coefficient": [0.1, 0.8, 0.4, np.nan, np.nan],
        "lower": [-0.3, 0.2, 0.0, 0.41, 9.9e-324],
        "upper": [0.5, 1.4, 0.9, 1.0, 0.000213],
        "feature_kind": [None, None, None, "clinical", "radiomics"],
        "learner": [None, None, None, "coxnet", "rsf"],
        "weight": [np.nan, np.nan, np.nan, 1.0, 4.2e-12],
        "model": ["PRIME-R (stacker)"] * 3 + ["PRIME-S (stacking)"] * 2})
    st = rb._Study(tmp_path, {}, {}, tables={"fusion_weights": fw})
    st.paths["table:fusion_weights"] = "tables/fusion_weights.csv"
    blocks = rb._Builder(st, include_identifiers=True).tables("fusion_weights")
    assert len(blocks) == 2
    r, s = (b["html"] for b in blocks)
    assert "PRIME-R (stacker)" in r and "Coefficient" in r and "Weight" not in r and "Learner" not in r
    assert "PRIME-S (stacking)" in s and "Weight" in s and "Coefficient" not in s
    # the member first, then its weight and interval; weights driven to ~0 by the solver read 0
    assert s.index("Feature kind") < s.index("Learner") < s.index("Weight") < s.index("Lower") < s.index("Upper")
    assert "e-" not in s and "9.9" not in s and "2.1" not in s


def test_paradox_sentences_come_from_the_tables_that_ran(tmp_path):
    """The landmark, correlation and divergence sentences name each split and quote its numbers; the
    divergence sentence (with its 'random PRIME-R' claim) is absent when the divergence table is."""
    from prime_stats import paradox

    rng = np.random.default_rng(1)
    n = 150
    y, prob, risk = rng.binomial(1, 0.5, n), rng.random(n), rng.normal(size=n)
    t, e = rng.exponential(600, n).round() + 1, rng.binomial(1, 0.7, n)
    art = Artefacts(tmp_path)
    art.table("flow", pd.DataFrame({"split": ["external"], "n": [n]}))
    lm = paradox.landmark_response(y, t, e, split="external")
    art.table("landmark_response", lm)
    art.table("response_risk_correlation", paradox.response_risk_correlation(prob, risk, split="external"))
    art.write()
    page = re.sub(r"\s+", " ", Path(rb.build_report(tmp_path)["html"]).read_text())
    r = lm.iloc[0]
    assert (f"external validation centre HR {r['estimate']:.2f} (95% CI {r['lower']:.2f} to {r['upper']:.2f}"
            in page)
    assert "Spearman correlation of the PRIME-R probability" in page and "guessed at random" not in page
    th = paradox.ParadoxThresholds(0.5, 0.0, "fixed", "median")
    art.table("paradox_divergence", paradox.divergence_test(prob, risk, t, e, thresholds=th, split="external"))
    art.write()
    page = re.sub(r"\s+", " ", Path(rb.build_report(tmp_path)["html"]).read_text())
    assert "would be as large with a PRIME-R that guessed at random" in page
    assert "external validation centre: interaction HR" in page


def test_report_says_which_shap_is_which_and_which_recipe_ran(tmp_path):
    """SHAP of the frozen model and CV-averaged SHAP of fast-grid refits are each named only when their
    artefact exists; the selection recipe and learner-choice rule come from the resolved configuration,
    with the tuning table in the model specification."""
    ranking = pd.DataFrame({"feature": ["pni", "afp"], "mean_abs_shap": [0.2, 0.1]})
    tuning = pd.DataFrame({"endpoint": "response", "model": "PRIME-R", "feature_kind": "clinical", "recipe": "paper",
                           "learner": ["ridge_logistic", "adaboost"], "cv_score": [0.70, 0.72], "cv_sd": 0.1,
                           "cv_se": 0.045, "rule": "one_se", "chosen": [True, False]})
    cfg = {"models": {"family": "prime", "recipe": "paper", "learner_choice": "one_se"}, "explain": {"cv": 5}}

    def page(**tables):
        d = tmp_path / "_".join(tables)
        art = Artefacts(d)
        for k, df in tables.items():
            art.table(k, df)
        art.write()
        (d / "config.resolved.yaml").write_text(yaml.safe_dump(cfg))
        html = rb.render_html(d)[0]
        part = html[html.index('id="sec-specification"'):html.index('id="sec-performance"')] + \
            html[html.index('id="sec-explain"'):html.index('id="sec-paradox"')]
        return re.sub(r"\s+", " ", unescape(_visible_text(part)))

    frozen = ranking.assign(output="probability", method="exact interventional Shapley; background 30 training rows",
                            explained="27 of 27 test, 40 of 60 external patients")
    both = page(shap_response=ranking, shap_frozen_response=frozen, tuning=tuning)
    assert ("SHAP of the frozen model, the one that was validated: PRIME-R's probability of response (explained "
            "rows: 27 of 27 test, 40 of 60 external patients; background 30 training rows; the engine is in each "
            "table's note).") in both
    assert "CV-averaged SHAP of fast-grid refits" in both and "in 5-fold cross-validation" in both
    assert caption("table", "shap_frozen_response") in both and caption("table", "tuning") in both
    assert "Feature selection recipe 'paper' (the paper's recipe" in both
    assert "learner choice 'one_se' (the simplest candidate learner" in both
    assert "Kept: PRIME-R clinical: ridge_logistic (of 2)." in both
    cv_only = page(shap_response=ranking)
    assert "CV-averaged SHAP of fast-grid refits" in cv_only and "SHAP of the frozen model" not in cv_only
    frozen_only = page(shap_frozen_response=frozen)
    assert "SHAP of the frozen model" in frozen_only and "CV-averaged" not in frozen_only


def test_internal_test_artefacts_of_a_whole_centre_run_are_not_applicable(built, study_dir, tmp_path):
    """split.test_fraction 0 (no internal test split): an absent internal-test figure says why."""
    d = tmp_path / "whole_centre"
    shutil.copytree(study_dir, d)
    cfg = yaml.safe_load((d / "config.resolved.yaml").read_text())
    cfg["split"]["test_fraction"] = 0
    (d / "config.resolved.yaml").write_text(yaml.safe_dump(cfg))
    art = json.loads((d / "artefacts.json").read_text())
    del art["figures"]["roc_test"]
    (d / "artefacts.json").write_text(json.dumps(art, indent=2))
    text = _visible_text(Path(rb.build_report(d)["html"]).read_text(encoding="utf-8"))
    assert "not applicable: no internal test split (split.test_fraction 0" in text
    assert "no internal test split" not in _visible_text(built[1])      # the 7:3 study says nothing of it
