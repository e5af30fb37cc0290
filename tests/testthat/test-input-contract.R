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

bad_inputs <- as.data.frame(matrix(c(
  # function, call, expected message (a regular expression: the catalogue message of the Python core)
  "ps_r_net_benefit", "ps_r_net_benefit(y + 1, p, th)", "^y must be coded 0/1 but is coded 1/2: pass y - 1$",
  "ps_r_net_benefit", "ps_r_net_benefit(y, qlogis(p), th)", "^prob must be probabilities in \\[0, 1\\]; 211 value\\(s\\) outside \\(position 1, 2, 3, 4, 5, \\.\\.\\.; first value 1\\.104679\\); negative values look like logits",
  "ps_r_net_benefit", "ps_r_net_benefit(y, p[1:124], th)", "^prob has length 124 but y has length 248$",
  "ps_r_net_benefit", "ps_r_net_benefit(rep(1, 248), p, th)", "^y has only one class \\(1\\); net benefit needs both 0 and 1$",
  "ps_r_net_benefit", "ps_r_net_benefit(y, p_nan, th)", "^prob has 1 missing/non-finite value\\(s\\) \\(position 2\\)$",
  "ps_r_net_benefit", "ps_r_net_benefit(lung_e, r365, th, time = t_neg, horizon = 365)", "^time has 1 negative time\\(s\\) \\(position 4\\)$",
  "ps_r_net_benefit", "ps_r_net_benefit(lung_e, r365, th, time = lung_t, horizon = 5000)", "^horizon 5000 is at or beyond the last follow-up time \\(1022\\); net benefit is not estimable there$",
  "ps_r_net_benefit", "ps_r_net_benefit(y, p, c(0.1, 1))", "^thresholds must lie in \\[0, 1\\)$",
  "ps_r_net_benefit", "ps_r_net_benefit(factor(ifelse(y == 1, 'yes', 'no')), p, th)", "^y must be numeric; 248 non-numeric value\\(s\\) \\(position 1, 2, 3, 4, 5, \\.\\.\\.\\)$",
  "ps_r_ibs", "ps_r_ibs(lung_t, lung_e, cbind(r365, r180), c(365, 180))", "^times must be strictly increasing; got 365, 180$",
  "ps_r_ibs", "ps_r_ibs(lung_t, lung_e, cbind(r180), 180)", "^times must hold at least 2 time\\(s\\)$",
  "ps_r_ibs", "ps_r_ibs(lung_t, cens, cbind(r180, r365), c(180, 365))", "^event has no events \\(all censored\\); the integrated Brier score is undefined$",
  "ps_r_ibs", "ps_r_ibs(lung_t, lung_e, cbind(r180, r365)[1:200, ], c(180, 365))", "^risk must have shape \\(n_patients=228,\\) or \\(n_patients, n_times=2\\); got \\(200, 2\\)$",
  "ps_r_ibs", "ps_r_ibs(lung_t, lung_e, cbind(r180, r365 + 1), c(180, 365))", "^risk\\[, 2\\] \\(time 365\\) must be probabilities in \\[0, 1\\]",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung_e, list(cox = r365[1:100]), 365)", "^risks\\$cox has length 100 but time has length 228$",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung_e, list(cox = r365 * 3), 365)", "^risks\\$cox must be probabilities in \\[0, 1\\]; 228 value\\(s\\) outside",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung_e, list(cox = r365), 2000)", "^times 2000 is at or beyond the last follow-up time \\(1022\\); scoring is not estimable there$",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung_e, list(cox = cbind(r365, r180)), c(365, 180))", "^times must be strictly increasing; got 365, 180$",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, cens, list(cox = r365), 365)", "^event has no events \\(all censored\\); scoring is undefined$",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung$status, list(cox = r365), 365)", "^event must be coded 0 \\(censored\\) / 1 \\(event\\) but is coded 1/2 \\(survival::Surv's 1 = censored, 2 = event\\): pass event - 1$",
  "ps_r_score_survival", "ps_r_score_survival(lung_t, lung_e, r365, 365)", "^risks must be a named list",
  "ps_r_score_survival", "ps_r_score_survival(Surv(time, status) ~ 1, data = lung, risks = list(cox = r365), times = c(-1, 365))", "^times must be finite times >= 0; got -1, 365$",
  "ps_r_score_binary", "ps_r_score_binary(rep(0, 248), list(m = p))", "^y has only one class \\(0\\); scoring needs both 0 and 1$",
  "ps_r_score_binary", "ps_r_score_binary(y, list(m = p + 1))", "^probs\\$m must be probabilities in \\[0, 1\\]; 248 value\\(s\\) outside",
  "ps_r_score_binary", "ps_r_score_binary(y, list(m = p[-1]))", "^probs\\$m has length 247 but y has length 248$",
  "ps_r_concordance", "ps_r_concordance(t_neg, lung_e, lp)", "^time has 1 negative time\\(s\\) \\(position 4\\)$",
  "ps_r_concordance", "ps_r_concordance(lung_t, lung_e, lp[-1])", "^risk has length 227 but time has length 228$",
  "ps_r_concordance", "ps_r_concordance(lung_t, cens, lp)", "^event has no events \\(all censored\\); the concordance index is undefined$",
  "ps_r_concordance", "ps_r_concordance(t_na, lung_e, lp)", "^time has 1 missing/non-finite value\\(s\\) \\(position 7\\)$",
  "ps_r_concordance", "ps_r_concordance(Surv(time, status) ~ ph.ecog, data = lung)", "^column 'ph.ecog' has 1 missing/non-finite value\\(s\\) \\(row 14\\)$",
  "ps_r_concordance", "ps_r_concordance(Surv(time, status) ~ age, data = transform(lung, status = status + 1))", "^column 'status' must be coded 0 \\(censored\\) / 1 \\(event\\); 228 invalid value\\(s\\) \\(row 1, 2, 3, 4, 5, \\.\\.\\.\\)$",
  "ps_r_concordance", "ps_r_concordance(replace(as.character(lung_t), 3, 'ten'), lung_e, lp)", "^time must be numeric; 1 non-numeric value\\(s\\) \\(position 3\\)$",
  "ps_r_concordance", "ps_r_concordance(lung_t, lung_e, lp, timewt = 'uno')", "^timewt must be 'n', 'n/G2'",
  "ps_r_rmst", "ps_r_rmst(lung_t, lung_e, tau = 5000)", "^tau 5000 is at or beyond the last follow-up time \\(1022\\); the restricted mean is not estimable there$",
  "ps_r_rmst", "ps_r_rmst(lung_t, lung_e, tau = 1000, group = lung$sex)", "^tau 1000 is at or beyond the last follow-up time \\(965\\); the restricted mean is not estimable there$",
  "ps_r_rmst", "ps_r_rmst(t_neg, lung_e, tau = 500)", "^time has 1 negative time\\(s\\) \\(position 4\\)$",
  "ps_r_validate_lrm", "ps_r_validate_lrm(lung_na[, c('age', 'ph.ecog')], lung_e, B = 5)", "^column 'ph.ecog' has 1 missing/non-finite value\\(s\\) \\(row 14\\)$",
  "ps_r_validate_lrm", "ps_r_validate_lrm(pbc_x[, -1], rep(1, nrow(pbc_x)), B = 5)", "^y has only one class \\(1\\); a logistic model needs both 0 and 1$",
  "ps_r_validate_lrm", "ps_r_validate_lrm(pbc_x[, -1], pbc_x$status, B = 5)", "^y must be coded 0/1; 114 invalid value\\(s\\) \\(position 1, 3, 4, 6, 8, \\.\\.\\.\\)$",
  "ps_r_validate_lrm", "ps_r_validate_lrm(pbc_x[, -1], as.integer(pbc_x$status == 2), B = 5.5)", "^B must be a whole number >= 1, got 5.5$",
  "ps_r_val_prob", "ps_r_val_prob(y, p * 2)", "^prob must be probabilities in \\[0, 1\\]; 44 value\\(s\\) outside",
  "ps_r_val_prob", "ps_r_val_prob(y, round(p))", "^prob contains 0 or 1: logit-scale calibration needs probabilities strictly inside \\(0, 1\\)$",
  "ps_r_val_prob", "ps_r_val_prob(rep(1, 248), p)", "^y has only one class \\(1\\); calibration needs both 0 and 1$",
  "ps_r_val_prob", "ps_r_val_prob(y, rep(0.3, 248))", "^the predicted probabilities are constant",
  "ps_r_calibration_survival", "ps_r_calibration_survival(lung_t, lung_e, r365, times = 1500)", "^times 1500 is at or beyond the last follow-up time \\(1022\\); calibration is not estimable there$",
  "ps_r_calibration_survival", "ps_r_calibration_survival(lung_t, lung_e, r365 + 1, times = 365)", "^risk must be probabilities in \\[0, 1\\]",
  "ps_r_calibration_survival", "ps_r_calibration_survival(lung_t, cens, r365, times = 365)", "^event has no events \\(all censored\\); survival calibration is undefined$",
  "ps_r_calibration_survival", "ps_r_calibration_survival(lung_t, lung_e, r365, times = c(180, 365))", "^times must be one horizon, got 2$",
  "ps_r_calibration_survival", "ps_r_calibration_survival(lung_t, lung_e, r365, times = 365, ties = 'exact')", "^ties must be 'efron', 'breslow', got exact$",
  "ps_r_auc", "ps_r_auc(rep(1, 248), p)", "^y has only one class \\(1\\); the AUC needs both 0 and 1$",
  "ps_r_auc", "ps_r_auc(y, p_nan)", "^score has 1 missing/non-finite value\\(s\\) \\(position 2\\)$",
  "ps_r_roc_test", "ps_r_roc_test(y, p, p[-1])", "^score2 has length 247 but y has length 248$",
  "ps_r_km", "ps_r_km(lung_t, lung$status)", "^event must be coded 0 \\(censored\\) / 1 \\(event\\) but is coded 1/2 .*: pass event - 1$",
  "ps_r_km", "ps_r_km(lung_t, lung_e[-1])", "^event has length 227 but time has length 228$",
  "ps_r_km", "ps_r_km(lung_t, lung_e, group = lung$ph.ecog)", "^group has 1 missing value\\(s\\) \\(position 14\\)$",
  "ps_r_km", "ps_r_km(Surv(time, status) ~ sex, data = transform(lung, time = -time))", "^column 'time' has 228 negative time\\(s\\) \\(row 1, 2, 3, 4, 5, \\.\\.\\.\\)$",
  "ps_r_km", "ps_r_km(Surv(time, status) ~ sex)", "a formula needs 'data'",
  "ps_r_km", "ps_r_km(time ~ sex, data = lung)", "^the left-hand side must be Surv\\(time, status\\)",
  "ps_r_km", "ps_r_km(lung_t, lung_e, times = c(365, NA))", "^times must be finite times >= 0; got 365, NA$",
  "ps_r_logrank", "ps_r_logrank(lung_t, lung_e)", "^the log-rank test compares groups: give a group",
  "ps_r_logrank", "ps_r_logrank(Surv(time, status) ~ 1, data = lung)", "^the log-rank test compares groups",
  "ps_r_logrank", "ps_r_logrank(lung_t, lung_e, rep('a', 228))", "^group has 1 level\\(s\\) \\(a\\); at least 2 are needed$",
  "ps_r_logrank", "ps_r_logrank(lung_t, cens, lung$sex)", "^event has no events \\(all censored\\); the log-rank test is undefined$",
  "ps_r_cox", "ps_r_cox(Surv(time, status) ~ age + ph.ecog, data = lung)", "^column 'ph.ecog' has 1 missing/non-finite value\\(s\\) \\(row 14\\)$",
  "ps_r_cox", "ps_r_cox(lung[, c('age', 'sex')], lung_t, cens)", "^event has no events \\(all censored\\); a Cox model is undefined$",
  "ps_r_cox", "ps_r_cox(lung[1:100, c('age', 'sex')], lung_t, lung_e)", "^x has length 100 but time has length 228$",
  "ps_r_cox", "ps_r_cox(Surv(time, status) ~ age, data = lung, ties = 'efrom')", "^ties must be 'efron', 'breslow', 'exact', got efrom$",
  "ps_r_cox_zph", "ps_r_cox_zph(lung[, c('age', 'sex')], lung_t, cens)", "^event has no events \\(all censored\\); the PH test is undefined$",
  "ps_r_followup", "ps_r_followup(lung_t, rep(1, 228))", "^event has no censored patients; reverse-KM follow-up is undefined$",
  "ps_r_followup", "ps_r_followup(lung_t, lung_e, conf_level = 95)", "^conf_level must be in \\(0, 1\\), got 95$"
), ncol = 3, byrow = TRUE, dimnames = list(NULL, c("fn", "call", "message"))), stringsAsFactors = FALSE)

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

