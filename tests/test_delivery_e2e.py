"""Hostile deliveries through `concilia run` (issue 13): a good delivery publishes; a delivery with
a rejected file is written and reported but blocked (exit 6) and the previous version stays
current; a NUL byte costs a line and publishes; a truncated feed fails its control total and
blocks. Nothing personal lands outside the restricted zone. One output root for the module."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipelines.cli import main
from pipelines.options import EXIT_BLOCKED, EXIT_OK
from tests.conftest import SAMPLE_FEEDS, TEST_RUNNER

pytestmark = pytest.mark.pipeline  # every test here runs the pipeline

CONTRACT = """
feed: hx_victims
agency: HX
title: Hostile-delivery test feed (made up)
role: victim
version: "0.1.0"
source: {files: "hx/*.csv", format: csv, encoding: latin-1, delimiter: ";"}
record_id: ID
fields:
  case_ref: {column: CASO}
  event_date: {column: FECHA, parse: date, formats: ["%d/%m/%Y"]}
  name: {parse: name, style: surnames_comma_given, column: NOMBRE}
  document: {parse: document, number_column: DOC, type: "01"}
  sex: {column: SEXO, lookup: sex}
lookups:
  sex: {F: FEMALE, M: MALE}
assertions: {min_rows: 2}
delivery: {required: true}
"""
HEADER = "ID;CASO;FECHA;NOMBRE;DOC;SEXO"
SURNAMES = ["QUISPE", "MAMANI", "TORRES", "VEGA", "ROJAS", "DIAZ", "SOTO", "RAMOS", "CRUZ", "FLORES"]


def rows(first: int, n: int, surname: str | None = None) -> list[str]:
    return [f"{i};C-{i};01/02/2018;{surname or SURNAMES[i % 10]} {SURNAMES[(i // 10) % 10]}, ROSA;"
            f"{40000000 + i};{'FM'[i % 2]}" for i in range(first, first + n)]


def latin(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode("latin-1")


def concilia(feeds: Path, out: Path, contracts: Path | None = None) -> int:
    args = ["run", "--feeds", str(feeds), "--out", str(out), "--demo-key", f"--runner={TEST_RUNNER}",
            "--allow-missing", "*"]
    return main(args + (["--contracts", str(contracts)] if contracts else []))


def current(out: Path) -> str:
    return json.loads((out / "current.json").read_text())["run_id"]


def newest_manifest(out: Path) -> dict:
    newest = max((out / "runs").iterdir(), key=lambda p: p.name)
    return json.loads((newest / "manifest.json").read_text())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("delivery")
    (root / "contracts" / "hx").mkdir(parents=True)
    (root / "contracts" / "hx" / "victims.yaml").write_text(CONTRACT, encoding="utf-8")
    feeds = root / "feeds" / "hx"
    feeds.mkdir(parents=True)
    (feeds / "good.csv").write_bytes(latin(HEADER, *rows(1, 30)))
    out = root / "out"
    assert concilia(root / "feeds", out, root / "contracts") == EXIT_OK
    return root, out, current(out)


def test_rejected_files_block_the_run_and_the_previous_version_stays(site):
    root, out, first = site
    feeds = root / "hostile" / "hx"
    feeds.mkdir(parents=True)
    shutil.copy(root / "feeds" / "hx" / "good.csv", feeds / "good.csv")
    utf8 = ("\n".join([HEADER, *rows(100, 10, "PEÑA")]) + "\n").encode("utf-8")
    (feeds / "bom_utf8.csv").write_bytes(b"\xef\xbb\xbf" + utf8)  # a UTF-8 file, BOM and all, in a latin-1 feed
    (feeds / "empty.csv").write_bytes(b"")
    (feeds / "header_only.csv").write_bytes(latin(HEADER))
    # CASO and DOC swapped: document numbers under the case reference
    (feeds / "swapped.csv").write_bytes(latin("ID;DOC;FECHA;NOMBRE;CASO;SEXO", *rows(200, 20)))
    assert concilia(root / "hostile", out, root / "contracts") == EXIT_BLOCKED
    assert current(out) == first
    manifest = newest_manifest(out)
    assert manifest["status"] == "blocked"
    feed = manifest["feeds"]["hx_victims"]
    assert feed["rows_read"] == feed["rows_harmonised"] + feed["rows_quarantined"]
    verdicts = {f["source_file"]: f["verdict"]["verdict"] for f in feed["files"]}
    assert verdicts == {"hx/good.csv": "accepted", "hx/bom_utf8.csv": "rejected", "hx/empty.csv": "rejected",
                        "hx/header_only.csv": "rejected", "hx/swapped.csv": "rejected"}
    [delivery] = [c for c in manifest["validation"]["checks"] if c["name"] == "delivery"]
    assert delivery["status"] == "failed" and "hx/swapped.csv rejected" in delivery["detail"]
    report = (out / "runs" / manifest["run_id"] / "reports" / "index.html").read_text(encoding="utf-8")
    assert "hx/swapped.csv rejected" in report  # the steward's report says why
    # nothing of the rejected files outside the restricted zone: no document number, no garbled name
    run_dir = out / "runs" / manifest["run_id"]
    for path in run_dir.rglob("*"):
        if not path.is_file() or path.relative_to(run_dir).parts[0] in ("restricted", "review_queue"):
            continue
        text = json.dumps(pq.read_table(path).to_pylist(), default=str) if path.suffix == ".parquet" \
            else path.read_text(encoding="utf-8", errors="replace")
        assert not any(str(40000000 + i) in text for i in range(200, 220)), path
        assert "PEÃ" not in text, path


def test_a_nul_byte_costs_its_line_and_the_corrected_delivery_publishes(site):
    root, out, first = site
    feeds = root / "nul" / "hx"
    feeds.mkdir(parents=True)
    lines = rows(1, 30)
    lines[0] = lines[0].replace("ROSA", "RO\x00SA")
    (feeds / "good.csv").write_bytes(latin(HEADER, *lines))
    assert concilia(root / "nul", out, root / "contracts") == EXIT_OK
    assert current(out) != first
    feed = newest_manifest(out)["feeds"]["hx_victims"]
    assert (feed["rows_harmonised"], feed["rows_quarantined"]) == (29, 1)
    assert feed["files"][0]["verdict"]["verdict"] == "accepted_with_warnings"


def test_a_truncated_feed_fails_its_control_total_and_blocks(site, tmp_path):
    _, out, _ = site
    before = current(out)
    feeds = tmp_path / "feeds" / "pnp"
    feeds.mkdir(parents=True)
    for name in ("resumen_victimas_2018.csv", "detenidos_2018.csv"):
        shutil.copy(SAMPLE_FEEDS / "pnp" / name, feeds / name)
    data = (SAMPLE_FEEDS / "pnp" / "victimas_2018.csv").read_bytes()
    (feeds / "victimas_2018.csv").write_bytes(data[: len(data) // 2])  # cut mid-row
    assert concilia(tmp_path / "feeds", out) == EXIT_BLOCKED
    assert current(out) == before
    manifest = newest_manifest(out)
    [control] = [c for c in manifest["validation"]["checks"] if c["name"] == "control_totals"]
    assert (control["status"], control["severity"]) == ("failed", "blocking")
