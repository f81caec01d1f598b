"""Array helpers the comparisons share (pipelines/link/comparisons.py, documents.py, aliases.py).

Pairs come as aligned left and right arrays (row i of each is pair i), strings dictionary-encoded
once per partition so that equality is a comparison of codes; string distances are computed only
where both sides are known and differ, once per distinct pair of values. Levels: the highest is
the strongest agreement, 0 disagreement, -1 (``NULL``) a side unknown.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import process
from rapidfuzz.distance import JaroWinkler, OSA

NULL = -1


def encode_strings(table: pa.Table) -> pa.Table:
    """Dictionary-encode the string columns once per partition: gathering pairs then moves integer
    codes, not strings, and equality is a comparison of codes (left and right share a dictionary)."""
    table = table.combine_chunks()
    columns = [pc.dictionary_encode(c.combine_chunks()) if pa.types.is_string(c.type) else c.combine_chunks()
               for c in table.columns]
    return pa.Table.from_arrays(columns, names=table.column_names)


def decode(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    return arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _col(table: pa.Table, column: str) -> pa.Array:
    arr = table.column(column)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _valid(arr: pa.Array) -> np.ndarray:
    return pc.is_valid(arr).to_numpy(zero_copy_only=False)


def _codes(arr: pa.DictionaryArray) -> np.ndarray:
    indices = arr.indices
    return (indices if indices.null_count == 0 else pc.fill_null(indices, -1)).to_numpy(zero_copy_only=False)


def _identity(arr: pa.Array) -> tuple:
    """Where an array's values live: two arrays with the same identity hold the same values (Arrow
    buffers are immutable; the cache below holds the array, so its memory is not reused meanwhile)."""
    return (arr.type, arr.offset, len(arr), tuple(b.address if b is not None else 0 for b in arr.buffers()))


def _shared_dictionary(a: pa.Array, b: pa.Array) -> bool:
    """Both sides dictionary arrays on the same dictionary (the pairs of one partition are taken
    from one table: the same memory, so the values are not compared)."""
    if not (pa.types.is_dictionary(a.type) and pa.types.is_dictionary(b.type)):
        return False
    return _same_values(a.dictionary, b.dictionary)


def _same_values(a: pa.Array, b: pa.Array) -> bool:
    return _identity(a) == _identity(b) or a.equals(b)


_KEPT = threading.local()  # per thread: (results by values and function, open scopes)
_KEPT_ENTRIES = 256  # a slice of pairs reads some hundred (column, function) results


@contextmanager
def kept_per_value():
    """Within it, _per_value keeps its results; they are dropped when the outermost scope ends
    (compare() opens one per slice of pairs; a caller comparing chunks of the same records, as
    u_from_sample, opens one around them all). A partition's dictionaries do not outlive it."""
    if not getattr(_KEPT, "scopes", 0):
        _KEPT.results, _KEPT.scopes = OrderedDict(), 0
    _KEPT.scopes += 1
    try:
        yield
    finally:
        _KEPT.scopes -= 1
        if not _KEPT.scopes:
            _KEPT.results = OrderedDict()


def _per_value(values: pa.Array, key, fn: Callable[[pa.Array], object]):
    """fn(values), kept within kept_per_value() for the next call on the same values (the
    dictionary of a partition's column: every comparison derives from it again)."""
    if not getattr(_KEPT, "scopes", 0):
        return fn(values)
    results, ident = _KEPT.results, (key, _identity(values))
    hit = results.get(ident)
    if hit is None:
        hit = results[ident] = (values, fn(values))  # the values held: their memory stays theirs
        if len(results) > _KEPT_ENTRIES:
            results.popitem(last=False)
    else:
        results.move_to_end(ident)
    return hit[1]


