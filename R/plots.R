# Figures of prime-stats drawn with ggplot2 and survminer from the tables a study stores
# (tables/*.csv): the same tables and the same layout as python/prime_stats/report/figures.py, which
# calls these builders through rbridge.draw_r_figure. From R they return ggplot objects (survminer's
# ggsurvplot for Kaplan-Meier) for the user to restyle; plot() methods draw the package's results.

utils::globalVariables(".data")  # the ggplot2 data pronoun

.ps_okabe_ito <- c("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")
.ps_linetypes <- c("solid", "52", "12", "5212", "93")  # solid, dashed, dotted, dot-dash, long dash

.ps_plot_need <- function(pkgs = "ggplot2") {
  miss <- pkgs[!vapply(pkgs, requireNamespace, logical(1), quietly = TRUE)]
  if (length(miss)) stop("R package(s) ", paste(miss, collapse = ", "), " needed for this figure are not installed")
  invisible(TRUE)
}

.ps_plot_cols <- function(df, cols, what) {
  if (!is.data.frame(df)) stop(what, " must be a data.frame")
  miss <- setdiff(cols, names(df))
  if (length(miss)) stop(what, " table lacks column(s) ", paste(miss, collapse = ", "),
                         " (has ", paste(names(df), collapse = ", "), ")")
  if (!nrow(df)) stop(what, " table is empty")
  if ("split" %in% names(df) && length(unique(df$split)) > 1) {
    stop(what, " table holds the splits ", paste(sort(unique(as.character(df$split))), collapse = ", "),
         ": pass one split's rows")
  }
  as.data.frame(df)
}

.ps_fmt_p <- function(p) if (p < 0.001) "p < 0.001" else sprintf("p = %.3f", p)

.ps_null_str <- function(x) if (is.null(x) || (length(x) == 1 && is.na(x))) NULL else x

# ------------------------------------------------------------------------------- Kaplan-Meier
.ps_km_levels <- function(group, levels = NULL) {
  if (!is.null(levels)) return(as.character(levels))
  if (is.factor(group)) return(levels(droplevels(group)))
  unique(as.character(group))
}

# A survfit object rebuilt from a stored curve table (one row per event or censoring time and group):
# survminer then draws exactly the stored estimates and counts the numbers at risk from them.
.ps_survfit_from_curve <- function(curves, levels, time_scale = 1) {
  g <- factor(as.character(curves$group), levels = levels)
  if (anyNA(g)) stop("curve group(s) ", paste(unique(curves$group[is.na(g)]), collapse = ", "),
                     " are not in levels ", paste(levels, collapse = ", "))
  o <- order(g, curves$time)
  cu <- curves[o, ]
  g <- g[o]
  strata <- as.vector(table(g))
  names(strata) <- paste0("group=", levels)
  n <- vapply(levels, function(l) cu$n_risk[g == l][1], numeric(1))
  se <- if (is.null(cu$std_err)) rep(NA_real_, nrow(cu)) else cu$std_err / cu$surv
  fit <- list(n = as.integer(n), time = cu$time / time_scale, n.risk = cu$n_risk, n.event = cu$n_event,
              n.censor = cu$n_censor, surv = cu$surv, std.err = se, upper = cu$upper, lower = cu$lower,
              strata = strata, type = "right", conf.type = "log", conf.int = 0.95, logse = TRUE,
              call = quote(survival::survfit(formula = survival::Surv(time, status) ~ group)))
  class(fit) <- "survfit"
  fit
}

# Log-rank p and Cox HR (second level vs first) from a curve table: the table holds every event and
# censoring time with its counts, so the patient-level data (and survdiff/coxph on them) are exact.
.ps_km_annotation <- function(curves, levels, labels) {
  if (length(levels) != 2) return(NULL)
  rows <- rep(seq_len(nrow(curves)), curves$n_event + curves$n_censor)
  d <- data.frame(time = curves$time[rows], group = factor(as.character(curves$group[rows]), levels = levels),
                  status = unlist(mapply(function(e, c) c(rep(1, e), rep(0, c)), curves$n_event, curves$n_censor,
                                         SIMPLIFY = FALSE)))
  if (sum(d$status) == 0) return(NULL)
  lr <- ps_r_logrank(d$time, d$status, d$group)
  hr <- ps_r_cox(data.frame(x = as.numeric(d$group == levels[2])), d$time, d$status)
  sprintf("Log-rank %s;  HR %s vs %s %.2f (95%% CI %.2f-%.2f)", .ps_fmt_p(lr$p[1]), tolower(labels[2]),
          tolower(labels[1]), hr$estimate, hr$lower, hr$upper)
}

