"""Validate stage: every Arrow batch of harmonised records (and the reconciled tables) through its GX suites.

``Validate`` is the stage's PTransform. Each batch is validated with the suites under
``expectations/`` that target its table (and its feed): rows failing a ``quarantine`` expectation
leave the batch as quarantine rows (reason ``expectation_failed``, field = the expectation's
name), so rows read = rows harmonised + rows quarantined still holds; the rest is counted. The
per-batch GX results leave the stage with the values of restricted fields (names, document
numbers, birth dates) already removed, and ``summarise`` merges them after the pipeline into the
manifest's ``validation`` block and Data Docs under ``reports/data_docs/``.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import posixpath
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from html import escape as html_escape
from pathlib import Path
from typing import Any, Iterator

import apache_beam as beam
import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import gx_suites, model, quarantine
from pipelines.contracts import Contract
from pipelines.core.handoff import Handoff, load_all
from pipelines.core.local_pool import PooledDoFn

log = logging.getLogger(__name__)

TAG_QUARANTINE = "quarantine"
TAG_RESULTS = "validation"
REASON = "expectation_failed"
WORK_FOLDER = "validation"  # under the run's _work/: per-batch results, folded by summarise()
DOCS_FOLDER = "reports/data_docs"
# a result keeps this many sample values of a public field; restricted fields keep none
SAMPLE_VALUES = 20
# every result key that can hold source values or row positions
_VALUE_KEYS = ("partial_unexpected_list", "partial_unexpected_counts", "unexpected_list",
               "partial_unexpected_index_list", "unexpected_index_list", "unexpected_index_query", "details")
_MAP_SUMS = ("element_count", "unexpected_count", "missing_count")


def restricted_columns() -> frozenset[str]:
    names: set[str] = set()
    for t in model.table_names():
        names.update(model.table(t).restricted_fields)
    return frozenset(names)


def run_suites(contracts: list[Contract], folder: str | None = None) -> dict[str, dict]:
    """The suites a run applies: the stored ones, plus a generated suite for a feed that has none
    (an extra contract given at run time gets the same rules as the shipped feeds)."""
    suites = gx_suites.load_suite_dicts(folder)
    covered = {s["meta"]["target"].get("feed") for s in suites.values()}
    for contract in contracts:
        if contract.feed not in covered:
            generated = gx_suites.feed_suite(contract)
            suites[generated["name"]] = generated
    return suites


def suites_for_table(suites: dict[str, dict], table: str) -> list[dict]:
    """Suites whose target is ``table`` (an output folder): per-feed suites first, then the table's."""
    chosen = [s for s in suites.values() if s["meta"]["target"].get("table") == table]
    return sorted(chosen, key=lambda s: (s["meta"]["target"].get("feed") is None, s["name"]))


def reporting_period(source_files: list[str], pattern: str, run_date: dt.date) -> tuple[dt.date, dt.date]:
    """The calendar years the delivered file names state; unknown: 1900-01-01 .. run date."""
    years = []
    for name in source_files:
        found = re.findall(pattern, posixpath.basename(name or ""))
        if found:
            years.append(int(found[-1]))
    if not years or len(years) < len(source_files):
        return dt.date(1900, 1, 1), run_date
    return dt.date(min(years), 1, 1), dt.date(max(years), 12, 31)


# --- GX, once per worker process -----------------------------------------------------------------

