"""Blocking rules: each finds its pairs, every pair is scored once, giant blocks are bounded."""

import datetime as dt

import pyarrow.compute as pc
import pytest

from pipelines.link import blocking, linker
from pipelines.link.prepare import comparison_table
from tests.link.conftest import records, settings_with

SETTINGS = linker.load_settings()
RULES = SETTINGS.blocking_rules


def candidate_pairs(rows, settings=SETTINGS, buckets=4):
    comp = linker.slim(comparison_table(records(rows)), settings)
    found, stats = set(), []
    parts = {}
    for bucket, table in blocking.partition_by_block(comp, settings, buckets):
        parts.setdefault(bucket, []).append(table)
    for tables in parts.values():
        import pyarrow as pa

        c = blocking.pairs_in_partition(pa.concat_tables(tables), settings)
        stats.append(c.stats)
        for l, r, n in zip(c.left.column("record_uid").to_pylist(), c.right.column("record_uid").to_pylist(),
                           c.rule.to_pylist()):
            assert (l, r) not in {(a, b) for a, b, _ in found}, "a pair was scored twice"
            found.add((l, r, n))
    return found, stats


def base(uid, **kw):
    row = {"record_uid": uid, "given_names": "ROSA", "paternal_surname": "DIAZ", "maternal_surname": "VEGA",
           "birth_date": dt.date(1999, 1, 2), "event_date": dt.date(2018, 3, 3), "age_at_event": 19}
    return {**row, **kw}


def test_each_rule_finds_its_pairs():
    cases = {
        "document": [base("a", document_number="41728563", given_names="ANA", paternal_surname="X", birth_date=None,
                          age_at_event=None),
                     base("b", document_number="41728563", given_names="LUZ", paternal_surname="Y", birth_date=None,
                          age_at_event=None)],
        "name_token_pairs_year": [base("a", maternal_surname="P"), base("b", maternal_surname="Q", birth_date=None)],
        "name_token_pairs_place": [base("a", maternal_surname="P", ubigeo="150101"),
                                   base("b", maternal_surname="Q", birth_date=None, age_at_event=None, ubigeo="150101")],
        "name_token_pairs": [base("a", maternal_surname="P"),
                             base("b", maternal_surname="Q", birth_date=None, age_at_event=None)],
        "given_birth_date": [base("a", paternal_surname="DIAZ", maternal_surname="ORE"),
                             base("b", paternal_surname="DIOS", maternal_surname="X")],
        "name_token_birth_year": [base("a", paternal_surname="DIAZ", maternal_surname="ORE"),
                                  base("b", paternal_surname="DIOS", maternal_surname="ORE", given_names="ROSAURA",
                                       birth_date=dt.date(1999, 7, 7))],  # one word (ORE) and the year
        "police_report": [base("a", police_report_ref="AT-1", given_names="ANA", birth_date=None, age_at_event=None),
                          base("b", police_report_ref="AT-1", given_names="LUZ", paternal_surname="ORTIZ",
                               maternal_surname="RUIZ", birth_date=None, age_at_event=None)],
        "prosecutor_case": [base("a", prosecutor_case_ref="CF-9", given_names="ANA", birth_date=None, age_at_event=None),
                            base("b", prosecutor_case_ref="CF-9", given_names="LUZ", paternal_surname="ORTIZ",
                                 maternal_surname="RUIZ", birth_date=None, age_at_event=None)],
    }
    assert set(cases) | {"alias_names"} == {r.name for r in RULES}  # alias_names: offenders, test_aliases.py
    for rule, rows in cases.items():
        found, _ = candidate_pairs(rows)
        assert {n for _, _, n in found} == {rule}, rule


@pytest.mark.parametrize("change", [
    {"given_names": "DIAZ VEGA", "paternal_surname": "ROSA", "maternal_surname": None},  # fields swapped
    {"paternal_surname": "VEGA", "maternal_surname": "DIAZ"},  # surnames swapped
    {"maternal_surname": None},  # one surname missing
    {"paternal_surname": "DIAS", "given_names": "ROZA"},  # spelled by sound (s/z) in two tokens
    {"given_names": "ROSA DEL CARMEN", "maternal_surname": None},  # compound given name, surname missing
    {"paternal_surname": "DE LA VEGA"},  # a particle
    {"paternal_surname": "DÍAZ", "maternal_surname": "VEGA"},  # accents
])
def test_name_token_pairs_survive_where_a_name_token_landed_and_how_it_was_spelled(change):
    rows = [base("a", birth_date=None, age_at_event=None),
            base("b", **{"birth_date": None, "age_at_event": None, **change})]
    found, _ = candidate_pairs(rows)
    assert {n for _, _, n in found} == {"name_token_pairs"}


