# R-native survival analysis and internal validation for prime-stats.
# Each function returns a data.frame (or a named list of data.frames) with the same column names as
# the Python functions in python/prime_stats/evaluation/survival.py and resampling.py, so that
# rbridge.call_r() results and the Python engine can be compared one to one.

.ps_surv_check <- function(time, event) {
  if (length(time) != length(event)) stop("time and event must have the same length")
  if (any(!is.finite(time))) stop("time has missing or infinite values")
  if (any(time < 0)) stop("time has negative values")
  if (!all(event %in% c(0, 1))) stop("event must be coded 0 (censored) / 1 (event)")
  invisible(TRUE)
}

#' Kaplan-Meier estimates with numbers at risk (survival::survfit)
#'
#' @param time follow-up times.
#' @param event 0/1 event indicator.
#' @param group optional grouping vector (character or factor).
#' @param times optional times for the at-risk table (\code{summary(fit, times=, extend=TRUE)}).
#' @param conf_type \code{"log"} (survfit default), \code{"log-log"} or \code{"plain"}.
#' @param conf_level confidence level.
#' @return list of data.frames \code{curve}, \code{at_times} and \code{summary} (median with CI).
#' @examples
#' d <- survival::lung
#' ps_r_km(d$time, d$status - 1, d$sex, times = c(180, 365))$at_times
ps_r_km <- function(time, event, group = NULL, times = NULL, conf_type = "log", conf_level = 0.95) {
  .ps_surv_check(time, event)
  grp <- if (is.null(group)) factor(rep("0", length(time))) else factor(group)
  fit <- survival::survfit(survival::Surv(time, event) ~ grp, conf.type = conf_type,
                           conf.int = conf_level)
  strata_of <- function(x) {
    if (is.null(x$strata)) return(rep(levels(grp)[1], length(x$time)))
    sub("^grp=", "", rep(names(x$strata), x$strata))
  }
  curve <- data.frame(group = strata_of(fit), time = fit$time, n_risk = fit$n.risk,
                      n_event = fit$n.event, n_censor = fit$n.censor, surv = fit$surv,
                      std_err = fit$surv * fit$std.err, lower = fit$lower, upper = fit$upper,
                      stringsAsFactors = FALSE)
  at <- NULL
  if (!is.null(times) && length(times)) {
    s <- summary(fit, times = sort(times), extend = TRUE)
    sg <- if (is.null(s$strata)) rep(levels(grp)[1], length(s$time)) else sub("^grp=", "", as.character(s$strata))
    cum_events <- mapply(function(g, t) sum(event[grp == g & time <= t]), sg, s$time)
    at <- data.frame(group = sg, time = s$time, n_risk = s$n.risk, n_event = cum_events,
                     surv = s$surv, std_err = s$std.err, lower = s$lower, upper = s$upper,
                     stringsAsFactors = FALSE)
  }
  tab <- summary(fit)$table
  if (is.null(dim(tab))) tab <- matrix(tab, nrow = 1, dimnames = list(NULL, names(tab)))
  lcl <- grep("LCL$", colnames(tab))
  ucl <- grep("UCL$", colnames(tab))
  summ <- data.frame(group = levels(grp)[table(grp) > 0], n = tab[, "records"], events = tab[, "events"],
                     median = tab[, "median"], lower = tab[, lcl], upper = tab[, ucl],
                     stringsAsFactors = FALSE, row.names = NULL)
  method <- sprintf("Kaplan-Meier, Greenwood variance, %s CI (%.0f%%)", conf_type, 100 * conf_level)
  curve$method <- method
  summ$method <- method
  if (!is.null(at)) at$method <- method
  list(curve = curve, at_times = at, summary = summ)
}

#' Log-rank test (survival::survdiff, rho = 0)
#'
#' @inheritParams ps_r_km
#' @return data.frame: group, n, observed, expected, oe2_e, oe2_v, statistic, df, p, method.
#' @examples
#' ps_r_logrank(survival::lung$time, survival::lung$status - 1, survival::lung$sex)
ps_r_logrank <- function(time, event, group) {
  .ps_surv_check(time, event)
  grp <- factor(group)
  sd <- survival::survdiff(survival::Surv(time, event) ~ grp)
  df <- length(sd$n) - 1L
  data.frame(group = levels(grp)[table(grp) > 0], n = as.numeric(sd$n), observed = sd$obs,
             expected = sd$exp, oe2_e = (sd$obs - sd$exp)^2 / sd$exp,
             oe2_v = (sd$obs - sd$exp)^2 / diag(sd$var), statistic = sd$chisq, df = df,
             p = stats::pchisq(sd$chisq, df, lower.tail = FALSE),
             method = "log-rank test (survdiff, rho=0)", stringsAsFactors = FALSE, row.names = NULL)
}

