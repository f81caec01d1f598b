"""Contracts for feeds as agencies really send them: nested documents, several documents per person,
required fields, lost zeros on foreigners' documents, places at any level, reference patterns."""

import json

import pyarrow.compute as pc
import pytest

from pipelines.contracts import parse_contract
from pipelines.harmonise.engine import harmonise
from pipelines.read import read_delivery
from stdnum.pe import cui

DNI_A, DNI_B = "41728563", "07654329"  # valid digits (check characters computed below), not placeholders
CE_A = "001234567"


def contract(fields, fmt="jsonl", lookups=None, **extra):
    raw = {"feed": "test_feed", "agency": "TEST", "role": extra.pop("role", "victim"),
           "source": {"files": "x/*", "format": fmt, **extra.pop("source", {})},
           "record_id": "id", "fields": fields, "lookups": lookups or {}}
    return parse_contract(raw, "test.yaml")


def run(c, data: bytes):
    result = read_delivery(c, data, "x/file")
    assert result.stats["missing_columns"] == [], result.stats
    outs = [harmonise(c, t) for t in result.chunks]
    records = [o.records for o in outs]
    import pyarrow as pa
    recs = pa.concat_tables(records) if records else None
    quarantined = pa.concat_tables([result.quarantined, *(o.quarantined for o in outs)])
    warnings = {}
    for o in outs:
        for k, v in o.warnings.items():
            warnings[k] = warnings.get(k, 0) + v
    assert result.stats["rows_read"] == (recs.num_rows if recs else 0) + quarantined.num_rows
    return recs, quarantined, warnings


def jsonl(*rows) -> bytes:
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()


DOC_LOOKUP = {"document_type": {"DNI": "01", "CE": "04", "PAS": "07"}}


def test_a_nested_document_object_is_read_through_a_path():
    c = contract({"document": {"parse": "document", "type_column": "documento.tipo",
                               "number_column": "documento.numero", "type_lookup": "document_type"}},
                 lookups=DOC_LOOKUP)
    recs, q, _ = run(c, jsonl({"id": 1, "documento": {"tipo": "DNI", "numero": DNI_A}},
                              {"id": 2, "documento": {"tipo": "CE", "numero": CE_A}},
                              {"id": 3, "documento": None}, {"id": 4}))
    assert recs.column("document_type").to_pylist() == ["01", "04", None, None]
    assert recs.column("document_valid").to_pylist() == [True, True, None, None]
    assert recs.column("documents").to_pylist() == [[f"01:{DNI_A}"], [f"04:{CE_A}"], [], []]


def test_an_array_of_documents_gives_every_valid_document_and_the_first_valid_as_main():
    c = contract({"document": {"parse": "document", "type_column": "documentos[].tipo",
                               "number_column": "documentos[].numero", "type_lookup": "document_type"}},
                 lookups=DOC_LOOKUP)
    recs, _, _ = run(c, jsonl(
        {"id": 1, "documentos": [{"tipo": "PAS", "numero": "X1"}, {"tipo": "DNI", "numero": DNI_A},
                                 {"tipo": "CE", "numero": CE_A}]},
        {"id": 2, "documentos": []},
        {"id": 3, "documentos": [{"tipo": "DNI", "numero": "11111111"}]}))
    # the passport number is too short to be valid: the DNI is the main document
    assert recs.column("document_number").to_pylist() == [DNI_A, None, "11111111"]
    assert recs.column("document_valid").to_pylist() == [True, None, False]
    assert recs.column("documents").to_pylist() == [sorted([f"01:{DNI_A}", f"04:{CE_A}"]), [], []]


def test_a_csv_column_holding_json_is_read_through_a_path():
    c = contract({"document": {"parse": "document", "type": "01", "number_column": "DOCS[].nro"},
                  "nationality": {"column": "PERSONA.pais", "parse": "country"}},
                 fmt="csv", source={"delimiter": ";"})
    data = ('id;DOCS;PERSONA\n1;"[{""nro"": ""%s""}]";"{""pais"": ""VENEZUELA""}"\n2;;\n' % DNI_B).encode()
    recs, _, _ = run(c, data)
    assert recs.column("document_number").to_pylist() == [DNI_B, None]
    assert recs.column("nationality").to_pylist() == ["VEN", None]


def test_a_json_document_feed():
    c = contract({"document": {"parse": "document", "type": "01", "number_column": "persona.dni"}}, fmt="json")
    recs, q, _ = run(c, json.dumps({"registros": [{"id": "a", "persona": {"dni": DNI_A}}, 7]}).encode())
    assert recs.column("document_number").to_pylist() == [DNI_A]
    assert q.column("reason_code").to_pylist() == ["malformed_row"]


def test_lost_zeros_on_ce_numbers_are_restored_when_the_contract_says_so():
    fields = {"document": {"parse": "document", "type_column": "TIPO", "number_column": "NRO",
                           "type_lookup": "document_type", "restore_leading_zeros": ["01", "04"]}}
    c = contract(fields, fmt="csv", lookups=DOC_LOOKUP)
    recs, _, _ = run(c, f"id,TIPO,NRO\n1,CE,1234567\n2,DNI,{int(DNI_B)}\n3,PAS,4172856\n".encode())
    assert recs.column("document_number").to_pylist() == [CE_A, DNI_B, "4172856"]
    assert recs.column("document_valid").to_pylist() == [True, True, True]


