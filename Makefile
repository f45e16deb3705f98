# Two commands on a fresh machine: `make serve` and `make test`. Both bootstrap .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/rulesvc serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: $(STAMP) lint
	$(BIN)/rulesvc check rulesets/
	$(BIN)/rulesvc test rulesets/ --min-coverage 100
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

bench: $(STAMP)
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.timers --quick

clean:
	rm -rf $(VENV) var
