"""Transcriptomics: gene-set IO, differential expression, GSEA, ORA, ssGSEA and immune infiltration.

Expression matrices are pandas DataFrames with genes (symbols, unique) in rows and samples in
columns. Every result states the engine that produced it: the R engines (limma, limma-voom with
edgeR TMM, GSVA 1.46 ssGSEA; see ``R/omics.R``) run through :mod:`prime_stats.rbridge` when R is
available, and the Python engines (Welch t-test + Benjamini-Hochberg, gseapy) otherwise.

References: Smyth (2004) limma; Law et al. (2014) voom; Subramanian et al. (2005) GSEA;
Barbie et al. (2009) ssGSEA, as implemented by GSVA (Hänzelmann et al. 2013);
Kunes et al. (2023) Cytopus immune-cell knowledge base.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from prime_stats import rbridge
from prime_stats.cohort import check_expression  # noqa: F401 - re-exported
from prime_stats.genesets import immune_gene_sets, read_gmt, write_gmt  # noqa: F401 - re-exported

HALLMARK_FILENAME = "h.all.v7.5.1.symbols.gmt"

__all__ = [
    "read_gmt", "write_gmt", "immune_gene_sets", "read_expression", "check_expression",
    "match_genes", "filter_by_expr", "differential_expression", "gsea_prerank", "GSEAResult",
    "over_representation", "enrich_go", "export_go_gene_sets", "cached_go_gene_sets", "ssgsea", "SSGSEAResult", "compare_scores",
    "immune_infiltration",
]


# --------------------------------------------------------------------------------------------
# gene-set IO and matching
# --------------------------------------------------------------------------------------------
def _as_gene_sets(gene_sets) -> dict[str, list[str]]:
    if isinstance(gene_sets, (str, Path)):
        return read_gmt(gene_sets)
    if isinstance(gene_sets, Mapping):
        return {str(k): [str(g) for g in v] for k, v in gene_sets.items()}
    raise TypeError("gene_sets must be a GMT path or a mapping {set name: genes}")


def match_genes(genes: Iterable[str], gene_sets, *, min_size: int = 1,
                max_size: int | None = None) -> tuple[dict[str, list[str]], pd.DataFrame]:
    """Restrict gene sets to the measured genes (exact symbol match).

    Returns the matched sets (those with ``min_size <= matched <= max_size``) and a report with one
    row per set: ``n_genes``, ``n_matched``, ``fraction_matched``, ``kept`` and the ``unmatched``
    symbols (';'-joined), so that nomenclature problems (aliases, lower-case mouse symbols, Ensembl
    IDs) are visible instead of silently shrinking the sets.
    """
    measured = set(map(str, genes))
    sets = _as_gene_sets(gene_sets)
    matched, rows = {}, []
    for name, members in sets.items():
        hit = [g for g in members if g in measured]
        miss = [g for g in members if g not in measured]
        kept = len(hit) >= min_size and (max_size is None or len(hit) <= max_size)
        if kept:
            matched[name] = hit
        rows.append({"gene_set": name, "n_genes": len(members), "n_matched": len(hit),
                     "fraction_matched": len(hit) / len(members), "kept": kept,
                     "unmatched": ";".join(miss)})
    report = pd.DataFrame(rows)
    if not matched:
        raise ValueError(
            f"no gene set has at least {min_size} genes among the {len(measured)} measured genes; "
            f"are the expression row names gene symbols? (first rows: {sorted(measured)[:5]})")
    return matched, report


# --------------------------------------------------------------------------------------------
# expression input
# --------------------------------------------------------------------------------------------
def read_expression(path: str | Path, *, sep: str | None = None) -> pd.DataFrame:
    """Read a genes x samples table (first column = gene symbol; .tsv/.csv, optionally .gz)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"expression file {path} not found")
    if sep is None:
        sep = "," if ".csv" in path.suffixes else "\t"
    expr = pd.read_csv(path, sep=sep, index_col=0)
    return check_expression(expr, name=str(path))


