"""omics: gene-set IO, DE (limma / voom / Welch), GSEA, ORA, ssGSEA (GSVA vs gseapy), immune scores.

Real data: GSE1992 (124 breast tumours, log-ratio arrays) with ER status, where ESR1/GATA3 and the
Hallmark estrogen-response sets are the known biology; the simulator's RNA-seq counts, where the
planted pathways are known.
"""
import json

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from prime_stats import omics

HALLMARK = "genesets/h.all.v7.5.1.symbols.gmt"


@pytest.fixture(scope="module")
def er_data(shared_data):
    expr = omics.read_expression(shared_data / "expression" / "gse1992_expression.tsv.gz")
    clin = pd.read_csv(shared_data / "expression" / "gse1992_clinical.csv").set_index("pid")
    clin = clin[clin["fac_er_positive"].isin(["0", "1", 0, 1])]
    groups = clin["fac_er_positive"].astype(int).map({1: "ERpos", 0: "ERneg"})
    return expr[groups.index], groups


@pytest.fixture(scope="module")
def hallmark(shared_data):
    return omics.read_gmt(shared_data / HALLMARK)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory, shared_data):
    from prime_stats.simulate import simulate_study

    out = simulate_study(tmp_path_factory.mktemp("sim"), images=False,
                         gene_sets=str(shared_data / HALLMARK))
    counts = pd.read_csv(out["expression"], sep="\t", index_col=0)
    truth = pd.read_csv(out["truth_patients"]).set_index("patient_id").loc[counts.columns]
    info = json.loads(open(out["truth"]).read())["expression"]
    return counts, truth, info


# ------------------------------------------------------------------------------------ gene sets
def test_gmt_roundtrip_and_errors(tmp_path):
    sets = {"A": ["G1", "G2", "G3"], "B": ["G2", "G4"]}
    p = omics.write_gmt(sets, tmp_path / "x.gmt", {"A": "first"})
    assert omics.read_gmt(p) == sets
    assert p.read_text().splitlines()[0] == "A\tfirst\tG1\tG2\tG3"
    bad = tmp_path / "bad.gmt"
    bad.write_text("A\tdesc\tG1\nB only-two-fields\n")
    with pytest.raises(ValueError, match="line 2"):
        omics.read_gmt(bad)
    bad.write_text("A\tdesc\tG1\nA\tdesc\tG2\n")
    with pytest.raises(ValueError, match="appears twice"):
        omics.read_gmt(bad)


def test_match_genes_reports_unmatched():
    sets = {"S1": ["TP53", "EGFR", "Egfr", "ENSG0001"], "S2": ["XYZ"]}
    matched, report = omics.match_genes(["TP53", "EGFR", "MYC"], sets, min_size=2)
    assert matched == {"S1": ["TP53", "EGFR"]}
    row = report.set_index("gene_set").loc["S1"]
    assert row["n_matched"] == 2 and row["fraction_matched"] == 0.5
    assert row["unmatched"] == "Egfr;ENSG0001"
    assert not report.set_index("gene_set").loc["S2", "kept"]
    with pytest.raises(ValueError, match="gene symbols"):
        omics.match_genes(["ENSG1", "ENSG2"], sets)


def test_expression_checks_name_the_problem():
    x = pd.DataFrame({"s1": [1.0, np.nan, 3.0], "s2": [1.0, 2.0, 3.0]}, index=["A", "B", "C"])
    with pytest.raises(ValueError, match="gene 'B', sample 's1'"):
        omics.check_expression(x)
    x = pd.DataFrame({"s1": [1.0, 2.0], "s2": [1.0, 2.0]}, index=["A", "A"])
    with pytest.raises(ValueError, match="duplicated gene names"):
        omics.check_expression(x)
    x = pd.DataFrame(np.ones((3, 4)), index=list("ABC"), columns=list("wxyz"))
    with pytest.raises(ValueError, match="no label for sample"):
        omics.differential_expression(x, pd.Series([0, 1, 0], index=list("wxy")), engine="python")
    with pytest.raises(ValueError, match="exactly two levels"):
        omics.differential_expression(x, [0, 1, 2, 0], engine="python")


