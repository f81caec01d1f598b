# Concilia: `make run` (install + reconcile the committed sample feeds) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out
FEEDS ?= sample_feeds
STAMP := $(VENV)/.installed

.PHONY: install run test bench bench-linkage docs sample clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,gcp]"  # gcp: the Dataflow translation test
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/concilia run --feeds $(FEEDS) --out $(OUT) --demo-key  # sample data: the public demo key, outputs marked demo

test: $(STAMP)
	$(BIN)/python -m pytest

docs: $(STAMP)
	$(BIN)/concilia docs

sample: $(STAMP)
	$(BIN)/concilia sample --out $(FEEDS) --seed 2018

bench: $(STAMP)
	$(BIN)/python benchmarks/run_bench.py

clean:
	rm -rf $(OUT) .pytest_cache
