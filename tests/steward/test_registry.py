"""Stable person ids from the registry (pipelines/steward/registry.py), on small tables."""

import pyarrow as pa

from pipelines.privacy import demo_key
from pipelines.steward.registry import assign, current_keys

KEY = demo_key()


def _records(uids, label="", year=2018):
    return pa.table({"record_uid": pa.array(uids, pa.string()), "event_year": pa.array([year] * len(uids), pa.int32())})


def _membership(groups):
    """Clusters as lists of uids -> membership with a provisional id per cluster (as cluster() gives)."""
    rows = [(u, f"Ptmp{i}") for i, g in enumerate(groups) if len(g) > 1 for u in g]
    return pa.table({"record_uid": pa.array([u for u, _ in rows], pa.string()),
                     "person_id": pa.array([p for _, p in rows], pa.string()),
                     "match_rule": pa.nulls(len(rows), pa.string())})


def _run(groups, previous=None, label=""):
    uids = sorted(u for g in groups for u in g)
    current = [current_keys(_records(uids), KEY, label)]
    assigned = assign(_membership(groups), current, [previous] if previous is not None else [], label, "victim", KEY, "run")
    ids = dict(zip(assigned["records"].column("record_uid").to_pylist(), assigned["records"].column("person_id").to_pylist()))
    return ids, assigned


def _registry(ids, label=""):
    uids = sorted(ids)
    keys = current_keys(_records(uids), KEY, label)
    return pa.table({"record_uid": keys.column("key"), "person_id": pa.array([ids[u] for u in uids], pa.string()),
                     "delivery_period": pa.array([label] * len(uids), pa.string()), "period": keys.column("period")})


GROUPS = [["f:1", "f:2", "g:7"], ["f:3"], ["f:4", "g:9"]]


def test_same_key_same_inputs_same_ids():
    first, _ = _run(GROUPS)
    again, _ = _run(GROUPS)
    assert first == again
    assert len(set(first.values())) == 3 and first["f:1"] == first["g:7"]
    rerun, assigned = _run(GROUPS, _registry(first))
    assert rerun == first and assigned["lineage"].num_rows == 0


def test_a_new_record_joining_a_person_changes_no_id():
    first, _ = _run(GROUPS)
    grown, assigned = _run([["a:0", *GROUPS[0]], *GROUPS[1:]], _registry(first))
    assert {u: grown[u] for u in first} == first
    assert grown["a:0"] == first["f:1"]  # a smaller record id no longer renames the person
    assert assigned["lineage"].num_rows == 0


def test_merge_split_and_retire_are_in_the_lineage():
    first, _ = _run(GROUPS)
    # f:3 joins the first person; g:7 leaves it; f:4 and g:9 are not delivered again
    later, assigned = _run([["f:1", "f:2", "f:3"], ["g:7"]], _registry(first))
    assert later["f:1"] == first["f:1"]
    assert later["g:7"] not in first.values()  # a new id, never an earlier person's
    rows = {(r["old_person_id"], r["new_person_id"], r["change"]) for r in assigned["lineage"].to_pylist()}
    assert rows == {(first["f:3"], first["f:1"], "merged"), (first["f:1"], later["g:7"], "split"),
                    (first["f:4"], None, "retired")}


def test_the_person_holding_most_records_keeps_the_id():
    first, _ = _run([["f:1", "f:2", "f:3", "f:4"]])
    later, _ = _run([["f:1"], ["f:2", "f:3", "f:4"]], _registry(first))
    assert later["f:2"] == first["f:1"] and later["f:1"] != first["f:1"]


def test_records_of_other_periods_are_carried_and_counted_as_earlier():
    first, _ = _run(GROUPS, label="2018")
    previous = _registry(first, "2018")
    key_of = dict(zip(sorted(first), previous.column("record_uid").to_pylist()))
    uids = ["h:1"]
    # the linkage put h:1 with the carried records of the first person; the others stay as they were
    groups = [["h:1", *(key_of[u] for u in GROUPS[0])], [key_of[u] for u in GROUPS[2]]]
    membership = _membership(groups)
    assigned = assign(membership, [current_keys(_records(uids, year=2019), KEY, "2019")], [previous], "2019",
                      "victim", KEY, "run")
    row = assigned["records"].to_pylist()[0]
    assert row["person_id"] == first["f:1"]
    assert (row["first_period_seen"], row["last_period_seen"], row["seen_in_earlier_period"]) == ("2018", "2019", True)
    assert assigned["lineage"].num_rows == 0  # nothing retired: 2018's records are carried, not replaced
    assert assigned["carried"].num_rows == previous.num_rows