test_that("documented NAs and allowed edge cases, as the Python engine", {
  km <- ps_r_km(lung_t, cens)                      # no events: the curve stays at 1, the median is NA
  expect_true(is.na(km$summary$median))
  expect_true(all(km$curve$surv == 1))
  expect_equal(ps_r_km(lung_t, lung_e, times = 2000)$at_times$n_risk, 0)   # beyond follow-up: extended
  v <- veteran[veteran$trt == 1, ]                 # every patient dies: the KM reaches 0 at 553 days,
  expect_equal(ps_r_rmst(v$time, v$status, tau = 600)$estimate,       # so tau beyond it is allowed
               ps_r_rmst(v$time, v$status, tau = max(v$time))$estimate)
  short <- lung_t < 400                             # test-positives whose follow-up ends before 500 days
  nb <- ps_r_net_benefit(lung_e, ifelse(short, 0.9, 0.1), 0.5, time = lung_t, horizon = 500)
  expect_true(is.na(nb$net_benefit[nb$model == "model"]))
  expect_false(is.na(nb$net_benefit[nb$model == "all"]))
})

test_that("fitted models: NA rows in newdata are an error, never dropped", {
  g <- glm(status == 2 ~ age + ph.ecog, data = lung, family = binomial)
  expect_error(ps_r_val_prob(g, newdata = lung), "^prediction of the glm model has 1 missing/non-finite value\\(s\\) \\(row 14\\)$")
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
