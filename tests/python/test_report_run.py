"""The report of real study runs tells only what ran: run_study(report=True) on small simulated studies
(full: clinical + radiomics with PRIME, fast grids; clinical-only and survival-only with the baseline
family). Every section is produced or explained by a note, and no narrative sentence (section intros,
summary, limitations, design table) names an analysis absent from metrics.csv / artefacts.json."""
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from prime_stats.report import build as rb
from prime_stats.study import run_study

GOLDEN = Path(__file__).parent / "golden"
# phrase -> what must exist for it to be said: ("split", s) in metrics.csv, or an artefact key
CLAIMS = {r"nested cross-validation|nested CV": ("split", "nested_cv"),
          r"optimism correction|optimism-corrected|bootstrap optimism": ("table", "optimism"),
          r"paired bootstrap": ("table", "survival_contrasts"),
          r"SHAP": ("table", "shap_response", "shap_survival", "shap_frozen_response", "shap_frozen_survival"),
          r"CV-averaged SHAP": ("table", "shap_response", "shap_survival"),
          r"SHAP of the frozen model": ("table", "shap_frozen_response", "shap_frozen_survival"),
          r"SurvSHAP": ("table", "survshap"),
          r"GSEA|enrichment|ssGSEA|Differential expression": ("table", "de", "gsea"),
          r"Schoenfeld|proportional-hazards": ("table", "cox_zph"), r"subgroup": ("table", "subgroups"),
          r"[Dd]ecision-curve|[Nn]et benefit": ("table", "decision_curve_test", "decision_curve_external",
                                                "decision_curve_survival"),
          r"Kaplan-Meier|log-rank|[Ll]og-rank": ("table", "km_groups", "followup"),
          r"ICC|reproducib": ("table", "icc_summary"), r"[Ff]usion": ("table", "fusion_weights"),
          r"adjusted for": ("table", "adjusted_cox"), r"ROC": ("figure", "roc_test", "roc_external"),
          r"Calibration curves": ("figure", "calibration_test", "calibration_external",
                                  "calibration_survival_test", "calibration_survival_external"),
          r"[Ee]vents per candidate parameter|Riley": ("table", "sample_size")}


def _study(tmp: Path, name: str, clinical_only=False, survival_only=False) -> Path:
    d = tmp / name
    d.mkdir()
    for f in ("clinical.csv", "radiomics.csv"):
        shutil.copy(GOLDEN / f, d / f)
    cfg = yaml.safe_load((GOLDEN / "study.yaml").read_text())
    cfg["evaluation"] = {"engine": "python", "nested_cv": False}
    if clinical_only or survival_only:
        del cfg["data"]["features"]
        cfg["models"] = {"family": "baseline"}
    if survival_only:
        cfg["columns"] = {"response": None}
    (d / "study.yaml").write_text(yaml.safe_dump(cfg))
    run_study(d / "study.yaml", progress=False, report=True)
    return d / "results"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    return {"full": _study(tmp, "full"), "clinical": _study(tmp, "clinical", clinical_only=True),
            "survival": _study(tmp, "survival", survival_only=True)}


def _narrative(page: str) -> str:
    """Intros, summary and limitations paragraphs and the study-design table, as plain text."""
    parts = re.findall(r'<p class="(?:intro|narrative)">(.*?)</p>', page, re.S)
    design = page[page.index('id="sec-design"'):page.index('id="sec-flow"')]
    return re.sub(r"<[^>]+>", " ", " ".join(parts) + design)


@pytest.mark.parametrize("which", ["full", "clinical", "survival"])
def test_every_section_is_produced_or_explained(runs, which):
    out = runs[which]
    page = (out / "report.html").read_text()
    assert (out / "report.pdf").stat().st_size > 10_000
    for s in rb.SECTIONS:
        body = page[page.index(f'id="sec-{s.key}"'):].split("</section>")[0]
        has_content = re.search(r'class="(narrative|table-wrap[^"]*|figures|flow)"', body)
        assert has_content or "not available</span>" in body or "notes below say why" in body, s.key


@pytest.mark.parametrize("which", ["full", "clinical", "survival"])
def test_no_sentence_names_an_analysis_that_did_not_run(runs, which):
    out = runs[which]
    text = _narrative((out / "report.html").read_text())
    art = json.loads((out / "artefacts.json").read_text())
    splits = set(pd.read_csv(out / "metrics.csv")["split"].astype(str))
    for phrase, (kind, *keys) in CLAIMS.items():
        if re.search(phrase, text):
            ok = any(k in splits for k in keys) if kind == "split" else any(k in art[kind + "s"] for k in keys)
            assert ok, f"{which}: the report says {phrase!r} but {keys} is not among this run's {kind}s"


def test_summary_and_limitations_come_from_the_run(runs):
    out = runs["full"]
    page = (out / "report.html").read_text()
    m = pd.read_csv(out / "metrics.csv")
    auc = m[(m.model == "PRIME-R") & (m.metric == "AUC") & (m.split == "external")].iloc[0]
    summary = page[page.index('id="sec-summary"'):page.index('id="sec-design"')]
    assert f"AUC {auc.estimate:.3f} (95% CI {auc.lower:.3f} to {auc.upper:.3f})" in summary
    ss = pd.read_csv(out / "tables" / "sample_size.csv")
    final = ss[(ss.endpoint == "response") & (ss.criterion == "final")].iloc[0]
    lim = page[page.index('id="sec-limitations"'):page.index('id="sec-provenance"')]
    assert f"{int(final.parameters)} candidate predictor parameters" in lim and f"{int(final.n)} patients" in lim
    flow = pd.read_csv(out / "tables" / "flow.csv").set_index("split")
    assert f"internal test split has {int(flow.loc['test', 'n'])} patients" in lim
    assert "SimpleImputer(strategy=&#39;median&#39;)" in lim
    # the survival-only run has no response endpoint anywhere in its summary
    s_page = (runs["survival"] / "report.html").read_text()
    s_sum = s_page[s_page.index('id="sec-summary"'):s_page.index('id="sec-design"')]
    assert "AUC" not in s_sum and "C-index" in s_sum
    assert "nested cross-validation" not in _narrative(page)       # nested CV was switched off


def test_horizons_with_few_patients_at_risk_are_greyed_not_headlined(runs):
    out = runs["full"]
    page = (out / "report.html").read_text()
    k = pd.read_csv(out / "tables" / "km_at_risk.csv")
    if not (k.groupby(["split", "time"]).n_risk.sum() < 10).any():
        pytest.skip("no sparse horizon in this run")
    assert 'class="num sparse"' in page and "Greyed: fewer than 10" in page
    summary = page[page.index('id="sec-summary"'):page.index('id="sec-design"')]
    assert "†" not in re.sub(r"<[^>]+>", "", summary.split("Horizons with fewer")[0])


def test_checklist_statuses_follow_the_run(runs):
    cl = pd.read_csv(runs["full"] / "tripod_ai_checklist.csv", dtype=str).fillna("").set_index("item")
    assert len(cl) == 52
    for item in ("5a", "8a", "9a", "11", "12c", "12e", "20a", "22", "23b"):
        assert cl.loc[item, "status"].startswith("Partly addressed; missing:"), item
    assert "This run:" in cl.loc["22", "note"] and ".skops" in cl.loc["22", "note"]
    assert "apparent performance only" in cl.loc["12c", "note"]
    assert cl.loc["23a", "status"] == "Addressed" and cl.loc["17", "status"] == "For the authors"
