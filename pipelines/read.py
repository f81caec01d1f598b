"""Read stage: each delivered file, through its feed contract, into Arrow tables of raw strings.

``ReadFeeds`` is the stage's PTransform. Every data row of a file ends up either in a raw table
(with its file and row number) or in quarantine with a reason; nothing is dropped. Rows are
parsed line by line so that a malformed line costs one row, not the file.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import logging
import os
import re
import zipfile
from dataclasses import dataclass, field
from itertools import chain
from typing import Iterator

import apache_beam as beam
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import quarantine, verdicts
from pipelines.contracts import Contract

log = logging.getLogger(__name__)

SOURCE_FILE = "_source_file"
SOURCE_ROW = "_source_row"
CHUNK_ROWS = 100_000
# An .xlsx is a zip: refuse archives that would inflate beyond this (zip-bomb guard).
MAX_XLSX_UNCOMPRESSED = 512 * 1024 * 1024
MAX_XLSX_RATIO = 200
# A text line longer than this (in characters) is quarantined unparsed: no row is that long,
# and csv/json would otherwise hold copies of a hundreds-of-MB line per field.
MAX_LINE_CHARS = 1024 * 1024

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LINE_BREAK_BYTES = re.compile(rb"\r\n|\r|\n")
UTF8_BOM = b"\xef\xbb\xbf"
# Text that contradicts the declared encoding, as seen in the text decoded two ways:
# UTF-8 lead + continuation bytes read as latin-1 (a UTF-8 file in a single-byte feed), and
# 'Ã'/'Â' + a continuation character in UTF-8 text (UTF-8 read as latin-1 or cp1252, saved again).
_UTF8_READ_AS_LATIN1 = "[\u00c2-\u00f4][\u0080-\u00bf]"
_DOUBLE_ENCODED = "[\u00c2\u00c3][\u0080-\u00bf" + bytes(range(0x80, 0xA0)).decode("cp1252", "ignore") + "]"
SINGLE_BYTE_ENCODINGS = {"iso8859-1", "cp1252", "iso8859-15", "latin-1"}
# What Python's str.isspace knows (line.strip() drops), so Arrow calls the same lines blank.
PYTHON_WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
                     "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
_BLANK_LINE = "^[" + "".join(f"\\x{{{ord(c):x}}}" for c in PYTHON_WHITESPACE) + "]*$"
# Nested JSON values as cell text: json.dumps(value, ensure_ascii=False, sort_keys=True), one encoder.
_NESTED_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)
# Shapes of personal data, matched on a whole (trimmed) value.
SHAPES = {
    "document number": r"^\d{7,12}$",
    "date": r"^(\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{2}-\d{2})$",
}
# A column of a field parsed as ... must not hold values of these shapes (it is published, or it
# would garble the person): the contract's declared kind against the values delivered.
FORBIDDEN_SHAPES = {"text": ("document number", "date"), "reference": ("document number", "date"),
                    "lookup": ("document number", "date"), "name": ("document number", "date")}

TAG_QUARANTINE = "quarantine"
TAG_STATS = "stats"


class FileRejected(Exception):
    """The whole file cannot be read; the message is safe to publish (no source values)."""

    def __init__(self, reason_code: str, detail: str):
        super().__init__(detail)
        self.reason_code = reason_code
        self.detail = detail


@dataclass
class ParsedFile:
    """A file's data rows as one string array per header column, with the rows' numbers."""

    header: list[str]
    columns: list[pa.Array] = field(default_factory=list)
    row_numbers: pa.Array = field(default_factory=lambda: pa.array([], pa.int64()))
    malformed: list[tuple[int, str, str]] = field(default_factory=list)  # (row, reason, detail)

    @classmethod
    def from_rows(cls, header: list[str], rows: list[list[str | None]], row_numbers: list[int],
                  malformed: list[tuple[int, str, str]]) -> ParsedFile:
        columns = list(zip(*rows)) if rows else [() for _ in header]
        return cls(header, [pa.array(column, pa.string()) for column in columns],
                   pa.array(row_numbers, pa.int64()), malformed)

    @property
    def row_count(self) -> int:
        return len(self.row_numbers)

    @property
    def rows_read(self) -> int:
        return self.row_count + len(self.malformed)

    @property
    def rows(self) -> list[tuple]:
        """The data rows as Python tuples (for the contract drafter; the reader stays columnar)."""
        return list(zip(*(column.to_pylist() for column in self.columns))) if self.columns else []


class _Oversized(str):
    """Stands in for a line over the limit (the line itself is dropped at once)."""


class _Binary(str):
    """Stands in for a line holding NUL bytes: binary content costs its line, not the file."""


OVERSIZED = _Oversized("")
BINARY = _Binary("")


def _drop_oversized(lines: list, limit: int) -> list:
    """Lines over the limit, and lines holding NUL bytes, are replaced by their stand-ins."""
    for i, line in enumerate(lines):
        if line is not None:
            if len(line) > limit:
                lines[i] = OVERSIZED
            elif "\x00" in line:
                lines[i] = BINARY
    return lines


def _line_problem(line, limit: int) -> tuple[str, str] | None:
    if line is None:
        return "encoding_error", "line is not valid in the declared encoding"
    if line is OVERSIZED:
        return "malformed_row", f"line longer than {limit} characters (not parsed)"
    if line is BINARY:
        return "encoding_error", "line holds NUL bytes (binary content)"
    return None


def _decode_lines(data: bytes, encoding: str) -> tuple[list[str | None], list[int]]:
    """Split into lines (any mix of CRLF, LF, CR) and decode each; undecodable lines become None.
    A UTF-8 byte order mark is dropped whatever the declared encoding (it is never data)."""
    data = strip_bom(data)
    if encoding.lower().replace("_", "-") in ("utf-8-sig", "utf8-sig"):
        encoding = "utf-8"
    try:
        return _LINE_BREAK.split(data.decode(encoding)), []
    except UnicodeDecodeError:
        pass
    except LookupError:
        raise FileRejected("unknown_format", f"unknown encoding {encoding!r} in the contract") from None
    lines: list[str | None] = []
    bad: list[int] = []
    for i, raw in enumerate(_LINE_BREAK_BYTES.split(data), start=1):
        try:
            lines.append(raw.decode(encoding))
        except UnicodeDecodeError:
            lines.append(None)
            bad.append(i)
    return lines, bad


def strip_bom(data: bytes) -> bytes:
    return data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data


def encoding_contradictions(data: bytes, encoding: str) -> tuple[int, str]:
    """(lines whose bytes contradict the declared encoding, what was seen). Vectorised over lines."""
    try:
        declared = codecs.lookup(encoding).name
    except LookupError:
        return 0, ""
    data = strip_bom(data)
    if declared in SINGLE_BYTE_ENCODINGS:
        text, pattern, what = data.decode("latin-1"), _UTF8_READ_AS_LATIN1, \
            f"UTF-8 multi-byte sequences in a feed declared {encoding}"
    elif declared.startswith("utf-8"):
        text, pattern, what = data.decode("utf-8", errors="replace"), _DOUBLE_ENCODED, \
            "double-encoded text (UTF-8 read as latin-1 and saved again: mojibake)"
    else:
        return 0, ""
    if not re.search(pattern, text):  # the usual case; a match never spans a line break
        return 0, ""
    lines = pa.array(_LINE_BREAK.split(text), pa.large_string())
    suspect = int(pc.sum(pc.match_substring_regex(lines, pattern)).as_py() or 0)
    return suspect, what if suspect else ""


def parse_csv(data: bytes, encoding: str, delimiter: str, max_line_chars: int = MAX_LINE_CHARS) -> ParsedFile:
    lines = _drop_oversized(_decode_lines(data, encoding)[0], max_line_chars)
    header_at = next((i for i, line in enumerate(lines)
                      if line is None or line is OVERSIZED or line is BINARY or line.strip()), None)
    if header_at is None:
        raise FileRejected("empty_file", "the file has no header line")
    if lines[header_at] is None:
        raise FileRejected("encoding_error", "the header line is not valid in the declared encoding")
    if lines[header_at] is OVERSIZED:
        raise FileRejected("malformed_row", f"the header line is longer than {max_line_chars} characters")
    if lines[header_at] is BINARY:
        raise FileRejected("unreadable_file", "binary content (NUL bytes) in the header line")
    csv.field_size_limit(max(csv.field_size_limit(), max_line_chars))
    header = [h.strip() for h in next(csv.reader([lines[header_at]], delimiter=delimiter))]
    body = lines[header_at + 1:]  # body[i] is data row i + 1
    columns, plain_rows, others = _split_plain_lines(body, delimiter, len(header))
    rows, row_numbers, malformed = _parse_other_lines(body, others, delimiter, len(header), max_line_chars)
    if rows:  # merge the line-by-line rows into the plain ones, in the file's order
        extra = ParsedFile.from_rows(header, rows, row_numbers, [])
        numbers = np.concatenate([plain_rows, extra.row_numbers.to_numpy()])
        order = pa.array(np.argsort(numbers, kind="stable"))
        columns = [pc.take(pa.chunked_array([a, b], pa.string()), order).combine_chunks()
                   for a, b in zip(columns, extra.columns)]
        plain_rows = numbers[order.to_numpy()]
    return ParsedFile(header, columns, pa.array(plain_rows, pa.int64()), malformed)


def _split_plain_lines(body: list, delimiter: str, width: int) -> tuple[list[pa.Array], np.ndarray, np.ndarray]:
    """Split, in Arrow, every line without a quote that has the header's width: the bulk of a file.
    -> (one string array per column, their 1-based row numbers, indices of the lines left to
    read one by one: quoted, of another width, or unreadable; blank lines are in neither)."""
    text = pa.array([line if type(line) is str else None for line in body], pa.large_string())
    unreadable = np.asarray(pc.is_null(text))  # undecodable, oversized or binary lines (their stand-ins)
    blank = np.asarray(pc.fill_null(pc.match_substring_regex(text, _BLANK_LINE), False))
    quoted = np.asarray(pc.fill_null(pc.match_substring(text, '"'), False))
    pieces = pc.split_pattern(text, delimiter)
    fits = np.asarray(pc.fill_null(pc.equal(pc.list_value_length(pieces), width), False))
    plain = fits & ~quoted & ~blank & ~unreadable
    at = np.flatnonzero(plain)
    flat = pc.list_flatten(pc.take(pieces, pa.array(at)))
    starts = np.arange(len(at), dtype=np.int64) * width
    columns = [pc.take(flat, pa.array(starts + j)).cast(pa.string()) for j in range(width)]
    return columns, at + 1, np.flatnonzero(~plain & (~blank | unreadable))


def _parse_other_lines(body: list, indices: np.ndarray, delimiter: str, width: int,
                       max_line_chars: int) -> tuple[list[list[str]], list[int], list[tuple[int, str, str]]]:
    """The lines Arrow did not split, one by one: rows, their numbers, and the malformed."""
    rows, row_numbers, malformed = [], [], []
    for i in indices.tolist():
        line, row_number = body[i], i + 1
        problem = _line_problem(line, max_line_chars)
        if problem:
            malformed.append((row_number, *problem))
            continue
        if not line.strip():
            continue
        if '"' in line:
            try:
                values = next(csv.reader([line], delimiter=delimiter, strict=True))
            except csv.Error:
                malformed.append((row_number, "malformed_row", "unbalanced or misplaced quote"))
                continue
        else:
            values = line.split(delimiter)
        if len(values) != width:
            malformed.append((row_number, "malformed_row", f"{len(values)} fields where the header has {width}"))
            continue
        rows.append(values)
        row_numbers.append(row_number)
    return rows, row_numbers, malformed


def json_text(value) -> str | None:
    """A JSON value as the text of a cell: nested objects and lists stay JSON (paths reach inside)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return _NESTED_JSON.encode(value)
    return str(value)


