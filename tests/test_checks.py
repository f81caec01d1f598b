"""Cross-feed checks: each one tripped by a small made-up case, and quiet on a clean one."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import checks, model
from pipelines.checks import ControlFile, RunTables

CONFIG = checks.load_config()
D = dt.date(2018, 5, 1)


def victims(*rows: dict) -> pa.Table:
    base = {"feed_id": "pnp_victims", "agency": "PNP", "source_file": "pnp/victimas_2018.csv", "source_row": 1,
            "event_date": D, "event_year": 2018}
    full = [{**base, "record_uid": f"r{i}", **r} for i, r in enumerate(rows)]
    return pa.Table.from_pylist(full, schema=model.table("victim").schema(include_restricted=False))


def offenders(*rows: dict) -> pa.Table:
    base = {"feed_id": "pnp_detainees", "agency": "PNP", "source_file": "pnp/detenidos_2018.csv", "source_row": 1,
            "event_date": D, "event_year": 2018, "stage": "ARRESTED"}
    full = [{**base, "record_uid": f"o{i}", **r} for i, r in enumerate(rows)]
    return pa.Table.from_pylist(full, schema=model.table("offender").schema(include_restricted=False))


def tables(v=None, o=None, control=None, previous=None) -> RunTables:
    return RunTables(victims=v if v is not None else victims(), offenders=o if o is not None else offenders(),
                     persons=model.table("person").schema().empty_table(), control_files=control or [],
                     previous_volumes=previous)


def run(name: str, t: RunTables) -> checks.CheckResult:
    return checks.CHECKS[name](t, CONFIG[name], name)


def summary(values: dict) -> ControlFile:
    decl = checks.load_control_declarations()[0]
    return ControlFile(decl, "pnp/resumen_victimas_2018.csv", values)


def test_control_totals_trip_when_the_police_summary_disagrees_with_the_records():
    v = victims({"child_adult": "CHILD"}, {"child_adult": "ADULT"}, {"child_adult": "ADULT"})
    ok = run("control_totals", tables(v, control=[summary({"TOTAL_VICTIMAS": 3, "VICTIMAS_MENORES": 1,
                                                           "VICTIMAS_ADULTAS": 2})]))
    assert ok.status == "passed" and ok.observed["pnp/resumen_victimas_2018.csv:TOTAL_VICTIMAS"] == 3
    bad = run("control_totals", tables(v, control=[summary({"TOTAL_VICTIMAS": 1600, "VICTIMAS_MENORES": 287,
                                                            "VICTIMAS_ADULTAS": 2})]))
    assert bad.status == "failed" and len(bad.findings) == 2
    assert "TOTAL_VICTIMAS declares 1600" in bad.findings[0]["detail"]
    assert run("control_totals", tables(v)).status == "skipped"


def test_children_plus_adults_trips_when_the_parts_do_not_add_up():
    assert run("children_plus_adults", tables(control=[summary(
        {"TOTAL_VICTIMAS": 1600, "VICTIMAS_MENORES": 287, "VICTIMAS_ADULTAS": 1313})])).status == "passed"
    bad = run("children_plus_adults", tables(control=[summary(
        {"TOTAL_VICTIMAS": 1600, "VICTIMAS_MENORES": 287, "VICTIMAS_ADULTAS": 1300})]))
    assert bad.status == "failed" and bad.observed == {"pnp/resumen_victimas_2018.csv:TOTAL_VICTIMAS": 1587}


def test_control_files_are_read_from_the_feeds_root(tmp_path):
    (tmp_path / "pnp").mkdir()
    (tmp_path / "pnp" / "resumen_victimas_2019.csv").write_text(
        "INDICADOR;VALOR\nTOTAL_VICTIMAS;10\nVICTIMAS_MENORES;x\n", encoding="latin-1")
    [cf] = checks.read_control_files(str(tmp_path), checks.load_control_declarations())
    assert cf.values == {"TOTAL_VICTIMAS": 10, "VICTIMAS_MENORES": None}
    # the 2019 summary is compared with the records delivered in 2019 files only (none here)
    result = run("control_totals", tables(victims({}), control=[cf]))
    assert result.status == "failed" and result.observed["pnp/resumen_victimas_2019.csv:TOTAL_VICTIMAS"] == 0


def test_children_only_feed_record_whose_person_is_an_adult():
    v = victims(
        {"feed_id": "mimp_child_victims", "agency": "MIMP", "person_id": "P1", "child_adult": "CHILD"},
        {"feed_id": "pnp_victims", "agency": "PNP", "person_id": "P1", "child_adult": "ADULT",
         "event_date": dt.date(2018, 1, 1)},
        {"feed_id": "mimp_child_victims", "agency": "MIMP", "person_id": "P2", "child_adult": "CHILD"},
        # adult only after the MIMP event: a child then, fine
        {"feed_id": "mp_victims", "agency": "MP", "person_id": "P2", "child_adult": "ADULT",
         "event_date": dt.date(2019, 1, 1)},
    )
    result = run("children_only_feed_adult", tables(v))
    assert result.status == "failed"
    assert [(f["person_id"], f["record_uid"], f["related_feed_id"]) for f in result.findings] == [("P1", "r0", "pnp_victims")]


def test_referral_to_police_without_a_police_record():
    v = victims(
        {"feed_id": "sunafil_findings", "agency": "SUNAFIL", "person_id": "P1", "referred_to_police": True},
        {"feed_id": "sunafil_findings", "agency": "SUNAFIL", "person_id": "P2", "referred_to_police": True},
        {"feed_id": "pnp_victims", "agency": "PNP", "person_id": "P2"},
        {"feed_id": "sunafil_findings", "agency": "SUNAFIL", "person_id": "P3", "referred_to_police": False},
    )
    result = run("referral_without_police_record", tables(v))
    assert result.status == "failed" and [f["person_id"] for f in result.findings] == ["P1"]


def test_mp_record_citing_a_police_report_the_police_never_sent():
    v = victims({"agency": "PNP", "person_id": "P1", "police_report_ref": "0455-2018-DEPTRATA"},
                {"feed_id": "mp_victims", "agency": "MP", "person_id": "P1", "police_report_ref": "0455-2018-DEPTRATA"},
                {"feed_id": "mp_victims", "agency": "MP", "person_id": "P2", "police_report_ref": "9999-2018-DIVINTP"})
    o = offenders({"feed_id": "mp_investigated", "agency": "MP", "person_id": "O1",
                   "police_report_ref": "9999-2018-DIVINTP", "stage": "INVESTIGATED"})
    result = run("unknown_police_report", tables(v, o))
    assert result.status == "failed"
    assert result.observed == {"records": 2, "reports": 1}
    assert {f["record_uid"] for f in result.findings} == {"r2", "o0"}


def test_agencies_disagreeing_on_a_persons_attributes():
    v = victims({"agency": "PNP", "person_id": "P1", "sex": "FEMALE", "nationality": "VEN", "age_group": "18_PLUS"},
                {"feed_id": "mp_victims", "agency": "MP", "person_id": "P1", "sex": "MALE", "nationality": "VEN"},
                {"agency": "PNP", "person_id": "P2", "sex": "FEMALE", "age_group": "14_17"},
                {"feed_id": "mp_victims", "agency": "MP", "person_id": "P2", "sex": "FEMALE", "age_group": "18_PLUS",
                 "event_year": 2018})
    result = run("attribute_disagreement", tables(v))
    assert result.status == "failed"
    details = sorted((f["person_id"], f["detail"]) for f in result.findings)
    assert details == [("P1", "sex: MP=MALE; PNP=FEMALE"), ("P2", "age_group: MP=18_PLUS; PNP=14_17")]


def test_one_agency_alone_disagreeing_with_itself_is_not_an_agency_disagreement():
    v = victims({"agency": "PNP", "person_id": "P1", "sex": "FEMALE"}, {"agency": "PNP", "person_id": "P1", "sex": "MALE"})
    assert run("attribute_disagreement", tables(v)).status == "passed"


def test_sexual_exploitation_against_trafficking_for_the_same_person_and_case():
    v = victims({"agency": "PNP", "person_id": "P1", "police_report_ref": "A-1", "offence": "TRAFFICKING"},
                {"feed_id": "mp_victims", "agency": "MP", "person_id": "P1", "police_report_ref": "A-1",
                 "offence": "SEXUAL_EXPLOITATION"},
                # same person, different case: not a classification conflict
                {"agency": "PNP", "person_id": "P2", "police_report_ref": "B-1", "offence": "AGGRAVATED_TRAFFICKING"},
                {"feed_id": "mp_victims", "agency": "MP", "person_id": "P2", "police_report_ref": "B-2",
                 "offence": "SEXUAL_EXPLOITATION"})
    result = run("classification_conflict", tables(v))
    assert result.status == "failed" and [f["person_id"] for f in result.findings] == ["P1"]
    assert "MP=SEXUAL_EXPLOITATION" in result.findings[0]["detail"] and "PNP=TRAFFICKING" in result.findings[0]["detail"]


def test_volume_change_against_the_previous_published_run():
    v = victims(*[{} for _ in range(30)])
    assert run("volume_change", tables(v)).status == "skipped"
    assert run("volume_change", tables(v, previous={"pnp_victims": {"2018": 28}})).status == "passed"
    moved = run("volume_change", tables(v, previous={"pnp_victims": {"2018": 60}, "mp_victims": {"2018": 40}}))
    assert moved.status == "failed"
    assert sorted((f["feed_id"], f["period"]) for f in moved.findings) == [("mp_victims", "2018"), ("pnp_victims", "2018")]
    assert moved.observed["pnp_victims:2018"] == 0.5


def test_findings_table_and_blocking_checks_block(tmp_path):
    v = victims({"agency": "PNP", "person_id": "P1", "sex": "FEMALE"},
                {"feed_id": "mp_victims", "agency": "MP", "person_id": "P1", "sex": "MALE"})
    config = {**CONFIG, "attribute_disagreement": {**CONFIG["attribute_disagreement"], "severity": "blocking"}}
    results = checks.evaluate(tables(v), config)
    table = checks.findings_table(results)
    assert table.schema == checks.FINDINGS_SCHEMA and table.num_rows == 1
    assert table.to_pylist()[0]["check"] == "attribute_disagreement"
    report = checks.ChecksReport(results, checks.volumes(tables(v)), None)
    validation = checks.add_to_validation({"suites": {}, "blocking_failed": False}, report)
    assert validation["blocking_failed"] is True
    assert validation["volumes"] == {"pnp_victims": {"2018": 1}, "mp_victims": {"2018": 1}} or \
        validation["volumes"] == {"mp_victims": {"2018": 1}, "pnp_victims": {"2018": 1}}
    entry = next(c for c in validation["checks"] if c["name"] == "attribute_disagreement")
    assert set(entry) >= {"name", "severity", "status", "observed", "expected", "detail"}
    json.dumps(validation)  # the manifest block is plain JSON


def test_verdicts_from_summed_counts_write_their_findings_and_read_the_previous_manifest(tmp_path):
    out, run_id = tmp_path / "out", "R2"
    (out / "runs" / run_id).mkdir(parents=True)
    (out / "runs" / "R1").mkdir(parents=True)
    (out / "runs" / "R1" / "manifest.json").write_text(json.dumps(
        {"validation": {"volumes": {"pnp_victims": {"2018": 500}}}}))
    (out / "current.json").write_text(json.dumps({"run_id": "R1", "path": "runs/R1"}))
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    counts = {"attribute_disagreement": {"observed": {"victim:sex": 2}, "persons": 2, "findings": 2}}
    report = checks.verdicts(str(out), run_id, str(feeds), counts, {"pnp_victims": {"2018": 1}})
    status = {r.name: r.status for r in report.results}
    assert status["volume_change"] == "failed" and status["control_totals"] == "skipped"
    assert status["attribute_disagreement"] == "failed"  # the job's findings count, not a finding here
    entry = next(r.entry() for r in report.results if r.name == "attribute_disagreement")
    assert entry["findings"] == 2 and entry["observed"]["victim:sex"] == 2
    written = pq.read_table(out / "runs" / run_id / checks.FOLDER / checks.VERDICT_FINDINGS)
    assert set(written.column("check").to_pylist()) == {"volume_change"}


def test_checks_in_parts_inside_the_job_agree_with_the_whole_tables():
    """CrossFeedChecks splits the records by person (or police report) and sums the parts' counts:
    the verdicts equal those of ``evaluate`` on whole tables, and the findings are the same."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from tests.conftest import TEST_RUNNER

    v = victims({"person_id": "P1", "sex": "FEMALE", "police_report_ref": "R-1"},
                {"feed_id": "mp_victims", "agency": "MP", "person_id": "P1", "sex": "MALE", "police_report_ref": "R-9"},
                {"feed_id": "mimp_child_victims", "agency": "MIMP", "person_id": "P2", "child_adult": "CHILD"},
                {"feed_id": "mp_victims", "agency": "MP", "person_id": "P2", "child_adult": "ADULT"},
                {"feed_id": "sunafil_findings", "agency": "SUNAFIL", "person_id": "P3", "referred_to_police": True},
                *({"person_id": f"Q{i}"} for i in range(40)))
    o = offenders({"person_id": "O1"}, {"feed_id": "mp_investigated", "agency": "MP", "person_id": "O1",
                                        "police_report_ref": "R-1"})
    control = [summary({"TOTAL_VICTIMAS": 44, "VICTIMAS_MENORES": 0, "VICTIMAS_ADULTAS": 44})]
    whole = checks.evaluate(tables(v, o, control))
    expected = {r.name: r.entry() for r in whole if r.name != "volume_change"}
    assert sum(e["findings"] for e in expected.values()) >= 4  # the case trips several checks
    config = {n: s for n, s in CONFIG.items() if n != "volume_change"}
    with beam.Pipeline(runner=TEST_RUNNER) as p:
        records = {"victim": p | "V" >> beam.Create([v.slice(0, 3), v.slice(3)]), "offender": p | "O" >> beam.Create([o])}
        out = records | checks.CrossFeedChecks(config, control)
        verdicts = out["counts"] | beam.Map(lambda counts: {
            name: checks.KINDS[name].verdict(counts.get(name) or {}, [], int((counts.get(name) or {}).get("findings", 0)),
                                             checks.CheckInputs(control), spec, name).entry()
            for name, spec in config.items()})
        assert_that(verdicts, equal_to([expected]), label="verdicts")
        findings = out["findings"] | beam.FlatMap(lambda t: [(r["check"], r["record_uid"], r["person_id"]) for r in t.to_pylist()])
        assert_that(findings, equal_to([(f["check"], f.get("record_uid"), f.get("person_id"))
                                        for r in whole for f in r.findings if r.name in config and f.get("person_id")]),
                    label="findings")


@pytest.mark.parametrize("bad", [{"checks": {"nonsense": {"severity": "warning"}}},
                                 {"checks": {"volume_change": {"severity": "fatal"}}}])
def test_malformed_checks_declaration_is_refused(tmp_path, bad):
    path = tmp_path / "checks.yaml"
    path.write_text(json.dumps(bad))
    with pytest.raises(checks.ChecksConfigError):
        checks.load_config(path)
