"""Blocking: candidate pairs from a union of rules, each pair scored once, blocks bounded.

Each rule is a list of comparison-table columns; records sharing all of a rule's key values form
a block. Blocks are partitioned across workers by a hash of (rule, key). Each pair is scored once,
by the rule that owns it (every record carries all rules' keys and whether each of its blocks is
giant, so each worker decides alone). A block larger than ``max_block_size`` (common names: QUISPE + MARIA) is not
scored whole: its records are sorted in each of ``giant_block_orders`` and compared with their
``giant_block_window - 1`` next neighbours (the sorted-neighbourhood method), so the pairs per
record stay bounded as the population grows; such blocks are counted, never silent.
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


def giant_flag(index: int) -> str:
    return f"_g{index}"


def block_sizes(comp: pa.Table, rules: list[dict]) -> pa.Table:
    """(rule, key, records) for every block of ``comp``; summed over batches with
    ``merge_block_sizes`` they say which blocks are giant before any pair is made."""
    parts = []
    for i in range(len(rules)):
        counts = pc.value_counts(comp.column(key_column(i)).combine_chunks().drop_null())
        counts = pa.table({"rule": pa.array(np.full(len(counts), i, dtype=np.int8)), "key": counts.field("values"),
                           "records": counts.field("counts")})
        parts.append(counts)
    return pa.concat_tables(parts)


def merge_block_sizes(tables: list[pa.Table]) -> pa.Table:
    summed = pa.concat_tables([t for t in tables if t is not None]).group_by(["rule", "key"], use_threads=False)
    summed = summed.aggregate([("records", "sum")])
    # combined: group_by's output chunks share large buffers, and a pickled chunk carries all of
    # its buffer (2.3 GB instead of 48 MB for a million records' blocks, over gRPC's 2 GB limit)
    return pa.table({"rule": summed.column("rule"), "key": summed.column("key"),
                     "records": summed.column("records_sum")}).combine_chunks()


def giant_keys(sizes: pa.Table, settings: dict) -> dict[int, pa.Array]:
    """Per rule, the keys of blocks larger than ``max_block_size`` (compared by sorted neighbourhood)."""
    big = sizes.filter(pc.greater(sizes.column("records"), int(settings.get("max_block_size", 2000))))
    return {int(r): pc.filter(big.column("key"), pc.equal(big.column("rule"), r)).combine_chunks()
            for r in pc.unique(big.column("rule")).to_pylist()}


def partition_by_block(comp: pa.Table, settings: dict, buckets: int, giant: dict[int, pa.Array] | None = None):
    """Yield (bucket, table) with every record once per rule whose key it has. Every row carries,
    for every rule, whether its block under that rule is giant (``giant``: from the block sizes of
    all records; computed from ``comp`` itself when it holds them all), so that a worker can tell
    which rule certainly finds a pair."""
    rules = settings["blocking_rules"]
    if giant is None:
        giant = giant_keys(block_sizes(comp, rules), settings)
    for q in range(len(rules)):
        keys = giant.get(q)
        flag = pc.is_in(comp.column(key_column(q)), keys) if keys is not None and len(keys) else pa.array(
            np.zeros(comp.num_rows, dtype=bool))
        comp = comp.append_column(giant_flag(q), flag)
    for i in range(len(rules)):
        key = comp.column(key_column(i)).combine_chunks()
        keep = pc.is_valid(key)
        if not pc.any(keep).as_py():
            continue
        sub = comp.filter(keep)
        sub = sub.append_column(RULE, pa.array(np.full(sub.num_rows, i, dtype=np.int8)))
        where = stable_bucket(pc.binary_join_element_wise(pa.array([str(i)] * sub.num_rows), sub.column(key_column(i)).combine_chunks(), "#"), buckets)
        for bucket in np.unique(where):
            yield int(bucket), sub.filter(pa.array(where == bucket))


def _window_pairs(g: pa.Table, g_rows: np.ndarray, key: np.ndarray, orders: list[list[str]],
                  window: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted neighbourhood inside giant blocks (``g``: their records' sort columns, ``g_rows``
    their rows, ``key`` their block codes): for each order, sort each block's records by it and
    pair each with the next ``window - 1``. Pairs per record are bounded by the window, so cost
    grows linearly; duplicates agree on most fields and sort next to each other in some order."""
    lefts, rights = [], []
    for order in orders:
        cols = [c for c in order if c in g.column_names]
        sort_table = pa.table({"_block": key, **{c: g.column(c) for c in cols}})
        ordered = pc.sort_indices(sort_table, sort_keys=[(c, "ascending", "at_end")
                                                         for c in sort_table.column_names]).to_numpy()
        block = key[ordered]
        for d in range(1, window):
            same = block[:-d] == block[d:]
            lefts.append(g_rows[ordered[:-d][same]])
            rights.append(g_rows[ordered[d:][same]])
    if not lefts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(lefts), np.concatenate(rights)


