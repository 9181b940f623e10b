# `make run` and `make test` do all the set-up: .venv is (re)built only when missing or when
# pyproject.toml changed since the last install.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test build lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $(STAMP)

build: $(STAMP)
	$(BIN)/python -m indexer build

# Serves on 127.0.0.1:8000 unless SEEDSEARCH_HOST / SEEDSEARCH_PORT say otherwise, and builds
# again as files in seeds/ change (SEEDSEARCH_WATCH=false make run does not).
run: export SEEDSEARCH_WATCH ?= true
run: build
	$(BIN)/python -m search_api

# Two processes, a test file each at a time: most tests wait on a model, a build or a server
# as much as they compute, so two cores run the suite in about two thirds of the time.
test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

# vulture (dead code) reads its paths, confidence and whitelist from pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy && $(BIN)/vulture

bench: $(STAMP)
	$(BIN)/python scripts/bench_build.py

clean:
	rm -rf $(VENV) var
