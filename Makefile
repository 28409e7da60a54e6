# The two commands of the README's quick start: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
DEMO ?= demo-shop
# test processes (pytest-xdist); `make test WORKERS=0` runs the suite in one process
WORKERS ?= 2

.PHONY: demo test lint bench bench-incremental bench-ingest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@ $(VENV)/.installed

## demo: install, scaffold the example project into ./demo-shop and run it end to end
demo: $(VENV)/.installed
	rm -rf $(DEMO)
	$(BIN)/headwater init $(DEMO)
	$(BIN)/headwater run -p $(DEMO)
	@echo ""
	@echo "Done. Look around:"
	@echo "  $(BIN)/headwater dag -p $(DEMO)"
	@echo "  $(BIN)/headwater sql \"select * from marts.events_daily order by day desc limit 10\" -p $(DEMO)"
	@echo "  $(BIN)/headwater sql \"select _hw_source, _hw_reason from raw.orders__quarantine\" -p $(DEMO)"
	@echo "  $(BIN)/headwater check -p $(DEMO)"
	@echo "  duckdb $(DEMO)/.headwater/warehouse.duckdb   (models are plain views and tables)"
	@echo "  $(BIN)/headwater serve -p $(DEMO)   (the data API: http://127.0.0.1:8000/docs)"

## test: install the dev dependencies and run the whole suite (lint and types included)
test: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/python -m pytest -n $(WORKERS) --dist worksteal

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests

bench: $(VENV)/.installed
	$(BIN)/python bench/transform/run.py

bench-incremental: $(VENV)/.installed
	$(BIN)/python bench/transform/incremental.py

bench-ingest: $(VENV)/.installed
	$(BIN)/python bench/ingest/run.py

clean:
	rm -rf $(DEMO) .pytest_cache .ruff_cache