class _GX:
    """An ephemeral GX context with one pandas batch definition; suites built from their JSON."""

    _instance: "_GX | None" = None

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        for noisy in ("great_expectations", "great_expectations.core", "great_expectations.expectations"):
            logging.getLogger(noisy).setLevel(logging.ERROR)
        self.gx = gx
        self.context = gx.get_context(mode="ephemeral", project_config=DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),
            progress_bars=ProgressBarsConfig(globally=False), analytics_enabled=False))
        self.batch_definition = (self.context.data_sources.add_pandas("concilia")
                                 .add_dataframe_asset("batch").add_batch_definition_whole_dataframe("whole"))
        self._suites: dict[str, Any] = {}

    @classmethod
    def get(cls) -> "_GX":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def suite(self, data: dict):
        key = json.dumps(data, sort_keys=True)
        if key not in self._suites:
            suite = self.gx.ExpectationSuite(**{k: v for k, v in data.items() if k in ("name", "expectations", "meta", "notes")})
            if len(suite.expectations) != len(data["expectations"]):
                raise ValueError(f"suite {data['name']}: GX kept {len(suite.expectations)} of "
                                 f"{len(data['expectations'])} expectations")
            self._suites[key] = suite
        return self._suites[key]

    def validate(self, df, suite_data: dict, parameters: dict) -> dict:
        batch = self.batch_definition.get_batch(batch_parameters={"dataframe": df})
        result = batch.validate(self.suite(suite_data), result_format={"result_format": "COMPLETE"},
                                expectation_parameters=parameters)
        return result.to_json_dict()


# --- one batch ------------------------------------------------------------------------------------

@dataclass
class BatchOutcome:
    """A batch's validation: what it quarantines and why, not the batch itself (a worker process
    need not send back the batch its caller holds: ``kept_of``)."""

    quarantined: pa.Table
    results: list[dict] = field(default_factory=list)  # one per suite, values of restricted fields removed
    bad: pa.Array | None = None  # the rows quarantined (None: none)

    def kept_of(self, table: pa.Table) -> pa.Table:
        """The rows of ``table`` (the batch validated) that were kept."""
        return table if self.bad is None else table.filter(pc.invert(self.bad))


def mask_result(result: dict, restricted: frozenset[str]) -> dict:
    """Drop row positions and unexpected-value lists; keep public samples, none of restricted fields."""
    out = dict(result)
    out["result"] = dict(result.get("result") or {})
    kwargs = (result.get("expectation_config") or {}).get("kwargs") or {}
    columns = {kwargs.get("column"), kwargs.get("column_A"), kwargs.get("column_B"), *(kwargs.get("column_list") or [])}
    private = bool(columns & restricted)
    for key in _VALUE_KEYS:
        if key in out["result"]:
            if not private and key in ("partial_unexpected_list", "partial_unexpected_counts"):
                out["result"][key] = out["result"][key][:SAMPLE_VALUES]
            else:
                del out["result"][key]
    if private:
        if "observed_value" in out["result"]:
            del out["result"]["observed_value"]
        out["result"]["partial_unexpected_list"] = []
        out["result"]["partial_unexpected_counts"] = []
        out["meta"] = {**(result.get("meta") or {}), "masked": "restricted field: unexpected values withheld"}
    return out


def with_derived(table: pa.Table, derived: dict[str, dict]) -> pa.Table:
    """Validation-only columns a suite declares in ``meta.derived_columns`` (never published)."""
    for name, spec in derived.items():
        parts = [table.column(c).cast(pa.string()) for c in spec["join"]]
        table = table.append_column(name, pc.binary_join_element_wise(*parts, spec.get("separator", "")))
    return table


def _meta(result: dict) -> dict:
    return (result.get("expectation_config") or {}).get("meta") or {}


def columns_read(suites: list[dict]) -> set[str]:
    """Every column the suites' expectations name: their ``column``, ``column_A``/``column_B`` and
    ``column_list`` arguments and the columns of their row conditions."""
    found: set[str] = set()

    def walk(value, key=None) -> None:
        if isinstance(value, dict):
            if key == "column" and isinstance(value.get("name"), str):
                found.add(value["name"])
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, list):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and key in ("column", "column_A", "column_B", "column_list"):
            found.add(value)

    for suite in suites:
        for expectation in suite["expectations"]:
            walk(expectation.get("kwargs") or {})
    return found


def _as_gx_sees_it(table: pa.Table) -> pa.Table:
    """List columns as their values joined by "|" (a null list stays null). GX fingerprints a batch
    by pickling the frame, and a column of lists makes that a copy of every cell (at 1M persons,
    +1 GB); the suites test list columns for nulls only, which the joined text keeps."""
    for i, f in enumerate(table.schema):
        if pa.types.is_list(f.type) or pa.types.is_large_list(f.type):
            table = table.set_column(i, f.name, pc.binary_join(table.column(i).cast(pa.list_(pa.string())), "|"))
    return table


