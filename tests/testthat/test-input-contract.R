# The input contract of the R front end (R/checks.R): every bad input of every ps_r_* function gives a
# clear error naming the argument/column (or a documented NA), never a silent number. One row per bad
# input per function, with the message the Python core gives for the same input.
library(survival)

lung_t <- lung$time
lung_e <- lung$status - 1
cox <- coxph(Surv(time, status) ~ age + sex, data = lung)
r365 <- 1 - summary(survfit(cox, newdata = lung), times = 365)$surv[1, ]
r180 <- 1 - summary(survfit(cox, newdata = lung), times = 180)$surv[1, ]
lp <- predict(cox, newdata = lung)
y <- infert$case
p <- fitted(glm(case ~ spontaneous + induced, data = infert, family = binomial))
th <- c(0.1, 0.2, 0.3)
lung_na <- lung[, c("time", "status", "age", "ph.ecog")]
t_neg <- replace(lung_t, 4, -5)
t_na <- replace(lung_t, 7, NA)
p_nan <- replace(p, 2, NaN)
cens <- rep(0, length(lung_t))
pbc_x <- na.omit(pbc[, c("status", "age", "bili", "albumin", "chol")])

bad_inputs <- data.frame(stringsAsFactors = FALSE, ncol = 3, byrow = TRUE, matrix(c(
  # function, call, expected message (regular expression)
  "ps_r_net_benefit", "ps_r_net_benefit(y + 1, p, th)", "column 'y' must be coded 0/1; 83 invalid value.*for 1/2 codes use y - 1",
  "ps_r_net_benefit", "ps_r_net_benefit(y, qlogis(p), th)", "column 'prob' must be probabilities in \\[0, 1\\] \\(logits",
  "ps_r_net_benefit", "ps_r_net_benefit(y, p[1:124], th)", "'prob' has length 124 but 'y' has length 248 \\(vectors are not recycled\\)",
  "ps_r_net_benefit", "ps_r_net_benefit(rep(1, 248), p, th)", "column 'y' has only one class",
  "ps_r_net_benefit", "ps_r_net_benefit(y, p_nan, th)", "column 'prob' has 1 missing/non-finite value\\(s\\) \\(row 2\\)",
  "ps_r_net_benefit", "ps_r_net_benefit(lung_e, r365, th, time = t_neg, horizon = 365)", "column 'time' has 1 negative time\\(s\\) \\(row 4\\)",
  "ps_r_net_benefit", "ps_r_net_benefit(lung_e, r365, th, time = lung_t, horizon = 5000)", "'horizon' = 5000 is beyond the last follow-up time \\(1022\\)",
  "ps_r_net_benefit", "ps_r_net_benefit(y, p, c(0.1, 1))", "'thresholds' must lie in \\[0, 1\\)",
  "ps_r_ibs", "ps_r_ibs(lung_t, lung_e, cbind(r365, r180), c(365, 180))", "'times' must be strictly increasing, got 365, 180",
  "ps_r_ibs", "ps_r_ibs(lung_t, lung_e, cbind(r180), 180)", "'times' needs at least 2 value\\(s\\)",
  "ps_r_ibs", "ps_r_ibs(lung_t, cens, cbind(r180, r365), c(180, 365))", "column 'event' has no events \\(all 228 censored\\)",
  "ps_r_ibs", "ps_r_ibs(lung_t, lung_e, cbind(r180, r365)[1:200, ], c(180, 365))", "'risk' must be a vector of length 228 or a 228 x 2 matrix",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung_e, list(cox = r365[1:100]), 365)", "'risks\\$cox' has length 100 but 'time' has length 228",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung_e, list(cox = r365 * 3), 365)", "column 'risks\\$cox' must be probabilities in \\[0, 1\\]",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung_e, list(cox = r365), 2000)", "'times' = 2000 is at or beyond the last follow-up time \\(1022\\)",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung_e, list(cox = cbind(r365, r180)), c(365, 180))", "'times' must be strictly increasing",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, cens, list(cox = r365), 365)", "column 'event' has no events \\(all 228 censored\\): Score",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung$status, list(cox = r365), 365)", "column 'event' must be coded 0 \\(censored\\) / 1 \\(event\\); 165 invalid value\\(s\\) \\(row 1, 2, 4, 5, 7, \\.\\.\\.\\); for 1/2 codes use event - 1",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung_e, r365, 365)", "'risks' must be a named list",
  "ps_r_score_binary", "ps_r_score_binary(rep(0, 248), list(m = p))", "column 'y' has only one class \\(all 248 are 0\\)",
  "ps_r_score_binary", "ps_r_score_binary(y, list(m = p + 1))", "column 'probs\\$m' must be probabilities in \\[0, 1\\]",
  "ps_r_score_binary", "ps_r_score_binary(y, list(m = p[-1]))", "'probs\\$m' has length 247 but 'y' has length 248",
  "ps_r_concordance", "ps_r_concordance(t_neg, lung_e, lp)", "column 'time' has 1 negative time\\(s\\) \\(row 4\\)",
  "ps_r_concordance", "ps_r_concordance(lung_t, lung_e, lp[-1])", "'risk' has length 227 but 'time' has length 228",
  "ps_r_concordance", "ps_r_concordance(lung_t, cens, lp)", "no events \\(all 228 censored\\): the concordance is undefined",
  "ps_r_concordance", "ps_r_concordance(t_na, lung_e, lp)", "column 'time' has 1 missing/non-finite value\\(s\\) \\(row 7\\)",
  "ps_r_concordance", "ps_r_concordance(Surv(time, status) ~ ph.ecog, data = lung)", "column 'ph.ecog' has 1 missing/non-finite value\\(s\\) \\(row 14\\)",
  "ps_r_concordance", "ps_r_concordance(lung_t, lung_e, lp, timewt = 'uno')", "'timewt' must be one of",
  "ps_r_rmst", "ps_r_rmst(lung_t, lung_e, tau = 5000)", "'tau' = 5000 is beyond the last follow-up time \\(1022\\)",
  "ps_r_rmst", "ps_r_rmst(lung_t, lung_e, tau = 1000, group = lung$sex)", "'tau' = 1000 is beyond the last follow-up time \\(965\\)",
  "ps_r_validate_lrm", "ps_r_validate_lrm(lung_na[, c('age', 'ph.ecog')], lung_e, B = 5)", "column 'ph.ecog' has 1 missing/non-finite value\\(s\\) \\(row 14\\); rows are never dropped silently",
  "ps_r_validate_lrm", "ps_r_validate_lrm(pbc_x[, -1], rep(1, nrow(pbc_x)), B = 5)", "column 'y' has only one class",
  "ps_r_validate_lrm", "ps_r_validate_lrm(pbc_x[, -1], as.integer(pbc_x$status == 2), B = 5.5)", "'B' must be a whole number",
  "ps_r_val_prob", "ps_r_val_prob(y, p * 2)", "column 'prob' must be probabilities in \\[0, 1\\]",
  "ps_r_val_prob", "ps_r_val_prob(y, round(p))", "column 'prob' contains 0 or 1 .*logit-scale calibration needs probabilities strictly inside \\(0, 1\\)",
  "ps_r_val_prob", "ps_r_val_prob(rep(1, 248), p)", "column 'y' has only one class",
  "ps_r_val_prob", "ps_r_val_prob(y, rep(0.3, 248))", "the predicted probabilities are constant",
  "ps_r_calibration_survival", "ps_r_calibration_survival(lung_t, lung_e, r365, times = 1500)", "'times' = 1500 is at or beyond the last follow-up time",
  "ps_r_calibration_survival", "ps_r_calibration_survival(lung_t, lung_e, r365 + 1, times = 365)", "column 'risk' must be probabilities in \\[0, 1\\]",
  "ps_r_calibration_survival", "ps_r_calibration_survival(lung_t, cens, r365, times = 365)", "no events \\(all 228 censored\\): calibration is undefined",
  "ps_r_auc", "ps_r_auc(rep(1, 248), p)", "column 'y' has only one class",
  "ps_r_auc", "ps_r_auc(y, p_nan)", "column 'score' has 1 missing/non-finite value\\(s\\) \\(row 2\\)",
  "ps_r_roc_test", "ps_r_roc_test(y, p, p[-1])", "'score2' has length 247 but 'y' has length 248",
  "ps_r_km", "ps_r_km(lung_t, lung$status)", "for 1/2 codes use event - 1",
  "ps_r_km", "ps_r_km(lung_t, lung_e[-1])", "'event' has length 227 but 'time' has length 228",
  "ps_r_km", "ps_r_km(lung_t, lung_e, group = lung$ph.ecog)", "column 'group' has 1 missing value\\(s\\) \\(row 14\\)",
  "ps_r_km", "ps_r_km(Surv(time, status) ~ sex, data = transform(lung, time = -time))", "column 'time' has 228 negative time\\(s\\)",
  "ps_r_km", "ps_r_km(Surv(time, status) ~ sex)", "a formula needs 'data'",
  "ps_r_km", "ps_r_km(time ~ sex, data = lung)", "the left-hand side must be Surv\\(time, status\\)",
  "ps_r_logrank", "ps_r_logrank(lung_t, lung_e)", "the log-rank test compares groups: give a group",
  "ps_r_logrank", "ps_r_logrank(Surv(time, status) ~ 1, data = lung)", "the log-rank test compares groups",
  "ps_r_logrank", "ps_r_logrank(lung_t, lung_e, rep('a', 228))", "column 'group' has one level \\(a\\)",
  "ps_r_logrank", "ps_r_logrank(lung_t, cens, lung$sex)", "no events \\(all 228 censored\\): the log-rank test is undefined",
  "ps_r_cox", "ps_r_cox(Surv(time, status) ~ age + ph.ecog, data = lung)", "column 'ph.ecog' has 1 missing/non-finite value\\(s\\) \\(row 14\\)",
  "ps_r_cox", "ps_r_cox(lung[, c('age', 'sex')], lung_t, cens)", "no events \\(all 228 censored\\): a Cox model is undefined",
  "ps_r_cox", "ps_r_cox(lung[1:100, c('age', 'sex')], lung_t, lung_e)", "'x' has 100 rows but 'time' has length 228",
  "ps_r_cox", "ps_r_cox(Surv(time, status) ~ age, data = lung, ties = 'efrom')", "'ties' must be one of \"efron\", \"breslow\", \"exact\"",
  "ps_r_cox_zph", "ps_r_cox_zph(lung[, c('age', 'sex')], lung_t, cens)", "no events \\(all 228 censored\\)",
  "ps_r_followup", "ps_r_followup(lung_t, lung_e, conf_level = 95)", "conf_level must be one number in \\(0, 1\\)"
), byrow = TRUE, ncol = 3, dimnames = list(NULL, c("fn", "call", "message"))))

