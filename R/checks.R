# The one input contract of the R front end: every ps_r_* function checks its inputs here, before an
# R package sees them, with the messages of the Python core (prime_stats.evaluation.inputs.MESSAGES,
# catalogued in /work/notes/input_messages.md): lengths (never recycled), missing/non-finite values, 0/1
# coding (1/2 codes get the `status - 1` hint), negative times, probabilities in [0, 1], a single class,
# no events, increasing time grids and horizons beyond follow-up. Rows are never dropped silently.
# Names: a vector argument is named bare (`time`), a data-frame column as `column 'status'`; offending
# entries as `position 1, 4` (1-based) for vectors and `row <row name>` for data frames.

.ps_messages <- c(
  not_numeric = "%s must be numeric; %d non-numeric value(s) (%s)",
  non_finite = "%s has %d missing/non-finite value(s) (%s)",
  length = "%s has length %d but %s has length %d",
  no_rows = "%s has no values",
  negative_time = "%s has %d negative time(s) (%s)",
  event_coding = "%s must be coded 0 (censored) / 1 (event); %d invalid value(s) (%s)",
  event_coding_12 = "%s must be coded 0 (censored) / 1 (event) but is coded 1/2 (survival::Surv's 1 = censored, 2 = event): pass %s - 1",
  binary_coding = "%s must be coded 0/1; %d invalid value(s) (%s)",
  binary_coding_12 = "%s must be coded 0/1 but is coded 1/2: pass %s - 1",
  single_class = "%s has only one class (%s); %s needs both 0 and 1",
  no_events = "%s has no events (all censored); %s is undefined",
  no_censored = "%s has no censored patients; %s is undefined",
  probability = "%s must be probabilities in [0, 1]; %d value(s) outside (%s)%s",
  times_increasing = "%s must be strictly increasing; got %s",
  times_invalid = "%s must be finite times >= 0; got %s",
  times_empty = "%s must hold at least %d time(s)",
  beyond_followup = "%s %s is at or beyond the last follow-up time (%s); %s is not estimable there",
  shape = "%s must have shape (n_patients=%d,) or (n_patients, n_times=%d); got (%s)"
)

.ps_fail <- function(...) stop(sprintf(...), call. = FALSE)

.ps_stop <- function(key, ...) stop(sprintf(.ps_messages[[key]], ...), call. = FALSE)

# "position 1, 2, 3, 4, 5, ..." for vectors; "row a, b" when the rows of a data frame are known
.ps_where <- function(bad, ids = NULL) {
  i <- which(bad)
  hits <- if (is.null(ids)) utils::head(i, 5) else utils::head(ids[i], 5)
  paste0(if (is.null(ids)) "position " else "row ", paste(hits, collapse = ", "), if (length(i) > 5) ", ..." else "")
}

.ps_num <- function(x) format(x, scientific = FALSE, trim = TRUE, drop0trailing = TRUE)

# "status" from "column 'status'" (the variable a user subtracts 1 from)
.ps_bare <- function(name) sub("^column '(.*)'$", "\\1", name)

.ps_check_length <- function(x, name, n, ref) {
  if (NROW(x) != n) .ps_stop("length", name, NROW(x), ref, n)
}

# A numeric vector without missing or non-finite values; logicals count as 0/1.
.ps_check_numeric <- function(x, name, n = NULL, ref = NULL, ids = NULL) {
  if (is.factor(x) || is.character(x)) {
    v <- suppressWarnings(as.numeric(as.character(x)))
    bad <- is.na(v) & !is.na(x)
    if (any(bad)) .ps_stop("not_numeric", name, sum(bad), .ps_where(bad, ids))
    x <- v
  }
  if (!(is.numeric(x) || is.logical(x))) .ps_fail("%s must be numeric, got %s", name, class(x)[1])
  if (!is.null(dim(x)) && !(length(dim(x)) == 2 && ncol(x) == 1)) {
    .ps_fail("%s must be one-dimensional, got shape (%s)", name, paste(dim(x), collapse = ", "))
  }
  x <- as.numeric(x)
  bad <- !is.finite(x)
  if (any(bad)) .ps_stop("non_finite", name, sum(bad), .ps_where(bad, ids))
  if (!is.null(n)) .ps_check_length(x, name, n, ref)
  x
}

