# The one input contract of the R front end: every ps_r_* function checks its inputs here, before an
# R package sees them, with the messages of the Python core (one message per kind of bad input, naming
# the argument or column and the rows): lengths (never recycled), missing/non-finite values, 0/1
# coding (with the `status - 1` hint for 1/2 codes), negative times, probabilities in [0, 1], a single
# class, no events, increasing time grids and horizons beyond follow-up. Rows are never dropped.

.ps_fail <- function(...) stop(sprintf(...), call. = FALSE)

# "row 1, 2, 3, 4, 5, ..." (1-based row numbers of the offending values)
.ps_rows <- function(bad) {
  i <- which(bad)
  paste0("row ", paste(utils::head(i, 5), collapse = ", "), if (length(i) > 5) ", ..." else "")
}

.ps_check_length <- function(x, name, n, against) {
  if (length(x) != n) {
    .ps_fail("'%s' has length %d but '%s' has length %d (vectors are not recycled)",
             name, length(x), against, n)
  }
}

# A numeric vector without missing or non-finite values; logicals count as 0/1.
.ps_check_numeric <- function(x, name, n = NULL, against = NULL) {
  if (is.factor(x) || is.character(x) || !(is.numeric(x) || is.logical(x))) {
    .ps_fail("column '%s' must be numeric, got %s", name, class(x)[1])
  }
  if (!is.null(dim(x)) && !(length(dim(x)) == 2 && ncol(x) == 1)) {
    .ps_fail("column '%s' must be a vector, got a %d x %d table", name, nrow(x), ncol(x))
  }
  x <- as.numeric(x)
  if (!is.null(n)) .ps_check_length(x, name, n, against)
  bad <- !is.finite(x)
  if (any(bad)) {
    .ps_fail("column '%s' has %d missing/non-finite value(s) (%s); rows are never dropped silently: remove or impute them",
             name, sum(bad), .ps_rows(bad))
  }
  x
}

# 0/1 coding; `kind` is "survival" (0 censored / 1 event) or "binary".
.ps_check_01 <- function(x, name, kind = "survival") {
  bad <- !(x %in% c(0, 1))
  if (any(bad)) {
    codes <- if (kind == "survival") "0 (censored) / 1 (event)" else "0/1"
    hint <- if (all(x %in% c(1, 2))) sprintf("; for 1/2 codes use %s - 1", name) else ""
    .ps_fail("column '%s' must be coded %s; %d invalid value(s) (%s)%s", name, codes, sum(bad),
             .ps_rows(bad), hint)
  }
  x
}

# Follow-up time and event indicator, checked; `what` names the statistic that needs events.
.ps_check_surv <- function(time, event, time_name = "time", event_name = "event", what = NULL) {
  time <- .ps_check_numeric(time, time_name)
  if (length(time) == 0) .ps_fail("column '%s' has no rows", time_name)
  if (is.factor(event) || is.character(event)) {
    .ps_fail("column '%s' must be coded 0 (censored) / 1 (event), got %s", event_name, class(event)[1])
  }
  .ps_check_length(event, event_name, length(time), time_name)
  event <- .ps_check_01(.ps_check_numeric(event, event_name), event_name, "survival")
  neg <- time < 0
  if (any(neg)) .ps_fail("column '%s' has %d negative time(s) (%s)", time_name, sum(neg), .ps_rows(neg))
  if (!is.null(what) && sum(event) == 0) {
    .ps_fail("column '%s' has no events (all %d censored): %s is undefined", event_name, length(event), what)
  }
  list(time = time, event = event)
}

.ps_check_binary <- function(y, name = "y", n = NULL, against = NULL, what = NULL) {
  if (is.factor(y) || is.character(y)) {
    .ps_fail("column '%s' must be coded 0/1, got %s (e.g. as.integer(%s == \"yes\"))", name, class(y)[1], name)
  }
  y <- .ps_check_01(.ps_check_numeric(y, name, n, against), name, "binary")
  if (length(y) == 0) .ps_fail("column '%s' has no rows", name)
  if (!is.null(what) && length(unique(y)) < 2) {
    .ps_fail("column '%s' has only one class (all %d are %g): %s needs both 0 and 1", name, length(y), y[1], what)
  }
  y
}

# Predicted probabilities (or risks F(t|x)) in [0, 1]; `open` demands (0, 1) for logit/cloglog scales.
.ps_check_prob <- function(p, name, n = NULL, against = NULL, open_for = NULL) {
  p <- .ps_check_numeric(p, name, n, against)
  bad <- p < 0 | p > 1
  if (any(bad)) {
    .ps_fail("column '%s' must be probabilities in [0, 1] (logits and scores are not accepted); %d value(s) outside (%s)",
             name, sum(bad), .ps_rows(bad))
  }
  if (!is.null(open_for) && any(p == 0 | p == 1)) {
    .ps_fail("column '%s' contains 0 or 1 (%s): %s needs probabilities strictly inside (0, 1)", name,
             .ps_rows(p == 0 | p == 1), open_for)
  }
  p
}

