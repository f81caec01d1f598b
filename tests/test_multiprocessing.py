"""Parallel on one machine, two ways: the FnApiRunner with two worker processes of Beam's gives the
same outputs as the in-process run whose heaviest steps ran in a local pool of two processes
(pipelines.core.local_pool); DoFns and the pool's work must be importable from the package, not
defined in __main__."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

pytestmark = pytest.mark.pipeline  # every test here runs the pipeline

FOLDERS = ("harmonised/victims", "harmonised/offenders", "persons", "quarantine",
           "restricted/victims", "restricted/offenders")
# Which rule is recorded for a record that several rules link depends on pair order today
# (pipelines/link); it is compared on its own below so that everything else stays strict.
ORDER_SENSITIVE = {"match_rule"}


def _sorted(table: pa.Table) -> pa.Table:
    # file names and row order depend on bundling; the content must not
    keys = [(c, "ascending") for c in table.column_names
            if not pa.types.is_nested(table.schema.field(c).type) and c not in ORDER_SENSITIVE]
    return table.sort_by(keys)


@pytest.fixture(scope="module")
def runs(sample_run, spanish_multiprocess_run):
    # the session's in-process run and its run of the same feeds on two worker processes (tests/conftest.py;
    # the latter in Spanish, which changes only the report and the printed summary)
    single, multi = sample_run, spanish_multiprocess_run
    tables = {}
    for folder in FOLDERS:
        tables[folder] = tuple(_sorted(ds.dataset(f"{r.run_dir}/{folder}", format="parquet").to_table())
                               for r in (single, multi))
    return single, multi, tables


def test_multi_processing_equals_in_process(runs):
    single, multi, tables = runs
    for folder, (a, b) in tables.items():
        assert a.num_rows > 0 or folder == "quarantine", folder
        assert a.schema == b.schema, folder
        keep = [c for c in a.column_names if c not in ORDER_SENSITIVE]
        assert a.select(keep).equals(b.select(keep)), f"{folder}: multi-processing output differs from in-process"
    assert single.manifest["figures"] == multi.manifest["figures"]


def test_match_rule_is_the_same_in_both_layouts(runs):
    # the linkage model is trained on agreement patterns in a fixed order, so two worker layouts
    # give the same floats, the same edge order and the same rule per record
    _, _, tables = runs
    for folder in ("harmonised/victims", "harmonised/offenders"):
        a, b = tables[folder]
        a, b = a.sort_by("record_uid"), b.sort_by("record_uid")
        assert a.column("match_rule").equals(b.column("match_rule")), folder