def test_immune_gmt_matches_cytopus():
    cp = pytest.importorskip("cytopus")
    from cytopus.knowledge_base.kb_queries import extract_hierarchy

    kb = cp.KnowledgeBase()

    def desc(d):
        for k, v in d.items():
            yield k
            yield from desc(v)

    leuk = set(desc(extract_hierarchy(kb, "leukocyte")))
    expected = {k: sorted(kb.identities[k]) for k in sorted(kb.identities) if k in leuk}
    assert omics.immune_gene_sets() == expected
    assert {"CD8-T", "Treg", "NK", "B", "Mac"} <= set(expected)


# ------------------------------------------------------------------------------------ real data
def test_de_python_recovers_er_biology(er_data):
    expr, groups = er_data
    de = omics.differential_expression(expr, groups, reference="ERneg", engine="python")
    assert de["engine"].iloc[0] == "python scipy" and de["contrast"].iloc[0] == "ERpos - ERneg"
    top = de.head(10).set_index("gene")
    assert {"ESR1", "GATA3"} <= set(top.index) and (top.loc[["ESR1", "GATA3"], "log_fc"] > 1).all()
    np.testing.assert_allclose(de["p_adj"], stats.false_discovery_control(de["p_value"]), rtol=1e-12)


def test_de_python_matches_r_welch(er_data, r_engine):
    expr, groups = er_data
    de = omics.differential_expression(expr, groups, reference="ERneg", engine="python")
    # reference: R's t.test (Welch) for ESR1
    a = expr.loc["ESR1", groups[groups == "ERpos"].index].to_numpy()
    b = expr.loc["ESR1", groups[groups == "ERneg"].index].to_numpy()
    ref = r_engine.run_r("unlist(t.test(c(%s), c(%s))[c('statistic', 'p.value')])"
                         % (",".join(map(repr, a.tolist())), ",".join(map(repr, b.tolist()))))
    row = de.set_index("gene").loc["ESR1"]
    np.testing.assert_allclose([row["statistic"], row["p_value"]], np.asarray(ref, float), rtol=1e-8)


def test_de_limma_engine(er_data, r_engine):
    expr, groups = er_data
    py = omics.differential_expression(expr, groups, reference="ERneg", engine="python").set_index("gene")
    lm = omics.differential_expression(expr, groups, reference="ERneg", engine="R").set_index("gene")
    assert lm["engine"].iloc[0] == "R limma"
    # limma's logFC for a two-group design is the difference of group means
    np.testing.assert_allclose(lm["log_fc"], py.loc[lm.index, "log_fc"], atol=1e-10)
    np.testing.assert_allclose(lm["p_adj"], stats.false_discovery_control(lm["p_value"]), rtol=1e-10)
    assert stats.spearmanr(lm["statistic"], py.loc[lm.index, "statistic"])[0] > 0.99
    assert {"ESR1", "GATA3"} <= set(lm.head(10).index)


def test_gsea_prerank_estrogen_sets(er_data, hallmark):
    expr, groups = er_data
    de = omics.differential_expression(expr, groups, reference="ERneg", engine="python")
    res = omics.gsea_prerank(de, hallmark, permutations=200, seed=1)
    t = res.table.set_index("gene_set")
    for s in ("HALLMARK_ESTROGEN_RESPONSE_EARLY", "HALLMARK_ESTROGEN_RESPONSE_LATE"):
        assert t.loc[s, "nes"] > 1.5 and t.loc[s, "fdr"] < 0.05
        lead = t.loc[s, "leading_edge"].split(";")
        assert 0 < len(lead) <= t.loc[s, "n_matched"] and set(lead) <= set(hallmark[s])
    assert t.loc["HALLMARK_E2F_TARGETS", "nes"] < -1.5  # ER- tumours proliferate more
    assert t.loc["HALLMARK_E2F_TARGETS", "p_below_resolution"] and "p < 0.005" in t["method"].iloc[0]
    assert res.running["HALLMARK_ESTROGEN_RESPONSE_EARLY"]["RES"].size == len(res.ranking)


