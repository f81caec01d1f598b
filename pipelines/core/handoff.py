"""Tables handed from one stage of the job to a later one through files in the run's work folder.

The in-process runner (FnApiRunner) keeps a PCollection's elements in memory until the last stage
that reads it has run: the harmonised records until the persons are attached, the comparison rows
until they are partitioned, the partitioned blocks until they are compared, the compared pairs until
the model is trained. Handed off, those PCollections hold file names, and each stage reads its tables
back when it runs. On Dataflow the folder is on Cloud Storage (Beam's ``FileSystems`` writes any path
the job can write), where the service would otherwise shuffle the tables itself; either way the
results are the same.

A ``Handoff`` without a folder leaves the tables in the PCollection (tests, the linkage benchmark).
Files are Arrow IPC streams compressed with zstd (``ArrowTableCoder``'s encoding): they round-trip
every Arrow type exactly. They are never deleted by a reader (a retried bundle reads them again);
the finaliser removes the work folder with the run's other intermediate files.
"""

from __future__ import annotations

import posixpath
import uuid

import apache_beam as beam
import pyarrow as pa
import pyarrow.ipc as ipc
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

FOLDER = "handoff"  # under the run's work folder


def write_stream(sink, table: pa.Table) -> None:
    with ipc.new_stream(sink, table.schema, options=ipc.IpcWriteOptions(compression="zstd")) as writer:
        writer.write_table(table)


class ArrowTableCoder(beam.coders.Coder):
    """Arrow tables between stages as Arrow IPC streams compressed with zstd. A runner holds a
    stage's input encoded, and more than once (FnApiRunner: the grouped blocks, then their copy on
    the data channel); record tables are mostly short strings, which zstd makes about three times
    smaller, for about a second of CPU per 100k records' partitions. Pickling (Beam's fallback)
    copies the buffers as they are, and pickles each table again to estimate its size."""

    def encode(self, table: pa.Table) -> bytes:
        sink = pa.BufferOutputStream()
        write_stream(sink, table)
        return sink.getvalue().to_pybytes()

    def decode(self, encoded: bytes) -> pa.Table:
        return ipc.open_stream(pa.py_buffer(encoded)).read_all()

    def is_deterministic(self) -> bool:
        return False  # never a key

    def estimate_size(self, table: pa.Table) -> int:
        return table.nbytes  # the runner's size metrics, without encoding the table again

    def to_type_hint(self):
        return pa.Table


# PCollections typed pa.Table (records' comparison rows, partitions, scored pairs) use it
beam.coders.registry.register_coder(pa.Table, ArrowTableCoder)


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
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            write_stream(fh, table)
        return path

    @staticmethod
    def load(ref: pa.Table | str) -> pa.Table:
        """A table ``store`` returned: read back from its file, or as it is."""
        if isinstance(ref, pa.Table):
            return ref
        with FileSystems.open(ref, compression_type=CompressionTypes.UNCOMPRESSED) as fh:
            return ipc.open_stream(pa.py_buffer(fh.read())).read_all()


def load_all(refs, promote_options: str = "none") -> pa.Table:
    """The tables of several refs as one table (a partition's blocks from several inputs);
    ``promote_options`` as ``pa.concat_tables``'."""
    return pa.concat_tables([Handoff.load(r) for r in refs], promote_options=promote_options)
