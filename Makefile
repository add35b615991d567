# The two commands: `make demo` and `make test`. Both install what they need first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: system venv demo demo-stop lint test clean

system:
	bash scripts/install-system.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

demo: system venv
	$(PY) -m pytools demo

demo-stop: venv
	$(PY) -m pytools demo --stop

lint: venv
	$(VENV)/bin/ruff check pytools tests
	$(VENV)/bin/ruff format --check pytools tests
	$(VENV)/bin/mypy

test: system venv lint
	$(PY) -m pytest

clean: demo-stop
	rm -rf .pgdata $(VENV)
