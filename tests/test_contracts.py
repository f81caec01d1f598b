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
    (lambda r: r["fields"]["event_date"].update(parse="magic"), "unknown parser"),
    (lambda r: r["fields"]["name"].update(style="reversed"), "style"),
    (lambda r: r["fields"]["event_date"].update(fromats=["%d"]), "unknown keys"),
])
def test_malformed_contracts_name_the_problem(mutate, message):
    r = raw()
    mutate(r)
    with pytest.raises(ContractError, match=message):
        parse_contract(r, "pnp/victims.yaml")
