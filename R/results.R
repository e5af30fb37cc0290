# Result classes of the R front end: tidy tables (class c("ps_<kind>", "ps_table", "data.frame")) and
# the Kaplan-Meier and study lists, with short print methods, summary() and as.data.frame().
# The classes and their columns are listed in help("ps_results"); plot methods live in R/plots.R.

.ps_table <- function(df, kind, ...) {
  rownames(df) <- NULL
  extra <- list(...)
  for (a in names(extra)) attr(df, a) <- extra[[a]]
  class(df) <- c(kind, "ps_table", "data.frame")
  df
}

# Fixed notation with `digits` significant digits (never 1e-05); p-values below 1e-4 as "<0.0001".
.ps_format_num <- function(v, digits) {
  out <- formatC(round(v, 6), digits = digits, format = "fg", flag = "")
  out[is.na(v)] <- "NA"
  trimws(out)
}

.ps_format_table <- function(df, digits) {
  df <- as.data.frame(df)
  for (v in names(df)) {
    x <- df[[v]]
    if (is.double(x)) {
      df[[v]] <- if (v %in% c("p", "p_value")) {
        ifelse(is.na(x), "NA", ifelse(x < 1e-4, "<0.0001", .ps_format_num(x, digits)))
      } else .ps_format_num(x, digits)
    }
  }
  df
}

as.data.frame.ps_table <- function(x, row.names = NULL, optional = FALSE, ...) {
  keep <- setdiff(names(attributes(x)), c("names", "row.names", "class"))
  attributes(x)[keep] <- NULL
  class(x) <- "data.frame"
  x
}

print.ps_table <- function(x, digits = 3, n = 20, ...) {
  title <- attr(x, "title")
  if (!is.null(title)) cat(title, "\n", sep = "")
  df <- as.data.frame(x)
  hidden <- intersect(attr(x, "hidden"), names(df))
  df <- df[setdiff(names(df), hidden)]
  # a column with one value (method, engine, time = NA) goes to the footer, so the table fits a screen
  same <- vapply(names(df), function(v) nrow(df) > 1 && length(unique(df[[v]])) == 1 &&
                   v %in% c("method", "engine", "time", "n", "events", "df", "statistic", "p", "B", "tau"), TRUE)
  print(.ps_format_table(utils::head(df[!same], n), digits), row.names = FALSE, right = TRUE)
  if (nrow(df) > n) cat(sprintf("... %d more rows (as.data.frame(x) for all)\n", nrow(df) - n))
  if (length(hidden)) cat(sprintf("(as.data.frame(x) also has %s)\n", paste(hidden, collapse = ", ")))
  if (any(same)) {
    cat(paste(sprintf("%s: %s", names(df)[same], vapply(df[same], function(v) as.character(.ps_format_table(data.frame(v = v[1]), digits)$v), "")),
              collapse = "; "), "\n", sep = "")
  }
  invisible(x)
}

summary.ps_table <- function(object, ...) object

# ---- Kaplan-Meier ----------------------------------------------------------------------------------

print.ps_km <- function(x, digits = 3, ...) {
  cat(sprintf("Kaplan-Meier estimate: %d patients, %d events\n", sum(x$summary$n), sum(x$summary$events)))
  s <- x$summary
  s$method <- NULL
  if (identical(unique(s$group), "all")) s$group <- NULL
  print(.ps_format_table(s, digits), row.names = FALSE, right = TRUE)
  cat(sprintf("(%s; median with CI; summary(x, times = ) for survival at given times)\n", x$summary$method[1]))
  invisible(x)
}

summary.ps_km <- function(object, times = NULL, ...) {
  fit <- attr(object, "survfit")
  if (is.null(times)) times <- sort(unique(object$curve$time[object$curve$n_event > 0]))
  times <- .ps_check_times(times)
  s <- summary(fit, times = times, extend = TRUE)
  grp <- if (is.null(s$strata)) rep(object$summary$group[1], length(s$time)) else .ps_strata(s$strata)
  .ps_table(data.frame(group = grp, time = s$time, n_risk = s$n.risk, n_event = s$n.event,
                       n_censor = s$n.censor, surv = s$surv, std_err = s$std.err, lower = s$lower,
                       upper = s$upper, stringsAsFactors = FALSE),
            "ps_km_summary",
            title = "Kaplan-Meier survival at given times (n_event, n_censor: in the interval since the previous time)")
}

as.data.frame.ps_km <- function(x, row.names = NULL, optional = FALSE, ...) as.data.frame(x$curve)

# ---- the study --------------------------------------------------------------------------------------

print.ps_study <- function(x, ...) {
  cat("PRIME study results in", x$output_dir, "\n")
  if (!is.null(x$predictions)) {
    cat(sprintf("%d patients (%s)\n", nrow(x$predictions),
                paste(sprintf("%s %d", names(table(x$predictions$split)), table(x$predictions$split)), collapse = ", ")))
  }
  if (!is.null(x$metrics)) print(summary(x))
  invisible(x)
}

# The headline table of a paper: each model's discrimination (AUC, C-index), overall performance
# (Brier, IBS) and calibration slope, one column per split, as "estimate (lower-upper)".
summary.ps_study <- function(object, digits = 2, ...) {
  m <- object$metrics
  if (is.null(m)) .ps_fail("the study in %s has no metrics.csv", object$output_dir)
  if (is.null(m$time)) m$time <- NA_real_
  keep <- m$metric %in% c("AUC", "C-index", "IBS") | (m$metric %in% c("Brier", "slope") & is.na(m$time))
  m <- m[keep, , drop = FALSE]
  fmt <- function(v) formatC(v, digits = digits, format = "f")
  m$cell <- ifelse(is.na(m$lower), fmt(m$estimate), sprintf("%s (%s, %s)", fmt(m$estimate), fmt(m$lower), fmt(m$upper)))
  m$metric <- ifelse(m$metric == "C-index" & grepl("Uno", m$method), "C-index (Uno)",
                     ifelse(m$metric == "C-index", "C-index (Harrell)", m$metric))
  key <- unique(m[, c("endpoint", "model", "metric")])
  for (sp in intersect(c("train", "test", "external"), unique(m$split))) {
    sub <- m[m$split == sp, ]
    key[[sp]] <- sub$cell[match(paste(key$endpoint, key$model, key$metric), paste(sub$endpoint, sub$model, sub$metric))]
  }
  .ps_table(key, "ps_study_summary",
            title = "Headline metrics, estimate (95% CI) per split (x$metrics holds every metric)")
}
