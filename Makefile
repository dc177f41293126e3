# Set-up on a fresh machine is part of every target: `make arena` and `make test` are all you need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
HOST   ?= 127.0.0.1
THREADS ?= 2
PORT   ?= 8050
CHROMIUM := /usr/bin/chromium

.PHONY: setup arena demo test lint typecheck bench report browser clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet -c constraints.txt torch
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

# Debian's Chromium for the browser tests (Playwright drives it; it never downloads a browser).
browser:
	@test -x $(CHROMIUM) || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

demo: setup
	$(BIN)/descent run --landscape double-well --momentum 0 --out out/double-well-momentum-0
	$(BIN)/descent run --landscape double-well --momentum 0.9 --out out/double-well-momentum-0.9

arena: demo  # waitress, one process, $(THREADS) worker threads (`descent arena --help`)
	$(BIN)/descent arena --host $(HOST) --port $(PORT) --threads $(THREADS)

test: setup browser
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# The public API's type check (configured in pyproject.toml; tests/test_types.py runs it in `make test`).
typecheck: setup
	$(BIN)/mypy

bench: setup
	$(BIN)/python benchmarks/bench_simulate.py

report: setup
	$(BIN)/descent report   # writes out/report/report.html and each experiment's JSON and PNG

clean:
	rm -rf out artifacts .pytest_cache
