"""The person table keeps the types of all its records' documents (the numbers stay restricted)."""

import datetime as dt

import pyarrow as pa

from pipelines import model
from pipelines.reconcile import persons_of


def test_person_keeps_every_document_type_of_its_records():
    rows = [
        {"record_uid": "a", "person_id": "p1", "agency": "PNP", "feed_id": "f", "event_date": dt.date(2018, 1, 1),
         "documents": ["01:41728563", "07:AB123456"], "origin_department": None},
        {"record_uid": "b", "person_id": "p1", "agency": "MP", "feed_id": "g", "event_date": dt.date(2018, 1, 2),
         "documents": ["01:41728563"], "origin_department": "21"},
        {"record_uid": "c", "person_id": "p0", "agency": "MP", "feed_id": "g", "event_date": dt.date(2018, 1, 2),
         "documents": []},
    ]
    names = model.table("victim").schema().names
    records = model.conform(pa.Table.from_pylist([{f: r.get(f) for f in names} for r in rows]), model.table("victim"))
    persons = persons_of(records, "victim").to_pylist()
    assert [(p["person_id"], p["document_types"], p["origin_department"]) for p in persons] == [
        ("p0", None, None), ("p1", ["01", "07"], "21")]
    assert "document_number" not in persons[0] and "documents" not in persons[0]