def validate_table(table: pa.Table, suites: list[dict], run_date: dt.date, *, quarantine_rows: bool = True,
                   restricted: frozenset[str] | None = None) -> BatchOutcome:
    """Validate one Arrow batch with ``suites``; pure apart from GX (the DoFn and the tests call it)."""
    restricted = restricted_columns() if restricted is None else restricted
    feed_ids = pc.unique(table.column("feed_id")).to_pylist() if "feed_id" in table.column_names else []
    applicable = [s for s in suites if s["meta"]["target"].get("feed") in (None, *feed_ids)]
    if not applicable or not table.num_rows:
        return BatchOutcome(quarantine.empty(), [])
    engine = _GX.get()
    derived: dict[str, dict] = {}
    for suite in applicable:
        derived.update(suite["meta"].get("derived_columns") or {})
    checked = with_derived(table, derived)
    restricted = restricted | {name for name, spec in derived.items() if set(spec["join"]) & restricted}
    source_files = pc.unique(table.column("source_file")).to_pylist() if "source_file" in table.column_names else []
    n = table.num_rows
    bad = pa.array([False] * n)
    reason_field = pa.nulls(n, pa.string())
    detail = pa.nulls(n, pa.string())
    results = []
    for suite in applicable:
        start, end = reporting_period(source_files, suite["meta"].get("reporting_period_from_file", r"$^"), run_date)
        parameters = {"run_date": run_date, "period_start": start, "period_end": end}
        started = time.perf_counter()
        # GX sees only the columns this suite reads: the pandas conversion, each row condition's
        # filter (a copy of every column of the frame) and GX's batch fingerprint (an md5 over every
        # cell, the whole frame pickled when a column holds lists) all cost per column; at 1M records
        # the whole table made validation a quarter of the run
        wanted = columns_read([suite])
        df = _as_gx_sees_it(checked.select([c for c in checked.column_names if c in wanted])).to_pandas()
        raw = engine.validate(df, suite, parameters)
        seconds = time.perf_counter() - started
        quarantined_by: dict[str, int] = {}
        for res in raw["results"]:
            meta = _meta(res)
            rows = (res.get("result") or {}).get("unexpected_index_list") or []
            if not (quarantine_rows and meta.get("row_action") == gx_suites.QUARANTINE and rows):
                continue
            mask = pc.is_in(pa.array(range(n), pa.int64()), pa.array([int(r) for r in rows], pa.int64()))
            new = pc.and_(mask, pc.invert(bad))
            quarantined_by[meta["name"]] = pc.sum(new).as_py() or 0
            reason_field = pc.if_else(new, meta["name"], reason_field)
            text = (f"{suite['name']}: the row breaks {meta['name']} "
                    f"({res['expectation_config']['type']} on {res['expectation_config']['kwargs'].get('column')})")
            detail = pc.if_else(new, text, detail)
            bad = pc.or_(bad, mask)
        results.append({
            "suite": suite["name"],
            "target": suite["meta"]["target"],
            "rows": n,
            "seconds": round(seconds, 4),
            "source_files": source_files,
            "quarantined": quarantined_by,
            "gx": {**raw, "results": [mask_result(r, restricted) for r in raw["results"]]},
        })
    if not pc.any(bad).as_py():
        return BatchOutcome(quarantine.empty(), results)
    failed = table.filter(bad)
    rows = pa.Table.from_arrays(
        [
            failed.column("feed_id"), failed.column("agency"), failed.column("source_file"),
            failed.column("source_row"), failed.column("source_record_id"),
            pa.array([REASON] * failed.num_rows, pa.string()),
            reason_field.filter(bad), detail.filter(bad),
        ],
        schema=quarantine.schema(),
    )
    return BatchOutcome(rows, results, bad)


