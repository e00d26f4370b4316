# The two commands a newcomer needs: `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.taktline-installed
PYTEST_ARGS ?=
ARGS ?=
ROLE ?= admin
SIMULATE ?= 1
BENCH ?= *

.DEFAULT_GOAL := help
.PHONY: help install run run-services test lint migrate token bench clean

help:
	@echo "make run               install if needed, then run Taktline on http://127.0.0.1:8000 with one simulated machine (SIMULATE=N, ARGS=...)"
	@echo "make run-services      the three services as separate processes behind nginx on http://127.0.0.1:8080 (PostgreSQL + RabbitMQ)"
	@echo "make test              install if needed, then ruff and every test (PYTEST_ARGS=... for pytest)"
	@echo "make lint              ruff only"
	@echo "make migrate           apply every service's migrations to the configured databases"
	@echo "make token ROLE=admin  print a bearer token"
	@echo "make bench             run every benchmark in bench/, figures to bench/results/ (BENCH=gateway: one)"
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

# Needs PostgreSQL and RabbitMQ (TAKTLINE_DATABASE_URL / TAKTLINE_AMQP_URL, default: local) and nginx.
run-services: install
	@if ! command -v nginx >/dev/null 2>&1 && ! test -x /usr/sbin/nginx; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing nginx (apt-get)"; \
	    apt-get update -qq && { apt-get install -y -qq nginx-light || apt-get install -y -qq nginx; } >/dev/null; \
	  else \
	    echo "make run-services needs nginx: sudo apt-get install nginx-light (or nginx), brew install nginx, ..." >&2; exit 1; \
	  fi; \
	fi
	$(BIN)/python deploy/local/run_services.py $(ARGS)

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
	@for script in bench/$(BENCH)_bench.py; do \
	  name=$$(basename $$script .py); \
	  echo "== $$name"; \
	  { date -u +"%Y-%m-%dT%H:%M:%SZ"; $(BIN)/python $$script || echo FAILED; } | tee bench/results/$$name.txt; \
	  ! grep -qx FAILED bench/results/$$name.txt || { echo "$$script failed" >&2; exit 1; }; \
	done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
