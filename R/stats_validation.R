# R-native validation statistics for prime-stats: discrimination (pROC, survival::concordance,
# riskRegression::Score), overall performance (Brier, IPA, integrated Brier via pec), calibration
# (rms::val.prob; Cox on splines of cloglog risk) and decision curves (native net benefit).
# Every function checks its input with R/checks.R and returns a table with the columns of
# python/prime_stats/evaluation/*.py (metric, time, estimate, se, lower, upper, method, engine), so both
# engines compare one to one. Concordance, Score, calibration and net benefit also take a formula + data
# or a fitted coxph / glm / lrm model with new data.

.ps_val_row <- function(metric, estimate, se = NA_real_, lower = NA_real_, upper = NA_real_,
                        method = "", time = NA_real_, engine = "R") {
  data.frame(metric = metric, time = as.numeric(time), estimate = as.numeric(estimate),
             se = as.numeric(se), lower = as.numeric(lower), upper = as.numeric(upper),
             method = method, engine = engine, stringsAsFactors = FALSE)
}

# riskRegression and pec recognise the response by the unqualified names Surv()/Hist(), so the formula
# gets an environment in which both are bound (no library() calls needed)
.ps_val_surv_formula <- function() {
  fenv <- new.env()
  fenv$Surv <- survival::Surv
  fenv$Hist <- prodlim::Hist
  stats::as.formula("Surv(time, event) ~ 1", env = fenv)
}

.ps_val_need <- function(pkgs) {
  for (p in pkgs) if (!requireNamespace(p, quietly = TRUE)) .ps_fail("R package %s is required", p)
}

# A named list of models' predictions; fitted models are evaluated on `data` (`times` for coxph risks).
.ps_val_models <- function(models, arg, n, data = NULL, times = NULL) {
  if (!is.list(models) || is.data.frame(models) || !length(models) || is.null(names(models)) ||
      any(names(models) == "")) {
    .ps_fail("%s must be a named list of predictions or fitted models, e.g. list(cox = r)", arg)
  }
  lapply(stats::setNames(names(models), names(models)), function(nm) {
    m <- models[[nm]]
    if (!inherits(m, .ps_model_kinds)) return(m)
    if (is.null(data)) .ps_fail("%s$%s is a fitted model: give the outcome as a formula with data", arg, nm)
    e <- .ps_model_eval(m, data, times)
    if (is.null(times)) e$prob else e$risk
  })
}

.ps_auc_check <- function(y, score, name = "score") {
  y <- .ps_check_binary(y, "y", what = "the AUC")
  list(y = y, score = .ps_check_numeric(score, name, length(y), "y"))
}

ps_r_auc <- function(y, score, conf_level = 0.95) {
  .ps_val_need("pROC")
  d <- .ps_auc_check(y, score)
  r <- pROC::roc(response = d$y, predictor = d$score, levels = c(0, 1), direction = "<", quiet = TRUE)
  ci <- pROC::ci.auc(r, method = "delong", conf.level = .ps_check_level(conf_level))
  .ps_table(.ps_val_row("AUC", ci[2], sqrt(pROC::var(r, method = "delong")), ci[1], ci[3], "DeLong"), "ps_auc")
}

ps_r_roc_test <- function(y, score1, score2) {
  .ps_val_need("pROC")
  d <- .ps_auc_check(y, score1, "score1")
  s2 <- .ps_check_numeric(score2, "score2", length(d$y), "y")
  r1 <- pROC::roc(d$y, d$score, levels = c(0, 1), direction = "<", quiet = TRUE)
  r2 <- pROC::roc(d$y, s2, levels = c(0, 1), direction = "<", quiet = TRUE)
  tt <- pROC::roc.test(r1, r2, method = "delong", paired = TRUE)
  a <- as.numeric(tt$estimate)
  se <- sqrt(pROC::var(r1, method = "delong") + pROC::var(r2, method = "delong") -
               2 * pROC::cov(r1, r2, method = "delong"))
  out <- .ps_val_row("AUC difference", a[1] - a[2], se, a[1] - a[2] - stats::qnorm(0.975) * se,
                     a[1] - a[2] + stats::qnorm(0.975) * se, "DeLong paired test")
  out$auc1 <- a[1]; out$auc2 <- a[2]
  out$statistic <- as.numeric(tt$statistic); out$p_value <- tt$p.value
  .ps_table(out, "ps_roc_test")
}

# ---- concordance -----------------------------------------------------------------------------------

