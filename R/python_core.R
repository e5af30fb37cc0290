# R front end to the prime-stats Python core (through reticulate).
# reticulate 1.28 cannot pass numpy-2 arrays back to R, so results travel as the CSV files the
# Python core writes and are read here into data.frames.

.ps_state <- new.env(parent = emptyenv())

#' Connect to the prime-stats Python core
#'
#' Chooses the Python interpreter (argument, then the PRIMESTATS_PYTHON environment variable,
#' then reticulate's default) and imports the \code{prime_stats} module.
#' @param python path to a Python interpreter that has prime-stats installed
#'   (e.g. the project's \code{.venv/bin/python}).
#' @return the imported module (invisibly).
#' @examples
#' \dontrun{ps_python("/path/to/prime-stats/.venv/bin/python")}
#' @export
ps_python <- function(python = Sys.getenv("PRIMESTATS_PYTHON", "")) {
  if (!is.null(.ps_state$module)) return(invisible(.ps_state$module))
  if (!requireNamespace("reticulate", quietly = TRUE)) {
    stop("the R package 'reticulate' is needed to call the Python core: install.packages('reticulate')")
  }
  if (nzchar(python)) {
    if (!file.exists(python)) stop("Python interpreter not found: ", python)
    reticulate::use_python(python, required = TRUE)
  }
  if (!reticulate::py_module_available("prime_stats")) {
    stop("the Python package prime_stats is not installed for ", reticulate::py_config()$python,
         "; run 'make setup' in the prime-stats folder and set ",
         "Sys.setenv(PRIMESTATS_PYTHON = '<repo>/.venv/bin/python')")
  }
  # An R session that embeds Python cannot also start rpy2's embedded R inside that Python:
  # the Python core uses its Python engine here, and R users run the R-native statistics
  # (ps_r_* functions) directly on the returned data.frames.
  reticulate::py_run_string("import os; os.environ['PRIMESTATS_NO_R'] = '1'")
  .ps_state$module <- reticulate::import("prime_stats")
  invisible(.ps_state$module)
}

# Settings the R way: R's numbers are doubles, so whole ones (seed = 7, n_jobs = 2) are sent as integers
# (the config and its provenance then say 7, not 7.0); Python's float keys accept integers.
.ps_settings <- function(x) {
  if (is.list(x)) {
    return(lapply(x, .ps_settings))
  }
  if (is.double(x) && length(x) && all(is.finite(x) & x == round(x) & abs(x) <= .Machine$integer.max)) {
    return(as.integer(x))
  }
  x
}

.ps_import <- function(module, convert = TRUE) {
  ps_python()
  reticulate::import(paste0("prime_stats.", module), convert = convert)
}

#' Simulate the PRIME study
#'
#' Writes the simulated two-centre cohort (clinical table, dual-phase CT volumes with masks,
#' RNA-seq counts and the generating truth) to \code{out}.
#' @param out output folder.
#' @param seed random seed.
#' @param n_a,n_b patients at the development (A) and external (B) centre.
#' @param images write CT volumes (set FALSE for a clinical-only cohort).
#' @param n_expression patients with RNA-seq counts.
#' @return a list: \code{clinical} (data.frame), \code{files} (named character vector of paths).
#' @examples
#' \dontrun{sim <- ps_simulate(tempfile(), seed = 1, images = FALSE); head(sim$clinical)}
#' @export
ps_simulate <- function(out, seed = 2024L, n_a = 113L, n_b = 133L, images = TRUE, n_expression = 33L) {
  sim <- .ps_import("simulate")
  files <- sim$simulate_study(normalizePath(out, mustWork = FALSE), n_a = as.integer(n_a),
                              n_b = as.integer(n_b), seed = as.integer(seed),
                              images = isTRUE(images), n_expression = as.integer(n_expression))
  files <- unlist(files)
  list(clinical = utils::read.csv(files[["clinical"]], stringsAsFactors = FALSE), files = files)
}

