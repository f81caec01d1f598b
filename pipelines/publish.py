"""Publish stage: Parquet outputs of a run, its manifest, and the ``current.json`` pointer.

``WriteTables`` is the stage's PTransform (Arrow tables -> Parquet files with the declared
schema). ``finalise_run`` runs after the pipeline: it checks the row accounting of every feed,
writes ``manifest.json``, and only then points ``OUT/current.json`` at the run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import posixpath
import subprocess
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import apache_beam as beam
from apache_beam.io import parquetio
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

import pipelines
from pipelines import delta, i18n, model, verdicts
from pipelines.aggregates import NULL, RunSummary
from pipelines.contracts import Contract, RowAssertion
from pipelines.core.files import read_json
from pipelines.core.handoff import Handoff
from pipelines.core.vector import fold
from pipelines.core.zones import ZONES
from pipelines.i18n import _

if TYPE_CHECKING:
    from pipelines.privacy import PseudonymKey

log = logging.getLogger(__name__)

WORK_DIR = "_work"  # intermediate stats of a run; folded into the manifest, then removed


class AccountingError(RuntimeError):
    """Rows read != rows harmonised + rows quarantined for some feed: the run must not publish."""


class ValidationBlocked(AccountingError):
    """A blocking expectation or cross-feed check failed: the manifest says "blocked" and
    ``current.json`` still names the previous run. (An AccountingError so the CLI's
    "not published" exit applies.)"""


def conform_to(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Exactly the schema's columns, in order and type; a column the table lacks becomes nulls.
    Columns not in the schema are dropped, which is how working columns stay out of outputs."""
    columns = [table.column(f.name).cast(f.type) if f.name in table.column_names else pa.nulls(table.num_rows, f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


#: Rows per Parquet row group: a file below this is one row group, the unit readers skip or fetch.
ROW_GROUP_ROWS = 1_000_000
#: A buffer this large (Arrow bytes, before compression) is written even below ROW_GROUP_ROWS: the
#: sink's memory. 64 MB makes row groups of some 10-20 MB compressed, what readers fetch well.
ROW_GROUP_BYTES = 64 << 20


class _RowGroupWriter:
    """A Parquet writer that gathers the tables it is given into row groups of ``ROW_GROUP_ROWS``."""

    def __init__(self, writer: pq.ParquetWriter):
        self.writer = writer
        self.pending: list[pa.Table] = []

    def add(self, table: pa.Table) -> None:
        self.pending.append(table)
        if sum(t.num_rows for t in self.pending) >= ROW_GROUP_ROWS or sum(t.nbytes for t in self.pending) >= ROW_GROUP_BYTES:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=ROW_GROUP_ROWS)
            self.pending = []


class _RowGroupSink(parquetio._ParquetSink):
    """Beam's batched Parquet sink writes one row group per element (persons had 64 row groups for
    2,842 rows); this one buffers the elements of a file into full row groups. Elements are tables
    or the files they were handed off in (``Handoff.store``)."""

    def open(self, temp_path):
        return _RowGroupWriter(super().open(temp_path))

    def write_record(self, writer: _RowGroupWriter, ref: pa.Table | str):
        writer.add(Handoff.load(ref))

    def close(self, writer: _RowGroupWriter):
        writer.flush()
        super().close(writer.writer)


class WriteTables(beam.PTransform):
    """Arrow tables (one PCollection, or a tuple of them) -> Parquet files under ``folder`` with one
    declared schema.

    ``work``: a folder the job may write (``pipelines.core.handoff``). Beam's write step waits for
    a side input, so the in-process runner does not fuse it with the stage that makes the tables
    and holds them all until it runs (at 1M records: the harmonised, restricted and registry
    tables together); handed off, it holds their file names, and the sink reads each table back."""

    def __init__(self, folder: str, schema: pa.Schema, work: str | None = None):
        super().__init__()
        self._folder = folder
        self._schema = schema
        self._handoff = Handoff(work)

    def expand(self, tables):
        schema, handoff = self._schema, self._handoff
        sink = _RowGroupSink(posixpath.join(self._folder, "part"), schema, "zstd", False, False, ".parquet",
                             0, None, "application/x-parquet", None)
        inputs = tables if isinstance(tables, tuple) else (tables,)
        # each input handed off before a Flatten: the runner holds a Flatten's elements too
        conformed = [pcoll | f"Conform{i or ''}" >> beam.Map(lambda t: handoff.store(conform_to(t, schema), "table"))
                     .with_output_types(handoff.type) for i, pcoll in enumerate(inputs)]
        if len(conformed) > 1:
            conformed = [tuple(conformed) | "Inputs" >> beam.Flatten().with_output_types(handoff.type)]
        return conformed[0] | "WriteParquet" >> beam.io.Write(sink)


def new_run_id(inputs: list[dict]) -> str:
    digest = hashlib.sha256(json.dumps(sorted((d["source_file"], d["sha256"] or "") for d in inputs)).encode())
    return f"{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%fZ}-{digest.hexdigest()[:8]}"


def _read_jsonl(fs, folder: str) -> list[dict]:
    rows = []
    for path in sorted(fs.glob(f"{folder}*")):
        with fs.open(path, "r", encoding="utf-8") as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
    return rows


def read_output(fs, folder: str, columns: list[str] | None = None) -> pa.Table:
    paths = sorted(p for p in fs.glob(f"{folder}/*.parquet"))
    tables = []
    for p in paths:
        with fs.open(p, "rb") as fh:
            tables.append(pq.read_table(fh, columns=columns))
    if not tables:
        return pa.table({c: pa.array([], pa.string()) for c in (columns or [])})
    return pa.concat_tables(tables, promote_options="permissive")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _known(counts: dict[str, int]) -> dict[str, int]:
    """Counts without the null key, sorted by value."""
    return {k: n for k, n in sorted(counts.items()) if k != NULL}


def funnel_figures(funnel: dict[str, int]) -> dict:
    """Distinct offenders per stage and per (stage -> later stage), all years together."""
    if not funnel:
        return {}
    at, reached = {}, {}
    for key, n in funnel.items():
        start, _arrow, end = key.partition("->")
        if end == NULL:
            at[start] = n
        else:
            reached[key] = n
    return {"persons_at_stage": at, "persons_reaching": dict(sorted(reached.items()))}


def figures(summary: RunSummary) -> dict:
    """Per-agency record counts and reconciled unique persons: the run's headline figures."""
    per_agency: dict[str, dict] = {}
    for role in ("victim", "offender"):
        for agency, counts in sorted(((summary.records.get(role) or {}).get("agencies") or {}).items()):
            entry = per_agency.setdefault(agency, {})
            entry[role + "s"] = counts["records"]
            if role == "victim":
                entry["victims_by_child_adult"] = _known(counts.get("child_adult", {}))
                entry["victims_by_sex"] = _known(counts.get("sex", {}))
                entry["victims_age_unknown"] = counts["records"] - sum(entry["victims_by_child_adult"].values())
                entry["victims_by_nationality"] = _known(counts.get("nationality", {}))
            else:
                entry["offenders_by_stage"] = _known(counts.get("stage", {}))
                entry["offenders_detained"] = counts.get("detained", 0)
    unique = {}
    for role in ("victim", "offender"):
        persons = (summary.persons or {}).get(role) or {}
        unique[role + "s"] = {
            "persons": persons.get("persons", 0),
            "by_agency_combination": dict(sorted(_known(persons.get("combinations", {})).items(),
                                                 key=lambda kv: (-kv[1], kv[0]))),
            "by_nationality": _known(persons.get("nationality", {})),
            "by_child_adult": _known(persons.get("child_adult", {})),
        }
    return {"per_agency": per_agency, "reconciled_unique": unique, "offender_funnel": funnel_figures(summary.funnel)}


def volumes(summary: RunSummary) -> dict[str, dict[str, int]]:
    """Published records per feed and event year (what the next run's volume check compares with)."""
    out: dict[str, dict[str, int]] = {}
    for role in ("victim", "offender"):
        for feed, years in ((summary.records.get(role) or {}).get("volumes") or {}).items():
            for year, n in years.items():
                year = "unknown" if year == NULL else year
                out.setdefault(feed, {})[year] = out.get(feed, {}).get(year, 0) + n
    return out


def _mse_figures(fs, run_path: str) -> dict:
    from pipelines.estimate.pipeline_stage import read_manifest_entry

    return read_manifest_entry(fs, run_path)


def _sha256(fs, path: str) -> str:
    h = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def account(contracts: list[Contract], stats: list[dict], unmapped: list[dict], summary: RunSummary) -> dict[str, dict]:
    """The manifest's per-feed entries, after the accounting check: for every feed, rows read =
    harmonised + quarantined (else ``AccountingError``: nothing may publish)."""
    harmonised_by_feed: dict[str, int] = {}
    for role in ("victim", "offender"):
        for feed, n in ((summary.records.get(role) or {}).get("feeds") or {}).items():
            harmonised_by_feed[feed] = harmonised_by_feed.get(feed, 0) + n
    quarantined_by_feed = (summary.quarantine or {}).get("rows") or {}
    reasons_by_feed = (summary.quarantine or {}).get("reasons") or {}
    feeds: dict[str, dict] = {}
    problems = []
    for contract in contracts:
        files = sorted((s for s in stats if s["feed_id"] == contract.feed), key=lambda s: s["source_file"])
        read = sum(s["rows_read"] for s in files)
        harmonised = harmonised_by_feed.get(contract.feed, 0)
        q = quarantined_by_feed.get(contract.feed, 0)
        if read != harmonised + q:
            problems.append(f"{contract.feed}: read {read} != harmonised {harmonised} + quarantined {q}")
        feeds[contract.feed] = {
            **_feed_entry(contract, files), "rows_read": read, "rows_harmonised": harmonised, "rows_quarantined": q,
            "quarantine_reasons": dict(sorted((reasons_by_feed.get(contract.feed) or {}).items())),
            **_unmapped_entries([u for u in unmapped if u["feed_id"] == contract.feed], set(summary.name_words)),
            "assertion_failures": [_assertion_failure(a, harmonised) for a in contract.assertions
                                   if files and not a.holds(harmonised)],
        }
    if problems:
        raise AccountingError("row accounting failed: " + "; ".join(problems))
    return feeds


def check_written(summary: RunSummary, outputs: dict[str, dict]) -> None:
    """The rows the written files hold (their footers' counts) are the rows the job counted: a file
    lost or cut short after the job breaks rows read = harmonised + quarantined (``AccountingError``)."""
    counted = {f"harmonised/{role}s": sum(((summary.records.get(role) or {}).get("feeds") or {}).values())
               for role in ("victim", "offender")}
    counted["quarantine"] = (summary.quarantine or {}).get("total", 0)
    counted["persons"] = sum(p.get("persons", 0) for p in (summary.persons or {}).values())
    problems = [f"{folder} holds {outputs[folder]['rows']} rows, the job counted {n}"
                for folder, n in counted.items() if outputs.get(folder, {}).get("rows", 0) != n]
    if problems:
        raise AccountingError("row accounting failed (rows read = harmonised + quarantined no longer holds): "
                              + "; ".join(problems))


def _feed_entry(contract: Contract, files: list[dict]) -> dict:
    """A feed's contract and delivered files, as the manifest lists them."""
    return {
        "agency": contract.agency,
        "role": contract.role,
        "contract": {"path": Path(contract.path).name and posixpath.join(contract.agency.lower(), Path(contract.path).name),
                     "version": contract.version},
        "files": [{k: s.get(k) for k in ("source_file", "sha256", "bytes", "rows_read", "file_rejected",
                                         "unmapped_columns", "missing_columns", "verdict")} for s in files],
    }


def _unmapped_entries(rows: list[dict], name_tokens: set[str]) -> dict:
    """Unknown code values (a value that could be a name withheld) and kept rows' required warnings."""
    return {"unmapped_values": _public_unmapped([u for u in rows if "warning" not in u], name_tokens),
            "required_warnings": _required_warnings([u for u in rows if "warning" in u])}


def _assertion_failure(assertion: RowAssertion, rows: int) -> str:
    values = {"rows": rows, "name": assertion.name, "bound": assertion.bound, "severity": assertion.severity}
    return (_("harmonised rows %(rows)s < %(name)s %(bound)s (%(severity)s)") if assertion.name == "min_rows" else
            _("harmonised rows %(rows)s > %(name)s %(bound)s (%(severity)s)")) % values


ASSERTIONS_CHECK = "contract_assertions"


def assertion_checks(feeds: dict[str, dict], contracts: list[Contract]) -> list[dict]:
    """The contracts' row-count assertions as check entries of the manifest's validation, one per
    severity present (a failed blocking one blocks the publish, as a blocking suite or check does).
    A feed that delivered no file is the delivery check's business, not an assertion's."""
    by_severity: dict[str, dict] = {}
    for contract in contracts:
        feed = feeds.get(contract.feed) or {}
        for a in contract.assertions:
            entry = by_severity.setdefault(a.severity, {"observed": {}, "expected": {}, "failed": []})
            key = f"{contract.feed}:{a.name}"
            entry["observed"][key] = feed.get("rows_harmonised", 0)
            entry["expected"][key] = a.bound
            if feed.get("files") and not a.holds(feed.get("rows_harmonised", 0)):
                entry["failed"].append(f"{contract.feed}: {_assertion_failure(a, feed.get('rows_harmonised', 0))}")
    return [{"name": ASSERTIONS_CHECK if len(by_severity) == 1 else f"{ASSERTIONS_CHECK}_{severity}",
             "severity": severity, "status": "failed" if e["failed"] else "passed",
             "observed": e["observed"], "expected": e["expected"], "findings": len(e["failed"]),
             "detail": "; ".join(e["failed"]) or _("every feed's harmonised rows are within its contract's bounds")}
            for severity, e in sorted(by_severity.items())]


def list_outputs(fs, run_path: str) -> dict[str, dict]:
    """Every declared output folder's files with size and SHA-256, and its Parquet rows (from the
    files' footers): streamed, so the memory does not grow with the records."""
    outputs = {}
    for folder, zone in ZONES.items():
        paths = sorted(p for p in fs.glob(f"{run_path}/{folder}/*") if fs.isfile(p))
        outputs[folder] = {
            "zone": zone,
            "rows": sum(pq.ParquetFile(fs.open(p, "rb")).metadata.num_rows for p in paths if p.endswith(".parquet")),
            "files": [{"path": p[len(run_path) + 1:], "bytes": fs.size(p), "sha256": _sha256(fs, p)} for p in paths],
        }
    return outputs


def with_run_checks(validation: dict | None, feeds: dict[str, dict], contracts: list[Contract],
                    allow_missing=()) -> dict | None:
    """The validation block with the delivery check and the contract assertions added (None when
    the run was not validated and nothing of theirs failed, as before assertions were checks)."""
    delivery = verdicts.delivery_check(feeds, contracts, allow_missing)
    asserted = assertion_checks(feeds, contracts)
    failed = [c for c in (delivery, *asserted) if c["status"] == "failed"]
    if validation is None and not failed:
        return None
    validation = dict(validation or {"suites": {}, "checks": []})
    validation["checks"] = [*validation.get("checks", []), delivery, *asserted]
    validation["blocking_failed"] = bool(validation.get("blocking_failed")) or any(
        c["severity"] == "blocking" for c in failed)
    return validation


def build_manifest(run_id: str, started: dt.datetime, key: "PseudonymKey | None", feeds: dict, stats: list[dict],
                   summary: RunSummary, outputs: dict, mse: dict) -> dict:
    manifest = {
        "run_id": run_id,
        "started": started.isoformat(),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(),
        "code_version": pipelines.__version__,
        "git_commit": _git_commit(),
        "model_version": model.model_version(),
        "demo": bool(key and key.demo),  # pseudonyms made with the public demo key: not for real data
        "language": i18n.active(),  # of the human-readable outputs: the steward's report and the run summary
        "pseudonym_key": key.describe() if key else None,
        "feeds": feeds,
        "files_rejected": sum(1 for s in stats if s.get("file_rejected")),
        "figures": figures(summary),
        "outputs": outputs,
    }
    if mse:  # {"victims": {estimate, lower, upper, ...} or {"refused": reason}}: the steward's report reads it
        manifest["mse"] = mse
    return manifest


def blocked_reason(run_id: str, validation: dict) -> str:
    failed = [name for name, s in validation["suites"].items() if s["failed_blocking"]]
    failed += [c["name"] for c in validation.get("checks", []) if c["severity"] == "blocking" and c["status"] == "failed"]
    details = [c["detail"] for c in validation.get("checks", [])
               if c["name"] in (verdicts.CHECK_NAME, ASSERTIONS_CHECK, f"{ASSERTIONS_CHECK}_blocking")
               and c["status"] == "failed"]
    why = f" ({'; '.join(details)})" if details else ""
    return (f"run {run_id} blocked by failed blocking validation: {', '.join(failed)}{why} "
            f"(see runs/{run_id}/manifest.json)")


def write_verified(fs, run_path: str, run_id: str, manifest: dict) -> None:
    """Write the manifest once the folder holds exactly the listed outputs (``IncompleteOutput`` else)."""
    leftovers = complete_listing(fs, run_path, manifest["outputs"])
    if leftovers:  # e.g. a Beam temp folder whose final rename failed silently
        raise IncompleteOutput(f"run {run_id}: {len(leftovers)} file(s) not among the outputs, e.g. "
                               f"{leftovers[0]}; nothing was published")
    crash_point("before_manifest")
    with fs.open(f"{run_path}/manifest.json", "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, ensure_ascii=False, sort_keys=False)


def switch(out: str, fs, out_path: str, run_path: str, run_id: str, period: str | None) -> None:
    """Verify the written run, commit its Delta tables, then move the pointers to it."""
    problems = verify_run(fs, run_path)
    if problems:
        raise IncompleteOutput(f"run {run_id}: {problems[0]}; nothing was published")
    crash_point("after_manifest")
    try:  # the Delta tables query engines follow (OUT/tables/): committed only by a run that publishes
        delta.commit_run(out, f"{out.rstrip('/')}/runs/{run_id}", run_id, period)
    except delta.TablesError as exc:
        raise IncompleteOutput(f"run {run_id}: {exc}; nothing was published") from exc
    crash_point("after_tables")
    point_current(fs, out_path, run_id, period)


def finalise_run(out: str, run_id: str, contracts: list[Contract], started: dt.datetime,
                 key: "PseudonymKey | None" = None,
                 before_switch: "Callable[[str, dict, RunSummary], dict] | None" = None,
                 validation: dict | None = None, period: str | None = None, allow_missing=(),
                 summary: RunSummary | None = None) -> dict:
    """Check accounting, write the manifest, then switch ``current.json`` to this run.

    Reads the job's ``RunSummary`` (or ``summary``), the per-file stats and the files' hashes,
    never the tables: its memory does not grow with the records. The switch happens only once
    every file the manifest lists exists and nothing else is left in the run folder
    (``verify_run``); with ``period`` the period's pointer switches too.

    ``before_switch(run_dir, manifest, summary)`` runs last before the manifest is written (the
    steward's report); it returns extra ``outputs`` entries ({folder: {zone, rows, files}}) to record.

    Each delivered file carries its verdict (``pipelines.verdicts``); a rejected file, a failed
    blocking contract assertion (``min_rows``) or a required feed not delivered (unless in
    ``allow_missing``) blocks the run.
    """
    crash_point("before_finalise")
    fs, out_path = fsspec.core.url_to_fs(out)
    run_path = f"{out_path.rstrip('/')}/runs/{run_id}"
    work = f"{run_path}/{WORK_DIR}"
    summary = summary if summary is not None else RunSummary.read(fs, work)
    stats = _read_jsonl(fs, f"{work}/stats")
    feeds = account(contracts, stats, _read_jsonl(fs, f"{work}/unmapped"), summary)
    summary.write(fs, run_path)
    outputs = list_outputs(fs, run_path)
    check_written(summary, outputs)
    fs.rm(work, recursive=True)
    manifest = build_manifest(run_id, started, key, feeds, stats, summary, outputs, _mse_figures(fs, run_path))
    validation = with_run_checks(validation, feeds, contracts, allow_missing)
    if allow_missing:
        manifest["allowed_missing"] = sorted(allow_missing)
    blocked = bool(validation and validation.get("blocking_failed"))
    if validation is not None:
        manifest["status"] = "blocked" if blocked else "published"
        validation = dict(validation)
        outputs.update(validation.pop("outputs", None) or {})  # the Data Docs files
        manifest["validation"] = validation
    if before_switch is not None:
        for folder, entry in before_switch(f"{out.rstrip('/')}/runs/{run_id}", manifest, summary).items():
            if folder in outputs:
                outputs[folder]["files"] += [f for f in entry["files"] if f not in outputs[folder]["files"]]
            else:
                outputs[folder] = entry
    if period is not None:
        manifest["period"] = period
    write_verified(fs, run_path, run_id, manifest)
    if blocked:
        raise ValidationBlocked(blocked_reason(run_id, validation))
    switch(out, fs, out_path, run_path, run_id, period)
    return manifest


def current_run_dir(out: str) -> str | None:
    """The run folder ``OUT/current.json`` names (the last published run), or None before the first."""
    fs, out_path = fsspec.core.url_to_fs(out)
    pointer = f"{out_path.rstrip('/')}/current.json"
    if not fs.exists(pointer):
        return None
    with fs.open(pointer, "r", encoding="utf-8") as fh:
        rel = json.load(fh).get("path")
    return f"{out.rstrip('/')}/{rel}" if rel else None


def _required_warnings(rows: list[dict]) -> dict[str, dict[str, int]]:
    """Rows kept although a field the contract requires with ``warn`` failed: field -> reason -> count."""
    out: dict[str, dict[str, int]] = {}
    for r in rows:
        reasons = out.setdefault(r["field"], {})
        reasons[r["warning"]] = reasons.get(r["warning"], 0) + r["count"]
    return {f: dict(sorted(v.items())) for f, v in sorted(out.items())}


def _public_unmapped(rows: list[dict], name_tokens: set[str]) -> list[dict]:
    """Code values no lookup knew. A value that could be a name or a number is withheld."""
    merged: dict[tuple[str, str], int] = {}
    for r in rows:
        key = (r["field"], r["value"])
        merged[key] = merged.get(key, 0) + r["count"]
    result = []
    for (field_name, value), count in sorted(merged.items()):
        words = (fold(pa.array([value])).to_pylist()[0] or "").split()
        looks_like_code = (len(value) <= 40 and sum(ch.isdigit() for ch in value) < 5
                           and not any(w in name_tokens for w in words))
        result.append({"field": field_name, "value": value if looks_like_code else "(withheld)", "count": count})
    return result


def point_current(fs, out_path: str, run_id: str, period: str | None = None) -> None:
    """Switch the pointers to a verified run: with ``period``, first record the version
    (``periods/<period>/versions/<run_id>.json``) and move ``periods/<period>/current.json`` (the
    period's commit point), then ``current.json`` (the latest published run of any period), and
    last record the publication (``published/<run_id>.json``)."""
    root = out_path.rstrip("/")
    pointer = {"run_id": run_id, "path": f"runs/{run_id}", "published": dt.datetime.now(dt.timezone.utc).isoformat()}
    if period is not None:
        pointer["period"] = period
        _replace_json(fs, f"{root}/periods/{period}/versions/{run_id}.json", pointer)
        _replace_json(fs, f"{root}/periods/{period}/current.json", pointer)
        crash_point("after_period_pointer")
    _replace_json(fs, f"{root}/current.json", pointer)
    _replace_json(fs, f"{root}/published/{run_id}.json", pointer)  # the record `concilia status` trusts


def was_published(fs, out_path: str, run_id: str) -> bool:
    """Whether the pointers ever switched to a run (a killed run may hold a manifest and never have)."""
    root = out_path.rstrip("/")
    return fs.exists(f"{root}/published/{run_id}.json") or any(
        (read_json(fs, p) or {}).get("run_id") == run_id
        for p in [f"{root}/current.json", *fs.glob(f"{root}/periods/*/current.json")])


def _replace_json(fs, path: str, obj: dict) -> None:
    """Atomically replace a small JSON file: write a uniquely named temporary, then move it over
    (a rename on local disk; on object stores the move is one atomic object write)."""
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    tmp = f"{posixpath.dirname(path)}/.{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp"
    with fs.open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2)
    fs.mv(tmp, path)


class IncompleteOutput(RuntimeError):
    """A run's folder does not hold exactly the files its manifest lists: it must not publish."""


def run_files(fs, run_path: str) -> list[str]:
    """Every file under a run folder, relative to it."""
    root = run_path.rstrip("/")
    return sorted(p[len(root) + 1:] for p in fs.find(root) if p.startswith(root + "/"))


TEMP_MARKERS = ("beam-temp", ".temp", WORK_DIR)  # path parts that only an unfinished write leaves


def complete_listing(fs, run_path: str, outputs: dict) -> list[str]:
    """List in ``outputs`` every file under a declared output folder that its entry does not name
    yet (e.g. a report's assets), and return what must block the publish: temporary files of an
    unfinished write, and files outside every declared folder."""
    leftovers = []
    for path in unlisted_files(fs, run_path, outputs):
        parts = path.split("/")
        folder = next((f for f in sorted(outputs, key=len, reverse=True) if path.startswith(f + "/")), None)
        if folder is None or any(p.startswith(TEMP_MARKERS) or p.endswith(".tmp") for p in parts):
            leftovers.append(path)
            continue
        full = f"{run_path.rstrip('/')}/{path}"
        outputs[folder]["files"].append({"path": path, "bytes": fs.size(full), "sha256": _sha256(fs, full)})
    return leftovers


def unlisted_files(fs, run_path: str, outputs: dict) -> list[str]:
    """Files in the run folder that no ``outputs`` entry lists (the manifest itself aside)."""
    listed = {f["path"] for entry in outputs.values() for f in entry["files"]}
    return [p for p in run_files(fs, run_path) if p not in listed and p != "manifest.json"]


def verify_run(fs, run_path: str) -> list[str]:
    """Problems that make a run folder unfit to publish: no readable manifest, a listed file
    missing or of another size, or a file left that the manifest does not list. [] when sound."""
    try:
        with fs.open(f"{run_path.rstrip('/')}/manifest.json", "r", encoding="utf-8") as fh:
            manifest = json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError):
        return ["no complete manifest.json"]
    problems = []
    present = set(run_files(fs, run_path))
    for entry in manifest.get("outputs", {}).values():
        for f in entry["files"]:
            if f["path"] not in present:
                problems.append(f"listed output {f['path']} is missing")
            elif fs.size(f"{run_path.rstrip('/')}/{f['path']}") != f["bytes"]:
                problems.append(f"listed output {f['path']} has another size than the manifest says")
    problems += [f"unlisted file {p}" for p in unlisted_files(fs, run_path, manifest.get("outputs", {}))]
    return problems


CRASH_ENV = "CONCILIA_TEST_PAUSE_AT"
CRASH_FILE_ENV = "CONCILIA_TEST_PAUSE_FILE"


def crash_point(step: str) -> None:
    """Test-only hook for the crash-safety tests (docs/service.md): when $CONCILIA_TEST_PAUSE_AT
    names this step, write the step to $CONCILIA_TEST_PAUSE_FILE and stop here until the test
    kills the process. Inert unless that variable is set."""
    if os.environ.get(CRASH_ENV) != step:
        return
    log.warning("test hook: pausing at %s until killed", step)
    flag = os.environ.get(CRASH_FILE_ENV)
    if flag:
        Path(flag).write_text(step, encoding="utf-8")
    while True:
        time.sleep(60)
