# R-native survival analysis and internal validation for prime-stats. Each function checks its input
# with R/checks.R and returns a result of R/results.R whose columns are those of the Python functions in
# python/prime_stats/evaluation/survival.py and resampling.py, so that rbridge.call_r() results and
# the Python engine compare one to one. KM, log-rank and Cox take a formula + data or vectors.

# survival's strata labels without the "grp=" prefix of the internal grouping variable
.ps_strata <- function(strata) sub("^grp=", "", as.character(strata))

# a model formula whose environment finds Surv() without library(survival)
.ps_with_surv <- function(formula) {
  env <- new.env(parent = environment(formula))
  env$Surv <- survival::Surv
  environment(formula) <- env
  formula
}

ps_r_km <- function(time, ...) UseMethod("ps_r_km")

ps_r_km.formula <- function(formula, data, times = NULL, conf_type = "log", conf_level = 0.95, ...) {
  o <- .ps_formula_outcome(formula, data)
  .ps_km(o$time, o$event, .ps_formula_group(formula, data, length(o$time)), times, conf_type, conf_level)
}

ps_r_km.default <- function(time, event, group = NULL, times = NULL, conf_type = "log", conf_level = 0.95, ...) {
  s <- .ps_check_surv(time, event)
  g <- if (is.null(group)) NULL else .ps_check_group(group, "group", length(s$time))
  .ps_km(s$time, s$event, g, times, conf_type, conf_level)
}

.ps_km <- function(time, event, grp, times, conf_type, conf_level) {
  conf_type <- .ps_check_choice(conf_type, "conf_type", c("log", "log-log", "plain"))
  conf_level <- .ps_check_level(conf_level)
  if (is.null(grp)) grp <- factor(rep("all", length(time)))
  fit <- survival::survfit(survival::Surv(time, event) ~ grp, conf.type = conf_type, conf.int = conf_level)
  label <- function(x, n) if (is.null(x$strata)) rep(levels(grp)[1], n) else .ps_strata(x$strata)
  curve <- data.frame(group = if (is.null(fit$strata)) levels(grp)[1] else .ps_strata(rep(names(fit$strata), fit$strata)),
                      time = fit$time, n_risk = fit$n.risk, n_event = fit$n.event, n_censor = fit$n.censor,
                      surv = fit$surv, std_err = fit$surv * fit$std.err, lower = fit$lower, upper = fit$upper,
                      stringsAsFactors = FALSE)
  at <- NULL
  if (!is.null(times) && length(times)) {
    s <- summary(fit, times = .ps_check_times(sort(times, na.last = TRUE)), extend = TRUE)
    at <- data.frame(group = label(s, length(s$time)), time = s$time, n_risk = s$n.risk, n_event = s$n.event,
                     n_censor = s$n.censor, surv = s$surv, std_err = s$std.err, lower = s$lower,
                     upper = s$upper, stringsAsFactors = FALSE)
  }
  tab <- summary(fit)$table
  if (is.null(dim(tab))) tab <- matrix(tab, nrow = 1, dimnames = list(NULL, names(tab)))
  summ <- data.frame(group = levels(grp), n = tab[, "records"], events = tab[, "events"],
                     median = tab[, "median"], lower = tab[, grep("LCL$", colnames(tab))],
                     upper = tab[, grep("UCL$", colnames(tab))], stringsAsFactors = FALSE, row.names = NULL)
  method <- sprintf("Kaplan-Meier, Greenwood variance, %s CI (%.0f%%)", conf_type, 100 * conf_level)
  curve$method <- method
  summ$method <- method
  if (!is.null(at)) at$method <- method
  structure(list(curve = curve, at_times = at, summary = summ), class = "ps_km", survfit = fit,
            conf_level = conf_level)
}

ps_r_logrank <- function(time, ...) UseMethod("ps_r_logrank")

ps_r_logrank.formula <- function(formula, data, ...) {
  o <- .ps_formula_outcome(formula, data, "the log-rank test")
  .ps_logrank(o$time, o$event, .ps_formula_group(formula, data, length(o$time)),
              if (length(formula[[3]]) == 1) sprintf("column '%s'", deparse(formula[[3]])) else "group")
}

