"""Cross-feed reconciliation checks: comparisons GX cannot make on one table.

The checks and their severities are declared in ``expectations/checks.yaml``; control-total files
(aggregate figures an agency sends beside its records) in ``schemas/feeds/<agency>/control_totals/``.
``evaluate`` is pure (Arrow tables in, results and findings out). In a run, ``CrossFeedChecks``
computes each check's partial counts and findings inside the Beam job (findings to
``runs/<run_id>/checks/``), and ``verdicts`` turns the summed counts into the manifest entries
without reading the records again.
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
from typing import TYPE_CHECKING, Any, Callable, Tuple

import apache_beam as beam
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from pipelines import gx_suites, model
from pipelines.i18n import _, percent
from pipelines.core.zones import zone_of
from pipelines.core.arrow_coder import ArrowTableCoder  # noqa: F401 (registers pa.Table's coder)
from pipelines.core.ids import stable_bucket
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
    findings: list[dict] = field(default_factory=list)  # the findings made here
    more: int = 0  # findings the Beam job wrote itself (checks/), counted only

    def entry(self) -> dict:
        return {"name": self.name, "severity": self.severity, "status": self.status, "observed": self.observed,
                "expected": self.expected, "detail": self.detail, "findings": len(self.findings) + self.more}


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
    persons: pa.Table | None
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


def _result(name: str, spec: dict, findings: list[dict], observed, expected, detail: str, more: int = 0) -> CheckResult:
    for f in findings:
        f.setdefault("check", name)
        f.setdefault("severity", spec["severity"])
    return CheckResult(name, spec["severity"], FAILED if findings or more else PASSED, observed, expected, detail,
                       findings, more)


# --- the checks ---------------------------------------------------------------------------------------
#
# A check is a ``partial`` over records (counts and findings of the records it is given) and a
# ``verdict`` over the summed counts. Inside the Beam job the partial runs on parts of the records
# (all of a person's records in one part, or all records citing one police report), the findings
# are written by the job and only counts reach the finaliser; ``evaluate`` runs both on whole tables.

@dataclass
class CheckInputs:
    """What a verdict reads besides its check's counts: control files and volumes."""

    control_files: list[ControlFile] = field(default_factory=list)
    volumes: dict[str, dict[str, int]] = field(default_factory=dict)
    previous_volumes: dict[str, dict[str, int]] | None = None


Partial = Callable[[RunTables, dict], "tuple[dict, list[dict]]"]
Verdict = Callable[[dict, list[dict], int, CheckInputs, dict, str], CheckResult]

PER_BATCH, PER_PERSON, PER_POLICE_REPORT = "batch", "person", "police_report"


@dataclass(frozen=True)
class Check:
    verdict: Verdict
    partial: Partial | None = None  # None: the verdict needs no records
    part: str = PER_BATCH  # how the job splits the records for the partial (a finding never spans parts)


def _control_observed(tables: RunTables, spec: dict) -> tuple[dict, list[dict]]:
    """Records per control file and indicator: the feed's records of the file's period, filtered
    by the indicator's ``where`` (a feed is of one role, so victims and offenders add up)."""
    observed: dict[str, int] = {}
    for cf in tables.control_files:
        feed = cf.declaration["describes_feed"]
        token = _period_token(cf.source_file)
        for records in (_eq(tables.victims, "feed_id", feed), _eq(tables.offenders, "feed_id", feed)):
            if token and records.num_rows:
                records = records.filter(pc.fill_null(pc.match_substring(records.column("source_file"), token), False))
            for indicator, ispec in cf.declaration["indicators"].items():
                subset = records
                for column, value in ((ispec or {}).get("where") or {}).items():
                    subset = _eq(subset, column, value)
                key = f"{cf.source_file}:{indicator}"
                observed[key] = observed.get(key, 0) + subset.num_rows
    return {"observed": observed}, []