def test_ora_matches_hypergeometric_references(hallmark):
    universe = sorted({g for s in hallmark.values() for g in s})
    rng = np.random.default_rng(3)
    query = list(rng.choice(hallmark["HALLMARK_HYPOXIA"], 40, replace=False)) + \
        list(rng.choice(universe, 60, replace=False))
    ora = omics.over_representation(query, hallmark, universe)
    assert ora.iloc[0]["gene_set"] == "HALLMARK_HYPOXIA" and ora.iloc[0]["p_adj"] < 1e-10
    row = ora.set_index("gene_set").loc["HALLMARK_GLYCOLYSIS"]
    M, n, N, k = len(universe), row["n_set"], row["n_query"], row["overlap"]
    table = [[k, N - k], [n - k, M - n - N + k]]
    assert row["p_value"] == pytest.approx(stats.fisher_exact(table, alternative="greater")[1], rel=1e-9)
    with pytest.raises(ValueError, match="not in the universe"):
        omics.over_representation(["NOT_A_GENE"], hallmark, universe)


def test_ora_matches_r_phyper(hallmark, r_engine):
    universe = sorted({g for s in hallmark.values() for g in s})
    query = hallmark["HALLMARK_HYPOXIA"][:30] + hallmark["HALLMARK_APOPTOSIS"][:10]
    row = omics.over_representation(query, hallmark, universe).set_index("gene_set").loc["HALLMARK_HYPOXIA"]
    M, n, N, k = len(universe), row["n_set"], row["n_query"], row["overlap"]
    ref = r_engine.run_r(f"phyper({k - 1}, {n}, {M - n}, {N}, lower.tail = FALSE)")
    assert row["p_value"] == pytest.approx(float(ref), rel=1e-9)


def _ssgsea_reference(expr: pd.DataFrame, genes: list, alpha: float) -> np.ndarray:
    """ssGSEA by its definition (Barbie 2009 / GSVA): rank, weighted walk, sum of the walk."""
    out = []
    for s in expr.columns:
        r = np.floor(stats.rankdata(expr[s].to_numpy(), method="average"))
        order = np.argsort(-r, kind="stable")
        inset = np.isin(expr.index.to_numpy()[order], genes)
        w = np.abs(r[order]) ** alpha * inset
        walk = np.cumsum(w) / w.sum() - np.cumsum(~inset) / (~inset).sum()
        out.append(walk.sum())
    return np.asarray(out)


def test_ssgsea_python_matches_definition():
    rng = np.random.default_rng(0)
    expr = pd.DataFrame(rng.normal(size=(300, 8)), index=[f"G{i}" for i in range(300)],
                        columns=[f"s{j}" for j in range(8)])
    expr.iloc[:40, :4] += 1.5  # set A up in the first four samples
    sets = {"A": [f"G{i}" for i in range(40)], "B": [f"G{i}" for i in range(100, 130)]}
    res = omics.ssgsea(expr, sets, normalize=False, engine="python")
    for name, genes in sets.items():
        np.testing.assert_allclose(res.scores.loc[name], _ssgsea_reference(expr, genes, 0.25), rtol=1e-6)
    assert (res.scores.loc["A"].iloc[:4] > res.scores.loc["A"].iloc[4:].max()).all()
    norm = omics.ssgsea(expr, sets, engine="python").scores
    np.testing.assert_allclose(norm, res.scores / np.ptp(res.scores.to_numpy()), rtol=1e-12)


def test_ssgsea_gsva_and_gseapy_agree_on_real_data(er_data, hallmark, r_engine):
    expr, _ = er_data
    r = omics.ssgsea(expr, hallmark, engine="R")
    p = omics.ssgsea(expr, hallmark, engine="python")
    assert r.engine.startswith("R GSVA") and p.engine.startswith("gseapy")
    assert list(r.scores.index) == list(p.scores.index) and len(r.scores) == 50
    rho = [stats.spearmanr(r.scores.loc[s], p.scores.loc[s])[0] for s in r.scores.index]
    assert min(rho) >= 0.99
    np.testing.assert_allclose(p.scores.to_numpy(), r.scores.to_numpy(), atol=1e-6)


