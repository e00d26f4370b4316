# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.taktline-installed
PYTEST_ARGS ?=
ARGS ?=
ROLE ?= admin
SIMULATE ?= 1

.DEFAULT_GOAL := help
.PHONY: help install run test lint migrate token bench clean

help:
	@echo "make run               install if needed, then run Taktline on http://127.0.0.1:8000 with one simulated machine (SIMULATE=N, ARGS=...)"
	@echo "make test              install if needed, then ruff and every test (PYTEST_ARGS=... for pytest)"
	@echo "make lint              ruff only"
	@echo "make migrate           apply every service's migrations to the configured databases"
	@echo "make token ROLE=admin  print a bearer token"
	@echo "make bench             run every benchmark in bench/, figures to bench/results/"
	@echo "make clean             remove the virtualenv and caches (keeps data/)"

install: $(STAMP)

# Reinstall only when pyproject.toml changes; the stamp makes repeated runs instant.
$(STAMP): pyproject.toml
	@$(PYTHON) -c "import sys; sys.exit(sys.version_info < (3, 11))" || \
	  { echo "Taktline needs Python >= 3.11 with venv; try: make PYTHON=python3.12 ..." >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $@

run: install
	$(BIN)/taktline run --simulate $(SIMULATE) $(ARGS)

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q -ra $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

migrate: install
	$(BIN)/taktline migrate $(ARGS)

token: install
	@$(BIN)/taktline token --role $(ROLE) $(ARGS)

# Each bench/*_bench.py prints its figures; they are kept, dated, in bench/results/.
bench: install
	@mkdir -p bench/results
	@for script in bench/*_bench.py; do \
	  name=$$(basename $$script .py); \
	  echo "== $$name"; \
	  { date -u +"%Y-%m-%dT%H:%M:%SZ"; $(BIN)/python $$script; } | tee bench/results/$$name.txt || exit 1; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
