# Runs the R package's testthat tests against the installed primestats (make test puts it in .Rlib).
library(testthat)
library(primestats)
res <- testthat::test_dir("tests/testthat", reporter = "summary", stop_on_failure = TRUE,
                          package = "primestats", load_package = "installed")