def parse_jsonl(data: bytes, encoding: str, max_line_chars: int = MAX_LINE_CHARS) -> ParsedFile:
    lines = _drop_oversized(_decode_lines(data, encoding)[0], max_line_chars)
    records: list[tuple[int, dict]] = []
    malformed: list[tuple[int, str, str]] = []
    for i, line in enumerate(lines, start=1):
        problem = _line_problem(line, max_line_chars)
        if problem:
            malformed.append((i, *problem))
            continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            malformed.append((i, "malformed_row", "line is not valid JSON"))
            continue
        if not isinstance(obj, dict):
            malformed.append((i, "malformed_row", "line is not a JSON object"))
            continue
        records.append((i, obj))
    if not records and not malformed:
        raise FileRejected("empty_file", "the file has no records")
    return _records_to_rows(records, malformed)


def _records_to_rows(records: list[tuple[int, dict]], malformed: list[tuple[int, str, str]]) -> ParsedFile:
    """JSON objects -> text columns under the union of their top-level keys, in first-seen order.
    A nested object or list stays one JSON text; contract paths reach inside it."""
    objects = [obj for _, obj in records]
    header = list(dict.fromkeys(chain.from_iterable(objects)))
    columns = [_text_column([obj.get(key) for obj in objects]) for key in header]
    return ParsedFile(header, columns, pa.array([i for i, _ in records], pa.int64()), malformed)