# Follow-up time and event indicator (Python's as_survival, in the same order); `what` names the
# statistic that needs events (NULL: all-censored data are allowed), `censored_for` one that needs censoring.
.ps_check_surv <- function(time, event, time_name = "time", event_name = "event", what = NULL, ids = NULL,
                           censored_for = NULL) {
  time <- .ps_check_numeric(time, time_name, ids = ids)
  event <- .ps_check_numeric(event, event_name, ids = ids)
  if (length(time) == 0) .ps_stop("no_rows", time_name)
  .ps_check_length(event, event_name, length(time), time_name)
  neg <- time < 0
  if (any(neg)) .ps_stop("negative_time", time_name, sum(neg), .ps_where(neg, ids))
  bad <- !(event %in% c(0, 1))
  if (any(bad)) {
    if (all(event %in% c(1, 2))) .ps_stop("event_coding_12", event_name, .ps_bare(event_name))
    .ps_stop("event_coding", event_name, sum(bad), .ps_where(bad, ids))
  }
  if (!is.null(what) && sum(event) == 0) .ps_stop("no_events", event_name, what)
  if (!is.null(censored_for) && all(event == 1)) .ps_stop("no_censored", event_name, censored_for)
  list(time = time, event = event)
}

.ps_check_binary <- function(y, name = "y", what = "this statistic", n = NULL, ref = NULL, ids = NULL) {
  y <- .ps_check_numeric(y, name, ids = ids)
  if (length(y) == 0) .ps_stop("no_rows", name)
  bad <- !(y %in% c(0, 1))
  if (any(bad)) {
    if (all(y %in% c(1, 2))) .ps_stop("binary_coding_12", name, .ps_bare(name))
    .ps_stop("binary_coding", name, sum(bad), .ps_where(bad, ids))
  }
  if (min(y) == max(y)) .ps_stop("single_class", name, y[1], what)
  if (!is.null(n)) .ps_check_length(y, name, n, ref)
  y
}

# Predicted probabilities (or risks F(t|x)) in [0, 1]; `open_for` demands (0, 1) for logit/cloglog scales.
.ps_check_prob <- function(p, name, n = NULL, ref = NULL, open_for = NULL, ids = NULL) {
  p <- .ps_check_numeric(p, name, n, ref, ids)
  bad <- p < 0 | p > 1
  if (any(bad)) {
    hint <- if (any(p < 0)) "; negative values look like logits or linear predictors: transform them with expit"
            else if (max(p) <= 100) "; values up to 100 look like percentages: divide by 100" else ""
    .ps_stop("probability", name, sum(bad), paste0(.ps_where(bad, ids), "; first value ", .ps_num(p[which(bad)[1]])), hint)
  }
  if (!is.null(open_for) && any(p == 0 | p == 1)) {
    .ps_fail("%s contains 0 or 1: %s needs probabilities strictly inside (0, 1)", name, open_for)
  }
  p
}

# A matrix of predicted risks, one row per patient and one column per time (a vector is used at every
# time); `prob` demands risks in [0, 1].
.ps_check_risk_matrix <- function(r, name, n, times, prob = TRUE) {
  check <- if (prob) .ps_check_prob else .ps_check_numeric
  if (is.null(dim(r))) r <- matrix(check(r, name, n, "time"), n, length(times))
  m <- as.matrix(r)
  if (nrow(m) != n || ncol(m) != length(times)) .ps_stop("shape", name, n, length(times), paste(dim(m), collapse = ", "))
  if (!is.numeric(m)) .ps_fail("%s must be numeric, got %s", name, typeof(m))
  for (k in seq_along(times)) check(m[, k], sprintf("%s[, %d] (time %s)", name, k, .ps_num(times[k])))
  storage.mode(m) <- "double"
  colnames(m) <- NULL
  m
}

# A grid of finite times >= 0, strictly increasing.
.ps_check_times <- function(times, name = "times", min_n = 1L) {
  if (!is.numeric(times) || length(times) < min_n) {
    if (!is.numeric(times) && length(times) >= min_n) .ps_fail("%s must be numeric, got %s", name, class(times)[1])
    .ps_stop("times_empty", name, min_n)
  }
  times <- as.numeric(times)
  got <- paste(.ps_num(times), collapse = ", ")
  if (any(!is.finite(times)) || any(times < 0)) .ps_stop("times_invalid", name, got)
  if (any(diff(times) <= 0)) .ps_stop("times_increasing", name, got)
  times
}

# Every horizon must lie before the last follow-up time (`inclusive`: at it is allowed).
.ps_check_horizon <- function(times, time, name = "times", what = "this statistic", inclusive = FALSE) {
  tmax <- max(time)
  for (v in times) {
    if (v > tmax || (v == tmax && !inclusive)) .ps_stop("beyond_followup", name, .ps_num(v), .ps_num(tmax), what)
  }
  invisible(times)
}