ps_r_concordance <- function(time, ...) UseMethod("ps_r_concordance")

ps_r_concordance.default <- function(time, event, risk, timewt = "n", conf_level = 0.95, reverse = TRUE, ...) {
  s <- .ps_check_surv(time, event, what = "the concordance index")
  .ps_concordance(s$time, s$event, .ps_check_numeric(risk, "risk", length(s$time), "time"), timewt,
                  conf_level, reverse)
}

ps_r_concordance.formula <- function(formula, data, timewt = "n", conf_level = 0.95, reverse = TRUE, ...) {
  o <- .ps_formula_outcome(formula, data, "the concordance", binary_ok = TRUE)
  if (o$type == "binary") {
    return(.ps_concordance_binary(o$y, .ps_formula_predictor(formula, data, length(o$y)), conf_level))
  }
  .ps_concordance(o$time, o$event, .ps_formula_predictor(formula, data, length(o$time)), timewt,
                  conf_level, reverse)
}

ps_r_concordance.coxph <- function(time, newdata = NULL, timewt = "n", conf_level = 0.95, ...) {
  e <- .ps_model_eval(time, .ps_model_data(time, newdata), what = "the concordance index")
  .ps_concordance(e$time, e$event, e$score, timewt, conf_level, reverse = TRUE)
}

ps_r_concordance.glm <- function(time, newdata = NULL, conf_level = 0.95, ...) {
  e <- .ps_model_eval(time, .ps_model_data(time, newdata), what = "the concordance index")
  .ps_concordance_binary(e$y, e$prob, conf_level)
}

ps_r_concordance.lrm <- ps_r_concordance.glm

.ps_concordance <- function(time, event, risk, timewt, conf_level, reverse) {
  timewt <- .ps_check_choice(timewt, "timewt", c("n", "n/G2", "S", "S/G", "n/G", "I"))
  z <- stats::qnorm(0.5 + .ps_check_level(conf_level) / 2)
  if (!is.logical(reverse) || length(reverse) != 1 || is.na(reverse)) .ps_fail("reverse must be TRUE or FALSE")
  d <- data.frame(time = time, event = event, risk = risk)
  cc <- survival::concordance(survival::Surv(time, event) ~ risk, data = d, reverse = reverse, timewt = timewt)
  se <- sqrt(cc$var)
  method <- switch(timewt, n = "Harrell", "n/G2" = "Uno (n/G2)", sprintf("timewt = %s", timewt))
  if (!reverse) method <- paste0(method, ", reverse = FALSE (higher = longer survival)")
  .ps_table(.ps_val_row("C-index", cc$concordance, se, cc$concordance - z * se, cc$concordance + z * se, method),
            "ps_concordance")
}

.ps_concordance_binary <- function(y, p, conf_level) {
  z <- stats::qnorm(0.5 + .ps_check_level(conf_level) / 2)
  y <- .ps_check_binary(y, "y", what = "the concordance index")
  cc <- survival::concordance(y ~ p)
  se <- sqrt(cc$var)
  .ps_table(.ps_val_row("C-index", cc$concordance, se, cc$concordance - z * se, cc$concordance + z * se,
                        "Harrell (binary outcome: equals the AUC)"), "ps_concordance")
}

# ---- Score: AUC, Brier, IPA ------------------------------------------------------------------------

# IPA = 1 - B/B0 with its se by the delta method on the joint influence functions of the model's and
# the null model's Brier scores, as the Python engine computes it: riskRegression::Score gives IPA
# without a CI, but it gives se(B), se(B0) and se(B - B0), hence cov(B, B0) and se(IPA).
.ps_ipa <- function(s, z) {
  b <- as.data.frame(s$Brier$score)
  null <- b[b$model == "Null model", ]
  ct <- as.data.frame(s$Brier$contrasts)
  ct <- ct[ct$reference == "Null model", ]
  b <- b[b$model != "Null model", ]
  key <- function(x) paste(x$model, if (is.null(x$times)) "" else x$times)
  b0 <- null[match(if (is.null(b$times)) rep(1, nrow(b)) else b$times,
                   if (is.null(null$times)) 1 else null$times), ]
  dd <- ct[match(key(b), key(ct)), ]
  v <- b$se^2; v0 <- b0$se^2
  cv <- (v + v0 - dd$se^2) / 2
  r <- b$Brier / b0$Brier
  se <- sqrt(pmax(v - 2 * r * cv + r^2 * v0, 0)) / b0$Brier
  ipa <- 1 - r
  list(brier = b, estimate = ipa, se = se, lower = ipa - z * se, upper = ipa + z * se)
}

