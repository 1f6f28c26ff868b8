# Two commands for a new user: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test lint wheel-check system-packages

$(VENV)/.installed: pyproject.toml kefu/nlu/engine/e5.c kefu/nlu/engine/e5.h
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,demo]'
	touch $@

# Set up SQLite with demo data and serve it on http://127.0.0.1:5000
demo: $(VENV)/.installed
	VENV=$(VENV) scripts/demo

# The whole test suite (needs PostgreSQL and Redis on localhost, and Chromium for browser tests)
test: $(VENV)/.installed system-packages
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# `pip install .` in a fresh virtual environment must serve a device page (CI runs this).
wheel-check: $(VENV)/.installed
	VENV=$(VENV) scripts/wheel-check

# Debian packages the browser and label tests use; installed only when missing.
system-packages:
	@scripts/system-packages
