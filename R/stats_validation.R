# R-native validation statistics for prime-stats: discrimination (pROC, survival::concordance,
# riskRegression::Score), overall performance (Brier, IPA, integrated Brier via pec), calibration
# (rms::val.prob; Cox on splines of cloglog risk) and decision curves (native net benefit).
# Every function returns a data.frame with the columns of python/prime_stats/evaluation/*.py
# (metric, time, estimate, se, lower, upper, method, engine) so both engines compare one to one.

.ps_val_row <- function(metric, estimate, se = NA_real_, lower = NA_real_, upper = NA_real_,
                        method = "", time = NA_real_, engine = "R") {
  data.frame(metric = metric, time = as.numeric(time), estimate = as.numeric(estimate),
             se = as.numeric(se), lower = as.numeric(lower), upper = as.numeric(upper),
             method = method, engine = engine, stringsAsFactors = FALSE)
}

.ps_val_binary <- function(y, name = "y") {
  y <- as.numeric(y)
  if (anyNA(y)) stop(name, " has missing values")
  if (!all(y %in% c(0, 1))) stop(name, " must be coded 0/1")
  if (length(unique(y)) < 2) stop(name, " has only one class")
  y
}

.ps_val_surv <- function(time, event) {
  time <- as.numeric(time); event <- as.numeric(event)
  if (length(time) != length(event)) stop("time and event differ in length")
  if (anyNA(time) || anyNA(event)) stop("time/event have missing values")
  if (!all(event %in% c(0, 1))) stop("event must be coded 0/1")
  data.frame(time = time, event = event)
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
  for (p in pkgs) if (!requireNamespace(p, quietly = TRUE)) stop("R package ", p, " is required")
}

#' AUC with DeLong confidence interval (pROC::ci.auc)
#'
#' @param y 0/1 outcome.
#' @param score marker or predicted probability; higher values predict y = 1 (direction "<").
#' @param conf_level confidence level.
#' @return data.frame with metric "AUC", estimate, se, lower, upper, method, engine.
#' @examples
#' d <- survival::pbc[1:312, ]
#' ps_r_auc(as.integer(d$status == 2), log(d$bili))
ps_r_auc <- function(y, score, conf_level = 0.95) {
  .ps_val_need("pROC")
  y <- .ps_val_binary(y)
  r <- pROC::roc(response = y, predictor = as.numeric(score), levels = c(0, 1), direction = "<",
                 quiet = TRUE)
  ci <- pROC::ci.auc(r, method = "delong", conf.level = conf_level)
  .ps_val_row("AUC", ci[2], sqrt(pROC::var(r, method = "delong")), ci[1], ci[3], "DeLong")
}

#' DeLong test of two correlated AUCs (pROC::roc.test, paired)
#'
#' @param y 0/1 outcome
#' @param score1,score2 two markers on the same patients.
#' @return one-row data.frame: estimate = AUC1 - AUC2, statistic (z), p_value, auc1, auc2.
ps_r_roc_test <- function(y, score1, score2) {
  .ps_val_need("pROC")
  y <- .ps_val_binary(y)
  r1 <- pROC::roc(y, as.numeric(score1), levels = c(0, 1), direction = "<", quiet = TRUE)
  r2 <- pROC::roc(y, as.numeric(score2), levels = c(0, 1), direction = "<", quiet = TRUE)
  tt <- pROC::roc.test(r1, r2, method = "delong", paired = TRUE)
  a <- as.numeric(tt$estimate)
  se <- sqrt(pROC::var(r1, method = "delong") + pROC::var(r2, method = "delong") -
               2 * pROC::cov(r1, r2, method = "delong"))
  out <- .ps_val_row("AUC difference", a[1] - a[2], se, a[1] - a[2] - stats::qnorm(0.975) * se,
                     a[1] - a[2] + stats::qnorm(0.975) * se, "DeLong paired test")
  out$auc1 <- a[1]; out$auc2 <- a[2]
  out$statistic <- as.numeric(tt$statistic); out$p_value <- tt$p.value
  out
}

