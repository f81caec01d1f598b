"""The Great Expectations suites under ``expectations/``, generated from the contracts and code lists.

What a suite checks is already declared elsewhere: which harmonised fields a feed fills (its
contract), which codes a field may hold (``schemas/model.yaml`` and ``schemas/codelists/``), the
document formats (the ``document_types`` list). The suites are derived from those declarations
so nothing is written twice; the JSON is committed so a steward can read and review it, and
``tests/test_suites.py`` fails when it is stale. Regenerate with::

    python -m pipelines.gx_suites            # rewrite expectations/*/*.json
    python -m pipelines.gx_suites --check    # exit 1 if the committed suites are stale

Every expectation carries in ``meta``: ``name`` (unique in its suite; a quarantined row's
``field``), ``severity`` (``blocking``: a failure stops the publication; ``warning``: published
and flagged) and ``row_action`` (``quarantine``: failing rows leave the published tables with
reason ``expectation_failed``; ``flag``: failing rows stay and are counted). The suites are plain
GX Core 1.x JSON and use only core expectation types, so any process can load them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pipelines import codelists, model
from pipelines.contracts import Contract, FieldSpec, load_contracts
from pipelines.resources import expectations_dir

GENERATOR = "pipelines.gx_suites"
BLOCKING, WARNING = "blocking", "warning"
QUARANTINE, FLAG = "quarantine", "flag"
GX_SEVERITY = {BLOCKING: "critical", WARNING: "warning"}

# A mapped column that arrives more than half empty is worth a steward's look (the sample's
# sparsest mapped field, MP's birth dates, is 56% filled).
FILLED_MOSTLY = 0.5
# Row-level blocking rules quarantine the rows that break them; when more than this share of a
# delivery breaks one, the delivery itself is suspect and the run does not publish.
ROW_RULE_MOSTLY = 0.95
MAX_AGE = 110
# Deliveries name their reporting year (victimas_2018.csv); a file without one is checked
# against [1900-01-01, run date] only.
PERIOD_FROM_FILE = r"(?<![0-9])((?:19|20)[0-9]{2})(?![0-9])"
# Share of reconciled persons whose records disagree above which a steward should look.
MAX_CONFLICT_SHARE = 0.25

# harmonised fields each parser fills, and the ones whose emptiness means the column was lost
PARSER_FIELDS = {
    "name": (("given_names", "paternal_surname", "maternal_surname"), ("given_names", "paternal_surname")),
    "document": (("document_type", "document_number", "document_valid"), ("document_number",)),
    "ubigeo": (("ubigeo", "ubigeo_raw", "ubigeo_source_list", "department", "place_level"), ("ubigeo_raw",)),
    "aliases": (("aliases",), ()),
    "statute": (("offence", "statute_article"), ("statute_article",)),
    "age": (("age_at_event",), ("age_at_event",)),
}
# validation-only column (never published): document type and number joined, for one format rule
DOCUMENT_COLUMN = "document_type_and_number"
OUTPUT_OF_TABLE = {"victim": "harmonised/victims", "offender": "harmonised/offenders", "person": "persons"}


def expectation(type_: str, name: str, severity: str, row_action: str = FLAG, **kwargs: Any) -> dict:
    return {
        "type": type_,
        "kwargs": kwargs,
        "meta": {"name": name, "severity": severity, "row_action": row_action},
        "severity": GX_SEVERITY[severity],
    }


def _codes(field: model.Field) -> list[str]:
    return sorted(codelists.load(field.code_list).codes)


def _filled_fields(spec: FieldSpec) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if spec.parser == "ubigeo" and spec.target != "ubigeo":  # place_of_origin: the same columns, origin_*
        return tuple(tuple(f"origin_{f}" for f in group) for group in PARSER_FIELDS["ubigeo"])  # type: ignore[return-value]
    if spec.parser in PARSER_FIELDS:
        return PARSER_FIELDS[spec.parser]
    if spec.parser == "constant":
        return (spec.target,), ()
    return (spec.target,), (spec.target,)


def _document_types(contract: Contract) -> list[str]:
    """The SUNAT types a contract's documents can carry (its type lookup's targets or fixed type)."""
    types: set[str] = set()
    for spec in contract.fields:
        if spec.parser != "document":
            continue
        if spec.options.get("type"):
            types.add(str(spec.options["type"]))
        elif spec.options.get("type_lookup"):
            types.update(str(v) for v in contract.lookups[spec.options["type_lookup"]].values() if v is not None)
        else:  # types delivered as SUNAT codes already
            types.update(codelists.load("document_types").codes)
    return sorted(types)


def feed_suite(contract: Contract) -> dict:
    """What one feed's harmonised records must satisfy, from its contract."""
    table = model.table(contract.role)
    filled: dict[str, None] = {}
    must_fill: dict[str, None] = {}
    for spec in contract.fields:
        fields, required = _filled_fields(spec)
        filled.update(dict.fromkeys(f for f in fields if f in {x.name for x in table.fields}))
        must_fill.update(dict.fromkeys(required))
    exps = [expectation("expect_column_values_to_be_unique", "record_uid_unique", BLOCKING, column="record_uid")]
    for f in must_fill:
        exps.append(expectation("expect_column_values_to_not_be_null", f"{f}_filled", WARNING,
                                column=f, mostly=FILLED_MOSTLY))
    for f in filled:
        fld = table.field(f)
        if fld.code_list and fld.code_list not in ("ubigeo_inei",):
            exps.append(expectation("expect_column_values_to_be_in_set", f"{f}_in_code_list", BLOCKING, QUARANTINE,
                                    column=f, value_set=_codes(fld), mostly=ROW_RULE_MOSTLY))
    if "ubigeo" in filled:
        # an INEI or RENIEC code that names no district comes out null: the delivered code does not exist
        exps.append(expectation("expect_column_values_to_not_be_null", "ubigeo_exists", WARNING,
                                column="ubigeo", row_condition={"type": "nullity", "column": {"name": "ubigeo_raw"},
                                                                "is_null": False}))
    if "age_at_event" in filled or "birth_date" in filled:
        exps.append(expectation("expect_column_values_to_be_between", "age_at_event_0_to_110", BLOCKING, QUARANTINE,
                                column="age_at_event", min_value=0, max_value=MAX_AGE, mostly=ROW_RULE_MOSTLY))
    for f in ("event_date", "birth_date"):
        if f in filled:
            exps.append(expectation("expect_column_values_to_be_between", f"{f}_not_in_future", BLOCKING, QUARANTINE,
                                    column=f, max_value={"$PARAMETER": "run_date"}, mostly=ROW_RULE_MOSTLY))
    if "event_date" in filled:
        exps.append(expectation("expect_column_values_to_be_between", "event_date_in_reporting_period", WARNING,
                                column="event_date", min_value={"$PARAMETER": "period_start"},
                                max_value={"$PARAMETER": "period_end"}))
    derived = {}
    if "document_number" in filled:
        # one regex over "type:number" instead of one row-conditioned rule per type: GX's cost is
        # per expectation (~40 ms each here), not per row
        doc_types = codelists.load("document_types")
        alternatives = [f"{code}:{doc_types.entry(code)['pattern'].lstrip('^').rstrip('$')}"
                        for code in _document_types(contract)
                        if code in doc_types and doc_types.entry(code).get("pattern")]
        if alternatives:
            derived[DOCUMENT_COLUMN] = {"join": ["document_type", "document_number"], "separator": ":"}
            exps.append(expectation("expect_column_values_to_match_regex", "document_format", WARNING,
                                    column=DOCUMENT_COLUMN, regex="^(?:" + "|".join(alternatives) + ")$"))
        exps.append(expectation(
            "expect_column_values_to_be_in_set", "document_check_digit", WARNING, column="document_valid",
            value_set=[True], row_condition={"type": "nullity", "column": {"name": "document_number"}, "is_null": False}))
    return {
        "name": f"feed.{contract.feed}",
        "expectations": exps,
        "meta": {
            "generated_by": GENERATOR,
            "target": {"feed": contract.feed, "table": OUTPUT_OF_TABLE[contract.role]},
            "contract_version": contract.version,
            "index_column": "record_uid",
            "reporting_period_from_file": PERIOD_FROM_FILE,
            "derived_columns": derived,
        },
        "notes": f"Generated from schemas/feeds/{contract.agency.lower()}/ ({contract.feed}) and the code lists.",
    }