def _text_column(values: list) -> pa.Array:
    """One key's JSON values as cell text (json_text), a column at a time."""
    kinds = set(map(type, values))
    if not kinds <= {str, type(None)}:
        values = [v if type(v) is str else json_text(v) for v in values]
    return pa.array(values, pa.string())


def parse_json(data: bytes, encoding: str) -> ParsedFile:
    """One JSON document: an array of records, or an object holding one (its only list value)."""
    try:
        doc = json.loads(data.decode(encoding))
    except UnicodeDecodeError:
        raise FileRejected("encoding_error", "the file is not valid in the declared encoding") from None
    except (json.JSONDecodeError, RecursionError):
        raise FileRejected("malformed_row", "the file is not valid JSON") from None
    if isinstance(doc, dict):
        lists = [v for v in doc.values() if isinstance(v, list)]
        doc = lists[0] if len(lists) == 1 else None
    if not isinstance(doc, list):
        raise FileRejected("unknown_format", "a JSON feed must be an array of records (or an object holding one)")
    if not doc:
        raise FileRejected("empty_file", "the file has no records")
    records, malformed = [], []
    for i, obj in enumerate(doc, start=1):
        if isinstance(obj, dict):
            records.append((i, obj))
        else:
            malformed.append((i, "malformed_row", "record is not a JSON object"))
    return _records_to_rows(records, malformed)


