"""Array helpers the comparisons share (pipelines/link/comparisons.py, documents.py, aliases.py).

Pairs come as aligned left and right arrays (row i of each is pair i), strings dictionary-encoded
once per partition so that equality is a comparison of codes; string distances are computed only
where both sides are known and differ, once per distinct pair of values. Levels: the highest is
the strongest agreement, 0 disagreement, -1 (``NULL``) a side unknown.
"""

from __future__ import annotations

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
    return pc.fill_null(arr.indices, -1).to_numpy(zero_copy_only=False)


def _eq(a: pa.Array, b: pa.Array) -> np.ndarray:
    """Element-wise equality; a null on either side is not equal."""
    if pa.types.is_dictionary(a.type) and pa.types.is_dictionary(b.type) and a.dictionary.equals(b.dictionary):
        ca, cb = _codes(a), _codes(b)
        return (ca == cb) & (ca >= 0)
    return pc.fill_null(pc.equal(decode(a), decode(b)), False).to_numpy(zero_copy_only=False)


def _derived(arr: pa.Array, fn) -> pa.Array:
    """fn applied to each value; on a dictionary array, to each distinct value only."""
    if pa.types.is_dictionary(arr.type):
        return pc.take(fn(arr.dictionary), arr.indices)
    return fn(arr)


def _py(arr: pa.Array) -> np.ndarray:
    """Strings as a numpy object array for rapidfuzz ("" for null: masked by the caller)."""
    return pc.fill_null(decode(arr).cast(pa.string()), "").to_numpy(zero_copy_only=False)


def _prefix(arr: pa.Array, n: int) -> pa.Array:
    return _derived(arr, lambda a: pc.utf8_slice_codeunits(a, 0, n))


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
    if pa.types.is_dictionary(a.type) and pa.types.is_dictionary(b.type) and a.dictionary.equals(b.dictionary):
        ca, cb = _codes(a)[rows].astype(np.int64), _codes(b)[rows].astype(np.int64)
        distinct, inverse = np.unique(ca * len(a.dictionary) + cb, return_inverse=True)
        words = _py(a.dictionary)
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
        count = lambda x: pc.fill_null(decode(_derived(x, lambda v: pc.count_substring(v, " "))), 0).to_numpy(
            zero_copy_only=False)
        wa, wb = count(a)[rows], count(b)[rows]
        fewer_a, fewer_b = rows[wa < wb], rows[wb < wa]
        out[fewer_a] = _words_within(a, b, fewer_a)
        out[fewer_b] = _words_within(b, a, fewer_b)
    return out