#' Run a PRIME study
#'
#' Either from a YAML config file, or from a clinical data.frame (written to a temporary CSV)
#' plus optional settings given as a list with the same structure as the YAML file.
#' @param config path to a StudyConfig YAML file, or NULL when \code{clinical} is given.
#' @param clinical a data.frame with patient_id, centre, response_3m, os_days, os_event and
#'   predictors (used when \code{config} is NULL).
#' @param settings a list of config sections that override the file's (or complete the
#'   data.frame's) settings, e.g. \code{list(seed = 1, models = list(family = "baseline"))}.
#' @param output output folder (default: the config's \code{output}).
#' @param progress show progress messages.
#' @return a list of data.frames \code{predictions}, \code{metrics}, \code{split} and the
#'   \code{output_dir}.
#' @examples
#' \dontrun{res <- ps_run("sim/study.yaml"); res$metrics}
#' @export
ps_run <- function(config = NULL, clinical = NULL, settings = list(), output = NULL, progress = TRUE) {
  study <- .ps_import("study")
  if (is.null(config)) {
    if (!is.data.frame(clinical)) stop("give either a config file or a clinical data.frame")
    dir <- if (is.null(output)) tempfile("primestats_") else output
    dir.create(dir, recursive = TRUE, showWarnings = FALSE)
    csv <- file.path(dir, "clinical_input.csv")
    utils::write.csv(clinical, csv, row.names = FALSE)
    raw <- utils::modifyList(list(data = list(clinical = csv), output = file.path(dir, "results")),
                             .ps_settings(settings))
    cfg <- study$StudyConfig$from_dict(raw, base_dir = dir)
  } else {
    if (!file.exists(config)) stop("config file not found: ", config)
    config <- normalizePath(config)
    if (length(settings)) {
      yaml <- reticulate::import("yaml", convert = TRUE)
      raw <- yaml$safe_load(paste(readLines(config, warn = FALSE), collapse = "\n"))
      cfg <- study$StudyConfig$from_dict(utils::modifyList(raw, .ps_settings(settings)), base_dir = dirname(config))
    } else {
      cfg <- study$StudyConfig$from_yaml(config)
    }
    if (!is.null(output)) cfg$output <- normalizePath(output, mustWork = FALSE)
  }
  res <- study$run_study(cfg, progress = isTRUE(progress))
  ps_read_results(as.character(res$output_dir))
}

#' Read the outputs of a PRIME study run
#' @param dir the study's output folder.
#' @return a list of data.frames (predictions, metrics, split) and \code{output_dir}.
#' @export
ps_read_results <- function(dir) {
  read <- function(f) {
    p <- file.path(dir, f)
    if (file.exists(p)) utils::read.csv(p, stringsAsFactors = FALSE) else NULL
  }
  if (!dir.exists(dir)) stop("study output folder not found: ", dir)
  out <- list(predictions = read("predictions.csv"), metrics = read("metrics.csv"),
              split = read("split.csv"), output_dir = normalizePath(dir))
  class(out) <- c("ps_study", "list")
  out
}

.ps_cohort <- function(clinical, manifest = NULL, require_outcomes = TRUE) {
  cohort <- .ps_import("cohort")
  if (is.data.frame(clinical)) {
    csv <- tempfile(fileext = ".csv")
    utils::write.csv(clinical, csv, row.names = FALSE)
    clinical <- csv
  }
  if (!file.exists(clinical)) stop("clinical file not found: ", clinical)
  cohort$Cohort$from_files(normalizePath(clinical),
                           if (is.null(manifest)) NULL else normalizePath(manifest),
                           require_outcomes = require_outcomes)
}

.ps_frame <- function(py_df) {
  # reticulate 1.28 cannot hand numpy-2 arrays to R: go through a CSV file
  csv <- tempfile(fileext = ".csv")
  py_df$to_csv(csv, index = FALSE)
  utils::read.csv(csv, stringsAsFactors = FALSE, check.names = FALSE)
}

#' Score new patients with the frozen models of a fitted study
#' @param study the output folder of \code{ps_run} / \code{prime-stats run}.
#' @param clinical a data.frame or a CSV path with the new patients (outcomes optional).
#' @param manifest image manifest CSV (needed when the models use radiomics).
#' @return a data.frame with one row per patient: prob_prime_r, risk_prime_s, surv_prime_s_<t>, ...
#' @examples
#' \dontrun{ps_predict("sim/results", new_patients)}
#' @export
ps_predict <- function(study, clinical, manifest = NULL) {
  frozen <- .ps_import("study", convert = FALSE)$FrozenStudy$load(normalizePath(study))
  .ps_frame(frozen$predict(.ps_cohort(clinical, manifest, require_outcomes = FALSE)))
}