@pytest.mark.parametrize("severity", ["quarantine", "warn"])
def test_required_fields_fail_each_with_its_own_reason(severity):
    fields = {
        "name": {"parse": "name", "style": "given_then_surnames", "column": "NOMBRE", "required": severity},
        "sex": {"column": "SEXO", "lookup": "sex", "required": severity},
        "ubigeo": {"column": "UBIGEO", "parse": "ubigeo", "list": "INEI", "required": severity},
        "document": {"parse": "document", "type": "01", "number_column": "DNI", "required": severity},
    }
    c = contract(fields, fmt="csv", lookups={"sex": {"F": "FEMALE", "M": "MALE"}})
    good = f"ANA QUISPE,F,150101,{DNI_A}"
    rows = [good, f",F,150101,{DNI_A}", f"ANA QUISPE,X,150101,{DNI_A}", f"ANA QUISPE,F,159999,{DNI_A}",
            "ANA QUISPE,F,150101,12345678", "ANA QUISPE,F,150101,00000000", "ANA QUISPE,F,150101,41728564X",
            "ANA QUISPE,F,150101,"]
    data = ("id,NOMBRE,SEXO,UBIGEO,DNI\n" + "\n".join(f"{i},{r}" for i, r in enumerate(rows, 1)) + "\n").encode()
    recs, q, warnings = run(c, data)
    expected = [("name", "missing_value"), ("sex", "unmapped_code"), ("ubigeo", "invalid_ubigeo"),
                ("document", "placeholder_document"), ("document", "placeholder_document"),
                ("document", "invalid_document"), ("document", "missing_value")]
    if severity == "quarantine":
        assert recs.num_rows == 1
        assert list(zip(q.column("field").to_pylist(), q.column("reason_code").to_pylist())) == expected
        assert all("(required)" in d for d in q.column("detail").to_pylist())
    else:
        assert recs.num_rows == len(rows) and q.num_rows == 0
        counted = {}
        for key in expected:
            counted[key] = counted.get(key, 0) + 1
        assert warnings == counted


def test_placeholder_documents_never_identify_anyone_even_when_not_required():
    c = contract({"document": {"parse": "document", "type": "01", "number_column": "DNI"}}, fmt="csv")
    recs, q, _ = run(c, b"id,DNI\n1,12345678\n2,99999999\n")
    assert q.num_rows == 0
    assert recs.column("document_valid").to_pylist() == [False, False]
    assert recs.column("documents").to_pylist() == [[], []]


def test_province_level_places_and_place_of_origin():
    fields = {"ubigeo": {"column": "LUGAR", "parse": "ubigeo", "list": ["RENIEC", "INEI"]},
              "place_of_origin": {"column": "PROCEDENCIA", "parse": "ubigeo", "list": "INEI",
                                  "restore_leading_zeros": True}}
    c = contract(fields, fmt="csv")
    recs, _, _ = run(c, b"id,LUGAR,PROCEDENCIA\n1,140100,80101\n2,2401,1601\n3,140000,25\n")
    assert recs.column("ubigeo").to_pylist() == ["150100", "070100", "150000"]
    assert recs.column("place_level").to_pylist() == ["province", "province", "department"]
    assert recs.column("origin_ubigeo").to_pylist() == ["080101", "160100", "250000"]
    assert recs.column("origin_department").to_pylist() == ["08", "16", "25"]
    assert recs.column("origin_place_level").to_pylist() == ["district", "province", "department"]


def test_reference_patterns_normalise_an_agencys_forms_to_one_key():
    fields = {"police_report_ref": {"column": "REF", "parse": "reference",
                                    "patterns": ["AT-{number}-{year}", "CF {number}-{year}", "{year}-{number}"]}}
    c = contract(fields, fmt="csv")
    recs, _, _ = run(c, b"id,REF\n1,AT-0042-2018\n2,CF 42-2018\n3,2018-000042\n4,Atestado 045-2019-DIRNTPTIM\n")
    assert recs.column("police_report_ref").to_pylist() == ["42-2018", "42-2018", "42-2018", "45-2019-DIRNTPTIM"]


def test_offender_aliases_from_a_list_or_a_separated_text():
    c = contract({"aliases": {"parse": "aliases", "column": "alias[]"}}, role="offender")
    recs, _, _ = run(c, jsonl({"id": 1, "alias": ["el Chato", "Chato"]}, {"id": 2, "alias": "Flaca; La Flaca"},
                              {"id": 3}))
    assert recs.column("aliases").to_pylist() == [["CHATO", "EL CHATO"], ["FLACA", "LA FLACA"], []]


def test_a_path_whose_root_is_missing_quarantines_the_file_as_a_missing_column():
    c = contract({"document": {"parse": "document", "type": "01", "number_column": "documento.numero"}})
    result = read_delivery(c, jsonl({"id": 1, "doc": {"numero": DNI_A}}), "x/file")
    assert result.stats["missing_columns"] == ["documento.numero"]
    assert set(result.quarantined.column("reason_code").to_pylist()) == {"missing_column"}


def test_an_xlsx_cell_holding_json_is_read_through_a_path():
    import io

    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["id", "DOCUMENTOS"])
    ws.append(["1", json.dumps([{"tipo": "CE", "nro": 1234567}, {"tipo": "DNI", "nro": DNI_A}])])
    buf = io.BytesIO()
    wb.save(buf)
    c = contract({"document": {"parse": "document", "type_column": "DOCUMENTOS[].tipo", "number_column": "DOCUMENTOS[].nro",
                               "type_lookup": "document_type", "restore_leading_zeros": True}},
                 fmt="xlsx", lookups=DOC_LOOKUP)
    recs, _, _ = run(c, buf.getvalue())
    assert recs.column("documents").to_pylist() == [sorted([f"01:{DNI_A}", "04:001234567"])]
    assert recs.column("document_type").to_pylist() == ["04"]  # the first valid document is the main one
