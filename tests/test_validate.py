"""The Validate stage: row quarantine by expectation, masked results, merged batches, Data Docs,
the manifest's validation block on the sample run, and a run that a blocking failure stops."""

from __future__ import annotations

import csv
import datetime as dt
import json

import fsspec
import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from pipelines import gx_suites, model, validate
from pipelines.contracts import load_contracts, parse_contract
from pipelines.pipeline import run
from pipelines.privacy import demo_key
from pipelines.cli import main
from pipelines.options import EXIT_BLOCKED
from tests.conftest import SAMPLE_FEEDS, TEST_RUNNER

RUN_DATE = dt.date(2019, 3, 1)
SECRET_NAME = "WALDEMARINA"
SECRET_DOC = "QX-77-ZZ"


def victims(*rows: dict) -> pa.Table:
    base = {"feed_id": "sunafil_findings", "agency": "SUNAFIL", "source_file": "sunafil/hallazgos_2018.csv",
            "event_date": dt.date(2018, 5, 1), "event_year": 2018, "sex": "FEMALE", "age_at_event": 30,
            "age_source": "reported", "age_group": "18_PLUS", "child_adult": "ADULT", "age_broad": "30-38",
            "given_names": "ROSA", "paternal_surname": "DIAZ", "case_ref": "C", "nationality": "PER",
            "exploitation_type": "FORCED_LABOUR", "referred_to_police": False}
    full = [{**base, "record_uid": f"sunafil_findings:H{i}", "source_record_id": f"H{i}", "source_row": i + 1, **r}
            for i, r in enumerate(rows)]
    return pa.Table.from_pylist(full, schema=model.table("victim").schema())


@pytest.fixture(scope="module")
def suites():
    return validate.suites_for_table(validate.run_suites(load_contracts()), "harmonised/victims")


def test_rows_failing_a_quarantine_expectation_are_quarantined_with_its_name(suites):
    table = victims(
        {},
        {"age_at_event": 130, "age_group": "18_PLUS", "child_adult": "ADULT"},   # age rule
        {"event_date": dt.date(2030, 1, 1), "event_year": 2030},                  # future event
        {"sex": "MUJER"},                                                          # not a code
        {"document_type": "01", "document_number": SECRET_DOC, "document_valid": False},  # warning only
    )
    outcome = validate.validate_table(table, suites, RUN_DATE)
    kept = outcome.kept_of(table)
    assert kept.num_rows + outcome.quarantined.num_rows == table.num_rows
    assert kept.column("source_row").to_pylist() == [1, 5]
    q = {r["source_row"]: r for r in outcome.quarantined.to_pylist()}
    assert {row: r["field"] for row, r in q.items()} == {
        2: "age_at_event_0_to_110", 3: "event_date_not_in_future", 4: "sex_in_code_list"}
    assert all(r["reason_code"] == "expectation_failed" and r["source_record_id"] for r in q.values())
    assert "feed.sunafil_findings" in q[2]["detail"]
    by_suite = {r["suite"]: r for r in outcome.results}
    assert set(by_suite) == {"feed.sunafil_findings", "harmonised.victims"}
    failed = {r["expectation_config"]["meta"]["name"] for r in by_suite["feed.sunafil_findings"]["gx"]["results"]
              if not r["success"]}
    # 1 bad row in 5 breaks the 95% share of the blocking rules; the warnings flag the bad document
    assert {"age_at_event_0_to_110", "event_date_not_in_future", "sex_in_code_list", "document_format",
            "document_check_digit", "event_date_in_reporting_period"} <= failed


def test_the_outcome_names_the_bad_rows_and_the_caller_keeps_the_rest(suites):
    """What a worker process sends back (pipelines.core.local_pool): the DoFn keeps the rows itself."""
    table = victims({}, {"sex": "MUJER"}, {})
    outcome = validate.validate_table(table, suites, RUN_DATE)
    assert outcome.bad.to_pylist() == [False, True, False] and outcome.quarantined.num_rows == 1
    assert outcome.kept_of(table).equals(table.filter(pa.array([True, False, True])))
    clean = victims({})
    assert validate.validate_table(clean, suites, RUN_DATE).kept_of(clean) is clean


def test_results_of_restricted_fields_carry_no_values(suites):
    table = victims({}, {"given_names": None, "document_type": "01", "document_number": SECRET_DOC,
                         "document_valid": False})
    outcome = validate.validate_table(table, suites, RUN_DATE)
    text = json.dumps(outcome.results, default=str)
    assert SECRET_DOC not in text and "QX77ZZ" not in text
    fmt = next(r for r in outcome.results[0]["gx"]["results"]
               if r["expectation_config"]["meta"]["name"] == "document_format")
    assert fmt["success"] is False and fmt["result"]["unexpected_count"] == 1
    assert fmt["result"]["partial_unexpected_list"] == [] and fmt["meta"]["masked"]
    # a public field keeps its sample of unexpected values
    sex = victims({"sex": "MUJER"})
    sample = next(r for r in validate.validate_table(sex, suites, RUN_DATE).results[0]["gx"]["results"]
                  if r["expectation_config"]["meta"]["name"] == "sex_in_code_list")
    assert sample["result"]["partial_unexpected_list"] == ["MUJER"]