def _is_counts(expr: pd.DataFrame) -> bool:
    v = expr.to_numpy()
    return bool((v >= 0).all() and np.allclose(v, np.round(v)) and v.max() > 50)


def _align_groups(expr: pd.DataFrame, groups) -> pd.Series:
    """Groups as a Series aligned to the expression columns (by sample name when indexed)."""
    if isinstance(groups, pd.Series) and not isinstance(groups.index, pd.RangeIndex):
        g = groups.copy()
        g.index = g.index.astype(str)
        missing = [s for s in expr.columns if s not in g.index]
        if missing:
            raise ValueError(f"groups has no label for sample(s) {missing[:5]} "
                             f"({len(missing)} of {expr.shape[1]})")
        g = g.loc[list(expr.columns)]
    else:
        g = pd.Series(np.asarray(groups), index=expr.columns)
        if len(g) != expr.shape[1]:
            raise ValueError(f"groups has {len(g)} labels but the matrix has {expr.shape[1]} samples")
    if g.isna().any():
        raise ValueError(f"groups is missing for sample(s) {list(g.index[g.isna()][:5])}")
    levels = sorted(pd.unique(g).tolist(), key=str)
    if len(levels) != 2:
        raise ValueError(f"groups must have exactly two levels, found {levels}")
    counts = g.value_counts()
    if counts.min() < 2:
        raise ValueError(f"each group needs >= 2 samples, found {counts.to_dict()}")
    return g


def filter_by_expr(counts: pd.DataFrame, groups, *, min_count: float = 10, min_total_count: float = 15,
                   large_n: int = 10, min_prop: float = 0.7) -> pd.Series:
    """Genes with enough counts to be tested: edgeR ``filterByExpr`` (defaults of edgeR 3.40).

    Keep a gene when its CPM >= min_count / median library size * 1e6 in at least the smallest
    group's size of samples (n_min, reduced to large_n + (n_min - large_n) * min_prop above
    ``large_n``) and its total count >= ``min_total_count``. Returns a boolean Series by gene.
    """
    counts = check_expression(counts, name="counts")
    g = _align_groups(counts, groups)
    n_min = float(g.value_counts().min())
    if n_min > large_n:
        n_min = large_n + (n_min - large_n) * min_prop
    values = counts.to_numpy(dtype=float)
    lib = values.sum(axis=0)
    cutoff = min_count / np.median(lib) * 1e6
    cpm = values / lib * 1e6
    keep = ((cpm >= cutoff).sum(axis=1) >= n_min - 1e-14) & (values.sum(axis=1) >= min_total_count - 1e-14)
    return pd.Series(keep, index=counts.index, name="keep")


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (NaN kept)."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = stats.false_discovery_control(p[ok], method="bh")
    return out