class ValidateFn(PooledDoFn):
    def __init__(self, suites: list[dict], run_date: dt.date, quarantine_rows: bool, processes: int = 1):
        super().__init__(processes)
        self._suites = suites
        self._run_date = run_date
        self._quarantine_rows = quarantine_rows

    def setup(self) -> None:
        if self._processes <= 1:
            _GX.get()  # the import and the context cost ~2 s: once per worker, not per batch

    def process(self, table: pa.Table, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        yield from self.run(functools.partial(validate_table, quarantine_rows=self._quarantine_rows),
                            (table, self._suites, self._run_date), window, timestamp, element=table)

    def outputs(self, outcome: BatchOutcome, table: pa.Table):
        kept = outcome.kept_of(table)
        if kept.num_rows:
            yield kept
        if outcome.quarantined.num_rows:
            yield beam.pvalue.TaggedOutput(TAG_QUARANTINE, outcome.quarantined)
        for result in outcome.results:
            yield beam.pvalue.TaggedOutput(TAG_RESULTS, json.dumps(result, default=str, ensure_ascii=False))


class Validate(beam.PTransform):
    """Arrow tables -> kept tables (main), quarantine tables and JSON results (tagged).

    ``combine=True`` validates the PCollection as one table (a person-level rule such as uniqueness
    must see them all), of only the columns the suites read: its kept output has those columns only.
    With a ``work`` folder the parts wait there (``pipelines.core.handoff``) until the stage that
    validates them, rather than in the runner's memory. Without ``combine``, batches are validated
    in ``processes`` processes of this machine at once (``pipelines.core.local_pool``).
    """

    def __init__(self, suites: list[dict], run_date: dt.date, *, quarantine_rows: bool = True,
                 combine: bool = False, work: str | None = None, processes: int = 1):
        super().__init__()
        self._processes = 1 if combine else processes  # one table: nothing to do at once
        self._suites = suites
        self._run_date = run_date
        self._quarantine_rows = quarantine_rows
        self._combine = combine
        self._handoff = Handoff(work)

    def expand(self, tables):
        if self._combine:
            # gathered on one worker, and held by the runner until it is: the columns read only
            # (at 1M records the persons' other columns, lists among them, were most of it)
            needed = columns_read(self._suites) | {"feed_id", "source_file"} | {
                c for suite in self._suites for spec in (suite["meta"].get("derived_columns") or {}).values()
                for c in spec["join"]}
            handoff = self._handoff
            tables = (
                tables
                | "ColumnsRead" >> beam.Map(lambda t: handoff.store(t.select([c for c in t.column_names if c in needed])))
                .with_output_types(handoff.type)
                | "AllBatches" >> beam.combiners.ToList()
                | "Concat" >> beam.FlatMap(lambda refs: [load_all(refs, "permissive")] if refs else [])
            )
        return tables | "Expectations" >> beam.ParDo(
            ValidateFn(self._suites, self._run_date, self._quarantine_rows, self._processes)).with_outputs(
            TAG_QUARANTINE, TAG_RESULTS, main="kept")


# --- after the pipeline: merge, Data Docs, manifest block -------------------------------------------

def _merge_result(parts: list[dict]) -> dict:
    """One expectation's results over several batches: counts summed, success recomputed."""
    first = parts[0]
    config = first["expectation_config"]
    merged = {**first, "result": dict(first.get("result") or {})}
    res = merged["result"]
    if any("unexpected_count" in (p.get("result") or {}) for p in parts):
        for key in _MAP_SUMS:
            res[key] = sum((p.get("result") or {}).get(key) or 0 for p in parts)
        nonmissing = res["element_count"] - res.get("missing_count", 0)
        res["unexpected_percent"] = 100.0 * res["unexpected_count"] / nonmissing if nonmissing else 0.0
        res["unexpected_percent_nonmissing"] = res["unexpected_percent"]
        res["unexpected_percent_total"] = 100.0 * res["unexpected_count"] / res["element_count"] if res["element_count"] else 0.0
        mostly = config["kwargs"].get("mostly", 1.0)
        per_batch_only = config["type"] == "expect_column_values_to_be_unique"
        share_ok = not nonmissing or (1 - res["unexpected_count"] / nonmissing) >= mostly - 1e-12
        merged["success"] = share_ok and (not per_batch_only or all(p["success"] for p in parts))
        if "partial_unexpected_list" in res:
            samples: list = []
            counts: dict[str, dict] = {}
            for p in parts:
                samples.extend((p.get("result") or {}).get("partial_unexpected_list") or [])
                for c in (p.get("result") or {}).get("partial_unexpected_counts") or []:
                    key = json.dumps(c["value"], default=str)
                    counts.setdefault(key, {"value": c["value"], "count": 0})["count"] += c["count"]
            res["partial_unexpected_list"] = samples[:SAMPLE_VALUES]
            res["partial_unexpected_counts"] = sorted(counts.values(), key=lambda c: -c["count"])[:SAMPLE_VALUES]
    else:
        failing = [p for p in parts if not p["success"]]
        merged["success"] = not failing
        if failing:
            merged["result"] = dict(failing[0].get("result") or {})
    merged["exception_info"] = next((p["exception_info"] for p in parts
                                     if (p.get("exception_info") or {}).get("raised_exception")), first.get("exception_info"))
    return merged


def merge_batches(batches: list[dict], run_id: str) -> dict:
    """Per-batch results of one suite -> one GX suite validation result (as a JSON dict)."""
    width = len(batches[0]["gx"]["results"])
    results = [_merge_result([b["gx"]["results"][i] for b in batches]) for i in range(width)]
    ok = sum(1 for r in results if r["success"])
    target = batches[0]["target"]
    return {
        "success": ok == len(results),
        "results": results,
        "suite_name": batches[0]["suite"],
        "suite_parameters": {},
        "statistics": {"evaluated_expectations": len(results), "successful_expectations": ok,
                       "unsuccessful_expectations": len(results) - ok,
                       "success_percent": 100.0 * ok / len(results) if results else 100.0},
        "meta": {
            "great_expectations_version": batches[0]["gx"].get("meta", {}).get("great_expectations_version"),
            "run_id": {"run_name": run_id, "run_time": None},
            "batch_spec": {"batch_data": "Arrow batches of the run", "batches": len(batches)},
            "active_batch_definition": {"datasource_name": "concilia", "data_connector_name": "fluent",
                                        "data_asset_name": target.get("feed") or target.get("table"),
                                        "batch_identifiers": {}},
            "rows": sum(b["rows"] for b in batches),
            "source_files": sorted({f for b in batches for f in b.get("source_files", [])}),
        },
    }


def _column(result: dict) -> str | None:
    kwargs = result["expectation_config"]["kwargs"]
    return kwargs.get("column") or kwargs.get("column_A")


def suite_summary(merged: dict, batches: list[dict], data_docs: str | None) -> dict:
    """The manifest's entry for one suite (the shape the steward report reads)."""
    rows = []
    quarantined: dict[str, int] = {}
    for b in batches:
        for name, count in b.get("quarantined", {}).items():
            quarantined[name] = quarantined.get(name, 0) + count
    for r in merged["results"]:
        meta = r["expectation_config"].get("meta") or {}
        rows.append({
            "expectation": r["expectation_config"]["type"],
            "name": meta.get("name"),
            "column": _column(r),
            "severity": meta.get("severity", gx_suites.BLOCKING),
            "row_action": meta.get("row_action", gx_suites.FLAG),
            "success": bool(r["success"]),
            "unexpected_count": (r.get("result") or {}).get("unexpected_count"),
            "quarantined": quarantined.get(meta.get("name"), 0),
        })
    target = batches[0]["target"]
    return {
        "target": target.get("feed") or target.get("table"),
        "success": all(r["success"] for r in rows),
        "evaluated": len(rows),
        "failed_blocking": sum(1 for r in rows if not r["success"] and r["severity"] == gx_suites.BLOCKING),
        "failed_warning": sum(1 for r in rows if not r["success"] and r["severity"] == gx_suites.WARNING),
        "rows": sum(b["rows"] for b in batches),
        "batches": len(batches),
        "gx_seconds": round(sum(b["seconds"] for b in batches), 3),
        "data_docs": data_docs,
        "results": rows,
    }


def build_data_docs(merged: dict[str, dict], suites: dict[str, dict], fs, run_path: str, run_id: str,
                    states: dict[str, str] | None = None) -> dict[str, str]:
    """Render the merged results with GX's SiteBuilder; returns suite -> page relative to the run dir.

    The pages are made to work offline (:func:`offline_page`): no script (GX's need jQuery and
    Bootstrap from CDNs), no GX images, each page headed by the suite's state in the word the
    steward's report and ``concilia status`` use (``states``), and a static index of the suites
    (GX's index is drawn by a CDN script: empty offline)."""
    from great_expectations.core.expectation_validation_result import expectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    engine = _GX()  # a fresh context: only this run's merged results end up in the site
    pages: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="concilia-docs-") as tmp:
        engine.context.add_data_docs_site("run", {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": tmp},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
        run_time = dt.datetime.now(dt.timezone.utc)
        for name, result in merged.items():
            engine.context.suites.add(engine.suite(suites[name]))
            loaded = expectationSuiteValidationResultSchema.load(
                {**result, "meta": {**result["meta"], "run_id": {"run_name": run_id, "run_time": run_time.isoformat()}}})
            key = ValidationResultIdentifier(ExpectationSuiteIdentifier(name=name),
                                             RunIdentifier(run_name=run_id, run_time=run_time), "all-batches")
            engine.context.validation_results_store.set(key, loaded)
        engine.context.build_data_docs(site_names=["run"])
        root = Path(tmp)
        for name in merged:
            found = sorted((root / "validations" / Path(*name.split("."))).glob("**/*.html"))
            if found:
                pages[name] = posixpath.join(DOCS_FOLDER, found[0].relative_to(root).as_posix())
        target = posixpath.join(run_path, DOCS_FOLDER)
        shutil.rmtree(root / "static" / "images", ignore_errors=True)  # GX's logos and walkthrough GIFs: 3.4 MB
        by_page = {(root / Path(page).relative_to(DOCS_FOLDER)).resolve(): name for name, page in pages.items()}
        for path in sorted(root.rglob("*.html")):
            name = by_page.get(path.resolve())
            banner = (f"Concilia run {run_id}, suite {name}: {(states or {}).get(name, 'not summarised')}. GX marks "
                      "every unmet expectation 'Failed'; its severity (blocking or warning) is in the steward's "
                      "report.") if name else None
            path.write_text(offline_page(path.read_text(encoding="utf-8"), banner), encoding="utf-8")
        (root / "index.html").write_text(_static_index(run_id, pages, states or {}), encoding="utf-8")
        for path in sorted(root.rglob("*")):
            if path.is_file():
                dest = posixpath.join(target, path.relative_to(root).as_posix())
                fs.makedirs(posixpath.dirname(dest), exist_ok=True)
                fs.put_file(str(path), dest)
    return pages


_REMOTE_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script>", re.I | re.S)
_REMOTE_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.I | re.S)


_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.I | re.S)
_GX_IMAGE = re.compile(r"<(?:img|link)\b[^>]*static/images/[^>]*>", re.I)


