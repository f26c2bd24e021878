# Nightshift — every command a user or CI runs goes through here.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# The project's pinned Node.js (scripts/stack/node.sh installs it when the machine's is older); the sbin folders
# last, for runuser (the tests' private PostgreSQL clusters run as the postgres user), which a minimal PATH lacks
export PATH := $(CURDIR)/.tools/node/bin:$(PATH):/usr/sbin:/sbin
# the compiled command line (make build); its exit codes are in the README, make turns any failure into 2
NIGHTSHIFT := node dist/scripts/nightshift.js

.PHONY: help install build up down status migrate worker test faults lint psql produce check backfill schedule unschedule demo bench histories schema

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## install what a fresh machine lacks (Node, Node packages, temporal CLI, PostgreSQL, Kafka jars, versitygw), build dist/
	@bash scripts/stack/install.sh

build: ## compile to dist/ when a source changed since the last build (npm run build: always)
	@bash scripts/stack/install.sh node
	@bash scripts/build.sh --if-changed

up: install ## start Temporal, PostgreSQL, Kafka and a worker; migrate (idempotent)
	@bash scripts/stack/up.sh
	@$(MAKE) --no-print-directory migrate

down: ## stop the local stack (data stays under .data/)
	@bash scripts/stack/down.sh

status: ## report each service's health
	@bash scripts/stack/status.sh

migrate: build ## apply database migrations
	@$(NIGHTSHIFT) migrate

test: up ## lint, then run the whole test suite against the real services
	@$(MAKE) --no-print-directory lint
	@npx vitest run

faults: up ## the fault suite: PostgreSQL (a private cluster) and the worker killed mid-step; a few minutes
	@npx vitest run --config vitest.faults.config.ts

lint: ## type-check, lint and check formatting
	@npx tsc -p tsconfig.json --noEmit
	@npx eslint .
	@npx prettier --check .

psql: build ## open psql as the read-only analyst role: make psql ARGS="-c 'select 1'"
	@$(NIGHTSHIFT) psql $(ARGS)

worker: build ## run a worker in the foreground (Ctrl-C stops it gracefully)
	@$(NIGHTSHIFT) worker

produce: build ## produce events: make produce EVENTS=50000 DAYS=3 START=2024-12-01 SEED=42 BAD_RATE=0.01
	@$(NIGHTSHIFT) produce $(if $(EVENTS),--events $(EVENTS)) $(if $(DAYS),--days $(DAYS)) \
		$(if $(START),--start $(START)) $(if $(SEED),--seed $(SEED)) $(if $(BAD_RATE),--bad-rate $(BAD_RATE))

check: build ## run the data-quality checks for a date: make check DATE=2024-12-17 [FORMAT=json]
	@$(NIGHTSHIFT) check $(if $(DATE),--date $(DATE)) $(if $(FORMAT),--format $(FORMAT))

backfill: build ## re-run dates: make backfill DATE=… or FROM=… TO=… [CONCURRENCY=3] [MODE=all|missing|failed]
	@$(NIGHTSHIFT) backfill $(if $(DATE),--date $(DATE)) $(if $(FROM),--from $(FROM)) $(if $(TO),--to $(TO)) \
		$(if $(CONCURRENCY),--concurrency $(CONCURRENCY)) $(if $(MODE),--mode $(MODE))

schedule: build ## create or update the daily schedule (CRON='0 2 * * *' UTC by default)
	@$(NIGHTSHIFT) schedule create $(if $(CRON),--cron '$(CRON)')

unschedule: build ## remove the daily schedule
	@$(NIGHTSHIFT) schedule delete

demo: up ## produce several days of events, run them through Temporal, print a summary
	@$(NIGHTSHIFT) demo

bench: build ## benchmark every path against a raw COPY baseline: make bench EVENTS=1000000 [ROUNDS=3 HISTORY=30 HISTORY_EVENTS=200000 USERS=U SETTLE=off|cold]
	@$(NIGHTSHIFT) bench $(if $(EVENTS),--events $(EVENTS)) $(if $(ROUNDS),--rounds $(ROUNDS)) $(if $(HISTORY),--history $(HISTORY)) $(if $(HISTORY_EVENTS),--history-events $(HISTORY_EVENTS)) $(if $(USERS),--users $(USERS)) $(if $(filter off,$(SETTLE)),--no-settle) $(if $(filter cold,$(SETTLE)),--cold)

# a development command: it records from the TypeScript sources through the tsx loader
histories: ## record this release's workflow histories for replay: make histories RELEASE=v0.2 [FORCE=1]
	@node --import tsx scripts/record-histories.ts $(if $(RELEASE),--release $(RELEASE)) $(if $(FORCE),--force)

# a development command (tsx): the schema is generated from the TypeScript sources
schema: ## write the published event contract schema/event.v1.schema.json from lib/event-schema.ts
	@node --import tsx scripts/write-event-schema.ts
