"""Name words spelled by sound, for the comparison table (prepare.py) and offenders' aliases
(aliases.py): folded names' mojibake repaired, words sorted (order-free), and each word's phonetic
spelling (schemas/linkage/phonetic.yaml: QUISPE, QISPE, KISPE -> KISPI) with particles left out.
"""

from __future__ import annotations

import functools
import string

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from pipelines.core.vector import map_unique
from pipelines.resources import schemas_dir


def _null_if_empty(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.fill_null(pc.equal(pc.utf8_length(arr), 0), True), pa.scalar(None, arr.type), arr)


def _sorted_tokens(arr: pa.Array) -> pa.Array:
    """Tokens of each string, sorted and re-joined: order-free name comparison ("A B" == "B A")."""
    tokens = pc.split_pattern(arr, " ")
    table = pa.table({"parent": pc.list_parent_indices(tokens), "token": pc.list_flatten(tokens)})
    table = table.sort_by([("parent", "ascending"), ("token", "ascending")])
    ordered = pa.ListArray.from_arrays(pc.subtract(tokens.offsets, tokens.offsets[0]),
                                       table.column("token").combine_chunks(), mask=pc.is_null(tokens))
    return _null_if_empty(pc.binary_join(ordered, " "))


@functools.lru_cache(maxsize=None)
def phonetic_rules() -> dict:
    with open(schemas_dir() / "linkage" / "phonetic.yaml", encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _phonetic_values(tokens: pa.Array) -> pa.Array:
    rules = phonetic_rules()
    for pattern, replacement in rules["rewrites"]:
        tokens = pc.replace_substring_regex(tokens, pattern, replacement)
    if rules.get("collapse_repeated_letters"):
        for letter in string.ascii_uppercase:
            tokens = pc.replace_substring_regex(tokens, letter + "{2,}", letter)
    return tokens


def phonetic(arr: pa.Array) -> pa.Array:
    """Each folded name word spelled by sound (QUISPE, QISPE, KISPE -> KISPI); computed once per
    distinct word."""
    encoded = pc.dictionary_encode(arr)
    return pc.take(_phonetic_values(encoded.dictionary), encoded.indices)


def _repair_mojibake(arr: pa.Array) -> pa.Array:
    """UTF-8 names read as Latin-1 somewhere upstream (JOSÃ‰ for JOSÉ) back to their letters;
    only values showing the tell-tale Ã or Â are tried, each distinct value once."""
    def repair(value: str) -> str:
        try:
            return value.encode("cp1252").decode("utf-8")
        except UnicodeError:
            try:
                return value.encode("latin-1").decode("utf-8")
            except UnicodeError:
                return value
    suspect = pc.fill_null(pc.match_substring_regex(arr, "[ÃÂ]"), False)
    if not pc.any(suspect).as_py():
        return arr
    return pc.if_else(suspect, map_unique(arr, repair, pa.string()), arr)


def name_tokens(*parts: pa.Array) -> pa.Array:
    """The phonetic tokens of all name fields of each record: particles left out, sorted, distinct,
    at most ``max_tokens`` (list<string>; an empty list when the record has no name)."""
    rules = phonetic_rules()
    joined = pc.utf8_trim_whitespace(pc.binary_join_element_wise(*[pc.fill_null(p, "") for p in parts], " "))
    split = pc.split_pattern(joined, " ")
    flat = pc.list_flatten(split)
    table = pa.table({"parent": pc.list_parent_indices(split), "token": flat})
    keep = pc.and_(pc.greater(pc.utf8_length(flat), 0),
                   pc.invert(pc.is_in(flat, pa.array(rules["particles"], pa.string()))))
    table = table.filter(keep)
    table = pa.table({"parent": table.column("parent"), "token": phonetic(table.column("token").combine_chunks())})
    table = table.group_by(["parent", "token"], use_threads=False).aggregate([]).sort_by(
        [("parent", "ascending"), ("token", "ascending")])
    parent = table.column("parent").to_numpy()
    first = np.searchsorted(parent, parent, side="left")
    table = table.filter(pa.array(np.arange(len(parent)) - first < int(rules["max_tokens"])))
    parent = table.column("parent").to_numpy()
    counts = np.bincount(parent, minlength=len(joined)) if len(parent) else np.zeros(len(joined), dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), table.column("token").combine_chunks().cast(pa.string()))
