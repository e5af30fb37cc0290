# Transcriptomics: R-native engines called from python/prime_stats/omics.py through rbridge.
# limma (log-scale data), limma-voom with edgeR TMM normalisation (counts), and single-sample
# GSEA with GSVA 1.46 (old API: gsva(expr, gset.idx.list, method = "ssgsea")).

.ps_expr_matrix <- function(expr, genes) {
  m <- as.matrix(expr)
  if (is.null(genes)) stop("genes (one identifier per row of expr) is required")
  storage.mode(m) <- "double"
  if (length(genes) != nrow(m)) {
    stop(sprintf("genes has length %d but the expression table has %d rows", length(genes), nrow(m)))
  }
  rownames(m) <- as.character(genes)
  m
}

.ps_need <- function(pkg, fn) {
  if (!requireNamespace(pkg, quietly = TRUE)) {
    stop(sprintf("%s needs the Bioconductor package '%s' (Debian: r-bioc-%s)", fn, pkg, tolower(pkg)))
  }
}

.ps_group_factor <- function(group, n) {
  if (length(group) != n) {
    stop(sprintf("group has length %d but the expression table has %d samples", length(group), n))
  }
  g <- factor(as.character(group))
  if (nlevels(g) != 2L) stop("group must have exactly two levels, found: ", paste(levels(g), collapse = ", "))
  g
}

#' Differential expression between two groups with limma (log data) or limma-voom (counts).
#'
#' @param expr data.frame, genes in rows and samples in columns (numeric).
#' @param genes gene identifiers, one per row of expr (default: its row names).
#' @param group two-level vector, one per sample; the contrast is the second sorted level minus the first
#'   (pass the reference level as `reference` to fix it).
#' @param counts TRUE for raw counts (edgeR TMM + voom), FALSE for log-scale data (lmFit + eBayes).
#' @param reference the reference level of group (logFC = other - reference).
#' @param filter_low for counts: drop genes failing edgeR::filterByExpr (before TMM).
#' @return data.frame: gene, logFC, AveExpr, t, P.Value, adj.P.Val (BH), B, engine.
ps_r_limma <- function(expr, genes = rownames(expr), group, counts = FALSE, reference = NULL, filter_low = TRUE) {
  .ps_need("limma", "ps_r_limma")
  m <- .ps_expr_matrix(expr, genes)
  g <- .ps_group_factor(group, ncol(m))
  if (!is.null(reference)) g <- stats::relevel(g, ref = as.character(reference))
  design <- stats::model.matrix(~g)
  if (isTRUE(counts)) {
    if (any(m < 0, na.rm = TRUE)) stop("counts = TRUE but the matrix has negative values (log-scale data?)")
    if (requireNamespace("edgeR", quietly = TRUE)) {
      dge <- edgeR::DGEList(counts = m)
      if (isTRUE(filter_low)) {
        keep <- edgeR::filterByExpr(dge, design = design)
        dge <- dge[keep, , keep.lib.sizes = FALSE]
      }
      dge <- edgeR::calcNormFactors(dge, method = "TMM")
      v <- limma::voom(dge, design = design)
      engine <- "R limma-voom (edgeR TMM)"
    } else {
      v <- limma::voom(m, design = design)
      engine <- "R limma-voom (library-size normalisation)"
    }
    fit <- limma::lmFit(v, design)
  } else {
    fit <- limma::lmFit(m, design)
    engine <- "R limma"
  }
  fit <- limma::eBayes(fit)
  tt <- limma::topTable(fit, coef = 2, number = Inf, sort.by = "none", adjust.method = "BH")
  data.frame(
    gene = rownames(tt), logFC = tt$logFC, AveExpr = tt$AveExpr, t = tt$t,
    P.Value = tt$P.Value, adj.P.Val = tt$adj.P.Val, B = tt$B,
    contrast = paste(levels(g)[2], "-", levels(g)[1]), engine = engine,
    stringsAsFactors = FALSE
  )
}

