"""Delta Lake tables of the published runs: ``OUT/tables/<table>/``, what query engines follow.

A run folder is immutable and ``current.json`` names the latest one, but no query engine reads
``current.json``. So each published run also commits its pseudonymised tables to one Delta Lake
table per output (Parquet underneath, partitioned by ``run_period``): DuckDB, polars, pandas, Spark
and BigQuery (BigLake) read the current version from the table's log, and any earlier version by
number. A run of a period replaces that period's partition (a corrected 2018 replaces 2018 and
leaves 2019); a run without a period (``concilia run``) replaces the whole table. Every commit
carries the run id in its commit metadata, and the rows carry it in ``run_id``.

Commits happen in ``publish.finalise_run`` after the run folder verifies and before the pointers
move: every table's data files first, then the commits one table after another (Delta commits are
atomic per table, not across tables): if one fails, the tables this run already committed are
restored to their previous version and the files not committed removed, and a process killed in
between is settled by :func:`retract` when the service drops the interrupted run.
The restricted zone (names, documents) and the public CSV tables are not committed here.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Iterator

import fsspec
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from pipelines import model

log = logging.getLogger(__name__)

TABLES_DIR = "tables"
RUN_ID_KEY = "concilia.run_id"  # commit metadata: the run a version publishes
PERIOD_COLUMN = "run_period"  # partition column (mse estimates already have a "period" of their own)
RUN_ID_COLUMN = "run_id"
ALL_PERIODS = "all"  # run_period of a run that covers no single period
#: Delta table name -> (the run's output it is committed from: a folder or one file, its model table).
SOURCES = {
    "persons": ("persons", "person"),
    "harmonised_victims": ("harmonised/victims", "victim"),
    "harmonised_offenders": ("harmonised/offenders", "offender"),
    "quarantine": ("quarantine", "quarantine"),
    "conflicts": ("conflicts", "conflict"),
    "overlap": ("overlap", "overlap"),
    "funnel": ("funnel", "funnel"),
    "checks": ("checks", "check_finding"),
    "links_victims": ("links/victims", "link"),
    "links_offenders": ("links/offenders", "link"),
    "mse_estimates": ("mse/estimates.parquet", "mse_estimate"),
    "lineage": ("lineage", "lineage"),
    "judgements_victims": ("judgements/victims", "judgement"),
    "judgements_offenders": ("judgements/offenders", "judgement"),
}
#: The columns every Delta table adds to its run's files.
ADDED_FIELDS = (
    pa.field(PERIOD_COLUMN, pa.string(), nullable=False, metadata={model.DESCRIPTION: (
        "Reporting period of the run that published these rows ('all' for a run of no single period): "
        "the partition a corrected period replaces.")}),
    pa.field(RUN_ID_COLUMN, pa.string(), nullable=False, metadata={model.DESCRIPTION: (
        "The run that published these rows; OUT/runs/<run_id>/ holds its files, manifest and report.")}),
)
_DELTA_PROTOCOLS = {"file", "local", "gs", "gcs", "s3", "s3a", "az", "abfs", "abfss"}


def _model_schema(name: str) -> pa.Schema:
    model_table = SOURCES[name][1]
    if model_table == "link":  # one column pair per comparison of the linkage settings
        from pipelines.link.transform import links_schema

        return model.describe(links_schema(), model_table)
    return model.table(model_table).schema(include_restricted=False)


def declared_schema(name: str) -> pa.Schema:
    """The columns of Delta table ``name`` as the model declares them (``concilia docs``' consumer files)."""
    return _with_added(_model_schema(name))


class TablesError(RuntimeError):
    """A Delta table could not be committed; the tables this run committed were restored."""


def table_uri(out: str, name: str) -> str | None:
    """Where Delta Lake (object_store) finds table ``name`` under ``out``; None when the storage
    is one Delta cannot write (e.g. fsspec's memory://)."""
    protocol = out.split("://", 1)[0] if "://" in out else "file"
    if protocol not in _DELTA_PROTOCOLS:
        return None
    root = fsspec.core.url_to_fs(out)[1] if protocol in ("file", "local") else out
    return f"{root.rstrip('/')}/{TABLES_DIR}/{name}"


def _with_added(schema: pa.Schema) -> pa.Schema:
    """The table's columns, then the added ones it does not have already (lineage has a run_id)."""
    return pa.schema([*schema, *(f for f in ADDED_FIELDS if f.name not in schema.names)], metadata=schema.metadata)


#: Rows per batch streamed into a commit. The commit's memory is a few such batches whatever the
#: run's size: each file is read in turn, its pages as they are decoded (a dataset scanner reads
#: ahead of a slow consumer, and the run's files hold row groups of up to a million rows).
SCAN_ROWS = 16_384
ROW_GROUP_ROWS = 65_536  # rows per row group of the tables' files (the commit buffers one)


def _scan(dataset: pads.Dataset) -> Iterator[pa.RecordBatch]:
    if not isinstance(dataset, pads.FileSystemDataset):
        yield from dataset.to_batches()
        return
    names = dataset.schema.names
    for path in dataset.files:
        with dataset.filesystem.open_input_file(path) as fh:
            for batch in pq.ParquetFile(fh, buffer_size=1 << 20).iter_batches(batch_size=SCAN_ROWS, columns=names):
                yield pa.RecordBatch.from_arrays([batch.column(n) for n in names], schema=dataset.schema)


def _batches(dataset: pads.Dataset, schema: pa.Schema, run_id: str, period: str) -> Iterator[pa.RecordBatch]:
    values = {PERIOD_COLUMN: period, RUN_ID_COLUMN: run_id}
    for batch in _scan(dataset):
        added = [pa.array([values[f.name]] * batch.num_rows, pa.string()) for f in list(schema)[batch.num_columns:]]
        yield pa.RecordBatch.from_arrays([*batch.columns, *added], schema=schema)


def _source(run_dir: str, rel: str) -> pads.Dataset | None:
    fs, path = fsspec.core.url_to_fs(f"{run_dir.rstrip('/')}/{rel}")
    if rel.endswith(".parquet"):
        files = [path] if fs.exists(path) else []
    else:
        files = sorted(p for p in fs.glob(f"{path}/*.parquet"))
    return pads.dataset(files, format="parquet", filesystem=fs) if files else None


def committed_run(uri: str) -> str | None:
    """The run id of a Delta table's latest commit (None: no table, or not one of ours)."""
    from deltalake import DeltaTable

    if not DeltaTable.is_deltatable(uri):
        return None
    (latest,) = DeltaTable(uri).history(1)
    return latest.get(RUN_ID_KEY)


def _write_files(uri: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch], value: str) -> list:
    """The table's new data file under its partition folder, written batch by batch (delta-rs's
    writer gathers its whole input in memory first: delta-io/delta-rs#2255); its add action."""
    from deltalake.transaction import AddAction

    fs, root = fsspec.core.url_to_fs(uri)
    rel = f"{PERIOD_COLUMN}={value}/part-{uuid.uuid4().hex}.zstd.parquet"  # partition values are not stored
    data_schema = pa.schema([f for f in schema if f.name != PERIOD_COLUMN], metadata=schema.metadata)
    fs.makedirs(f"{root}/{PERIOD_COLUMN}={value}", exist_ok=True)
    pending: list[pa.RecordBatch] = []
    with fs.open(f"{root}/{rel}", "wb") as fh, pq.ParquetWriter(fh, data_schema, compression="zstd") as writer:
        for batch in batches:
            pending.append(batch.drop_columns([PERIOD_COLUMN]))
            if sum(b.num_rows for b in pending) >= ROW_GROUP_ROWS:
                writer.write_table(pa.Table.from_batches(pending, data_schema))
                pending = []
        writer.write_table(pa.Table.from_batches(pending, data_schema))
    footer = pq.read_metadata(fs.open(f"{root}/{rel}", "rb"))
    if not footer.num_rows:  # an empty version of the table: no file
        fs.rm(f"{root}/{rel}")
        return []
    return [AddAction(rel, fs.size(f"{root}/{rel}"), {PERIOD_COLUMN: value}, int(time.time() * 1000), True,
                      json.dumps(_stats(footer)))]