# A matrix of predicted risks, one row per patient and one column per time (a vector is used at every
# time); `prob` demands risks in [0, 1].
.ps_check_risk_matrix <- function(r, name, n, n_times, prob = TRUE) {
  check <- if (prob) .ps_check_prob else .ps_check_numeric
  if (is.null(dim(r))) return(matrix(check(r, name, n, "time"), n, n_times))
  m <- as.matrix(r)
  if (nrow(m) != n || ncol(m) != n_times) {
    .ps_fail("'%s' must be a vector of length %d or a %d x %d matrix (patients x times), got %d x %d",
             name, n, n, n_times, nrow(m), ncol(m))
  }
  if (!is.numeric(m)) .ps_fail("'%s' must be numeric, got %s", name, typeof(m))
  for (k in seq_len(n_times)) check(m[, k], sprintf("%s[, %d]", name, k))
  storage.mode(m) <- "double"
  colnames(m) <- NULL
  m
}

# Time grids and horizons: finite, >= 0, strictly increasing; `follow_up` is the last follow-up time
# and `inclusive` whether a horizon equal to it is allowed.
.ps_check_times <- function(times, name = "times", follow_up = NULL, inclusive = FALSE, min_n = 1L) {
  times <- .ps_check_numeric(times, name)
  if (length(times) < min_n) .ps_fail("'%s' needs at least %d value(s), got %d", name, min_n, length(times))
  if (any(times < 0)) .ps_fail("'%s' has negative values (%s)", name, .ps_rows(times < 0))
  if (length(times) > 1 && any(diff(times) <= 0)) {
    .ps_fail("'%s' must be strictly increasing, got %s", name, paste(format(times, scientific = FALSE), collapse = ", "))
  }
  if (!is.null(follow_up)) {
    beyond <- if (inclusive) times > follow_up else times >= follow_up
    if (any(beyond)) {
      .ps_fail("'%s' = %s is %s the last follow-up time (%s): the estimate would extrapolate", name,
               format(max(times), scientific = FALSE), if (inclusive) "beyond" else "at or beyond",
               format(follow_up, scientific = FALSE))
    }
  }
  times
}

.ps_check_group <- function(group, name = "group", n, against = "time") {
  .ps_check_length(group, name, n, against)
  bad <- is.na(group)
  if (any(bad)) .ps_fail("column '%s' has %d missing value(s) (%s)", name, sum(bad), .ps_rows(bad))
  factor(group)
}

# Covariates of a model: a data.frame whose columns have no missing values.
.ps_check_covariates <- function(x, n, against = "time") {
  x <- as.data.frame(x)
  if (nrow(x) != n) .ps_fail("'x' has %d rows but '%s' has length %d", nrow(x), against, n)
  for (v in names(x)) {
    bad <- is.na(x[[v]]) | (is.numeric(x[[v]]) & !is.finite(x[[v]]))
    if (any(bad)) {
      .ps_fail("column '%s' has %d missing/non-finite value(s) (%s); rows are never dropped silently: remove or impute them",
               v, sum(bad), .ps_rows(bad))
    }
  }
  x
}

.ps_check_level <- function(conf_level) {
  if (!is.numeric(conf_level) || length(conf_level) != 1 || !(conf_level > 0 && conf_level < 1)) {
    .ps_fail("conf_level must be one number in (0, 1), got %s", paste(conf_level, collapse = ", "))
  }
  conf_level
}

# R's way: a whole double (7, 2e3) is accepted where an integer is needed.
.ps_check_whole <- function(x, name, min = 1) {
  if (!is.numeric(x) || length(x) != 1 || !is.finite(x) || x != round(x) || x < min) {
    .ps_fail("'%s' must be a whole number >= %d, got %s", name, min, paste(x, collapse = ", "))
  }
  as.integer(x)
}

.ps_check_choice <- function(x, name, choices) {
  if (!is.character(x) || length(x) != 1 || !x %in% choices) {
    .ps_fail("'%s' must be one of %s, got %s", name, paste(sprintf("\"%s\"", choices), collapse = ", "),
             paste(x, collapse = ", "))
  }
  x
}

# ---- formulas and fitted models ----------------------------------------------------------------

