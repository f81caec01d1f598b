"""Property-based tests: no input crashes the reader or the normalisers, and nothing is lost
(rows read = rows harmonised + rows quarantined) whatever an agency delivers."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.contracts import parse_contract
from pipelines.harmonise import ages, countries, dates, documents, names, places, references
from pipelines.harmonise.engine import harmonise
from pipelines.core.vector import clean, fold
from pipelines.privacy import pseudonymise
from pipelines.read import read_delivery, safe_name

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONTRACT = yaml.safe_load("""
feed: prop_victims
agency: PROP
title: property tests
role: victim
version: "0.1.0"
source: {files: "p/*.csv", format: csv, encoding: utf-8, delimiter: ";"}
record_id: ID
fields:
  case_ref: {column: CASO, parse: reference}
  event_date: {column: FECHA, parse: date, formats: ["%d/%m/%Y", "%Y-%m-%d"]}
  name: {parse: name, style: surnames_comma_given, column: NOMBRE}
  birth_date: {column: NAC, parse: date, formats: ["%d/%m/%Y"]}
  age: {column: EDAD, parse: age}
  document: {parse: document, number_column: DOC, type_column: TIPO, type_lookup: doc}
  nationality: {column: PAIS, parse: country}
  ubigeo: {column: UBIGEO, parse: ubigeo, list: INEI, restore_leading_zeros: true}
  sex: {column: SEXO, lookup: sex}
  exploitation_type: {column: FIN, lookup: fin}
lookups:
  sex: {F: FEMALE, M: MALE}
  doc: {DNI: "01", CE: "04", PAS: "07"}
  fin: {SEXUAL: SEXUAL_EXPLOITATION, LABORAL: FORCED_LABOUR}
""")
# parsed once: a contract is immutable, and checking one against the schema costs more than an example
CSV_CONTRACTS = {encoding: parse_contract({**CONTRACT, "source": {**CONTRACT["source"], "encoding": encoding}})
                 for encoding in ("utf-8", "latin-1")}
JSONL_CONTRACT = parse_contract({**CONTRACT, "source": {"files": "p/*.jsonl", "format": "jsonl", "encoding": "utf-8"}})
COLUMNS = ["ID", "CASO", "FECHA", "NOMBRE", "NAC", "EDAD", "TIPO", "DOC", "PAIS", "UBIGEO", "SEXO", "FIN"]

# values that look like what agencies send, mixed with anything at all
plausible = st.sampled_from(["", "NULL", "-", "17", "17 años", "8 meses", "31/02/2018", "01/02/2018", "2018-13-01",
                             "QUISPE MAMANI, ROSA", "DEL CASTILLO, ANA MARÍA", "DNI", "CE", "PAS", "70123456",
                             "0123456", "PERUANA", "Venezolana", "150101", "40506", "F", "M", "SEXUAL", "=1+2",
                             "@SUM(A1)", "Art. 153-A", "N° 0920-2018-DEPINCRI"])
cell = st.one_of(plausible, st.text(max_size=30))


def accounted(contract, data: bytes, name: str) -> None:
    result = read_delivery(contract, data, name)
    harmonised = quarantined = 0
    quarantined += sum(1 for r in result.quarantined.column("source_row").to_pylist() if r is not None)
    for chunk in result.chunks:
        h = harmonise(contract, chunk)
        harmonised += h.records.num_rows
        quarantined += h.quarantined.num_rows
        assert h.records.num_rows + h.quarantined.num_rows == chunk.num_rows
    assert result.stats["rows_read"] == harmonised + quarantined


@SETTINGS
@given(rows=st.lists(st.lists(cell, min_size=len(COLUMNS), max_size=len(COLUMNS)), max_size=12),
       ending=st.sampled_from(["\n", "\r\n", "\r"]), encoding=st.sampled_from(["utf-8", "latin-1"]))
def test_any_csv_rows_are_read_or_quarantined(rows, ending, encoding):
    lines = [";".join(COLUMNS)] + [";".join(r) for r in rows]
    data = ending.join(lines).encode("utf-8", errors="surrogatepass") if encoding == "utf-8" \
        else ending.join(lines).encode("utf-8", errors="replace")
    accounted(CSV_CONTRACTS[encoding], data, "p/a.csv")


@SETTINGS
@given(data=st.binary(max_size=2000))
def test_any_bytes_after_a_header_are_read_or_quarantined(data):
    accounted(CSV_CONTRACTS["utf-8"], (";".join(COLUMNS) + "\n").encode() + data, "p/a.csv")
    accounted(CSV_CONTRACTS["utf-8"], data, "p/b.csv")


json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | cell,
                          lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children,
                                                                                             max_size=3),
                          max_leaves=6)


@SETTINGS
@given(records=st.lists(st.fixed_dictionaries({c: json_value for c in COLUMNS}), max_size=8),
       junk=st.lists(st.text(max_size=20), max_size=3))
def test_any_jsonl_records_are_read_or_quarantined(records, junk):
    lines = [json.dumps(r, ensure_ascii=False) for r in records] + junk
    accounted(JSONL_CONTRACT, "\n".join(lines).encode("utf-8", errors="surrogatepass"), "p/a.jsonl")


texts = st.lists(st.one_of(st.none(), cell), max_size=20)


@SETTINGS
@given(values=texts)
def test_normalisers_never_crash_and_keep_length(values):
    arr = pa.array(values, pa.string())
    n = len(values)
    for out in (*ages.parse_ages(arr), *dates.parse_dates(arr, ["%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y"]),
                countries.to_iso3(arr), references.normalise_reference(arr), names.normalise_name_part(arr),
                *names.split_surnames(arr), clean(arr), fold(arr), pseudonymise(arr, b"k" * 32, "prop")):
        assert len(out) == n
    assert names.split_full_name(arr, "surnames_comma_given").num_rows == n
    assert names.split_full_name(arr, "given_then_surnames").num_rows == n
    assert documents.normalise_documents(pa.array(["01"] * n, pa.string()), arr, True).num_rows == n
    assert places.to_inei_ubigeo(arr, "RENIEC", True).num_rows == n
    parsed, problems = ages.parse_ages(arr)
    assert all(p is None or 0 <= p <= 110 for p in parsed.to_pylist())


@SETTINGS
@given(d=st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31)))
def test_real_dates_parse_back_and_impossible_ones_are_problems(d):
    parsed, problems = dates.parse_dates(pa.array([d.strftime("%d/%m/%Y"), f"31/02/{d.year}"]), ["%d/%m/%Y"])
    assert parsed.to_pylist() == [d, None] and problems.to_pylist()[0] is None and problems[1].as_py()


@SETTINGS
@given(name=st.text(max_size=40))
def test_safe_names_are_printable_and_stay_inside(name):
    safe = safe_name(name)
    assert safe and all(ch.isprintable() for ch in safe)
    assert ".." not in safe.split("/") and not safe.startswith("/")
