# The commands: `make demo`, `make test` (lint and every test, some minutes) and `make check`
# (lint and the fast tests: not slow, not cron, stopping at the first failure), for the
# edit-test loop. Each installs what it needs first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: system venv demo demo-stop lint check test bench bench-large clean freeze

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
	$(VENV)/bin/ruff check pytools tests benchmarks
	$(VENV)/bin/ruff format --check pytools tests benchmarks
	$(VENV)/bin/mypy

check: system venv lint
	$(PY) -m pytest -x -q -m "not slow and not cron"

test: system venv lint
	$(PY) -m pytest

# Lists the SHA-256 of each migration not yet in sql/migrations/frozen.txt (run it when a new
# migration is ready to release); lines already there are never rewritten: released migrations
# never change (docs/migrations.md).
freeze:
	cd sql/migrations && for f in *.sql; do \
		grep -q "  $$f$$" frozen.txt || sha256sum "$$f" >> frozen.txt; \
	done

clean: demo-stop
	rm -rf .pgdata $(VENV)

# Benchmarks (about 15 minutes at the default size): BENCH_JOURNEYS, BENCH_OLD_JOURNEYS, BENCH_REPEAT.
bench: system venv
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	$(PY) benchmarks/bench.py
	$(PY) benchmarks/app_write_wait.py
	$(PY) benchmarks/app_pgbench.py

# The same table at 1,000,000 patient journeys, each figure measured once (about 40 minutes here).
bench-large: system venv
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[bench]'
	BENCH_JOURNEYS=1000000 BENCH_REPEAT=1 $(PY) benchmarks/bench.py
