# Two commands on a fresh machine: `make serve` and `make test`. Both bootstrap .venv from nothing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: serve test lint bench clean browser-deps screenshots promtool-deps pdf-deps

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

test: $(STAMP) lint promtool-deps pdf-deps
	$(BIN)/rulesvc check rulesets/
	$(BIN)/rulesvc test rulesets/ --min-coverage 100
	$(BIN)/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 1; fi; exit $$rc

# The console's browser tests (tests/e2e) drive Debian's chromium; screenshots need CJK fonts. Installs them
# when missing (as root, as CI runs; elsewhere the browser tests skip with the reason).
browser-deps:
	@if command -v chromium >/dev/null 2>&1 && dpkg -s fonts-noto-cjk >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk; \
	else echo "browser-deps: run as root (apt-get install chromium fonts-noto-cjk) for the browser tests"; fi

# Screenshots of every console page (1366×768, Noto Sans CJK) into docs/screenshots/, shown in the README.
screenshots: $(STAMP) browser-deps
	mkdir -p docs/screenshots
	CONSOLE_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/e2e/test_console_pages.py -p no:cacheprovider

# The alert rules' tests run promtool (Debian's prometheus package; its service is not started in a
# container without an init system). Installs it when missing, as root as CI runs; elsewhere they skip.
promtool-deps:
	@if command -v promtool >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus; \
	else echo "promtool-deps: run as root (apt-get install prometheus) for the alert rule tests"; fi

# Evidence files as PDF: WeasyPrint (a Python dependency) prints on Debian's Pango with Noto Sans CJK embedded;
# the tests read the PDFs with poppler's pdftotext and pdfdetach. Installs them when missing, as root as CI
# runs; elsewhere the PDF tests skip with the reason (and GET .../report?format=pdf answers 406).
PDF_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-noto-cjk poppler-utils
pdf-deps:
	@if dpkg -s $(PDF_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(PDF_PACKAGES); \
	else echo "pdf-deps: run as root (apt-get install $(PDF_PACKAGES)) for PDF evidence files and their tests"; fi

bench: $(STAMP)
	$(BIN)/python -m bench.engine
	$(BIN)/python -m bench.timers --quick

clean:
	rm -rf $(VENV) var
