# Lineup Ops: `make demo` runs the console with embedded defaults; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: demo test install install-test lint bench faults clean wheel smoke

$(VENV)/.app: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -e '.[demo]'
	touch $@

$(VENV)/.test: $(VENV)/.app
	$(PIP) install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install: $(VENV)/.app
install-test: $(VENV)/.test

demo: install
	mkdir -p var
	$(PY) manage.py migrate --no-input
	$(PY) manage.py run_demo $(DEMO_ARGS)

test: install-test
	mkdir -p var
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf var/broker var/broker-processed var/demo-broker.aof var/*.sqlite3* test-artifacts dist build

bench: install-test
	$(PY) -m bench

faults: install-test
	$(PY) -m faults

wheel: install
	rm -rf dist && $(PIP) wheel --quiet --disable-pip-version-check --no-deps -w dist .

# The production smoke test: the wheel in a fresh virtualenv, on PostgreSQL and Redis, gunicorn, workers, beat,
# Prometheus (deploy/smoke.sh; a few minutes).
smoke:
	PYTHON=$(PYTHON) bash deploy/smoke.sh