test_that("the table covers every ps_r_* statistic", {
  stats_fns <- c("ps_r_net_benefit", "ps_r_ibs", "ps_r_score_survival", "ps_r_score_binary", "ps_r_concordance",
                 "ps_r_rmst", "ps_r_validate_lrm", "ps_r_val_prob", "ps_r_calibration_survival", "ps_r_auc",
                 "ps_r_roc_test", "ps_r_km", "ps_r_logrank", "ps_r_cox", "ps_r_cox_zph", "ps_r_followup")
  expect_setequal(unique(bad_inputs$fn), stats_fns)
})

for (i in seq_len(nrow(bad_inputs))) {
  local({
    case <- bad_inputs[i, ]
    test_that(sprintf("%s: %s fails clearly", case$fn, case$call), {
      expect_error(eval(parse(text = case$call)), case$message)
    })
  })
}

test_that("documented NAs: a median that is not reached, follow-up without censoring", {
  km <- ps_r_km(lung_t, cens)
  expect_true(is.na(km$summary$median))
  expect_true(all(km$curve$surv == 1))
  fu <- ps_r_followup(lung_t, rep(1, length(lung_t)))
  expect_true(is.na(fu$estimate))
})

test_that("fitted models: NA rows in newdata are an error, never dropped", {
  g <- glm(status == 2 ~ age + ph.ecog, data = lung, family = binomial)
  expect_error(ps_r_val_prob(g, newdata = lung), "missing/non-finite value\\(s\\) \\(row 14\\)")
  expect_error(ps_r_concordance(coxph(Surv(time, status) ~ ph.ecog, data = lung), newdata = lung), "row 14")
  expect_error(ps_r_net_benefit(cox, newdata = lung, thresholds = th), "horizon")
  expect_error(ps_r_concordance(cox, newdata = as.list(lung)), "newdata must be a data.frame")
})

test_that("settings are coerced the R way before they reach the Python config", {
  s <- primestats:::.ps_settings(list(seed = 7, models = list(n_jobs = 2, fast = TRUE, engine = "baseline"),
                                      evaluation = list(times = c(365, 730.5)), split = list(test_fraction = 0.3)))
  expect_identical(s$seed, 7L)
  expect_identical(s$models$n_jobs, 2L)
  expect_identical(s$models$fast, TRUE)
  expect_identical(s$evaluation$times, c(365, 730.5))
  expect_identical(s$split$test_fraction, 0.3)
})
