has_core <- function() {
  py <- Sys.getenv("PRIMESTATS_PYTHON", "")
  nzchar(py) && file.exists(py) && requireNamespace("reticulate", quietly = TRUE)
}

test_that("the Python core simulates a cohort and runs a study from R", {
  skip_if_not(has_core(), "PRIMESTATS_PYTHON not set (make test sets it)")
  dir <- tempfile("ps_r_")
  sim <- ps_simulate(dir, seed = 3L, n_a = 80L, n_b = 60L, images = FALSE, n_expression = 0L)
  expect_s3_class(sim$clinical, "data.frame")
  expect_equal(nrow(sim$clinical), 140)
  expect_true(all(c("patient_id", "centre", "response_3m", "os_days", "os_event") %in% names(sim$clinical)))
  expect_setequal(unique(sim$clinical$centre), c("A", "B"))
  expect_true(all(sim$clinical$os_days > 0))

  res <- ps_run(sim$files[["config"]], output = file.path(dir, "results"), progress = FALSE,
                settings = list(models = list(family = "baseline")))
  expect_s3_class(res, "ps_study")
  expect_setequal(unique(res$predictions$split), c("train", "external"))   # split.test_fraction 0 (default)
  expect_equal(nrow(res$predictions), 140)
  auc <- res$metrics$estimate[res$metrics$metric == "AUC"]
  expect_true(all(auc >= 0 & auc <= 1))
  expect_output(print(res), "PRIME study results")
})

test_that("ps_run accepts a data.frame and reports bad input clearly", {
  skip_if_not(has_core(), "PRIMESTATS_PYTHON not set (make test sets it)")
  sim <- ps_simulate(tempfile("ps_r_"), seed = 4L, n_a = 60L, n_b = 40L, images = FALSE, n_expression = 0L)
  fast <- list(models = list(family = "baseline"))
  res <- ps_run(clinical = sim$clinical, settings = c(list(seed = 1L), fast), progress = FALSE)
  expect_equal(nrow(res$predictions), 100)
  bad <- sim$clinical
  bad$os_event[3] <- 2
  expect_error(ps_run(clinical = bad, settings = fast, progress = FALSE), "os_event: must be 0/1")
  expect_error(ps_run(clinical = sim$clinical, settings = list(split = list(test_fracton = 0.3)),
                      progress = FALSE), "test_fracton")
})

test_that("frozen models predict and validate new cohorts from R", {
  skip_if_not(has_core(), "PRIMESTATS_PYTHON not set (make test sets it)")
  dir <- tempfile("ps_r_")
  sim <- ps_simulate(dir, seed = 5L, n_a = 70L, n_b = 50L, images = FALSE, n_expression = 0L)
  res <- ps_run(sim$files[["config"]], output = file.path(dir, "results"), progress = FALSE,
                settings = list(models = list(family = "prime", fast = TRUE),
                                explain = list(shap = FALSE), evaluation = list(nested_cv = FALSE)))
  expect_true("prob_prime_r" %in% names(res$predictions))
  new <- ps_simulate(tempfile("ps_r_"), seed = 6L, n_a = 30L, n_b = 30L, images = FALSE,
                     n_expression = 0L)$clinical
  pred <- ps_predict(res$output_dir, new[, setdiff(names(new), c("response_3m", "os_days", "os_event"))])
  expect_equal(nrow(pred), 60)
  expect_true(all(pred$prob_prime_r >= 0 & pred$prob_prime_r <= 1))
  val <- ps_validate(res$output_dir, list(C = new[new$centre == "A", ], D = new[new$centre == "B", ]),
                     engine = "python")
  expect_setequal(unique(val$split), c("C", "D"))
  auc <- val[val$metric == "AUC" & val$model == "PRIME-R", ]
  expect_equal(nrow(auc), 2)
  expect_true(all(auc$lower <= auc$estimate & auc$estimate <= auc$upper))
  rep <- ps_report(res$output_dir)
  expect_true(file.exists(rep[["html"]]) && file.exists(rep[["pdf"]]))
  expect_error(ps_validate(res$output_dir, list(new)), "named list")
})

test_that("score tables with vectorised bootstrap CIs come from the Python core (B =)", {
  skip_if_not(has_core(), "PRIMESTATS_PYTHON not set (make test sets it)")
  skip_if_not_installed("survival")
  d <- survival::gbsg
  fit <- survival::coxph(survival::Surv(rfstime, status) ~ age + size + nodes + pgr + er, data = d)
  tt <- c(365, 730, 1095)
  H <- survival::basehaz(fit, centered = FALSE)
  H0 <- sapply(tt, function(t) max(c(0, H$hazard[H$time <= t])))
  risk <- 1 - exp(-outer(exp(predict(fit, type = "lp", reference = "zero")), H0))
  res <- ps_score_survival(d$rfstime, d$status, list(cox = risk), tt,
                           risk_scores = list(cox = predict(fit)), B = 200, seed = 1)
  harrell <- res[res$metric == "C-index" & res$method == "Harrell", ]
  boot <- res[res$metric == "C-index" & grepl("^Harrell; percentile bootstrap \\(B=200\\)", res$method), ]
  expect_equal(nrow(boot), 1)
  expect_equal(boot$estimate, harrell$estimate)
  expect_equal(harrell$estimate,
               unname(survival::concordance(survival::Surv(rfstime, status) ~ predict(fit), data = d,
                                            reverse = TRUE)$concordance), tolerance = 1e-10)
  expect_true(boot$lower < boot$estimate && boot$estimate < boot$upper)
  expect_equal(boot$se, harrell$se, tolerance = 0.25)   # bootstrap vs infinitesimal-jackknife SE
  again <- ps_score_survival(d$rfstime, d$status, list(cox = risk), tt,
                             risk_scores = list(cox = predict(fit)), B = 200, seed = 1)
  expect_equal(again$lower[grepl("bootstrap", again$method)], res$lower[grepl("bootstrap", res$method)])
  b <- ps_score_binary(as.integer(d$status), list(m = risk[, 3]), B = 100, seed = 2, thresholds = c(0.2, 0.4))
  expect_equal(sort(unique(b$threshold[b$metric == "net benefit"])), c(0.2, 0.4))
  expect_error(ps_score_survival(d$rfstime, d$status, risk, tt), "named list")
})
