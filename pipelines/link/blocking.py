"""Blocking: candidate pairs from a union of rules, each pair scored once, blocks bounded.

Each rule is a list of comparison-table columns; records sharing all of a rule's key values form
a block. Blocks are partitioned across workers by a hash of (rule, key). A pair found by an
earlier rule is dropped by the later ones (every record carries all rules' keys, so each worker
decides alone). A block larger than ``max_block_size`` is refined by extra keys (birth year,
sex) and, if still too large, cut into deterministic chunks; both are counted, never silent.
"""

from __future__ import annotations

import zlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.harmonise.vector import map_unique

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


def pairs_in_partition(table: pa.Table, rules: list[dict], settings: dict) -> tuple[pa.Table, pa.Table, list[str], dict]:
    """All candidate pairs of one partition: (left rows, right rows, rule name per pair, stats)."""
    stats = {"giant_blocks": 0, "records_in_giant_blocks": 0, "blocks_chunked": 0,
             "pairs_by_rule": {r["name"]: 0 for r in rules}}
    lefts, rights, names = [], [], []
    rule_col = table.column(RULE).to_numpy()
    for i, rule in enumerate(rules):
        sub = table.filter(pa.array(rule_col == i))
        if sub.num_rows < 2:
            continue
        key = _bounded_keys(sub, settings, stats)
        idx = pa.table({"k": key, "i": pa.array(np.arange(sub.num_rows))})
        joined = idx.join(idx, "k", join_type="inner", left_suffix="_l", right_suffix="_r", use_threads=False)
        left_i, right_i = joined.column("i_l").to_numpy(), joined.column("i_r").to_numpy()
        uid = sub.column("record_uid").combine_chunks()
        order = pc.less(pc.take(uid, left_i), pc.take(uid, right_i)).to_numpy(zero_copy_only=False)
        left_i, right_i = left_i[order], right_i[order]
        left, right = sub.take(left_i), sub.take(right_i)
        # scored once: a pair that an earlier rule also finds belongs to that rule
        found_earlier = np.zeros(left.num_rows, dtype=bool)
        for q in range(i):
            found_earlier |= pc.fill_null(pc.equal(left.column(key_column(q)), right.column(key_column(q))),
                                          False).to_numpy(zero_copy_only=False)
        keep = pa.array(~found_earlier)
        left, right = left.filter(keep), right.filter(keep)
        stats["pairs_by_rule"][rule["name"]] += left.num_rows
        lefts.append(left)
        rights.append(right)
        names.extend([rule["name"]] * left.num_rows)
    if not lefts:
        empty = table.schema.empty_table()
        return empty, empty, [], stats
    return pa.concat_tables(lefts), pa.concat_tables(rights), names, stats


def rules_satisfied(left: pa.Table, right: pa.Table, n_rules: int) -> pa.Array:
    """Bit i set when the pair shares rule i's key: the pairs each rule's training session sees."""
    mask = np.zeros(left.num_rows, dtype=np.int32)
    for i in range(n_rules):
        same = pc.fill_null(pc.equal(left.column(key_column(i)), right.column(key_column(i))), False)
        mask |= same.to_numpy(zero_copy_only=False).astype(np.int32) << i
    return pa.array(mask, pa.int32())
