# The two commands: `make demo` (the story, SQLite, nothing else needed) and `make test` (lint, types, all tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test install lint typecheck pytest bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/transit-window demo

lint: install
	$(BIN)/ruff check transit_window tests bench migrations/env.py
	$(BIN)/ruff format --check transit_window tests bench migrations/env.py

typecheck: install
	$(BIN)/mypy --strict transit_window

pytest: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/corridor_throughput.py

clean:
	rm -rf .corridor .pytest_cache .mypy_cache .ruff_cache test-output
