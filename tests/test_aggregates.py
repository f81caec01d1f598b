"""The job's aggregates (pipelines.aggregates): combines over Arrow batches give the figures of the
whole table whichever way the records are split, and the RunSummary round-trips as JSON."""

from __future__ import annotations

import datetime as dt

import fsspec
import pyarrow as pa
import pytest

from pipelines import aggregates, model
from pipelines.aggregates import NULL, Counts, RunSummary, TopRows, combine


def victims(n: int) -> pa.Table:
    rows = [{"record_uid": f"r{i}", "feed_id": ("pnp_victims", "mp_victims")[i % 2], "agency": ("PNP", "MP")[i % 2],
             "event_year": 2018 + i % 3 if i % 7 else None, "event_date": dt.date(2018, 1, 1),
             "sex": (None, "FEMALE", "MALE")[i % 3], "child_adult": ("CHILD", "ADULT", None, "ADULT")[i % 4],
             "nationality": "PER", "exploitation_type": None, "source_file": "x.csv", "source_row": i}
            for i in range(n)]
    return pa.Table.from_pylist(rows, schema=model.table("victim").schema(include_restricted=False))


def split(table: pa.Table, *cuts: int) -> list[pa.Table]:
    edges = [0, *cuts, table.num_rows]
    return [table.slice(a, b - a) for a, b in zip(edges, edges[1:])]


def combine_parts(fn, parts: list[pa.Table]):
    """As a runner may: each part in its own accumulator, then the accumulators merged."""
    accs = [fn.add_input(fn.create_accumulator(), p) for p in parts]
    return fn.extract_output(fn.merge_accumulators(accs))


@pytest.mark.parametrize("cuts", [(), (1,), (5, 6, 30), (0, 59)])
def test_counts_of_parts_equal_the_counts_of_the_whole(cuts):
    table = victims(60)
    fn = Counts(aggregates.record_counts("victim"))
    whole = combine(fn, table)
    assert combine_parts(fn, split(table, *cuts)) == whole
    assert whole["feeds"] == {"pnp_victims": 30, "mp_victims": 30}
    pnp = whole["agencies"]["PNP"]
    assert pnp["records"] == 30 and sum(pnp["sex"].values()) == 30 and pnp["sex"][NULL] == 10  # nulls are counted
    assert sum(n for years in whole["volumes"].values() for n in years.values()) == 60


def test_empty_batches_add_nothing_and_counts_nest():
    fn = Counts(aggregates.quarantine_counts)
    empty = pa.Table.from_pylist([], schema=model.table("quarantine").schema())
    assert combine(fn, empty) == {}
    assert aggregates.add_counts({"a": {"x": 1}, "n": 2}, {"a": {"x": 2, "y": 1}, "n": 3}) == {"a": {"x": 3, "y": 1}, "n": 5}
    assert combine_parts(Counts(), [{"a": {"x": 1}}, {"a": {"x": 2}}]) == {"a": {"x": 3}}  # counts already


@pytest.mark.parametrize("cuts", [(), (3,), (10, 11, 40)])
def test_top_rows_of_parts_are_the_top_rows_of_the_whole(cuts):
    table = pa.table({"p": [None if i % 9 == 0 else (i * 37 % 50) / 50 for i in range(60)],
                      "uid": [f"u{i:02d}" for i in range(60)], "secret": ["x"] * 60})
    order = [("p", "descending"), ("uid", "ascending")]
    fn = TopRows(7, order, lambda t: t.select(["p", "uid"]))
    whole = table.select(["p", "uid"]).sort_by(order).slice(0, 7).to_pylist()
    assert combine_parts(fn, split(table, *cuts)) == whole
    assert all("secret" not in r for r in whole)  # only what ``prepare`` keeps leaves the batch
    nulls_last = TopRows(60, [("p", "ascending")])
    assert [r["p"] for r in combine_parts(nulls_last, split(table, 30))][-7:] == [None] * 7


def test_conflict_kinds_tell_gaps_from_contradictions():
    conflicts = pa.table({"person_id": ["P1", "P1", "P2"], "role": ["victim"] * 3, "attribute": ["sex", "a", "a"],
                          "values": [["MP=FEMALE", "PNP=MALE"], ["MP=X", "PNP=UNKNOWN"], ["MP=X", "PNP=X", "SUNAFIL=Y"]],
                          "n_records": pa.array([2, 2, 3], pa.int32())})
    assert aggregates.conflict_kind(conflicts, "UNKNOWN").to_pylist() == ["contradiction", "gap", "contradiction"]
    counts = combine(Counts(aggregates.conflict_counts("UNKNOWN")), conflicts)
    assert (counts["total"], counts["persons"]) == (3, 2)
    assert counts["kinds"] == {"gap": {"total": 1, "persons": 1}, "contradiction": {"total": 2, "persons": 2}}


def test_name_words_are_the_unmapped_words_found_among_names():
    names = pa.table({"given_names": ["María Elena", None], "paternal_surname": ["Quispe", "Ñañez-Pérez"]})
    candidates = sorted(aggregates.words(pa.array(["QUISPE 12", "TRATA", "maria"])))
    assert aggregates.name_words_in(names, candidates) == ["MARIA", "QUISPE"]
    assert aggregates.name_words_in(names, []) == []


def test_the_summary_round_trips_and_its_kept_copy_holds_no_name_words(tmp_path):
    summary = RunSummary(records={"victim": combine(Counts(aggregates.record_counts("victim")), victims(8))},
                         funnel={f"ARRESTED->{NULL}": 3}, name_words=["QUISPE"])
    assert RunSummary.from_json(summary.to_json()) == summary
    with pytest.raises(ValueError, match="unknown fields"):
        RunSummary.from_json('{"records": {}, "surprise": 1}')
    fs = fsspec.filesystem("file")
    path = summary.write(fs, str(tmp_path))
    assert "QUISPE" not in open(path, encoding="utf-8").read()
    assert RunSummary.read(fs, str(tmp_path / aggregates.OUTPUT_FOLDER)).records == summary.records