def offline_page(html: str, banner: str | None = None) -> str:
    """A Data Docs page that works from a folder with no network: remote assets dropped
    (:func:`without_remote_assets`), scripts dropped (they drive jQuery widgets whose library
    came from a CDN; the tables are static HTML), GX's images dropped, and ``banner`` on top."""
    html = _GX_IMAGE.sub("", _SCRIPT.sub("", without_remote_assets(html)))
    if banner:
        note = f'<p style="padding:.6em 1em;background:#fff3cd;margin:0">{html_escape(banner)}</p>'
        html = re.sub(r"<body([^>]*)>", lambda m: f"<body{m.group(1)}>{note}", html, count=1, flags=re.I)
    return html


def _static_index(run_id: str, pages: dict[str, str], states: dict[str, str]) -> str:
    rows = "".join(f'<li><a href="{html_escape(posixpath.relpath(page, DOCS_FOLDER))}">{html_escape(name)}</a>: '
                   f'{html_escape(states.get(name, "not summarised"))}</li>' for name, page in sorted(pages.items()))
    return without_remote_assets(
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Data Docs, run {html_escape(run_id)}</title>'
        f'</head><body><h1>Great Expectations Data Docs, run {html_escape(run_id)}</h1>'
        f"<p>One page per suite; the state of each is the steward's report's word (passed, warning, failed).</p>"
        f"<ul>{rows}</ul></body></html>")


