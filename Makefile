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

# test: run every test (PostgreSQL/MariaDB suites run when TEST_PG_URL/TEST_MYSQL_URL are set)
.PHONY: test
test:
	$(CARGO) test --workspace --all-targets --no-fail-fast

# lint: rustfmt check and clippy with warnings as errors
.PHONY: lint
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# bench: sagas/s and p50/p99 of the coordinator vs the raw ceiling (CONCURRENCY=64 DURATION=10s)
CONCURRENCY ?= 64
DURATION ?= 10s
.PHONY: bench
bench:
	$(CARGO) run --release -p e2e --bin bench -- --concurrency $(CONCURRENCY) --duration $(DURATION)

# docker: build the container images (not yet)
.PHONY: docker
docker:
	@echo "make docker: not yet (lands with the demo issue)"

# compose-up: start the docker-compose demo (not yet)
.PHONY: compose-up
compose-up:
	@echo "make compose-up: not yet (lands with the demo issue)"

# compose-down: stop the docker-compose demo (not yet)
.PHONY: compose-down
compose-down:
	@echo "make compose-down: not yet (lands with the demo issue)"
