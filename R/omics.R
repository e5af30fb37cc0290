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