#' Harrell's or Uno's concordance (survival::concordance)
#'
#' @param time,event follow-up time and 0/1 event.
#' @param risk risk score, higher = shorter survival (reverse = TRUE).
#' @param timewt "n" (Harrell) or "n/G2" (Uno).
#' @param conf_level confidence level of the Wald intervals.
#' @return data.frame with metric "C-index" and its infinitesimal-jackknife se and Wald CI.
ps_r_concordance <- function(time, event, risk, timewt = "n", conf_level = 0.95) {
  d <- .ps_val_surv(time, event)
  d$risk <- as.numeric(risk)
  cc <- survival::concordance(survival::Surv(time, event) ~ risk, data = d, reverse = TRUE,
                              timewt = timewt)
  se <- sqrt(cc$var); z <- stats::qnorm(0.5 + conf_level / 2)
  .ps_val_row("C-index", cc$concordance, se, cc$concordance - z * se, cc$concordance + z * se,
              if (timewt == "n") "Harrell" else "Uno (n/G2)")
}

#' Time-dependent AUC, Brier score and IPA with riskRegression::Score (Kaplan-Meier censoring)
#'
#' @param time,event follow-up time and 0/1 event.
#' @param risks named list; each element a matrix/data.frame of predicted event risks F(t|x)
#'   with one column per element of \code{times} (or a vector used at every time).
#' @param times prediction horizons.
#' @param metrics subset of c("auc", "brier").
#' @param conf_level confidence level of the Wald intervals.
#' @return long data.frame: model, metric (AUC(t), Brier, IPA), time, estimate, se, lower, upper.
ps_r_score_survival <- function(time, event, risks, times, metrics = c("auc", "brier"),
                                conf_level = 0.95) {
  .ps_val_need("riskRegression")
  d <- .ps_val_surv(time, event)
  times <- as.numeric(times)
  mats <- lapply(risks, function(r) {
    m <- if (is.null(dim(r))) matrix(as.numeric(r), nrow(d), length(times)) else as.matrix(r)
    storage.mode(m) <- "double"; colnames(m) <- NULL; m
  })
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
    b <- as.data.frame(s$Brier$score)
    b <- b[b$model != "Null model", ]
    out$brier <- data.frame(model = as.character(b$model), metric = "Brier", time = b$times,
                            estimate = b$Brier, se = b$se, lower = b$lower, upper = b$upper,
                            method = "IPCW (KM censoring)", engine = "R", stringsAsFactors = FALSE)
    out$ipa <- data.frame(model = as.character(b$model), metric = "IPA", time = b$times,
                          estimate = b$IPA, se = NA_real_, lower = NA_real_, upper = NA_real_,
                          method = "1 - Brier/Brier(Kaplan-Meier)", engine = "R",
                          stringsAsFactors = FALSE)
  }
  res <- do.call(rbind, out); rownames(res) <- NULL
  res
}

#' AUC and Brier score for a binary outcome with riskRegression::Score
#'
#' @param y 0/1 outcome
#' @param probs named list of predicted probabilities.
#' @param conf_level confidence level of the Wald intervals.
#' @return long data.frame: model, metric (AUC, Brier, IPA), estimate, se, lower, upper.
ps_r_score_binary <- function(y, probs, conf_level = 0.95) {
  .ps_val_need("riskRegression")
  d <- data.frame(y = .ps_val_binary(y))
  s <- riskRegression::Score(lapply(probs, as.numeric), formula = y ~ 1, data = d,
                             metrics = c("auc", "brier"), summary = "ipa", conf.int = conf_level)
  a <- as.data.frame(s$AUC$score)
  b <- as.data.frame(s$Brier$score); b <- b[b$model != "Null model", ]
  res <- rbind(
    data.frame(model = as.character(a$model), metric = "AUC", estimate = a$AUC, se = a$se,
               lower = a$lower, upper = a$upper, method = "DeLong", stringsAsFactors = FALSE),
    data.frame(model = as.character(b$model), metric = "Brier", estimate = b$Brier, se = b$se,
               lower = b$lower, upper = b$upper, method = "mean squared error", stringsAsFactors = FALSE),
    data.frame(model = as.character(b$model), metric = "IPA", estimate = b$IPA, se = NA_real_,
               lower = NA_real_, upper = NA_real_, method = "1 - Brier/Brier(prevalence)",
               stringsAsFactors = FALSE))
  res$time <- NA_real_; res$engine <- "R"
  res
}