#' Cox proportional-hazards hazard ratios (survival::coxph, Efron ties, Wald CI)
#'
#' @param x data.frame of numeric covariates (dummy-coded already).
#' @inheritParams ps_r_km
#' @return data.frame: term, estimate (HR), lower, upper, coef, se, z, p, n, events.
#' @examples
#' d <- na.omit(survival::lung[, c("time", "status", "age", "sex")])
#' ps_r_cox(d[, c("age", "sex")], d$time, d$status - 1)
ps_r_cox <- function(x, time, event, conf_level = 0.95) {
  .ps_surv_check(time, event)
  x <- as.data.frame(x)
  fit <- survival::coxph(survival::Surv(time, event) ~ ., data = x, ties = "efron")
  b <- stats::coef(fit)
  se <- sqrt(diag(stats::vcov(fit)))
  z <- stats::qnorm(0.5 + conf_level / 2)
  out <- data.frame(term = names(b), estimate = exp(b), lower = exp(b - z * se),
                    upper = exp(b + z * se), coef = b, se = se, z = b / se,
                    p = 2 * stats::pnorm(-abs(b / se)), n = fit$n, events = fit$nevent,
                    stringsAsFactors = FALSE, row.names = NULL)
  attr(out, "loglik") <- fit$loglik
  out
}

#' Proportional-hazards test (survival::cox.zph)
#'
#' @inheritParams ps_r_cox
#' @param terms term name of each column of \code{x} (columns of one categorical covariate share a
#'   name and are tested together).
#' @param transform time transform: "km" (default), "identity", "log" or "rank".
#' @return data.frame: term, statistic (chi-square), df, p; the last row is GLOBAL.
#' @examples
#' d <- na.omit(survival::lung[, c("time", "status", "age", "sex")])
#' ps_r_cox_zph(d[, c("age", "sex")], d$time, d$status - 1)
ps_r_cox_zph <- function(x, time, event, terms = colnames(x), transform = "km") {
  .ps_surv_check(time, event)
  x <- as.matrix(x)
  fit <- survival::coxph(survival::Surv(time, event) ~ x, ties = "efron")
  fit$assign <- split(seq_along(terms), factor(terms, levels = unique(terms)))
  z <- survival::cox.zph(fit, transform = transform)
  tab <- z$table
  data.frame(term = rownames(tab), statistic = tab[, "chisq"], df = tab[, "df"], p = tab[, "p"],
             stringsAsFactors = FALSE, row.names = NULL)
}

#' Reverse Kaplan-Meier median follow-up
#'
#' @inheritParams ps_r_km
#' @return data.frame: statistic, estimate, lower, upper, n, censored, method.
#' @examples
#' ps_r_followup(survival::lung$time, survival::lung$status - 1)
ps_r_followup <- function(time, event, conf_level = 0.95) {
  .ps_surv_check(time, event)
  fit <- survival::survfit(survival::Surv(time, 1 - event) ~ 1, conf.int = conf_level)
  tab <- summary(fit)$table
  data.frame(statistic = "median follow-up", estimate = unname(tab["median"]),
             lower = unname(tab[grep("LCL$", names(tab))]), upper = unname(tab[grep("UCL$", names(tab))]),
             n = length(time), censored = sum(event == 0), method = "reverse Kaplan-Meier, log CI",
             stringsAsFactors = FALSE)
}

#' Restricted mean survival time (print.survfit(rmean = tau))
#'
#' @inheritParams ps_r_km
#' @param tau restriction time.
#' @return data.frame: group, tau, estimate, se, lower, upper.
#' @examples
#' ps_r_rmst(survival::lung$time, survival::lung$status - 1, 500, survival::lung$sex)
ps_r_rmst <- function(time, event, tau, group = NULL, conf_level = 0.95) {
  .ps_surv_check(time, event)
  grp <- if (is.null(group)) factor(rep("0", length(time))) else factor(group)
  fit <- survival::survfit(survival::Surv(time, event) ~ grp)
  tab <- summary(fit, rmean = tau)$table
  if (is.null(dim(tab))) tab <- matrix(tab, nrow = 1, dimnames = list(NULL, names(tab)))
  z <- stats::qnorm(0.5 + conf_level / 2)
  est <- tab[, "rmean"]
  se <- tab[, "se(rmean)"]
  data.frame(group = levels(grp)[table(grp) > 0], tau = tau, estimate = est, se = se,
             lower = est - z * se, upper = est + z * se, row.names = NULL, stringsAsFactors = FALSE)
}

#' Bootstrap optimism-corrected performance of a logistic model (rms::validate on rms::lrm)
#'
#' @param x data.frame of predictors (no selection: every column enters the model).
#' @param y 0/1 outcome.
#' @param B number of bootstrap repetitions.
#' @param seed random seed.
#' @return data.frame: metric, apparent, optimism, corrected, B (Dxy, AUC = (Dxy + 1) / 2, R2,
#'   Intercept, Slope, Brier).
#' @examples
#' \donttest{
#' d <- na.omit(survival::pbc[, c("status", "age", "bili", "albumin")])
#' ps_r_validate_lrm(d[, -1], as.integer(d$status == 2), B = 50)
#' }
ps_r_validate_lrm <- function(x, y, B = 200, seed = 1) {
  if (!all(y %in% c(0, 1))) stop("y must be coded 0/1")
  x <- as.data.frame(x)
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
  rbind(out, auc)
}
