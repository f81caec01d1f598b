"""Quarantine rows: what could not be harmonised, why, and where it came from.

A quarantine row never carries source values: a steward finds the row by file and row number.
"""

from __future__ import annotations

from typing import Iterable

import pyarrow as pa

from pipelines import model


def schema() -> pa.Schema:
    return model.table("quarantine").schema()


def rows_to_table(rows: Iterable[dict]) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=schema())


def from_columns(
    *, feed_id: str, agency: str, source_file: pa.Array, source_row: pa.Array,
    source_record_id: pa.Array, reason_code: str, field: str | None, detail: str,
) -> pa.Table:
    """Quarantine rows for many source rows sharing one reason (vectorised)."""
    n = len(source_row)
    return pa.Table.from_arrays(
        [
            pa.array([feed_id] * n, pa.string()),
            pa.array([agency] * n, pa.string()),
            source_file.cast(pa.string()),
            source_row.cast(pa.int64()),
            source_record_id.cast(pa.string()),
            pa.array([reason_code] * n, pa.string()),
            pa.array([field] * n, pa.string()),
            pa.array([detail] * n, pa.string()),
        ],
        schema=schema(),
    )


def empty() -> pa.Table:
    return schema().empty_table()