#' Kaplan-Meier figure with a numbers-at-risk table from stored tables (survminer::ggsurvplot)
#'
#' @param curves data.frame: group, time, n_risk, n_event, n_censor, surv, lower, upper (std_err
#'   optional): the curve of \code{ps_r_km} / Python \code{kaplan_meier}.
#' @param at_risk optional data.frame group, time, n_risk: the stored numbers at risk; its times are
#'   the x ticks, and the numbers printed under the plot are checked against it.
#' @param annotation text printed above the panel (log-rank p and HR), or NULL.
#' @param levels,labels group values in plot order and their legend labels.
#' @param time_scale divide stored times by this for the axis (30.4375: days to months).
#' @param time_label,title,legend_title axis label, title, legend title.
#' @param break_by tick spacing in axis units when \code{at_risk} is NULL.
#' @return the \code{ggsurvplot} object (\code{$plot} and \code{$table} are ggplots).
#' @examples
#' \donttest{
#' km <- ps_r_km(survival::lung$time, survival::lung$status - 1, survival::lung$sex)
#' ps_plot_km(km$curve, time_scale = 30.4375, time_label = "Time (months)", break_by = 6)
#' }
ps_plot_km <- function(curves, at_risk = NULL, annotation = NULL, levels = NULL, labels = levels,
                       time_scale = 1, time_label = "Time", title = NULL, legend_title = "", break_by = NULL) {
  .ps_plot_need(c("survival", "survminer", "ggplot2"))
  curves <- .ps_plot_cols(curves, c("group", "time", "n_risk", "n_event", "n_censor", "surv", "lower", "upper"),
                          "curves")
  levels <- .ps_km_levels(curves$group, levels)
  labels <- if (is.null(labels)) levels else as.character(labels)
  fit <- .ps_survfit_from_curve(curves, levels, time_scale)
  t_max <- max(fit$time)
  if (!is.null(at_risk)) {
    at_risk <- .ps_plot_cols(at_risk, c("group", "time", "n_risk"), "at_risk")
    ticks <- sort(unique(at_risk$time)) / time_scale
    break_by <- if (length(ticks) > 1) ticks[2] - ticks[1] else max(t_max, 1)
    t_max <- max(t_max, ticks)
  } else if (is.null(break_by)) {
    break_by <- diff(pretty(c(0, t_max)))[1]
  }
  k <- length(levels)
  dd <- data.frame(time = 1, status = 0, group = factor(levels, levels = levels))
  p <- survminer::ggsurvplot(
    fit, data = dd, conf.int = TRUE, conf.int.alpha = 0.16, risk.table = TRUE, break.time.by = break_by,
    xlim = c(0, t_max), xlab = time_label, ylab = "Survival probability", title = .ps_null_str(title),
    legend.title = legend_title, legend.labs = labels, palette = .ps_okabe_ito[seq_len(k)],
    linetype = "strata", censor.shape = "+", censor.size = 3.5, size = 0.8,
    risk.table.title = "Number at risk", risk.table.height = min(0.4, 0.12 + 0.055 * k),
    risk.table.col = "strata", risk.table.y.text.col = TRUE, risk.table.fontsize = 3.2, fontsize = 3.2, tables.theme = ggplot2::theme_bw(),
    ggtheme = ggplot2::theme_bw(base_size = 11))
  p$plot <- suppressMessages(p$plot + ggplot2::scale_linetype_manual(values = .ps_linetypes[seq_len(k)],
                                                                       labels = labels) +
    ggplot2::scale_y_continuous(breaks = seq(0, 1, 0.25), limits = c(0, 1.03), expand = c(0, 0)) +
    ggplot2::labs(subtitle = .ps_null_str(annotation)) +
    ggplot2::theme(legend.key.width = ggplot2::unit(2.2, "lines")))
  p$table <- p$table + ggplot2::theme(plot.title = ggplot2::element_text(size = 10),
                                      panel.grid = ggplot2::element_blank(), legend.position = "none",
                                      axis.title.y = ggplot2::element_blank())
  attr(p, "ps_levels") <- levels
  attr(p, "ps_time_scale") <- time_scale
  if (!is.null(at_risk)) {
    printed <- .ps_risk_table(p)
    stored <- at_risk[order(match(as.character(at_risk$group), levels), at_risk$time), ]
    if (nrow(printed) != nrow(stored) || any(printed$n_risk != stored$n_risk) ||
        any(abs(printed$time - stored$time) > 1e-6 * max(1, stored$time))) {
      stop("the numbers at risk survminer prints differ from the stored at_risk table")
    }
  }
  p
}

