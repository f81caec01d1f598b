import pyarrow.compute as pc
import pytest

from pipelines.contracts import parse_contract
from pipelines.read import SOURCE_ROW, read_delivery

CONTRACT = {
    "feed": "test_feed", "agency": "TEST", "role": "victim",
    "source": {"files": "t/*.csv", "format": "csv", "encoding": "latin-1", "delimiter": ";"},
    "record_id": "ID",
    "fields": {"sex": {"column": "SEXO", "lookup": "sex"}, "event_date": {"column": "FECHA", "parse": "date",
                                                                          "formats": ["%d/%m/%Y"]}},
    "lookups": {"sex": {"M": "MALE", "F": "FEMALE"}},
    "ignore_columns": ["OFICINA"],
}


def contract(**overrides):
    raw = {**CONTRACT, **overrides}
    return parse_contract(raw)


def rows(result):
    return sum(c.num_rows for c in result.chunks)


def test_csv_rows_and_row_numbers():
    data = "ID;SEXO;FECHA;OFICINA\r\n1;M;01/02/2018;X\n2;F;02/02/2018;Y\r3;F;03/02/2018;Z\n".encode("latin-1")
    result = read_delivery(contract(), data, "t/a.csv")
    assert rows(result) == 3
    assert result.chunks[0].column(SOURCE_ROW).to_pylist() == [1, 2, 3]
    assert result.stats["rows_read"] == 3
    assert result.quarantined.num_rows == 0


def test_malformed_rows_are_quarantined_not_lost():
    data = b'ID;SEXO;FECHA;OFICINA\n1;M;01/02/2018;X\n2;F\n3;"F;03/02/2018;Z\n4;F;04/02/2018;W\n'
    result = read_delivery(contract(), data, "t/a.csv")
    assert rows(result) == 2
    q = result.quarantined
    assert q.column("reason_code").to_pylist() == ["malformed_row", "malformed_row"]
    assert q.column("source_row").to_pylist() == [2, 3]
    assert result.stats["rows_read"] == rows(result) + q.num_rows


def test_duplicate_and_missing_record_ids():
    data = b"ID;SEXO;FECHA;OFICINA\n1;M;01/02/2018;X\n;F;01/02/2018;X\n1;F;02/02/2018;Y\n"
    result = read_delivery(contract(), data, "t/a.csv")
    assert rows(result) == 1
    reasons = dict(zip(result.quarantined.column("source_row").to_pylist(),
                       result.quarantined.column("reason_code").to_pylist()))
    assert reasons == {2: "missing_record_id", 3: "duplicate_record_id"}


def test_missing_column_quarantines_every_row():
    data = b"ID;SEX;FECHA;OFICINA\n1;M;01/02/2018;X\n2;F;01/02/2018;X\n"
    result = read_delivery(contract(), data, "t/a.csv")
    assert rows(result) == 0
    assert result.quarantined.num_rows == 2
    assert set(result.quarantined.column("reason_code").to_pylist()) == {"missing_column"}
    assert result.stats["missing_columns"] == ["SEXO"]


def test_unmapped_columns_are_reported():
    data = b"ID;SEXO;FECHA;OFICINA;EXTRA\n1;M;01/02/2018;X;secret\n"
    result = read_delivery(contract(), data, "t/a.csv")
    assert result.stats["unmapped_columns"] == ["EXTRA"]
    assert rows(result) == 1


@pytest.mark.parametrize("data,reason", [(b"", "empty_file"), (b"   \n\n", "empty_file"),
                                          (b"\x00\x01\x02binary\x00", "unreadable_file")])
def test_unreadable_files_are_rejected_whole(data, reason):
    result = read_delivery(contract(), data, "t/a.csv")
    assert result.chunks == []
    assert result.stats["file_rejected"]["reason_code"] == reason
    assert result.quarantined.column("source_row").to_pylist() == [None]


def test_header_only_file_reads_zero_rows():
    result = read_delivery(contract(), b"ID;SEXO;FECHA;OFICINA\n", "t/a.csv")
    assert result.stats["rows_read"] == 0 and rows(result) == 0 and result.quarantined.num_rows == 0


def test_wrong_encoding_lines_are_quarantined():
    c = contract(source={**CONTRACT["source"], "encoding": "utf-8"})
    data = "ID;SEXO;FECHA;OFICINA\n1;M;01/02/2018;X\n2;F;01/02/2018;Año\n".encode("latin-1")
    result = read_delivery(c, data, "t/a.csv")
    assert rows(result) == 1
    assert result.quarantined.column("reason_code").to_pylist() == ["encoding_error"]