ps_r_score_survival <- function(time, ...) UseMethod("ps_r_score_survival")

ps_r_score_survival.default <- function(time, event, risks, times, metrics = c("auc", "brier"),
                                        conf_level = 0.95, ...) {
  s <- .ps_check_surv(time, event, what = "scoring")
  .ps_score_survival(s$time, s$event, .ps_val_models(risks, "risks", length(s$time)), times, metrics, conf_level)
}

ps_r_score_survival.formula <- function(formula, data, risks, times, metrics = c("auc", "brier"),
                                        conf_level = 0.95, ...) {
  o <- .ps_formula_outcome(formula, data, "scoring")
  times <- .ps_check_times(times)
  .ps_check_horizon(times, o$time, what = "scoring")
  .ps_score_survival(o$time, o$event, .ps_val_models(risks, "risks", length(o$time), data, times), times,
                     metrics, conf_level)
}

ps_r_score_survival.coxph <- function(time, newdata = NULL, times, metrics = c("auc", "brier"),
                                      conf_level = 0.95, ...) {
  times <- .ps_check_times(times)
  e <- .ps_model_eval(time, .ps_model_data(time, newdata), times, "scoring")
  .ps_score_survival(e$time, e$event, list(coxph = e$risk), times, metrics, conf_level)
}

.ps_score_survival <- function(time, event, risks, times, metrics, conf_level) {
  .ps_val_need("riskRegression")
  times <- .ps_check_times(times)
  .ps_check_horizon(times, time, what = "scoring")
  if (!length(metrics) || !all(metrics %in% c("auc", "brier"))) .ps_fail("metrics must be a subset of 'auc', 'brier'")
  z <- stats::qnorm(0.5 + .ps_check_level(conf_level) / 2)
  # AUC(t) only ranks, so any risk score will do; the Brier score needs risks in [0, 1]
  mats <- lapply(names(risks), function(nm) .ps_check_risk_matrix(risks[[nm]], sprintf("risks$%s", nm),
                                                                    length(time), times,
                                                                    prob = "brier" %in% metrics))
  names(mats) <- names(risks)
  d <- data.frame(time = time, event = event)
  s <- riskRegression::Score(mats, formula = .ps_val_surv_formula(), data = d, times = times,
                             metrics = metrics, summary = if ("brier" %in% metrics) "ipa" else NULL,
                             null.model = "brier" %in% metrics, cens.model = "km",
                             conf.int = conf_level, se.fit = TRUE)
  out <- list()
  if ("auc" %in% metrics) {
    a <- as.data.frame(s$AUC$score)
    out$auc <- data.frame(model = as.character(a$model), metric = "AUC(t)", time = a$times,
                          estimate = a$AUC, se = a$se, lower = a$lower, upper = a$upper,
                          method = "IPCW cumulative/dynamic (KM censoring)", engine = "R",
                          stringsAsFactors = FALSE)
  }
  if ("brier" %in% metrics) {
    ipa <- .ps_ipa(s, z)
    b <- ipa$brier
    out$brier <- data.frame(model = as.character(b$model), metric = "Brier", time = b$times,
                            estimate = b$Brier, se = b$se, lower = b$lower, upper = b$upper,
                            method = "IPCW (KM censoring)", engine = "R", stringsAsFactors = FALSE)
    out$ipa <- data.frame(model = as.character(b$model), metric = "IPA", time = b$times,
                          estimate = ipa$estimate, se = ipa$se, lower = ipa$lower, upper = ipa$upper,
                          method = "1 - Brier/Brier(Kaplan-Meier)", engine = "R",
                          stringsAsFactors = FALSE)
  }
  .ps_table(do.call(rbind, out), "ps_score")
}

ps_r_score_binary <- function(y, ...) UseMethod("ps_r_score_binary")

ps_r_score_binary.default <- function(y, probs, conf_level = 0.95, ...) {
  y <- .ps_check_binary(y, "y", what = "scoring")
  .ps_score_binary(y, .ps_val_models(probs, "probs", length(y)), conf_level)
}

ps_r_score_binary.formula <- function(y, data, probs, conf_level = 0.95, ...) {
  o <- .ps_formula_outcome(y, data, "Score (AUC, Brier)", binary_ok = TRUE)
  if (o$type != "binary") .ps_fail("the left-hand side must be a 0/1 outcome; for Surv() use ps_r_score_survival")
  .ps_score_binary(o$y, .ps_val_models(probs, "probs", length(o$y), data), conf_level)
}