# The numbers at risk printed under a ggsurvplot: group (stored value), time (stored units), n_risk.
.ps_risk_table <- function(p) {
  d <- p$table$data
  lv <- attr(p, "ps_levels")
  grp <- if (!is.null(lv)) lv[as.integer(d$strata)] else as.character(d$strata)
  ts <- attr(p, "ps_time_scale")
  out <- data.frame(group = grp, time = d$time * (if (is.null(ts)) 1 else ts), n_risk = d$n.risk,
                    stringsAsFactors = FALSE)
  out[order(match(out$group, unique(grp)), out$time), , drop = FALSE]
}

#' Kaplan-Meier plot of survival data (survminer::ggsurvplot)
#'
#' \code{ps_r_km_plot(...)} is \code{plot(ps_r_km(...), ...)}: the arguments in \code{...} go to
#' \code{ps_r_km}; the named ones are the plot's.
#' @inheritParams plot.ps_km
#' @param ... passed to \code{ps_r_km} (time, event, group, or a formula and data).
#' @return the \code{ggsurvplot} object.
#' @examples
#' \donttest{
#' p <- ps_r_km_plot(survival::lung$time, survival::lung$status - 1, survival::lung$sex,
#'                   time_scale = 30.4375, time_label = "Time (months)", break_by = 6)
#' }
ps_r_km_plot <- function(..., time_scale = 1, time_label = "Time", break_by = NULL, annotation = TRUE,
                         labels = NULL, title = NULL, legend_title = "") {
  plot.ps_km(ps_r_km(...), time_scale = time_scale, time_label = time_label, break_by = break_by,
             annotation = annotation, labels = labels, title = title, legend_title = legend_title)
}

#' Plot a Kaplan-Meier result (ps_r_km) with survminer
#'
#' @param x a \code{ps_km} result of \code{ps_r_km}.
#' @param time_scale,time_label,break_by,title,legend_title see \code{ps_plot_km}.
#' @param annotation TRUE (log-rank p and HR of the second group vs the first, computed from the curve
#'   table, when there are two groups), FALSE, or a text.
#' @param labels legend labels in the order of the groups.
#' @param ... unused.
#' @return the \code{ggsurvplot} object.
plot.ps_km <- function(x, time_scale = 1, time_label = "Time", break_by = NULL, annotation = TRUE,
                       labels = NULL, title = NULL, legend_title = "", ...) {
  curves <- as.data.frame(x$curve)
  levels <- .ps_km_levels(curves$group)
  labels <- if (is.null(labels)) levels else as.character(labels)
  text <- if (isTRUE(annotation)) .ps_km_annotation(curves, levels, labels) else if (is.character(annotation)) annotation
  ps_plot_km(curves, annotation = text, levels = levels, labels = labels, time_scale = time_scale,
             time_label = time_label, title = title, legend_title = legend_title, break_by = break_by)
}

