"""Column paths into nested records: ``documento.numero``, ``documentos[].numero``, ``alias[]``.

A JSON Lines record's nested object or list reaches the engine as one JSON text in the column of
its top-level key (so does a CSV or XLSX cell holding JSON). A contract column that is not in the
raw table is read as a path: segments joined by ``.``; ``[]`` after a segment that holds a list
takes every element. A path through a list gives a list per row; one without gives one value.
Each distinct cell is parsed once. A cell that is not JSON, or lacks the key, gives null.
"""

from __future__ import annotations

import json

import pyarrow as pa

from pipelines.contracts import path_root
from pipelines.core import vector
from pipelines.read import json_text


def is_list_path(column: str) -> bool:
    return "[]" in column


def _segments(column: str) -> list[tuple[str, bool]]:
    """[(key, is_list)] after the root key; the root's own ``[]`` is the first entry's flag."""
    parts = column.split(".")
    return [(p.removesuffix("[]"), p.endswith("[]")) for p in parts]


def _text(value) -> str | None:
    text = json_text(value)
    return (text.strip() or None) if text is not None else None


def _walk(values: list, segments: list[tuple[str, bool]]) -> list:
    for key, many in segments:
        nxt = []
        for v in values:
            v = v.get(key) if isinstance(v, dict) and key else v
            if many:
                nxt.extend(v if isinstance(v, list) else ([] if v is None else [v]))
            else:
                nxt.append(v)
        values = nxt
    return values


def _resolver(column: str):
    segments = _segments(column)
    root_many = segments[0][1]
    rest = segments[1:]

    def resolve(cell: str):
        try:
            value = json.loads(cell)
        except (json.JSONDecodeError, RecursionError):
            value = cell if root_many else None  # a plain text cell under a list path is one element
        start = value if root_many and isinstance(value, list) else [value]
        return [_text(v) for v in _walk(start, rest)]

    return resolve


def resolve(table: pa.Table, column: str) -> pa.Array:
    """The values at ``column`` (a column name or a path): a string array, or for a path through a
    list a list<string> array (nulls of missing elements dropped)."""
    if column in table.column_names:
        return vector.clean(table.column(column))
    root = vector.clean(table.column(path_root(column)))
    resolve_cell = _resolver(column)
    if is_list_path(column):
        return vector.map_unique(root, lambda cell: [v for v in resolve_cell(cell) if v is not None],
                                 pa.list_(pa.string()))
    return vector.map_unique(root, lambda cell: (resolve_cell(cell) or [None])[0], pa.string())
