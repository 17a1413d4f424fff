# newsflow: `make help` lists every target. Targets that need Python run `make setup` first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FEEDS ?= feeds.txt
PYTEST_ARGS ?=
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

.PHONY: help setup tools run demo test test-unit test-integration test-faults soak lint fmt up down logs ps \
        migrate topics lag dlq dlq-prune replay replay-from bench bench-fetcher bench-parser bench-enricher bench-writer bench-alerter eval hostile docs stack-up stack-down clean

help: ## List the targets
	@if [ -t 1 ] && [ -z "$$NO_COLOR" ]; then on='\033[36m'; off='\033[0m'; else on=; off=; fi; \
	awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %s%-18s%s %s\n", on, $$1, off, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 not found: install it or set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install newsflow with its dev tools (idempotent)

tools: ## Install system tools the tests use (Debian's docker-compose, to validate the compose file)
	@command -v docker-compose >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq docker-compose >/dev/null; \
	  else echo "docker-compose missing: sudo apt-get install docker-compose"; exit 1; fi; }

run: setup ## Run the pipeline on feeds.txt with the embedded broker and PostgreSQL (Ctrl-C stops)
	$(BIN)/newsflow run --feeds $(FEEDS)

demo: setup ## Offline demo: serve the bundled sample site on loopback and run --once against it
	$(BIN)/newsflow demo

test: setup tools ## Unit + integration tests (real broker and PostgreSQL), plus a fault subset
	$(BIN)/newsflow schemas check
	$(BIN)/pytest -m "not faults" $(PYTEST_ARGS)
	NEWSFLOW_FAULTS_ARTICLES=100 $(BIN)/pytest -m faults $(PYTEST_ARGS) \
	  -k "poison or (kill9 and enricher) or hostile or broker_killed"

test-unit: setup ## Unit tests only (seconds, no infrastructure)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

test-integration: setup tools ## Integration tests only
	$(BIN)/pytest tests/integration -m "not faults" $(PYTEST_ARGS)

test-faults: setup ## Fault-injection tests (kill -9, PostgreSQL restarts, poison messages)
	$(BIN)/pytest -m faults $(PYTEST_ARGS)

soak: setup ## make run for DURATION s (3600) at RATE new articles/s (0.5): RSS and table sizes start/end (not in CI)
	$(BIN)/python -m tests.soak.run --duration $(or $(DURATION),3600) --rate $(or $(RATE),0.5)

lint: setup ## ruff format --check, ruff check, mypy (non-mutating)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy shared services

fmt: setup ## Format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: setup ## Regenerate docs/schemas, the README settings table and .env.example
	$(BIN)/python -m services.cli.docs

stack-up: setup ## Start the embedded broker and PostgreSQL in the background
	$(BIN)/newsflow stack up

stack-down: setup ## Stop the embedded stack
	$(BIN)/newsflow stack down

migrate: setup ## Apply database migrations (embedded or NEWSFLOW_DATABASE_URL)
	$(BIN)/newsflow db upgrade

topics: setup ## Create every topic with explicit partitions (idempotent)
	$(BIN)/newsflow topics create

lag: setup ## Consumer-group lag per topic and partition
	$(BIN)/newsflow lag

dlq: setup ## Dead letters grouped by stage and error kind
	$(BIN)/newsflow dlq list

dlq-prune: setup ## Delete replayed dead letters older than BEFORE (default 30d; PENDING=1: unreplayed too)
	$(BIN)/newsflow dlq prune --before $(or $(BEFORE),30d) $(if $(PENDING),--include-pending)

replay: setup ## Re-inject dead letters (STAGE=fetch|parse|enrich, SINCE=2026-01-01T00:00)
	$(BIN)/newsflow dlq replay $(if $(STAGE),--stage $(STAGE)) $(if $(SINCE),--failed-since $(SINCE))

replay-from: setup ## Re-run later stages from stored data (FROM=articles|pages SINCE=2026-01-01)
	$(BIN)/newsflow replay --from $(FROM) --stored-since $(SINCE)

bench: setup ## End-to-end benchmark on a synthetic loopback news site (writes bench-results/)
	$(BIN)/pip install --quiet -e ".[dev,bench]"
	$(BIN)/python -m tests.bench.run

bench-fetcher: setup ## Fetcher benchmark on loopback: pages/s over 200 hosts (ARGS="--help" for options)
	$(BIN)/python -m tests.bench.fetcher $(ARGS)

bench-parser: setup ## Parser benchmark: p50/p95 per page on the fixture pages, one core
	$(BIN)/python -m tests.bench.parser $(ARGS)

bench-enricher: setup ## Enricher benchmark: words/s on synthetic articles
	$(BIN)/python -m tests.bench.enricher $(ARGS)

bench-writer: setup ## Writer benchmark: articles/s into the embedded PostgreSQL
	$(BIN)/python -m tests.bench.writer $(ARGS)

bench-alerter: setup ## Alerter: matcher articles/s with 1,000 watches, then stored->delivered latency
	$(BIN)/python -m tests.bench.alerter_matcher $(ARGS)
	$(BIN)/python -m tests.bench.alerter_latency

eval: setup ## Enricher quality: precision/recall on the dev and held-out gold sets
	$(BIN)/python -m tests.bench.enricher --eval tests/fixtures/enricher/eval.json \
	  --eval tests/fixtures/enricher/eval_holdout.json $(ARGS)

hostile: setup ## Run the hostile-input corpus through the real pipeline and print case -> outcome
	$(BIN)/python -m tests.hostile.run

up: ## docker compose: build and start Kafka, PostgreSQL, the services, Prometheus, Grafana
	$(COMPOSE) up -d --build

down: ## docker compose: stop everything
	$(COMPOSE) down

logs: ## docker compose: follow the logs
	$(COMPOSE) logs -f --tail=100

ps: ## docker compose: list services
	$(COMPOSE) ps

clean: ## Remove the venv and local state (stops the embedded stack first)
	-$(BIN)/newsflow stack down
	rm -rf $(VENV) .newsflow .pytest_cache .mypy_cache .ruff_cache