def _eq(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Element-wise equality; a null on either side is not equal."""
    if _shared_dictionary(a, b):
        ca, cb = _codes(a), _codes(b)
        return (ca == cb) & (ca >= 0)
    return pc.fill_null(pc.equal(decode(a), decode(b)), False).to_numpy(zero_copy_only=False)


def _derived(arr: pa.Array, fn, key=None) -> pa.Array:
    """fn applied to each value; on a dictionary array, to each distinct value only (once per
    dictionary when ``key`` names what fn computes)."""
    if pa.types.is_dictionary(arr.type):
        values = fn(arr.dictionary) if key is None else _per_value(arr.dictionary, key, fn)
        return pc.take(values, arr.indices)
    return fn(arr)


def _per_row(arr: pa.Array, fn, key, default) -> np.ndarray:
    """fn's value (an Arrow array per value) of each row as numpy, ``default`` where the row or its
    value is null; on a dictionary array computed once per dictionary and gathered by code."""
    if pa.types.is_dictionary(arr.type):
        values = _per_value(arr.dictionary, ("numpy", key, default),
                            lambda d: pc.fill_null(fn(d), default).to_numpy(zero_copy_only=False))
        codes = _codes(arr)
        return np.where(codes >= 0, values[np.maximum(codes, 0)], default) if len(values) else np.full(len(arr), default)
    return pc.fill_null(fn(arr), default).to_numpy(zero_copy_only=False)


def _py(arr: pa.Array) -> np.ndarray:
    """Strings as a numpy object array for rapidfuzz ("" for null: masked by the caller)."""
    return pc.fill_null(decode(arr).cast(pa.string()), "").to_numpy(zero_copy_only=False)


def _spaces(arr: pa.Array, default: int) -> np.ndarray:
    """The spaces in each value (its words less one), ``default`` where null."""
    return _per_row(arr, lambda v: pc.count_substring(v, " "), "spaces", default)


def _initials(values: pa.Array) -> np.ndarray:
    """Each value's first character as its code point, 0 for an empty or null value (read from the
    UTF-8 bytes: no Python string per value)."""
    values = pc.fill_null(decode(values).cast(pa.large_string()), "")
    _, offsets, data = values.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)[values.offset:values.offset + len(values) + 1]
    if data is None or offsets[-1] == offsets[0]:
        return np.zeros(len(values), dtype=np.int64)
    data = np.concatenate([np.frombuffer(data, dtype=np.uint8), np.zeros(4, np.uint8)]).astype(np.int64)
    b0, b1, b2, b3 = (data[offsets[:-1] + k] for k in range(4))
    point = np.select([b0 < 0x80, b0 < 0xE0, b0 < 0xF0],
                      [b0, ((b0 & 0x1F) << 6) | (b1 & 0x3F), ((b0 & 0x0F) << 12) | ((b1 & 0x3F) << 6) | (b2 & 0x3F)],
                      ((b0 & 0x07) << 18) | ((b1 & 0x3F) << 12) | ((b2 & 0x3F) << 6) | (b3 & 0x3F))
    return np.where(offsets[1:] > offsets[:-1], point, 0)


def _prefix(arr: pa.Array, n: int) -> pa.Array:
    return _derived(arr, lambda a: pc.utf8_slice_codeunits(a, 0, n), key=("prefix", n))


def _differing(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Rows where both sides are known and not equal: the only ones worth a string distance."""
    return _valid(a) & _valid(b) & ~_eq(a, b)


def _distance(a: pa.Array, b: pa.Array, scorer, equal, unknown) -> np.ndarray:
    """A rapidfuzz scorer per pair, computed only where both are known and differ, and once per
    distinct pair of values where both sides share a dictionary (names repeat: QUISPE / MAMANI)."""
    result = np.where(_eq(a, b), equal, unknown).astype(np.float64)
    rows = np.nonzero(_differing(a, b))[0]
    if not len(rows):
        return result
    if _shared_dictionary(a, b):
        ca, cb = _codes(a)[rows].astype(np.int64), _codes(b)[rows].astype(np.int64)
        # distinct pairs by hashing, not sorting: np.unique's sort cost more than the scores it saved
        pairs = pa.array(ca * len(a.dictionary) + cb).dictionary_encode()
        distinct, inverse = pairs.dictionary.to_numpy(), pairs.indices.to_numpy()
        words = _per_value(a.dictionary, "py", _py)
        scores = process.cpdist(words[distinct // len(a.dictionary)], words[distinct % len(a.dictionary)],
                                scorer=scorer, workers=1)
        result[rows] = scores[inverse]
    else:
        take = pa.array(rows)
        result[rows] = process.cpdist(_py(pc.take(a, take)), _py(pc.take(b, take)), scorer=scorer, workers=1)
    return result


def _jaro_winkler(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Jaro-Winkler similarity per pair: 1 where equal, 0 where unknown (in blocked pairs most
    values agree, so computing it only where they differ skips most of the work)."""
    return _distance(a, b, JaroWinkler.normalized_similarity, 1.0, 0.0).astype(np.float32)


def _edits(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Optimal string alignment distance (edits and transpositions); 0 where equal, large where unknown."""
    return _distance(a, b, OSA.distance, 0, 1 << 20).astype(np.int64)


def _select(conditions: list[tuple[np.ndarray, int]], known: np.ndarray) -> np.ndarray:
    """First matching condition wins (conditions ordered strongest first); unknown -> -1."""
    levels = np.select([c for c, _ in conditions], [lvl for _, lvl in conditions], default=0).astype(np.int8)
    levels[~known] = NULL
    return levels


def _words_within(short: pa.Array, long: pa.Array, rows: np.ndarray) -> np.ndarray:
    """For ``rows``: whether every word of ``short`` is a word of ``long``."""
    if not len(rows):
        return np.zeros(0, dtype=bool)
    take = pa.array(rows)
    words = pc.split_pattern(decode(pc.take(short, take)), " ")
    parent = pc.list_parent_indices(words).to_numpy()
    flat = pc.list_flatten(words).to_numpy(zero_copy_only=False).astype(str)
    padded = np.char.add(np.char.add(" ", _py(pc.take(long, take)).astype(str)), " ")
    hit = np.char.find(padded[parent], np.char.add(np.char.add(" ", flat), " ")) >= 0
    return np.bincount(parent[~hit], minlength=len(rows)) == 0


def _word_subset(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Whether the words of the side with fewer words are all among the other's (a compound
    name shortened: KARMIN of KARMIN MARIA), for rows where both are known and differ."""
    out = np.zeros(len(a), dtype=bool)
    rows = np.nonzero(_differing(a, b))[0]
    if len(rows):
        wa, wb = _spaces(a, 0)[rows], _spaces(b, 0)[rows]
        fewer_a, fewer_b = rows[wa < wb], rows[wb < wa]
        out[fewer_a] = _words_within(a, b, fewer_a)
        out[fewer_b] = _words_within(b, a, fewer_b)
    return out
