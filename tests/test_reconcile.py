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


def test_conflicts_name_each_agency_value():
    from pipelines.reconcile import conflicts_of

    rows = [
        {"record_uid": "a", "person_id": "P1", "agency": "MIMP", "feed_id": "f1", "exploitation_type": "SEXUAL_EXPLOITATION"},
        {"record_uid": "b", "person_id": "P1", "agency": "PNP", "feed_id": "f2", "exploitation_type": "FORCED_LABOUR"},
        {"record_uid": "c", "person_id": "P2", "agency": "PNP", "feed_id": "f2", "exploitation_type": "FORCED_LABOUR"},
    ]
    (conflict,) = conflicts_of(linked(rows, "victim"), "victim").to_pylist()
    assert conflict["person_id"] == "P1" and conflict["attribute"] == "exploitation_type"
    assert conflict["values"] == ["MIMP=SEXUAL_EXPLOITATION", "PNP=FORCED_LABOUR"] and conflict["n_records"] == 2


def test_overlap_and_funnel_counts():
    from pipelines.reconcile import funnel_counts, merge_counts, overlap_counts

    rows = [
        {"record_uid": "a", "person_id": "P1", "agency": "PNP", "feed_id": "x", "stage": "ARRESTED", "detained": True,
         "event_date": dt.date(2018, 1, 1)},
        {"record_uid": "b", "person_id": "P1", "agency": "PJ", "feed_id": "y", "stage": "CONVICTED", "event_date": dt.date(2018, 6, 1)},
        {"record_uid": "c", "person_id": "P2", "agency": "PNP", "feed_id": "x", "stage": "ARRESTED", "event_date": dt.date(2018, 2, 1)},
        {"record_uid": "d", "person_id": "P3", "agency": "MP", "feed_id": "z", "stage": "INVESTIGATED", "detained": True,
         "event_date": dt.date(2018, 3, 1)},
    ]
    persons = persons_of(linked(rows), "offender")
    assert {p["person_id"]: p["stages"] for p in persons.to_pylist()}["P3"] == ["DETAINED", "INVESTIGATED"]
    overlap = {(r["agencies"], r["persons"]) for r in overlap_counts(persons).to_pylist()}
    assert overlap == {("PJ+PNP", 1), ("PNP", 1), ("MP", 1)}
    funnel = merge_counts([funnel_counts(persons), funnel_counts(persons)], ["event_year", "from_stage", "to_stage"], "funnel")
    got = {(r["from_stage"], r["to_stage"]): r["persons"] for r in funnel.to_pylist()}
    assert got[("ARRESTED", None)] == 4 and got[("ARRESTED", "CONVICTED")] == 2  # summed over two partitions
    assert got[("INVESTIGATED", "DETAINED")] == 2 and got[("ARRESTED", "DETAINED")] == 2 and ("ARRESTED", "INVESTIGATED") not in got