def _control_verdict(counts: dict, _found, _more, inputs: CheckInputs, spec: dict, name: str) -> CheckResult:
    if not inputs.control_files:
        return CheckResult(name, spec["severity"], SKIPPED, None, None, "no control-totals file was delivered")
    findings, observed, expected = [], {}, {}
    for cf in inputs.control_files:
        feed = cf.declaration["describes_feed"]
        token = _period_token(cf.source_file)
        for indicator in cf.declaration["indicators"]:
            declared = cf.values.get(indicator)
            key = f"{cf.source_file}:{indicator}"
            observed[key], expected[key] = (counts.get("observed") or {}).get(key, 0), declared
            if declared is None:
                findings.append({"feed_id": feed, "period": token, "detail":
                                 f"{cf.source_file}: indicator {indicator} is missing or not a whole number"})
            elif declared != observed[key]:
                findings.append({"feed_id": feed, "period": token, "detail":
                                 f"{cf.source_file}: {indicator} declares {declared}, the feed's published records "
                                 f"give {observed[key]} ({observed[key] - declared:+d})"})
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


def _sums_verdict(_counts, _found, _more, inputs: CheckInputs, spec: dict, name: str) -> CheckResult:
    sums = [(cf, s) for cf in inputs.control_files for s in cf.declaration.get("sums") or []]
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


def _children_adult_partial(tables: RunTables, spec: dict) -> tuple[dict, list[dict]]:
    v = tables.victims
    findings = []
    child_feed = _in(v, "feed_id", spec.get("feeds") or [])
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
    return {"total": child_feed.num_rows}, findings


def _children_adult_verdict(counts: dict, found: list[dict], more: int, _inputs, spec: dict, name: str) -> CheckResult:
    n = len(found) + more
    return _result(name, spec, found, n, 0,
                   _("%(n)s of %(total)s records of children-only feeds (%(feeds)s) belong to an adult") % {
                       "n": n, "total": counts.get("total", 0), "feeds": ", ".join(spec.get("feeds") or [])}, more)


def _referral_partial(tables: RunTables, spec: dict) -> tuple[dict, list[dict]]:
    v = tables.victims
    flag = spec.get("flag_field", "referred_to_police")
    if flag not in v.column_names:
        return {}, []
    referred = v.filter(pc.fill_null(v.column(flag), False))
    police_persons = pc.unique(_in(v, "agency", spec.get("police_agencies") or []).column("person_id"))
    missing = referred.filter(pc.invert(pc.fill_null(pc.is_in(referred.column("person_id"), police_persons), False)))
    findings = [{"feed_id": r["feed_id"], "person_id": r["person_id"], "record_uid": r["record_uid"],
                 "detail": f"referred to the police; no record of {', '.join(spec.get('police_agencies') or [])} "
                           "for this person"}
                for r in missing.select(["feed_id", "person_id", "record_uid"]).to_pylist()]
    return {"total": referred.num_rows}, findings


def _referral_verdict(counts: dict, found: list[dict], more: int, _inputs, spec: dict, name: str) -> CheckResult:
    flag = spec.get("flag_field", "referred_to_police")
    if flag not in model.table("victim").schema().names:
        return CheckResult(name, spec["severity"], SKIPPED, None, None, _("no field %(field)s in the victims table") % {"field": flag})
    n = len(found) + more
    return _result(name, spec, found, n, 0,
                   _("%(n)s of %(total)s referrals to the police have no matching police record") % {
                       "n": n, "total": counts.get("total", 0)}, more)


def _unknown_report_partial(tables: RunTables, spec: dict) -> tuple[dict, list[dict]]:
    records = _records(tables)
    known = pc.unique(pc.drop_null(_in(records, "agency", spec.get("police_agencies") or []).column("police_report_ref")))
    citing = _in(records, "agency", spec.get("citing_agencies") or [])
    citing = citing.filter(pc.is_valid(citing.column("police_report_ref")))
    unknown = citing.filter(pc.invert(pc.fill_null(pc.is_in(citing.column("police_report_ref"), known), False)))
    findings = [{"feed_id": r["feed_id"], "person_id": r["person_id"], "record_uid": r["record_uid"],
                 "detail": f"cites police report {r['police_report_ref']}, which no police record carries"}
                for r in unknown.select(["feed_id", "person_id", "record_uid", "police_report_ref"]).to_pylist()]
    return {"total": citing.num_rows, "reports": len(pc.unique(unknown.column("police_report_ref")))}, findings


def _unknown_report_verdict(counts: dict, found: list[dict], more: int, _inputs, spec: dict, name: str) -> CheckResult:
    n, distinct = len(found) + more, counts.get("reports", 0)
    return _result(name, spec, found, {"records": n, "reports": distinct}, {"records": 0, "reports": 0},
                   _("%(n)s of %(total)s records citing a police report cite one of %(reports)s reports the "
                     "police feeds do not carry") % {"n": n, "total": counts.get("total", 0), "reports": distinct}, more)


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