def without_remote_assets(html: str) -> str:
    """GX's Data Docs pull CSS and JavaScript from public CDNs. Stewards open them offline, and a
    page about trafficking victims should not tell a CDN that it was opened: the remote assets
    are dropped (the tables are static HTML and stay readable) and a policy forbids any load."""
    html = _REMOTE_LINK.sub("", _REMOTE_SCRIPT.sub("", html))
    policy = ('<meta http-equiv="Content-Security-Policy" content="default-src \'self\' '
              '\'unsafe-inline\' data:; connect-src \'none\'">')
    return re.sub(r"<head([^>]*)>", lambda m: f"<head{m.group(1)}>{policy}", html, count=1, flags=re.I)


def read_batches(fs, run_path: str, work_dir: str) -> list[dict]:
    batches = []
    for path in sorted(fs.glob(f"{run_path}/{work_dir}/{WORK_FOLDER}*")):
        with fs.open(path, "r", encoding="utf-8") as fh:
            batches.extend(json.loads(line) for line in fh if line.strip())
    return batches


PASSED, WARNING, FAILED = "passed", "warning", "failed"  # the one word per state: report, Data Docs, status


def suite_state(summary: dict) -> str:
    """One suite in one word: failed (a blocking expectation failed), warning, passed."""
    return FAILED if summary.get("failed_blocking") else WARNING if summary.get("failed_warning") else PASSED