def _required_and_codes(table: model.Table, skip: set[str], code_severity: str, row_action: str) -> list[dict]:
    exps = []
    for f in table.fields:
        if f.required and not f.restricted:
            exps.append(expectation("expect_column_values_to_not_be_null", f"{f.name}_present", BLOCKING, column=f.name))
    for f in table.fields:
        if f.code_list and f.name not in skip and f.type == "string":
            exps.append(expectation("expect_column_values_to_be_in_set", f"{f.name}_in_code_list", code_severity,
                                    row_action, column=f.name, value_set=_codes(f)))
    return exps


def harmonised_suite(role: str) -> dict:
    """Model-level invariants of a harmonised table, whichever feed the rows came from."""
    table = model.table(role)
    # feed ids and agencies come from the contracts (an extra contract adds its own); the contract
    # fields are checked per feed; person_id and match_rule do not exist before linkage
    contract_filled = {"sex", "nationality", "exploitation_type", "document_type", "offence", "stage", "ubigeo",
                       "ubigeo_source_list", "department", "place_level", "origin_ubigeo", "origin_ubigeo_source_list",
                       "origin_department", "origin_place_level"}
    skip = {"feed_id", "agency", "match_rule"} | contract_filled
    exps = _required_and_codes(table, skip, BLOCKING, QUARANTINE)
    exps.append(expectation("expect_column_values_to_be_between", "source_row_positive", BLOCKING,
                            column="source_row", min_value=1))
    exps.append(expectation("expect_column_values_to_be_in_set", "agency_known", WARNING, column="agency",
                            value_set=_codes(table.field("agency"))))
    # the derived age bands must agree with the age they came from
    exps.append(expectation("expect_column_values_to_be_in_set", "child_when_under_18", BLOCKING, column="child_adult",
                            value_set=["CHILD"], row_condition={"type": "comparison", "column": {"name": "age_at_event"},
                                                                "operator": "<", "parameter": 18}))
    exps.append(expectation("expect_column_values_to_be_in_set", "adult_when_18_or_over", BLOCKING,
                            column="child_adult", value_set=["ADULT"],
                            row_condition={"type": "comparison", "column": {"name": "age_at_event"},
                                           "operator": ">=", "parameter": 18}))
    exps.append(expectation("expect_column_values_to_not_be_null", "age_group_when_age_known", BLOCKING,
                            column="age_group", row_condition={"type": "nullity", "column": {"name": "age_at_event"},
                                                               "is_null": False}))
    folder = OUTPUT_OF_TABLE[role]
    return {
        "name": "harmonised." + folder.split("/")[1],
        "expectations": exps,
        "meta": {"generated_by": GENERATOR, "target": {"table": folder}, "index_column": "record_uid"},
        "notes": f"Generated from schemas/model.yaml (table {role}) and the code lists.",
    }


