# The two commands of the README: `make run` and `make test`. Everything else they need is set up
# here, from a machine that has only Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Reinstall when the project's dependencies change.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml plugins/*/pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
PO     := $(wildcard locale/*/LC_MESSAGES/messages.po)
MO     := $(PO:.po=.mo)

.PHONY: run test lint typecheck check-format format i18n-extract i18n-update i18n-compile clean help browser screenshots

help:
	@echo "make run    set up and start the demo on http://127.0.0.1:5000"
	@echo "make test   set up and run every check and test"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	$(BIN)/python -m pip install --quiet $(addprefix -e ,$(wildcard plugins/*/))
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

locale/%/LC_MESSAGES/messages.mo: locale/%/LC_MESSAGES/messages.po | $(STAMP)
	$(BIN)/pybabel compile --statistics -d locale -l $* -i $< -o $@

i18n-compile: $(MO)

run: $(STAMP) $(MO)
	$(BIN)/bookwise run

lint: $(STAMP)
	$(BIN)/ruff check .

check-format: $(STAMP)
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) $(MO) browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest $(PYTEST_ARGS)

i18n-extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k N_ -o locale/messages.pot --no-location --sort-output --project Bookwise --copyright-holder "Bookwise developers" .

i18n-update: i18n-extract
	$(BIN)/pybabel update -i locale/messages.pot -d locale --no-fuzzy-matching --ignore-obsolete

# Debian's Chromium, driven by Playwright (a browser download cannot work on our machines).
browser: /usr/bin/chromium
/usr/bin/chromium:
	@command -v apt-get >/dev/null || { echo "install Chromium at /usr/bin/chromium"; exit 1; }
	$(if $(filter 0,$(shell id -u)),,sudo) apt-get update -qq
	$(if $(filter 0,$(shell id -u)),,sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation

screenshots: $(STAMP) $(MO) browser
	$(BIN)/python tools/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(MO)
