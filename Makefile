# The two commands of the README: `make run` and `make test`. Everything else they need is set up
# here, from a machine that has only Python 3.11+.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Reinstall when the project's dependencies or its build change.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml setup.py plugins/*/pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
# Catalogs: sources in locale/, compiled into the package (as the build does, see setup.py). The
# editable install compiles them once; these rules compile again a catalog edited since.
PO     := $(wildcard locale/*/LC_MESSAGES/messages.po)
MO     := $(patsubst locale/%.po,bookwise/locale/%.mo,$(PO))
# Set-up steps say nothing when they work, and all they said when they fail.
LOG    := $(or $(TMPDIR),/tmp)/bookwise-make-$(shell id -u).log
QUIET  := >$(LOG) 2>&1 || { cat $(LOG); exit 1; }
SUDO   := $(if $(filter 0,$(shell id -u)),,sudo)
# make test: pytest-xdist processes (one per core; at least 1). The tests marked serial (they
# change the virtualenv) then run alone, in a second pytest run: see docs/development.md.
PYTEST_JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: run test lint typecheck check-format format i18n-extract i18n-update i18n-compile clean help browser screenshots

help:
	@echo "make run    set up and start the demo on http://127.0.0.1:5000"
	@echo "make test   set up and run every check and test"

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml setup.py | $(BIN)/python
	@echo "Installing Bookwise and its plugins in $(VENV) (a few minutes the first time)..."
	@$(BIN)/python -m pip install --quiet --upgrade pip $(QUIET)
	@$(BIN)/python -m pip install --quiet -e '.[test,dev]' $(QUIET)
	@$(BIN)/python -m pip install --quiet $(addprefix -e ,$(wildcard plugins/*/)) $(QUIET)
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

bookwise/locale/%/LC_MESSAGES/messages.mo: locale/%/LC_MESSAGES/messages.po | $(STAMP)
	@mkdir -p $(@D)
	@$(BIN)/pybabel -q compile -l $* -i $< -o $@

i18n-compile: $(MO)

# bookwise run ends its start-up with the address and the demo login.
run: $(STAMP) $(MO)
	@$(BIN)/bookwise run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

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
	$(BIN)/lint-imports --no-cache
	$(BIN)/pytest -n $(PYTEST_JOBS) --dist loadgroup $(PYTEST_ARGS)
	$(BIN)/pytest --serial-only $(PYTEST_ARGS)

i18n-extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k lazy_gettext -k N_ -o locale/messages.pot --no-location --sort-output --project Bookwise --copyright-holder "Bookwise developers" .

i18n-update: i18n-extract
	$(BIN)/pybabel update -i locale/messages.pot -d locale --no-fuzzy-matching --ignore-obsolete

# Debian's Chromium, driven by Playwright (a browser download cannot work on our machines).
browser: /usr/bin/chromium
/usr/bin/chromium:
	@command -v apt-get >/dev/null || { echo "install Chromium at /usr/bin/chromium"; exit 1; }
	@echo "Installing Debian's Chromium for the browser tests..."
	@$(SUDO) apt-get update -qq $(QUIET)
	@$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-liberation $(QUIET)

screenshots: $(STAMP) $(MO) browser
	$(BIN)/python tools/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache bookwise/locale build plugins/*/build
