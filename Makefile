# The same commands run here and in CI (.ci/run calls `make test`).
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null)
CHROMIUM := /usr/bin/chromium

.PHONY: run test lint format bench env browser nginx wrk services clean

# The environment: uv (from PyPI when missing) installs exactly what uv.lock pins.
$(VENV)/.synced: pyproject.toml uv.lock
	@if [ -z "$(UV)" ]; then python3 -m pip install --quiet "uv==0.13.8"; fi
	uv sync --locked --extra test
	@touch $@

env: $(VENV)/.synced

run: env
	$(VENV)/bin/adserver demo

test: env browser nginx services
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy adserver

format: env
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: env wrk
	$(PY) -m bench

# The deploy tests run Debian's nginx as a TLS reverse proxy (never the system service).
nginx:
	@command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx)

# The load generator; without it the bench falls back to a Python client far too slow to load
# a server (a few hundred requests a second).
wrk:
	@command -v wrk >/dev/null || \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)

# Browser tests drive Debian's chromium; install it when missing (never a downloaded build).
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

# PostgreSQL tests use the machine's server at 127.0.0.1:5432; start it if it is down.
services:
	@pg_isready -q -h 127.0.0.1 -p 5432 || \
		pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@pg_isready -h 127.0.0.1 -p 5432

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