ps_r_logrank.default <- function(time, event, group = NULL, ...) {
  s <- .ps_check_surv(time, event, what = "the log-rank test")
  g <- if (is.null(group)) NULL else .ps_check_group(group, "group", length(s$time))
  .ps_logrank(s$time, s$event, g, "group")
}

.ps_logrank <- function(time, event, grp, name) {
  if (is.null(grp)) {
    .ps_fail("the log-rank test compares groups: give a group (Surv(time, status) ~ group, or group =); for one curve use ps_r_km")
  }
  if (nlevels(grp) < 2) {
    .ps_fail("%s has 1 level(s) (%s); at least 2 are needed", name, levels(grp))
  }
  sd <- survival::survdiff(survival::Surv(time, event) ~ grp)
  df <- length(sd$n) - 1L
  .ps_table(data.frame(group = levels(grp), n = as.numeric(sd$n), observed = sd$obs, expected = sd$exp,
                       oe2_e = (sd$obs - sd$exp)^2 / sd$exp, oe2_v = (sd$obs - sd$exp)^2 / diag(sd$var),
                       statistic = sd$chisq, df = df, p = stats::pchisq(sd$chisq, df, lower.tail = FALSE),
                       method = "log-rank test (survdiff, rho=0)", stringsAsFactors = FALSE),
            "ps_logrank")
}

ps_r_cox <- function(x, ...) UseMethod("ps_r_cox")

ps_r_cox.formula <- function(x, data, conf_level = 0.95, ties = "efron", ...) {
  o <- .ps_formula_outcome(x, data, "a Cox model")
  rhs <- .ps_formula_rhs(x, data)
  if (is.null(rhs)) .ps_fail("the formula has no covariates: a Cox model needs at least one")
  .ps_check_covariates(rhs, length(o$time), "the outcome")
  ties <- .ps_check_choice(ties, "ties", c("efron", "breslow", "exact"))
  fit <- survival::coxph(.ps_with_surv(x), data = data, ties = ties)
  .ps_cox_table(fit, conf_level)
}

ps_r_cox.coxph <- function(x, conf_level = 0.95, ...) .ps_cox_table(x, conf_level)

ps_r_cox.default <- function(x, time, event, conf_level = 0.95, ties = "efron", ...) {
  s <- .ps_check_surv(time, event, what = "a Cox model")
  x <- .ps_check_covariates(x, length(s$time))
  ties <- .ps_check_choice(ties, "ties", c("efron", "breslow", "exact"))
  time <- s$time; event <- s$event
  fit <- survival::coxph(survival::Surv(time, event) ~ ., data = x, ties = ties)
  .ps_cox_table(fit, conf_level)
}

.ps_cox_table <- function(fit, conf_level) {
  z <- stats::qnorm(0.5 + .ps_check_level(conf_level) / 2)
  b <- stats::coef(fit)
  se <- sqrt(diag(stats::vcov(fit)))
  .ps_table(data.frame(term = names(b), estimate = exp(b), lower = exp(b - z * se), upper = exp(b + z * se),
                       coef = b, se = se, z = b / se, p = 2 * stats::pnorm(-abs(b / se)), n = fit$n,
                       events = fit$nevent, stringsAsFactors = FALSE),
            "ps_cox", loglik = fit$loglik, coxph = fit,
            title = sprintf("Cox model: hazard ratios (estimate) with %.0f%% Wald CI, %s ties; %d patients, %d events",
                            100 * conf_level, fit$method, fit$n, fit$nevent))
}

ps_r_cox_zph <- function(x, time, event, terms = colnames(x), transform = "km") {
  s <- .ps_check_surv(time, event, what = "the PH test")
  x <- as.matrix(.ps_check_covariates(x, length(s$time)))
  if (length(terms) != ncol(x)) .ps_stop("length", "terms", length(terms), "the columns of x", ncol(x))
  transform <- .ps_check_choice(transform, "transform", c("km", "identity", "log", "rank"))
  time <- s$time; event <- s$event
  fit <- survival::coxph(survival::Surv(time, event) ~ x, ties = "efron")
  fit$assign <- split(seq_along(terms), factor(terms, levels = unique(terms)))
  tab <- survival::cox.zph(fit, transform = transform)$table
  .ps_table(data.frame(term = rownames(tab), statistic = tab[, "chisq"], df = tab[, "df"], p = tab[, "p"],
                       stringsAsFactors = FALSE), "ps_cox_zph")
}