def _role_tables(tables: RunTables):
    return (("victim", tables.victims), ("offender", tables.offenders))


def _disagreement_partial(tables: RunTables, spec: dict) -> tuple[dict, list[dict]]:
    findings, observed = [], {}
    for role, t in _role_tables(tables):
        for attribute, keys in [*((a, ["person_id"]) for a in spec.get("attributes") or []),
                                *((a, ["person_id", "event_year"]) for a in spec.get("per_year_attributes") or [])]:
            if attribute in t.column_names:
                found = _disagreements(t, attribute, keys)
                observed[f"{role}:{attribute}"] = observed.get(f"{role}:{attribute}", 0) + len(found)
                findings += found
    return {"observed": observed, "persons": len({f["person_id"] for f in findings})}, findings


def _disagreement_verdict(counts: dict, found: list[dict], more: int, _inputs, spec: dict, name: str) -> CheckResult:
    observed = {f"{role}:{a}": 0 for role in ("victim", "offender")
                for a in [*(spec.get("attributes") or []), *(spec.get("per_year_attributes") or [])]
                if a in model.table(role).schema().names}
    observed.update(counts.get("observed") or {})
    return _result(name, spec, found, observed, {k: 0 for k in observed},
                   _("%(persons)s persons have agencies disagreeing on an attribute (%(n)s disagreements)") % {
                       "persons": counts.get("persons", 0), "n": len(found) + more}, more)


def _classification_partial(tables: RunTables, spec: dict) -> tuple[dict, list[dict]]:
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
    return {}, findings


def _classification_verdict(_counts, found: list[dict], more: int, _inputs, spec: dict, name: str) -> CheckResult:
    n = len(found) + more
    return _result(name, spec, found, n, 0,
                   _("%(n)s persons are classified as %(groups)s by different agencies for the same case") % {
                       "n": n, "groups": " / ".join(spec.get("groups") or {})}, more)


def volume_counts(records: pa.Table) -> dict[str, dict[str, int]]:
    """Records per feed and event year ("unknown" when the year is)."""
    out: dict[str, dict[str, int]] = {}
    if not records.num_rows:
        return out
    counts = records.group_by(["feed_id", "event_year"], use_threads=False).aggregate([("record_uid", "count")])
    for r in counts.to_pylist():
        year = "unknown" if r["event_year"] is None else str(r["event_year"])
        out.setdefault(r["feed_id"], {})[year] = out.get(r["feed_id"], {}).get(year, 0) + r["record_uid_count"]
    return out


def volumes(tables: RunTables) -> dict[str, dict[str, int]]:
    """Published records per feed and event year: what the next run's volume check compares with."""
    out: dict[str, dict[str, int]] = {}
    for t in (tables.victims, tables.offenders):
        for feed, years in volume_counts(t).items():
            for year, n in years.items():
                out.setdefault(feed, {})[year] = out.get(feed, {}).get(year, 0) + n
    return sort_volumes(out)


