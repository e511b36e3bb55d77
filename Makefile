# Two commands a newcomer needs: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOME_DIR ?= registry_home
BATCH ?=
DEMO_DIR ?= $(HOME_DIR)/demo_batches
# 2000 patients (~11k sessions, 47k rows over 6 clinics x 24 months): 83 % of the registry-level monthly
# figures (all clinics, cohort 'all') are shown, not <11 (600 left most suppressed); see bench/README.md.
DEMO_PATIENTS ?= 2000
DEMO_CLINICS ?= 6
export GX_ANALYTICS_ENABLED := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export DO_NOT_TRACK := 1

.PHONY: install run test lint unit system-deps browser-deps bench bench-10m docs clean

$(BIN)/outcome-registry: pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

install: $(BIN)/outcome-registry

# Demo data when no BATCH is given (with a few faulty rows and one batch the privacy guard refuses, so the
# data-quality pages have something to show); ingest, build, validate, publish, then serve the dashboard.
run: install
	@if [ -z "$(BATCH)" ] && [ ! -d "$(DEMO_DIR)" ]; then \
	  $(BIN)/outcome-registry generate --out $(DEMO_DIR) --patients $(DEMO_PATIENTS) --clinics $(DEMO_CLINICS) --seed 7 \
	    --demo-issues; fi
	@# exit code 3 = some batches were refused (reported above) and the others were published: still serve
	$(BIN)/outcome-registry --home $(HOME_DIR) run $(if $(BATCH),$(BATCH),$(DEMO_DIR)) || [ $$? -eq 3 ]
	@echo "Dashboard: http://localhost:8501"
	$(BIN)/outcome-registry --home $(HOME_DIR) dashboard --port 8501

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m outcome_registry.dbt_runner lint

# Debian packages the tests need, installed when missing (as root on a fresh machine, e.g. through .ci/run):
# chromium (browser tests; Playwright cannot download its own browser here), poppler-utils (pdftoppm: the
# monthly PDF pack's pages are checked as images) and a Java 17 runtime (Spark). Without root they are
# reported and the tests that need them skip.
SYSTEM_DEPS := chromium:chromium pdftoppm:poppler-utils java:openjdk-17-jre-headless

system-deps:
	@missing=""; for pair in $(SYSTEM_DEPS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	      || echo "could not install$$missing: the tests that need them will be skipped"; \
	  else echo "missing$$missing and not root: the tests that need them will be skipped"; fi; fi

# Kept for muscle memory: the browser is one of the system dependencies.
browser-deps: system-deps

unit: install
	$(BIN)/python -m pytest -q

test: install system-deps lint unit

# Both batch shapes at each size, and the Spark column (the same store built on local Spark) at 100k and 1M.
bench: install system-deps
	$(BIN)/outcome-registry bench --sizes 10000,100000,1000000 --engines duckdb,spark

bench-10m: install system-deps
	$(BIN)/outcome-registry bench --sizes 10000,100000,1000000,10000000 --engines duckdb,spark

docs: install
	$(BIN)/outcome-registry --home $(HOME_DIR) docs

clean:
	rm -rf $(HOME_DIR) target logs .pytest_cache
