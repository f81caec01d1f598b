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
import posixpath
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import apache_beam as beam
import fsspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import pipelines
from pipelines import model
from pipelines.contracts import Contract
from pipelines.harmonise.vector import fold

if TYPE_CHECKING:
    from pipelines.privacy import PseudonymKey

log = logging.getLogger(__name__)

WORK_DIR = "_work"  # intermediate stats of a run; folded into the manifest, then removed
ZONES = {
    "harmonised/victims": "pseudonymised",
    "harmonised/offenders": "pseudonymised",
    "persons": "pseudonymised",
    "quarantine": "pseudonymised",
    "restricted/victims": "restricted",
    "restricted/offenders": "restricted",
    "public": "public",  # aggregate tables, small cells suppressed (pipelines.public)
}


class AccountingError(RuntimeError):
    """Rows read != rows harmonised + rows quarantined for some feed: the run must not publish."""


class WriteTables(beam.PTransform):
    """Arrow tables -> Parquet files under ``folder`` with one declared schema."""

    def __init__(self, folder: str, schema: pa.Schema):
        super().__init__()
        self._folder = folder
        self._schema = schema

    def expand(self, tables):
        schema = self._schema
        return (
            tables
            | "Conform" >> beam.Map(lambda t: t.select(schema.names).cast(schema))
            | "WriteParquet" >> beam.io.WriteToParquetBatched(
                posixpath.join(self._folder, "part"), schema=schema, codec="zstd", file_name_suffix=".parquet")
        )


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


def _counts(table: pa.Table, column: str) -> dict[str, int]:
    if not table.num_rows:
        return {}
    return {r["values"]: r["counts"] for r in pc.value_counts(table.column(column)).to_pylist() if r["values"] is not None}


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _figures(victims: pa.Table, offenders: pa.Table, persons: pa.Table) -> dict:
    """Per-agency record counts and reconciled unique persons: the run's headline figures."""
    per_agency: dict[str, dict] = {}
    for role, records in (("victims", victims), ("offenders", offenders)):
        for agency in sorted(_counts(records, "agency")):
            sub = records.filter(pc.equal(records.column("agency"), agency))
            entry = per_agency.setdefault(agency, {})
            entry[role] = sub.num_rows
            if role == "victims":
                entry["victims_by_child_adult"] = _counts(sub, "child_adult")
                entry["victims_by_sex"] = _counts(sub, "sex")
                entry["victims_age_unknown"] = sub.num_rows - sum(entry["victims_by_child_adult"].values())
                entry["victims_by_nationality"] = _counts(sub, "nationality")
            else:
                entry["offenders_by_stage"] = _counts(sub, "stage")
                entry["offenders_detained"] = int(pc.sum(pc.fill_null(sub.column("detained"), False)).as_py() or 0)
    unique = {}
    for role in ("victim", "offender"):
        sub = persons.filter(pc.equal(persons.column("role"), role)) if persons.num_rows else persons
        combos: dict[str, int] = {}
        if sub.num_rows:
            joined = pc.binary_join(sub.column("agencies"), "+")
            combos = dict(sorted(_counts(pa.table({"c": joined}), "c").items(), key=lambda kv: (-kv[1], kv[0])))
        unique[role + "s"] = {
            "persons": sub.num_rows,
            "by_agency_combination": combos,
            "by_nationality": _counts(sub, "nationality") if sub.num_rows else {},
            "by_child_adult": _counts(sub, "child_adult") if sub.num_rows else {},
        }
    return {"per_agency": per_agency, "reconciled_unique": unique}