def sort_volumes(volumes_: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {feed: dict(sorted(years.items())) for feed, years in sorted(volumes_.items())}


def _volume_verdict(_counts, _found, _more, inputs: CheckInputs, spec: dict, name: str) -> CheckResult:
    if inputs.previous_volumes is None:
        return CheckResult(name, spec["severity"], SKIPPED, None, None, _("no previous published run to compare with"))
    current = inputs.volumes
    max_share, min_records = float(spec.get("max_share", 0.25)), int(spec.get("min_records", 0))
    findings, observed = [], {}
    for feed in sorted(set(current) | set(inputs.previous_volumes)):
        now, before = current.get(feed, {}), inputs.previous_volumes.get(feed, {})
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


KINDS: dict[str, Check] = {
    "control_totals": Check(_control_verdict, _control_observed, PER_BATCH),
    "children_plus_adults": Check(_sums_verdict),
    "children_only_feed_adult": Check(_children_adult_verdict, _children_adult_partial, PER_PERSON),
    "referral_without_police_record": Check(_referral_verdict, _referral_partial, PER_PERSON),
    "unknown_police_report": Check(_unknown_report_verdict, _unknown_report_partial, PER_POLICE_REPORT),
    "attribute_disagreement": Check(_disagreement_verdict, _disagreement_partial, PER_PERSON),
    "classification_conflict": Check(_classification_verdict, _classification_partial, PER_PERSON),
    "volume_change": Check(_volume_verdict),
}


def _partial(check: Check, tables: RunTables, spec: dict, name: str) -> tuple[dict, list[dict]]:
    counts, findings = check.partial(tables, spec) if check.partial else ({}, [])
    for f in findings:
        f.setdefault("check", name)
        f.setdefault("severity", spec["severity"])
    return counts, findings


def _whole_tables(check: Check) -> Callable[..., CheckResult]:
    def run(tables: RunTables, spec: dict, name: str) -> CheckResult:
        counts, findings = _partial(check, tables, spec, name)
        inputs = CheckInputs(tables.control_files, volumes(tables), tables.previous_volumes)
        return check.verdict(counts, findings, 0, inputs, spec, name)

    return run


#: Each check on whole tables (what the job computes in parts): name -> (tables, spec, name) -> result.
CHECKS: dict[str, Callable[[RunTables, dict, str], CheckResult]] = {n: _whole_tables(c) for n, c in KINDS.items()}


def evaluate(tables: RunTables, config: dict[str, dict] | None = None) -> list[CheckResult]:
    config = load_config() if config is None else config
    return [CHECKS[name](tables, spec, name) for name, spec in config.items()]


def findings_rows(findings: list[dict]) -> pa.Table:
    rows = [{k: (None if f.get(k) is None else str(f.get(k))) for k in FINDINGS_SCHEMA.names} for f in findings]
    return pa.Table.from_pylist(rows, schema=FINDINGS_SCHEMA)


def findings_table(results: list[CheckResult]) -> pa.Table:
    return findings_rows([f for r in results for f in r.findings])


# --- inside the Beam job ------------------------------------------------------------------------------

PARTS = 32  # parts of the records per split (a part's records are grouped on one worker)


#: Columns every partial may read; a check's spec adds those it names (attributes, case keys, flag).
BASE_COLUMNS = ("record_uid", "person_id", "feed_id", "agency", "source_file", "event_date", "event_year",
                "child_adult", "offence", "police_report_ref")
SPEC_COLUMNS = ("attributes", "per_year_attributes", "case_keys", "flag_field")


def columns_read(role: str, specs: list[dict]) -> list[str]:
    """The columns of a role's records that some partial of ``specs`` reads: what the job groups."""
    wanted = set(BASE_COLUMNS)
    for spec in specs:
        for key in SPEC_COLUMNS:
            value = spec.get(key) or []
            wanted.update([value] if isinstance(value, str) else value)
    return [c for c in model.table(role).schema(include_restricted=False).names if c in wanted]


class _Split(beam.DoFn):
    """One role's records -> (part, (role, records)) by a key column (rows without the key are
    dropped: no check of that split reads them), with only the columns the checks read."""

    def __init__(self, role: str, column: str, columns: list[str]):
        self._role, self._column, self._columns = role, column, columns

    def process(self, records: pa.Table):
        records = records.filter(pc.is_valid(records.column(self._column))).select(self._columns)
        if not records.num_rows:
            return
        parts = stable_bucket(records.column(self._column).combine_chunks(), PARTS)
        for part in np.unique(parts):
            yield int(part), (self._role, records.filter(pa.array(parts == part)))


class _RunPartials(beam.DoFn):
    """The partials of some checks on one part (or batch): counts out, findings tagged."""

    def __init__(self, config: dict[str, dict], names: list[str], control_files: list[ControlFile]):
        self._config, self._names, self._control = config, names, control_files

    def setup(self):
        self._empty = {r: model.table(r).schema(include_restricted=False).empty_table() for r in ("victim", "offender")}

    def process(self, element):
        by_role: dict[str, list[pa.Table]] = {"victim": [], "offender": []}
        for role, table in element[1]:
            by_role[role].append(table)
        empty = self._empty
        tables = RunTables(*(pa.concat_tables(by_role[r], promote_options="permissive") if by_role[r] else empty[r]
                             for r in ("victim", "offender")), persons=None, control_files=self._control)
        counts: dict[str, dict] = {}
        for name in self._names:
            c, findings = _partial(KINDS[name], tables, self._config[name], name)
            counts[name] = {**c, "findings": len(findings)}
            if findings:
                yield beam.pvalue.TaggedOutput("findings", findings_rows(findings))
        yield counts


class CrossFeedChecks(beam.PTransform):
    """Records by role ({"victim": pcoll, "offender": pcoll}) -> {"counts": one dict of every
    check's summed counts, "findings": finding tables}. ``control_files`` are read by the caller."""

    def __init__(self, config: dict[str, dict], control_files: list[ControlFile]):
        super().__init__()
        self._config, self._control = config, control_files

    def expand(self, records):
        from pipelines.aggregates import Counts

        counts, findings = [], []
        for part, column in ((PER_BATCH, None), (PER_PERSON, "person_id"), (PER_POLICE_REPORT, "police_report_ref")):
            names = [n for n in self._config if KINDS[n].partial is not None and KINDS[n].part == part]
            if not names:
                continue
            if column is None:  # additive per batch: no grouping
                grouped = [pcoll | f"Batch{part}{role}" >> beam.Map(lambda t, r=role: (0, [(r, t)]))
                           for role, pcoll in records.items()]
            else:
                specs = [self._config[n] for n in names]
                # typed: the runner holds the split records until they are grouped, as zstd Arrow IPC
                grouped = [pcoll | f"Split{part}{role}" >> beam.ParDo(_Split(role, column, columns_read(role, specs)))
                           .with_output_types(Tuple[int, Tuple[str, pa.Table]]) for role, pcoll in records.items()]
                grouped = [tuple(grouped) | f"All{part}" >> beam.Flatten() | f"Group{part}" >> beam.GroupByKey()]
            for i, pcoll in enumerate(grouped):
                out = pcoll | f"Partials{part}{i}" >> beam.ParDo(_RunPartials(self._config, names, self._control)
                                                                 ).with_outputs("findings", main="counts")
                counts.append(out.counts)
                findings.append(out.findings)
        summed = (tuple(counts) | "AllCheckCounts" >> beam.Flatten()
                  | "SumCheckCounts" >> beam.CombineGlobally(Counts()))
        return {"counts": summed, "findings": tuple(findings) | "AllFindings" >> beam.Flatten()}


# --- after the job ------------------------------------------------------------------------------------

@dataclass
class ChecksReport:
    results: list[CheckResult]
    volumes: dict[str, dict[str, int]]
    findings_path: str | None


def previous_volumes(fs, out_path: str) -> dict | None:
    """The volumes the last published run recorded (None before the first)."""
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


def verdicts(out: str, run_id: str, feeds_root: str, counts: dict[str, dict], volumes_: dict[str, dict[str, int]],
             config: dict | None = None, key: "PseudonymKey | None" = None) -> ChecksReport:
    """Every check's verdict from the counts the job summed (``CrossFeedChecks``); the findings the
    verdicts make themselves (control totals, volumes: a few per file or feed) are written beside
    the job's under ``runs/<run_id>/checks/``, marked like every Parquet output."""
    from pipelines import privacy

    config = load_config() if config is None else config
    fs, out_path = fsspec.core.url_to_fs(out)
    out_path = out_path.rstrip("/")
    inputs = CheckInputs(read_control_files(feeds_root, load_control_declarations()), sort_volumes(volumes_),
                         previous_volumes(fs, out_path))
    results = []
    for name, spec in config.items():
        c = counts.get(name) or {}
        results.append(KINDS[name].verdict(c, [], int(c.get("findings", 0)), inputs, spec, name))
    findings = findings_table(results)
    run_path = f"{out_path}/runs/{run_id}"
    if findings.num_rows:
        findings = findings.cast(privacy.mark_schema(model.describe(findings.schema, "check_finding", run_id),
                                                     zone_of(FOLDER), key))
        fs.makedirs(f"{run_path}/{FOLDER}", exist_ok=True)
        with fs.open(f"{run_path}/{FOLDER}/{VERDICT_FINDINGS}", "wb") as fh:
            pq.write_table(findings, fh, compression="zstd")
    return ChecksReport(results, inputs.volumes, f"{FOLDER}/")


VERDICT_FINDINGS = "verdicts-00000-of-00001.parquet"


def add_to_validation(validation: dict, report: ChecksReport) -> dict:
    """The manifest's validation block with the checks folded in (a blocking failure blocks the run)."""
    entries = [r.entry() for r in report.results]
    blocking = any(e["severity"] == gx_suites.BLOCKING and e["status"] == FAILED for e in entries)
    return {**validation, "checks": entries, "checks_findings": report.findings_path,
            "blocking_failed": bool(validation.get("blocking_failed")) or blocking, "volumes": report.volumes}