def _rule_pairs(table: pa.Table, rows: np.ndarray, key: np.ndarray, giant: np.ndarray, settings: dict,
                stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """Every pair of records sharing the rule's key (``rows`` of the partition, ``key`` their block
    codes, ``giant`` whether their block is giant): whole blocks up to ``max_block_size`` records,
    sorted neighbourhood in larger ones (counted in the stats)."""
    small = ~giant
    idx = pa.table({"k": pa.array(key[small]), "i": pa.array(rows[small])})
    joined = idx.join(idx, "k", join_type="inner", left_suffix="_l", right_suffix="_r", use_threads=False)
    li, ri = joined.column("i_l").to_numpy(), joined.column("i_r").to_numpy()
    if giant.any():
        orders = settings.get("giant_block_orders") or []
        g_rows = rows[giant]
        g = table.select(sorted({c for o in orders for c in o if c in table.column_names})).take(g_rows)
        stats["giant_blocks"] += len(np.unique(key[giant]))
        stats["records_in_giant_blocks"] += int(giant.sum())
        wl, wr = _window_pairs(g, g_rows, key[giant], orders, int(settings.get("giant_block_window", 20)))
        li, ri = np.concatenate([li, wl, wr]), np.concatenate([ri, wr, wl])  # both orientations, like the join
    return li, ri


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
    """Every candidate pair of a partition as row indices into ``values`` (the partition's records,
    comparison columns only); the records of a slice of pairs are gathered only when compared."""

    values: pa.Table
    left_index: np.ndarray
    right_index: np.ndarray
    rule: pa.Array          # the rule that scores the pair (the first that finds it)
    satisfied: pa.Array     # bit i set when the pair shares rule i's key (for training sessions)
    windowed: pa.Array      # found by sorted neighbourhood in a giant block (not a whole block)
    stats: dict

    def __len__(self) -> int:
        return len(self.left_index)

    @property
    def left(self) -> pa.Table:
        return self.values.take(self.left_index)

    @property
    def right(self) -> pa.Table:
        return self.values.take(self.right_index)

    def slices(self, size: int):
        """The pairs in consecutive slices of at most ``size`` (bounded memory when compared); one
        empty slice when there is no pair, so that callers need no special case."""
        for start in range(0, max(len(self), 1), size):
            stop = min(start + size, len(self))
            yield CandidatePairs(self.values, self.left_index[start:stop], self.right_index[start:stop],
                                 self.rule.slice(start, stop - start), self.satisfied.slice(start, stop - start),
                                 self.windowed.slice(start, stop - start), self.stats)


def pairs_in_partition(table: pa.Table, rules: list[dict], settings: dict) -> CandidatePairs:
    """All candidate pairs of one partition, each once. Works on row indices and integer key codes;
    record values are gathered later, per slice of pairs, only for the columns the comparisons read."""
    stats = {"giant_blocks": 0, "records_in_giant_blocks": 0, "pairs_by_rule": {r["name"]: 0 for r in rules}}
    codes = [_codes(table.column(key_column(q))) for q in range(len(rules))]
    giant = [table.column(giant_flag(q)).to_numpy(zero_copy_only=False) for q in range(len(rules))]
    uid_rank = _ranks(table.column("record_uid"))
    rule_col = table.column(RULE).to_numpy()
    lefts, rights, rule_ids, windows = [], [], [], []
    for i, rule in enumerate(rules):
        rows = np.nonzero(rule_col == i)[0]
        if len(rows) < 2:
            continue
        li, ri = _rule_pairs(table, rows, codes[i][rows], giant[i][rows], settings, stats)
        keep = uid_rank[li] < uid_rank[ri]
        # Scored once. A rule whose block with the pair is not giant certainly finds it: the first
        # such rule owns it. A pair that only giant blocks share belongs to the first rule sharing
        # it (if that rule's window missed the pair, later windows do not score it either).
        windowed = giant[i][li]
        for q in range(len(rules)):
            if q == i:
                continue
            shared = (codes[q][li] == codes[q][ri]) & (codes[q][li] >= 0)
            certain = shared & ~giant[q][li]
            if q < i:
                keep &= ~certain & ~(shared & windowed)
            else:
                keep &= ~(certain & windowed)
        li, ri = li[keep], ri[keep]
        if len(li):  # several sort orders can find the same pair in a giant block
            unique = np.unique(li.astype(np.int64) * table.num_rows + ri)
            li, ri = unique // table.num_rows, unique % table.num_rows
        stats["pairs_by_rule"][rule["name"]] += len(li)
        lefts.append(li)
        rights.append(ri)
        rule_ids.append(np.full(len(li), i, dtype=np.int8))
        windows.append(giant[i][li])
    li = np.concatenate(lefts) if lefts else np.zeros(0, dtype=np.int64)
    ri = np.concatenate(rights) if rights else np.zeros(0, dtype=np.int64)
    satisfied = np.zeros(len(li), dtype=np.int32)
    for q in range(len(rules)):
        satisfied |= (((codes[q][li] == codes[q][ri]) & (codes[q][li] >= 0)).astype(np.int32) << q)
    names = pa.array([r["name"] for r in rules], pa.string())
    rule = pc.take(names, pa.array(np.concatenate(rule_ids) if rule_ids else np.zeros(0, dtype=np.int8)))
    values = encode_strings(table.select([c for c in table.column_names if not c.startswith("_")]))
    windowed = np.concatenate(windows) if windows else np.zeros(0, dtype=bool)
    return CandidatePairs(values, li, ri, rule, pa.array(satisfied, pa.int32()), pa.array(windowed, pa.bool_()), stats)
