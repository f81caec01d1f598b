"""The linkage settings as typed objects: the committed files load and read back as written, a wrong
key or value is an error that names the key (never the value), and the objects survive pickling."""

import json
import pickle

import pytest
import yaml
from apache_beam.internal import pickler

from pipelines.core.settings_file import SettingsError
from pipelines.link import linker
from pipelines.link.fellegi_sunter import LinkageModel, LinkageModelError
from pipelines.link.settings import BlockingRule, Comparison, LinkageSettings
from pipelines.resources import schemas_dir

SHIPPED = schemas_dir() / "linkage" / "settings.yaml"
FEBRL = "benchmarks/linkage/febrl_settings.yaml"
SECRET = "QUISPE 41728563"  # a value that must never appear in an error


def raw(path=SHIPPED) -> dict:
    with open(path, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize("path", [SHIPPED, FEBRL])
def test_the_committed_settings_load_typed_and_read_back_as_written(path):
    settings = linker.load_settings(path)
    assert isinstance(settings.comparisons[0], Comparison) and isinstance(settings.blocking_rules[0], BlockingRule)
    # the model artefact carries the settings: the same keys, order and values as the file
    assert json.dumps(settings.to_dict()) == json.dumps(raw(path))


def test_the_shipped_settings_say_what_the_linker_reads():
    settings = linker.load_settings()
    by_name = {c.name: c for c in settings.comparisons}
    assert by_name["case_reference"].columns == ("police_report_ref", "prosecutor_case_ref")
    assert by_name["event_date"].days == (30, 365) and by_name["place"].implied_by == "case_reference"
    assert by_name["document"].for_life_types == ("01", "06")
    rules = {r.name: r for r in settings.blocking_rules}
    assert rules["document"].keys == ("document_core",) and not rules["document"].multi
    assert rules["name_token_birth_year"].multi and rules["name_token_birth_year"].train is False
    # a rule's own bound, else the settings'
    assert settings.bound(rules["name_token_pairs"], "max_block_size") == 10
    assert settings.bound(rules["document"], "max_block_size") == settings.max_block_size == 30
    assert settings.clustering.refuse_levels == {"given_names": (0, 1)}
    assert settings.thresholds.floor == min(settings.thresholds.links_floor, settings.thresholds.review_lower)


def _error(tmp_path, change) -> str:
    data = raw()
    change(data)
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(SettingsError) as info:
        linker.load_settings(str(path))
    assert SECRET not in str(info.value)
    return str(info.value)


def _set(data, *path, value=SECRET):
    *parents, last = path
    for key in parents:
        data = data[key]
    data[last] = value


@pytest.mark.parametrize("change,message", [
    (lambda d: _set(d, "tresholds"), "unknown key tresholds"),
    (lambda d: _set(d, "comparisons", 6, "colum"), "unknown key comparisons[6].colum"),
    (lambda d: _set(d, "blocking_rules", 0, "max_block"), "unknown key blocking_rules[0].max_block"),
    (lambda d: _set(d, "clustering", "refuse_level"), "unknown key clustering.refuse_level"),
    (lambda d: d.pop("thresholds"), "missing key thresholds"),
    (lambda d: d["thresholds"].pop("review_lower"), "missing key thresholds.review_lower"),
    (lambda d: d["comparisons"][4].pop("column"), "missing key comparisons[4].column"),
    (lambda d: _set(d, "thresholds", "match_probability"), "thresholds.match_probability must be a number"),
    (lambda d: _set(d, "blocking_rules", 1, "choose"), "blocking_rules[1].choose must be a whole number"),
    (lambda d: _set(d, "blocking_rules", 0, "keys"), "blocking_rules[0].keys must be a list"),
    (lambda d: _set(d, "blocking_rules", 5, "train"), "blocking_rules[5].train must be true or false"),
    (lambda d: _set(d, "comparisons", 2, "for_life_types", value=[1, SECRET]), "for_life_types[0] must be text"),
    (lambda d: _set(d, "clustering", "refuse_levels", "given_names", value=[0, SECRET]),
     "clustering.refuse_levels.given_names[1] must be a whole number"),
    (lambda d: _set(d, "comparisons", 4, "days", value=[30]), "comparisons[4].days is not read by its type"),
    (lambda d: _set(d, "comparisons", 4, "type", value="exactly"), "comparisons[4].type is none of the comparison"),
    (lambda d: _set(d, "comparisons", 6, "implied_by", value="case"), "comparisons[6].implied_by names no comparison"),
    (lambda d: _set(d, "clustering", "copied_document_when", value={"given": [5]}),
     "a key of clustering.copied_document_when names no comparison"),
    (lambda d: _set(d, "comparisons", 5, "name", value="sex"), "comparisons[5].name is the name of an earlier one"),
])
def test_a_wrong_key_or_value_is_an_error_naming_the_key(tmp_path, change, message):
    assert message in _error(tmp_path, change)


def test_the_settings_pickle_as_beam_ships_them():
    settings = linker.load_settings()
    for dumps, loads in ((pickle.dumps, pickle.loads), (pickler.dumps, pickler.loads)):
        again = loads(dumps(settings))
        assert again == settings and again.to_dict() == settings.to_dict()
        assert again.bound(again.blocking_rules[0], "giant_block_window") == settings.giant_block_window


def test_settings_changed_in_code_are_written_with_their_change():
    import dataclasses

    settings = linker.load_settings()
    rule = dataclasses.replace(settings.blocking_rules[0], train=False)
    written = dataclasses.replace(settings, blocking_rules=(rule,)).to_dict()
    assert written["blocking_rules"] == [{"name": "document", "keys": ["document_core"], "train": False}]
    assert LinkageSettings.from_dict(written).blocking_rules == (rule,)


def test_a_model_whose_settings_this_version_cannot_read_is_refused():
    data = json.loads(json.dumps(LinkageModel(comparisons=[], prior=0.01, settings=linker.load_settings()).to_json()))
    assert LinkageModel.from_json(data).settings == linker.load_settings()
    assert data["settings_version"] == raw()["version"] and data["thresholds"] == raw()["thresholds"]
    data["settings"] = {**data["settings"], "block_refinement_keys": [["given1"]]}
    with pytest.raises(LinkageModelError, match="the model's settings: unknown key block_refinement_keys"):
        LinkageModel.from_json(data)