def reconciled_suite(table_name: str = "person") -> dict:
    """The reconciled outputs. Persons today; a links or overlap table gets its own suite the same way."""
    table = model.table(table_name)
    exps = _required_and_codes(table, {"agencies", "feeds"}, BLOCKING, FLAG)
    exps.insert(0, expectation("expect_column_values_to_be_unique", "person_id_unique", BLOCKING, column="person_id"))
    exps.append(expectation("expect_column_values_to_be_between", "n_records_positive", BLOCKING,
                            column="n_records", min_value=1))
    exps.append(expectation("expect_column_values_to_be_between", "first_event_not_in_future", BLOCKING,
                            column="first_event_date", max_value={"$PARAMETER": "run_date"}))
    exps.append(expectation("expect_column_mean_to_be_between", "conflict_share", WARNING,
                            column="has_conflict", min_value=0, max_value=MAX_CONFLICT_SHARE))
    folder = OUTPUT_OF_TABLE[table_name]
    return {
        "name": f"reconciled.{folder}",
        "expectations": exps,
        "meta": {"generated_by": GENERATOR, "target": {"table": folder}, "index_column": "person_id"},
        "notes": f"Generated from schemas/model.yaml (table {table_name}) and the code lists.",
    }


def suite_path(name: str) -> str:
    """``feed.pnp_victims`` -> ``feeds/pnp_victims.json`` (relative to expectations/)."""
    kind, rest = name.split(".", 1)
    folder = {"feed": "feeds"}.get(kind, kind)
    return f"{folder}/{rest.replace('/', '_')}.json"


def generate(contracts: list[Contract] | None = None) -> dict[str, dict]:
    """Every generated suite, keyed by its path under expectations/."""
    suites = [feed_suite(c) for c in (contracts if contracts is not None else load_contracts())]
    suites += [harmonised_suite("victim"), harmonised_suite("offender"), reconciled_suite("person")]
    return {suite_path(s["name"]): s for s in suites}


def dumps(suite: dict) -> str:
    return json.dumps(suite, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def load_suite_dicts(folder: str | Path | None = None) -> dict[str, dict]:
    """Every suite stored under ``folder`` (default expectations/), keyed by suite name."""
    root = Path(folder) if folder else expectations_dir()
    suites = {}
    for path in sorted(root.glob("**/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        suites[data["name"]] = data
    return suites


def stale(folder: str | Path | None = None) -> list[str]:
    """Generated suites whose committed JSON differs from what the declarations give today."""
    root = Path(folder) if folder else expectations_dir()
    out = []
    for rel, suite in generate().items():
        path = root / rel
        if not path.exists() or path.read_text(encoding="utf-8") != dumps(suite):
            out.append(rel)
    known = set(generate())
    for path in root.glob("**/*.json"):
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("meta", {}).get("generated_by") == GENERATOR and str(path.relative_to(root)) not in known:
            out.append(str(path.relative_to(root)))  # generated once, its contract since removed
    return sorted(out)


def write(folder: str | Path | None = None) -> list[Path]:
    root = Path(folder) if folder else expectations_dir()
    written = []
    for rel, suite in generate().items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dumps(suite), encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.gx_suites", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed suites are stale")
    parser.add_argument("--out", default=None, help="folder to write into (default: expectations/)")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale(args.out)
        for rel in bad:
            print(f"stale: {rel}", file=sys.stderr)
        return 1 if bad else 0
    for path in write(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