def _stats(footer: pq.FileMetaData) -> dict:
    """The add action's statistics: rows and null counts per column (engines count without reading)."""
    nulls: dict[str, int] = {}
    for g in range(footer.num_row_groups):
        group = footer.row_group(g)
        for c in range(group.num_columns):
            column = group.column(c)
            if "." not in column.path_in_schema and column.statistics is not None and column.statistics.has_null_count:
                nulls[column.path_in_schema] = nulls.get(column.path_in_schema, 0) + column.statistics.null_count
    return {"numRecords": footer.num_rows, "nullCount": nulls}


#: Tables whose data files are written at once: Parquet's reading and writing release the GIL, and
#: the run's largest tables take seconds each at a million records.
WRITER_THREADS = 2


@dataclass
class _Written:
    """One table's new data file(s), written but not yet committed."""

    name: str
    uri: str
    schema: pa.Schema
    actions: list
    meta: dict


def _write_table_files(uri: str, name: str, source: pads.Dataset, run_id: str, period: str | None) -> _Written:
    schema = _with_added(source.schema)
    value = period or ALL_PERIODS
    actions = _write_files(uri, schema, _batches(source, schema, run_id, value), value)
    return _Written(name, uri, schema, actions, source.schema.metadata or {})


def _commit_written(written: _Written, run_id: str, period: str | None) -> None:
    from deltalake import CommitProperties, DeltaTable, Schema
    from deltalake.transaction import create_table_with_add_actions

    uri, schema, actions, meta = written.uri, written.schema, written.actions, written.meta
    value = period or ALL_PERIODS
    commit = CommitProperties(custom_metadata={
        RUN_ID_KEY: run_id, "concilia.period": value,
        **{k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"concilia.") and
           k in (b"concilia.model_version", b"concilia.zone", b"concilia.demo")}})
    if not DeltaTable.is_deltatable(uri):
        create_table_with_add_actions(uri, Schema.from_arrow(schema), actions, mode="overwrite",
                                      partition_by=[PERIOD_COLUMN], name=written.name, commit_properties=commit,
                                      description=meta.get(b"concilia.description", b"").decode() or None)
        return
    # a period replaces its partition only; a run of no period replaces the whole table
    DeltaTable(uri).create_write_transaction(actions, "overwrite", schema, partition_by=[PERIOD_COLUMN],
                                             partition_filters=[(PERIOD_COLUMN, "=", value)] if period else None,
                                             commit_properties=commit)


