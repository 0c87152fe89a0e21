# Every target wraps a tool; nothing here but Python 3.11+ and make is needed beforehand.
PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: install run serve migrate seed test lint format bench bench-seed clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(VENV)/.installed  ## create .venv with the locked dependencies

run: install  ## migrate the database, load the demo data once, serve on :8000
	$(BIN)/tablestack migrate
	$(BIN)/tablestack seed --set demo --if-empty
	$(BIN)/tablestack serve

# Two workers: the machines have two cores, and each worker keeps PostgreSQL connections.
TEST_WORKERS ?= 2

test: install  ## the whole suite, on SQLite and (when reachable) PostgreSQL
	$(BIN)/pytest -n $(TEST_WORKERS)

lint: install  ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-seed: install  ## fake products via COPY vs one ORM object a row, on a scratch PostgreSQL
	$(BIN)/python bench/seeding/bench_seed.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install  ## Tablestack vs three peers under wrk, over PostgreSQL (minutes): bench/README.md
	$(UV) sync --frozen --group bench
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) var .pytest_cache .mypy_cache .ruff_cache test-artifacts
