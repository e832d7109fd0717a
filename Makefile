# Quick start: `make demo` runs the end-to-end demo on the shipped data; `make test` runs the tests;
# `make docs` builds the documentation site.
# Each target creates .venv if missing and installs torch==2.13.0 (CPU build) first, then the package.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: demo test lint format bench docs clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# DEMO_ARGS: options of `python -m flows.demo` (e.g. DEMO_ARGS="--train-minutes 2" or "--quick").
demo: $(STAMP)
	$(BIN)/python -m flows.demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m benchmarks

$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

# The documentation site (mkdocs.yml, docs/) into site/; --strict fails on a broken link or anchor, a
# stampflow command without its help block, or a quoted module or function that no longer exists.
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

clean:
	rm -rf $(VENV) runs site .pytest_cache
