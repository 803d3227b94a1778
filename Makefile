# `make demo` and `make test` work on a fresh machine: they create .venv and install first.
# CPU (default): torch 2.13.0. For a GPU, pick the wheel for your CUDA, e.g.
#   make demo TORCH="torch==2.13.0" TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu128"
VENV ?= .venv
PYTHON ?= python3
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
BIN = $(VENV)/bin

.PHONY: install demo test lint format
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH_INDEX) "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

demo: install
	$(BIN)/semrec demo

test: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks
