# Checkpoint: the two commands a new machine needs are `make demo` and `make test`.
# Everything else installs itself into .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help

.PHONY: help install demo test crash-test lint bench clean

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  make %-11s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml provisioning/system-deps.sh
	provisioning/system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,collector]'
	touch $(STAMP)

install: $(STAMP) ## Install system packages and the virtual environment (.venv)

demo: install ## Run the daemon in simulation with its live console
	demo/run.sh

test: install ## Run the whole test suite (starts the local PostgreSQL its tests use)
	provisioning/test-postgres.sh
	$(PY) -m pytest

# N = CRASH_KILLS restarts; the suite itself runs 20 (tests/test_crash.py).
CRASH_KILLS ?= 200
crash-test: install ## SIGKILL the syncing daemon CRASH_KILLS (200) times; nothing may be lost
	CRASH_KILLS=$(CRASH_KILLS) $(PY) -m tests.crash

# lint-imports builds its graph in under a second: --no-cache leaves no cache directories behind.
lint: install ## ruff, mypy, the import contracts and the size limits
	$(VENV)/bin/ruff check appliance collector tests bench tools
	$(VENV)/bin/ruff format --check appliance collector tests bench tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-logo --no-cache
	$(PY) tools/check_size.py appliance collector bench

bench: install ## Measure throughput and memory; writes bench-results.json
	provisioning/test-postgres.sh
	$(PY) -m bench

clean: ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis bench-results.json