# -------------------------------------------------------------------------------- calibration
#' rms-style calibration figure from a stored calibration-curve table (ggplot2)
#'
#' @param curves data.frame: endpoint ("response"/"survival"), horizon, model, predicted, observed,
#'   lower, upper (the band; NA allowed).
#' @param rug optional data.frame model, horizon, predicted: the predictions drawn as a rug.
#' @param models panel order.
#' @param time_scale,time_unit horizon display (days / 30.4375 = months).
#' @param xlab,ylab,title labels.
#' @return a ggplot: one panel per model (and horizon) with the ideal line, the curve, its band and the rug.
ps_plot_calibration <- function(curves, rug = NULL, models = NULL, time_scale = 30.4375, time_unit = "months",
                                xlab = "Predicted probability", ylab = "Observed proportion", title = NULL) {
  .ps_plot_need("ggplot2")
  curves <- .ps_plot_cols(curves, c("endpoint", "horizon", "model", "predicted", "observed", "lower", "upper"),
                          "curves")
  models <- if (is.null(models)) unique(as.character(curves$model)) else as.character(models)
  survival <- identical(as.character(curves$endpoint[1]), "survival")
  horizons <- unique(round(curves$horizon, 6))
  panel <- function(model, horizon) {
    if (!survival) return(factor(model, levels = models))
    lab <- sprintf("%s, by %s %s", model, format(round(horizon / time_scale, 1)), time_unit)
    lev <- as.vector(t(outer(horizons, models, function(h, m) {
      sprintf("%s, by %s %s", m, format(round(h / time_scale, 1)), time_unit)
    })))
    factor(lab, levels = lev)
  }
  curves$panel <- panel(as.character(curves$model), round(curves$horizon, 6))
  hi <- max(unlist(curves[, c("predicted", "observed", "upper")]), na.rm = TRUE)
  if (!is.null(rug)) {
    rug <- .ps_plot_cols(rug, c("model", "horizon", "predicted"), "rug")
    if ("endpoint" %in% names(rug)) rug <- rug[as.character(rug$endpoint) == as.character(curves$endpoint[1]), ]
    rug$panel <- panel(as.character(rug$model), round(rug$horizon, 6))
    rug <- rug[!is.na(rug$panel), ]
    hi <- max(hi, stats::quantile(rug$predicted, 0.99, na.rm = TRUE))
  }
  lim <- min(1, ceiling(hi * 10 + 1e-9) / 10)
  brk <- seq(0, lim + 1e-9, by = if (lim <= 0.5) 0.1 else 0.2)
  cols <- stats::setNames(rep(.ps_okabe_ito, length.out = length(models)), models)
  curves$colour <- factor(as.character(curves$model), levels = models)
  p <- ggplot2::ggplot(curves, ggplot2::aes(x = .data$predicted, y = .data$observed)) +
    ggplot2::geom_abline(intercept = 0, slope = 1, linetype = "42", colour = "grey45") +
    ggplot2::geom_ribbon(ggplot2::aes(ymin = .data$lower, ymax = .data$upper, fill = .data$colour), alpha = 0.22,
                         na.rm = TRUE) +
    ggplot2::geom_line(ggplot2::aes(colour = .data$colour), linewidth = 0.9, na.rm = TRUE)
  if (!is.null(rug)) {
    p <- p + ggplot2::geom_rug(data = rug, ggplot2::aes(x = .data$predicted), inherit.aes = FALSE, sides = "b",
                               colour = "grey20", alpha = 0.7, linewidth = 0.3, length = ggplot2::unit(0.035, "npc"))
  }
  p + ggplot2::facet_wrap(ggplot2::vars(.data$panel), ncol = length(models), drop = TRUE) +
    ggplot2::coord_equal(xlim = c(0, lim), ylim = c(0, lim), expand = FALSE) +
    ggplot2::scale_x_continuous(breaks = brk, labels = sprintf("%.1f", brk)) +
    ggplot2::scale_y_continuous(breaks = brk, labels = sprintf("%.1f", brk)) +
    ggplot2::scale_colour_manual(values = cols, guide = "none") +
    ggplot2::scale_fill_manual(values = cols, guide = "none") +
    ggplot2::labs(x = xlab, y = ylab, title = .ps_null_str(title),
                  caption = "Dashed line: ideal calibration; band: pointwise 95% CI; rug: predictions") +
    ggplot2::theme_bw(base_size = 10) +
    ggplot2::theme(strip.background = ggplot2::element_blank(), plot.caption = ggplot2::element_text(hjust = 0),
                   panel.spacing = ggplot2::unit(1.4, "lines"))
}

