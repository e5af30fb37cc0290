# prime-stats: the two commands of the README.
#   make demo   install what is missing, then run a whole PRIME study on the simulated cohort
#   make test   install what is missing, then run every test (pytest + testthat)
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export R_LIBS := $(CURDIR)/.Rlib
export PRIMESTATS_PYTHON := $(CURDIR)/$(VENV)/bin/python
export RETICULATE_PYTHON := $(CURDIR)/$(VENV)/bin/python
export MPLBACKEND := Agg
export LC_ALL := C.UTF-8
export LANG := C.UTF-8
export PYTHONUTF8 := 1
DEMO_OUT ?= out/demo

.PHONY: setup demo test test-python test-r check-r bench validate clean

setup:
	@tools/setup.sh

demo: setup
	$(VENV)/bin/prime-stats demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest -q
	@if command -v Rscript >/dev/null; then Rscript tests/testthat.R; fi

test-python: setup
	$(PY) -m pytest -q

test-r: setup
	Rscript tests/testthat.R

check-r: setup
	R CMD build --no-build-vignettes . && _R_CHECK_FORCE_SUGGESTS_=false R CMD check --no-manual primestats_*.tar.gz

bench: setup
	$(PY) benchmarks/run_all.py

validate: setup
	$(PY) validation/validate_discrimination_calibration.py
	$(PY) validation/validate_survival_descriptive.py

clean:
	rm -rf out .setup-stamps .Rlib primestats_*.tar.gz primestats.Rcheck