def _sha256(fs, path: str) -> str:
    h = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def finalise_run(out: str, run_id: str, contracts: list[Contract], started: dt.datetime,
                 key: "PseudonymKey | None" = None) -> dict:
    """Check accounting, write the manifest, then switch ``current.json`` to this run."""
    fs, out_path = fsspec.core.url_to_fs(out)
    run_path = f"{out_path.rstrip('/')}/runs/{run_id}"
    stats = _read_jsonl(fs, f"{run_path}/{WORK_DIR}/stats")
    unmapped = _read_jsonl(fs, f"{run_path}/{WORK_DIR}/unmapped")

    victims = read_output(fs, f"{run_path}/harmonised/victims")
    offenders = read_output(fs, f"{run_path}/harmonised/offenders")
    persons = read_output(fs, f"{run_path}/persons")
    quarantined = read_output(fs, f"{run_path}/quarantine")

    harmonised_by_feed = _counts(victims, "feed_id")
    for feed, count in _counts(offenders, "feed_id").items():
        harmonised_by_feed[feed] = harmonised_by_feed.get(feed, 0) + count
    row_level = quarantined.filter(pc.is_valid(quarantined.column("source_row"))) if quarantined.num_rows else quarantined
    quarantined_by_feed = _counts(row_level, "feed_id")

    name_tokens = _name_tokens(fs, run_path)
    feeds: dict[str, dict] = {}
    problems = []
    for contract in contracts:
        files = sorted((s for s in stats if s["feed_id"] == contract.feed), key=lambda s: s["source_file"])
        read = sum(s["rows_read"] for s in files)
        harmonised = harmonised_by_feed.get(contract.feed, 0)
        q = quarantined_by_feed.get(contract.feed, 0)
        if read != harmonised + q:
            problems.append(f"{contract.feed}: read {read} != harmonised {harmonised} + quarantined {q}")
        reasons = _counts(row_level.filter(pc.equal(row_level.column("feed_id"), contract.feed)), "reason_code") \
            if row_level.num_rows else {}
        assertion_failures = []
        if files and harmonised < contract.min_rows:
            assertion_failures.append(f"harmonised rows {harmonised} < min_rows {contract.min_rows}")
        if contract.max_rows is not None and harmonised > contract.max_rows:
            assertion_failures.append(f"harmonised rows {harmonised} > max_rows {contract.max_rows}")
        feeds[contract.feed] = {
            "agency": contract.agency,
            "role": contract.role,
            "contract": {"path": Path(contract.path).name and posixpath.join(contract.agency.lower(), Path(contract.path).name),
                         "version": contract.version},
            "files": [
                {k: s[k] for k in ("source_file", "sha256", "bytes", "rows_read", "file_rejected",
                                   "unmapped_columns", "missing_columns")}
                for s in files
            ],
            "rows_read": read,
            "rows_harmonised": harmonised,
            "rows_quarantined": q,
            "quarantine_reasons": reasons,
            "unmapped_values": _public_unmapped([u for u in unmapped if u["feed_id"] == contract.feed], name_tokens),
            "assertion_failures": assertion_failures,
        }
    if problems:
        raise AccountingError("row accounting failed: " + "; ".join(problems))

    outputs = {}
    for folder, zone in ZONES.items():
        paths = sorted(p for p in fs.glob(f"{run_path}/{folder}/*") if fs.isfile(p))
        outputs[folder] = {
            "zone": zone,
            "rows": sum(pq.ParquetFile(fs.open(p, "rb")).metadata.num_rows for p in paths if p.endswith(".parquet")),
            "files": [{"path": p[len(run_path) + 1:], "bytes": fs.size(p), "sha256": _sha256(fs, p)} for p in paths],
        }
    fs.rm(f"{run_path}/{WORK_DIR}", recursive=True)
    manifest = {
        "run_id": run_id,
        "started": started.isoformat(),
        "finished": dt.datetime.now(dt.timezone.utc).isoformat(),
        "code_version": pipelines.__version__,
        "git_commit": _git_commit(),
        "model_version": model.model_version(),
        "demo": bool(key and key.demo),  # pseudonyms made with the public demo key: not for real data
        "pseudonym_key": key.describe() if key else None,
        "feeds": feeds,
        "files_rejected": sum(1 for s in stats if s.get("file_rejected")),
        "figures": _figures(victims, offenders, persons),
        "outputs": outputs,
    }
    with fs.open(f"{run_path}/manifest.json", "w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=2, ensure_ascii=False, sort_keys=False)
    point_current(fs, out_path, run_id)
    return manifest


def _name_tokens(fs, run_path: str) -> set[str]:
    """Words of every name in the run (restricted zone, in memory only) to screen published values."""
    tokens: set[str] = set()
    for role in ("victims", "offenders"):
        names = read_output(fs, f"{run_path}/restricted/{role}", ["given_names", "paternal_surname", "maternal_surname"])
        for column in names.columns:
            for value in pc.unique(fold(column.combine_chunks())).to_pylist():
                if value:
                    tokens.update(w for w in value.split() if len(w) >= 3)
    return tokens


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


def point_current(fs, out_path: str, run_id: str) -> None:
    """Atomically replace ``current.json`` (write a temporary object, then move it over)."""
    pointer = {"run_id": run_id, "path": f"runs/{run_id}", "published": dt.datetime.now(dt.timezone.utc).isoformat()}
    tmp = f"{out_path.rstrip('/')}/.current.json.tmp"
    with fs.open(tmp, "w", encoding="utf-8") as fh:
        json.dump(pointer, fh, indent=2)
    fs.mv(tmp, f"{out_path.rstrip('/')}/current.json")
