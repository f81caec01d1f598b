"""Read what a run folder holds, for the report: the manifest and any Parquet output folder.

A folder that is absent is ``None`` (the report says "not available in this run"), which is not
the same as a folder that is present and empty (zero rows).
"""

from __future__ import annotations

import json
import posixpath

from typing import Callable

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

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

    def write_text(self, rel: str, text: str) -> str:
        path = posixpath.join(self.path, rel)
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        with self.fs.open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
        return path

    def url_of(self, rel: str) -> str:
        return posixpath.join(self.url, rel)