#' Validate the frozen models on one or more external cohorts, each separately
#' @param study the output folder of a fitted study.
#' @param cohorts a named list; each element a data.frame (or CSV path) with outcomes, or a list
#'   \code{list(clinical = ..., manifest = ...)}.
#' @param engine "auto" (R when installed), "python" or "R".
#' @return a tidy data.frame: model, metric, time, estimate, lower, upper, method, engine, split
#'   (the cohort name).
#' @examples
#' \dontrun{ps_validate("sim/results", list(centreC = dfC, centreD = dfD))}
#' @export
ps_validate <- function(study, cohorts, engine = "auto") {
  if (!is.list(cohorts) || is.data.frame(cohorts) || is.null(names(cohorts)) || any(names(cohorts) == "")) {
    stop("cohorts must be a named list of data.frames (or list(clinical =, manifest =))")
  }
  frozen <- .ps_import("study", convert = FALSE)$FrozenStudy$load(normalizePath(study))
  py <- lapply(cohorts, function(x) {
    if (is.list(x) && !is.data.frame(x)) .ps_cohort(x$clinical, x$manifest) else .ps_cohort(x)
  })
  .ps_frame(frozen$validate(reticulate::dict(py), engine = engine))
}

#' Write the TRIPOD+AI validation report of a fitted study
#' @param study the output folder of a fitted study.
#' @param include_identifiers show patient identifiers (FALSE by default).
#' @return a named character vector with the paths of report.html and report.pdf.
#' @export
ps_report <- function(study, include_identifiers = FALSE) {
  build <- .ps_import("report")$build_report
  res <- build(normalizePath(study), include_identifiers = isTRUE(include_identifiers))
  c(html = res$html, pdf = res$pdf)
}

.ps_frames <- function(x, what) {
  if (!is.list(x) || is.data.frame(x) || is.null(names(x)) || any(names(x) == "")) {
    stop(what, " must be a named list (one element per model)")
  }
  x
}

#' Survival validation table from the Python core, with vectorised bootstrap CIs
#'
#' \code{prime_stats.evaluation.score.score_survival} (Python engine): Harrell's and Uno's C, AUC(t),
#' Brier(t), IPA(t), IBS and calibration, and with \code{B > 0} percentile and BCa bootstrap rows for
#' all of them plus paired differences between models, all replicates computed at once.
#' @param time,event follow-up time and event indicator (0/1).
#' @param risks named list, one matrix or data.frame per model: predicted risk F(t|x) (patients x times).
#' @param times increasing horizons.
#' @param risk_scores optional named list of risk scores for the C-indices.
#' @param B bootstrap replicates (0: none).
#' @param seed bootstrap seed (replicate b depends only on seed and b).
#' @param conf_level confidence level.
#' @return a tidy data.frame: model, metric, time, estimate, se, lower, upper, method, engine, p_value.
#' @examples
#' \dontrun{ps_score_survival(d$time, d$status, list(cox = risk), c(365, 730), B = 2000, seed = 1)}
#' @export
ps_score_survival <- function(time, event, risks, times, risk_scores = NULL, B = 0L, seed = NULL,
                              conf_level = 0.95) {
  score <- .ps_import("evaluation.score", convert = FALSE)
  risks <- lapply(.ps_frames(risks, "risks"), as.data.frame)
  if (!is.null(risk_scores)) risk_scores <- lapply(.ps_frames(risk_scores, "risk_scores"), as.numeric)
  .ps_frame(score$score_survival(as.numeric(time), as.integer(event), risks, times = as.list(as.numeric(times)),
                                 risk_scores = risk_scores, engine = "python", conf_level = conf_level,
                                 bootstrap = as.integer(B),
                                 seed = if (is.null(seed)) NULL else as.integer(seed)))
}

#' Binary-outcome validation table from the Python core, with vectorised bootstrap CIs
#'
#' \code{prime_stats.evaluation.score.score_binary} (Python engine): AUC, Brier, IPA, calibration, and
#' with \code{B > 0} percentile and BCa bootstrap rows (net benefit at \code{thresholds}) and paired
#' differences between models.
#' @param y outcome (0/1).
#' @param probs named list of predicted probabilities, one per model.
#' @param B bootstrap replicates (0: none).
#' @param seed bootstrap seed.
#' @param thresholds risk thresholds for net benefit (bootstrap rows only).
#' @param conf_level confidence level.
#' @return a tidy data.frame (plus a threshold column when thresholds are given).
#' @export
ps_score_binary <- function(y, probs, B = 0L, seed = NULL, thresholds = NULL, conf_level = 0.95) {
  score <- .ps_import("evaluation.score", convert = FALSE)
  probs <- lapply(.ps_frames(probs, "probs"), as.numeric)
  .ps_frame(score$score_binary(as.integer(y), probs, engine = "python", conf_level = conf_level,
                               bootstrap = as.integer(B), seed = if (is.null(seed)) NULL else as.integer(seed),
                               thresholds = as.list(as.numeric(thresholds))))
}