#' Plot a calibration result (ps_r_val_prob, ps_r_calibration_survival)
#' @param x a \code{ps_calibration} result; its \code{attr(x, "curve")} (predicted, observed and, when
#'   present, lower/upper) is drawn, with \code{attr(x, "predictions")} as the rug.
#' @param model panel title.
#' @param ... passed to \code{ps_plot_calibration} (labels, time_scale, time_unit).
#' @return a ggplot.
plot.ps_calibration <- function(x, model = "model", ...) {
  cu <- attr(x, "curve")
  if (is.null(cu)) stop("this calibration result carries no curve (attr(x, \"curve\"))")
  h <- if ("time" %in% names(x)) suppressWarnings(as.numeric(x$time[1])) else NA_real_
  survival <- is.finite(h)
  cu <- data.frame(endpoint = if (survival) "survival" else "response", horizon = h, model = model,
                   predicted = cu$predicted, observed = cu$observed,
                   lower = if (is.null(cu$lower)) NA_real_ else cu$lower,
                   upper = if (is.null(cu$upper)) NA_real_ else cu$upper)
  pr <- attr(x, "predictions")
  rug <- if (is.null(pr)) NULL else data.frame(model = model, horizon = h, predicted = as.numeric(pr))
  args <- list(...)
  if (survival && is.null(args$xlab)) args$xlab <- "Predicted risk of death"
  if (survival && is.null(args$ylab)) args$ylab <- "Observed risk (Kaplan-Meier)"
  do.call(ps_plot_calibration, c(list(curves = cu, rug = rug), args))
}

# ---------------------------------------------------------------------------- decision curves
#' Decision curve from a stored net-benefit table (ggplot2, in the style of dcurves::plot.dca)
#'
#' @param net_benefit data.frame: threshold, model ("all", "none" and the models), net_benefit; optional
#'   horizon (survival; one panel per horizon).
#' @param models model order; \code{linetypes} their line types.
#' @param time_scale,time_unit horizon display.
#' @param xlab,title labels.
#' @return a ggplot.
ps_plot_decision <- function(net_benefit, models = NULL, linetypes = c("solid", "52", "12", "5212", "93"),
                             time_scale = 30.4375, time_unit = "months", xlab = "Threshold probability",
                             title = NULL) {
  .ps_plot_need("ggplot2")
  d <- .ps_plot_cols(net_benefit, c("threshold", "model", "net_benefit"), "net_benefit")
  d$model <- as.character(d$model)
  if (is.null(models)) models <- setdiff(unique(d$model), c("all", "none"))
  if (!length(models)) stop("net_benefit table has no model rows besides 'all' and 'none'")
  labs <- c(models, "Treat all", "Treat none")
  d$label <- factor(ifelse(d$model == "all", "Treat all", ifelse(d$model == "none", "Treat none", d$model)),
                    levels = labs)
  d <- d[!is.na(d$label), ]
  cols <- stats::setNames(c(rep(.ps_okabe_ito, length.out = length(models)), "grey50", "black"), labs)
  lts <- stats::setNames(c(rep(linetypes, length.out = length(models)), "solid", "solid"), labs)
  # later models thinner on top, so a curve that coincides with an earlier one shows inside it (mm = pt / 2.13)
  lws <- stats::setNames(c(pmax(2.2 - 0.5 * (seq_along(models) - 1), 0.8), 0.9, 0.8) / 2.13, labs)
  top <- max(d$net_benefit, na.rm = TRUE)
  survival <- "horizon" %in% names(d) && any(is.finite(d$horizon))
  if (survival) d$panel <- sprintf("Horizon %s %s", format(round(d$horizon / time_scale, 1)), time_unit)
  # the references are thin lines on top (levels last): where a model treats everyone it coincides with
  # treat-all, and both stay visible
  p <- ggplot2::ggplot(d, ggplot2::aes(x = .data$threshold, y = .data$net_benefit, colour = .data$label,
                                       linetype = .data$label, linewidth = .data$label)) +
    ggplot2::geom_line(na.rm = TRUE) +
    ggplot2::scale_colour_manual(values = cols, breaks = labs) +
    ggplot2::scale_linetype_manual(values = lts, breaks = labs) +
    ggplot2::scale_linewidth_manual(values = lws, breaks = labs) +
    ggplot2::scale_x_continuous(breaks = seq(0, 1, 0.1), labels = function(v) sprintf("%.0f%%", 100 * v)) +
    ggplot2::coord_cartesian(xlim = range(d$threshold), ylim = c(-0.05, max(top, 0.01) * 1.08), expand = FALSE) +
    ggplot2::labs(x = xlab, y = "Net benefit", colour = NULL, linetype = NULL, linewidth = NULL,
                  title = .ps_null_str(title)) +
    ggplot2::theme_bw(base_size = 11) +
    ggplot2::theme(legend.key.width = ggplot2::unit(2.4, "lines"), strip.background = ggplot2::element_blank(),
                   legend.justification = "top")
  if (survival) p <- p + ggplot2::facet_wrap(ggplot2::vars(.data$panel), nrow = 1)
  p
}

