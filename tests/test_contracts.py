import pytest
import yaml

from pipelines import model
from pipelines.contracts import ContractError, load_contracts, parse_contract
from pipelines.resources import schemas_dir


def test_every_shipped_contract_loads_and_maps_model_fields():
    contracts = load_contracts()
    assert {c.feed for c in contracts} >= {"pnp_victims", "pnp_detainees", "mp_victims", "mp_investigated",
                                          "mimp_child_victims", "sunafil_findings", "pj_convictions"}
    parsers_make = {"name": {"given_names"}, "document": {"document_type"}, "ubigeo": {"ubigeo"},
                    "statute": {"offence"}, "age": set()}
    for c in contracts:
        fields = {f.name for f in model.table(c.role).fields}
        for spec in c.fields:
            targets = parsers_make.get(spec.parser, {spec.target})
            assert targets <= fields, (c.feed, spec.target)


def raw():
    with open(schemas_dir() / "feeds" / "pnp" / "victims.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize("mutate,message", [
    (lambda r: r.pop("record_id"), "record_id"),
    (lambda r: r["source"].update(format="parquet"), "source.format"),
    (lambda r: r.update(role="witness"), "role"),
    (lambda r: r["fields"]["sex"].update(lookup="nope"), "unknown lookup"),
    (lambda r: r["fields"]["event_date"].update(parse="magic"), "fields.event_date.parse: 'magic' is not one of"),
    (lambda r: r["fields"]["name"].update(style="reversed"), "fields.name.style"),
    (lambda r: r["fields"]["event_date"].update(fromats=["%d"]), "fields.event_date.fromats: unknown key"),
    (lambda r: r["fields"]["name"].pop("column"), "fields.name: 'column' is required"),
    (lambda r: r["fields"]["document"].pop("number_column"), "'number_column' is required"),
    (lambda r: r["fields"]["sex"].update(required="always"), "fields.sex.required: 'always' is not one of"),
    (lambda r: r["lookups"]["sex"].update({False: "FEMALE"}), "quote it"),
    (lambda r: r["fields"]["case_ref"].update(parse="reference", patterns=["{numero}-{year}"]),
     "fields.case_ref.patterns: not a valid pattern"),
    (lambda r: r["fields"]["case_ref"].update(parse="reference", patterns=["(?P<number>"]),
     "fields.case_ref.patterns: not a valid pattern"),
    (lambda r: r["fields"].update(lugar={"column": "X", "parse": "ubigeo"}), "fields.lugar: a place must be one of"),
])
def test_malformed_contracts_name_the_problem(mutate, message):
    r = raw()
    mutate(r)
    with pytest.raises(ContractError, match=message):
        parse_contract(r, "pnp/victims.yaml")


def test_schema_file_is_valid_json_schema():
    import jsonschema

    from pipelines.contracts import contract_schema
    jsonschema.Draft202012Validator.check_schema(contract_schema())


@pytest.mark.parametrize("old,new,line,key", [
    ("  sex: {column: SEXO, lookup: sex}", "  sex: {column: SEXO, lookup: sexo}", 18, "fields.sex.lookup"),
    ("  age: {column: EDAD, parse: age}", "  age: {column: EDAD, parse: age, colum: X}", 20, "fields.age.colum"),
    ("  format: csv", "  format: parquet", 9, "source.format"),
    ("role: victim", "role: witness", 5, "role"),
    ("record_id: NRO_REGISTRO", "record_id: [NRO, REGISTRO]", 12, "record_id"),
    ("  ubigeo: {column: UBIGEO_HECHO, parse: ubigeo, list: INEI}", "  ubigeo: {column: \"UBIGEO..X\", parse: ubigeo}",
     23, "fields.ubigeo.column"),
])
def test_a_bad_contract_file_gives_one_line_naming_file_line_and_key(tmp_path, old, new, line, key):
    from pipelines.contracts import load_contract
    text = (schemas_dir() / "feeds" / "pnp" / "victims.yaml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "victims.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(ContractError) as err:
        load_contract(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}:{line}: {key}"), message


def test_broken_yaml_names_the_line(tmp_path):
    from pipelines.contracts import load_contract
    path = tmp_path / "c.yaml"
    path.write_text("feed: x\nfields: {a: [\n", encoding="utf-8")
    with pytest.raises(ContractError, match=rf"^{path}:\d+: not valid YAML"):
        load_contract(path)
