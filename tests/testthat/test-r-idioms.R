# R idioms of the front end: formula + data, fitted models with new data, S3 results with short print,
# summary and as.data.frame, numbers in fixed notation; every number checked against the R package that
# computes it (survival, pROC, riskRegression) on lung / infert / pbc.
library(survival)

test_that("ps_r_km takes a formula, an optional group, and summary(times =) counts events per interval", {
  km <- ps_r_km(Surv(time, status) ~ sex, data = lung)
  expect_s3_class(km, "ps_km")
  ref <- survfit(Surv(time, status) ~ sex, data = lung)
  expect_equal(km$curve$surv, ref$surv)
  expect_equal(km$summary$median, unname(summary(ref)$table[, "median"]))
  vec <- ps_r_km(lung$time, lung$status - 1, lung$sex)
  expect_equal(as.data.frame(vec), as.data.frame(km))
  s <- summary(km, times = c(180, 365, 730))
  rs <- summary(ref, times = c(180, 365, 730), extend = TRUE)
  expect_equal(s$n_event, rs$n.event)          # per interval: 36 events in (180, 365] for sex 1, not 85
  expect_equal(s$n_event[s$group == "1" & s$time == 365], 36)
  expect_equal(s$n_risk, rs$n.risk)
  expect_equal(s$surv, rs$surv)
  at <- ps_r_km(Surv(time, status) ~ sex, data = lung, times = c(180, 365))$at_times
  expect_equal(at$n_event, summary(ref, times = c(180, 365))$n.event)
  one <- ps_r_km(Surv(time, status) ~ 1, data = lung)
  expect_equal(one$summary$median, unname(summary(survfit(Surv(time, status) ~ 1, data = lung))$table["median"]))
  expect_equal(nrow(ps_r_km(lung$time, lung$status - 1)$summary), 1)
  two <- ps_r_km(Surv(time, status) ~ sex + ph.ecog, data = lung[!is.na(lung$ph.ecog), ])
  expect_equal(nrow(two$summary), 7)
})

test_that("printing a KM result is short, like print.survfit", {
  out <- capture.output(print(ps_r_km(Surv(time, status) ~ sex, data = lung)))
  expect_lte(length(out), 6)
  expect_match(out[1], "228 patients, 165 events")
  expect_true(any(grepl("^ +1 +138 +112 +270 +212 +310$", out)))
})

test_that("ps_r_logrank and ps_r_cox take formulas and match survdiff / coxph", {
  lr <- ps_r_logrank(Surv(time, status) ~ sex, data = lung)
  sd <- survdiff(Surv(time, status) ~ sex, data = lung)
  expect_s3_class(lr, "ps_logrank")
  expect_equal(lr$statistic[1], sd$chisq)
  expect_equal(as.data.frame(lr), as.data.frame(ps_r_logrank(lung$time, lung$status - 1, lung$sex)))
  d <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog")])
  fit <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = d)
  hr <- ps_r_cox(Surv(time, status) ~ age + sex + ph.ecog, data = d)
  expect_s3_class(hr, "ps_cox")
  expect_equal(unname(hr$estimate), unname(exp(coef(fit))))
  expect_equal(as.data.frame(ps_r_cox(fit)), as.data.frame(hr))
  expect_equal(as.data.frame(ps_r_cox(d[, c("age", "sex", "ph.ecog")], d$time, d$status - 1)), as.data.frame(hr))
  br <- ps_r_cox(Surv(time, status) ~ age + sex, data = lung, ties = "breslow")
  expect_equal(unname(br$coef), unname(coef(coxph(Surv(time, status) ~ age + sex, data = lung, ties = "breslow"))))
  expect_false(inherits(as.data.frame(hr), "ps_table"))
  expect_null(attr(as.data.frame(hr), "coxph"))
})

