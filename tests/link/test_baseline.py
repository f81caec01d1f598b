import datetime as dt

import apache_beam as beam
import pyarrow as pa
from apache_beam.testing.util import assert_that, equal_to

from pipelines import model
from pipelines.link.baseline import LinkPersons, attach_persons, blocking_keys, cluster, edges_within
from tests.conftest import TEST_RUNNER

D = dt.date


def victims(rows):
    base = {"document_type": None, "document_number": None, "document_valid": None, "birth_date": None,
            "given_names": None, "paternal_surname": None, "maternal_surname": None}
    return model.conform(pa.Table.from_pylist([{**base, **r} for r in rows]), model.table("victim"))


ROWS = [
    # a and b share a valid DNI; b and c share name + birth date (accents differ); d stands alone
    {"record_uid": "pnp:a", "document_type": "01", "document_number": "10117410", "document_valid": True,
     "given_names": "MARÍA", "paternal_surname": "QUISPE", "maternal_surname": "MAMANI", "birth_date": D(2001, 5, 4)},
    {"record_uid": "mp:b", "document_type": "01", "document_number": "10117410", "document_valid": True,
     "given_names": "MARIA", "paternal_surname": "QUISPE", "maternal_surname": "MAMANI", "birth_date": D(2001, 4, 5)},
    {"record_uid": "mimp:c", "given_names": "Maria", "paternal_surname": "Quispe", "maternal_surname": "Mamani",
     "birth_date": D(2001, 4, 5)},
    {"record_uid": "pnp:d", "document_type": "01", "document_number": "99999999", "document_valid": False,
     "given_names": "ROSA", "paternal_surname": "DIAZ", "maternal_surname": None, "birth_date": D(1990, 1, 1)},
    {"record_uid": "mp:e", "document_type": "01", "document_number": "99999999", "document_valid": False},
]


def test_blocking_keys_skip_invalid_documents_and_incomplete_names():
    keys = blocking_keys(victims(ROWS)).to_pylist()
    doc_uids = sorted(k["record_uid"] for k in keys if k["rule"] == "document")
    assert doc_uids == ["mp:b", "pnp:a"]  # the invalid 99999999 never links
    name_uids = sorted(k["record_uid"] for k in keys if k["rule"] == "name_birth_date")
    assert name_uids == ["mimp:c", "mp:b", "pnp:a"]  # no maternal surname: no name key for d


def test_edges_and_clusters_chain_through_shared_keys():
    edges = edges_within(blocking_keys(victims(ROWS)))
    membership = cluster(edges, "victim").to_pylist()
    persons = {m["record_uid"]: m["person_id"] for m in membership}
    assert set(persons) == {"pnp:a", "mp:b", "mimp:c"}
    assert len(set(persons.values())) == 1
    rules = {m["record_uid"]: m["match_rule"] for m in membership}
    assert rules["pnp:a"] == "document" and rules["mimp:c"] == "name_birth_date"


def test_person_ids_are_stable_and_singletons_get_their_own():
    table = victims(ROWS)
    edges = edges_within(blocking_keys(table))
    first = attach_persons(table, cluster(edges, "victim"), "victim").column("person_id").to_pylist()
    reordered = victims(list(reversed(ROWS)))
    edges2 = edges_within(blocking_keys(reordered))
    second = attach_persons(reordered, cluster(edges2, "victim"), "victim").column("person_id").to_pylist()
    assert first == list(reversed(second))
    assert len(set(first)) == 3  # {a,b,c}, d, e


def test_link_persons_transform_on_split_batches():
    table = victims(ROWS)
    with beam.Pipeline(runner=TEST_RUNNER) as p:
        linked = (p | beam.Create([table.slice(0, 2), table.slice(2)])
                  | LinkPersons("victim", partitions=4)
                  | beam.FlatMap(lambda t: zip(t.column("record_uid").to_pylist(), t.column("person_id").to_pylist()))
                  | beam.combiners.ToList()
                  | beam.Map(lambda pairs: sorted(len({pid for uid, pid in pairs if uid in group})
                                                  for group in ({"pnp:a", "mp:b", "mimp:c"}, {"pnp:d"}, {"mp:e"}))))
        assert_that(linked, equal_to([[1, 1, 1]]))