def test_judgements_name_carried_records_by_their_registry_key(tmp_path):
    import pyarrow.parquet as pq

    from pipelines.link import constraints
    from pipelines.steward.registry import judgements_on_carried

    first, _ = _run(GROUPS, label="2018")
    folder = tmp_path / "victims"
    folder.mkdir()
    pq.write_table(_registry(first, "2018"), folder / "part-0.parquet")
    judged = constraints.as_table([("f:1", "h:1", "different")])
    moved = judgements_on_carried(judged, str(folder / "*.parquet"), "2019", KEY)
    key_of_f1 = current_keys(_records(["f:1"]), KEY, "2018").column("key")[0].as_py()
    assert moved.column("left_uid").to_pylist() == [key_of_f1]  # carried: by key
    assert moved.column("right_uid").to_pylist() == ["h:1"]  # this run's record: by uid
    assert judgements_on_carried(judged, str(folder / "*.parquet"), "2018", KEY).column("left_uid").to_pylist() == ["f:1"]


def test_a_registry_written_by_an_earlier_release_gets_the_columns_it_lacks():
    from pipelines.link.prepare import comparison_table
    from pipelines.steward.registry import carried_rows, comparison_fields, registry_schema, upgraded

    from tests.link.conftest import records
    from tests.link.test_aliases import offender

    schema = registry_schema("offender")
    rows = comparison_table(records([offender("pnp:1", "LUIS", "RAMOS", "TORRES")], role="offender"))
    rows = rows.select([n for n in comparison_fields("offender").names if n in rows.column_names])
    keys = pa.table({"person_id": ["P1"], "delivery_period": ["2018"], "period": ["2018"], "run_id": ["r1"]})
    full = pa.table({**{n: rows.column(n) for n in rows.column_names}, **{n: keys.column(n) for n in keys.column_names}})
    # written before document sets and aliases were compared
    old = full.drop_columns(["documents", "alias_names", "alias_sounds", "name_sound", "alias_keys"])
    new = upgraded(old, "offender")
    assert set(schema.names) <= set(new.column_names)
    assert new.column("documents").to_pylist() == [[]]  # says nothing: the main document is still compared
    assert new.column("alias_keys").to_pylist() == [["LUIS RAMUS TURIS"]]
    carried = carried_rows(new, "2019", []).select(comparison_fields("offender").names)
    assert carried.num_rows == 1
    assert upgraded(full, "offender").equals(full)  # a current registry is left as it is


def test_registry_rows_are_the_linkage_comparison_rows_with_key_period_and_person():
    """The registry's rows of this run's records: the comparison rows the linkage made of them
    (every registry field), the record's registry key for its uid, its period and stable person id."""
    from pipelines import model
    from pipelines.link import linker
    from pipelines.link.prepare import comparison_table
    from pipelines.steward.registry import registry_rows, registry_schema

    uids = sorted(u for g in GROUPS for u in g)
    ids, assigned = _run(GROUPS, label="2019")
    n = len(uids)
    records = model.conform(pa.table({
        "record_uid": pa.array(uids, pa.string()), "event_year": pa.array([2019] * n, pa.int32()),
        "given_names": pa.array(["MARÍA", "ANA", None, "JOSÉ", "LUZ", "ROSA"], pa.string()),
        "paternal_surname": pa.array(["QUISPE", "MAMANI", "HUAMÁN", None, "FLORES", "ROJAS"], pa.string()),
        "document_number": pa.array(["10234567", None, "10234567", "44556677", None, None], pa.string()),
        "document_type": pa.array(["DNI", None, "DNI", "DNI", None, None], pa.string()),
    }), model.table("victim"))
    comparison = linker.slim(comparison_table(records), linker.load_settings())
    rows = registry_rows(comparison.take([5, 0, 3, 1, 4, 2]), assigned, "victim", "2019", "run-1")
    assert rows.schema == registry_schema("victim")
    keys = dict(zip(uids, current_keys(records, KEY, "2019").column("key").to_pylist()))
    order = [uids[i] for i in (5, 0, 3, 1, 4, 2)]
    assert rows.column("record_uid").to_pylist() == [keys[u] for u in order]
    assert rows.column("person_id").to_pylist() == [ids[u] for u in order]
    assert set(rows.column("period").to_pylist()) == {"2019"} and set(rows.column("run_id").to_pylist()) == {"run-1"}
    fields = [f for f in registry_schema("victim").names if f in comparison.column_names and f != "record_uid"]
    assert rows.select(fields).to_pylist() == comparison.take([5, 0, 3, 1, 4, 2]).select(fields).to_pylist()