#' Integrated Brier score with pec (left Riemann sum, as pec::crps)
#'
#' @param time,event follow-up
#' @param risk matrix of predicted risks, one column per \code{times}.
#' @param times strictly increasing grid; integration runs from times[1] to times[length(times)].
#' @return data.frame with metric "IBS".
ps_r_ibs <- function(time, event, risk, times) {
  .ps_val_need("pec")
  d <- .ps_val_surv(time, event)
  times <- as.numeric(times)
  S <- 1 - as.matrix(risk); colnames(S) <- NULL; storage.mode(S) <- "double"
  pe <- pec::pec(list(m = S), formula = .ps_val_surv_formula(), data = d, times = times,
                 exact = FALSE, cens.model = "marginal", reference = FALSE, verbose = FALSE,
                 start = times[1], maxtime = max(times))
  ibs <- pec::crps(pe, models = "m", times = max(times), start = times[1])
  .ps_val_row("IBS", as.numeric(ibs[1]), method = sprintf("pec::crps over [%g, %g]", times[1], max(times)),
              time = max(times))
}

#' Calibration of predicted probabilities (rms::val.prob) plus calibration-in-the-large
#'
#' @param y 0/1 outcome
#' @param prob predicted probabilities in (0, 1).
#' @param conf_level confidence level of the Wald intervals.
#' @return data.frame: CITL (glm with offset), intercept, slope (val.prob), Eavg, E50, E90, Emax, O/E.
ps_r_val_prob <- function(y, prob, conf_level = 0.95) {
  .ps_val_need("rms")
  y <- .ps_val_binary(y); p <- as.numeric(prob)
  z <- stats::qnorm(0.5 + conf_level / 2)
  v <- rms::val.prob(p, y, pl = FALSE)
  lp <- stats::qlogis(p)
  citl <- stats::glm(y ~ 1, offset = lp, family = stats::binomial())
  recal <- stats::glm(y ~ lp, family = stats::binomial())
  cs <- summary(recal)$coefficients
  cal <- stats::approx(stats::lowess(p, y, iter = 0), xout = p, ties = mean)$y
  err <- abs(p - cal)
  rbind(
    .ps_val_row("CITL", stats::coef(citl)[1], sqrt(stats::vcov(citl)[1, 1]), stats::coef(citl)[1] - z * sqrt(stats::vcov(citl)[1, 1]),
                stats::coef(citl)[1] + z * sqrt(stats::vcov(citl)[1, 1]), "logistic recalibration"),
    .ps_val_row("intercept", v[["Intercept"]], cs[1, 2], v[["Intercept"]] - z * cs[1, 2],
                v[["Intercept"]] + z * cs[1, 2], "logistic recalibration"),
    .ps_val_row("slope", v[["Slope"]], cs[2, 2], v[["Slope"]] - z * cs[2, 2], v[["Slope"]] + z * cs[2, 2],
                "logistic recalibration"),
    .ps_val_row("Eavg", v[["Eavg"]], method = "lowess (iter=0)"),
    .ps_val_row("E50", stats::median(err), method = "lowess (iter=0)"),
    .ps_val_row("E90", v[["E90"]], method = "lowess (iter=0)"),
    .ps_val_row("Emax", v[["Emax"]], method = "lowess (iter=0)"),
    .ps_val_row("O/E", mean(y) / mean(p), method = "mean(y)/mean(p)"))
}