#' Single-sample GSEA scores (Barbie et al. 2009) with GSVA 1.46, method "ssgsea".
#'
#' @param expr data.frame, genes in rows and samples in columns.
#' @param genes gene identifiers, one per row (default: its row names).
#' @param gene_sets named list of character vectors.
#' @param alpha the ssGSEA weight tau (GSVA default 0.25).
#' @param normalize ssgsea.norm: divide all scores by their range (max - min over the whole matrix).
#' @param min_size,max_size gene-set size limits after matching to the genes of expr.
#' @return data.frame: gene_set then one column per sample.
ps_r_ssgsea <- function(expr, genes = rownames(expr), gene_sets, alpha = 0.25, normalize = TRUE,
                        min_size = 1L, max_size = 100000L) {
  .ps_need("GSVA", "ps_r_ssgsea")
  m <- .ps_expr_matrix(expr, genes)
  sets <- lapply(gene_sets, as.character)
  s <- GSVA::gsva(m, sets, method = "ssgsea", tau = alpha, ssgsea.norm = isTRUE(normalize),
                  min.sz = as.integer(min_size), max.sz = as.integer(max_size), verbose = FALSE)
  out <- data.frame(gene_set = rownames(s), s, check.names = FALSE, stringsAsFactors = FALSE)
  rownames(out) <- NULL
  out
}

#' GO gene sets as clusterProfiler's get_GO_data builds them for enrichGO.
#'
#' Every gene symbol annotated to a term or to any of its descendants (org.Hs.eg.db GOALL, all
#' evidence codes), for one ontology; term names from GO.db.
#'
#' @param ontology "BP", "MF" or "CC".
#' @return data.frame(go_id, term, gene), one row per term and gene.
ps_r_go_gene_sets <- function(ontology = "BP") {
  for (p in c("AnnotationDbi", "org.Hs.eg.db", "GO.db")) .ps_need(p, "ps_r_go_gene_sets")
  db <- org.Hs.eg.db::org.Hs.eg.db
  keys <- AnnotationDbi::keys(db, keytype = "SYMBOL")
  a <- suppressMessages(AnnotationDbi::select(db, keys = keys, keytype = "SYMBOL",
                                              columns = c("GOALL", "ONTOLOGYALL")))
  a <- unique(a[!is.na(a$GOALL) & a$ONTOLOGYALL == ontology, c("GOALL", "SYMBOL")])
  ids <- unique(a$GOALL)
  terms <- suppressMessages(AnnotationDbi::select(GO.db::GO.db, keys = ids, keytype = "GOID", columns = "TERM"))
  data.frame(go_id = a$GOALL, term = terms$TERM[match(a$GOALL, terms$GOID)], gene = a$SYMBOL,
             stringsAsFactors = FALSE)
}

#' GO over-representation as clusterProfiler::enrichGO computes it (Yu et al. 2012).
#'
#' The universe is the measured genes that carry an annotation in the ontology; a term's set is its
#' genes in that universe, kept when min_size <= size <= max_size; terms with at least one query gene
#' are tested with phyper(k - 1, M, N - M, n, lower.tail = FALSE) and BH-adjusted together.
#'
#' @param genes query gene symbols (e.g. the differentially expressed genes).
#' @param universe the measured gene symbols.
#' @param gene_sets data.frame(go_id, term, gene); default ps_r_go_gene_sets("BP").
#' @param min_size,max_size term size limits within the universe (enrichGO's minGSSize, maxGSSize).
#' @return data.frame: go_id, term, n_set, n_query, n_universe, overlap, expected, fold_enrichment,
#'   p_value, p_adj, overlap_genes; sorted by p_value.
ps_r_enrich_go <- function(genes, universe, gene_sets = NULL, min_size = 10L, max_size = 500L) {
  if (is.null(gene_sets)) gene_sets <- ps_r_go_gene_sets("BP")
  gene_sets <- as.data.frame(gene_sets, stringsAsFactors = FALSE)
  universe <- intersect(unique(as.character(universe)), gene_sets$gene)
  query <- intersect(unique(as.character(genes)), universe)
  if (length(query) == 0L) stop("no query gene is in the annotated universe")
  gs <- gene_sets[gene_sets$gene %in% universe, ]
  sets <- split(gs$gene, gs$go_id)
  size <- lengths(sets)
  sets <- sets[size >= min_size & size <= max_size]
  hits <- lapply(sets, function(s) sort(intersect(s, query)))
  k <- lengths(hits)
  keep <- k > 0L
  sets <- sets[keep]; hits <- hits[keep]; k <- k[keep]
  M <- lengths(sets); N <- length(universe); n <- length(query)
  p <- phyper(k - 1L, M, N - M, n, lower.tail = FALSE)
  out <- data.frame(go_id = names(sets), term = gs$term[match(names(sets), gs$go_id)], n_set = M,
                    n_query = n, n_universe = N, overlap = k, expected = M * n / N,
                    fold_enrichment = (k / n) / (M / N), p_value = p, p_adj = p.adjust(p, method = "BH"),
                    overlap_genes = vapply(hits, paste, character(1), collapse = ";"),
                    stringsAsFactors = FALSE, row.names = NULL)
  out[order(out$p_value, out$go_id), ]
}