ps_r_followup <- function(time, event, conf_level = 0.95) {
  s <- .ps_check_surv(time, event, censored_for = "reverse-KM follow-up")
  conf_level <- .ps_check_level(conf_level)
  fit <- survival::survfit(survival::Surv(s$time, 1 - s$event) ~ 1, conf.int = conf_level)
  tab <- summary(fit)$table
  .ps_table(data.frame(statistic = "median follow-up", estimate = unname(tab["median"]),
                       lower = unname(tab[grep("LCL$", names(tab))]), upper = unname(tab[grep("UCL$", names(tab))]),
                       n = length(s$time), censored = sum(s$event == 0), method = "reverse Kaplan-Meier, log CI",
                       stringsAsFactors = FALSE), "ps_followup")
}

ps_r_rmst <- function(time, event, tau, group = NULL, conf_level = 0.95) {
  s <- .ps_check_surv(time, event)
  grp <- if (is.null(group)) factor(rep("all", length(s$time))) else .ps_check_group(group, "group", length(s$time))
  tau <- .ps_check_times(tau, "tau")
  if (length(tau) != 1) .ps_fail("tau must be one time, got %d", length(tau))
  # beyond a group's last follow-up the curve is unknown, unless it has already reached 0
  for (g in levels(grp)) {
    in_g <- grp == g
    km0 <- any(survival::survfit(survival::Surv(s$time[in_g], s$event[in_g]) ~ 1)$surv == 0)
    if (!km0) .ps_check_horizon(tau, s$time[in_g], "tau", "the restricted mean", inclusive = TRUE)
  }
  z <- stats::qnorm(0.5 + .ps_check_level(conf_level) / 2)
  time <- s$time; event <- s$event
  tab <- summary(survival::survfit(survival::Surv(time, event) ~ grp), rmean = tau)$table
  if (is.null(dim(tab))) tab <- matrix(tab, nrow = 1, dimnames = list(NULL, names(tab)))
  est <- tab[, "rmean"]
  se <- tab[, "se(rmean)"]
  .ps_table(data.frame(group = levels(grp), tau = tau, estimate = est, se = se, lower = est - z * se,
                       upper = est + z * se, stringsAsFactors = FALSE), "ps_rmst")
}

ps_r_validate_lrm <- function(x, y, B = 200, seed = 1) {
  y <- .ps_check_binary(y, "y", what = "a logistic model")
  x <- .ps_check_covariates(x, length(y), "y")
  B <- .ps_check_whole(B, "B")
  seed <- .ps_check_whole(seed, "seed", min = -.Machine$integer.max)
  d <- cbind(x, .y = y)
  form <- stats::as.formula(paste(".y ~", paste(sprintf("`%s`", colnames(x)), collapse = " + ")))
  fit <- rms::lrm(form, data = d, x = TRUE, y = TRUE)
  set.seed(seed)
  v <- rms::validate(fit, method = "boot", B = B)
  keep <- c("Dxy", "R2", "Intercept", "Slope", "B")
  out <- data.frame(metric = keep, apparent = v[keep, "index.orig"], optimism = v[keep, "optimism"],
                    corrected = v[keep, "index.corrected"], B = v[keep, "n"],
                    stringsAsFactors = FALSE, row.names = NULL)
  out$metric[out$metric == "B"] <- "Brier"
  auc <- out[out$metric == "Dxy", ]
  auc$metric <- "AUC"
  auc[, c("apparent", "corrected")] <- (auc[, c("apparent", "corrected")] + 1) / 2
  auc$optimism <- auc$optimism / 2
  .ps_table(rbind(out, auc), "ps_validate_lrm",
            title = sprintf("Bootstrap optimism correction of a logistic model (rms::validate, B = %d)", B))
}
