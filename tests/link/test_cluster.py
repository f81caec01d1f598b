"""Clustering guards: no chaining of strangers through a third record."""

import datetime as dt

import pyarrow as pa

from pipelines.link.cluster import attach_persons, cluster
from pipelines.privacy import PseudonymKey
from tests.link.conftest import records


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
