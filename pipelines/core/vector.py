"""Vectorised building blocks shared by the normalisers, the linkage and the pseudonyms.

Feeds run to millions of rows but few distinct values (a name column repeats, a code column
has a handful of values). Anything needing per-value Python (check digits, name splitting) is
applied to the distinct values only and taken back to row order: ``map_unique`` and friends.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

ArrayLike = pa.Array | pa.ChunkedArray

# Placeholders agencies write for "no value". Compared after trimming, case-insensitively.
NULL_TOKENS = ("", "NULL", "-")


def as_array(arr: ArrayLike) -> pa.Array:
    """One contiguous, non-dictionary Array (normalisers work on plain arrays)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], arr.type)
    if not isinstance(arr, pa.Array):
        arr = pa.array(arr)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def as_string(arr: ArrayLike) -> pa.Array:
    """The values as a string array: JSONL feeds deliver numbers where CSV feeds deliver text.

    Floats that hold whole numbers ("17.0", an Excel artefact) become "17".
    """
    arr = as_array(arr)
    t = arr.type
    if pa.types.is_string(t):
        return arr
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return arr.cast(pa.string())
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    if pa.types.is_floating(t):
        whole = pc.fill_null(pc.equal(pc.floor(arr), arr), False)
        as_int = pc.if_else(whole, arr, pa.scalar(None, t)).cast(pa.int64(), safe=False)
        return pc.if_else(whole, as_int.cast(pa.string()), arr.cast(pa.string()))
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return arr.cast(pa.string())
    return arr.cast(pa.string())


def clean(arr: ArrayLike) -> pa.Array:
    """Trimmed strings; empty, whitespace-only, "NULL" and "-" become null.

    Agencies mark "no value" in several ways; downstream only one (null) should exist.
    """
    s = pc.utf8_trim_whitespace(as_string(arr))
    is_token = pc.is_in(pc.utf8_upper(s), value_set=pa.array(NULL_TOKENS, pa.string()))
    return pc.if_else(pc.fill_null(is_token, False), pa.scalar(None, pa.string()), s)


def collapse_spaces(arr: ArrayLike) -> pa.Array:
    """Runs of whitespace become one space; leading and trailing whitespace removed."""
    s = pc.replace_substring_regex(as_string(arr), r"\s+", " ")
    return pc.utf8_trim_whitespace(s)


def strip_accents(arr: ArrayLike) -> pa.Array:
    """Remove diacritics (NFKD, drop combining marks): "MARÍA" -> "MARIA", "Ñ" -> "N"."""
    s = pc.utf8_normalize(as_string(arr), "NFKD")
    return pc.replace_substring_regex(s, r"\p{M}+", "")


def fold(arr: ArrayLike) -> pa.Array:
    """Matching key: upper case, no accents (Ñ -> N), punctuation except hyphen removed, spaces collapsed.

    Used to compare agency text with lookup keys ("Explotación  sexual" == "EXPLOTACION SEXUAL").
    Never for display: names keep their accents (see names.normalise_name_part).
    """
    s = as_string(arr)
    s = pc.replace_substring_regex(s, r"[°º]", " ")  # NFKD would turn "º" into a letter "o"
    s = pc.replace_substring_regex(s, r"['’´`]", "")  # O'BRIEN -> OBRIEN, not O BRIEN
    s = pc.utf8_upper(strip_accents(s))
    s = pc.replace_substring_regex(s, r"[^\p{L}\p{N}\s-]", " ")
    return collapse_spaces(s)


def _unique_and_indices(arr: pa.Array) -> tuple[pa.Array, pa.Array]:
    encoded = pc.dictionary_encode(arr)
    return encoded.dictionary, encoded.indices


def map_unique(arr: ArrayLike, fn: Callable[[Any], Any], out_type: pa.DataType) -> pa.Array:
    """Apply a per-value Python function to the distinct non-null values only; nulls stay null.

    ``fn`` receives Python values and returns a Python value of ``out_type`` (or None).
    """
    arr = as_array(arr)
    uniques, indices = _unique_and_indices(arr)
    mapped = pa.array([fn(v) for v in uniques.to_pylist()], type=out_type)
    return pc.take(mapped, indices)


def map_unique_many(
    arr: ArrayLike, fn: Callable[[Any], Sequence[Any]], out_types: Mapping[str, pa.DataType]
) -> pa.Table:
    """Like map_unique for a function returning a tuple: one output column per ``out_types`` entry.

    A null input gives nulls in every column.
    """
    arr = as_array(arr)
    uniques, indices = _unique_and_indices(arr)
    results = [fn(v) for v in uniques.to_pylist()]
    columns = []
    for i, (name, typ) in enumerate(out_types.items()):
        mapped = pa.array([r[i] if r is not None else None for r in results], type=typ)
        columns.append(pc.take(mapped, indices))
    return pa.table(columns, names=list(out_types))


def map_unique_arrow(arr: ArrayLike, fn: Callable[[pa.Array], pa.Array]) -> pa.Array:
    """Apply a vectorised Array -> Array function to the distinct values, then expand to rows.

    Worth it for chains of regex kernels over columns with heavy repetition.
    """
    arr = as_array(arr)
    uniques, indices = _unique_and_indices(arr)
    mapped = as_array(fn(uniques))
    if len(mapped) != len(uniques):
        raise ValueError("map_unique_arrow: the function changed the number of values")
    return pc.take(mapped, indices)


def lookup(arr: ArrayLike, keys: pa.Array, values: pa.Array) -> pa.Array:
    """Row-wise dictionary lookup: values[i] where arr == keys[i], null when absent."""
    arr = as_array(arr)
    idx = pc.index_in(arr, value_set=keys)
    return pc.take(values, idx)


def distinct_across(table: pa.Table, columns: Sequence[str]) -> pa.Array:
    """The distinct values of several columns of one type taken together (a pair table's record uids).

    Typed from the schema: a table decoded from an empty stream has no chunks to infer a type from.
    """
    chunks = [chunk for c in columns for chunk in table.column(c).chunks]
    return pc.unique(pa.chunked_array(chunks, type=table.schema.field(columns[0]).type))


def constant(value: Any, length: int, typ: pa.DataType) -> pa.Array:
    """An array repeating one value (null-safe)."""
    if value is None:
        return pa.nulls(length, typ)
    return pa.repeat(pa.scalar(value, typ), length)


def null_where(arr: ArrayLike, mask: ArrayLike) -> pa.Array:
    """Null out the rows where mask is true (a null mask keeps the value)."""
    arr = as_array(arr)
    return pc.if_else(pc.fill_null(as_array(mask), False), pa.scalar(None, arr.type), arr)


def problems_where(mask: ArrayLike, code: str) -> pa.Array:
    """A problems column: ``code`` where mask is true, null elsewhere."""
    m = pc.fill_null(as_array(mask), False)
    return pc.if_else(m, pa.scalar(code, pa.string()), pa.scalar(None, pa.string()))


def value_counts(arr: ArrayLike) -> dict[Any, int]:
    """Counts of the non-null values, as a plain dict (for unmapped-value reports)."""
    arr = as_array(arr)
    arr = arr.filter(pc.is_valid(arr))
    if len(arr) == 0:
        return {}
    return {row["values"]: row["counts"] for row in pc.value_counts(arr).to_pylist()}


def fold_keys(keys: Iterable[str]) -> list[str | None]:
    """Fold Python strings with exactly the kernel used on the data (one source of truth)."""
    return fold(pa.array(list(keys), pa.string())).to_pylist()