ps_r_score_binary.glm <- function(y, newdata = NULL, conf_level = 0.95, ...) {
  e <- .ps_model_eval(y, .ps_model_data(y, newdata), what = "scoring")
  .ps_score_binary(e$y, stats::setNames(list(e$prob), class(y)[1]), conf_level)
}

ps_r_score_binary.lrm <- ps_r_score_binary.glm

.ps_score_binary <- function(y, probs, conf_level) {
  .ps_val_need("riskRegression")
  y <- .ps_check_binary(y, "y", what = "scoring")
  z <- stats::qnorm(0.5 + .ps_check_level(conf_level) / 2)
  probs <- lapply(stats::setNames(names(probs), names(probs)),
                  function(nm) .ps_check_prob(probs[[nm]], sprintf("probs$%s", nm), length(y), "y"))
  d <- data.frame(y = y)
  s <- riskRegression::Score(probs, formula = y ~ 1, data = d, metrics = c("auc", "brier"),
                             summary = "ipa", conf.int = conf_level)
  a <- as.data.frame(s$AUC$score)
  ipa <- .ps_ipa(s, z)
  b <- ipa$brier
  res <- rbind(
    data.frame(model = as.character(a$model), metric = "AUC", estimate = a$AUC, se = a$se,
               lower = a$lower, upper = a$upper, method = "DeLong", stringsAsFactors = FALSE),
    data.frame(model = as.character(b$model), metric = "Brier", estimate = b$Brier, se = b$se,
               lower = b$lower, upper = b$upper, method = "mean squared error", stringsAsFactors = FALSE),
    data.frame(model = as.character(b$model), metric = "IPA", estimate = ipa$estimate, se = ipa$se,
               lower = ipa$lower, upper = ipa$upper, method = "1 - Brier/Brier(prevalence)",
               stringsAsFactors = FALSE))
  res$time <- NA_real_; res$engine <- "R"
  .ps_table(res, "ps_score")
}

ps_r_ibs <- function(time, event, risk, times) {
  .ps_val_need("pec")
  s <- .ps_check_surv(time, event, what = "the integrated Brier score")
  times <- .ps_check_times(times, min_n = 2L)
  .ps_check_horizon(times, s$time, what = "the integrated Brier score")
  S <- 1 - .ps_check_risk_matrix(risk, "risk", length(s$time), times)
  d <- data.frame(time = s$time, event = s$event)
  pe <- pec::pec(list(m = S), formula = .ps_val_surv_formula(), data = d, times = times,
                 exact = FALSE, cens.model = "marginal", reference = FALSE, verbose = FALSE,
                 start = times[1], maxtime = max(times))
  ibs <- pec::crps(pe, models = "m", times = max(times), start = times[1])
  .ps_table(.ps_val_row("IBS", as.numeric(ibs[1]), method = sprintf("pec::crps over [%g, %g]", times[1], max(times)),
                        time = max(times)), "ps_ibs")
}

# ---- calibration -----------------------------------------------------------------------------------

ps_r_val_prob <- function(y, ...) UseMethod("ps_r_val_prob")

ps_r_val_prob.default <- function(y, prob, conf_level = 0.95, ...) {
  y <- .ps_check_binary(y, "y", what = "calibration")
  .ps_val_prob(y, .ps_check_prob(prob, "prob", length(y), "y", open_for = "logit-scale calibration"), conf_level)
}

ps_r_val_prob.glm <- function(y, newdata = NULL, conf_level = 0.95, ...) {
  e <- .ps_model_eval(y, .ps_model_data(y, newdata), what = "calibration")
  .ps_val_prob(e$y, .ps_check_prob(e$prob, sprintf("prediction of the %s model", class(y)[1]),
                                   open_for = "logit-scale calibration"), conf_level)
}

ps_r_val_prob.lrm <- ps_r_val_prob.glm