test_that("concordance: formula, fitted coxph with new data, vectors; higher risk = worse", {
  fit <- coxph(Surv(time, status) ~ age + sex, data = lung)
  ref <- concordance(fit)
  a <- ps_r_concordance(Surv(time, status) ~ predict(fit), data = lung)
  expect_equal(a$estimate, ref$concordance)
  expect_equal(a$se, sqrt(ref$var))
  expect_equal(ps_r_concordance(fit)$estimate, ref$concordance)
  test <- lung[101:228, ]
  fit100 <- coxph(Surv(time, status) ~ age + sex, data = lung[1:100, ])
  expect_equal(ps_r_concordance(fit100, newdata = test)$estimate, concordance(fit100, newdata = test)$concordance)
  expect_equal(ps_r_concordance(lung$time, lung$status - 1, predict(fit))$estimate, ref$concordance)
  rev <- ps_r_concordance(lung$time, lung$status - 1, -predict(fit), reverse = FALSE)
  expect_equal(rev$estimate, ref$concordance)
  uno <- ps_r_concordance(Surv(time, status) ~ predict(fit), data = lung, timewt = "n/G2")
  expect_equal(uno$estimate, concordance(fit, timewt = "n/G2")$concordance)
  expect_equal(uno$method, "Uno (n/G2)")
  g <- glm(case ~ spontaneous + induced, data = infert, family = binomial)
  auc <- pROC::auc(pROC::roc(infert$case, fitted(g), levels = c(0, 1), direction = "<", quiet = TRUE))
  expect_equal(ps_r_concordance(g)$estimate, as.numeric(auc))
  expect_equal(ps_r_concordance(rms::lrm(case ~ spontaneous + induced, data = infert), newdata = infert)$estimate,
               as.numeric(auc))
})

test_that("Score, calibration and net benefit accept fitted models with new data", {
  train <- lung[1:150, ]; test <- lung[151:228, ]
  fit <- coxph(Surv(time, status) ~ age + sex, data = train)
  risk <- 1 - summary(survfit(fit, newdata = test), times = c(180, 365))$surv
  risk <- t(risk)
  byvec <- ps_r_score_survival(test$time, test$status - 1, list(coxph = risk), c(180, 365))
  expect_equal(as.data.frame(ps_r_score_survival(fit, newdata = test, times = c(180, 365))), as.data.frame(byvec))
  byform <- ps_r_score_survival(Surv(time, status) ~ 1, data = test, risks = list(coxph = fit), times = c(180, 365))
  expect_equal(as.data.frame(byform), as.data.frame(byvec))
  cal <- ps_r_calibration_survival(fit, newdata = test, times = 365)
  expect_equal(as.data.frame(cal), as.data.frame(ps_r_calibration_survival(test$time, test$status - 1, risk[, 2], times = 365)))
  expect_s3_class(cal, "ps_calibration")
  expect_equal(names(attr(cal, "curve")), c("predicted", "observed"))
  nb <- ps_r_net_benefit(fit, newdata = test, thresholds = c(0.3, 0.5), horizon = 365)
  expect_equal(as.data.frame(nb), as.data.frame(ps_r_net_benefit(test$status - 1, risk[, 2], c(0.3, 0.5),
                                                                 time = test$time, horizon = 365)))
  expect_equal(attr(nb, "horizon"), 365)
  odd <- seq(1, 248, by = 2)
  g <- glm(case ~ spontaneous + induced, data = infert[odd, ], family = binomial)
  new <- infert[-odd, ]
  pr <- predict(g, newdata = new, type = "response")
  expect_equal(as.data.frame(ps_r_val_prob(g, newdata = new)), as.data.frame(ps_r_val_prob(new$case, pr)))
  expect_equal(as.data.frame(ps_r_net_benefit(g, newdata = new, thresholds = 0.3)),
               as.data.frame(ps_r_net_benefit(new$case, pr, 0.3)))
  sb <- ps_r_score_binary(case ~ 1, data = new, probs = list(glm = g))
  expect_equal(as.data.frame(sb), as.data.frame(ps_r_score_binary(new$case, list(glm = pr))))
  expect_equal(as.data.frame(ps_r_score_binary(g, newdata = new)), as.data.frame(sb))
})

