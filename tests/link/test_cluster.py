"""Clustering guards: no chaining of strangers through a third record."""

import datetime as dt

import pyarrow as pa

from pipelines.link.cluster import attach_persons, cluster
from pipelines.privacy import PseudonymKey
from tests.link.conftest import records, settings_with


def edges(rows):
    cols = ["left_uid", "right_uid", "rule", "match_probability"] + [
        f"{side}_{c}" for side in ("left", "right")
        for c in ("document_type", "document_core", "document_valid", "birth_date")]
    return pa.Table.from_pylist([dict(zip(cols, r)) for r in rows],
                                schema=pa.schema([(c, pa.date32() if c.endswith("birth_date") else
                                                   pa.bool_() if c.endswith("valid") else
                                                   pa.float64() if c == "match_probability" else pa.string())
                                                  for c in cols]))


DOC_A, DOC_B = ("01", "11111111", True), ("01", "22222222", True)
NONE = (None, None, None)
D = dt.date(2000, 1, 1)


def groups(membership):
    by_person = {}
    for r in membership.to_pylist():
        by_person.setdefault(r["person_id"], set()).add(r["record_uid"])
    return sorted(sorted(g) for g in by_person.values())


def test_two_valid_documents_are_never_merged_through_a_third_record():
    # a-c and b-c both look like matches, but a and b carry different DNIs
    membership, refused = cluster(edges([
        ("a", "c", "paternal_given", 0.99, *DOC_A, None, *NONE, None),
        ("b", "c", "paternal_given", 0.95, *DOC_B, None, *NONE, None),
    ]), "victim")
    assert groups(membership) == [["a", "c"]]
    assert refused.to_pylist()[0]["reason"] == "different_valid_documents"


def test_a_one_digit_document_typo_is_not_a_different_person():
    membership, refused = cluster(edges([
        ("a", "b", "paternal_given", 0.99, "01", "11111111", True, None, "01", "11111117", True, None),
    ]), "victim")
    assert groups(membership) == [["a", "b"]] and refused.num_rows == 0


def test_impossible_birth_dates_are_refused():
    membership, refused = cluster(edges([
        ("a", "b", "document", 0.99, *NONE, D, *NONE, dt.date(2000, 2, 1)),
        ("b", "c", "document", 0.98, *NONE, None, *NONE, dt.date(1985, 1, 1)),
    ]), "victim")
    assert groups(membership) == [["a", "b"]]
    assert refused.to_pylist()[0]["reason"] == "incompatible_birth_dates"


def test_person_ids_are_stable_keyed_and_order_free():
    rows = [("a", "b", "document", 0.99, *NONE, None, *NONE, None), ("b", "c", "document", 0.97, *NONE, None, *NONE, None)]
    key = PseudonymKey(source="given", secret=b"k" * 32)
    first, _ = cluster(edges(rows), "victim", key)
    second, _ = cluster(edges(list(reversed(rows))), "victim", key)
    def ids(m):
        return dict(zip(m.column("record_uid").to_pylist(), m.column("person_id").to_pylist()))

    assert ids(first) == ids(second)
    other_key, _ = cluster(edges(rows), "victim", PseudonymKey(source="given", secret=b"z" * 32))
    assert set(first.column("person_id").to_pylist()) != set(other_key.column("person_id").to_pylist())
    linked = attach_persons(records([{"record_uid": u} for u in "abcd"]), first, "victim", key)
    pids = linked.column("person_id").to_pylist()
    assert len(set(pids[:3])) == 1 and pids[3] != pids[0] and pids[3].startswith("P")


def test_a_birth_year_typo_is_not_a_different_person():
    membership, refused = cluster(edges([
        ("a", "b", "document", 0.99, *NONE, dt.date(1962, 5, 4), *NONE, dt.date(1926, 5, 4)),
    ]), "victim")
    assert groups(membership) == [["a", "b"]] and refused.num_rows == 0


# The override: the rest of the evidence (match weight without the conflicting comparison) decides
SETTINGS = settings_with(comparisons=[{"name": "document", "type": "document"},
                                      {"name": "birth_date", "type": "birth_date"},
                                      {"name": "surnames", "type": "surnames"}],
                         clustering={"merge_conflicts_at": 0.999999})  # a weight of 19.93


def weighed(rows, weights):
    """edges() plus match_weight, w_document and w_birth_date per row."""
    table = edges(rows)
    for i, name in enumerate(("match_weight", "w_document", "w_birth_date")):
        table = table.append_column(name, pa.array([w[i] for w in weights], pa.float64()))
    return table