def overall_state(validation: dict | None) -> str | None:
    """A run's validation in one word: failed (a blocking expectation or check failed: not published),
    warning (only warning-level ones failed), passed; None when the run has no validation block."""
    if not validation:
        return None
    if validation.get("blocking_failed"):
        return FAILED
    warned = any(suite_state(s) != PASSED for s in validation.get("suites", {}).values()) or any(
        c.get("status") == FAILED for c in validation.get("checks", []))
    return WARNING if warned else PASSED


def summarise(out: str, run_id: str, suites: dict[str, dict], work_dir: str, *, data_docs: bool = True) -> dict:
    """Fold the run's per-batch results into the manifest's ``validation`` block and build Data Docs."""
    fs, out_path = fsspec.core.url_to_fs(out)
    run_path = f"{out_path.rstrip('/')}/runs/{run_id}"
    by_suite: dict[str, list[dict]] = {}
    for b in read_batches(fs, run_path, work_dir):
        by_suite.setdefault(b["suite"], []).append(b)
    merged = {name: merge_batches(batches, run_id) for name, batches in sorted(by_suite.items())}
    summaries = {name: suite_summary(merged[name], by_suite[name], None) for name in merged}
    started = time.perf_counter()
    pages = build_data_docs(merged, suites, fs, run_path, run_id, {n: suite_state(s) for n, s in summaries.items()}) \
        if data_docs and merged else {}
    docs_seconds = time.perf_counter() - started
    for name, page in pages.items():
        summaries[name]["data_docs"] = page
    docs_files = []
    for path in sorted(fs.find(f"{run_path}/{DOCS_FOLDER}")) if pages else []:
        digest = hashlib.sha256()
        with fs.open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        docs_files.append({"path": path[len(run_path) + 1:], "bytes": fs.size(path), "sha256": digest.hexdigest()})
    return {
        "suites": summaries,
        "checks": [],
        "blocking_failed": any(s["failed_blocking"] for s in summaries.values()),
        "data_docs": posixpath.join(DOCS_FOLDER, "index.html") if pages else None,
        "gx_seconds": round(sum(s["gx_seconds"] for s in summaries.values()), 3),
        "data_docs_seconds": round(docs_seconds, 3),
        # listed among the run's outputs by publish.finalise_run (and removed from this block there)
        "outputs": {DOCS_FOLDER: {"zone": "pseudonymised", "rows": 0, "files": docs_files}} if docs_files else {},
    }