test_that("IPA has a CI, from Score's se(B), se(B0) and se(B - B0) by the delta method", {
  d <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog")]); d$status <- d$status - 1
  fit <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = d)
  r <- t(1 - summary(survfit(fit, newdata = d), times = c(180, 365))$surv)
  s <- ps_r_score_survival(d$time, d$status, list(cox = r), c(180, 365))
  ipa <- s[s$metric == "IPA", ]
  expect_true(all(ipa$se > 0) && all(ipa$lower < ipa$estimate & ipa$estimate < ipa$upper))
  sc <- riskRegression::Score(list(cox = r), formula = Surv(time, status) ~ 1, data = d, times = c(180, 365),
                              metrics = "brier", summary = "ipa", cens.model = "km")
  scs <- as.data.frame(sc$Brier$score)
  expect_equal(ipa$estimate, scs$IPA[scs$model == "cox"])
  py <- Sys.getenv("PRIMESTATS_PYTHON", "")
  skip_if_not(nzchar(py) && file.exists(py) && requireNamespace("reticulate", quietly = TRUE),
              "PRIMESTATS_PYTHON not set: the comparison with the Python engine needs the core")
  ps_python(py)
  overall <- reticulate::import("prime_stats.evaluation.overall", convert = FALSE)
  # reticulate 1.28 cannot pass numpy-2 arrays: lists in, a CSV-backed data.frame out
  pys <- primestats:::.ps_frame(overall$brier_survival(as.list(d$time), as.list(d$status), as.data.frame(r),
                                                       as.list(c(180, 365))))
  expect_equal(ipa$se, pys$se[pys$metric == "IPA"], tolerance = 1e-8)
  p <- fitted(glm(case ~ spontaneous + induced, data = infert, family = binomial))
  b <- ps_r_score_binary(infert$case, list(glm = p))
  pyb <- primestats:::.ps_frame(overall$brier_binary(as.list(infert$case), as.list(unname(p))))
  expect_equal(b$se[b$metric == "IPA"], pyb$se[pyb$metric == "IPA"], tolerance = 1e-8)
})

test_that("tables print in fixed notation, short, and as.data.frame gives the tidy table", {
  x <- primestats:::.ps_table(data.frame(term = c("a", "b"), estimate = c(1.5e-7, 123456.789), p = c(1e-12, 0.0312),
                                         method = "m"), "ps_cox")
  out <- capture.output(print(x))
  expect_false(any(grepl("e-|e\\+", out)))
  expect_true(any(grepl("<0.0001", out)))
  expect_true(any(grepl("method: m", out)))
  long <- ps_r_net_benefit(infert$case, rep(0.3, 248), seq(0, 0.9, by = 0.05))
  expect_lte(length(capture.output(print(long))), 24)
  expect_identical(class(as.data.frame(long)), "data.frame")
  expect_equal(nrow(as.data.frame(long)), 57)
})

test_that("a study result has a headline summary()", {
  dir <- tempfile("ps_study_")
  dir.create(dir)
  m <- data.frame(endpoint = c("response", "response", "survival", "survival", "survival"),
                  model = c("PRIME-R", "PRIME-R", "PRIME-S", "PRIME-S", "PRIME-S"),
                  split = c("test", "external", "external", "external", "external"),
                  metric = c("AUC", "AUC", "C-index", "C-index", "AUC(t)"), time = c(NA, NA, NA, NA, 365),
                  estimate = c(0.9, 0.85, 0.72, 0.7, 0.8), lower = c(0.8, 0.78, 0.65, 0.62, 0.7),
                  upper = c(0.97, 0.91, 0.79, 0.78, 0.9), method = c("DeLong", "DeLong", "Harrell", "Uno (n/G2)", "IPCW"))
  utils::write.csv(m, file.path(dir, "metrics.csv"), row.names = FALSE)
  res <- ps_read_results(dir)
  s <- summary(res)
  expect_s3_class(s, "ps_study_summary")
  expect_equal(s$metric, c("AUC", "C-index (Harrell)", "C-index (Uno)"))
  expect_equal(s$external, c("0.85 (0.78, 0.91)", "0.72 (0.65, 0.79)", "0.70 (0.62, 0.78)"))
  expect_equal(s$test, c("0.90 (0.80, 0.97)", NA, NA))
  expect_output(print(res), "Headline metrics")
})
