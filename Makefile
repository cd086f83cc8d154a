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

# api: regenerate the Rust, HTTP routes and descriptors from api/**/*.proto, and rewrite the
# committed OpenAPI documents (api/<name>/<version>/openapi.yaml)
.PHONY: api
api:
	UPDATE_OPENAPI=1 $(CARGO) test -q -p api --test openapi

# build: build every crate and binary
.PHONY: build
build:
	$(CARGO) build --workspace --all-targets

# The apps: deploy/apps.txt, the one list (`cargo xtask new-service` adds to it).
APPS := $(shell grep -v '^[[:space:]]*\#' deploy/apps.txt | awk 'NF { print $$1 }')
# The binaries are always built together: cargo unifies dependency features per selection, so
# building one package alone would rebuild the shared crates between `make demo` and `make run`.
BINS := $(foreach app,$(APPS),-p $(app)) -p e2e --bins
TARGET_DIR = $(shell $(CARGO) metadata -q --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)

# run: run one app of deploy/apps.txt with its shipped config (APP=coordinator|stock|order|…), its SQLite files in data/
.PHONY: run
run:
	$(CARGO) build -q $(BINS) $(if $(filter $(APPS),$(APP)),,-p $(APP))
	$(TARGET_DIR)/debug/$(APP)

# clean-data: delete data/, the SQLite files of `make run` (the apps create them afresh)
.PHONY: clean-data
clean-data:
	rm -rf data

# demo: start coordinator, stock and order (SQLite under target/demo) and run five transactions (KEEP=1: leave them running)
.PHONY: demo
demo:
	@echo "building $(APPS) and the demo driver (debug; the first build takes a few minutes)"
	$(CARGO) build -q $(BINS)
	$(CARGO) run -q -p e2e --bin demo -- $(if $(KEEP),--keep)

# test: every test, then the e2e matrix; server suites need TEST_PG_URL, TEST_MYSQL_URL, TEST_REDIS_URL, TEST_REDIS_CLUSTER_URL, TEST_ETCD_ENDPOINTS
SKIPS := $(CURDIR)/target/test-skips.txt
.PHONY: test
test:
	@mkdir -p $(dir $(SKIPS)); rm -f $(SKIPS)
	@export TEST_SKIP_LOG=$(SKIPS); rc=0; \
	  $(CARGO) test --workspace --all-targets --no-fail-fast || rc=$$?; \
	  $(MAKE) --no-print-directory test-matrix || rc=$$?; \
	  $(MAKE) --no-print-directory test-skips; exit $$rc

# test-skips: what the last `make test` skipped, counted (a skipping test still reports ok)
.PHONY: test-skips
test-skips:
	@if [ -s $(SKIPS) ]; then echo "$$(wc -l < $(SKIPS)) skips:"; sort $(SKIPS) | uniq -c | sort -rn; \
	  else echo "0 skips"; fi

# test-matrix: the e2e scenarios with every app on PostgreSQL, on MariaDB, then the coordinator on Redis and on a Redis Cluster
# Each entry is store:services:variable.
MATRIX := postgres:postgres:TEST_PG_URL mysql:mysql:TEST_MYSQL_URL redis:sqlite:TEST_REDIS_URL \
  redis-cluster:sqlite:TEST_REDIS_CLUSTER_URL
# e2e's test targets picked by name from the whole workspace: `-p e2e` would resolve dependency
# features differently from `make test`'s --workspace and build every shared crate a second time.
E2E_TESTS := $(patsubst tests/e2e/tests/%.rs,--test %,$(wildcard tests/e2e/tests/*.rs))
.PHONY: test-matrix
test-matrix:
	@set -e; for entry in $(MATRIX); do \
	  store=$${entry%%:*}; rest=$${entry#*:}; db=$${rest%%:*}; var=$${rest#*:}; \
	  if [ -z "$${!var}" ] && [ "$$CI" != true ]; then \
	    line="skipping the e2e matrix with the store on $$store: $$var is not set (deploy/ci/servers.sh starts one)"; \
	    echo "$$line"; [ -z "$$TEST_SKIP_LOG" ] || echo "$$line" >> "$$TEST_SKIP_LOG"; continue; \
	  fi; \
	  echo "== e2e with E2E_STORE=$$store E2E_DB=$$db"; \
	  E2E_STORE=$$store E2E_DB=$$db $(CARGO) test --workspace $(E2E_TESTS) --no-fail-fast; \
	done

# chaos: PlaceOrder while coordinator, stock and order are SIGKILLed, then every invariant (CHAOS_ORDERS, CHAOS_DURATION)
# (saga/TCC, HTTP/gRPC, some failing; 400 sagas hang on their branch throughout); it stops after
# CHAOS_ORDERS calls or CHAOS_DURATION seconds.
CHAOS_ORDERS ?= 2000
CHAOS_DURATION ?= 600
.PHONY: chaos
chaos:
	$(CARGO) build -q $(BINS)
	$(CARGO) run -q -p e2e --bin chaos -- --orders $(CHAOS_ORDERS) --duration $(CHAOS_DURATION)

# lint: rustfmt check, comments within 100 columns, clippy with warnings as errors (dtmcli also without its default features)
.PHONY: lint
lint:
	$(CARGO) fmt --all -- --check
	@# rustfmt wraps no comment on stable: this check does, counting characters, not bytes.
	@if LC_ALL=C.UTF-8 grep -nP '^(?=\s*//).{101,}$$' $$(git ls-files '*.rs'); then \
	  echo "comments above run past 100 columns"; exit 1; fi
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p dtmcli --lib --no-default-features -- -D warnings

# bench: sagas/s, p50/p99 and CPU per saga of the coordinator vs the raw ceiling (CONCURRENCY=64 DURATION=10s)
CONCURRENCY ?= 64
DURATION ?= 10s
.PHONY: bench
bench:
	$(CARGO) build --release -q -p coordinator -p e2e --bins
	$(CARGO) run --release -q -p e2e --bin bench -- --concurrency $(CONCURRENCY) --duration $(DURATION)

# bench-drain: sagas/s of 1, 2 and 4 coordinators' pollers draining one backlog, their lost lease
# races, and branch calls made twice (must be 0): DRAIN_STORE=sqlite|postgres|mysql|redis|redis-cluster
DRAIN_STORE ?= sqlite
DRAIN_SAGAS ?= 5000
.PHONY: bench-drain
bench-drain:
	$(CARGO) run --release -q -p e2e --bin drain -- --store $(DRAIN_STORE) --sagas $(DRAIN_SAGAS)

# Containers. `docker compose` (v2) when present, else docker-compose (v1, Debian's package).
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
COMPOSE_FILE := deploy/docker-compose/docker-compose.yaml
# Base images: the official ones unless BUILDER_IMAGE / RUNTIME_IMAGE name others (offline builds).
BASE_ARGS = $(if $(BUILDER_IMAGE),--build-arg BUILDER_IMAGE=$(BUILDER_IMAGE)) $(if $(RUNTIME_IMAGE),--build-arg RUNTIME_IMAGE=$(RUNTIME_IMAGE))

# docker: build kratos-dtm-rs/<app>:latest from deploy/docker/Dockerfile for every app of deploy/apps.txt
.PHONY: docker
docker:
	for app in $(APPS); do \
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