#' Calibration of predicted risks at a horizon (Austin, Harrell & van Klaveren 2020)
#'
#' @param time,event follow-up
#' @param risk predicted F(t|x) in (0, 1)
#' @param t horizon.
#' @param nk number of spline knots (Harrell's default quantiles, Hmisc::rcspline.eval).
#' @param conf_level confidence level of the Wald intervals.
#' @return data.frame: O/E (Greenwood CI), slope (Cox on cloglog F), ICI, E50, E90, Emax.
ps_r_calibration_survival <- function(time, event, risk, t, nk = 3, conf_level = 0.95) {
  .ps_val_need("Hmisc")
  d <- .ps_val_surv(time, event)
  F <- as.numeric(risk); z <- stats::qnorm(0.5 + conf_level / 2)
  d$cll <- log(-log1p(-F))
  km <- summary(survival::survfit(survival::Surv(time, event) ~ 1, data = d), times = t)
  O <- 1 - km$surv; E <- mean(F)
  se_log <- km$std.err / O
  fs <- survival::coxph(survival::Surv(time, event) ~ cll, data = d, ties = "breslow")
  se_s <- sqrt(stats::vcov(fs)[1, 1])
  B <- Hmisc::rcspline.eval(d$cll, nk = nk, inclx = TRUE)
  fit <- survival::coxph(survival::Surv(d$time, d$event) ~ B, ties = "breslow")
  bh <- survival::basehaz(fit, centered = FALSE)
  H0 <- if (any(bh$time <= t)) max(bh$hazard[bh$time <= t]) else 0
  obs <- 1 - exp(-H0 * exp(as.numeric(B %*% stats::coef(fit))))
  err <- abs(F - obs)
  rbind(
    .ps_val_row("O/E", O / E, se_log, O / E * exp(-z * se_log), O / E * exp(z * se_log),
                "1-KM(t) / mean predicted risk", t),
    .ps_val_row("slope", stats::coef(fs)[1], se_s, stats::coef(fs)[1] - z * se_s, stats::coef(fs)[1] + z * se_s,
                "Cox on cloglog(F)", t),
    .ps_val_row("ICI", mean(err), method = sprintf("Cox on RCS(%d) of cloglog(F)", nk), time = t),
    .ps_val_row("E50", stats::median(err), method = sprintf("Cox on RCS(%d) of cloglog(F)", nk), time = t),
    .ps_val_row("E90", stats::quantile(err, 0.9, names = FALSE),
                method = sprintf("Cox on RCS(%d) of cloglog(F)", nk), time = t),
    .ps_val_row("Emax", max(err), method = sprintf("Cox on RCS(%d) of cloglog(F)", nk), time = t))
}

#' Net benefit of a risk model, treat-all and treat-none, and interventions avoided
#'
#' Binary outcome (\code{time = NULL}): NB = TP/n - FP/n * pt/(1-pt). Survival outcome: at horizon
#' \code{horizon}, TP/n = (1 - KM_{risk >= pt}(t)) * P(risk >= pt) and FP/n = KM_{risk >= pt}(t) * P(risk >= pt)
#' (Vickers et al. 2008); a predicted risk of 0 is never test-positive (as Python dcurves). Net interventions avoided per patient = (NB - NB_all) / (pt/(1-pt)).
#'
#' @param y 0/1 outcome (binary) or event indicator (survival).
#' @param prob predicted probability (risk by \code{horizon} for survival).
#' @param thresholds threshold probabilities in [0, 1).
#' @param time follow-up time (survival) or NULL.
#' @param horizon prediction horizon (survival).
#' @return data.frame: threshold, model ("model", "all", "none"), net_benefit, interventions_avoided.
ps_r_net_benefit <- function(y, prob, thresholds, time = NULL, horizon = NULL) {
  y <- as.numeric(y); p <- as.numeric(prob); n <- length(y)
  if (is.null(time)) {
    tp_fp <- function(sel) c(sum(sel & y == 1) / n, sum(sel & y == 0) / n)
    prev <- mean(y)
  } else {
    d <- .ps_val_surv(time, y)
    km_at <- function(sel) {
      if (!any(sel)) return(1)
      s <- summary(survival::survfit(survival::Surv(d$time[sel], d$event[sel]) ~ 1), times = horizon,
                   extend = TRUE)
      s$surv
    }
    tp_fp <- function(sel) {
      pos <- mean(sel); s <- km_at(sel)
      c((1 - s) * pos, s * pos)
    }
    prev <- 1 - km_at(rep(TRUE, n))
  }
  rows <- lapply(as.numeric(thresholds), function(pt) {
    odds <- pt / (1 - pt)
    m <- tp_fp(p >= pt & p > 0)
    a <- if (is.null(time)) c(prev, 1 - prev) else tp_fp(rep(TRUE, n))
    nb <- c(model = m[1] - odds * m[2], all = a[1] - odds * a[2], none = 0)
    data.frame(threshold = pt, model = names(nb), net_benefit = unname(nb),
               interventions_avoided = if (pt > 0) unname((nb - nb["all"]) / odds) else NA_real_,
               stringsAsFactors = FALSE)
  })
  res <- do.call(rbind, rows); res$engine <- "R"
  res
}