def test_overwhelming_other_evidence_merges_a_document_conflict_and_flags_it():
    rows = [("a", "b", "paternal_given", 0.999, *DOC_A, None, *DOC_B, None)]
    # 30 bits without the document's -6: names, birth date and place all agree
    membership, guarded = cluster(weighed(rows, [(24.0, -6.0, 8.0)]), "victim", settings=SETTINGS)
    assert groups(membership) == [["a", "b"]]
    assert guarded.to_pylist()[0]["reason"] == "merged_despite_different_valid_documents"
    # 19 bits without it is not enough: refused, as without the setting
    membership, guarded = cluster(weighed(rows, [(13.0, -6.0, 8.0)]), "victim", settings=SETTINGS)
    assert membership.num_rows == 0 and guarded.to_pylist()[0]["reason"] == "different_valid_documents"
    membership, guarded = cluster(weighed(rows, [(24.0, -6.0, 8.0)]), "victim")
    assert membership.num_rows == 0 and guarded.to_pylist()[0]["reason"] == "different_valid_documents"


def test_a_corrupted_birth_date_merged_by_override_does_not_block_the_persons_next_record():
    # b's birth date is corrupted; a-b merges on the rest of the evidence, then c (a's date) joins
    born, other = dt.date(1980, 3, 1), dt.date(1955, 9, 30)
    rows = [("a", "c", "document", 0.9999, *NONE, born, *NONE, born),
            ("a", "b", "document", 0.999, *NONE, born, *NONE, other),
            ("b", "d", "document", 0.99, *NONE, other, *NONE, born)]
    membership, guarded = cluster(weighed(rows, [(30.0, 0.0, 9.0), (25.0, 0.0, -5.0), (12.0, 0.0, 9.0)]),
                                  "victim", settings=SETTINGS)
    assert groups(membership) == [["a", "b", "c", "d"]]
    assert [r["reason"] for r in guarded.to_pylist()] == ["merged_despite_incompatible_birth_dates"]


def test_siblings_with_different_given_names_are_never_merged_even_on_a_copied_document():
    # twins of one case: same surnames, birth date, case and (copied) document; given names differ
    table = edges([("a", "b", "document", 0.9999, *DOC_A, D, *DOC_A, D),
                   ("b", "c", "name_token_pairs", 0.99, *DOC_A, D, *NONE, D),
                   ("a", "d", "name_token_pairs", 0.98, *DOC_A, D, *NONE, D)])
    table = table.append_column("gamma_given_names", pa.array([0, 5, 1], pa.int8()))
    settings = settings_with(comparisons=[], clustering={"refuse_levels": {"given_names": [0, 1]}})
    membership, refused = cluster(table, "victim", settings=settings)
    assert groups(membership) == [["b", "c"]]
    assert sorted((r["left_uid"], r["right_uid"], r["reason"]) for r in refused.to_pylist()) == [
        ("a", "b", "disagreeing_given_names"), ("a", "d", "disagreeing_given_names")]
    membership, refused = cluster(table, "victim")  # without the setting: merged
    assert groups(membership) == [["a", "b", "c", "d"]]


def test_only_documents_kept_for_life_stop_a_merge():
    passports = edges([("a", "b", "name_token_pairs", 0.99, "07", "AB123456", True, D, "07", "ZX998877", True, D)])
    settings = settings_with(comparisons=[{"name": "document", "type": "document_set", "for_life_types": ["01", "06"]}],
                             clustering={})
    membership, refused = cluster(passports, "victim", settings=settings)
    assert groups(membership) == [["a", "b"]] and refused.num_rows == 0  # a passport renewed
    membership, refused = cluster(passports, "victim")  # every type kept for life: refused
    assert membership.num_rows == 0 and refused.to_pylist()[0]["reason"] == "different_valid_documents"


def test_a_vetoed_edge_between_records_of_one_person_is_no_refusal():
    # JOSE and CESAR: one compound name shortened two ways, both joined through JOSE CESAR
    table = edges([("a", "b", "document", 0.9999, *NONE, D, *NONE, D), ("a", "c", "document", 0.999, *NONE, D, *NONE, D),
                   ("b", "c", "document", 0.99, *NONE, D, *NONE, D), ("c", "d", "document", 0.98, *NONE, D, *NONE, D)])
    table = table.append_column("gamma_given_names", pa.array([4, 4, 0, 0], pa.int8()))
    settings = settings_with(comparisons=[], clustering={"refuse_levels": {"given_names": [0, 1]}})
    membership, refused = cluster(table, "victim", settings=settings)
    assert groups(membership) == [["a", "b", "c"]]
    assert [(r["left_uid"], r["right_uid"]) for r in refused.to_pylist()] == [("c", "d")]


