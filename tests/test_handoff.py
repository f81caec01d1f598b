"""Tables handed between the job's stages through files (pipelines.core.handoff)."""

import datetime as dt

import pyarrow as pa

from pipelines.core.handoff import Handoff, load_all, load_named, load_shared


def _table(n=3):
    return pa.table({"record_uid": pa.array([f"r{i}" for i in range(n)]),
                     "birth_date": pa.array([dt.date(1990, 1, 1 + i) for i in range(n)], pa.date32()),
                     "tokens": pa.array([["ANA", "MARIA"]] * n, pa.list_(pa.string())),
                     "agency": pa.array(["MP"] * n).dictionary_encode()})


def test_a_table_handed_through_a_file_comes_back_exactly(tmp_path):
    handoff = Handoff(str(tmp_path / "work")).sub("records")
    table = _table()
    ref = handoff.store(table, "records")
    assert isinstance(ref, str) and ref.startswith(str(tmp_path / "work" / "records" / "records-"))
    assert Handoff.load(ref).equals(table) and Handoff.load(ref).schema == table.schema
    assert handoff.store(table, "records") != ref  # every store is a new file: a retried bundle overwrites nothing
    assert handoff.type is str


def test_without_a_folder_the_table_stays_in_the_pcollection():
    handoff = Handoff().sub("records")
    table = _table()
    assert handoff.store(table) is table and Handoff.load(table) is table and handoff.type is pa.Table


def test_named_tables_go_through_files_and_come_back_by_name(tmp_path):
    tables = {"records": pa.table({"uid": ["a", "b"]}), "lineage": pa.table({"n": pa.array([], pa.int64())})}
    refs = Handoff(str(tmp_path)).store_named(tables)
    assert all(isinstance(ref, str) for ref in refs.values())
    assert load_named(refs) == tables
    assert load_named(Handoff().store_named(tables)) == tables  # without a folder: the tables themselves


def test_a_side_input_file_is_read_once_for_its_readers_elements(tmp_path):
    ref = Handoff(str(tmp_path)).store(_table(3))
    first = load_shared(ref)
    assert first == _table(3) and load_shared(ref) is first  # the next element: not read again
    table = _table(2)
    assert load_shared(table) is table


def test_parts_load_as_one_table(tmp_path):
    handoff = Handoff(str(tmp_path))
    parts = [handoff.store(_table(2)), handoff.store(_table(3))]
    assert load_all(parts).num_rows == 5


def test_tables_written_through_the_work_folder_are_the_tables_written_directly(tmp_path):
    """WriteTables with a work folder: each input (a tuple of PCollections too) handed off, then
    read back by the sink; the Parquet rows are the same as without one."""
    import apache_beam as beam
    import pyarrow.parquet as pq

    from pipelines import publish
    from tests.conftest import TEST_RUNNER

    schema = pa.schema([("record_uid", pa.string()), ("tokens", pa.list_(pa.string()))])
    written = {}
    for name, work in (("direct", None), ("handed", str(tmp_path / "work"))):
        with beam.Pipeline(runner=TEST_RUNNER) as p:
            first = p | f"First{name}" >> beam.Create([_table(2), _table(3)])
            second = p | f"Second{name}" >> beam.Create([_table(1)])
            _ = (first, second) | publish.WriteTables(str(tmp_path / name), schema, work=work)
        written[name] = pq.read_table(tmp_path / name).sort_by("record_uid")
    assert written["handed"].num_rows == 6 and written["handed"].equals(written["direct"])
    assert written["handed"].schema.names == schema.names
    assert len(list((tmp_path / "work").glob("table-*.arrow"))) == 3  # one file per input table
