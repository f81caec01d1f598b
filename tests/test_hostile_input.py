"""Hostile and broken deliveries: each gets a clear reason, the bad row or file is quarantined,
the rest of the run goes on, and nothing is lost (rows read = harmonised + quarantined)."""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from types import SimpleNamespace

import openpyxl
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from pipelines import read
from pipelines.contracts import parse_contract
from pipelines.harmonise.engine import harmonise
from pipelines.pipeline import run
from pipelines.privacy import demo_key
from pipelines.publish import ValidationBlocked
from pipelines.read import discover_deliveries, read_delivery, safe_name
from tests.conftest import TEST_RUNNER

CONTRACT_YAML = """
feed: hx_victims
agency: HX
title: Hostile-input test feed (made up)
role: victim
version: "0.1.0"
source: {files: "hx/*.csv", format: csv, encoding: utf-8, delimiter: ";"}
record_id: ID
fields:
  case_ref: {column: CASO}
  event_date: {column: FECHA, parse: date, formats: ["%d/%m/%Y"]}
  name: {parse: name, style: surnames_comma_given, column: NOMBRE}
  sex: {column: SEXO, lookup: sex}
  age: {column: EDAD, parse: age}
lookups:
  sex: {F: FEMALE, M: MALE}
"""
HEADER = "ID;CASO;FECHA;NOMBRE;SEXO;EDAD"
GOOD = ["1;C-1;01/02/2018;QUISPE MAMANI, ROSA;F;17", "2;C-2;02/02/2018;TORRES VEGA, LUIS;M;30"]


@pytest.fixture(scope="module")
def contract():
    import yaml

    return parse_contract(yaml.safe_load(CONTRACT_YAML))


def csv_bytes(*lines, ending="\n", encoding="utf-8") -> bytes:
    return ending.join(lines).encode(encoding) + ending.encode()


def accounted(result, contract) -> tuple[int, int, dict]:
    """Read then harmonise one delivery: (harmonised, quarantined, reasons); asserts nothing is lost."""
    harmonised, q_reasons = 0, {}
    for r in result.quarantined.column("reason_code").to_pylist():
        q_reasons[r] = q_reasons.get(r, 0) + 1
    for chunk in result.chunks:
        h = harmonise(contract, chunk)
        harmonised += h.records.num_rows
        for r in h.quarantined.column("reason_code").to_pylist():
            q_reasons[r] = q_reasons.get(r, 0) + 1
    row_level = sum(1 for r in result.quarantined.column("source_row").to_pylist() if r is not None)
    quarantined = row_level + sum(q_reasons.values()) - result.quarantined.num_rows
    assert result.stats["rows_read"] == harmonised + quarantined
    return harmonised, quarantined, q_reasons


def test_wrong_encoding_quarantines_the_line(contract):
    data = csv_bytes(HEADER, *GOOD) + "3;C-3;03/02/2018;PEÑA, ANA;F;20\n".encode("latin-1")
    h, q, reasons = accounted(read_delivery(contract, data, "hx/a.csv"), contract)
    assert (h, q, reasons) == (2, 1, {"encoding_error": 1})


def test_wrong_encoding_in_the_header_rejects_the_file(contract):
    data = "ID;CASO;FECHA;NOMBRE;SEXO;EDAD;AÑO\n".encode("latin-1") + csv_bytes(*GOOD)
    result = read_delivery(contract, data, "hx/a.csv")
    assert result.stats["file_rejected"]["reason_code"] == "encoding_error" and result.chunks == []


def test_mixed_line_endings(contract):
    data = (HEADER + "\r\n" + GOOD[0] + "\r" + GOOD[1] + "\n" + "3;C-3;03/02/2018;DIAZ, ANA;F;20\r\n").encode()
    assert accounted(read_delivery(contract, data, "hx/a.csv"), contract)[:2] == (3, 0)


def test_unbalanced_quotes(contract):
    data = csv_bytes(HEADER, GOOD[0], '2;"C-2;02/02/2018;"TORRES, LUIS;M;30', GOOD[1].replace("2;", "3;", 1))
    h, q, reasons = accounted(read_delivery(contract, data, "hx/a.csv"), contract)
    assert (h, q, reasons) == (2, 1, {"malformed_row": 1})


