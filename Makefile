# Lineup Ops: `make demo` runs the console with embedded defaults; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: demo test install install-test lint bench faults clean

$(VENV)/.app: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.test: $(VENV)/.app
	$(PIP) install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install: $(VENV)/.app
install-test: $(VENV)/.test

demo: install
	mkdir -p var
	$(PY) manage.py migrate --no-input
	$(PY) manage.py run_demo

test: install-test
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf var/broker var/broker-processed var/*.sqlite3* test-artifacts

bench: install-test
	$(PY) -m bench

faults: install-test
	$(PY) -m faults