def test_name_token_and_birth_year_meet_an_age_only_record_on_either_possible_year():
    # 19 at an event in March 2018: born in 1998 or 1999; the other record says 1998-11-02
    rows = [base("a", given_names="ROSA", paternal_surname="DIAZ", maternal_surname=None, birth_date=None),
            base("b", given_names="ROSARIO", paternal_surname="DIAZ", maternal_surname="X", birth_date=dt.date(1998, 11, 2),
                 age_at_event=None)]
    found, _ = candidate_pairs(rows)
    assert {n for _, _, n in found} == {"name_token_birth_year"}


def test_combination_slots_mean_the_same_whatever_the_number_of_tokens():
    assert blocking.combinations(5, 2)[:6] == blocking.combinations(4, 2)
    assert blocking.combinations(10, 1)[:3] == ((0,), (1,), (2,))
    with pytest.raises(ValueError):
        blocking.combinations(9, 2)  # 36 slots: more than a giant mask holds


def test_a_pair_sharing_many_token_pairs_is_scored_once_in_every_partitioning():
    rows = [base("a", given_names="ROSA MARIA", police_report_ref="AT-1"),
            base("b", given_names="MARIA ROSA", paternal_surname="VEGA", maternal_surname="DIAZ",
                 police_report_ref="AT-1")]
    for buckets in (1, 3, 16):
        found, _ = candidate_pairs(rows, buckets=buckets)  # asserts no pair twice
        assert len(found) == 1


def test_a_pair_found_by_several_rules_is_scored_once_by_the_first():
    found, _ = candidate_pairs([base("a", document_number="41728563"), base("b", document_number="41728563")])
    assert [n for _, _, n in found] == ["document"]


def test_no_pair_across_different_people():
    found, _ = candidate_pairs([base("a"), base("b", given_names="JUAN", paternal_surname="PEREZ", maternal_surname="LUNA",
                                                birth_date=dt.date(1970, 5, 5), age_at_event=48)])
    assert found == set()


GIANT = settings_with(max_block_size=5, giant_block_window=3,
                      giant_block_orders=[["maternal", "given", "birth_year"], ["birth_year", "given", "maternal"]],
                      blocking_rules=[{"name": "paternal_given", "keys": ["paternal", "given1"]}])


def test_giant_blocks_are_windowed_and_counted():
    # 12 ROSA DIAZ: too many to compare every pair (66), so each meets its sorted neighbours
    rows = [base(f"r{i:02d}", maternal_surname=f"M{i % 4}", birth_date=dt.date(1990 + i % 3, 1, 1)) for i in range(12)]
    found, stats = candidate_pairs(rows, GIANT, buckets=1)
    (s,) = stats
    assert s["giant_blocks"] == 1 and s["records_in_giant_blocks"] == 12
    # at most window - 1 = 2 partners per record per order, two orders
    assert 12 <= len(found) <= 2 * 2 * 12 < 66
    assert s["pairs_by_rule"]["paternal_given"] == len(found)


def test_a_giant_block_keeps_duplicates_that_agree_on_the_sort_fields():
    crowd = [base(f"r{i:02d}", maternal_surname=f"M{i:02d}", birth_date=dt.date(1960 + i, 1, 1)) for i in range(30)]
    # the same person twice: agrees on maternal surname and year, or on year when the maternal is mistyped
    twins = [base("x1", maternal_surname="M07", birth_date=dt.date(1967, 5, 5)),
             base("y1", maternal_surname="MX7", birth_date=dt.date(1975, 2, 2))]
    found, _ = candidate_pairs(crowd + twins, GIANT, buckets=1)
    pairs = {(a, b) for a, b, _ in found}
    assert ("r07", "x1") in pairs  # neighbours in the maternal-first order
    assert ("r15", "y1") in pairs  # neighbours in the year-first order despite the mistyped maternal
    assert len(found) < 32 * 31 // 2


