import datetime as dt

import pyarrow as pa

from pipelines import model
from pipelines.reconcile import persons_of


def linked(rows, role="offender"):
    return model.conform(pa.Table.from_pylist(rows), model.table(role))


def test_persons_agree_or_flag_conflicts():
    rows = [
        {"record_uid": "a", "person_id": "P1", "agency": "PNP", "feed_id": "pnp_victims", "sex": "FEMALE",
         "nationality": "VEN", "child_adult": "CHILD", "event_date": dt.date(2018, 5, 2), "department": "17"},
        {"record_uid": "b", "person_id": "P1", "agency": "MP", "feed_id": "mp_victims", "sex": "FEMALE",
         "nationality": "PER", "child_adult": "CHILD", "event_date": dt.date(2018, 3, 1), "department": "15"},
        {"record_uid": "c", "person_id": "P2", "agency": "MP", "feed_id": "mp_victims", "sex": None},
    ]
    persons = {p["person_id"]: p for p in persons_of(linked(rows, "victim"), "victim").to_pylist()}
    p1 = persons["P1"]
    assert p1["agencies"] == ["MP", "PNP"] and p1["n_records"] == 2
    assert p1["sex"] == "FEMALE" and p1["nationality"] is None and p1["has_conflict"] is True
    assert p1["first_event_date"] == dt.date(2018, 3, 1) and p1["department"] == "15"
    assert persons["P2"]["sex"] is None and persons["P2"]["has_conflict"] is False


def test_furthest_stage_of_offenders():
    rows = [
        {"record_uid": "a", "person_id": "P1", "agency": "PNP", "feed_id": "pnp_detainees", "stage": "ARRESTED"},
        {"record_uid": "b", "person_id": "P1", "agency": "PJ", "feed_id": "pj_convictions", "stage": "CONVICTED"},
        {"record_uid": "c", "person_id": "P1", "agency": "MP", "feed_id": "mp_investigated", "stage": "INVESTIGATED"},
    ]
    (person,) = persons_of(linked(rows), "offender").to_pylist()
    assert person["furthest_stage"] == "CONVICTED" and person["agencies"] == ["MP", "PJ", "PNP"]


def test_sorted_lists_sorts_inside_each_list():
    from pipelines.reconcile import sorted_lists

    lists = pa.array([["PNP", "MP"], [], ["SUNAFIL", "MIMP", "MP"]], pa.list_(pa.string()))
    assert sorted_lists(lists.slice(0)).to_pylist() == [["MP", "PNP"], [], ["MIMP", "MP", "SUNAFIL"]]