#' Plot a net-benefit result (ps_r_net_benefit)
#' @param x a \code{ps_net_benefit} table; \code{attr(x, "horizon")} marks a survival horizon.
#' @param ... passed to \code{ps_plot_decision}.
#' @return a ggplot.
plot.ps_net_benefit <- function(x, ...) {
  d <- as.data.frame(x)
  h <- attr(x, "horizon")
  if (!is.null(h) && !"horizon" %in% names(d)) d$horizon <- h
  ps_plot_decision(d, ...)
}

# ---------------------------------------------------------------------------------- forest plot
.ps_forest_rows <- function(subgroups) {
  rows <- list()
  cells <- function(r) {
    est <- r$estimate
    note <- if (is.null(r$note) || is.na(r$note)) "" else sub(" \\(.*$", "", as.character(r$note))  # first words
    data.frame(estimate = est, lower = r$lower, upper = r$upper,
               n_events = sprintf("%d (%d)", as.integer(r$n), as.integer(r$events)),
               hr_text = if (is.finite(est)) sprintf("%.2f (%.2f-%.2f)", est, r$lower, r$upper)
                         else paste0("NA", if (nzchar(note)) paste0(" (", note, ")") else ""),
               p_text = "", stringsAsFactors = FALSE)
  }
  for (sg in unique(as.character(subgroups$subgroup))) {
    b <- subgroups[as.character(subgroups$subgroup) == sg, , drop = FALSE]
    if (sg == "Overall") {
      rows[[length(rows) + 1]] <- cbind(label = "Overall", header = TRUE, cells(b[1, ]))
      next
    }
    p <- suppressWarnings(as.numeric(b$p_interaction[1]))
    lab <- gsub("_", " ", sg)
    rows[[length(rows) + 1]] <- data.frame(
      label = paste0(toupper(substring(lab, 1, 1)), substring(lab, 2)), header = TRUE,
      estimate = NA_real_, lower = NA_real_, upper = NA_real_, n_events = "", hr_text = "",
      p_text = if (!is.finite(p)) "" else if (p < 0.001) "<0.001" else sprintf("%.3f", p), stringsAsFactors = FALSE)
    for (i in seq_len(nrow(b))) rows[[length(rows) + 1]] <- cbind(label = paste0("    ", b$level[i]), header = FALSE,
                                                                  cells(b[i, ]))
  }
  out <- do.call(rbind, rows)
  out$y <- rev(seq_len(nrow(out)) - 1)
  out
}

