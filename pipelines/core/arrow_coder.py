"""``ArrowTableCoder``: how Beam passes ``pa.Table`` elements between stages. Importing this module
registers it for every PCollection typed ``pa.Table``."""

from __future__ import annotations

import apache_beam as beam
import pyarrow as pa
import pyarrow.ipc as ipc

from pipelines.core.handoff import write_stream


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