def _discard(written: list[_Written]) -> None:
    """Data files written for commits that will not happen (no log names them: readers never see them)."""
    for w in written:
        fs, root = fsspec.core.url_to_fs(w.uri)
        for action in w.actions:
            fs.rm(f"{root}/{action.path}")


def commit_run(out: str, run_dir: str, run_id: str, period: str | None = None) -> dict[str, int]:
    """Commit a verified run's tables: {table: Delta version}. A table whose latest commit already
    carries ``run_id`` is left as it is (a retried finalise commits nothing twice). The tables'
    data files are written first (``WRITER_THREADS`` at once), then committed one after another.
    On a failure the tables committed by this call are restored, the data files not committed are
    removed, and :class:`TablesError` raised."""
    from deltalake import DeltaTable

    if table_uri(out, "x") is None:
        log.warning("tables/: Delta Lake cannot write to %s; no tables committed", out.split("://", 1)[0])
        return {}
    uris = {name: table_uri(out, name) for name in SOURCES}

    def write(name: str) -> _Written | None:
        try:
            if committed_run(uris[name]) == run_id:
                return None
            source = _source(run_dir, SOURCES[name][0])
            if source is None:  # the run wrote no such file: its version of the table is empty
                source = pads.dataset(_model_schema(name).empty_table())
            return _write_table_files(uris[name], name, source, run_id, period)
        except Exception as exc:
            raise TablesError(f"tables/{name}: {type(exc).__name__}: {exc}") from exc

    with concurrent.futures.ThreadPoolExecutor(WRITER_THREADS) as threads:
        futures = [threads.submit(write, name) for name in SOURCES]
    failed = next((f.exception() for f in futures if f.exception() is not None), None)
    written = [f.result() for f in futures if f.exception() is None and f.result() is not None]
    if failed is not None:
        _discard(written)
        raise failed
    committed: list[str] = []
    for i, w in enumerate(written):
        try:
            _commit_written(w, run_id, period)
        except Exception as exc:
            for done in committed:
                _restore_previous(done, run_id)
            _discard(written[i:])
            raise TablesError(f"tables/{w.name}: {type(exc).__name__}: {exc}") from exc
        committed.append(w.uri)
    log.info("run %s: committed %d Delta table(s) under %s/", run_id, len(committed), TABLES_DIR)
    return {name: DeltaTable(uris[name]).version() for name in SOURCES}


def _restore_previous(uri: str, run_id: str) -> None:
    from deltalake import CommitProperties, DeltaTable

    table = DeltaTable(uri)
    if table.history(1)[0].get(RUN_ID_KEY) != run_id:
        return
    if table.version() == 0:  # the run created the table: nothing earlier to show
        table.delete(commit_properties=CommitProperties(custom_metadata={RUN_ID_KEY: f"retracted {run_id}"}))
    else:
        table.restore(table.version() - 1,
                      commit_properties=CommitProperties(custom_metadata={RUN_ID_KEY: f"retracted {run_id}"}))


def retract(out: str, run_id: str) -> list[str]:
    """Undo the commits of a run that did not publish (a process killed between the commits and the
    pointer switch): every table whose latest commit carries ``run_id`` goes back one version."""
    retracted = []
    for name in SOURCES:
        uri = table_uri(out, name)
        if uri is not None and committed_run(uri) == run_id:
            _restore_previous(uri, run_id)
            retracted.append(name)
    return retracted