def test_mask_result_drops_row_positions_and_index_values():
    raw = {"success": False, "expectation_config": {"type": "t", "kwargs": {"column": "birth_date"}, "meta": {}},
           "result": {"unexpected_count": 1, "partial_unexpected_list": ["1990-01-01"],
                      "unexpected_index_list": [{"birth_date": "1990-01-01", "record_uid": "x"}],
                      "unexpected_list": ["1990-01-01"], "unexpected_index_query": "df.filter(items=[3])"},
           "meta": {}}
    masked = validate.mask_result(raw, validate.restricted_columns())
    assert "1990-01-01" not in json.dumps(masked) and masked["result"]["unexpected_count"] == 1


def test_batches_of_one_suite_merge_into_one_result(suites):
    good = victims(*[{} for _ in range(40)])
    bad = victims(*[{"sex": "MUJER"} for _ in range(3)], *[{} for _ in range(37)])
    parts = [validate.validate_table(t, suites, RUN_DATE, quarantine_rows=False).results[0] for t in (good, bad)]
    merged = validate.merge_batches(parts, "RUN")
    rule = next(r for r in merged["results"] if r["expectation_config"]["meta"]["name"] == "sex_in_code_list")
    # 3 of 80 rows (3.75%) stay inside the rule's 95% share: the merged result passes, the batch did not
    assert rule["result"]["unexpected_count"] == 3 and rule["result"]["element_count"] == 80
    assert rule["success"] is True and parts[1]["gx"]["success"] is False
    summary = validate.suite_summary(merged, parts, None)
    assert summary["target"] == "sunafil_findings" and summary["rows"] == 80 and summary["batches"] == 2


def test_reporting_period_comes_from_the_delivered_file_name():
    assert validate.reporting_period(["pnp/victimas_2018.csv"], gx_suites.PERIOD_FROM_FILE, RUN_DATE) == (
        dt.date(2018, 1, 1), dt.date(2018, 12, 31))
    assert validate.reporting_period(["x/quejas.csv"], gx_suites.PERIOD_FROM_FILE, RUN_DATE) == (
        dt.date(1900, 1, 1), RUN_DATE)


def test_data_docs_render_merged_results_without_restricted_values(tmp_path, suites):
    table = victims({}, {"document_type": "01", "document_number": SECRET_DOC, "document_valid": False,
                         "given_names": SECRET_NAME})
    results = validate.validate_table(table, suites, RUN_DATE).results
    merged = {r["suite"]: validate.merge_batches([r], "RUN") for r in results}
    fs = fsspec.filesystem("file")
    pages = validate.build_data_docs(merged, {s["name"]: s for s in suites}, fs, str(tmp_path), "RUN")
    assert set(pages) == set(merged)
    for page in pages.values():
        assert (tmp_path / page).exists()
    for path in tmp_path.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        assert SECRET_DOC not in text and SECRET_NAME not in text


# --- the sample run (the session's shared run, with Data Docs) ---------------------------------------

def test_sample_run_publishes_its_validation_block(sample_run):
    out, result = sample_run.out, sample_run
    manifest = json.loads((out / "runs" / result.run_id / "manifest.json").read_text())
    assert manifest["status"] == "published" and manifest["validation"]["blocking_failed"] is False
    suites = manifest["validation"]["suites"]
    assert {f"feed.{c.feed}" for c in load_contracts()} | {"harmonised.victims", "harmonised.offenders",
                                                           "reconciled.persons"} == set(suites)
    for name, s in suites.items():
        assert set(s) >= {"target", "success", "evaluated", "failed_blocking", "failed_warning", "data_docs", "results"}
        assert s["evaluated"] == len(s["results"]) > 0
        assert (out / "runs" / result.run_id / s["data_docs"]).exists(), name
        for r in s["results"]:
            assert set(r) >= {"expectation", "column", "severity", "success", "unexpected_count"}
    assert suites["feed.pnp_victims"]["rows"] == 1600
    checks = {c["name"]: c for c in manifest["validation"]["checks"]}
    assert checks["control_totals"]["status"] == "passed"  # 1,600 victims, 287 children, 1,313 adults
    assert checks["volume_change"]["status"] == "skipped"  # no earlier run in this folder
    assert (out / "runs" / result.run_id / manifest["validation"]["checks_findings"]).exists()
    assert manifest["validation"]["volumes"]["pnp_victims"] == {"2018": 1600}


def test_the_samples_valid_rows_pass_every_row_level_expectation(sample_run):
    out, result = sample_run.out, sample_run
    q = ds.dataset(str(out / "runs" / result.run_id / "quarantine"), format="parquet").to_table()
    assert "expectation_failed" not in q.column("reason_code").to_pylist()
    for f in result.manifest["feeds"].values():
        assert f["rows_read"] == f["rows_harmonised"] + f["rows_quarantined"]