def parse_xlsx(data: bytes) -> ParsedFile:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            inflated = sum(info.file_size for info in zf.infolist())
    except zipfile.BadZipFile:
        raise FileRejected("unreadable_file", "not a valid .xlsx (zip) file") from None
    if inflated > MAX_XLSX_UNCOMPRESSED or inflated > MAX_XLSX_RATIO * max(len(data), 1):
        raise FileRejected("unreadable_file", "the .xlsx inflates beyond the allowed size (zip bomb guard)")
    import openpyxl  # imported here: only xlsx feeds pay for it

    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for corrupt workbooks
        raise FileRejected("unreadable_file", f"the .xlsx cannot be opened ({exc.__class__.__name__})") from None
    sheet = wb.worksheets[0]
    rows = sheet.iter_rows(values_only=True)
    header_row = next(rows, None)
    if header_row is None:
        raise FileRejected("empty_file", "the workbook's first sheet is empty")
    header = ["" if h is None else str(h).strip() for h in header_row]
    data_rows, row_numbers = [], []
    for i, row in enumerate(rows, start=1):
        values = [None if v is None else str(v) for v in row]
        if all(v is None or not v.strip() for v in values):
            continue
        data_rows.append((values + [None] * len(header))[: len(header)])
        row_numbers.append(i)
    wb.close()
    return ParsedFile.from_rows(header, data_rows, row_numbers, [])


