# lmscope: `make demo` runs the model check-up on the bundled model; `make test` runs lint + tests.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lmscope-installed
OUT ?= lmscope-report

.PHONY: setup demo test test-slow lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(PY) $(VENV)
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/lmscope checkup smollm2-135m --out $(OUT)
	@echo "Report: $(OUT)/index.html"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks experiments

test: lint
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/pip install -q weightwatcher psutil
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