def test_immune_infiltration_planted_and_real(er_data):
    rng = np.random.default_rng(1)
    sets = omics.immune_gene_sets()
    genes = sorted({g for s in sets.values() for g in s} | {f"BG{i}" for i in range(2000)})
    expr = pd.DataFrame(rng.normal(size=(len(genes), 30)), index=genes,
                        columns=[f"p{i}" for i in range(30)])
    groups = pd.Series(["hot"] * 15 + ["cold"] * 15, index=expr.columns)
    expr.loc[sets["CD8-T"], groups.index[:15]] += 2.0
    res, cmp = omics.immune_infiltration(expr, groups, reference="cold", engine="python")
    top = cmp.iloc[0]
    assert top["gene_set"] == "CD8-T" and top["difference"] > 0 and top["p_adj"] < 1e-3
    assert (cmp["p_adj"] >= cmp["p_value"] - 1e-15).all() and cmp["method"].iloc[0].startswith("Mann-Whitney")
    # real tumours: every immune set scored, matching reported
    expr_r, g_r = er_data
    res_r, cmp_r = omics.immune_infiltration(expr_r, g_r, engine="python")
    assert res_r.scores.shape[1] == expr_r.shape[1] and len(cmp_r) == len(res_r.scores)
    assert {"n_genes", "n_matched", "unmatched"} <= set(res_r.matching.columns)


# ------------------------------------------------------------------------------------ simulator
def _split(truth, col):
    return pd.Series(np.where(truth[col] > truth[col].median(), "high", "low"), index=truth.index)


@pytest.mark.parametrize("engine", ["python", "R"])
def test_planted_pathways_recovered_from_counts(simulated, hallmark, engine):
    counts, truth, info = simulated
    if engine == "R":
        from prime_stats import rbridge
        if not rbridge.r_available(["limma", "edgeR"]):
            pytest.skip("R limma/edgeR not available")
    for col, planted in (("lp_response", info["response_sets"]), ("lp_survival", info["risk_sets"])):
        groups = _split(truth, col)
        de = omics.differential_expression(counts, groups, reference="low", engine=engine)
        assert ("voom" in de["method"].iloc[0]) if engine == "R" else ("log2-CPM" in de["method"].iloc[0])
        keep = omics.filter_by_expr(counts, groups)
        assert set(de["gene"]) == set(keep.index[keep])  # R: edgeR::filterByExpr itself
        gsea = omics.gsea_prerank(de, hallmark, permutations=200, seed=2).table.set_index("gene_set")
        assert (gsea.loc[planted, "nes"] > 0).all()
        assert (gsea.loc[planted, "fdr"] < 0.1).mean() >= 0.6
        top = set(gsea.sort_values("nes", ascending=False).head(len(planted) + 3).index)
        assert len(top & set(planted)) >= len(planted) - 1


def test_omics_figures(tmp_path):
    from prime_stats.report import figures_explain as fe

    rng = np.random.default_rng(0)
    expr = pd.DataFrame(rng.normal(size=(400, 16)), index=[f"G{i}" for i in range(400)],
                        columns=[f"s{i}" for i in range(16)])
    groups = pd.Series(["a"] * 8 + ["b"] * 8, index=expr.columns)
    expr.iloc[:25, 8:] += 2.0
    de = omics.differential_expression(expr, groups, engine="python")
    fig = fe.plot_volcano(de, label_top=5)
    up = [c for c in fig.axes[0].collections if c.get_label().startswith("up")][0]
    assert len(up.get_offsets()) == int(((de["p_adj"] < 0.05) & (de["log_fc"] >= 1)).sum()) > 5
    sets = {"UP": [f"G{i}" for i in range(25)], "RAND": [f"G{i}" for i in range(200, 240)]}
    gsea = omics.gsea_prerank(de, sets, permutations=50, min_size=5)
    fe.plot_gsea_enrichment(gsea, "UP").savefig(tmp_path / "gsea.png")
    with pytest.raises(KeyError, match="NOPE"):
        fe.plot_gsea_enrichment(gsea, "NOPE")
    ss = omics.ssgsea(expr, sets, engine="python")
    fig = fe.plot_score_boxplot(ss.scores, groups, comparison=omics.compare_scores(ss.scores, groups))
    assert "BH p" in fig.axes[0].get_title()
    fig.savefig(tmp_path / "box.png")