SIBLING_GUARD = settings_with(
    comparisons=[{"name": "document", "type": "document_set", "for_life_types": ["01", "06"]}],
    clustering={"refuse_levels": {"given_names": [0, 1]},
                "refusal_lifted_when": {"given_names": {"birth_date": [4], "sex": [1], "surnames": [5, 6]}},
                "copied_document_when": {"given_names": [5, 6]}})


def guarded_edges(rows, levels, words):
    """edges() with the levels the sibling guard reads (given names, birth date, sex, surnames per
    edge) and each side's number of given names."""
    table = edges(rows)
    for name, values in zip(("given_names", "birth_date", "sex", "surnames"), zip(*levels)):
        table = table.append_column(f"gamma_{name}", pa.array(values, pa.int8()))
    for k, side in enumerate(("left", "right")):
        table = table.append_column(f"{side}_given_words", pa.array([w[k] for w in words], pa.int8()))
    return table


def test_a_name_shortened_two_ways_on_one_dni_and_birth_date_is_merged_and_flagged():
    # YOMIRA / PILAR of YOMIRA PILAR: same DNI, birth date, sex and surnames, one given name each
    table = guarded_edges([("a", "b", "document", 0.9999, *DOC_A, D, *DOC_A, D)], [(0, 4, 1, 6)], [(1, 1)])
    membership, guarded = cluster(table, "victim", settings=SIBLING_GUARD)
    assert groups(membership) == [["a", "b"]]
    assert [r["reason"] for r in guarded.to_pylist()] == ["merged_despite_disagreeing_given_names"]


def test_the_lift_needs_one_given_name_each_the_same_document_and_the_levels():
    # DIANA ELENA / SOFIA: a compound name shortened two ways leaves one word on each side
    two_words = guarded_edges([("a", "b", "document", 0.9999, *DOC_A, D, *DOC_A, D)], [(0, 4, 1, 6)], [(2, 1)])
    # no shared document (an age-only record has none to share)
    no_document = guarded_edges([("a", "b", "name_token_pairs", 0.99, *DOC_A, D, *NONE, D)], [(0, 4, 1, 6)], [(1, 1)])
    # birth dates a year apart, or the sexes differing: a sibling
    other_birth = guarded_edges([("a", "b", "document", 0.9999, *DOC_A, D, *DOC_A, D)], [(0, 2, 1, 6)], [(1, 1)])
    other_sex = guarded_edges([("a", "b", "document", 0.9999, *DOC_A, D, *DOC_A, D)], [(0, 4, 0, 6)], [(1, 1)])
    for table in (two_words, no_document, other_birth, other_sex):
        membership, guarded = cluster(table, "victim", settings=SIBLING_GUARD)
        assert membership.num_rows == 0
        assert [r["reason"] for r in guarded.to_pylist()] == ["disagreeing_given_names"]


def test_a_twin_whose_own_records_carry_another_dni_is_not_merged_on_the_copied_one():
    # a and b: twins, b's record carries a's DNI (copied); c is b's own record under b's own DNI
    table = guarded_edges([("a", "b", "document", 0.9999, *DOC_A, D, *DOC_A, D),
                           ("b", "c", "name_token_pairs", 0.99, *DOC_A, D, *DOC_B, D)],
                          [(0, 4, 1, 6), (6, 4, 1, 6)], [(1, 1), (1, 1)])
    membership, guarded = cluster(table, "victim", settings=SIBLING_GUARD)
    # the lift is refused (b has a link to another DNI: a second person), and b's copied number is
    # not held against b joining its own record c: that merge is flagged
    assert groups(membership) == [["b", "c"]]
    assert sorted((r["left_uid"], r["right_uid"], r["reason"]) for r in guarded.to_pylist()) == [
        ("a", "b", "disagreeing_given_names"), ("b", "c", "merged_despite_different_valid_documents")]


def test_a_copied_dni_is_discounted_only_where_the_same_name_carries_another():
    # b's link to c agrees on the given names only as a shortened name (level 4), not the same
    # name: b's number is not taken for a copy, and b and c stay apart
    table = guarded_edges([("a", "b", "document", 0.9999, *DOC_A, D, *DOC_A, D),
                           ("b", "c", "name_token_pairs", 0.99, *DOC_A, D, *DOC_B, D)],
                          [(0, 4, 1, 6), (4, 4, 1, 6)], [(2, 2), (2, 1)])
    membership, guarded = cluster(table, "victim", settings=SIBLING_GUARD)
    assert membership.num_rows == 0
    assert sorted((r["left_uid"], r["right_uid"], r["reason"]) for r in guarded.to_pylist()) == [
        ("a", "b", "disagreeing_given_names"), ("b", "c", "different_valid_documents")]
