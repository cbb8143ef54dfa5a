# The two commands (README): `make run` and `make test`. Both install first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint typecheck check bench bench-quick clean e2e-deps chromium promtool wrk \
	scaleout-deps decoders

# uv installs the exact versions pinned in uv.lock; it is bootstrapped into the
# venv itself so a fresh machine needs only Python 3.11 and make.
$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==0.13.9

$(VENV)/.installed: $(BIN)/uv pyproject.toml uv.lock
	UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --frozen --inexact --quiet
	touch $@

install: $(VENV)/.installed

run: install
	HOST=$(HOST) PORT=$(PORT) $(BIN)/storefront serve --demo

# pytest-xdist: TEST_WORKERS processes, a whole test file each at a time; each has a
# database and a Redis number of its own (tests/xdist_workers.py). Much of the suite
# waits on the real servers, workers and databases it starts, so 4 fill 2 cores.
TEST_WORKERS ?= 4
test: install
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy

check: lint typecheck test

# The end-to-end tests' tools: Apollo Client, graphql-http and puppeteer-core from
# e2e/package-lock.json, and Debian's Chromium (never a downloaded browser build).
# `make test` skips those tests when these are missing; CI installs them first.
e2e-deps: e2e/node_modules/.package-lock.json chromium

e2e/node_modules/.package-lock.json: e2e/package.json e2e/package-lock.json
	cd e2e && npm ci --no-audit --no-fund --loglevel=error

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

chromium:
	@command -v chromium >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

# promtool, which checks and unit-tests deploy/prometheus/, from Debian's `prometheus`
# package: only that one static binary is unpacked into .venv/bin. Installing the
# package would also start a Prometheus server (its postinst starts and enables the
# systemd unit or init script; only a container's policy-rc.d stops it) and create a
# system user. `make test` skips the promtool tests without it; CI runs this first.
promtool: $(BIN)/uv
	@command -v promtool >/dev/null || [ -x $(BIN)/promtool ] || { \
		tmp=$$(mktemp -d) && \
		{ (cd $$tmp && apt-get download -qq prometheus 2>/dev/null) || \
			{ $(SUDO) apt-get update -qq && (cd $$tmp && apt-get download -qq prometheus); }; } && \
		dpkg-deb --fsys-tarfile $$tmp/prometheus_*.deb | tar -xO ./usr/bin/promtool > $(BIN)/promtool.part && \
		chmod +x $(BIN)/promtool.part && mv $(BIN)/promtool.part $(BIN)/promtool; \
		status=$$?; rm -rf $$tmp; exit $$status; }
	@$$(command -v promtool || echo $(BIN)/promtool) --version | head -n 1

# Debian's PgBouncer and HAProxy for the scale-out tests, which start their own
# processes from deploy/ with configurations of their own (`make test` skips those
# tests without them; under CI they fail). Only what is missing is installed, and
# the packages' services are never left running: a policy-rc.d (unless the host has
# one) refuses their start during the install, and where systemd runs they are
# stopped and disabled after it.
SCALEOUT_TOOLS := pgbouncer haproxy

scaleout-deps:
	@missing=""; for tool in $(SCALEOUT_TOOLS); do \
		command -v $$tool >/dev/null || [ -x /usr/sbin/$$tool ] || missing="$$missing $$tool"; done; \
	[ -z "$$missing" ] || { \
		policy=/usr/sbin/policy-rc.d; added=""; \
		if [ ! -e $$policy ]; then \
			printf '#!/bin/sh\nexit 101\n' | $(SUDO) tee $$policy >/dev/null && \
			$(SUDO) chmod +x $$policy && added=1; fi; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
		status=$$?; \
		[ -z "$$added" ] || $(SUDO) rm -f $$policy; \
		if [ -d /run/systemd/system ]; then for tool in $$missing; do \
			$(SUDO) systemctl disable --now $$tool >/dev/null 2>&1 || true; done; fi; \
		exit $$status; }
	@for tool in $(SCALEOUT_TOOLS); do \
		$$(command -v $$tool || echo /usr/sbin/$$tool) -V 2>&1 | head -n 1; done

# The benchmark suite (README: Benchmarks), never part of `make test`: PostgreSQL
# `bench_medium` (created and seeded on first use), the Redis database BENCH_REDIS_URL
# (flushed), wrk from Debian. BENCH_BASELINE= (empty) measures this checkout alone.
BENCH_BASELINE ?= a2988d0
BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/bench_medium
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/13
BENCH_SUITE = $(BIN)/python -m bench.suite $(if $(BENCH_BASELINE),--baseline $(BENCH_BASELINE)) \
	--database-url $(BENCH_DATABASE_URL) --redis-url $(BENCH_REDIS_URL)

bench: install wrk
	$(BIN)/python -m bench.prepare --database-url $(BENCH_DATABASE_URL)
	$(BENCH_SUITE) $(BENCH_ARGS)

bench-quick: install wrk
	$(BIN)/python -m bench.prepare --database-url $(BENCH_DATABASE_URL)
	$(BENCH_SUITE) --quick $(BENCH_ARGS)

# The command-line decoders the compression tests feed our coded answers to (zstd and
# gzip come with Debian; brotli's does not). `make test` skips them where one is
# missing; under CI they fail, so CI installs them first.
decoders:
	@command -v brotli >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends brotli; }

wrk:
	@command -v wrk >/dev/null || { \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends wrk; }

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache e2e/node_modules