def test_a_pair_a_giant_window_misses_is_owned_by_a_rule_that_finds_it_whole():
    rules = [{"name": "paternal_given", "keys": ["paternal", "given1"]},
             {"name": "surnames_birth_year", "keys": ["paternal", "maternal", "birth_year"]}]
    settings = settings_with(GIANT, giant_block_window=2, blocking_rules=rules)
    # 20 ROSA DIAZ (a giant block); x and y far apart in every order, but same surnames and year
    crowd = [base(f"r{i:02d}", maternal_surname=f"M{i:02d}", birth_date=dt.date(1960 + i, 1, 1)) for i in range(20)]
    pair = [base("x", maternal_surname="AAA", birth_date=dt.date(1950, 1, 1), ubigeo="150101"),
            base("y", maternal_surname="AAA", birth_date=dt.date(1950, 6, 1), given_names="ROSA ZOILA")]
    for buckets in (1, 8):
        found, _ = candidate_pairs(crowd + pair, settings, buckets=buckets)
        assert ("x", "y", "surnames_birth_year") in found  # once, by the rule whose block is whole


def test_windowing_is_independent_of_partitioning():
    rows = [base(f"r{i:02d}", maternal_surname=f"M{i % 5}", birth_date=dt.date(1980 + i % 7, 1, 1)) for i in range(40)]
    one, _ = candidate_pairs(rows, GIANT, buckets=1)
    many, _ = candidate_pairs(rows, GIANT, buckets=8)
    assert one == many


def test_rules_satisfied_marks_every_shared_key():
    import pyarrow as pa

    comp = linker.slim(comparison_table(records([base("a", document_number="41728563"),
                                                 base("b", document_number="41728563")])), SETTINGS)
    parts = [t for _, t in blocking.partition_by_block(comp, SETTINGS, 1)]
    c = blocking.pairs_in_partition(pa.concat_tables(parts), SETTINGS)
    (mask,) = c.satisfied.to_pylist()
    names = {r.name for i, r in enumerate(RULES) if mask >> i & 1}
    assert {"document", "name_token_pairs", "given_birth_date", "name_token_birth_year"} <= names
    assert c.rule.to_pylist() == ["document"]
    assert pc.sum(comp.column("birth_year")).as_py() == 2 * 1999


def test_block_sizes_pickle_at_their_own_size():
    # group_by's output comes in chunks that share large buffers, and a pickled chunk carries its
    # whole buffer: a Beam element must not (a million records' block sizes pickled to 2.3 GB)
    import pickle

    import numpy as np
    import pyarrow as pa

    keys = pa.array([f"KEY{i:06d}" for i in range(100_000)])
    part = pa.table({"rule": pa.array(np.zeros(len(keys), dtype=np.int8)), "key": keys,
                     "records": pa.array(np.ones(len(keys), dtype=np.int64))})
    merged = blocking.merge_block_sizes([part, part.slice(0, 50_000)])
    assert pa.compute.sum(merged.column("records")).as_py() == 150_000
    assert all(c.num_chunks == 1 for c in merged.columns)
    assert len(pickle.dumps(merged)) < 2 * merged.nbytes


def test_a_rule_may_bound_its_own_blocks():
    rows = [base(f"r{i:02d}", maternal_surname=f"M{i % 4}", birth_date=dt.date(1990 + i % 3, 1, 1)) for i in range(12)]
    rule = {"name": "paternal_given", "keys": ["paternal", "given1"], "max_block_size": 5, "giant_block_window": 2,
            "giant_block_orders": [["birth_year", "maternal"]]}
    settings = settings_with(max_block_size=100, blocking_rules=[rule])
    found, stats = candidate_pairs(rows, settings, buckets=1)
    (s,) = stats
    assert s["giant_blocks"] == 1  # 12 records: giant under the rule's own bound of 5, not the settings' 100
    assert len(found) == 11  # one order, one neighbour each


