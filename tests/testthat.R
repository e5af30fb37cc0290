# testthat tests of the R package primestats: run by `make test` (from the repository root, against
# the package installed in .Rlib) and by R CMD check (from the check's tests/ folder).
library(testthat)
library(primestats)
dir <- if (dir.exists("testthat")) "testthat" else file.path("tests", "testthat")
testthat::test_dir(dir, reporter = "summary", stop_on_failure = TRUE, package = "primestats",
                   load_package = "installed")