.ps_val_prob <- function(y, p, conf_level) {
  .ps_val_need("rms")
  y <- .ps_check_binary(y, "y", what = "calibration")
  if (length(unique(p)) < 2) .ps_fail("the predicted probabilities are constant: calibration slope and curves are undefined")
  z <- stats::qnorm(0.5 + .ps_check_level(conf_level) / 2)
  v <- rms::val.prob(p, y, pl = FALSE)
  lp <- stats::qlogis(p)
  citl <- stats::glm(y ~ 1, offset = lp, family = stats::binomial())
  recal <- stats::glm(y ~ lp, family = stats::binomial())
  cs <- summary(recal)$coefficients
  ci <- stats::coef(citl)[1]; ci_se <- sqrt(stats::vcov(citl)[1, 1])
  sm <- stats::lowess(p, y, iter = 0)
  cal <- stats::approx(sm, xout = p, ties = mean)$y
  err <- abs(p - cal)
  .ps_table(rbind(
    .ps_val_row("CITL", ci, ci_se, ci - z * ci_se, ci + z * ci_se, "logistic recalibration"),
    .ps_val_row("intercept", v[["Intercept"]], cs[1, 2], v[["Intercept"]] - z * cs[1, 2],
                v[["Intercept"]] + z * cs[1, 2], "logistic recalibration"),
    .ps_val_row("slope", v[["Slope"]], cs[2, 2], v[["Slope"]] - z * cs[2, 2], v[["Slope"]] + z * cs[2, 2],
                "logistic recalibration"),
    .ps_val_row("Eavg", v[["Eavg"]], method = "lowess (iter=0)"),
    .ps_val_row("E50", stats::median(err), method = "lowess (iter=0)"),
    .ps_val_row("E90", v[["E90"]], method = "lowess (iter=0)"),
    .ps_val_row("Emax", v[["Emax"]], method = "lowess (iter=0)"),
    .ps_val_row("O/E", mean(y) / mean(p), method = "mean(y)/mean(p)")),
    "ps_calibration", curve = data.frame(predicted = sm$x, observed = sm$y), predictions = p)
}

ps_r_calibration_survival <- function(time, ...) UseMethod("ps_r_calibration_survival")

ps_r_calibration_survival.default <- function(time, event, risk, times, nk = 3, conf_level = 0.95,
                                              ties = "efron", ...) {
  s <- .ps_check_surv(time, event, what = "survival calibration")
  .ps_calibration_survival(s$time, s$event, risk, times, nk, conf_level, ties)
}

ps_r_calibration_survival.coxph <- function(time, newdata = NULL, times, nk = 3, conf_level = 0.95,
                                            ties = "efron", ...) {
  times <- .ps_check_times(times)
  e <- .ps_model_eval(time, .ps_model_data(time, newdata), times, "calibration")
  .ps_calibration_survival(e$time, e$event, e$risk[, 1], times, nk, conf_level, ties)
}

.ps_calibration_survival <- function(time, event, risk, times, nk, conf_level, ties) {
  .ps_val_need("Hmisc")
  ties <- .ps_check_choice(ties, "ties", c("efron", "breslow"))
  t <- .ps_check_times(times)
  if (length(t) != 1) .ps_fail("times must be one horizon, got %d", length(t))
  .ps_check_horizon(t, time, what = "calibration")
  F <- .ps_check_prob(risk, "risk", length(time), "time", open_for = "cloglog calibration")
  if (length(unique(F)) < 3) .ps_fail("risk has fewer than 3 distinct values: flexible calibration is undefined")
  nk <- .ps_check_whole(nk, "nk", min = 3)
  z <- stats::qnorm(0.5 + .ps_check_level(conf_level) / 2)
  d <- data.frame(time = time, event = event, cll = log(-log1p(-F)))
  km <- summary(survival::survfit(survival::Surv(time, event) ~ 1, data = d), times = t)
  O <- 1 - km$surv; E <- mean(F)
  se_log <- km$std.err / O
  fs <- survival::coxph(survival::Surv(time, event) ~ cll, data = d, ties = ties)
  se_s <- sqrt(stats::vcov(fs)[1, 1])
  B <- Hmisc::rcspline.eval(d$cll, nk = nk, inclx = TRUE)
  fit <- survival::coxph(survival::Surv(d$time, d$event) ~ B, ties = "breslow")
  bh <- survival::basehaz(fit, centered = FALSE)
  H0 <- if (any(bh$time <= t)) max(bh$hazard[bh$time <= t]) else 0
  obs <- 1 - exp(-H0 * exp(as.numeric(B %*% stats::coef(fit))))
  err <- abs(F - obs)
  smooth <- sprintf("Cox on RCS(%d) of cloglog(F)", nk)
  o <- order(F)
  .ps_table(rbind(
    .ps_val_row("O/E", O / E, se_log, O / E * exp(-z * se_log), O / E * exp(z * se_log),
                "1-KM(t) / mean predicted risk", t),
    .ps_val_row("slope", stats::coef(fs)[1], se_s, stats::coef(fs)[1] - z * se_s, stats::coef(fs)[1] + z * se_s,
                sprintf("Cox on cloglog(F), %s ties", if (ties == "efron") "Efron" else "Breslow"), t),
    .ps_val_row("ICI", mean(err), method = smooth, time = t),
    .ps_val_row("E50", stats::median(err), method = smooth, time = t),
    .ps_val_row("E90", stats::quantile(err, 0.9, names = FALSE), method = smooth, time = t),
    .ps_val_row("Emax", max(err), method = smooth, time = t)),
    "ps_calibration", curve = data.frame(predicted = F[o], observed = obs[o]), predictions = F)
}

