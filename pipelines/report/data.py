"""Read what a run folder holds, for the report: the manifest, its summary, any Parquet output folder.

A folder that is absent is ``None`` (the report says "not available in this run"), which is not
the same as a folder that is present and empty (zero rows). A run's report is built from the
job's ``RunSummary``; ``summary_of`` computes the same summary from the tables of a run folder
(a report built by hand, after the run), with the same functions the job combines.
"""

from __future__ import annotations

import json
import posixpath

from typing import Callable, Iterator

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import aggregates
from pipelines.aggregates import Counts, RunSummary, TopRows, combine

ROLE_OF = {"victims": "victim", "offenders": "offender"}


class RunFolder:
    """One run folder (local path or fsspec URL)."""

    def __init__(self, run_dir: str):
        self.url = run_dir.rstrip("/")
        self.fs, self.path = fsspec.core.url_to_fs(self.url)
        self.path = self.path.rstrip("/")

    @property
    def run_id(self) -> str:
        return posixpath.basename(self.path)

    def exists(self, rel: str) -> bool:
        return self.fs.exists(posixpath.join(self.path, rel))

    def manifest(self) -> dict | None:
        path = posixpath.join(self.path, "manifest.json")
        if not self.fs.exists(path):
            return None
        with self.fs.open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)

    def table(self, folder: str, columns: list[str] | None = None,
              keep: Callable[[str], bool] | None = None) -> pa.Table | None:
        """All Parquet files of an output folder as one table; None when the run has no such folder.

        Files in role sub-folders (``review_queue/victims/``) are included, with a ``role`` column
        (victim, offender) when the files lack one. ``keep`` filters columns by name before reading.
        """
        base = posixpath.join(self.path, folder)
        paths = [(p, None) for p in sorted(self.fs.glob(posixpath.join(base, "*.parquet")))]
        paths += [(p, posixpath.basename(posixpath.dirname(p)))
                  for p in sorted(self.fs.glob(posixpath.join(base, "*", "*.parquet")))]
        if not paths:
            return None
        tables = []
        for p, sub in paths:
            with self.fs.open(p, "rb") as fh:
                names = pq.read_schema(fh).names
            wanted = [c for c in names if (columns is None or c in columns) and (keep is None or keep(c))]
            with self.fs.open(p, "rb") as fh:
                table = pq.read_table(fh, columns=wanted)
            if sub is not None and "role" not in table.column_names:
                table = table.append_column("role", pa.array([ROLE_OF.get(sub, sub)] * table.num_rows, pa.string()))
            tables.append(table)
        return pa.concat_tables(tables, promote_options="permissive")

    def batches(self, folder: str, columns: list[str], rows: int = 65536) -> Iterator[pa.Table]:
        """The folder's Parquet files as tables of at most ``rows`` rows (those of ``columns`` the
        files have), one at a time: reading a zone without holding it."""
        for p in sorted(self.fs.glob(posixpath.join(self.path, folder, "*.parquet"))):
            with self.fs.open(p, "rb") as fh:
                file = pq.ParquetFile(fh, buffer_size=1 << 20)  # pages as decoded, not whole column chunks
                wanted = [c for c in file.schema_arrow.names if c in columns]
                for batch in file.iter_batches(batch_size=rows, columns=wanted):
                    yield pa.Table.from_batches([batch])

    def write_text(self, rel: str, text: str) -> str:
        path = posixpath.join(self.path, rel)
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        with self.fs.open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path

    def url_of(self, rel: str) -> str:
        return posixpath.join(self.url, rel)


def summary_of(run: RunFolder, review_column_allowed: Callable[[str], bool], unknown: str) -> RunSummary:
    """The report's part of a ``RunSummary``, from a run folder's tables (what the job computes)."""
    summary = RunSummary()
    for folder, role in ROLE_OF.items():
        records = run.table(f"harmonised/{folder}")
        if records is not None:
            summary.records[role] = combine(Counts(aggregates.record_counts(role)), records)
        review = run.table(f"review_queue/{folder}", keep=review_column_allowed)
        if review is not None:
            summary.review[role] = combine(Counts(aggregates.review_counts), review)
            summary.review_rows[role] = combine(TopRows(aggregates.TABLE_LIMIT, aggregates.REVIEW_ORDER,
                                                         aggregates.review_rows(role, review_column_allowed)), review)
        judged = run.table(f"judgements/{folder}")
        if judged is not None:
            summary.judgements[role] = combine(Counts(aggregates.judgement_counts), judged)
            summary.contradicted_judgements[role] = combine(TopRows(
                aggregates.TABLE_LIMIT, aggregates.JUDGEMENT_ORDER, aggregates.contradicted(role)), judged)
    summary.persons = combine(Counts(aggregates.person_counts), run.table("persons"))
    quarantined = run.table("quarantine")
    summary.quarantine = combine(Counts(aggregates.quarantine_counts), quarantined)
    summary.quarantined_files = combine(TopRows(aggregates.FILES_LIMIT, aggregates.FILE_ORDER,
                                                 aggregates.file_level_quarantine), quarantined) or []
    conflicts = run.table("conflicts")
    summary.conflicts = combine(Counts(aggregates.conflict_counts(unknown)), conflicts)
    summary.conflict_rows = combine(TopRows(aggregates.TABLE_LIMIT, aggregates.CONFLICT_ORDER,
                                             aggregates.with_conflict_kind(unknown)), conflicts) or []
    if conflicts is not None:
        summary.conflict_rows_by_kind = {kind: combine(TopRows(aggregates.TABLE_LIMIT, aggregates.CONFLICT_ORDER,
                                                                aggregates.with_conflict_kind(unknown, kind)), conflicts)
                                         for kind in aggregates.CONFLICT_KINDS}
    summary.lineage = combine(Counts(aggregates.lineage_counts), run.table("lineage"))
    summary.funnel = combine(Counts(aggregates.funnel_counts), run.table("funnel")) or {}
    summary.overlap = combine(Counts(aggregates.overlap_counts), run.table("overlap"))
    return summary