# The outcome of a formula's left-hand side, evaluated in `data`: Surv(time, status) (Surv's codings:
# 0/1, 1/2 or FALSE/TRUE) or a 0/1 variable, with the names used in the messages.
.ps_formula_outcome <- function(formula, data, what = NULL, binary_ok = FALSE) {
  if (!inherits(formula, "formula") || length(formula) != 3) .ps_fail("the formula needs a left-hand side, e.g. Surv(time, status) ~ group")
  if (missing(data) || is.null(data)) .ps_fail("a formula needs 'data' (a data.frame)")
  env <- environment(formula)
  lhs <- formula[[2]]
  if (is.call(lhs) && deparse(lhs[[1]]) %in% c("Surv", "survival::Surv")) {
    if (length(lhs) != 3) .ps_fail("only right-censored Surv(time, status) is supported, got %s", deparse(lhs))
    tname <- deparse(lhs[[2]]); ename <- deparse(lhs[[3]])
    time <- eval(lhs[[2]], data, env)
    status <- eval(lhs[[3]], data, env)
    if (is.numeric(status) && any(is.finite(status)) && max(status, na.rm = TRUE) == 2) {
      status <- status - 1  # Surv(): 1 = censored, 2 = event
    }
    s <- .ps_check_surv(time, status, tname, ename, what)
    return(list(type = "survival", time = s$time, event = s$event, time_name = tname, event_name = ename))
  }
  if (!binary_ok) .ps_fail("the left-hand side must be Surv(time, status), got %s", deparse(lhs))
  yname <- deparse(lhs)
  y <- eval(lhs, data, env)
  list(type = "binary", y = .ps_check_binary(y, yname, what = what), y_name = yname)
}

# The right-hand side variables of a formula, evaluated in `data` without dropping rows.
.ps_formula_rhs <- function(formula, data) {
  tt <- stats::delete.response(stats::terms(formula, data = data))
  if (length(attr(tt, "term.labels")) == 0) return(NULL)
  stats::model.frame(tt, data = data, na.action = stats::na.pass)
}

# One grouping factor from the right-hand side (`~ 1` gives NULL; several terms are crossed).
.ps_formula_group <- function(formula, data, n) {
  rhs <- .ps_formula_rhs(formula, data)
  if (is.null(rhs)) return(NULL)
  for (v in names(rhs)) .ps_check_group(rhs[[v]], v, n, "the outcome")
  if (ncol(rhs) == 1) return(factor(rhs[[1]]))
  interaction(lapply(names(rhs), function(v) paste0(v, "=", rhs[[v]])), sep = ", ", drop = TRUE, lex.order = TRUE)
}

# The one predictor of a formula's right-hand side (e.g. ~ predict(fit) or ~ risk).
.ps_formula_predictor <- function(formula, data, n) {
  rhs <- .ps_formula_rhs(formula, data)
  if (is.null(rhs) || ncol(rhs) != 1) {
    .ps_fail("the right-hand side must be one predictor (e.g. ~ predict(fit) or ~ risk), got %s", deparse(formula[[3]]))
  }
  .ps_check_numeric(rhs[[1]], names(rhs)[1], n, "the outcome")
}

.ps_model_kinds <- c("coxph", "glm", "lrm")

# The data a fitted model is evaluated on: newdata, else the data it was fitted on.
.ps_model_data <- function(fit, newdata) {
  if (!inherits(fit, .ps_model_kinds)) .ps_fail("expected a fitted coxph, glm or lrm model, got %s", class(fit)[1])
  if (!is.null(newdata)) {
    if (!is.data.frame(newdata)) .ps_fail("newdata must be a data.frame, got %s", class(newdata)[1])
    return(newdata)
  }
  d <- tryCatch(eval(fit$call$data, environment(stats::formula(fit))), error = function(e) NULL)
  if (!is.data.frame(d)) .ps_fail("give newdata: the data this %s model was fitted on cannot be found", class(fit)[1])
  d
}

# Outcome and predictions of a fitted model on `data`: the linear predictor (risk score, higher =
# worse), and for `times` the predicted risks F(t|x) = 1 - S(t|x) (coxph) or probabilities (glm/lrm).
.ps_model_eval <- function(fit, data, times = NULL, what = NULL) {
  kind <- intersect(class(fit), .ps_model_kinds)[1]
  f <- stats::formula(fit)
  environment(f) <- environment(stats::formula(fit))
  out <- .ps_formula_outcome(f, data, what = what, binary_ok = kind != "coxph")
  n <- if (out$type == "survival") length(out$time) else length(out$y)
  label <- sprintf("prediction of the %s model", kind)
  if (kind == "coxph") {
    if (!is.null(fit$strata) || any(grepl("strata\\(", deparse(f)))) .ps_fail("stratified coxph models are not supported")
    out$score <- .ps_check_numeric(stats::predict(fit, newdata = data, type = "lp", na.action = stats::na.pass),
                                   label, n, "the outcome")
    if (!is.null(times)) {
      sf <- survival::survfit(fit, newdata = data, se.fit = FALSE)
      s <- summary(sf, times = times, extend = TRUE)$surv
      out$risk <- 1 - t(matrix(s, nrow = length(times)))
    }
  } else {
    p <- if (kind == "lrm") stats::predict(fit, newdata = data, type = "fitted")
         else stats::predict(fit, newdata = data, type = "response", na.action = stats::na.pass)
    out$prob <- .ps_check_prob(as.numeric(p), label, n, "the outcome")
    out$score <- out$prob
  }
  out
}
