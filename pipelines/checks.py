"""Cross-feed reconciliation checks: comparisons GX cannot make on one table, computed from a run's tables.

The checks and their severities are declared in ``expectations/checks.yaml``; control-total files
(aggregate figures an agency sends beside its records) in ``schemas/feeds/<agency>/control_totals/``.
``evaluate`` is pure (Arrow tables in, results and findings out); ``run_checks`` reads a finished
run's outputs, writes the findings to ``runs/<run_id>/checks/`` and returns the manifest entries.
Findings carry ids, codes and counts only: never a name, a document number or a birth date.
"""

from __future__ import annotations

import csv
import io
import json
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from pipelines import gx_suites, model
from pipelines.i18n import _, percent
from pipelines.contracts import Contract
from pipelines.core.zones import zone_of
from pipelines.resources import expectations_dir, schemas_dir

if TYPE_CHECKING:
    from pipelines.privacy import PseudonymKey

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
FOLDER = "checks"
FINDINGS_SCHEMA = model.table("check_finding").schema()  # declared in schemas/model.yaml


class ChecksConfigError(ValueError):
    """expectations/checks.yaml or a control-totals declaration is malformed."""


@dataclass
class CheckResult:
    name: str
    severity: str
    status: str
    observed: Any
    expected: Any
    detail: str
    findings: list[dict] = field(default_factory=list)

    def entry(self) -> dict:
        return {"name": self.name, "severity": self.severity, "status": self.status, "observed": self.observed,
                "expected": self.expected, "detail": self.detail, "findings": len(self.findings)}


@dataclass
class ControlFile:
    """One delivered control-totals file: its declaration and the indicator values it states."""

    declaration: dict
    source_file: str
    values: dict[str, int | None]


@dataclass
class RunTables:
    victims: pa.Table
    offenders: pa.Table
    persons: pa.Table
    control_files: list[ControlFile] = field(default_factory=list)
    previous_volumes: dict[str, dict[str, int]] | None = None


def load_config(path: str | Path | None = None) -> dict[str, dict]:
    path = Path(path) if path else expectations_dir() / "checks.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    checks = data.get("checks") or {}
    for name, spec in checks.items():
        if name not in CHECKS:
            raise ChecksConfigError(f"{path}: unknown check {name!r}")
        if (spec or {}).get("severity") not in (gx_suites.BLOCKING, gx_suites.WARNING):
            raise ChecksConfigError(f"{path}: checks.{name}.severity must be blocking or warning")
    return checks


def load_control_declarations(root: str | Path | None = None) -> list[dict]:
    root = Path(root) if root else schemas_dir() / "feeds"
    decls = []
    for path in sorted(root.glob("*/control_totals/*.yaml")):
        decl = yaml.safe_load(path.read_text(encoding="utf-8"))
        for key in ("control_totals", "describes_feed", "source", "indicator_column", "value_column", "indicators"):
            if key not in decl:
                raise ChecksConfigError(f"{path}: missing required key {key!r}")
        decl["_path"] = str(path)
        decls.append(decl)
    return decls


def read_control_files(feeds_root: str, declarations: list[dict]) -> list[ControlFile]:
    """Every delivered file matching a declaration, parsed into indicator -> value."""
    fs, root = fsspec.core.url_to_fs(feeds_root)
    root = root.rstrip("/")
    files = []
    for decl in declarations:
        source = decl["source"]
        for path in sorted(fs.glob(f"{root}/{source['files']}")):
            with fs.open(path, "rb") as fh:
                text = fh.read().decode(source.get("encoding", "utf-8"))
            reader = csv.DictReader(io.StringIO(text), delimiter=source.get("delimiter", ","))
            values: dict[str, int | None] = {}
            for row in reader:
                name = (row.get(decl["indicator_column"]) or "").strip()
                raw = (row.get(decl["value_column"]) or "").strip().replace(",", "")
                values[name] = int(raw) if raw.isdigit() else None
            files.append(ControlFile(decl, path[len(root) + 1:] if path.startswith(root + "/") else path, values))
    return files