@pytest.mark.parametrize("header", ["ID;CASO;FECHA;NOMBRE;SEXO", "ID;CASO;FECHA;NOMBRE;GENERO;EDAD"])
def test_missing_or_renamed_column_quarantines_every_row(contract, header):
    rows = [";".join(g.split(";")[: len(header.split(";"))]) for g in GOOD]
    result = read_delivery(contract, csv_bytes(header, *rows), "hx/a.csv")
    h, q, reasons = accounted(result, contract)
    assert (h, q, reasons) == (0, 2, {"missing_column": 2})
    assert "SEXO" in result.quarantined.column("detail")[0].as_py() or "EDAD" in result.quarantined.column("detail")[0].as_py()


def test_extra_columns_are_reported_and_their_values_go_nowhere(contract):
    result = read_delivery(contract, csv_bytes(HEADER + ";SECRETO", *(g + ";70123456" for g in GOOD)), "hx/a.csv")
    assert result.stats["unmapped_columns"] == ["SECRETO"]
    h, q, _ = accounted(result, contract)
    assert (h, q) == (2, 0)
    records = harmonise(contract, result.chunks[0]).records
    assert "70123456" not in json.dumps(records.to_pylist(), default=str)


@pytest.mark.parametrize("data,reason", [(b"", "empty_file"), (b"\n\r\n  \n", "empty_file"),
                                          (b"\x00\x00garbage\x00", "unreadable_file")])
def test_empty_and_binary_files_are_rejected_whole(contract, data, reason):
    result = read_delivery(contract, data, "hx/a.csv")
    assert result.stats["file_rejected"]["reason_code"] == reason and result.stats["rows_read"] == 0
    assert result.quarantined.column("source_row").to_pylist() == [None]


def test_header_only_file(contract):
    result = read_delivery(contract, csv_bytes(HEADER), "hx/a.csv")
    assert (result.stats["rows_read"], result.quarantined.num_rows, result.chunks) == (0, 0, [])


def test_binary_garbage_without_nul_bytes_is_quarantined_row_by_row(contract):
    garbage = bytes(range(1, 256)) * 40
    result = read_delivery(contract, csv_bytes(HEADER, *GOOD) + garbage, "hx/a.csv")
    h, q, reasons = accounted(result, contract)
    # garbage lines cost their rows; this many of them reject the file, whose good rows go too
    assert (h, reasons["file_rejected"]) == (0, 2) and set(reasons) <= {"encoding_error", "malformed_row", "file_rejected"}
    assert result.stats["verdict"]["verdict"] == "rejected"


