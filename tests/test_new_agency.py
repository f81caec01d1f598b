"""A new feed needs only a contract: a made-up agency's contract and file, added at test time."""

from __future__ import annotations

import pyarrow.dataset as ds
import pytest

from pipelines.pipeline import run
from pipelines.privacy import demo_key
from tests.conftest import TEST_RUNNER

pytestmark = pytest.mark.pipeline  # every test here runs the pipeline

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
  name: {parse: name, style: given_then_surnames, column: NOMBRE}
  sex: {column: GENERO, lookup: sex}
  age: {column: EDAD, parse: age}
  nationality: {column: PAIS, parse: country}
lookups:
  sex: {MUJER: FEMALE, VARON: MALE}
"""

FEED = "QUEJA|FECHA|NOMBRE|GENERO|EDAD|PAIS|NOTA\nQ1|20180305|ANA LUZ TORRES VEGA|MUJER|16|PERUANA|x\nQ2|20180931|JOSE RAMOS|VARON|30|VENEZOLANA|y\nQ3|20180412|ROSA DIAZ|MUJER|17 años|PE|z\n"


def test_made_up_agency_runs_from_a_contract_alone(tmp_path):
    contracts = tmp_path / "contracts" / "dp"
    contracts.mkdir(parents=True)
    (contracts / "complaints.yaml").write_text(CONTRACT, encoding="utf-8")
    feeds = tmp_path / "feeds" / "dp"
    feeds.mkdir(parents=True)
    (feeds / "quejas_2018.csv").write_text(FEED, encoding="utf-8")

    result = run(str(tmp_path / "feeds"), str(tmp_path / "out"), [f"--runner={TEST_RUNNER}"],
                 [str(tmp_path / "contracts")], key=demo_key(), allow_missing=["*"])
    feed = result.manifest["feeds"]["dp_complaints"]
    assert (feed["rows_read"], feed["rows_harmonised"], feed["rows_quarantined"]) == (3, 2, 1)
    assert feed["quarantine_reasons"] == {"invalid_date": 1}
    assert feed["files"][0]["unmapped_columns"] == ["NOTA"]
    victims = ds.dataset(f"{result.run_dir}/harmonised/victims", format="parquet").to_table().to_pylist()
    assert sorted((v["sex"], v["age_at_event"], v["nationality"], v["child_adult"]) for v in victims) == [
        ("FEMALE", 16, "PER", "CHILD"), ("FEMALE", 17, "PER", "CHILD")]