def parse_file(data: bytes, contract: Contract, max_line_chars: int = MAX_LINE_CHARS) -> ParsedFile:
    if not data.strip():
        raise FileRejected("empty_file", "the file is empty")
    if contract.format == "csv":
        return parse_csv(data, contract.encoding, contract.delimiter, max_line_chars)
    if contract.format == "jsonl":
        return parse_jsonl(data, contract.encoding, max_line_chars)
    if contract.format == "json":
        return parse_json(data, contract.encoding)
    if contract.format == "xlsx":
        return parse_xlsx(data)
    raise FileRejected("unknown_format", f"unsupported format {contract.format!r}")


@dataclass
class FileReadResult:
    """One delivered file: its raw rows (chunked), quarantined rows and a stats record."""

    chunks: list[pa.Table]
    quarantined: pa.Table
    stats: dict


def read_delivery(contract: Contract, data: bytes, source_file: str, chunk_rows: int = CHUNK_ROWS,
                  max_line_chars: int = MAX_LINE_CHARS) -> FileReadResult:
    """Parse one delivered file. Pure (no I/O): the Beam DoFn and the tests both call it."""
    stats = {
        "feed_id": contract.feed,
        "source_file": source_file,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "rows_read": 0,
        "file_rejected": None,
        "unmapped_columns": [],
        "missing_columns": [],
        "encoding_suspect_lines": 0,
        "contradicting_rows": 0,
    }

    def q_rows(entries):
        return quarantine.rows_to_table(
            {"feed_id": contract.feed, "agency": contract.agency, "source_file": source_file,
             "source_row": row, "source_record_id": rec_id, "reason_code": code, "field": fld, "detail": detail}
            for row, rec_id, code, fld, detail in entries
        )

    try:
        parsed = parse_file(data, contract, max_line_chars)
    except FileRejected as rej:
        stats["file_rejected"] = {"reason_code": rej.reason_code, "detail": rej.detail}
        stats["verdict"] = verdicts.file_verdict(stats, contract)
        log.warning("feed %s: file %s rejected: %s", contract.feed, source_file, rej.detail)
        return FileReadResult([], q_rows([(None, None, rej.reason_code, None, rej.detail)]), stats)

    stats["rows_read"] = parsed.rows_read
    if contract.format != "xlsx":
        stats["encoding_suspect_lines"], stats["encoding_contradiction"] = encoding_contradictions(data, contract.encoding)
    header = parsed.header
    stats["unmapped_columns"] = sorted(set(header) - contract.expected_columns - {""})
    missing = contract.missing_columns(header)
    stats["missing_columns"] = missing
    entries = [(row, None, code, None, detail) for row, code, detail in parsed.malformed]
    if len(set(header)) != len(header):
        missing = missing or ["(duplicate column names)"]
    if missing:
        # A renamed or missing column means no row can be harmonised faithfully: quarantine them all.
        detail = "the file lacks columns the contract maps: " + ", ".join(missing)
        entries.extend((row, None, "missing_column", None, detail) for row in parsed.row_numbers.to_pylist())
        stats["verdict"] = verdicts.file_verdict(stats, contract)
        return FileReadResult([], q_rows(entries), stats)

    table = pa.table(dict(zip(header, parsed.columns)) | {SOURCE_ROW: parsed.row_numbers})
    table, id_problems = _check_record_ids(table, contract.record_id)
    entries.extend(id_problems)
    table, kind_problems = _check_column_kinds(table, contract)
    entries.extend(kind_problems)
    stats["contradicting_rows"] = len(kind_problems)
    stats["verdict"] = verdicts.file_verdict(stats, contract, len(parsed.malformed))
    if stats["verdict"]["verdict"] == verdicts.REJECTED:  # nothing of a rejected file lands in any output
        detail = "the file was rejected: " + "; ".join(stats["verdict"]["reasons"])
        entries.extend((row, None, "file_rejected", None, detail) for row in table.column(SOURCE_ROW).to_pylist())
        log.warning("feed %s: file %s rejected: %s", contract.feed, source_file, detail)
        return FileReadResult([], q_rows(entries), stats)
    table = table.append_column(SOURCE_FILE, pa.array([source_file] * table.num_rows, pa.string()))
    chunks = [pa.Table.from_batches([b]) for b in table.to_batches(max_chunksize=chunk_rows)] if table.num_rows else []
    return FileReadResult(chunks, q_rows(entries), stats)


