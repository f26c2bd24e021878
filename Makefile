# Nightshift — every command a user or CI runs goes through here.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NODE_RUN := node --import tsx

.PHONY: help install up down status migrate worker test lint psql produce check backfill schedule unschedule demo bench

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## install what a fresh machine lacks (Node packages, temporal CLI, PostgreSQL, Kafka jars)
	@bash scripts/stack/install.sh

up: install ## start Temporal, PostgreSQL, Kafka and a worker; migrate (idempotent)
	@bash scripts/stack/up.sh
	@$(MAKE) --no-print-directory migrate

down: ## stop the local stack (data stays under .data/)
	@bash scripts/stack/down.sh

status: ## report each service's health
	@bash scripts/stack/status.sh

migrate: ## apply database migrations
	@$(NODE_RUN) scripts/migrate.ts

test: up ## run the whole test suite against the real services
	@npx vitest run

lint: ## type-check, lint and check formatting
	@npx tsc -p tsconfig.json --noEmit
	@npx eslint .
	@npx prettier --check .

psql: ## open psql as the read-only analyst role
	@bash scripts/psql.sh
