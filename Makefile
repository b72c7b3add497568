# Kargo, on a fresh machine:
#   make run    install into .venv, migrate the local SQLite database, serve http://127.0.0.1:8001
#   make test   install, lint, and run the whole test suite (SQLite, then PostgreSQL when
#               KARGO_TEST_DATABASE_URL is set)
# Other targets: demo, bench, migration m="...", lock, clean. `make help` lists them.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Kargo needs Python 3.11 or newer; prefer an explicit 3.11 when the machine has one.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8001
# pytest-xdist workers; every test picks free ports and its own database, so the suite is
# safe to run in parallel. PYTEST_WORKERS=0 runs in one process (easier to debug).
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
CHROMIUM := /usr/bin/chromium
UV ?= uv

export FLASK_APP := wsgi.py

.PHONY: help install run test lint chromium docker demo bench migration lock clean

help:
	@echo "make run        install, migrate instance/kargo.db, serve http://$(HOST):$(PORT)"
	@echo "make test       install, ruff, pytest on SQLite (and PostgreSQL if KARGO_TEST_DATABASE_URL)"
	@echo "make demo       migrate and load demo data (flask kargo demo)"
	@echo "make bench      run the scheduler, decision path and HTTP benchmarks"
	@echo 'make migration m="message"   autogenerate a migration from app/models.py'
	@echo "make lock       regenerate requirements.lock and requirements-prod.lock from pyproject.toml"
	@echo "make clean      remove caches and build artifacts (keeps .venv and instance/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Re-installs only when the lock file or pyproject.toml changed since the last install.
$(INSTALLED): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(INSTALLED)

run: install
	$(BIN)/flask db upgrade
	@echo "Kargo is serving on http://$(HOST):$(PORT) (Ctrl-C to stop)"
	$(BIN)/gunicorn --no-control-socket --bind $(HOST):$(PORT) --workers 2 wsgi:app

# The browser tests drive Debian's chromium package through Playwright.
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo=sudo; fi; \
		$$sudo apt-get update; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	fi

# The runtime tests start a private dockerd (tests/support/dockerd.py) from Debian's docker.io
# and build their images from busybox-static; the image test builds its base with debootstrap;
# the private-registry tests run Debian's docker-registry with a password file from htpasswd.
docker:
	@missing=""; \
	command -v dockerd >/dev/null || missing="$$missing docker.io"; \
	[ -x /bin/busybox ] || missing="$$missing busybox-static"; \
	command -v debootstrap >/dev/null || missing="$$missing debootstrap"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	command -v docker-registry >/dev/null || missing="$$missing docker-registry"; \
	command -v htpasswd >/dev/null || missing="$$missing apache2-utils"; \
	if [ -n "$$missing" ]; then \
		sudo=""; if [ "$$(id -u)" -ne 0 ]; then sudo=sudo; fi; \
		$$sudo apt-get update; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$missing; \
	fi

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pytest exits non-zero when a test fails and with 5 when it collected nothing; both stop make.
# The private dockerd is started once for both passes and stopped at the end, failing or not
# (a daemon that was already running, e.g. a developer's, is left running).
test: install chromium docker lint
	@already=0; $(BIN)/python -c 'import sys; from tests.support import dockerd; sys.exit(0 if dockerd.Daemon(dockerd.DEFAULT_FOLDER).answers() else 1)' && already=1 || true; \
	if [ "$$already" = 0 ]; then \
		trap '$(BIN)/python -m tests.support.dockerd stop' EXIT; \
		$(BIN)/python -m tests.support.dockerd start || echo "== no private dockerd: the runtime tests skip"; \
	fi; \
	echo "== pytest on SQLite"; \
	env -u KARGO_TEST_DATABASE_URL $(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS); \
	if [ -n "$${KARGO_TEST_DATABASE_URL:-}" ]; then \
		echo "== pytest on PostgreSQL (KARGO_TEST_DATABASE_URL)"; \
		$(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS); \
	else \
		echo "== KARGO_TEST_DATABASE_URL is not set: PostgreSQL run skipped"; \
	fi

demo: install
	$(BIN)/flask db upgrade
	$(BIN)/flask kargo demo

bench: install
	$(BIN)/python bench/scheduler_bench.py
	$(BIN)/python bench/decision_path_bench.py
	$(BIN)/python bench/http_bench.py

# Autogenerates against a throw-away SQLite database at head; review the file before committing.
migration: install
	@if [ -z "$(m)" ]; then echo 'usage: make migration m="describe the change"' >&2; exit 2; fi
	scratch="$$(mktemp -d)"; trap 'rm -rf "$$scratch"' EXIT; \
	export DATABASE_URL="sqlite:///$$scratch/autogenerate.db" KARGO_ENV=development; \
	$(BIN)/flask db upgrade; \
	$(BIN)/flask db migrate -m "$(m)"

# The full lock (dev and bench extras) drives local installs; the runtime lock, constrained to
# the same pins, is what the Docker image installs. Pass LOCK_FLAGS=--upgrade to move pins.
lock:
	$(UV) pip compile pyproject.toml --extra dev --extra bench --python-version 3.11 -o requirements.lock $(LOCK_FLAGS)
	$(UV) pip compile pyproject.toml -c requirements.lock -o requirements-prod.lock --python-version 3.11 $(LOCK_FLAGS)

clean:
	rm -rf .pytest_cache .ruff_cache .hypothesis test-results htmlcov .coverage *.egg-info $(INSTALLED)
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
