"""The GX suites under expectations/: current with their declarations, and loadable by GX as stored."""

from __future__ import annotations

import json
from pathlib import Path

import great_expectations as gx
import pytest

from pipelines import checks, gx_suites
from pipelines.contracts import load_contracts
from tests.conftest import ROOT

EXPECTATIONS = ROOT / "expectations"
STORED = sorted(EXPECTATIONS.glob("**/*.json"))


def test_committed_suites_are_current():
    assert gx_suites.stale() == [], "run `python -m pipelines.gx_suites` and commit expectations/"


def test_every_feed_contract_and_output_table_has_a_suite():
    names = {json.loads(p.read_text(encoding="utf-8"))["name"] for p in STORED}
    assert {f"feed.{c.feed}" for c in load_contracts()} <= names
    assert {"harmonised.victims", "harmonised.offenders", "reconciled.persons"} <= names


@pytest.mark.parametrize("path", STORED, ids=lambda p: str(p.relative_to(EXPECTATIONS)))
def test_stored_suite_loads_with_every_expectation(path: Path):
    data = json.loads(path.read_text(encoding="utf-8"))
    suite = gx.ExpectationSuite(**{k: data[k] for k in ("name", "expectations", "meta", "notes") if k in data})
    # GX drops an expectation it cannot build with only a logged error: count them
    assert len(suite.expectations) == len(data["expectations"]) > 0
    assert [e.expectation_type for e in suite.expectations] == [e["type"] for e in data["expectations"]]
    names = [e["meta"]["name"] for e in data["expectations"]]
    assert len(names) == len(set(names)), "expectation names must be unique in a suite (quarantine field)"
    for e in data["expectations"]:
        assert e["meta"]["severity"] in (gx_suites.BLOCKING, gx_suites.WARNING), e["meta"]["name"]
        assert e["meta"]["row_action"] in (gx_suites.QUARANTINE, gx_suites.FLAG), e["meta"]["name"]
    assert data["meta"]["target"].get("table")


def test_expectation_counts_of_the_shipped_suites():
    counts = {json.loads(p.read_text(encoding="utf-8"))["name"]: len(json.loads(p.read_text(encoding="utf-8"))["expectations"])
              for p in STORED}
    # a feed suite: ids unique, mapped fields filled, codes in lists, ages, dates, period, documents
    assert counts["feed.pnp_victims"] == 29  # 28 + place_level_in_code_list
    assert counts["feed.sunafil_findings"] == 25
    assert counts["harmonised.victims"] == 14
    assert counts["harmonised.offenders"] == 15
    assert counts["reconciled.persons"] == 19  # 18 + origin_department_in_code_list


def test_feed_suite_follows_its_contract():
    sunafil = {c.feed: c for c in load_contracts()}["sunafil_findings"]
    suite = gx_suites.feed_suite(sunafil)
    by_name = {e["meta"]["name"]: e for e in suite["expectations"]}
    assert set(by_name["sex_in_code_list"]["kwargs"]["value_set"]) >= {"FEMALE", "MALE"}
    assert "referred_to_police_filled" in by_name
    assert "birth_date_not_in_future" not in by_name  # SUNAFIL sends no birth dates
    fmt = by_name["document_format"]["kwargs"]["regex"]
    assert "01:[0-9]{8}" in fmt and "07:" in fmt
    assert by_name["age_at_event_0_to_110"]["meta"] == {"name": "age_at_event_0_to_110", "severity": "blocking",
                                                         "row_action": "quarantine"}


def test_stale_detects_an_edited_suite(tmp_path):
    gx_suites.write(tmp_path)
    assert gx_suites.stale(tmp_path) == []
    path = tmp_path / "feeds" / "pnp_victims.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    data["expectations"].pop()
    path.write_text(json.dumps(data), encoding="utf-8")
    assert gx_suites.stale(tmp_path) == ["feeds/pnp_victims.json"]


def test_checks_declaration_loads_and_names_known_checks():
    config = checks.load_config()
    assert set(config) == set(checks.CHECKS)
    assert all(spec["severity"] in ("blocking", "warning") for spec in config.values())
