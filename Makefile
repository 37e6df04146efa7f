# The platform's commands. `make up` and `make test` are the two a newcomer needs.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
COMPOSE := $(VENV)/lib/python3.11/site-packages/compose/docker-compose
PYTEST_ARGS ?=

.PHONY: help setup test-setup up down status test lock compose-check lint-imports clean

help:
	@echo "make up      set up .venv, start the embedded stack, run the main job, print URLs"
	@echo "make test    set up what tests need and run the whole test suite"
	@echo "make down    stop every process the project started"
	@echo "make status  show each service, its endpoint and health"
	@echo "make lock    recompile requirements.txt from requirements.in"

setup:
	@bash infra/bootstrap.sh

up: setup
	@$(PY) -m infra.stack up
	@$(PY) -m infra.main_job

down:
	@if [ -x $(PY) ]; then $(PY) -m infra.stack down; else echo "nothing to stop (no .venv)"; fi

status: setup
	@$(PY) -m infra.stack status

# The tests also need Debian's Chromium for the browser test (BROWSER_TESTS=0 skips both).
test: test-setup compose-check lint-imports
	@$(PY) -m pytest $(PYTEST_ARGS)

# The venv and tools, then the real-music corpus of the recorded_music tests (built once per user).
test-setup:
	@BROWSER_TESTS=$${BROWSER_TESTS:-1} bash infra/bootstrap.sh
	@$(PY) -m fma_sample recorded

compose-check: setup
	@$(COMPOSE) -f docker-compose.yaml --env-file infra/compose.env.example config -q
	@echo "docker-compose.yaml: valid"

# The layer rule (README "Architecture"): import-linter's contracts in pyproject.toml.
lint-imports: setup
	@$(VENV)/bin/lint-imports --no-logo --no-cache

lock:
	@$(VENV)/bin/uv pip compile requirements.in -o requirements.txt --python-version 3.11 --python $(PY)

clean: down
	rm -rf .platform
