# Every R snippet of the README's "From R" section runs, in order, in one session (the snippets that
# call the Python core need PRIMESTATS_PYTHON, which `make test` sets).
readme_r_snippets <- function() {
  path <- Filter(file.exists, c("../../README.md", "../README.md", "README.md"))[1]
  if (is.na(path)) return(NULL)
  lines <- readLines(path, warn = FALSE)
  start <- which(lines == "## From R")
  end <- start + which(grepl("^## ", lines[(start + 1):length(lines)]))[1]
  section <- lines[start:(end - 1)]
  open <- which(section == "```r")
  close <- which(section == "```")
  lapply(open, function(i) section[(i + 1):(close[close > i][1] - 1)])
}

test_that("every R snippet of the README runs", {
  snippets <- readme_r_snippets()
  skip_if(is.null(snippets), "README.md is not shipped with the built package")
  expect_gte(length(snippets), 3)
  env <- new.env(parent = globalenv())
  grDevices::pdf(NULL)                          # printed plots go nowhere
  on.exit(grDevices::dev.off(), add = TRUE)
  py <- Sys.getenv("PRIMESTATS_PYTHON", "")
  for (code in snippets) {
    needs_core <- any(grepl("PRIMESTATS_PYTHON", code))
    if (needs_core && !(nzchar(py) && file.exists(py))) next
    code <- sub("/path/to/prime-stats/.venv/bin/python", py, code, fixed = TRUE)
    # each top-level call runs as if typed at the console: visible values are printed
    for (expr in parse(text = code)) {
      out <- capture.output(v <- withVisible(eval(expr, envir = env)), if (v$visible) print(v$value))
    }
  }
  expect_s3_class(env$km, "ps_km")
  expect_s3_class(env$fit, "coxph")
  expect_s3_class(env$nb, "ps_net_benefit")
  if (nzchar(py) && file.exists(py)) {
    expect_s3_class(env$res, "ps_study")
    expect_gt(nrow(summary(env$res)), 0)
  }
})
