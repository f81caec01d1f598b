"""Tables handed from one stage of the job to a later one through files in the run's work folder.

The in-process runner (FnApiRunner) keeps a PCollection's elements in memory until the last stage
that reads it has run: the harmonised records until the persons are attached, the comparison rows
until they are partitioned, the partitioned blocks until they are compared, the compared pairs until
the model is trained. Handed off, those PCollections hold file names, and each stage reads its tables
back when it runs. On Dataflow the folder is on Cloud Storage (fsspec writes any path the job can
write), where the service would otherwise shuffle the tables itself; either way the results are
the same. The module does not import Beam: processes that only read and write handed-off tables
(``pipelines.core.local_pool``'s workers) start without it.

A ``Handoff`` without a folder leaves the tables in the PCollection (tests, the linkage benchmark).
Files are Arrow IPC streams compressed with zstd (``pipelines.core.arrow_coder``'s encoding):
they round-trip every Arrow type exactly. They are never deleted by a reader (a retried bundle
reads them again); the finaliser removes the work folder with the run's other intermediate files.
"""

from __future__ import annotations

import functools
import posixpath
import uuid

import fsspec
import pyarrow as pa
import pyarrow.ipc as ipc

FOLDER = "handoff"  # under the run's work folder
SHARED_FILES = 4  # side-input files kept read (load_shared): a stage's readers use up to four


def write_stream(sink, table: pa.Table) -> None:
    with ipc.new_stream(sink, table.schema, options=ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)


class Handoff:
    """Where a stage leaves tables for a later one: files under ``folder`` (elements are their
    paths), or, without a folder, the PCollection itself (elements are the tables)."""

    def __init__(self, folder: str | None = None):
        self.folder = folder

    @property
    def type(self) -> type:
        """The elements' type hint: ``str`` (a path) or ``pa.Table``."""
        return pa.Table if self.folder is None else str

    def sub(self, name: str) -> "Handoff":
        return Handoff(None if self.folder is None else posixpath.join(self.folder, name))

    def store(self, table: pa.Table, name: str = "part") -> pa.Table | str:
        """The table itself without a folder; else the path of a new file that holds it."""
        if self.folder is None:
            return table
        path = posixpath.join(self.folder, f"{name}-{uuid.uuid4().hex}.arrow")
        fs, local = fsspec.core.url_to_fs(path)
        fs.makedirs(posixpath.dirname(local), exist_ok=True)
        with fs.open(local, "wb") as fh:
            write_stream(fh, table)
        return path

    def store_named(self, tables: dict[str, pa.Table]) -> dict[str, pa.Table | str]:
        """``store`` of each table of a dict (a step's several results read by later stages)."""
        return {name: self.store(table, name) for name, table in tables.items()}

    @staticmethod
    def load(ref: pa.Table | str) -> pa.Table:
        """A table ``store`` returned: read back from its file, or as it is."""
        if isinstance(ref, pa.Table):
            return ref
        with fsspec.open(ref, "rb") as fh:
            return ipc.open_stream(pa.py_buffer(fh.read())).read_all()


@functools.lru_cache(maxsize=SHARED_FILES)
def _read_shared(path: str) -> pa.Table:
    return Handoff.load(path)


def load_shared(ref: pa.Table | str) -> pa.Table:
    """``Handoff.load`` for a side input's table, which its reader needs for every element: the last
    few files read stay in memory for the next element (a file is never rewritten), so a million
    records' membership is read once per stage, not once per batch of records."""
    return _read_shared(ref) if isinstance(ref, str) else ref


def load_named(refs: dict[str, pa.Table | str]) -> dict[str, pa.Table]:
    """The tables ``Handoff.store_named`` returned the refs of (a side input's: ``load_shared``)."""
    return {name: load_shared(ref) for name, ref in refs.items()}


def load_all(refs, promote_options: str = "none") -> pa.Table:
    """The tables of several refs as one table (a partition's blocks from several inputs);
    ``promote_options`` as ``pa.concat_tables``'."""
    return pa.concat_tables([Handoff.load(r) for r in refs], promote_options=promote_options)