# ---- decision curves -------------------------------------------------------------------------------

ps_r_net_benefit <- function(y, ...) UseMethod("ps_r_net_benefit")

ps_r_net_benefit.default <- function(y, prob, thresholds, time = NULL, horizon = NULL, ...) {
  if (is.null(time)) {
    y <- .ps_check_binary(y, "y", what = "net benefit")
    return(.ps_net_benefit(y, .ps_check_prob(prob, "prob", length(y), "y"), thresholds))
  }
  s <- .ps_check_surv(time, y, "time", "y", what = "net benefit")
  .ps_net_benefit(s$event, .ps_check_prob(prob, "prob", length(s$time), "time"), thresholds, s$time, horizon)
}

ps_r_net_benefit.glm <- function(y, newdata = NULL, thresholds, ...) {
  e <- .ps_model_eval(y, .ps_model_data(y, newdata), what = "net benefit")
  .ps_net_benefit(e$y, e$prob, thresholds)
}

ps_r_net_benefit.lrm <- ps_r_net_benefit.glm

ps_r_net_benefit.coxph <- function(y, newdata = NULL, thresholds, horizon, ...) {
  horizon <- .ps_check_times(horizon, "horizon")
  e <- .ps_model_eval(y, .ps_model_data(y, newdata), horizon, "net benefit")
  .ps_net_benefit(e$event, e$risk[, 1], thresholds, e$time, horizon)
}

.ps_net_benefit <- function(y, p, thresholds, time = NULL, horizon = NULL) {
  thresholds <- .ps_check_numeric(thresholds, "thresholds")
  if (any(thresholds < 0 | thresholds >= 1)) .ps_fail("thresholds must lie in [0, 1)")
  n <- length(y)
  if (is.null(time)) {
    risk_among <- function(sel) if (any(sel)) mean(y[sel]) else 0
  } else {
    if (is.null(horizon)) .ps_fail("a survival outcome needs horizon (the time at which risks are predicted)")
    horizon <- .ps_check_times(horizon, "horizon")
    if (length(horizon) != 1) .ps_fail("horizon must be one time, got %d", length(horizon))
    .ps_check_horizon(horizon, time, "horizon", "net benefit", inclusive = TRUE)
    # the event risk by the horizon among `sel`: 1 - KM(horizon); NA when their follow-up ends before
    # the horizon (as dcurves and the Python engine), 0 for an empty group
    risk_among <- function(sel) {
      if (!any(sel)) return(0)
      if (max(time[sel]) < horizon) return(NA_real_)
      1 - summary(survival::survfit(survival::Surv(time[sel], y[sel]) ~ 1), times = horizon, extend = TRUE)$surv
    }
  }
  prev <- risk_among(rep(TRUE, n))
  rows <- lapply(thresholds, function(pt) {
    pos <- p >= pt & p > 0
    r <- risk_among(pos)
    data.frame(threshold = pt, model = c("model", "all", "none"), test_pos_rate = c(mean(pos), 1, 0),
               tp_rate = c(r * mean(pos), prev, 0), fp_rate = c((1 - r) * mean(pos), 1 - prev, 0),
               stringsAsFactors = FALSE)
  })
  res <- do.call(rbind, rows)
  odds <- res$threshold / (1 - res$threshold)
  res$net_benefit <- res$tp_rate - odds * res$fp_rate
  nb_all <- res$net_benefit[res$model == "all"][match(res$threshold, thresholds)]
  res$interventions_avoided <- ifelse(res$threshold > 0, (res$net_benefit - nb_all) / odds, NA_real_)
  res$engine <- "R"
  .ps_table(res, "ps_net_benefit", horizon = horizon, hidden = c("test_pos_rate", "tp_rate", "fp_rate"))
}