@pytest.fixture(scope="module")
def go_gmt(tmp_path_factory, r_engine):
    """GO Biological Process gene sets exported once from org.Hs.eg.db / GO.db (Debian r-bioc-*)."""
    if not r_engine.r_available(omics.GO_PACKAGES):
        pytest.skip("GO.db / org.Hs.eg.db not installed (tools/setup.sh installs r-bioc-go.db, r-bioc-org.hs.eg.db)")
    return omics.export_go_gene_sets(tmp_path_factory.mktemp("go") / "go_bp.gmt")


def test_cached_go_gene_sets_is_exported_once_per_annotation_release(tmp_path, monkeypatch, r_engine):
    """The user-cache GMT is named by the installed org.Hs.eg.db and GO.db versions, exported on first
    use (atomically, via a .part file) and reused afterwards."""
    if not r_engine.r_available(omics.GO_PACKAGES):
        pytest.skip("GO.db / org.Hs.eg.db not installed")
    calls = []

    def fake_export(path, ontology="BP"):
        calls.append(Path(path))
        return omics.write_gmt({"GO:0000001": ["A", "B"]}, path, descriptions={"GO:0000001": "term"})

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(omics, "export_go_gene_sets", fake_export)
    first = omics.cached_go_gene_sets()
    versions = [r_engine.r_package_version(p) for p in ("org.Hs.eg.db", "GO.db")]
    assert first == tmp_path / "prime-stats" / f"go_bp.symbols.{versions[0]}_{versions[1]}.gmt"
    assert first.is_file() and len(calls) == 1 and calls[0].suffix == ".part" and not calls[0].exists()
    assert omics.cached_go_gene_sets() == first and len(calls) == 1
    assert omics.read_gmt(first) == {"GO:0000001": ["A", "B"]}


def test_go_enrichment_python_equals_r_and_hand_phyper(er_data, go_gmt, r_engine):
    """enrichGO's rules on GSE1992 (ER+ vs ER-, top 300 DE genes, universe = measured genes): the Python
    ORA on the exported map gives R's table, and a few terms recomputed by hand with R's phyper agree."""
    from statsmodels.stats.multitest import multipletests

    expr, groups = er_data
    de = omics.differential_expression(expr, groups, engine="python")
    query, universe = list(de["gene"].head(300)), list(expr.index)
    py = omics.enrich_go(query, universe, gene_sets=go_gmt, engine="python")
    r = omics.enrich_go(query, universe, engine="R")
    assert len(py) > 100 and set(py["go_id"]) == set(r["go_id"])
    m = py.merge(r, on="go_id", suffixes=("", "_r"))
    for c in ("n_set", "n_query", "n_universe", "overlap", "overlap_genes", "term"):
        assert (m[c] == m[f"{c}_r"]).all(), c
    np.testing.assert_allclose(m["p_value"], m["p_value_r"], rtol=1e-9)
    np.testing.assert_allclose(m["p_adj"], m["p_adj_r"], rtol=1e-9)
    assert py["n_set"].between(10, 500).all() and (py["overlap"] >= 1).all()
    np.testing.assert_allclose(py["p_adj"], multipletests(py["p_value"], method="fdr_bh")[1], rtol=1e-12)
    # by hand: universe = measured genes with a BP annotation, n = annotated query genes
    sets, terms = omics.read_gmt(go_gmt, with_descriptions=True)
    annotated = set(universe) & set().union(*map(set, sets.values()))
    q = {g for g in query if g in annotated}
    N, n = len(annotated), len(q)
    for _, row in pd.concat([py.head(2), py.iloc[[len(py) // 2, -1]]]).iterrows():
        members = set(sets[row["go_id"]]) & annotated
        M, k = len(members), len(members & q)
        p = float(np.ravel(r_engine.run_r(f"phyper({k - 1}, {M}, {N - M}, {n}, lower.tail = FALSE)"))[0])
        assert (row["n_set"], row["overlap"], row["n_universe"], row["n_query"]) == (M, k, N, n)
        assert row["p_value"] == pytest.approx(p, rel=1e-9) and row["term"] == terms[row["go_id"]]
    assert py["p_adj"].iloc[0] < 0.05      # ER status drives strong, coherent biology
