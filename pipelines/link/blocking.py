"""Blocking: candidate pairs from a union of rules, each pair scored once, blocks bounded.

Each rule is a list of comparison-table columns; records sharing all of a rule's key values form
a block. Blocks are partitioned across workers by a hash of (rule, key). A pair found by an
earlier rule is dropped by the later ones (every record carries all rules' keys, so each worker
decides alone). A block larger than ``max_block_size`` is refined by extra keys (birth year,
sex) and, if still too large, cut into deterministic chunks; both are counted, never silent.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.harmonise.vector import map_unique
from pipelines.link.comparisons import encode_strings

RULE = "_rule"
KEY = "_key"


def key_column(index: int) -> str:
    return f"_k{index}"


def _joined(table: pa.Table, columns: list[str]) -> pa.Array:
    parts = [table.column(c).combine_chunks().cast(pa.string()) for c in columns]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, "|")  # null when any part is null


def with_rule_keys(comp: pa.Table, rules: list[dict]) -> pa.Table:
    """Add one key column per blocking rule (null when a key field is unknown)."""
    for i, rule in enumerate(rules):
        comp = comp.append_column(key_column(i), _joined(comp, rule["keys"]))
    return comp


def stable_bucket(values: pa.Array, buckets: int) -> np.ndarray:
    """A deterministic bucket per string (crc32), the same on every worker and run."""
    hashed = map_unique(values, lambda v: zlib.crc32(v.encode("utf-8")) % buckets, pa.int64())
    return hashed.to_numpy(zero_copy_only=False)


def partition_by_block(comp: pa.Table, rules: list[dict], buckets: int):
    """Yield (bucket, table) with every record once per rule whose key it has."""
    for i in range(len(rules)):
        key = comp.column(key_column(i)).combine_chunks()
        keep = pc.is_valid(key)
        if not pc.any(keep).as_py():
            continue
        sub = comp.filter(keep)
        sub = sub.append_column(RULE, pa.array(np.full(sub.num_rows, i, dtype=np.int8)))
        sub = sub.append_column(KEY, sub.column(key_column(i)))
        where = stable_bucket(pc.binary_join_element_wise(pa.array([str(i)] * sub.num_rows), sub.column(KEY).combine_chunks(), "#"), buckets)
        for bucket in np.unique(where):
            yield int(bucket), sub.filter(pa.array(where == bucket))


def _bounded_keys(sub: pa.Table, settings: dict, stats: dict) -> pa.Array:
    """The block key, refined (and at worst chunked) where a block exceeds max_block_size."""
    cap = int(settings.get("max_block_size", 2000))
    key = sub.column(KEY).combine_chunks()
    sizes = sub.select([KEY]).group_by(KEY, use_threads=False).aggregate([(KEY, "count")])
    giant_keys = sizes.filter(pc.greater(sizes.column(f"{KEY}_count"), cap)).column(KEY)
    if not len(giant_keys):
        return key
    giant = pc.is_in(key, giant_keys)
    stats["giant_blocks"] += len(giant_keys)
    stats["records_in_giant_blocks"] += int(pc.sum(giant).as_py())
    refinement = [c for c in settings.get("block_refinement_keys", []) if c in sub.column_names]
    refined = pc.binary_join_element_wise(
        key, *[pc.fill_null(sub.column(c).combine_chunks().cast(pa.string()), "?") for c in refinement], "|"
    ) if refinement else key
    key = pc.if_else(giant, refined, key)
    sizes = pa.table({KEY: key}).group_by(KEY, use_threads=False).aggregate([(KEY, "count")])
    still = sizes.filter(pc.greater(sizes.column(f"{KEY}_count"), cap)).column(KEY)
    if len(still):
        # cut what refinement could not into chunks of at most `cap` records: pairs across chunks
        # are not scored, and that is reported (the recall ceiling accounts for it)
        too_big = pc.is_in(key, still)
        chunk = stable_bucket(sub.column("record_uid").combine_chunks(), 1 << 30)
        n_chunks = {k: -(-c // cap) for k, c in zip(sizes.column(KEY).to_pylist(), sizes.column(f"{KEY}_count").to_pylist())
                    if c > cap}
        per_row = np.array([n_chunks.get(k, 1) for k in pc.filter(key, too_big).to_pylist()])
        suffix = pa.array((chunk[too_big.to_numpy(zero_copy_only=False)] % per_row).astype(str))
        chunked = pc.binary_join_element_wise(pc.filter(key, too_big), suffix, "#")
        key = pc.replace_with_mask(key, too_big, chunked)
        stats["blocks_chunked"] += len(still)
    return key


def _codes(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Integer codes of a string column within one partition (equal strings, equal codes; null -1)."""
    encoded = pc.dictionary_encode(values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values)
    return pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)