def _check_record_ids(table: pa.Table, id_column: str) -> tuple[pa.Table, list[tuple]]:
    """Rows without a record id, and second occurrences of an id, go to quarantine."""
    ids = pc.utf8_trim_whitespace(table.column(id_column))
    table = table.set_column(table.column_names.index(id_column), id_column, ids)
    missing = pc.or_kleene(pc.is_null(ids), pc.fill_null(pc.equal(pc.utf8_length(ids), 0), True))
    rows = table.column(SOURCE_ROW)
    problems = [
        (r, None, "missing_record_id", id_column, "the record id is empty")
        for r in pc.filter(rows, missing).to_pylist()
    ]
    kept = table.filter(pc.invert(missing))
    # first occurrence wins: mark rows whose id was already seen earlier in the file
    indices = pa.array(range(kept.num_rows), pa.int64())
    firsts = (
        pa.table({"id": kept.column(id_column), "i": indices})
        .group_by("id", use_threads=False)
        .aggregate([("i", "min")])
    )
    is_first = pc.is_in(indices, firsts.column("i_min"))
    dup_rows = pc.filter(kept.column(SOURCE_ROW), pc.invert(is_first)).to_pylist()
    dup_ids = pc.filter(kept.column(id_column), pc.invert(is_first)).to_pylist()
    problems += [
        (r, rid, "duplicate_record_id", id_column, "the record id already appeared earlier in the file")
        for r, rid in zip(dup_rows, dup_ids)
    ]
    return kept.filter(is_first), problems


def _check_column_kinds(table: pa.Table, contract: Contract) -> tuple[pa.Table, list[tuple]]:
    """Rows with a value whose shape contradicts its column's declared kind (a document number
    under a case reference, a date under a name: swapped or shifted headers) go to quarantine,
    so personal data never lands in a pseudonymised or public column. No value is kept."""
    contradicts = pa.array([False] * table.num_rows, pa.bool_())
    why: list[tuple[pa.Array, str, str]] = []
    for spec in contract.fields:
        for column in spec.source_columns if spec.parser in FORBIDDEN_SHAPES else ():
            if column not in table.column_names:  # a path into a nested record: its root holds JSON
                continue
            values = pc.utf8_trim_whitespace(table.column(column))
            for shape in FORBIDDEN_SHAPES[spec.parser]:
                hit = pc.fill_null(pc.match_substring_regex(values, SHAPES[shape]), False)
                if pc.any(hit).as_py():
                    contradicts = pc.or_(contradicts, hit)
                    why.append((hit, spec.target, f"column {column} ({spec.parser}) holds a value shaped like a {shape}"))
    if not why:
        return table, []
    rows = table.column(SOURCE_ROW)
    first_reason: dict[int, tuple[str, str]] = {}
    for hit, target, detail in why:
        for r in pc.filter(rows, hit).to_pylist():
            first_reason.setdefault(r, (target, detail))
    problems = [(r, None, "value_contradicts_column", target, detail) for r, (target, detail) in sorted(first_reason.items())]
    return table.filter(pc.invert(contradicts)), problems