# --- helpers ------------------------------------------------------------------------------------------

def _eq(table: pa.Table, column: str, value) -> pa.Table:
    return table.filter(pc.fill_null(pc.equal(table.column(column), value), False))


def _in(table: pa.Table, column: str, values: list) -> pa.Table:
    return table.filter(pc.fill_null(pc.is_in(table.column(column), pa.array(values)), False))


def _period_token(name: str) -> str | None:
    found = re.findall(gx_suites.PERIOD_FROM_FILE, posixpath.basename(name))
    return found[-1] if found else None


def _records(tables: RunTables) -> pa.Table:
    """Victim and offender records in one table (common columns), with their role."""
    common = [c for c in tables.victims.column_names if c in tables.offenders.column_names]
    parts = []
    for role, t in (("victim", tables.victims), ("offender", tables.offenders)):
        if t.num_rows:
            sub = t.select(common)
            parts.append(sub.append_column("role", pa.array([role] * sub.num_rows, pa.string())))
    if not parts:
        return pa.table({c: pa.array([], tables.victims.schema.field(c).type) for c in common} | {"role": pa.array([], pa.string())})
    return pa.concat_tables(parts, promote_options="permissive")


def _result(name: str, spec: dict, findings: list[dict], observed, expected, detail: str) -> CheckResult:
    for f in findings:
        f.setdefault("check", name)
        f.setdefault("severity", spec["severity"])
    return CheckResult(name, spec["severity"], FAILED if findings else PASSED, observed, expected, detail, findings)


# --- the checks ---------------------------------------------------------------------------------------

def check_control_totals(tables: RunTables, spec: dict, name: str = "control_totals") -> CheckResult:
    if not tables.control_files:
        return CheckResult(name, spec["severity"], SKIPPED, None, None, "no control-totals file was delivered")
    findings, observed, expected = [], {}, {}
    for cf in tables.control_files:
        feed = cf.declaration["describes_feed"]
        records = _eq(tables.victims, "feed_id", feed)
        if not records.num_rows:
            records = _eq(tables.offenders, "feed_id", feed)
        token = _period_token(cf.source_file)
        if token and records.num_rows:
            same = pc.match_substring(records.column("source_file"), token)
            records = records.filter(pc.fill_null(same, False))
        for indicator, ispec in cf.declaration["indicators"].items():
            declared = cf.values.get(indicator)
            subset = records
            for column, value in ((ispec or {}).get("where") or {}).items():
                subset = _eq(subset, column, value)
            key = f"{cf.source_file}:{indicator}"
            observed[key], expected[key] = subset.num_rows, declared
            if declared is None:
                findings.append({"feed_id": feed, "period": token, "detail":
                                 f"{cf.source_file}: indicator {indicator} is missing or not a whole number"})
            elif declared != subset.num_rows:
                findings.append({"feed_id": feed, "period": token, "detail":
                                 f"{cf.source_file}: {indicator} declares {declared}, the feed's published records "
                                 f"give {subset.num_rows} ({subset.num_rows - declared:+d})"})
    result = _result(name, spec, findings, observed, expected,
                     _("%(n)s of %(total)s declared totals differ from the records received") % {
                         "n": len(findings), "total": len(observed)})
    tolerance = spec.get("block_beyond_share")
    off = [k for k, v in expected.items() if v is None or (tolerance is not None and abs(observed[k] - v) > tolerance * v)]
    if tolerance is not None and off:  # a partial delivery (a truncated file), not a few rows' difference
        result.severity = gx_suites.BLOCKING
        result.detail += _("; %(n)s beyond the %(share)s tolerated, which blocks the run") % {
            "n": len(off), "share": percent(tolerance)}
    return result