.ps_check_group <- function(group, name = "group", n, ref = "time", ids = NULL) {
  .ps_check_length(group, name, n, ref)
  bad <- is.na(group)
  if (any(bad)) .ps_fail("%s has %d missing value(s) (%s)", name, sum(bad), .ps_where(bad, ids))
  factor(group)
}

# Covariates of a model: a data frame whose columns have no missing values (named as columns, rows by
# row name).
.ps_check_covariates <- function(x, n, ref = "time") {
  x <- as.data.frame(x)
  if (nrow(x) != n) .ps_stop("length", "x", nrow(x), ref, n)
  for (v in names(x)) {
    bad <- is.na(x[[v]]) | (is.numeric(x[[v]]) & !is.finite(x[[v]]))
    if (any(bad)) .ps_stop("non_finite", sprintf("column '%s'", v), sum(bad), .ps_where(bad, rownames(x)))
  }
  x
}

.ps_check_level <- function(conf_level) {
  if (!is.numeric(conf_level) || length(conf_level) != 1 || !(conf_level > 0 && conf_level < 1)) {
    .ps_fail("conf_level must be in (0, 1), got %s", paste(conf_level, collapse = ", "))
  }
  conf_level
}

# R's way: a whole double (7, 2e3) is accepted where an integer is needed.
.ps_check_whole <- function(x, name, min = 1) {
  if (!is.numeric(x) || length(x) != 1 || !is.finite(x) || x != round(x) || x < min) {
    .ps_fail("%s must be a whole number >= %s, got %s", name, .ps_num(min), paste(x, collapse = ", "))
  }
  as.integer(x)
}

.ps_check_choice <- function(x, name, choices) {
  if (!is.character(x) || length(x) != 1 || !x %in% choices) {
    .ps_fail("%s must be %s, got %s", name, paste(sprintf("'%s'", choices), collapse = ", "),
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
    tname <- sprintf("column '%s'", deparse(lhs[[2]])); ename <- sprintf("column '%s'", deparse(lhs[[3]]))
    time <- eval(lhs[[2]], data, env)
    status <- eval(lhs[[3]], data, env)
    if (is.numeric(status) && any(is.finite(status)) && max(status, na.rm = TRUE) == 2) {
      status <- status - 1  # Surv(): 1 = censored, 2 = event
    }
    s <- .ps_check_surv(time, status, tname, ename, what, ids = rownames(data))
    return(list(type = "survival", time = s$time, event = s$event, time_name = tname, event_name = ename))
  }
  if (!binary_ok) .ps_fail("the left-hand side must be Surv(time, status), got %s", deparse(lhs))
  yname <- sprintf("column '%s'", deparse(lhs))
  y <- eval(lhs, data, env)
  list(type = "binary", y = .ps_check_binary(y, yname, if (is.null(what)) "this statistic" else what,
                                             ids = rownames(data)), y_name = yname)
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
  for (v in names(rhs)) .ps_check_group(rhs[[v]], sprintf("column '%s'", v), n, "the outcome", rownames(data))
  if (ncol(rhs) == 1) return(factor(rhs[[1]]))
  interaction(lapply(names(rhs), function(v) paste0(v, "=", rhs[[v]])), sep = ", ", drop = TRUE, lex.order = TRUE)
}

# The one predictor of a formula's right-hand side (e.g. ~ predict(fit) or ~ risk).
.ps_formula_predictor <- function(formula, data, n) {
  rhs <- .ps_formula_rhs(formula, data)
  if (is.null(rhs) || ncol(rhs) != 1) {
    .ps_fail("the right-hand side must be one predictor (e.g. ~ predict(fit) or ~ risk), got %s", deparse(formula[[3]]))
  }
  .ps_check_numeric(rhs[[1]], sprintf("column '%s'", names(rhs)[1]), n, "the outcome", rownames(data))
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
                                   label, n, "the outcome", rownames(data))
    if (!is.null(times)) {
      sf <- survival::survfit(fit, newdata = data, se.fit = FALSE)
      s <- summary(sf, times = times, extend = TRUE)$surv
      out$risk <- 1 - t(matrix(s, nrow = length(times)))
    }
  } else {
    p <- if (kind == "lrm") stats::predict(fit, newdata = data, type = "fitted")
         else stats::predict(fit, newdata = data, type = "response", na.action = stats::na.pass)
    out$prob <- .ps_check_prob(as.numeric(p), label, n, "the outcome", ids = rownames(data))
    out$score <- out$prob
  }
  out
}
