# Common tasks. `make up` starts the suite; `make test` runs every test.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install up test lint format bench bench-binstore

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

up: install
	$(BIN)/atlas up

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services/toolkit schemas

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Side-by-side benchmarks; writes bench/results.md. Needs wrk and nginx.
bench: install
	$(BIN)/python -m bench.run

# Writes bench/results-binstore.md; needs PostgreSQL, RabbitMQ, nginx and curl.
bench-binstore: install
	$(BIN)/python -m bench.binstore