def test_truncated_files(contract):
    full = csv_bytes(HEADER, *GOOD)
    h, q, reasons = accounted(read_delivery(contract, full[:-12], "hx/a.csv"), contract)
    assert (h, q, reasons) == (1, 1, {"malformed_row": 1})
    jsonl = parse_contract({**_yaml(), "source": {"files": "hx/*.jsonl", "format": "jsonl", "encoding": "utf-8"}})
    lines = b"\n".join(json.dumps(dict(zip(HEADER.split(";"), g.split(";")))).encode() for g in GOOD)
    result = read_delivery(jsonl, lines[:-20], "hx/a.jsonl")
    assert accounted(result, jsonl)[:3] == (1, 1, {"malformed_row": 1})
    xlsx = parse_contract({**_yaml(), "source": {"files": "hx/*.xlsx", "format": "xlsx"}})
    book = _xlsx([HEADER.split(";"), *(g.split(";") for g in GOOD)])
    result = read_delivery(xlsx, book[: len(book) // 2], "hx/a.xlsx")
    assert result.stats["file_rejected"]["reason_code"] == "unreadable_file"
    assert accounted(read_delivery(xlsx, book, "hx/a.xlsx"), xlsx)[:2] == (2, 0)


def _yaml():
    import yaml

    return yaml.safe_load(CONTRACT_YAML)


def _xlsx(rows) -> bytes:
    wb = openpyxl.Workbook()
    for row in rows:
        wb.active.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_a_line_of_hundreds_of_megabytes_is_quarantined_not_parsed(contract):
    huge = "3;C-3;03/02/2018;" + "A" * (200 * 1024 * 1024) + ";F;20"
    data = csv_bytes(HEADER, GOOD[0], huge, GOOD[1])
    del huge
    result = read_delivery(contract, data, "hx/a.csv")
    h, q, reasons = accounted(result, contract)
    assert (h, q, reasons) == (2, 1, {"malformed_row": 1})
    assert "longer than" in result.quarantined.column("detail")[0].as_py()


def test_the_line_limit_is_configurable_and_guards_jsonl_and_the_header(contract):
    data = csv_bytes(HEADER, GOOD[0], GOOD[1] + ";" + "x" * 100)
    result = read_delivery(contract, data, "hx/a.csv", max_line_chars=80)
    assert accounted(result, contract)[:3] == (1, 1, {"malformed_row": 1})
    assert read_delivery(contract, data, "hx/a.csv", max_line_chars=10).stats["file_rejected"]["reason_code"] \
        == "malformed_row"
    jsonl = parse_contract({**_yaml(), "source": {"files": "hx/*.jsonl", "format": "jsonl", "encoding": "utf-8"}})
    lines = [json.dumps(dict(zip(HEADER.split(";"), g.split(";")))) for g in GOOD]
    result = read_delivery(jsonl, "\n".join([lines[0], lines[1][:-1] + ', "x": "' + "y" * 500 + '"}']).encode(),
                           "hx/a.jsonl", max_line_chars=300)
    assert accounted(result, jsonl)[:3] == (1, 1, {"malformed_row": 1})


def _bomb(inner_bytes: int) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/worksheets/sheet1.xml", b"\x00" * inner_bytes)
    return buf.getvalue()


def test_xlsx_zip_bomb_is_rejected_before_inflating(contract):
    xlsx = parse_contract({**_yaml(), "source": {"files": "hx/*.xlsx", "format": "xlsx"}})
    bomb = _bomb(64 * 1024 * 1024)  # 64 MB of zeros in ~64 kB: far past the ratio guard
    assert len(bomb) < 1024 * 1024
    result = read_delivery(xlsx, bomb, "hx/bomb.xlsx")
    assert result.stats["file_rejected"]["reason_code"] == "unreadable_file"
    assert "zip bomb" in result.stats["file_rejected"]["detail"]


def test_xlsx_declaring_a_huge_member_is_rejected(contract, monkeypatch):
    xlsx = parse_contract({**_yaml(), "source": {"files": "hx/*.xlsx", "format": "xlsx"}})
    monkeypatch.setattr(read, "MAX_XLSX_UNCOMPRESSED", 1024 * 1024)  # the absolute cap, scaled down
    monkeypatch.setattr(read, "MAX_XLSX_RATIO", 10 ** 9)
    result = read_delivery(xlsx, _bomb(2 * 1024 * 1024), "hx/bomb.xlsx")
    assert result.stats["file_rejected"]["reason_code"] == "unreadable_file"


def test_impossible_dates_ages_in_words_and_duplicate_ids(contract):
    data = csv_bytes(HEADER, GOOD[0], "2;C-2;31/02/2018;DIAZ, ANA;F;20", "3;C-3;01/03/2018;RAMOS, JOSE;M;17 años",
                     "4;C-4;01/03/2018;ROJAS, EVA;F;diecisiete", "1;C-5;01/04/2018;SOTO, LIA;F;22")
    result = read_delivery(contract, data, "hx/a.csv")
    h, q, reasons = accounted(result, contract)
    assert (h, q) == (2, 3)
    assert reasons == {"invalid_date": 1, "invalid_age": 1, "duplicate_record_id": 1}
    records = harmonise(contract, result.chunks[0]).records
    ages = dict(zip(records.column("source_record_id").to_pylist(), records.column("age_at_event").to_pylist()))
    assert ages == {"1": 17, "3": 17}


@pytest.mark.parametrize("name,expected", [
    ("hx/../../etc/passwd", "hx/_/_/etc/passwd"), ("/abs/hx/a.csv", "abs/hx/a.csv"),
    ("hx/a\nINFO forged log line.csv", "hx/a\\x0aINFO forged log line.csv"),
    ("hx/\x1b[31mred.csv", "hx/\\x1b[31mred.csv"), ("hx/\u202evsc.csv", "hx/\\x202evsc.csv"),
])
def test_file_names_are_made_safe(name, expected):
    assert safe_name(name) == expected


@pytest.mark.pipeline
def test_hostile_landing_zone_end_to_end(tmp_path, contract):
    contracts = tmp_path / "contracts" / "hx"
    contracts.mkdir(parents=True)
    (contracts / "victims.yaml").write_text(CONTRACT_YAML, encoding="utf-8")
    feeds = tmp_path / "feeds" / "hx"
    feeds.mkdir(parents=True)
    formula = '=HYPERLINK("http://evil.example","x")'
    (feeds / "ok.csv").write_bytes(csv_bytes(HEADER, *GOOD, f"3;{formula};03/02/2018;@SUM(A1), +ROSA;-1+2;20"))
    (feeds / "evil\nINFO forged.csv").write_bytes(csv_bytes(HEADER, "9;C-9;01/02/2018;DIAZ, ANA;F;20"))
    (feeds / "\x1b[2Jclear.csv").write_bytes(b"")
    (feeds / "garbage.csv").write_bytes(os.urandom(4096) + b"\x00")
    (feeds / "latin.csv").write_bytes(csv_bytes(HEADER, "5;C-5;01/02/2018;PEÑA, ANA;F;20", encoding="latin-1"))
    outside = tmp_path / "outside.csv"
    outside.write_bytes(csv_bytes(HEADER, "7;C-7;01/02/2018;SECRETA, PERSONA;F;20"))
    (feeds / "link.csv").symlink_to(outside)

    deliveries = discover_deliveries(str(tmp_path / "feeds"), [contract])
    names = [rel for _, _, rel in deliveries]
    assert all(ch.isprintable() for n in names for ch in n)
    assert [url for _, url, rel in deliveries if rel == "hx/link.csv"] == [None]

    # the rejected files block the run: it is written and reported, and nothing becomes current
    with pytest.raises(ValidationBlocked, match="hx/garbage.csv rejected") as blocked:
        run(str(tmp_path / "feeds"), str(tmp_path / "out"), [f"--runner={TEST_RUNNER}"],
            [str(tmp_path / "contracts")], key=demo_key(), allow_missing=["*"])
    assert not (tmp_path / "out" / "current.json").exists()
    run_id = str(blocked.value).split()[1]
    result = SimpleNamespace(run_id=run_id, run_dir=str(tmp_path / "out" / "runs" / run_id),
                             manifest=json.loads((tmp_path / "out" / "runs" / run_id / "manifest.json").read_text()))
    assert result.manifest["status"] == "blocked"
    feed = result.manifest["feeds"]["hx_victims"]
    assert feed["rows_read"] == feed["rows_harmonised"] + feed["rows_quarantined"]
    assert feed["rows_harmonised"] == 4  # ok.csv (3, formulas kept as text) + the oddly named file
    rejected = {f["source_file"]: f["file_rejected"]["reason_code"] for f in feed["files"] if f["file_rejected"]}
    assert rejected == {"hx/\\x1b[2Jclear.csv": "empty_file", "hx/garbage.csv": "encoding_error",
                        "hx/link.csv": "unreadable_file"}
    verdicts = {f["source_file"]: f["verdict"]["verdict"] for f in feed["files"]}
    assert verdicts == {"hx/\\x1b[2Jclear.csv": "rejected", "hx/garbage.csv": "rejected", "hx/link.csv": "rejected",
                        "hx/ok.csv": "accepted", "hx/evil\\x0aINFO forged.csv": "accepted",
                        "hx/latin.csv": "accepted_with_warnings"}
    q = ds.dataset(f"{result.run_dir}/quarantine", format="parquet").to_table()
    assert set(q.column("source_file").to_pylist()) >= {"hx/link.csv", "hx/garbage.csv", "hx/latin.csv"}
    assert all(ch.isprintable() for n in q.column("source_file").to_pylist() for ch in n)
    manifest_text = open(f"{result.run_dir}/manifest.json", encoding="utf-8").read()
    assert "SECRETA" not in manifest_text and "\x1b" not in manifest_text and "evil\nINFO" not in manifest_text
    victims = ds.dataset(f"{result.run_dir}/harmonised/victims", format="parquet").to_table()
    assert pc.sum(pc.equal(victims.column("source_file"), "hx/evil\\x0aINFO forged.csv")).as_py() == 1
    # exports: no cell a spreadsheet would run
    for path in (tmp_path / "out" / "runs" / result.run_id).rglob("*"):
        if path.suffix == ".csv":
            text = path.read_text(encoding="utf-8")
            cells = [v for row in csv.reader(io.StringIO(text)) for v in row]
        elif path.suffix == ".xlsx":
            wb = openpyxl.load_workbook(path)
            cells = [str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row
                     if c.value is not None]
            assert all(c.data_type != "f" for ws in wb.worksheets for row in ws.iter_rows() for c in row)
        else:
            continue
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")], path.name


# --- delivery verdicts, byte-level faults and sniffing (issue 13) ------------------------------

def _many(n: int, start: int = 1) -> list[str]:
    return [f"{i};C-{i};01/02/2018;QUISPE MAMANI, ROSA;F;17" for i in range(start, start + n)]


@pytest.fixture(scope="module")
def latin_contract():
    return parse_contract({**_yaml(), "source": {"files": "hx/*.csv", "format": "csv", "encoding": "latin-1",
                                                 "delimiter": ";"}})


def test_a_nul_byte_early_costs_its_line_not_the_file(contract):
    rows = _many(40)
    rows[1] = rows[1][:10] + "\x00" + rows[1][10:]
    result = read_delivery(contract, csv_bytes(HEADER, *rows), "hx/a.csv")
    assert accounted(result, contract) == (39, 1, {"encoding_error": 1})
    assert result.stats["verdict"]["verdict"] == "accepted_with_warnings"
    assert "NUL" in result.quarantined.column("detail")[0].as_py()


def test_a_bom_is_stripped_whatever_the_declared_encoding(latin_contract):
    result = read_delivery(latin_contract, b"\xef\xbb\xbf" + csv_bytes(HEADER, *GOOD), "hx/a.csv")
    assert result.stats["missing_columns"] == [] and accounted(result, latin_contract)[:2] == (2, 0)
    assert result.stats["verdict"] == {"verdict": "accepted", "reasons": []}


def test_a_utf8_file_in_a_latin1_feed_is_detected_and_rejected_above_the_share(latin_contract):
    names = [f"{i};C-{i};01/02/2018;PEÑA NUÑEZ, ANA;F;20" for i in range(1, 11)]
    result = read_delivery(latin_contract, b"\xef\xbb\xbf" + csv_bytes(HEADER, *_many(20, 11), *names), "hx/a.csv")
    assert result.stats["encoding_suspect_lines"] == 10
    assert result.stats["verdict"]["verdict"] == "rejected" and "UTF-8" in result.stats["verdict"]["reasons"][0]
    assert result.chunks == [] and accounted(result, latin_contract)[2] == {"file_rejected": 30}
    # one such line in 200 is a warning, and the file is read
    few = read_delivery(latin_contract, csv_bytes(HEADER, *_many(199), names[0].replace("1;", "999;", 1)), "hx/a.csv")
    assert few.stats["verdict"]["verdict"] == "accepted_with_warnings" and accounted(few, latin_contract)[0] == 200


def test_mojibake_in_a_utf8_feed_is_detected(contract):
    garbled = [f"{i};C-{i};01/02/2018;PEÃ‘A, ANA;F;20" for i in range(1, 11)]
    result = read_delivery(contract, csv_bytes(HEADER, *garbled), "hx/a.csv")
    assert result.stats["encoding_suspect_lines"] == 10 and result.stats["verdict"]["verdict"] == "rejected"
    assert "double-encoded" in result.stats["verdict"]["reasons"][0]


def test_swapped_headers_never_put_document_numbers_into_a_reference_column(contract):
    # CASO and NOMBRE swapped by the agency: case references under the name, names under the case
    swapped = [f"{i};7{i:07d};01/02/2018;C-{i};F;17" for i in range(1, 21)]
    result = read_delivery(contract, csv_bytes(HEADER, *_many(2, 100), *swapped), "hx/a.csv")
    assert result.stats["contradicting_rows"] == 20 and result.stats["verdict"]["verdict"] == "rejected"
    h, q, reasons = accounted(result, contract)
    assert h == 0 and reasons == {"value_contradicts_column": 20, "file_rejected": 2}
    assert "70000001" not in json.dumps(result.quarantined.to_pylist(), default=str)
    # below the share the row goes alone, and its value nowhere
    one = read_delivery(contract, csv_bytes(HEADER, *_many(40), "99;12/03/1990;01/02/2018;DIAZ, ANA;F;20"), "hx/a.csv")
    assert accounted(one, contract) == (40, 1, {"value_contradicts_column": 1})
    assert one.stats["verdict"]["verdict"] == "accepted_with_warnings"
    assert "12/03/1990" not in json.dumps(one.quarantined.to_pylist(), default=str)


@pytest.mark.parametrize("data", [b"", csv_bytes(HEADER)], ids=["empty", "header-only"])
def test_empty_and_header_only_files_are_rejected(contract, data):
    assert read_delivery(contract, data, "hx/a.csv").stats["verdict"]["verdict"] == "rejected"
