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
  expect_setequal(unique(res$predictions$split), c("train", "test", "external"))
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
