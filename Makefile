# Nightshift — every command a user or CI runs goes through here.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# The project's pinned Node.js (scripts/stack/node.sh installs it when the machine's is older)
export PATH := $(CURDIR)/.tools/node/bin:$(PATH)
NODE_RUN := node --import tsx

.PHONY: help install up down status migrate worker test lint psql produce check backfill schedule unschedule demo bench schema

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

test: up ## lint, then run the whole test suite against the real services
	@$(MAKE) --no-print-directory lint
	@npx vitest run

lint: ## type-check, lint and check formatting
	@npx tsc -p tsconfig.json --noEmit
	@npx eslint .
	@npx prettier --check .

psql: ## open psql as the read-only analyst role
	@bash scripts/psql.sh

worker: ## run a worker in the foreground (Ctrl-C stops it gracefully)
	@$(NODE_RUN) scripts/worker.ts

produce: ## produce events: make produce EVENTS=50000 DAYS=3 START=2024-12-01 SEED=42 BAD_RATE=0.01
	@$(NODE_RUN) scripts/produce.ts $(if $(EVENTS),--events $(EVENTS)) $(if $(DAYS),--days $(DAYS)) \
		$(if $(START),--start $(START)) $(if $(SEED),--seed $(SEED)) $(if $(BAD_RATE),--bad-rate $(BAD_RATE))

check: ## run the data-quality checks for a date: make check DATE=2024-12-17
	@$(NODE_RUN) scripts/check.ts $(if $(DATE),--date $(DATE))

backfill: ## re-run dates: make backfill DATE=… or FROM=… TO=… [CONCURRENCY=3] [MODE=all|missing|failed]
	@$(NODE_RUN) scripts/backfill.ts $(if $(DATE),--date $(DATE)) $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO)) \
		$(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) $(if $(MODE),--mode $(MODE))

schedule: ## create or update the daily schedule (CRON='0 2 * * *' UTC by default)
	@$(NODE_RUN) scripts/schedule.ts create $(if $(CRON),--cron '$(CRON)')

unschedule: ## remove the daily schedule
	@$(NODE_RUN) scripts/schedule.ts delete

demo: up ## produce several days of events, run them through Temporal, print a summary
	@$(NODE_RUN) scripts/demo.ts

bench: ## benchmark each stage against a raw COPY baseline: make bench EVENTS=1000000
	@$(NODE_RUN) scripts/bench.ts $(if $(EVENTS),--events $(EVENTS))

schema: ## write the published event contract schema/event.v1.schema.json from lib/event-schema.ts
	@$(NODE_RUN) scripts/write-event-schema.ts