#' Forest plot of subgroup hazard ratios from a stored subgroup table (ggplot2)
#'
#' @param subgroups data.frame: subgroup, level, n, events, estimate, lower, upper, p_interaction (the
#'   table of Python \code{subgroup_hazard_ratios}); "Overall" first.
#' @param xlim HR axis limits (log scale); default from the estimates, at least 0.25-4. A CI leaving
#'   the axis ends in an arrow.
#' @param xlab,title labels.
#' @param figure_width the figure's width in inches (save it at this width: the text sits outside the panel).
#' @param left,right inches beside the panel for the labels and the text columns.
#' @param columns positions of the text columns, as fractions of the panel width.
#' @return a ggplot (text columns n (events), HR (95\% CI), P interaction beside the panel).
ps_plot_forest <- function(subgroups, xlim = NULL, xlab = "Hazard ratio, high vs low risk (95% CI, log scale)",
                           title = NULL, figure_width = 9.5, left = 2.6, right = 3.9, columns = c(1.04, 1.40, 1.95)) {
  .ps_plot_need("ggplot2")
  sg <- .ps_plot_cols(subgroups, c("subgroup", "level", "n", "events", "estimate", "lower", "upper", "p_interaction"),
                      "subgroups")
  r <- .ps_forest_rows(sg)
  if (is.null(xlim)) {
    est <- r$estimate[is.finite(r$estimate)]
    xlim <- c(max(min(0.25, if (length(est)) min(est) / 2 else 0.25), 1 / 64),
              min(max(4, if (length(est)) max(est) * 2 else 4), 64))
  }
  L <- log10(xlim[2] / xlim[1])
  at <- function(f) 10^(log10(xlim[1]) + f * L)  # x at a fraction f of the panel width
  n <- nrow(r)
  f <- r[is.finite(r$estimate), ]
  f$a <- pmax(f$lower, xlim[1]); f$b <- pmin(f$upper, xlim[2])
  up <- f[f$upper > xlim[2], ]; up$start <- pmax(up$a, xlim[2] / 1.35)
  dn <- f[f$lower < xlim[1], ]; dn$start <- pmin(dn$b, xlim[1] * 1.35)
  inside <- f[f$estimate >= xlim[1] & f$estimate <= xlim[2], ]
  arrow <- grid::arrow(length = grid::unit(0.07, "inches"), type = "closed")
  col <- .ps_okabe_ito[1]
  x_label <- at(-(left - 0.15) / max(figure_width - left - right, 1))  # labels start 0.15 in from the left edge
  head <- data.frame(x = c(x_label, at(columns)), y = n - 0.4 + 0.25,
                     text = c("Subgroup", "n (events)", "HR (95% CI)", "P interaction"), hjust = 0)
  txt <- rbind(data.frame(x = x_label, y = r$y, text = r$label, hjust = 0, face = ifelse(r$header, "bold", "plain")),
               data.frame(x = at(columns[1]), y = r$y, text = r$n_events, hjust = 0, face = "plain"),
               data.frame(x = at(columns[2]), y = r$y, text = r$hr_text, hjust = 0, face = "plain"),
               data.frame(x = at(columns[3]), y = r$y, text = r$p_text, hjust = 0, face = "plain"))
  ticks <- c(1 / 64, 1 / 32, 1 / 16, 0.125, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)
  ticks <- ticks[ticks >= xlim[1] & ticks <= xlim[2]]
  ggplot2::ggplot() +
    ggplot2::geom_vline(xintercept = 1, linetype = "42", colour = "grey40") +
    ggplot2::geom_segment(data = f, ggplot2::aes(x = .data$a, xend = .data$b, y = .data$y, yend = .data$y),
                          colour = col, linewidth = 0.6) +
    ggplot2::geom_segment(data = up, ggplot2::aes(x = .data$start, xend = xlim[2], y = .data$y, yend = .data$y),
                          colour = col, linewidth = 0.6, arrow = arrow) +
    ggplot2::geom_segment(data = dn, ggplot2::aes(x = .data$start, xend = xlim[1], y = .data$y, yend = .data$y),
                          colour = col, linewidth = 0.6, arrow = arrow) +
    ggplot2::geom_point(data = inside, ggplot2::aes(x = .data$estimate, y = .data$y,
                                                     shape = .data$header, size = .data$header), colour = col) +
    ggplot2::scale_shape_manual(values = c(`FALSE` = 15, `TRUE` = 18), guide = "none") +
    ggplot2::scale_size_manual(values = c(`FALSE` = 2.2, `TRUE` = 3), guide = "none") +
    ggplot2::geom_text(data = txt, ggplot2::aes(x = .data$x, y = .data$y, label = .data$text, hjust = .data$hjust,
                                                 fontface = .data$face), size = 3.1) +
    ggplot2::geom_text(data = head, ggplot2::aes(x = .data$x, y = .data$y, label = .data$text, hjust = .data$hjust),
                       size = 3.1, fontface = "bold", vjust = 0) +
    ggplot2::scale_x_log10(breaks = ticks, labels = format(ticks, drop0trailing = TRUE, trim = TRUE)) +
    ggplot2::coord_cartesian(xlim = xlim, ylim = c(-0.6, n - 0.4), expand = FALSE, clip = "off") +
    ggplot2::annotate("text", x = x_label, y = n + 0.55, label = if (is.null(.ps_null_str(title))) "" else title,
                      hjust = 0, vjust = 0, size = 11 / ggplot2::.pt) +
    ggplot2::labs(x = xlab, y = NULL) +
    ggplot2::theme_classic(base_size = 10) +
    ggplot2::theme(axis.text.y = ggplot2::element_blank(), axis.ticks.y = ggplot2::element_blank(),
                   axis.line.y = ggplot2::element_blank(),
                   plot.margin = ggplot2::margin((0.55 + 0.3 * !is.null(.ps_null_str(title))) * 72, right * 72,
                                                 0.1 * 72, left * 72))
}


