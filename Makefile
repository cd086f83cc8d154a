# kratos-dtm-rs — run `make` for the list of targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash
CARGO ?= cargo
APP ?= stock

# help: list every target with its one-line comment
.PHONY: help
help:
	@awk '/^# [a-z-]+: / { sub(/^# /, ""); split($$0, a, ": "); printf "  \033[36m%-14s\033[0m %s\n", a[1], substr($$0, length(a[1]) + 3) }' $(MAKEFILE_LIST)

# init: fetch every crate the workspace needs (no system protoc is needed)
.PHONY: init
init:
	$(CARGO) fetch

# api: regenerate the Rust, HTTP routes and descriptors from api/**/*.proto
.PHONY: api
api:
	$(CARGO) build -p api

# build: build every crate and binary
.PHONY: build
build:
	$(CARGO) build --workspace --all-targets

# run: run one app with its shipped config (APP=coordinator|stock|order)
.PHONY: run
run:
	$(CARGO) run -p $(APP)

# demo: start coordinator, stock and order (SQLite under target/demo) and run five transactions
.PHONY: demo
demo:
	$(CARGO) build -q -p coordinator -p stock -p order -p e2e --bins
	$(CARGO) run -q -p e2e --bin demo

# test: run every test; with TEST_PG_URL/TEST_MYSQL_URL set, the backend suites and the e2e matrix too
.PHONY: test
test:
	$(CARGO) test --workspace --all-targets --no-fail-fast
	@$(MAKE) --no-print-directory test-matrix

# test-matrix: the e2e scenarios with coordinator and services on PostgreSQL, then on MySQL/MariaDB,
# then with the coordinator on Redis (services on SQLite). Each entry is store:services:variable.
MATRIX := postgres:postgres:TEST_PG_URL mysql:mysql:TEST_MYSQL_URL redis:sqlite:TEST_REDIS_URL
.PHONY: test-matrix
test-matrix:
	@set -e; for entry in $(MATRIX); do \
	  store=$${entry%%:*}; rest=$${entry#*:}; db=$${rest%%:*}; var=$${rest#*:}; \
	  if [ -z "$${!var}" ] && [ "$$CI" != true ]; then \
	    echo "skipping the e2e matrix with the store on $$store: $$var is not set (deploy/ci/servers.sh starts one)"; continue; \
	  fi; \
	  echo "== e2e with E2E_STORE=$$store E2E_DB=$$db"; \
	  E2E_STORE=$$store E2E_DB=$$db $(CARGO) test -p e2e --tests --no-fail-fast; \
	done

# chaos: PlaceOrder (saga/TCC, HTTP/gRPC, some failing) while the coordinator, stock and order are
# SIGKILLed, then every invariant; stops after CHAOS_ORDERS calls or CHAOS_DURATION seconds
CHAOS_ORDERS ?= 2000
CHAOS_DURATION ?= 600
.PHONY: chaos
chaos:
	$(CARGO) build -q -p coordinator -p stock -p order -p e2e --bins
	$(CARGO) run -q -p e2e --bin chaos -- --orders $(CHAOS_ORDERS) --duration $(CHAOS_DURATION)

# lint: rustfmt check and clippy with warnings as errors
.PHONY: lint
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# bench: sagas/s, p50/p99 and CPU per saga of the coordinator vs the raw ceiling (CONCURRENCY=64 DURATION=10s)
CONCURRENCY ?= 64
DURATION ?= 10s
.PHONY: bench
bench:
	$(CARGO) build --release -q -p coordinator -p e2e --bins
	$(CARGO) run --release -q -p e2e --bin bench -- --concurrency $(CONCURRENCY) --duration $(DURATION)

# Containers. `docker compose` (v2) when present, else docker-compose (v1, Debian's package).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_FILE := deploy/docker-compose/docker-compose.yaml
# Base images: the official ones unless BUILDER_IMAGE / RUNTIME_IMAGE name others (offline builds).
BASE_ARGS = $(if $(BUILDER_IMAGE),--build-arg BUILDER_IMAGE=$(BUILDER_IMAGE)) $(if $(RUNTIME_IMAGE),--build-arg RUNTIME_IMAGE=$(RUNTIME_IMAGE))

# docker: build kratos-dtm-rs/{coordinator,stock,order}:latest from deploy/docker/Dockerfile
.PHONY: docker
docker:
	for app in coordinator stock order; do \
	  docker build -f deploy/docker/Dockerfile --build-arg APP=$$app $(BASE_ARGS) -t kratos-dtm-rs/$$app:latest . || exit 1; \
	done

# compose-up: build and start the compose demo (coordinator :36789, stock :8001, order :8002)
.PHONY: compose-up
compose-up:
	$(COMPOSE) -f $(COMPOSE_FILE) up -d --build
	@echo "Place an order: curl -s localhost:8002/api/order/v1/orders -d '{\"user_id\":1,\"sku\":\"SKU-APPLE\",\"quantity\":2}'"

# compose-down: stop the compose demo and remove its volumes
.PHONY: compose-down
compose-down:
	$(COMPOSE) -f $(COMPOSE_FILE) down -v
