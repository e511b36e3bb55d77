# Two commands a newcomer needs: `make run` and `make test`. See README.md.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HOME_DIR ?= registry_home
BATCH ?=
DEMO_DIR ?= $(HOME_DIR)/demo_batches
DEMO_PATIENTS ?= 600
DEMO_CLINICS ?= 6
export GX_ANALYTICS_ENABLED := False
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export DO_NOT_TRACK := 1

.PHONY: install run test lint unit browser-deps bench bench-10m docs clean

$(BIN)/outcome-registry: pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	@touch $@

install: $(BIN)/outcome-registry

# Demo data when no BATCH is given; ingest, build, validate, publish, then serve the dashboard.
run: install
	@if [ -z "$(BATCH)" ] && [ ! -d "$(DEMO_DIR)" ]; then \
	  $(BIN)/outcome-registry generate --out $(DEMO_DIR) --patients $(DEMO_PATIENTS) --clinics $(DEMO_CLINICS) --seed 7; fi
	$(BIN)/outcome-registry --home $(HOME_DIR) run $(if $(BATCH),$(BATCH),$(DEMO_DIR))
	@echo "Dashboard: http://localhost:8501"
	$(BIN)/outcome-registry --home $(HOME_DIR) dashboard --port 8501

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m outcome_registry.dbt_runner lint

# Debian's chromium for the browser tests (Playwright cannot download its own browser here).
browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: browser tests will be skipped"; \
	  else echo "chromium not found and not root: browser tests will be skipped"; fi; fi

unit: install
	$(BIN)/python -m pytest -q

test: install browser-deps lint unit

bench: install
	$(BIN)/outcome-registry bench --sizes 10000,100000,1000000

bench-10m: install
	$(BIN)/outcome-registry bench --sizes 10000,100000,1000000,10000000

docs: install
	$(BIN)/outcome-registry --home $(HOME_DIR) docs

clean:
	rm -rf $(HOME_DIR) target logs .pytest_cache