def test_a_partition_holds_each_record_once_whatever_the_number_of_its_keys():
    # each record has tens of keys (token pairs, with year and place, token-year keys)
    rows = [base(f"r{i:02d}", given_names="ROSA MARIA", maternal_surname=f"M{i % 3}", ubigeo="150101",
                 police_report_ref=f"AT-{i % 2}") for i in range(9)]
    comp = linker.slim(comparison_table(records(rows)), SETTINGS)
    ((bucket, table),) = list(blocking.partition_by_block(comp, SETTINGS, 1))
    assert table.num_rows == 9
    for buckets in (3, 16):
        parts = list(blocking.partition_by_block(comp, SETTINGS, buckets))
        assert len(parts) > 1
        for _, table in parts:
            uids = table.column("record_uid").to_pylist()
            assert len(uids) == len(set(uids))
    # token keys are placed by their first token: a record with four name words and two
    # single-valued keys (report, given name + birth date) is in at most six of 64 partitions
    where = [t.column("record_uid").to_pylist().count("r00") for _, t in blocking.partition_by_block(comp, SETTINGS, 64)]
    assert 1 < sum(where) <= 6


TOKEN_RULES = [{"name": "name_token_pairs_year", "tokens": "name_tokens", "choose": 2, "keys": ["birth_year"]},
               {"name": "name_token_pairs", "tokens": "name_tokens", "choose": 2}]


def test_two_name_words_with_the_year_find_a_pair_that_a_giant_block_of_the_words_misses():
    settings = settings_with(GIANT, giant_block_window=2, blocking_rules=TOKEN_RULES)
    # 20 ROSA DIAZ born in different years: a giant block of the words ROSA DIAZ; x and y share
    # those two words and the year only (y has no maternal surname), and sort far apart
    crowd = [base(f"r{i:02d}", maternal_surname=f"M{i:02d}", birth_date=dt.date(1960 + i, 1, 1)) for i in range(20)]
    pair = [base("x", maternal_surname="AAA", birth_date=dt.date(1970, 1, 1)),
            base("y", maternal_surname=None, given_names="ROSA ZOILA", birth_date=dt.date(1970, 6, 1))]
    alone, _ = candidate_pairs(crowd + pair, settings_with(settings, blocking_rules=TOKEN_RULES[1:]), buckets=1)
    assert not {(a, b) for a, b, _ in alone} & {("x", "y")}  # the window of ROSA DIAZ misses them
    for buckets in (1, 8):
        found, stats = candidate_pairs(crowd + pair, settings, buckets=buckets)
        assert ("x", "y", "name_token_pairs_year") in found
        assert sum(s["giant_blocks"] for s in stats) == 1  # ROSA DIAZ; with the year, no block is giant


def test_training_sessions_see_only_pairs_of_their_rules_whole_blocks():
    import pyarrow as pa

    rules = [{"name": "paternal_given", "keys": ["paternal", "given1"]},
             {"name": "surnames_birth_year", "keys": ["paternal", "maternal", "birth_year"]}]
    settings = settings_with(GIANT, blocking_rules=rules)
    crowd = [base(f"r{i:02d}", maternal_surname=f"M{i:02d}", birth_date=dt.date(1960 + i, 1, 1)) for i in range(20)]
    pair = [base("x", maternal_surname="AAA", birth_date=dt.date(1950, 1, 1)),
            base("y", maternal_surname="AAA", birth_date=dt.date(1950, 6, 1))]
    comp = linker.slim(comparison_table(records(crowd + pair)), settings)
    parts = [t for _, t in blocking.partition_by_block(comp, settings, 1)]
    c = blocking.pairs_in_partition(pa.concat_tables(parts), settings)
    by_pair = {(a, b): (n, s, w) for a, b, n, s, w in zip(
        c.left.column("record_uid").to_pylist(), c.right.column("record_uid").to_pylist(), c.rule.to_pylist(),
        c.satisfied.to_pylist(), c.windowed.to_pylist())}
    # x and y share the giant ROSA DIAZ block too: a window's choice, not paternal_given's keys
    assert by_pair[("x", "y")] == ("surnames_birth_year", 0b10, False)
    windowed = [v for v in by_pair.values() if v[2]]
    assert windowed and all(s == 0 for _, s, _ in windowed)
