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


def empty() -> pa.Table:
    return schema().empty_table()