def test_utf8_bom_is_stripped():
    c = contract(source={**CONTRACT["source"], "encoding": "utf-8-sig", "delimiter": ","})
    data = "\ufeffID,SEXO,FECHA,OFICINA\n1,M,01/02/2018,X\n".encode("utf-8")
    result = read_delivery(c, data, "t/a.csv")
    assert rows(result) == 1 and result.stats["missing_columns"] == []


def test_jsonl_bad_lines_are_quarantined():
    c = contract(source={"files": "t/*.jsonl", "format": "jsonl", "encoding": "utf-8"})
    data = b'{"ID": "1", "SEXO": "M", "FECHA": "01/02/2018", "edad": 7}\n{not json\n[1,2]\n{"ID": 2, "SEXO": "F", "FECHA": null}\n'
    result = read_delivery(c, data, "t/a.jsonl")
    assert rows(result) == 2
    assert result.quarantined.column("source_row").to_pylist() == [2, 3]
    ids = pc.cast(result.chunks[0].column("ID"), "string").to_pylist()
    assert ids == ["1", "2"]


def test_read_errors_never_echo_values():
    data = b"ID;SEXO;FECHA;OFICINA\n1;M;01/02/2018;X\nMARIA QUISPE;12345678\n"
    result = read_delivery(contract(), data, "t/a.csv")
    text = " ".join(str(v) for v in result.quarantined.to_pylist())
    assert "MARIA" not in text and "12345678" not in text


def test_python_whitespace_is_every_character_str_strip_drops():
    import sys

    from pipelines.read import PYTHON_WHITESPACE
    assert set(PYTHON_WHITESPACE) == {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}


def _reference_csv_rows(text: str, delimiter: str) -> tuple[list[list[str]], list[int], list[int]]:
    """The reader's rules line by line: (rows, their numbers, malformed row numbers)."""
    import csv
    import re

    lines = re.split(r"\r\n|\r|\n", text)
    header_at = next(i for i, line in enumerate(lines) if line.strip())
    width = len(next(csv.reader([lines[header_at]], delimiter=delimiter)))
    rows, numbers, malformed = [], [], []
    for row_number, line in enumerate(lines[header_at + 1:], start=1):
        if not line.strip():
            continue
        try:
            values = next(csv.reader([line], delimiter=delimiter, strict=True)) if '"' in line else line.split(delimiter)
        except csv.Error:
            malformed.append(row_number)
            continue
        if len(values) != width:
            malformed.append(row_number)
            continue
        rows.append(values)
        numbers.append(row_number)
    return rows, numbers, malformed


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_columnar_csv_rows_equal_line_by_line_reading(delimiter):
    """The bulk of a CSV is split in Arrow; quoted, short, long, blank-looking and exotic-space
    lines go line by line: together they must give exactly the line-by-line rows, in file order."""
    from pipelines.read import parse_csv

    d = delimiter
    lines = ["", " \t", f"A{d}B{d}C",                      # leading blank lines, then the header
             f"1{d}x{d}y", f'2{d}"q{d}uoted"{d}z', f"3{d}x", "\u3000\xa0\x1c",  # quoted, short, exotic blank
             f"4{d}{d}", f"5{d}x{d}y{d}extra", f'6{d}"bad{d}x', f"\xa0{d}\u2003{d}\x1f",  # empty cells, long, bad quote, all spaces
             f" 7 {d} x {d} y ", "", f"8{d}é{d}ñ", f'"9"{d}a{d}b', "   ", f"10{d}x{d}y"]
    text = "\r\n".join(lines[:6]) + "\n" + "\r".join(lines[6:12]) + "\n" + "\n".join(lines[12:]) + "\n"
    parsed = parse_csv(text.encode("utf-8"), "utf-8", delimiter)
    rows, numbers, malformed = _reference_csv_rows(text, delimiter)
    assert parsed.header == ["A", "B", "C"] and len(rows) == (7 if d == "\t" else 8) and len(malformed) == 3
    assert parsed.rows == [tuple(r) for r in rows]
    assert parsed.row_numbers.to_pylist() == numbers
    assert [m[0] for m in parsed.malformed] == malformed
    assert parsed.rows_read == len(rows) + len(malformed)