def check_children_plus_adults(tables: RunTables, spec: dict, name: str = "children_plus_adults") -> CheckResult:
    sums = [(cf, s) for cf in tables.control_files for s in cf.declaration.get("sums") or []]
    if not sums:
        return CheckResult(name, spec["severity"], SKIPPED, None, None, "no delivered file declares a sum")
    findings, observed, expected = [], {}, {}
    for cf, s in sums:
        total = cf.values.get(s["total"])
        parts = [cf.values.get(p) for p in s["parts"]]
        key = f"{cf.source_file}:{s['total']}"
        observed[key] = None if None in parts else sum(parts)
        expected[key] = total
        if total is None or None in parts or sum(parts) != total:
            findings.append({"feed_id": cf.declaration["describes_feed"], "period": _period_token(cf.source_file),
                             "detail": f"{cf.source_file}: {' + '.join(s['parts'])} = {observed[key]}, "
                                       f"{s['total']} = {total}"})
    return _result(name, spec, findings, observed, expected,
                   _("%(n)s of %(total)s declared sums do not add up") % {"n": len(findings), "total": len(sums)})


def check_children_only_feed_adult(tables: RunTables, spec: dict, name: str = "children_only_feed_adult") -> CheckResult:
    v = tables.victims
    findings = []
    feeds = spec.get("feeds") or []
    child_feed = _in(v, "feed_id", feeds)
    adults = _eq(v, "child_adult", "ADULT").select(["person_id", "event_date", "feed_id"]).rename_columns(
        ["person_id", "adult_event_date", "adult_feed_id"])
    joined = child_feed.select(["person_id", "record_uid", "feed_id", "event_date", "child_adult"]).join(
        adults, "person_id", join_type="inner") if child_feed.num_rows and adults.num_rows else None
    if joined is not None and joined.num_rows:
        # an adult at or before this event cannot be a child at it
        earlier = pc.fill_null(pc.less_equal(joined.column("adult_event_date"), joined.column("event_date")), True)
        hit = joined.filter(earlier).sort_by([("record_uid", "ascending"), ("adult_feed_id", "ascending")])
        seen = set()
        for r in hit.to_pylist():
            if r["record_uid"] in seen:
                continue
            seen.add(r["record_uid"])
            own = r["adult_feed_id"] == r["feed_id"] and r["child_adult"] == "ADULT"
            findings.append({"feed_id": r["feed_id"], "related_feed_id": r["adult_feed_id"], "person_id": r["person_id"],
                             "record_uid": r["record_uid"],
                             "detail": "the record itself gives an adult age" if own else
                             f"the person is recorded as an adult by {r['adult_feed_id']} at or before this event"})
    return _result(name, spec, findings, len(findings), 0,
                   _("%(n)s of %(total)s records of children-only feeds (%(feeds)s) belong to an adult") % {
                       "n": len(findings), "total": child_feed.num_rows, "feeds": ", ".join(feeds)})


def check_referral_without_police_record(tables: RunTables, spec: dict,
                                         name: str = "referral_without_police_record") -> CheckResult:
    v = tables.victims
    flag = spec.get("flag_field", "referred_to_police")
    if flag not in v.column_names:
        return CheckResult(name, spec["severity"], SKIPPED, None, None, _("no field %(field)s in the victims table") % {"field": flag})
    referred = v.filter(pc.fill_null(v.column(flag), False))
    police_persons = pc.unique(_in(v, "agency", spec.get("police_agencies") or []).column("person_id"))
    missing = referred.filter(pc.invert(pc.fill_null(pc.is_in(referred.column("person_id"), police_persons), False)))
    findings = [{"feed_id": r["feed_id"], "person_id": r["person_id"], "record_uid": r["record_uid"],
                 "detail": f"referred to the police; no record of {', '.join(spec.get('police_agencies') or [])} "
                           "for this person"}
                for r in missing.select(["feed_id", "person_id", "record_uid"]).to_pylist()]
    return _result(name, spec, findings, len(findings), 0,
                   _("%(n)s of %(total)s referrals to the police have no matching police record") % {
                       "n": len(findings), "total": referred.num_rows})


