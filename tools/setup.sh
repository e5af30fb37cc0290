#!/usr/bin/env bash
# Install whatever prime-stats needs and is missing: Debian R packages, the project virtual
# environment (.venv, pinned by requirements.lock) and the R package primestats (into .Rlib).
# Idempotent: each step is skipped when its inputs have not changed since it last succeeded.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
STAMPS="$ROOT/.setup-stamps"; mkdir -p "$STAMPS"
say() { printf '[setup] %s\n' "$*" >&2; }

APT_PACKAGES=(
  r-base-core r-base-dev r-cran-rms r-cran-survival r-cran-survminer r-cran-riskregression
  r-cran-pec r-cran-proc r-bioc-gsva r-bioc-limma r-bioc-edger r-bioc-gseabase r-cran-reticulate
  r-cran-testthat r-cran-ggplot2 r-cran-jsonlite r-cran-knitr r-cran-rmarkdown r-bioc-go.db r-bioc-org.hs.eg.db
  libpcre2-dev libblas-dev liblapack-dev poppler-utils libpango-1.0-0 libpangoft2-1.0-0
  python3-venv
)
CRAN_EQUIVALENT="install.packages(c('rms','survival','survminer','riskRegression','pec','pROC','reticulate','testthat','ggplot2','jsonlite','knitr','rmarkdown')); BiocManager::install(c('GSVA','limma','edgeR','GSEABase','GO.db','org.Hs.eg.db'))"

# ---- 1. system packages -------------------------------------------------------------------
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for p in "${APT_PACKAGES[@]}"; do
    if [ "$p" = python3-venv ] && python3 -c 'import venv, ensurepip' 2>/dev/null; then continue; fi
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
      say "installing Debian packages: ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      apt-get install -y -q --no-install-recommends "${missing[@]}" >"$STAMPS/apt.log" 2>&1 \
        || { tail -30 "$STAMPS/apt.log" >&2; say "apt-get failed (log: $STAMPS/apt.log)"; exit 1; }
    else
      say "these system packages are missing and you are not root:"
      say "  sudo apt-get install --no-install-recommends ${missing[*]}"
      say "on other platforms install R >= 4.2 and, from CRAN/Bioconductor:"
      say "  $CRAN_EQUIVALENT"
      say "then rerun this command."
      exit 1
    fi
  fi
elif ! command -v Rscript >/dev/null 2>&1; then
  say "not a Debian system and R is not on PATH; install R >= 4.2 and run in R:"
  say "  $CRAN_EQUIVALENT"
  say "(the Python core still works without R: PRIMESTATS_NO_R=1 make test)"
  [ "${PRIMESTATS_NO_R:-0}" = 1 ] || exit 1
fi

# ---- 2. Python virtual environment ----------------------------------------------------------
PYTHON=${PYTHON:-python3}
venv_key=$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
if [ ! -x .venv/bin/python ] || [ "$(cat "$STAMPS/venv" 2>/dev/null)" != "$venv_key" ]; then
  [ -x .venv/bin/python ] || { say "creating .venv with $($PYTHON --version)"; $PYTHON -m venv .venv; }
  say "installing pinned Python dependencies into .venv (requirements.lock)"
  .venv/bin/python -m pip install -q --upgrade pip setuptools wheel
  # rpy2-rinterface compiles against the R found on PATH, so R must be installed first (step 1).
  .venv/bin/python -m pip install -q -r requirements.lock
  .venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
  echo "$venv_key" >"$STAMPS/venv"
fi

# ---- 3. the R package primestats, into the project library .Rlib ------------------------------
if command -v R >/dev/null 2>&1; then
  r_key=$( (cat DESCRIPTION NAMESPACE R/*.R man/*.Rd 2>/dev/null) | sha256sum | cut -c1-16)
  if [ "$(cat "$STAMPS/rpkg" 2>/dev/null)" != "$r_key" ] || [ ! -d .Rlib/primestats ]; then
    mkdir -p .Rlib
    say "installing the R package primestats into .Rlib"
    R CMD INSTALL --no-test-load --library=.Rlib . >"$STAMPS/rinstall.log" 2>&1 \
      || { tail -30 "$STAMPS/rinstall.log" >&2; exit 1; }
    echo "$r_key" >"$STAMPS/rpkg"
  fi
fi
# ---- 4. GO gene sets: exported once per annotation release into the user cache ------------------
# (static annotation from org.Hs.eg.db / GO.db, ~30 s of R; every study reuses it)
if command -v R >/dev/null 2>&1 && [ "${PRIMESTATS_NO_R:-0}" != 1 ]; then
  go_key=$(dpkg-query -W -f='${Version}' r-bioc-org.hs.eg.db r-bioc-go.db 2>/dev/null | sha256sum | cut -c1-16)
  if [ "$(cat "$STAMPS/go" 2>/dev/null)" != "$go_key" ]; then
    say "exporting the GO gene sets (org.Hs.eg.db) into the user cache"
    R_LIBS="$ROOT/.Rlib" .venv/bin/python -c 'from prime_stats.omics import cached_go_gene_sets; cached_go_gene_sets()' \
      >"$STAMPS/go.log" 2>&1 && echo "$go_key" >"$STAMPS/go" \
      || say "GO gene sets not exported (log: $STAMPS/go.log); a study exports them when it first needs them"
  fi
fi
say "environment ready (.venv, .Rlib)"
