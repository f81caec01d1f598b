"""Contract lookups: an agency's own codes -> canonical codes, compared after folding.

Agencies write the same code with varying case, accents and spacing ("Explotación  sexual"),
so keys and values are both folded before matching. A value the lookup does not know becomes
null and is counted, never guessed; a key mapped to None is known and deliberately null.
"""

from __future__ import annotations

from typing import Any, Mapping

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core import vector


def _output_type(values: list[Any]) -> pa.DataType:
    present = [v for v in values if v is not None]
    if not present:
        return pa.string()
    if all(isinstance(v, bool) for v in present):
        return pa.bool_()
    if all(isinstance(v, str) for v in present):
        return pa.string()
    raise ValueError("lookup values must be all strings or all booleans (None allowed)")


def _key_text(key: Any) -> str:
    if isinstance(key, bool):
        # PyYAML reads unquoted NO / SI-like keys (yes, no, on, off, true, false) as booleans
        raise ValueError("a lookup key was read as a boolean by YAML; quote it in the contract")
    if key is None:
        raise ValueError("a lookup key is null; quote it in the contract")
    return str(key)


def compile_lookup(mapping: Mapping[Any, Any]) -> tuple[pa.Array, pa.Array]:
    """(folded keys, values) arrays; two keys that fold alike must agree on their value."""
    keys = [_key_text(k) for k in mapping]
    values = list(mapping.values())
    typ = _output_type(values)
    folded = vector.fold_keys(keys)
    merged: dict[str, Any] = {}
    for k, v in zip(folded, values):
        if k is None:
            continue
        if k in merged and merged[k] != v:
            raise ValueError("two lookup keys fold to the same text but map to different values")
        merged[k] = v
    return pa.array(list(merged), pa.string()), pa.array(list(merged.values()), typ)


def apply_lookup(arr: pa.Array | pa.ChunkedArray, mapping: Mapping[Any, Any]) -> tuple[pa.Array, dict[str, int]]:
    """Map values through ``mapping``; return (mapped array, {unmapped value as delivered: count}).

    Output type: bool when every non-None value is a bool, else string.
    """
    keys, values = compile_lookup(mapping)
    cleaned = vector.clean(arr)
    folded = vector.map_unique_arrow(cleaned, vector.fold)
    idx = pc.index_in(folded, value_set=keys)
    mapped = pc.take(values, idx)
    unknown = pc.and_(pc.is_valid(cleaned), pc.is_null(idx))
    unmapped = vector.value_counts(cleaned.filter(unknown)) if pc.any(unknown).as_py() else {}
    return mapped, unmapped