def check_unknown_police_report(tables: RunTables, spec: dict, name: str = "unknown_police_report") -> CheckResult:
    records = _records(tables)
    known = pc.unique(pc.drop_null(_in(records, "agency", spec.get("police_agencies") or []).column("police_report_ref")))
    citing = _in(records, "agency", spec.get("citing_agencies") or [])
    citing = citing.filter(pc.is_valid(citing.column("police_report_ref")))
    unknown = citing.filter(pc.invert(pc.fill_null(pc.is_in(citing.column("police_report_ref"), known), False)))
    findings = [{"feed_id": r["feed_id"], "person_id": r["person_id"], "record_uid": r["record_uid"],
                 "detail": f"cites police report {r['police_report_ref']}, which no police record carries"}
                for r in unknown.select(["feed_id", "person_id", "record_uid", "police_report_ref"]).to_pylist()]
    distinct = len(pc.unique(unknown.column("police_report_ref")))
    return _result(name, spec, findings, {"records": len(findings), "reports": distinct}, {"records": 0, "reports": 0},
                   _("%(n)s of %(total)s records citing a police report cite one of %(reports)s reports the "
                     "police feeds do not carry") % {"n": len(findings), "total": citing.num_rows, "reports": distinct})


def _disagreements(records: pa.Table, attribute: str, keys: list[str]) -> list[dict]:
    sub = records.filter(pc.and_(pc.is_valid(records.column(attribute)), pc.is_valid(records.column("person_id"))))
    if not sub.num_rows:
        return []
    pairs = sub.group_by([*keys, "agency", attribute], use_threads=False).aggregate([("feed_id", "min")])
    per_key = pairs.group_by(keys, use_threads=False).aggregate([(attribute, "count_distinct"), ("agency", "count_distinct")])
    bad = per_key.filter(pc.and_(pc.greater(per_key.column(f"{attribute}_count_distinct"), 1),
                                 pc.greater(per_key.column("agency_count_distinct"), 1)))
    if not bad.num_rows:
        return []
    detail_rows = pairs.join(bad.select(keys), keys, join_type="inner").sort_by(
        [(k, "ascending") for k in keys] + [("agency", "ascending"), (attribute, "ascending")])
    grouped: dict[tuple, list[dict]] = {}
    for r in detail_rows.to_pylist():
        grouped.setdefault(tuple(r[k] for k in keys), []).append(r)
    findings = []
    for key, rows in grouped.items():
        values = "; ".join(f"{r['agency']}={r[attribute]}" for r in rows)
        findings.append({"person_id": key[0], "feed_id": rows[0]["feed_id_min"], "related_feed_id": rows[-1]["feed_id_min"],
                         "period": str(key[1]) if len(key) > 1 and key[1] is not None else None,
                         "detail": f"{attribute}: {values}"})
    return findings


def check_attribute_disagreement(tables: RunTables, spec: dict, name: str = "attribute_disagreement") -> CheckResult:
    findings, observed = [], {}
    for role, t in (("victim", tables.victims), ("offender", tables.offenders)):
        for attribute in spec.get("attributes") or []:
            if attribute in t.column_names:
                found = _disagreements(t, attribute, ["person_id"])
                observed[f"{role}:{attribute}"] = len(found)
                findings += found
        for attribute in spec.get("per_year_attributes") or []:
            if attribute in t.column_names:
                found = _disagreements(t, attribute, ["person_id", "event_year"])
                observed[f"{role}:{attribute}"] = len(found)
                findings += found
    persons = len({f["person_id"] for f in findings})
    return _result(name, spec, findings, observed, {k: 0 for k in observed},
                   _("%(persons)s persons have agencies disagreeing on an attribute (%(n)s disagreements)") % {
                       "persons": persons, "n": len(findings)})