# --------------------------------------------------------------------------------------------
# differential expression
# --------------------------------------------------------------------------------------------
def differential_expression(expr: pd.DataFrame, groups, *, reference=None, counts: bool | None = None,
                            engine: str = "auto") -> pd.DataFrame:
    """Two-group differential expression, one row per gene, sorted by p-value.

    Log-scale data: limma (moderated t; R) or Welch's t-test (Python). Counts: genes failing
    edgeR's ``filterByExpr`` are dropped (both engines, :func:`filter_by_expr`), then limma-voom
    with edgeR TMM normalisation (R) or Welch's t-test on log2-CPM (prior count 0.5, library-size
    normalisation; Python). P-values are adjusted with Benjamini-Hochberg. ``log_fc`` is group minus ``reference``
    (default: the first level in sorted order). ``counts=None`` detects non-negative integers.

    Columns: gene, log_fc, ave_expr, statistic, p_value, p_adj, contrast, method, engine.
    """
    expr = check_expression(expr)
    g = _align_groups(expr, groups)
    levels = sorted(pd.unique(g).tolist(), key=str)
    if reference is None:
        reference = levels[0]
    if reference not in levels:
        raise ValueError(f"reference {reference!r} is not one of the group levels {levels}")
    other = [lv for lv in levels if lv != reference][0]
    if counts is None:
        counts = _is_counts(expr)
    if counts and (expr.to_numpy() < 0).any():
        raise ValueError("counts=True but the matrix has negative values (log-scale data?)")

    if rbridge.resolve_engine(engine, ["limma", "edgeR"] if counts else ["limma"]) == "R":
        res = rbridge.call_r("ps_r_limma", expr=expr, genes=expr.index.to_numpy(),
                             group=g.astype(str).to_numpy(), counts=bool(counts),
                             reference=str(reference))
        out = pd.DataFrame({
            "gene": res["gene"].astype(str), "log_fc": res["logFC"].astype(float),
            "ave_expr": res["AveExpr"].astype(float), "statistic": res["t"].astype(float),
            "p_value": res["P.Value"].astype(float), "p_adj": res["adj.P.Val"].astype(float),
            "contrast": f"{other} - {reference}",
            "method": "limma-voom moderated t, BH" if counts else "limma moderated t, BH",
            "engine": res["engine"].iloc[0],
        })
    else:
        if counts:
            expr = expr[filter_by_expr(expr, g).to_numpy()]
        values = expr.to_numpy(dtype=float)
        if counts:
            lib = values.sum(axis=0)
            if (lib <= 0).any():
                raise ValueError(f"sample(s) {list(expr.columns[lib <= 0][:5])} have zero total counts")
            values = np.log2((values + 0.5) / (lib + 1.0) * 1e6)
        a = values[:, (g == other).to_numpy()]
        b = values[:, (g == reference).to_numpy()]
        t, p = stats.ttest_ind(a, b, axis=1, equal_var=False)
        out = pd.DataFrame({
            "gene": expr.index, "log_fc": a.mean(axis=1) - b.mean(axis=1),
            "ave_expr": values.mean(axis=1), "statistic": t, "p_value": p, "p_adj": _bh(p),
            "contrast": f"{other} - {reference}",
            "method": "Welch t-test on log2-CPM, BH" if counts else "Welch t-test, BH",
            "engine": "python scipy",
        })
    return out.sort_values("p_value", kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# GSEA pre-ranked and over-representation
# --------------------------------------------------------------------------------------------
@dataclass
class GSEAResult:
    """Pre-ranked GSEA: the tidy table, the ranking used and the running-sum curves per set."""

    table: pd.DataFrame
    ranking: pd.Series
    running: dict[str, dict] = field(repr=False, default_factory=dict)
    engine: str = "gseapy prerank"


def gsea_prerank(de: pd.DataFrame | pd.Series, gene_sets, *, rank_by: str = "statistic",
                 permutations: int = 1000, min_size: int = 15, max_size: int = 500,
                 weight: float = 1.0, seed: int = 0, threads: int = 1) -> GSEAResult:
    """GSEA pre-ranked (Subramanian et al. 2005) with gseapy on a DE statistic.

    ``de`` is a :func:`differential_expression` table (ranked by ``rank_by``) or a Series of
    scores indexed by gene. Gene-set permutation p-values, FDR q-values, leading-edge genes.
    Table columns: gene_set, es, nes, p_value, fdr, fwer, leading_edge, n_leading_edge, n_matched,
    p_below_resolution (p reported as 0: p < 1/permutations), method, engine.
    """
    import gseapy

    if isinstance(de, pd.DataFrame):
        if rank_by not in de.columns or "gene" not in de.columns:
            raise ValueError(f"de must have columns 'gene' and {rank_by!r}")
        ranking = pd.Series(de[rank_by].to_numpy(dtype=float), index=de["gene"].astype(str))
    else:
        ranking = de.astype(float)
    ranking = ranking[np.isfinite(ranking.to_numpy())]
    if ranking.index.duplicated().any():
        raise ValueError(f"duplicated genes in the ranking, e.g. {list(ranking.index[ranking.index.duplicated()][:5])}")
    ranking = ranking.sort_values(ascending=False)
    sets, report = match_genes(ranking.index, gene_sets, min_size=min_size, max_size=max_size)
    pre = gseapy.prerank(rnk=ranking, gene_sets=sets, permutation_num=permutations, min_size=min_size,
                         max_size=max_size, weight=weight, seed=seed, threads=threads, outdir=None,
                         no_plot=True, verbose=False)
    r = pre.res2d
    lead = r["Lead_genes"].fillna("").astype(str)
    table = pd.DataFrame({
        "gene_set": r["Term"].astype(str), "es": r["ES"].astype(float), "nes": r["NES"].astype(float),
        "p_value": r["NOM p-val"].astype(float), "fdr": r["FDR q-val"].astype(float),
        "fwer": r["FWER p-val"].astype(float),
        "leading_edge": lead, "n_leading_edge": lead.map(lambda s: len(s.split(";")) if s else 0),
    })
    table["n_matched"] = table["gene_set"].map(report.set_index("gene_set")["n_matched"])
    # a permutation p of 0 only says p < 1/permutations: flag it rather than print a bare zero
    table["p_below_resolution"] = table["p_value"] < 1.0 / permutations
    table["method"] = f"GSEA pre-ranked on {rank_by if isinstance(de, pd.DataFrame) else 'score'}, " \
                      f"{permutations} gene-set permutations (p = 0 means p < {1 / permutations:g}), " \
                      f"weight {weight}"
    table["engine"] = f"gseapy {gseapy.__version__} prerank"
    table = table.sort_values(["fdr", "p_value", "nes"], key=lambda s: s if s.name != "nes" else -s.abs(),
                              kind="mergesort").reset_index(drop=True)
    running = {t: {"RES": np.asarray(v["RES"], dtype=float), "hits": np.asarray(v["hits"], dtype=int)}
               for t, v in pre.results.items()}
    return GSEAResult(table=table, ranking=ranking, running=running, engine=table["engine"].iloc[0])


def over_representation(genes: Iterable[str], gene_sets, universe: Iterable[str], *,
                        min_size: int = 1, max_size: int | None = None, annotated_universe: bool = False,
                        require_overlap: bool = False) -> pd.DataFrame:
    """Over-representation analysis: one-sided hypergeometric test per set + Benjamini-Hochberg.

    P(X >= k) with X ~ Hypergeometric(M = |universe|, n = |set ∩ universe|, N = |genes ∩ universe|);
    the same test as R ``phyper(k - 1, n, M - n, N, lower.tail = FALSE)`` and one-sided Fisher.
    Sets are kept when ``min_size <= |set ∩ universe| <= max_size``. clusterProfiler's rules
    (``enricher``/``enrichGO``): ``annotated_universe`` keeps only universe genes in some set (query
    genes outside it are dropped instead of refused) and ``require_overlap`` tests (and BH-adjusts)
    only sets with at least one query gene.
    Columns: gene_set, n_set, n_query, n_universe, overlap, expected, fold_enrichment, p_value, p_adj,
    overlap_genes, method, engine.
    """
    universe = set(map(str, universe))
    query = [g for g in dict.fromkeys(map(str, genes))]
    sets = _as_gene_sets(gene_sets)
    if annotated_universe:
        universe &= set().union(*map(set, sets.values()))
        query = [g for g in query if g in universe]
    outside = [g for g in query if g not in universe]
    if outside:
        raise ValueError(f"{len(outside)} query genes are not in the universe, e.g. {outside[:5]}")
    if not query:
        raise ValueError("the query gene list is empty" + (" after keeping annotated genes" if annotated_universe
                                                           else ""))
    sets, _ = match_genes(universe, sets, min_size=min_size, max_size=max_size)
    qset, big_m, big_n = set(query), len(universe), len(query)
    rows = []
    for name, members in sets.items():
        hit = sorted(qset.intersection(members))
        n, k = len(members), len(hit)
        if require_overlap and k == 0:
            continue
        rows.append({"gene_set": name, "n_set": n, "n_query": big_n, "n_universe": big_m, "overlap": k,
                     "expected": n * big_n / big_m,
                     "fold_enrichment": (k / big_n) / (n / big_m),
                     "p_value": float(stats.hypergeom.sf(k - 1, big_m, n, big_n)),
                     "overlap_genes": ";".join(hit)})
    out = pd.DataFrame(rows)
    out["p_adj"] = _bh(out["p_value"].to_numpy())
    out["method"] = "hypergeometric (one-sided), BH"
    out["engine"] = "python scipy"
    cols = ["gene_set", "n_set", "n_query", "n_universe", "overlap", "expected", "fold_enrichment", "p_value",
            "p_adj", "overlap_genes", "method", "engine"]
    if out.empty:
        return pd.DataFrame(columns=cols)
    return out[cols].sort_values(["p_value", "gene_set"], kind="mergesort").reset_index(drop=True)


GO_PACKAGES = ("AnnotationDbi", "org.Hs.eg.db", "GO.db")


def export_go_gene_sets(path: str | Path, ontology: str = "BP") -> Path:
    """Write the GO gene sets of ``ontology`` from org.Hs.eg.db / GO.db (through R, once) as a GMT file:
    name = GO id, description = term, genes = symbols annotated to the term or a descendant (GOALL),
    as clusterProfiler's ``get_GO_data`` builds them. The Python path of :func:`enrich_go` reads it."""
    rbridge.resolve_engine("R", GO_PACKAGES)
    long = rbridge.call_r("ps_r_go_gene_sets", ontology=ontology)
    sets = long.groupby("go_id", sort=True)["gene"].apply(lambda g: sorted(set(map(str, g)))).to_dict()
    terms = long.drop_duplicates("go_id").set_index("go_id")["term"].astype(str).to_dict()
    return write_gmt(sets, path, descriptions=terms)


def cached_go_gene_sets(ontology: str = "BP") -> Path:
    """The GO gene sets of ``ontology`` as a GMT in the user cache (``$XDG_CACHE_HOME`` or ``~/.cache``,
    ``prime-stats/go_<ontology>.symbols.<org.Hs.eg.db version>_<GO.db version>.gmt``): exported once
    per installed annotation release by :func:`export_go_gene_sets` (about half a minute of R) and
    reused by every later study on the machine; a new release gets a new file."""
    rbridge.resolve_engine("R", GO_PACKAGES)
    versions = "_".join(rbridge.r_package_version(p) or "none" for p in ("org.Hs.eg.db", "GO.db"))
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "prime-stats"
    path = root / f"go_{ontology.lower()}.symbols.{versions}.gmt"
    if not path.is_file():
        root.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.part")
        export_go_gene_sets(partial, ontology)
        partial.replace(path)         # atomic: a concurrent run never reads a half-written file
    return path


def enrich_go(genes: Iterable[str], universe: Iterable[str], *, gene_sets=None, min_size: int = 10,
              max_size: int = 500, engine: str = "auto") -> pd.DataFrame:
    """GO over-representation as ``clusterProfiler::enrichGO(ont = "BP", pAdjustMethod = "BH",
    minGSSize = 10, maxGSSize = 500, universe = measured genes)`` computes it (Yu et al. 2012):
    hypergeometric p = phyper(k - 1, M, N - M, n, lower.tail = FALSE) with N the measured genes that
    carry a GO annotation, M a term's genes among them (kept if ``min_size <= M <= max_size``), n the
    annotated query genes, k the overlap; only terms with k >= 1 are tested and BH-adjusted.

    R engine (``ps_r_enrich_go``): GO gene sets from org.Hs.eg.db (GOALL) and GO.db, unless
    ``gene_sets`` is given. Python engine: :func:`over_representation` on ``gene_sets`` (a GMT path
    from :func:`export_go_gene_sets`, or {go_id: genes}); term names from the GMT descriptions.
    Columns: go_id, term, n_set, n_query, n_universe, overlap, expected, fold_enrichment, p_value,
    p_adj, overlap_genes, method, engine.
    """
    method = f"hypergeometric ORA (clusterProfiler enrichGO rules), GO BP terms of {min_size}-{max_size} genes, BH"
    genes, universe = [str(g) for g in genes], [str(g) for g in universe]
    eng = rbridge.resolve_engine(engine, GO_PACKAGES) if gene_sets is None else \
        ("python" if str(engine).lower() != "r" else rbridge.resolve_engine("R", ()))
    if eng == "R":
        long = None
        if gene_sets is not None:
            sets = _as_gene_sets(gene_sets)
            long = pd.DataFrame([(k, k, g) for k, v in sets.items() for g in v], columns=["go_id", "term", "gene"])
        out = rbridge.call_r("ps_r_enrich_go", genes=np.asarray(genes), universe=np.asarray(universe),
                             gene_sets=long, min_size=int(min_size), max_size=int(max_size))
        out = out.reset_index(drop=True)
        for c in ("n_set", "n_query", "n_universe", "overlap"):
            out[c] = out[c].astype(int)
        out["engine"] = f"R org.Hs.eg.db {rbridge.r_package_version('org.Hs.eg.db')}, phyper"
    else:
        if gene_sets is None:
            raise ValueError("GO enrichment without R needs gene_sets: a GMT written once by "
                             "export_go_gene_sets (R with r-bioc-go.db and r-bioc-org.hs.eg.db)")
        terms, source = {}, "given gene sets"
        if isinstance(gene_sets, (str, Path)):
            source = Path(gene_sets).name
            gene_sets, terms = read_gmt(gene_sets, with_descriptions=True)
        out = over_representation(genes, gene_sets, universe, min_size=min_size, max_size=max_size,
                                  annotated_universe=True, require_overlap=True).rename(columns={"gene_set": "go_id"})
        out.insert(1, "term", out["go_id"].map(terms).fillna(""))
        out["engine"] = f"python scipy (GO map: {source})"
    out["method"] = method
    cols = ["go_id", "term", "n_set", "n_query", "n_universe", "overlap", "expected", "fold_enrichment", "p_value",
            "p_adj", "overlap_genes", "method", "engine"]
    return out[cols].sort_values(["p_value", "go_id"], kind="mergesort").reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# single-sample GSEA
# --------------------------------------------------------------------------------------------
@dataclass
class SSGSEAResult:
    """ssGSEA scores (gene sets x samples), the engine, and the gene-matching report."""

    scores: pd.DataFrame
    engine: str
    method: str
    matching: pd.DataFrame = field(repr=False, default=None)


def _ssgsea_python(expr: pd.DataFrame, sets: dict[str, list[str]], alpha: float, normalize: bool,
                   threads: int) -> pd.DataFrame:
    """GSVA-equivalent ssGSEA through gseapy.

    GSVA ranks each sample's genes (``as.integer(rank(x))``: average ranks, truncated), walks them
    in decreasing order with ties kept in row order, and sums the walk. gseapy reproduces this with
    ``sample_norm_method='custom'`` on the same truncated ranks plus a tie-break below 1e-6 that
    keeps GSVA's row order (scores change by < 1e-6 relative).
    """
    import gseapy

    n = expr.shape[0]
    ranks = np.floor(expr.rank(axis=0, method="average"))
    ranks = ranks + ((n - np.arange(n)) / n * 1e-6)[:, None]
    ss = gseapy.ssgsea(data=ranks, gene_sets=sets, sample_norm_method="custom", weight=alpha,
                       min_size=1, max_size=n, permutation_num=0, threads=threads, outdir=None,
                       no_plot=True, verbose=False)
    res = ss.res2d
    scores = res.pivot(index="Term", columns="Name", values="ES").astype(float)
    scores = scores.loc[[s for s in sets if s in scores.index], list(expr.columns)]
    if normalize:
        scores = scores / (scores.to_numpy().max() - scores.to_numpy().min())
    return scores


def ssgsea(expr: pd.DataFrame, gene_sets, *, alpha: float = 0.25, normalize: bool = True,
           min_size: int = 1, max_size: int | None = None, engine: str = "auto",
           threads: int = 1) -> SSGSEAResult:
    """Single-sample GSEA enrichment scores (Barbie et al. 2009) as computed by GSVA 1.46.

    Genes with constant expression are removed (as GSVA does); sets are matched to the remaining
    genes and kept when ``min_size <= matched <= max_size``. ``normalize`` divides every score by
    the range of all scores (GSVA ``ssgsea.norm``). R engine: ``GSVA::gsva(method = "ssgsea")``;
    Python engine: gseapy with the GSVA ranking (identical to < 1e-8 relative on GSE1992).
    """
    expr = check_expression(expr)
    expr = expr[expr.std(axis=1).to_numpy() > 0]
    sets, report = match_genes(expr.index, gene_sets, min_size=min_size, max_size=max_size)
    method = f"ssGSEA (Barbie 2009), alpha {alpha}, " + ("range-normalised" if normalize else "unnormalised")
    if rbridge.resolve_engine(engine, ["GSVA"]) == "R":
        res = rbridge.call_r("ps_r_ssgsea", expr=expr, genes=expr.index.to_numpy(), gene_sets=sets,
                             alpha=float(alpha), normalize=bool(normalize), min_size=1,
                             max_size=int(expr.shape[0]))
        scores = res.set_index("gene_set")
        scores.index = scores.index.astype(str)
        scores = scores.loc[list(sets), list(expr.columns)].astype(float)
        eng = f"R GSVA {rbridge.r_package_version('GSVA')} ssgsea"
    else:
        import gseapy

        scores = _ssgsea_python(expr, sets, alpha, normalize, threads)
        eng = f"gseapy {gseapy.__version__} ssgsea (GSVA ranking)"
    scores.index.name, scores.columns.name = "gene_set", None
    return SSGSEAResult(scores=scores, engine=eng, method=method, matching=report)


def compare_scores(scores: pd.DataFrame, groups, *, reference=None) -> pd.DataFrame:
    """Compare per-sample scores (sets x samples) between two groups: Mann-Whitney U + BH.

    Columns: gene_set, n_<level> for each level, median_<level>, difference (median other minus
    median reference), statistic (U of the other group), p_value, p_adj, method.
    """
    g = _align_groups(scores, groups)
    levels = sorted(pd.unique(g).tolist(), key=str)
    reference = levels[0] if reference is None else reference
    if reference not in levels:
        raise ValueError(f"reference {reference!r} is not one of the group levels {levels}")
    other = [lv for lv in levels if lv != reference][0]
    rows = []
    for name, row in scores.iterrows():
        a = row[(g == other).to_numpy()].to_numpy(float)
        b = row[(g == reference).to_numpy()].to_numpy(float)
        u, p = stats.mannwhitneyu(a, b, alternative="two-sided", method="auto")
        rows.append({"gene_set": name, f"n_{other}": len(a), f"n_{reference}": len(b),
                     f"median_{other}": np.median(a), f"median_{reference}": np.median(b),
                     "difference": np.median(a) - np.median(b), "statistic": u, "p_value": p})
    out = pd.DataFrame(rows)
    out["p_adj"] = _bh(out["p_value"].to_numpy())
    out["contrast"] = f"{other} - {reference}"
    out["method"] = "Mann-Whitney U (two-sided), BH"
    return out.sort_values("p_value", kind="mergesort").reset_index(drop=True)


def immune_infiltration(expr: pd.DataFrame, groups=None, *, gene_sets=None, min_size: int = 3,
                        engine: str = "auto", reference=None) -> tuple[SSGSEAResult, pd.DataFrame | None]:
    """Immune-cell infiltration scores: ssGSEA of immune-cell identity gene sets per sample
    (default: the Cytopus immune identities shipped with prime-stats), compared between
    ``groups`` with Mann-Whitney U + BH when groups are given."""
    sets = immune_gene_sets() if gene_sets is None else gene_sets
    res = ssgsea(expr, sets, min_size=min_size, engine=engine)
    comparison = None
    if groups is not None:
        comparison = compare_scores(res.scores, groups, reference=reference)
        comparison["engine"] = res.engine
    return res, comparison
