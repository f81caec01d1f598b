"""concilia contract draft / check: a new feed from its file to a checked contract, no personal values shown."""

import json

import pytest
import yaml

from pipelines.cli import main
from pipelines.contracts import parse_contract
from tests.conftest import ROOT

EXAMPLE = ROOT / "docs" / "examples" / "cem"
FEED = EXAMPLE / "atenciones_2019.jsonl"
CONTRACT = EXAMPLE / "contracts" / "mimp" / "cem_victims.yaml"


def personal_values() -> set[str]:
    """Names, document numbers and birth dates of the example feed: none may be printed."""
    out = set()
    for line in FEED.read_text(encoding="utf-8").splitlines():
        v = json.loads(line)["victima"]
        out |= {v["nombres"], v["apellidos"], v["fecha_nacimiento"], *v["apellidos"].split()}
        out |= {str(d["numero"]) for d in v["documentos"]}
    return out


def test_draft_of_a_nested_jsonl_feed_is_a_valid_contract_and_prints_no_personal_value(tmp_path, capsys):
    out = tmp_path / "draft.yaml"
    assert main(["contract", "draft", str(FEED), "--agency", "MIMP", "--role", "victim", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    text = out.read_text(encoding="utf-8")
    for value in personal_values():
        assert value not in printed.out + printed.err + text, value
    draft = parse_contract(yaml.safe_load(text), str(out))  # schema-valid as drafted
    fields = {f.target: f.options for f in draft.fields}
    assert fields["document"]["number_column"] == "victima.documentos[].numero"
    assert fields["document"]["restore_leading_zeros"] is True  # 7-digit CE numbers
    assert fields["name"] == {"style": "given_and_surnames", "given_names": "victima.nombres",
                              "surnames": "victima.apellidos"}
    assert fields["event_date"]["formats"] == ["%d/%m/%Y"]
    assert fields["ubigeo"]["list"] == "INEI" and "place_of_origin" in fields
    assert draft.record_id == "id_atencion"
    # every code value that needs a decision is listed, mapped to null until the steward fills it
    assert draft.lookups["modalidad"] == dict.fromkeys(
        ["TRABAJO DOMESTICO", "EXPLOTACION SEXUAL", "OTRA", "EXPLOTACION LABORAL"])
    assert draft.lookups["sex"] == {"MUJER": "FEMALE", "HOMBRE": "MALE"}
    assert "victima.documentos[].numero: document number" in printed.err


def test_draft_sniffs_a_latin1_semicolon_csv(tmp_path, capsys):
    feed = tmp_path / "denuncias_2019.csv"
    rows = ["ID;FECHA_DENUNCIA;APELLIDOS_NOMBRES;SEXO;EDAD;DNI;UBIGEO"]
    rows += [f"{i};0{i % 9 + 1}/03/2019;PEÑA QUISPE, ROSA{i};F;{20 + i};4172{i:04d};150101" for i in range(30)]
    feed.write_bytes("\n".join(rows).encode("latin-1"))
    assert main(["contract", "draft", str(feed), "--agency", "MTPE", "--role", "victim"]) == 0
    printed = capsys.readouterr()
    draft = yaml.safe_load(printed.out)
    assert draft["source"] == {"files": f"{tmp_path.name}/denuncias_*.csv", "format": "csv", "encoding": "latin-1",
                               "delimiter": ";"}
    assert draft["fields"]["name"] == {"parse": "name", "style": "surnames_comma_given", "column": "APELLIDOS_NOMBRES"}
    assert draft["fields"]["age"] == {"column": "EDAD", "parse": "age"}
    assert "PEÑA" not in printed.out + printed.err and "41720001" not in printed.out + printed.err


def test_check_reports_what_a_delivery_would_give(capsys):
    assert main(["contract", "check", str(CONTRACT), str(FEED)]) == 0
    out = capsys.readouterr().out
    assert "40 rows read, 40 would be harmonised, 0 quarantined" in out
    assert "placeholder_document (document)" in out


def test_check_reports_unmapped_columns_values_and_quarantine(tmp_path, capsys):
    text = CONTRACT.read_text(encoding="utf-8")
    contract = tmp_path / "c.yaml"
    contract.write_text(text.replace("    OTRA: OTHER\n", "").replace("required: warn", "required: quarantine")
                        .replace("  referred_to_police: {column: derivado_pnp, lookup: yes_no}\n", ""),
                        encoding="utf-8")
    assert main(["contract", "check", str(contract), str(FEED)]) == 1
    out = capsys.readouterr().out
    assert "columns neither mapped nor ignored: derivado_pnp" in out
    assert "exploitation_type: values no lookup or code list knows: OTRA" in out
    assert "quarantined 4: placeholder_document (document)" in out


def test_check_of_a_bad_contract_is_one_line_naming_file_line_and_key(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(CONTRACT.read_text(encoding="utf-8").replace("lookup: sex,", "lookup: sexo,"), encoding="utf-8")
    assert main(["contract", "check", str(bad)]) == 3
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"concilia contract: {bad}:21: fields.sex.lookup")


@pytest.mark.parametrize("feed", ["pnp/victimas_2018.csv", "mp/agraviados_2018.jsonl", "sunafil/hallazgos_2018.csv"])
def test_draft_of_the_sample_feeds_validates(feed, capsys):
    assert main(["contract", "draft", str(ROOT / "sample_feeds" / feed), "--agency", "X", "--role", "victim"]) == 0
    parse_contract(yaml.safe_load(capsys.readouterr().out), feed)


def test_draft_of_a_spreadsheet_that_lost_zeros(tmp_path, capsys):
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["NRO", "FECHA", "NOMBRES", "APELLIDOS", "SEXO", "EDAD", "DNI", "UBIGEO"])
    for i in range(30):  # Excel stored the DNI and the UBIGEO as numbers: 07xxxxxx -> 7xxxxxx, 070101 -> 70101
        ws.append([i + 1, f"{i % 28 + 1:02d}/05/2019", "ANA", "QUISPE MAMANI", "FM"[i % 2], 20 + i % 7,
                   (7_000_000 if i % 3 else 41_000_000) + i * 17, 70101 if i % 2 else 150101])
    feed = tmp_path / "denuncias_2019.xlsx"
    wb.save(feed)
    assert main(["contract", "draft", str(feed), "--agency", "X", "--role", "victim"]) == 0
    draft = yaml.safe_load(capsys.readouterr().out)
    assert draft["source"]["format"] == "xlsx" and draft["record_id"] == "NRO"
    assert draft["fields"]["document"] == {"parse": "document", "number_column": "DNI", "type": "01",
                                           "restore_leading_zeros": True}
    assert draft["fields"]["ubigeo"]["restore_leading_zeros"] is True
    assert draft["fields"]["age"] == {"column": "EDAD", "parse": "age"}


@pytest.mark.parametrize("feed,column", [("pnp/detenidos_2018.csv", "ALIAS"), ("mp/investigados_2018.jsonl", "alias[]")])
def test_draft_of_an_offender_feed_maps_its_aliases_and_prints_none(feed, column, capsys):
    assert main(["contract", "draft", str(ROOT / "sample_feeds" / feed), "--agency", "X", "--role", "offender"]) == 0
    printed = capsys.readouterr()
    draft = yaml.safe_load(printed.out)
    parse_contract(draft, feed)
    assert draft["fields"]["aliases"] == {"parse": "aliases", "column": column}
    assert "CHATO" not in printed.out + printed.err and "CHARAPA" not in printed.out + printed.err
