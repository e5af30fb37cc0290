# R/plots.R: the figures are ggplot objects (survminer's ggsurvplot for Kaplan-Meier) built from the
# stored tables, and plot() methods draw the package's results. Data: survival::lung.

skip_if_no_plots <- function(km = FALSE) {
  skip_if_not_installed("ggplot2")
  if (km) skip_if_not_installed("survminer")
}

lung_km <- function() {
  d <- survival::lung
  list(d = d, km = ps_r_km(d$time, d$status - 1, ifelse(d$sex == 1, "male", "female"),
                           times = seq(0, 1022, by = 6 * 30.4375)))
}

test_that("ps_r_km_plot and plot(ps_r_km(...)) return a ggsurvplot whose risk table counts the patients", {
  skip_if_no_plots(km = TRUE)
  x <- lung_km()
  p <- ps_r_km_plot(x$d$time, x$d$status - 1, ifelse(x$d$sex == 1, "male", "female"),
                    time_scale = 30.4375, time_label = "Time (months)", break_by = 6)
  expect_s3_class(p, "ggsurvplot")
  expect_s3_class(p$plot, "ggplot")
  expect_s3_class(p$table, "ggplot")
  expect_match(p$plot$labels$subtitle, "^Log-rank p = 0.001;  HR male vs female 1.70 \\(95% CI 1.23-2.36\\)$")
  rt <- .ps_risk_table(p)
  expect_equal(sort(unique(rt$time)) / 30.4375, c(0, 6, 12, 18, 24, 30))
  for (i in seq_len(nrow(rt))) {
    sex <- if (rt$group[i] == "male") 1 else 2
    expect_equal(rt$n_risk[i], sum(x$d$sex == sex & x$d$time >= rt$time[i]))
  }
  q <- plot(structure(x$km, class = c("ps_km", "list")), time_scale = 30.4375, break_by = 6)
  expect_s3_class(q, "ggsurvplot")
})

test_that("ps_plot_km draws the stored numbers at risk and refuses a table that disagrees", {
  skip_if_no_plots(km = TRUE)
  x <- lung_km()
  at <- x$km$at_times[, c("group", "time", "n_risk")]
  p <- ps_plot_km(x$km$curve, at, annotation = "text", levels = c("female", "male"), time_scale = 30.4375)
  printed <- .ps_risk_table(p)
  stored <- at[order(match(at$group, c("female", "male")), at$time), ]
  expect_equal(printed$n_risk, stored$n_risk)
  expect_equal(printed$time, stored$time)
  at$n_risk[2] <- at$n_risk[2] + 1
  expect_error(ps_plot_km(x$km$curve, at, time_scale = 30.4375), "differ from the stored at_risk")
  f <- tempfile(fileext = ".png")
  res <- ps_plot_save(p, f, width = 7, height = 6, dpi = 100)
  expect_true(file.size(f) > 20000)
  expect_equal(nrow(res$risk_table), nrow(stored))
})

test_that("plot() of calibration and net-benefit results returns ggplots", {
  skip_if_no_plots()
  set.seed(1)
  p <- stats::plogis(stats::rnorm(300, -0.3, 1.2))
  y <- stats::rbinom(300, 1, p)
  fit <- stats::lowess(p, y, iter = 0)
  cal <- structure(data.frame(metric = "slope", time = NA_real_, estimate = 1),
                   curve = data.frame(predicted = fit$x, observed = fit$y), predictions = p,
                   class = c("ps_calibration", "ps_table", "data.frame"))
  g <- plot(cal)
  expect_s3_class(g, "ggplot")
  expect_true(any(vapply(g$layers, function(l) inherits(l$geom, "GeomRug"), logical(1))))
  expect_equal(g$labels$x, "Predicted probability")
  nb <- ps_r_net_benefit(y, p, thresholds = seq(0, 0.9, 0.05))
  class(nb) <- c("ps_net_benefit", "ps_table", "data.frame")
  g <- plot(nb)
  expect_s3_class(g, "ggplot")
  expect_setequal(levels(g$data$label), c("model", "Treat all", "Treat none"))
  attr(nb, "horizon") <- 365.25
  expect_s3_class(plot(nb), "ggplot")
})

test_that("the forest plot ends CIs beyond the axis in arrows", {
  skip_if_no_plots()
  sg <- data.frame(subgroup = c("Overall", "sex", "sex"), level = c("All patients", "female", "male"),
                   n = c(228, 90, 138), events = c(165, 53, 112), estimate = c(1.5, 1.2, 3.5),
                   lower = c(1.1, 0.4, 1.8), upper = c(2.0, 2.9, 9.0), p_interaction = c(NA, 0.04, 0.04))
  g <- ps_plot_forest(sg, xlim = c(0.5, 4))
  expect_s3_class(g, "ggplot")
  arrows <- Filter(function(l) !is.null(l$geom_params$arrow), g$layers)
  expect_equal(sum(vapply(arrows, function(l) nrow(l$data), numeric(1))), 2)  # female lower, male upper
  expect_true("    male" %in% g$layers[[which(vapply(g$layers, function(l) inherits(l$geom, "GeomText"), logical(1)))[1]]]$data$text)
})

test_that("plot() of a study draws its stored tables", {
  skip_if_no_plots(km = TRUE)
  x <- lung_km()
  dir <- tempfile("ps_study_")
  dir.create(file.path(dir, "tables"), recursive = TRUE)
  grp <- ifelse(x$d$sex == 1, "high", "low")
  km <- ps_r_km(x$d$time, x$d$status - 1, grp, times = seq(0, 1022, by = 6 * 30.4375))
  w <- function(df, name) utils::write.csv(cbind(df, split = "external"), file.path(dir, "tables", paste0(name, ".csv")),
                                            row.names = FALSE)
  w(km$curve, "km_curves")
  w(km$at_times, "km_at_risk")
  w(ps_r_logrank(x$d$time, x$d$status - 1, grp), "logrank")
  cox <- ps_r_cox(data.frame(high_risk = as.numeric(grp == "high")), x$d$time, x$d$status - 1)
  w(cox, "cox_hr")
  st <- structure(list(output_dir = dir), class = c("ps_study", "list"))
  p <- plot(st, "km")
  expect_s3_class(p, "ggsurvplot")
  expect_match(p$plot$labels$subtitle, sprintf("HR high vs low risk %.2f", cox$estimate))
  expect_error(plot(st, "forest"), "stored no subgroups table")
  set.seed(2)
  p <- stats::plogis(stats::rnorm(200))
  y <- stats::rbinom(200, 1, p)
  lw <- stats::lowess(p, y, iter = 0)
  w(data.frame(endpoint = "response", horizon = NA, model = "PRIME-R", predicted = lw$x, observed = lw$y,
               lower = NA, upper = NA), "calibration_curves")
  w(data.frame(endpoint = "response", model = "PRIME-R", horizon = NA, predicted = p), "calibration_rug")
  g <- plot(st, "calibration")
  expect_s3_class(g, "ggplot")
  expect_equal(nrow(g$layers[[4]]$data), 200)  # the rug: every prediction of the split
  utils::write.csv(ps_r_net_benefit(y, p, seq(0, 0.9, 0.05)), file.path(dir, "tables", "decision_curve_external.csv"),
                   row.names = FALSE)
  expect_s3_class(plot(st, "decision"), "ggplot")
})