def test_no_name_or_document_of_the_sample_appears_in_the_reports(sample_run):
    out, result = sample_run.out, sample_run
    secrets = set()
    with open(SAMPLE_FEEDS / "_truth" / "population.csv", newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            secrets.add(r["document_number"])
            secrets.add(" ".join(x for x in (r["given_names"], r["paternal_surname"], r["maternal_surname"]) if x))
            secrets.add(r["paternal_surname"] + " " + r["maternal_surname"])
    secrets = {s for s in secrets if len(s) >= 6}
    files = [p for p in (out / "runs" / result.run_id / "reports").rglob("*") if p.is_file()]
    assert any(p.name == "index.html" and "data_docs" in p.parts for p in files)
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="ignore")
        starts = {text[i:i + 6] for i in range(len(text) - 5)}  # a secret (6+ characters) in text starts with one
        found = [s for s in secrets if s[:6] in starts and s in text]
        assert not found, f"{path.name} holds {len(found)} sample names or document numbers"


# --- a run that must not publish ---------------------------------------------------------------------

CONTRACT = """
feed: dp_complaints
agency: DP
title: Defensoría del Pueblo (made up for this test)
role: victim
version: "0.1.0"
source: {files: "dp/quejas_*.csv", format: csv, encoding: utf-8, delimiter: "|"}
record_id: QUEJA
fields:
  event_date: {column: FECHA, parse: date, formats: ["%Y%m%d"]}
  sex: {column: GENERO, lookup: sex}
  age: {column: EDAD, parse: age}
lookups:
  sex: {MUJER: FEMALE, VARON: MALE}
"""


@pytest.mark.pipeline
def test_a_blocking_failure_stops_the_publication_but_keeps_the_accounting(tmp_path, capsys):
    contracts = tmp_path / "contracts" / "dp"
    contracts.mkdir(parents=True)
    (contracts / "complaints.yaml").write_text(CONTRACT, encoding="utf-8")
    feeds = tmp_path / "feeds" / "dp"
    feeds.mkdir(parents=True)
    # the first delivery is fine; the second dates most complaints in the future
    (feeds / "quejas_2018.csv").write_text("QUEJA|FECHA|GENERO|EDAD\nQ1|20180305|MUJER|16\nQ2|20180412|VARON|30\n",
                                           encoding="utf-8")
    out = tmp_path / "out"
    first = run(str(tmp_path / "feeds"), str(out), [f"--runner={TEST_RUNNER}"], [str(tmp_path / "contracts")],
                key=demo_key(), allow_missing=["*"])
    assert first.manifest["status"] == "published"
    (feeds / "quejas_2018.csv").write_text(
        "QUEJA|FECHA|GENERO|EDAD\nQ1|20180305|MUJER|16\nQ2|29990412|VARON|30\nQ3|29990101|MUJER|20\n", encoding="utf-8")
    # through the command: the blocked run exits 6 (README's exit codes) with its reason on one line
    code = main(["run", "--feeds", str(tmp_path / "feeds"), "--out", str(out), "--demo-key",
                 "--contracts", str(tmp_path / "contracts"), f"--runner={TEST_RUNNER}", "--allow-missing", "*"])
    err = capsys.readouterr().err
    assert code == EXIT_BLOCKED and "blocked" in err and "feed.dp_complaints" in err
    assert json.loads((out / "current.json").read_text())["run_id"] == first.run_id
    blocked = [p for p in (out / "runs").iterdir() if p.name != first.run_id]
    manifest = json.loads((blocked[0] / "manifest.json").read_text())
    assert manifest["status"] == "blocked" and manifest["validation"]["blocking_failed"]
    feed = manifest["feeds"]["dp_complaints"]
    assert (feed["rows_read"], feed["rows_harmonised"], feed["rows_quarantined"]) == (3, 1, 2)
    assert feed["quarantine_reasons"] == {"expectation_failed": 2}
    suite = manifest["validation"]["suites"]["feed.dp_complaints"]
    assert suite["failed_blocking"] == 1
    rule = next(r for r in suite["results"] if r["name"] == "event_date_not_in_future")
    assert rule["success"] is False and rule["quarantined"] == 2
    # the suite of a contract given at run time is generated from it, like the shipped ones
    assert gx_suites.feed_suite(parse_contract(__import__("yaml").safe_load(CONTRACT)))["name"] == "feed.dp_complaints"


def test_list_columns_reach_gx_as_text_with_their_nulls():
    table = pa.table({"agencies": pa.array([["MP", "PNP"], None, []], pa.list_(pa.string())),
                      "n": pa.array([1, 2, 3])})
    seen = validate._as_gx_sees_it(table)
    assert seen.column("agencies").to_pylist() == ["MP|PNP", None, ""]
    assert seen.column("n").to_pylist() == [1, 2, 3]