# ------------------------------------------------------------------------------------- saving
#' Write a figure of this file to a PNG of exactly width x height inches
#'
#' @param plot a ggplot or ggsurvplot.
#' @param file output PNG path.
#' @param width,height inches; \code{dpi} resolution.
#' @return list(file, risk_table): for a ggsurvplot, the numbers at risk printed under the plot
#'   (group, time in stored units, n_risk), else NULL.
ps_plot_save <- function(plot, file, width = 7, height = 6, dpi = 150) {
  type <- if (isTRUE(capabilities("cairo"))) "cairo" else NULL
  args <- list(filename = file, width = round(width * dpi), height = round(height * dpi), res = dpi)
  if (!is.null(type)) args$type <- type
  do.call(grDevices::png, args)
  on.exit(grDevices::dev.off())
  if (inherits(plot, "ggsurvplot")) print(plot, newpage = FALSE) else print(plot)
  list(file = file, risk_table = if (inherits(plot, "ggsurvplot")) .ps_risk_table(plot) else NULL)
}

# -------------------------------------------------------------------------------- study results
.ps_study_table <- function(x, name) {
  f <- file.path(x$output_dir, "tables", paste0(name, ".csv"))
  if (!file.exists(f)) stop("this study stored no ", name, " table (", f, ")")
  utils::read.csv(f, stringsAsFactors = FALSE, check.names = FALSE)
}

.ps_split <- function(d, split) if ("split" %in% names(d)) d[d$split == split, , drop = FALSE] else d

#' Figures of a study's results, drawn from its stored tables
#'
#' @param x a \code{ps_study} (\code{ps_run}, \code{ps_read_results}).
#' @param which "km" (PRIME-S risk groups), "calibration" (endpoint "response" or "survival"),
#'   "decision" or "forest".
#' @param split "test" or "external" (the split the tables are filtered on).
#' @param endpoint for calibration and decision curves: "response" or "survival".
#' @param ... passed to the figure builder.
#' @return a ggplot (a ggsurvplot for "km").
plot.ps_study <- function(x, which = c("km", "calibration", "decision", "forest"), split = "external",
                          endpoint = c("response", "survival"), ...) {
  which <- match.arg(which)
  endpoint <- match.arg(endpoint)
  months <- 30.4375
  if (which == "km") {
    cu <- .ps_split(.ps_study_table(x, "km_curves"), split)
    ar <- .ps_split(.ps_study_table(x, "km_at_risk"), split)
    lr <- .ps_split(.ps_study_table(x, "logrank"), split)
    hr <- .ps_split(.ps_study_table(x, "cox_hr"), split)
    hr <- hr[hr$term == "high_risk", ]
    text <- sprintf("Log-rank %s;  HR high vs low risk %.2f (95%% CI %.2f-%.2f)", .ps_fmt_p(lr$p[1]), hr$estimate[1],
                    hr$lower[1], hr$upper[1])
    return(ps_plot_km(cu, ar, annotation = text, levels = c("low", "high"), labels = c("Low risk", "High risk"),
                      time_scale = months, time_label = "Time since treatment start (months)", ...))
  }
  if (which == "calibration") {
    cu <- .ps_split(.ps_study_table(x, "calibration_curves"), split)
    cu <- cu[cu$endpoint == endpoint, ]
    rug <- .ps_split(.ps_study_table(x, "calibration_rug"), split)
    lab <- if (endpoint == "survival") c("Predicted risk of death", "Observed risk (Kaplan-Meier)")
           else c("Predicted probability", "Observed proportion")
    return(ps_plot_calibration(cu, rug, xlab = lab[1], ylab = lab[2], ...))
  }
  if (which == "decision") {
    nb <- if (endpoint == "response") .ps_study_table(x, paste0("decision_curve_", split))
          else .ps_split(.ps_study_table(x, "decision_curve_survival"), split)
    return(ps_plot_decision(nb, ...))
  }
  ps_plot_forest(.ps_study_table(x, "subgroups"), ...)
}