def check_classification_conflict(tables: RunTables, spec: dict, name: str = "classification_conflict") -> CheckResult:
    records = _records(tables)
    group_of = {code: group for group, codes in (spec.get("groups") or {}).items() for code in codes}
    classified = records.filter(pc.is_valid(records.column("person_id")))
    classified = classified.append_column("group", pc.take(  # offence -> group (null when not in a group)
        pa.array(list(group_of.values()) + [None], pa.string()),
        pc.fill_null(pc.index_in(classified.column("offence"), pa.array(list(group_of), pa.string())), len(group_of))))
    classified = classified.filter(pc.is_valid(classified.column("group")))
    findings, seen = [], set()
    for case_key in spec.get("case_keys") or []:
        sub = classified.filter(pc.is_valid(classified.column(case_key)))
        if not sub.num_rows:
            continue
        keys = ["role", "person_id", case_key]
        per = sub.group_by(keys, use_threads=False).aggregate([("group", "count_distinct"), ("agency", "count_distinct")])
        bad = per.filter(pc.and_(pc.greater(per.column("group_count_distinct"), 1),
                                 pc.greater(per.column("agency_count_distinct"), 1)))
        if not bad.num_rows:
            continue
        rows = sub.join(bad.select(keys), keys, join_type="inner").sort_by(
            [("person_id", "ascending"), (case_key, "ascending"), ("agency", "ascending")])
        grouped: dict[tuple, list[dict]] = {}
        for r in rows.select([*keys, "agency", "feed_id", "group", "offence"]).to_pylist():
            grouped.setdefault(tuple(r[k] for k in keys), []).append(r)
        for key, rs in grouped.items():
            if (key[0], key[1]) in seen:  # one finding per person, whichever case key found it first
                continue
            seen.add((key[0], key[1]))
            labels = sorted({f"{r['agency']}={r['offence']}" for r in rs})
            findings.append({"person_id": key[1], "feed_id": rs[0]["feed_id"], "related_feed_id": rs[-1]["feed_id"],
                             "detail": f"same {case_key} {key[2]}: {'; '.join(labels)}"})
    return _result(name, spec, findings, len(findings), 0,
                   _("%(n)s persons are classified as %(groups)s by different agencies for the same case") % {
                       "n": len(findings), "groups": " / ".join(spec.get("groups") or {})})


def volumes(tables: RunTables) -> dict[str, dict[str, int]]:
    """Published records per feed and event year: what the next run's volume check compares with."""
    out: dict[str, dict[str, int]] = {}
    for t in (tables.victims, tables.offenders):
        if not t.num_rows:
            continue
        counts = t.group_by(["feed_id", "event_year"], use_threads=False).aggregate([("record_uid", "count")])
        for r in counts.to_pylist():
            year = "unknown" if r["event_year"] is None else str(r["event_year"])
            out.setdefault(r["feed_id"], {})[year] = out.get(r["feed_id"], {}).get(year, 0) + r["record_uid_count"]
    return {feed: dict(sorted(years.items())) for feed, years in sorted(out.items())}


def check_volume_change(tables: RunTables, spec: dict, name: str = "volume_change") -> CheckResult:
    if tables.previous_volumes is None:
        return CheckResult(name, spec["severity"], SKIPPED, None, None, _("no previous published run to compare with"))
    current = volumes(tables)
    max_share, min_records = float(spec.get("max_share", 0.25)), int(spec.get("min_records", 0))
    findings, observed = [], {}
    for feed in sorted(set(current) | set(tables.previous_volumes)):
        now, before = current.get(feed, {}), tables.previous_volumes.get(feed, {})
        for period in sorted(set(now) | set(before)):
            a, b = before.get(period, 0), now.get(period, 0)
            if max(a, b) < min_records:
                continue
            share = abs(b - a) / a if a else float("inf")
            observed[f"{feed}:{period}"] = round(share, 4) if a else None
            if share > max_share:
                findings.append({"feed_id": feed, "period": period, "detail":
                                 f"{a} records in the previous published run, {b} now "
                                 f"({'new period' if not a else f'{(b - a) / a:+.0%}'}; limit ±{max_share:.0%})"})
    return _result(name, spec, findings, observed, {"max_share": max_share},
                   _("%(n)s feed periods moved by more than %(share)s against the previous published run") % {
                       "n": len(findings), "share": percent(max_share)})


