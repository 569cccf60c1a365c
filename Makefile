# The three commands a user needs: `make run`, `make test`, `make ui`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
# Dagster's run history lives beside the data it describes (`CDP_DATA_DIR`, default ./data).
export DAGSTER_HOME ?= $(abspath $(or $(CDP_DATA_DIR),$(CURDIR)/data))/dagster_home
# dbt (and dagster-dbt's dev-time manifest preparation) come from the project's environment.
export PATH := $(CURDIR)/$(BIN):$(PATH)

# Demo size; override e.g. `make run CUSTOMERS=20000 DAYS=365`.
CUSTOMERS ?= 2000
DAYS ?= 365

.PHONY: run test test-slow test-spark test-bench ui bench clean

# Benchmark size: small | medium | large.
SIZE ?= small

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

run: $(BIN)/.installed
	$(BIN)/cdp run --customers $(CUSTOMERS) --days $(DAYS)

test: $(BIN)/.installed
	$(BIN)/python -m pytest

# Long reliability tests (the UI launched through GraphQL); CI runs them after `make test`.
test-slow: $(BIN)/.installed
	$(BIN)/python -m pytest -m slow

# The dbt project on a local Apache Spark, compared with DuckDB (needs Java 17); a separate CI target.
$(BIN)/.installed-spark: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	touch $@

# The test skips without pyspark or Java; here their absence is an error, not a green skip.
test-spark: $(BIN)/.installed-spark
	$(BIN)/python -c "import pyspark, dbt.adapters.spark" && java -version 2>/dev/null
	$(BIN)/python -m pytest -m spark

# The benchmark's extra: lifetimes (timed beside our CLV fit) and psutil (memory of all processes).
$(BIN)/.installed-bench: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	touch $@

# `cdp bench --size small` end to end, its report checked; CI runs it.
test-bench: $(BIN)/.installed-bench
	$(BIN)/python -m pytest -m bench

# DAYS sets the history length (365 by default, the length the targets are stated for).
bench: $(BIN)/.installed-bench
	$(BIN)/cdp bench --size $(SIZE) --days $(DAYS) --out data/bench/pipeline-$(SIZE)-$(DAYS)d.json

# The UI's port on 127.0.0.1, e.g. `make ui PORT=3001`.
PORT ?= 3000

ui: $(BIN)/.installed
	$(BIN)/cdp ui --port $(PORT)

clean:
	rm -rf data dbt_project/target dbt_project/logs
