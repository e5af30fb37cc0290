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
  .ps_state$module <- reticulate::import("prime_stats")
  invisible(.ps_state$module)
}

.ps_import <- function(module) {
  ps_python()
  reticulate::import(paste0("prime_stats.", module), convert = TRUE)
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
#'   data.frame's) settings, e.g. \code{list(seed = 1, models = list(engine = "baseline"))}.
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
    raw <- utils::modifyList(list(data = list(clinical = csv), output = file.path(dir, "results")), settings)
    cfg <- study$StudyConfig$from_dict(raw, base_dir = dir)
  } else {
    if (!file.exists(config)) stop("config file not found: ", config)
    config <- normalizePath(config)
    if (length(settings)) {
      yaml <- reticulate::import("yaml", convert = TRUE)
      raw <- yaml$safe_load(paste(readLines(config, warn = FALSE), collapse = "\n"))
      cfg <- study$StudyConfig$from_dict(utils::modifyList(raw, settings), base_dir = dirname(config))
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

#' @export
print.ps_study <- function(x, ...) {
  cat("PRIME study results in", x$output_dir, "\n")
  if (!is.null(x$metrics)) {
    m <- x$metrics[, intersect(c("endpoint", "model", "split", "metric", "estimate", "lower", "upper"),
                                names(x$metrics))]
    print(m, row.names = FALSE, digits = 3)
  }
  invisible(x)
}