CHECKS: dict[str, Callable[[RunTables, dict], CheckResult]] = {
    "control_totals": check_control_totals,
    "children_plus_adults": check_children_plus_adults,
    "children_only_feed_adult": check_children_only_feed_adult,
    "referral_without_police_record": check_referral_without_police_record,
    "unknown_police_report": check_unknown_police_report,
    "attribute_disagreement": check_attribute_disagreement,
    "classification_conflict": check_classification_conflict,
    "volume_change": check_volume_change,
}


def evaluate(tables: RunTables, config: dict[str, dict] | None = None) -> list[CheckResult]:
    config = load_config() if config is None else config
    return [CHECKS[name](tables, spec, name) for name, spec in config.items()]


def findings_table(results: list[CheckResult]) -> pa.Table:
    rows = [{k: (None if f.get(k) is None else str(f.get(k))) for k in FINDINGS_SCHEMA.names}
            for r in results for f in r.findings]
    return pa.Table.from_pylist(rows, schema=FINDINGS_SCHEMA)


@dataclass
class ChecksReport:
    results: list[CheckResult]
    volumes: dict[str, dict[str, int]]
    findings_path: str | None


def _previous_volumes(fs, out_path: str) -> dict | None:
    pointer = f"{out_path}/current.json"
    if not fs.exists(pointer):
        return None
    with fs.open(pointer, "r", encoding="utf-8") as fh:
        rel = json.load(fh).get("path")
    manifest = f"{out_path}/{rel}/manifest.json"
    if not rel or not fs.exists(manifest):
        return None
    with fs.open(manifest, "r", encoding="utf-8") as fh:
        return ((json.load(fh).get("validation") or {}).get("volumes"))


def run_checks(out: str, run_id: str, feeds_root: str, contracts: list[Contract] | None = None,
               config: dict | None = None, key: "PseudonymKey | None" = None) -> ChecksReport:
    """Evaluate the checks on a finished run's outputs; findings go to ``runs/<run_id>/checks/``
    (marked with their zone and the run's pseudonymisation key, like every Parquet output)."""
    from pipelines import privacy
    from pipelines.publish import read_output  # publish imports nothing from here; keep it that way

    fs, out_path = fsspec.core.url_to_fs(out)
    out_path = out_path.rstrip("/")
    run_path = f"{out_path}/runs/{run_id}"
    tables = RunTables(
        victims=read_output(fs, f"{run_path}/harmonised/victims"),
        offenders=read_output(fs, f"{run_path}/harmonised/offenders"),
        persons=read_output(fs, f"{run_path}/persons"),
        control_files=read_control_files(feeds_root, load_control_declarations()),
        previous_volumes=_previous_volumes(fs, out_path),
    )
    results = evaluate(tables, config)
    findings = findings_table(results)
    findings = findings.cast(privacy.mark_schema(model.describe(findings.schema, "check_finding", run_id),
                                                 zone_of(FOLDER), key))
    path = f"{run_path}/{FOLDER}/part-00000-of-00001.parquet"
    fs.makedirs(f"{run_path}/{FOLDER}", exist_ok=True)
    with fs.open(path, "wb") as fh:
        pq.write_table(findings, fh, compression="zstd")
    return ChecksReport(results, volumes(tables), f"{FOLDER}/{posixpath.basename(path)}")


def add_to_validation(validation: dict, report: ChecksReport) -> dict:
    """The manifest's validation block with the checks folded in (a blocking failure blocks the run)."""
    entries = [r.entry() for r in report.results]
    blocking = any(e["severity"] == gx_suites.BLOCKING and e["status"] == FAILED for e in entries)
    return {**validation, "checks": entries, "checks_findings": report.findings_path,
            "blocking_failed": bool(validation.get("blocking_failed")) or blocking, "volumes": report.volumes}
