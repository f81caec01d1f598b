"""No PII outside the restricted zone.

Takes the session's ``concilia run --verbose`` of the sample feeds (tests/conftest.py) and scans
every file the run produced outside ``restricted/`` (manifest, quarantine, harmonised, persons,
public, reports, checks...) and the captured logs for every name, document number and birth date of
the ground truth and of the restricted output itself (the spellings the feeds actually delivered).
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import model
from pipelines.core.zones import ZONE_RESTRICTED, zone_of
from tests.conftest import SAMPLE_FEEDS

TRUTH = SAMPLE_FEEDS / "_truth"
MIN_NAME = 4  # shorter names ("ANA", "LUZ") are common tokens; longer ones must never appear
# fonts and images the Data Docs site ships (not generated from data; binary, so not scannable)
STATIC_ASSETS = {".otf", ".ttf", ".woff", ".woff2", ".eot", ".png", ".jpg", ".jpeg", ".gif", ".ico"}
EVENT_DATE_COLUMNS = {"event_date", "first_event_date"}  # dates of facts, not of birth
DATE_PATTERNS = [
    (re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)"), (1, 2, 3)),
    (re.compile(r"(?<!\d)(\d{2})/(\d{2})/(\d{4})(?!\d)"), (3, 2, 1)),
    (re.compile(r"(?<!\d)(\d{2})-(\d{2})-(\d{4})(?!\d)"), (3, 2, 1)),
    (re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})(?!\d)"), (1, 2, 3)),
]


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if not unicodedata.combining(ch)).upper()


def words(text: str) -> list[str]:
    return re.findall(r"[A-Z0-9]+", fold(text))


class Secrets:
    def __init__(self):
        self.names: set[tuple[str, ...]] = set()
        self.documents: set[str] = set()
        self.birth_dates: set[str] = set()

    def add_name(self, value):
        if value and len(value.strip()) >= MIN_NAME:
            self.names.add(tuple(words(value)))

    def add_surname(self, value):
        if value:
            self.names.update((w,) for w in words(value) if len(w) >= MIN_NAME)

    def add_document(self, value):
        if value:
            token = "".join(words(value))
            self.documents.add(token)
            if token.isdigit() and len(token.lstrip("0")) >= 6:
                self.documents.add(token.lstrip("0"))  # as a spreadsheet delivers it

    def add_birth_date(self, value):
        if value:
            self.birth_dates.add(str(value)[:10])


@pytest.fixture(scope="module")
def secrets_and_run(sample_run):
    run_dir = Path(sample_run.run_dir)  # the session's run: `concilia run --verbose --data-docs` (tests/conftest.py)

    s = Secrets()
    with open(TRUTH / "population.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            s.add_name(row["given_names"])
            s.add_surname(row["paternal_surname"])
            s.add_surname(row["maternal_surname"])
            s.add_name(f"{row['paternal_surname']} {row['maternal_surname']}")
            s.add_document(row["document_number"])
            s.add_birth_date(row["birth_date"])
            for alias in filter(None, row["aliases"].split("|")):  # nicknames, false names given at arrest
                s.add_name(alias)
    # restricted/<role>s/ (the registry under restricted/registry/ holds the same people, folded for linkage)
    restricted = [pq.read_table(p) for p in (run_dir / "restricted").glob("*/*.parquet")]
    for table in restricted:
        for row in table.select(["given_names", "paternal_surname", "maternal_surname", "document_number",
                                 "birth_date"]).to_pylist():
            s.add_name(row["given_names"])
            s.add_surname(row["paternal_surname"])
            s.add_surname(row["maternal_surname"])
            s.add_document(row["document_number"])
            s.add_birth_date(row["birth_date"])
        for aliases in (table.column("aliases").to_pylist() if "aliases" in table.column_names else []):
            for alias in aliases or []:
                s.add_name(alias)
    assert len(s.names) > 1000 and len(s.documents) > 1000 and len(s.birth_dates) > 1000
    return s, run_dir, sample_run.logs


def leaks(text: str, s: Secrets) -> list[str]:
    found = []
    ws = words(text)
    longest = max(len(n) for n in s.names)
    for i in range(len(ws)):
        for n in range(1, longest + 1):
            gram = tuple(ws[i:i + n])
            if len(gram) == n and gram in s.names:
                found.append("name")
        if ws[i] in s.documents:
            found.append("document")
    for pattern, (y, m, d) in DATE_PATTERNS:
        for match in pattern.finditer(text):
            if f"{match.group(y)}-{match.group(m)}-{match.group(d)}" in s.birth_dates:
                found.append("birth date")
    return found


class _HtmlValues(HTMLParser):
    """Text and data-bearing attributes of a page (scripts included); not URLs, classes or tag names."""

    SKIP = {"src", "href", "rel", "class", "id", "style", "type", "integrity", "crossorigin"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.parts += [v for k, v in attrs if v and k not in self.SKIP]

    def handle_data(self, data):
        self.parts.append(data)


def file_texts(path: Path) -> list[tuple[str, str]]:
    """(where, text) pieces of one output file; Parquet cells are rendered as text."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        restricted = set(model.table("victim").restricted_fields)
        assert not restricted & set(table.column_names), f"{path}: restricted columns"
        pieces = []
        for name in table.column_names:
            column = table.column(name)
            if pa.types.is_date(column.type) and name in EVENT_DATE_COLUMNS:
                continue
            pieces.append((f"{path.name}:{name}", "\n".join(json.dumps(v, default=str) for v in column.to_pylist())))
        return pieces
    if path.suffix == ".xlsx":
        wb = openpyxl.load_workbook(path, read_only=True)
        return [(path.name, "\n".join(str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True)
                                      for v in row if v is not None))]
    if path.suffix.lower() in STATIC_ASSETS:
        return []
    text = path.read_bytes().decode("utf-8")  # anything else must be text we can scan
    if path.suffix in (".html", ".htm"):
        parser = _HtmlValues()
        parser.feed(text)
        text = "\n".join(parser.parts)
    return [(path.name, text)]


