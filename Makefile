# The two commands: `make demo` (the story, SQLite, nothing else needed) and `make test` (lint, types, all tests).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n 2 --dist worksteal --durations=25

.PHONY: demo test install browser system-packages lint typecheck pytest bench clean \
	compose-up compose-down compose-demo compose-test

# Exactly what CI tested: every dependency from the hashed lock (deploy/lock_requirements.py writes it), then the
# project itself with nothing resolved anew (--no-deps) and the locked setuptools as build backend.
$(BIN)/.installed: pyproject.toml deploy/requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r deploy/requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

install: $(BIN)/.installed

# Debian packages some tests drive for real: chromium for the browser test (tests/web/test_browser.py; Playwright never
# downloads a browser), libfaketime for the clock-skew test (tests/corridor/test_clock_skew.py), and curl and jq for
# README's tour (run against a demo by tests/security/test_log_scan.py). Installed when missing and we are root (CI);
# otherwise those tests are skipped locally (and fail under CI=true).
system-packages:
	@(command -v chromium >/dev/null && [ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] && \
		command -v curl >/dev/null && command -v jq >/dev/null) || \
		[ "$$(id -u)" != 0 ] || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium faketime curl jq >/dev/null)
	@command -v chromium >/dev/null || echo "chromium is not installed (apt-get install chromium as root): the browser test will be skipped" >&2

browser: system-packages

demo: install
	$(BIN)/transit-window demo

lint: install
	$(BIN)/ruff check transit_window tests bench migrations/env.py
	$(BIN)/ruff format --check transit_window tests bench migrations/env.py
	$(BIN)/lint-imports

typecheck: install
	$(BIN)/mypy --strict transit_window

pytest: install system-packages
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The corridor of deploy/compose.yaml in containers (deploy/containers.sh; README: "Run the corridor in containers"):
# up with six healthy nodes, the demo story against them, the container tests (tests/deploy/test_containers.py, which
# bring it up and down themselves), and down (volumes removed, the private dockerd stopped).
compose-up:
	deploy/containers.sh up

compose-down:
	deploy/containers.sh down

compose-demo: install
	deploy/containers.sh demo

compose-test: install
	deploy/containers.sh test

bench: install
	$(BIN)/python bench/corridor_throughput.py

clean:
	rm -rf .corridor .pytest_cache .mypy_cache .ruff_cache test-output