class ReadDeliveryFn(beam.DoFn):
    """(feed_id, url, source_file) -> (feed_id, raw table) chunks; quarantine and stats tagged."""

    def __init__(self, contracts: dict[str, Contract], chunk_rows: int = CHUNK_ROWS):
        self._contracts = contracts
        self._chunk_rows = chunk_rows

    def process(self, element) -> Iterator:
        feed_id, url, source_file = element
        contract = self._contracts[feed_id]
        data, detail = None, "the file lies outside the feeds root (a link); not read"
        try:
            if url is not None:
                with fsspec.open(url, "rb") as fh:
                    data = fh.read()
        except OSError as exc:
            detail = f"cannot open the file ({exc.__class__.__name__})"
        if data is None:
            stats = {"feed_id": feed_id, "source_file": source_file, "sha256": None, "bytes": None,
                     "rows_read": 0, "file_rejected": {"reason_code": "unreadable_file", "detail": detail},
                     "unmapped_columns": [], "missing_columns": [], "encoding_suspect_lines": 0,
                     "contradicting_rows": 0}
            stats["verdict"] = verdicts.file_verdict(stats, contract)
            yield beam.pvalue.TaggedOutput(TAG_STATS, stats)
            yield beam.pvalue.TaggedOutput(TAG_QUARANTINE, quarantine.rows_to_table([{
                "feed_id": feed_id, "agency": contract.agency, "source_file": source_file, "source_row": None,
                "source_record_id": None, "reason_code": "unreadable_file", "field": None, "detail": detail}]))
            return
        result = read_delivery(contract, data, source_file, self._chunk_rows)
        yield beam.pvalue.TaggedOutput(TAG_STATS, result.stats)
        if result.quarantined.num_rows:
            yield beam.pvalue.TaggedOutput(TAG_QUARANTINE, result.quarantined)
        for chunk in result.chunks:
            yield feed_id, chunk


def safe_name(relative: str) -> str:
    """A delivered file's name as outputs, logs and the manifest may show it: control, format
    (direction overrides) and unassigned characters escaped, no absolute path, no '..' segment."""
    name = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in relative.replace("\\", "/"))
    parts = [p if p not in ("..", ".") else "_" for p in name.split("/") if p]
    return "/".join(parts) or "_"


def discover_deliveries(feeds_root: str, contracts: list[Contract]) -> list[tuple[str, str | None, str]]:
    """(feed_id, url, safe path relative to the root) for every file matching a contract's pattern.

    A local file whose real path lies outside the root (a symbolic link) keeps its place with no
    url: the reader quarantines it instead of following the link.
    """
    fs, root = fsspec.core.url_to_fs(feeds_root)
    root = root.rstrip("/")
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    local = protocol in ("file", "local")
    real_root = os.path.realpath(root) if local else None
    found = []
    for contract in contracts:
        for path in sorted(fs.glob(f"{root}/{contract.files}")):
            if fs.isdir(path):
                continue
            relative = path[len(root) + 1:] if path.startswith(root + "/") else path
            url = path if local else f"{protocol}://{path}"
            if local and os.path.commonpath([os.path.realpath(path), real_root]) != real_root:
                url = None
            found.append((contract.feed, url, safe_name(relative)))
    return found


class ReadFeeds(beam.PTransform):
    """Deliveries -> raw tables per feed, plus tagged quarantine tables and per-file stats."""

    def __init__(self, deliveries: list[tuple[str, str, str]], contracts: list[Contract], chunk_rows: int = CHUNK_ROWS):
        super().__init__()
        self._deliveries = deliveries
        self._contracts = {c.feed: c for c in contracts}
        self._chunk_rows = chunk_rows

    def expand(self, pbegin):
        return (
            pbegin
            | "Deliveries" >> beam.Create(self._deliveries)
            | "Reshuffle" >> beam.Reshuffle()
            | "ParseFiles" >> beam.ParDo(ReadDeliveryFn(self._contracts, self._chunk_rows)).with_outputs(
                TAG_QUARANTINE, TAG_STATS, main="raw")
        )