def _ranks(values: pa.ChunkedArray) -> np.ndarray:
    """Rank of each string in sort order: orients every pair as (smaller uid, larger uid)."""
    encoded = pc.dictionary_encode(values.combine_chunks())
    order = pc.array_sort_indices(encoded.dictionary).to_numpy()
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[encoded.indices.to_numpy(zero_copy_only=False)]


@dataclass
class CandidatePairs:
    """Aligned left and right records of every candidate pair in a partition."""

    left: pa.Table
    right: pa.Table
    rule: pa.Array          # the rule that scores the pair (the first that finds it)
    satisfied: pa.Array     # bit i set when the pair shares rule i's key (for training sessions)
    stats: dict


def pairs_in_partition(table: pa.Table, rules: list[dict], settings: dict) -> CandidatePairs:
    """All candidate pairs of one partition, each once. Works on row indices and integer key codes;
    record values are gathered once at the end, only for the columns the comparisons read."""
    stats = {"giant_blocks": 0, "records_in_giant_blocks": 0, "blocks_chunked": 0,
             "pairs_by_rule": {r["name"]: 0 for r in rules}}
    codes = [_codes(table.column(key_column(q))) for q in range(len(rules))]
    uid_rank = _ranks(table.column("record_uid"))
    rule_col = table.column(RULE).to_numpy()
    refinement = [c for c in settings.get("block_refinement_keys", []) if c in table.column_names]
    lefts, rights, rule_ids = [], [], []
    for i, rule in enumerate(rules):
        rows = np.nonzero(rule_col == i)[0]
        if len(rows) < 2:
            continue
        key = _bounded_keys(table.select([KEY, "record_uid", *refinement]).take(rows), settings, stats)
        idx = pa.table({"k": key, "i": pa.array(rows)})
        joined = idx.join(idx, "k", join_type="inner", left_suffix="_l", right_suffix="_r", use_threads=False)
        li, ri = joined.column("i_l").to_numpy(), joined.column("i_r").to_numpy()
        keep = uid_rank[li] < uid_rank[ri]
        # scored once: a pair that an earlier rule also finds belongs to that rule
        for q in range(i):
            keep &= ~((codes[q][li] == codes[q][ri]) & (codes[q][li] >= 0))
        li, ri = li[keep], ri[keep]
        stats["pairs_by_rule"][rule["name"]] += len(li)
        lefts.append(li)
        rights.append(ri)
        rule_ids.append(np.full(len(li), i, dtype=np.int8))
    li = np.concatenate(lefts) if lefts else np.zeros(0, dtype=np.int64)
    ri = np.concatenate(rights) if rights else np.zeros(0, dtype=np.int64)
    satisfied = np.zeros(len(li), dtype=np.int32)
    for q in range(len(rules)):
        satisfied |= (((codes[q][li] == codes[q][ri]) & (codes[q][li] >= 0)).astype(np.int32) << q)
    names = pa.array([r["name"] for r in rules], pa.string())
    rule = pc.take(names, pa.array(np.concatenate(rule_ids) if rule_ids else np.zeros(0, dtype=np.int8)))
    values = encode_strings(table.select([c for c in table.column_names if not c.startswith("_")]))
    left, right = values.take(li), values.take(ri)
    return CandidatePairs(left, right, rule, pa.array(satisfied, pa.int32()), stats)