def _zone(relative: Path) -> str | None:
    """The declared zone of a file's folder (pipelines.core.zones); None for a folder no zone declares."""
    try:
        return zone_of(str(relative.parent))
    except KeyError:
        return None  # scanned like any non-restricted output


def test_the_scanner_finds_planted_pii(secrets_and_run):
    s, _, _ = secrets_and_run
    with open(TRUTH / "population.csv", newline="", encoding="utf-8") as fh:
        person = next(r for r in csv.DictReader(fh) if r["document_number"] and r["birth_date"])
    assert "document" in leaks(f"id {person['document_number']}.", s)
    y, m, d = person["birth_date"].split("-")
    assert "birth date" in leaks(f"born {d}/{m}/{y}", s)
    assert "name" in leaks(person["paternal_surname"].lower() + " " + person["maternal_surname"], s)
    assert leaks("Victims detected, by sex and age: Women 1226; sexual exploitation; PNP; row 12", s) == []


def test_no_pii_outside_the_restricted_zone(secrets_and_run):
    s, run_dir, logs = secrets_and_run
    scanned, found = 0, []
    for path in sorted(run_dir.rglob("*")):
        if not path.is_file() or _zone(path.relative_to(run_dir)) == ZONE_RESTRICTED:
            continue
        for where, text in file_texts(path):
            scanned += 1
            found += [(str(path.relative_to(run_dir)), where, kind) for kind in leaks(text, s)]
    found += [("logs", "stdout+stderr", kind) for kind in leaks(logs, s)]
    folders = {p.relative_to(run_dir).parts[0] for p in run_dir.rglob("*") if p.is_file()}
    assert {"manifest.json", "harmonised", "persons", "quarantine", "public"} <= folders
    assert scanned > 20 and "INFO" in logs
    assert found == [], sorted(set(found))[:20]
