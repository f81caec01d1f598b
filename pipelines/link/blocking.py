"""Blocking: candidate pairs from a union of rules, each pair scored once, blocks bounded.

Each rule is a list of comparison-table columns; records sharing all of a rule's key values form
a block. Blocks are partitioned across workers by a hash of (rule, key), a token rule's by the
key's first token (so that a record's many token keys meet in few partitions). Each pair is scored once,
by the rule that owns it (every record carries all rules' keys and whether each of its blocks is
giant, so each worker decides alone). A block larger than ``max_block_size`` (common names: QUISPE + MARIA) is not
scored whole: its records are sorted in each of ``giant_block_orders`` and compared with their
``giant_block_window - 1`` next neighbours (the sorted-neighbourhood method), so the pairs per
record stay bounded as the population grows; such blocks are counted, never silent.

A rule with ``tokens`` (a list column, such as the phonetic name tokens of every name field) is
multi-valued: a record has one key per combination of ``choose`` of its tokens (plus the rule's
``keys``), so records meet when they share that many tokens whatever field each token was
entered in. Combinations are numbered in an order that does not depend on how many tokens a
record has (a record's slots); a pair that shares several combinations is scored once, in the
block of the first combination it shares (the first whose block is not giant, where there is one).

A partition holds each of its records once, whatever the number of its blocks there: a record has
tens of keys (ten token pairs, each also with the year and with the place, ten token-year keys),
and a copy of the record per key would multiply the memory by as many.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core.ids import stable_bucket
from pipelines.link.cluster import GUARD_COLUMNS
from pipelines.link.comparisons import columns_for, encode_strings
from pipelines.link.settings import BlockingRule, LinkageSettings

IN_BUCKET = "_in"  # bit i: rule i's block of the record is in this partition
MAX_SLOTS = 31  # a record's giant slots of a multi-valued rule are an int32 bit mask


def key_column(index: int) -> str:
    return f"_k{index}"


@functools.lru_cache(maxsize=None)
def combinations(tokens: int, choose: int) -> tuple[tuple[int, ...], ...]:
    """Token positions of each slot, in an order whose prefix does not depend on ``tokens``
    (co-lexicographic): slot numbers mean the same combination for a record of any length."""
    combos = sorted(itertools.combinations(range(tokens), choose), key=lambda c: c[::-1])
    if len(combos) > MAX_SLOTS:
        raise ValueError(f"{len(combos)} combinations of {choose} among {tokens} tokens: at most {MAX_SLOTS}")
    return tuple(combos)


def multi_keys(comp: pa.Table, rule: BlockingRule) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """A multi-valued rule's keys: (record row, slot, key) for every combination of ``choose`` of
    the record's tokens (joined by spaces, then ``|`` and the rule's other keys; none when one of
    those is unknown)."""
    tokens = comp.column(rule.tokens).combine_chunks()
    lengths = pc.fill_null(pc.list_value_length(tokens), 0).to_numpy(zero_copy_only=False)
    values, offsets = tokens.values, tokens.offsets.to_numpy()[:-1]
    extra = _joined(comp, rule.keys) if rule.keys else None
    rows, slots, keys = [], [], []
    for slot, combo in enumerate(combinations(rule.max_tokens, rule.choose)):
        at = np.nonzero(lengths > max(combo))[0]
        if not len(at):
            continue
        parts = [pc.take(values, pa.array(offsets[at] + c)) for c in combo]
        key = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, " ")
        if extra is not None:
            key = pc.binary_join_element_wise(key, pc.take(extra, pa.array(at)), "|")
        rows.append(at)
        slots.append(np.full(len(at), slot, dtype=np.int8))
        keys.append(key)
    if not rows:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8), pa.array([], pa.string())
    key = pa.concat_arrays(keys)
    known = pc.is_valid(key).to_numpy(zero_copy_only=False)
    return np.concatenate(rows)[known], np.concatenate(slots)[known], key.filter(pa.array(known))


def _joined(table: pa.Table, columns: Sequence[str]) -> pa.Array:
    parts = [table.column(c).combine_chunks().cast(pa.string()) for c in columns]
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, "|")  # null when any part is null


def with_rule_keys(comp: pa.Table, rules: Sequence[BlockingRule]) -> pa.Table:
    """Add one key column per single-valued blocking rule (null when a key field is unknown). A
    multi-valued rule's keys are made when records are partitioned (``partition_by_block``)."""
    for i, rule in enumerate(rules):
        if not rule.multi:
            comp = comp.append_column(key_column(i), _joined(comp, rule.keys))
    return comp


def _rule_key_values(comp: pa.Table, i: int, rule: BlockingRule) -> pa.Array:
    if rule.multi:
        return multi_keys(comp, rule)[2]
    return comp.column(key_column(i)).combine_chunks()


def giant_flag(index: int) -> str:
    return f"_g{index}"


def slot_column(index: int) -> str:
    return f"_s{index}"


def block_sizes(comp: pa.Table, rules: Sequence[BlockingRule], keys: dict[int, pa.Array] | None = None) -> pa.Table:
    """(rule, key, records) for every block of ``comp``; summed over batches with
    ``merge_block_sizes`` they say which blocks are giant before any pair is made (``keys``: the
    multi-valued rules' keys when already made)."""
    parts = []
    for i, rule in enumerate(rules):
        values = keys[i] if keys is not None and i in keys else _rule_key_values(comp, i, rule)
        counts = pc.value_counts(values.drop_null())
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


def giant_keys(sizes: pa.Table, settings: LinkageSettings) -> dict[int, pa.Array]:
    """Per rule, the keys of blocks larger than ``max_block_size`` (compared by sorted neighbourhood)."""
    limits = pa.array([settings.bound(rule, "max_block_size") for rule in settings.blocking_rules])
    big = sizes.filter(pc.greater(sizes.column("records"), pc.take(limits, sizes.column("rule"))))
    return {int(r): pc.filter(big.column("key"), pc.equal(big.column("rule"), r)).combine_chunks()
            for r in pc.unique(big.column("rule")).to_pylist()}


def _lists(n: int, rows: np.ndarray, values: pa.Array) -> pa.ListArray:
    """``values`` (sorted by their ``rows``) as one list per row of ``n``; empty for rows without."""
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), values)


def partition_by_block(comp: pa.Table, settings: LinkageSettings, buckets: int, giant: dict[int, pa.Array] | None = None):
    """Yield (bucket, table): each record once per bucket that one of its keys belongs to, never
    a copy per key. A single-valued rule's key stays in its column for every record (a pair that
    shares it is known to every worker) and bit i of ``IN_BUCKET`` says whether rule i's block is
    in this bucket; a multi-valued rule's keys in this bucket are a list column (with their slots
    beside). Every row carries, for every rule, whether its block under that rule is giant (a bit
    per slot for a multi-valued rule; ``giant``: from the block sizes of all records; computed
    from ``comp`` itself when it holds them all), so that a worker can tell which rule certainly
    finds a pair."""
    rules = settings.blocking_rules
    n = comp.num_rows
    multi = {q: multi_keys(comp, rule) for q, rule in enumerate(rules) if rule.multi}
    if giant is None:
        giant = giant_keys(block_sizes(comp, rules, {q: m[2] for q, m in multi.items()}), settings)
    for q, rule in enumerate(rules):
        keys = giant.get(q)
        big_keys = keys is not None and len(keys) > 0
        if q in multi:
            rows, slots, key = multi[q]
            mask = np.zeros(n, dtype=np.int32)
            if big_keys and len(rows):
                big = pc.is_in(key, keys).to_numpy(zero_copy_only=False)
                np.bitwise_or.at(mask, rows[big], (1 << slots[big].astype(np.int32)).astype(np.int32))
            flag = pa.array(mask)
        else:
            flag = pc.fill_null(pc.is_in(comp.column(key_column(q)), keys), False) if big_keys else pa.array(
                np.zeros(n, dtype=bool))
        comp = comp.append_column(giant_flag(q), flag)

    def bucket_of(q: int, values: pa.Array) -> np.ndarray:
        if buckets == 1:
            return np.where(pc.is_valid(values).to_numpy(zero_copy_only=False), 0, -1)
        if rules[q].multi:
            # a token key is placed by its first token alone (KISPI of "KISPI MARIA|1997"): every
            # key of every token rule that starts with one token meets in one partition, so a
            # record goes to about as many partitions as it has tokens, not one per key
            tagged = pc.replace_substring_regex(values, r"[ |].*", "")
        else:
            tagged = pc.binary_join_element_wise(pa.scalar(f"{q}#"), values, "")
        return np.where(pc.is_valid(values).to_numpy(zero_copy_only=False),
                        stable_bucket(pc.fill_null(tagged, ""), buckets), -1)

    single = {q: bucket_of(q, comp.column(key_column(q)).combine_chunks()) for q in range(len(rules)) if q not in multi}
    # a multi-valued rule's keys ordered by (bucket, record, slot): each bucket's keys are one slice
    placed = {}
    for q in list(multi):
        rows, slots, key = multi.pop(q)
        where = bucket_of(q, key)
        order = np.lexsort((slots, rows, where))
        placed[q] = (where[order], rows[order], slots[order], key.take(pa.array(order)))
    used = set()
    for where in single.values():
        used.update(np.unique(where[where >= 0]).tolist())
    for where, *_ in placed.values():
        used.update(np.unique(where).tolist())
    for bucket in sorted(used):
        present = np.zeros(n, dtype=bool)
        in_bucket = np.zeros(n, dtype=np.int32)
        for q, where in single.items():
            here = where == bucket
            present |= here
            in_bucket |= here.astype(np.int32) << q
        lists = {}
        for q, (where, rows, slots, key) in placed.items():
            lo, hi = np.searchsorted(where, [bucket, bucket + 1])
            present[rows[lo:hi]] = True
            lists[q] = (rows[lo:hi], slots[lo:hi], key.slice(lo, hi - lo))
        keep = np.nonzero(present)[0]
        table = comp.append_column(IN_BUCKET, pa.array(in_bucket))
        for q, (rows, slots, key) in lists.items():
            table = table.append_column(key_column(q), _lists(n, rows, key))
            table = table.append_column(slot_column(q), _lists(n, rows, pa.array(slots, pa.int8())))
        yield int(bucket), table if len(keep) == n else table.take(pa.array(keep))


@dataclass
class _Entries:
    """One rule's blocks in a partition: a record row, its block code, its slot (-1 for a
    single-valued rule) and whether its block is giant, per (record, key)."""

    rows: np.ndarray
    key: np.ndarray
    slot: np.ndarray
    giant: np.ndarray


def _entries(table: pa.Table, q: int, rule: BlockingRule, codes: np.ndarray | None) -> _Entries:
    flag = table.column(giant_flag(q)).to_numpy(zero_copy_only=False)
    if not rule.multi:
        here = (table.column(IN_BUCKET).to_numpy(zero_copy_only=False) >> q) & 1
        rows = np.nonzero((here == 1) & (codes >= 0))[0]
        return _Entries(rows, codes[rows], np.full(len(rows), -1, dtype=np.int32), flag[rows].astype(bool))
    keys = table.column(key_column(q)).combine_chunks()
    rows = pc.list_parent_indices(keys).to_numpy(zero_copy_only=False)
    slot = pc.list_flatten(table.column(slot_column(q)).combine_chunks()).to_numpy(zero_copy_only=False).astype(np.int32)
    return _Entries(rows, _codes(pc.list_flatten(keys)), slot, ((flag[rows] >> slot) & 1).astype(bool))


def _window_pairs(g: pa.Table, g_rows: np.ndarray, key: np.ndarray, orders: Sequence[Sequence[str]],
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


def _rule_pairs(table: pa.Table, entries: _Entries, settings: LinkageSettings, stats: dict,
                rule: BlockingRule) -> tuple[np.ndarray, np.ndarray]:
    """Every two entries of one rule sharing a block, as positions into ``entries``: whole blocks
    up to ``max_block_size`` records, sorted neighbourhood in larger ones (counted in the stats)."""
    position = np.arange(len(entries.rows))
    small = ~entries.giant
    idx = pa.table({"k": pa.array(entries.key[small]), "i": pa.array(position[small])})
    joined = idx.join(idx, "k", join_type="inner", left_suffix="_l", right_suffix="_r", use_threads=False)
    li, ri = joined.column("i_l").to_numpy(), joined.column("i_r").to_numpy()
    if entries.giant.any():
        orders = settings.bound(rule, "giant_block_orders")
        g_at = position[entries.giant]
        g = table.select(sorted({c for o in orders for c in o if c in table.column_names})).take(entries.rows[g_at])
        stats["giant_blocks"] += len(np.unique(entries.key[g_at]))
        stats["records_in_giant_blocks"] += len(g_at)
        wl, wr = _window_pairs(g, g_at, entries.key[g_at], orders, settings.bound(rule, "giant_block_window"))
        # several sort orders can find the same pair: each once, in both orientations like the join
        unique = np.unique(np.minimum(wl, wr).astype(np.int64) * len(position) + np.maximum(wl, wr))
        wl, wr = unique // len(position), unique % len(position)
        li, ri = np.concatenate([li, wl, wr]), np.concatenate([ri, wr, wl])
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
    rule_index: np.ndarray  # the rule that scores the pair (the first that finds it), as its position
    rule_names: pa.Array    # in the rules (a name per pair would cost more than the pair's indices)
    # bit i set when the pair is in a whole (not giant) block of rule i: the pairs rule i's training
    # session learns from, chosen by that rule's keys alone (not by another rule's, nor by a window)
    satisfied: pa.Array
    windowed: pa.Array      # found by sorted neighbourhood in a giant block (not a whole block)
    stats: dict

    def __len__(self) -> int:
        return len(self.left_index)

    @property
    def rule(self) -> pa.Array:
        return pc.take(self.rule_names, pa.array(self.rule_index))

    @property
    def left(self) -> pa.Table:
        return self.values.take(self.left_index)

    @property
    def right(self) -> pa.Table:
        return self.values.take(self.right_index)

    def take(self, rows: np.ndarray) -> "CandidatePairs":
        """The pairs at ``rows`` (positions into these pairs)."""
        at = pa.array(rows)
        return CandidatePairs(self.values, self.left_index[rows], self.right_index[rows], self.rule_index[rows],
                              self.rule_names, self.satisfied.take(at), self.windowed.take(at), self.stats)

    def slices(self, size: int):
        """The pairs in consecutive slices of at most ``size`` (bounded memory when compared); one
        empty slice when there is no pair, so that callers need no special case."""
        for start in range(0, max(len(self), 1), size):
            stop = min(start + size, len(self))
            yield CandidatePairs(self.values, self.left_index[start:stop], self.right_index[start:stop],
                                 self.rule_index[start:stop], self.rule_names, self.satisfied.slice(start, stop - start),
                                 self.windowed.slice(start, stop - start), self.stats)


class _TokenMatrix:
    """Each row's tokens of one list column as integer codes (one code per distinct token in the
    partition, -1 for no token), shared by the rules that combine the same tokens."""

    def __init__(self, table: pa.Table, column: str, combos: tuple[tuple[int, ...], ...]):
        tokens = table.column(column).combine_chunks()
        lengths = pc.fill_null(pc.list_value_length(tokens), 0).to_numpy(zero_copy_only=False)
        codes = _codes(pc.list_flatten(tokens))
        width = int(lengths.max()) if len(lengths) else 0
        self.matrix = np.full((table.num_rows, width), -1, dtype=np.int32)
        rows = np.repeat(np.arange(table.num_rows), lengths)
        position = np.arange(len(codes)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        self.matrix[rows, position] = codes
        self.combos = combos

    def shared_slots(self, li: np.ndarray, ri: np.ndarray) -> np.ndarray:
        """Per pair, a bit mask of the slots of its left record's combinations that it shares."""
        left, right = self.matrix[li], self.matrix[ri]
        present = np.zeros(left.shape, dtype=bool)
        for k in range(right.shape[1]):
            present |= left == right[:, k:k + 1]
        present &= left >= 0
        bits = np.zeros(len(li), dtype=np.int32)
        for s, combo in enumerate(self.combos):
            if max(combo) < left.shape[1]:
                hit = present[:, combo[0]]
                for c in combo[1:]:
                    hit = hit & present[:, c]
                bits |= hit.astype(np.int32) << s
        return bits


class _TokenSets:
    """A multi-valued rule's view of a partition: its token matrix, each row's giant-slot mask
    and the codes of the rule's other keys."""

    def __init__(self, table: pa.Table, rule: BlockingRule, q: int, matrices: dict):
        combos = combinations(rule.max_tokens, rule.choose)
        spec = (rule.tokens, combos)
        if spec not in matrices:
            matrices[spec] = _TokenMatrix(table, rule.tokens, combos)
        self.tokens = matrices[spec]
        self.giant = table.column(giant_flag(q)).to_numpy(zero_copy_only=False)
        self.extra = _codes(_joined(table, rule.keys)) if rule.keys else None

    def shared_slots(self, li: np.ndarray, ri: np.ndarray, memo: dict | None = None) -> np.ndarray:
        """Per pair, the slots it shares (``memo``: token bits already computed for these pairs)."""
        memo = {} if memo is None else memo
        if id(self.tokens) not in memo:
            memo[id(self.tokens)] = self.tokens.shared_slots(li, ri)
        bits = memo[id(self.tokens)]
        if self.extra is not None:
            bits = np.where((self.extra[li] != self.extra[ri]) | (self.extra[li] < 0), 0, bits).astype(np.int32)
        return bits


def _lowest_bit(bits: np.ndarray) -> np.ndarray:
    """The index of each mask's lowest set bit (-1 for none)."""
    low = bits & -bits
    out = np.full(len(bits), -1, dtype=np.int32)
    nonzero = low != 0
    out[nonzero] = np.log2(low[nonzero]).astype(np.int32)
    return out


def pairs_in_partition(table: pa.Table, settings: LinkageSettings) -> CandidatePairs:
    """All candidate pairs of one partition (its records, once each, from ``partition_by_block``),
    each once. Works on row indices and integer key codes; record values are gathered later, per
    slice of pairs, only for the columns the comparisons read."""
    rules = settings.blocking_rules
    stats = {"giant_blocks": 0, "records_in_giant_blocks": 0, "pairs_by_rule": {r.name: 0 for r in rules}}
    codes = {q: _codes(table.column(key_column(q))) for q, rule in enumerate(rules) if not rule.multi}
    matrices: dict = {}
    token_sets = {q: _TokenSets(table, rule, q, matrices) for q, rule in enumerate(rules) if rule.multi}
    giant = {q: table.column(giant_flag(q)).to_numpy(zero_copy_only=False) for q in codes}

    def sharing(q: int, li: np.ndarray, ri: np.ndarray, memo: dict) -> tuple[np.ndarray, np.ndarray]:
        """(shares a key of rule q, shares a key of rule q whose block is whole); ``memo`` holds
        the token bits of these pairs, the same for every rule combining the same tokens."""
        if q in token_sets:
            bits = token_sets[q].shared_slots(li, ri, memo)
            return bits != 0, (bits & ~token_sets[q].giant[li]) != 0
        shared = (codes[q][li] == codes[q][ri]) & (codes[q][li] >= 0)
        return shared, shared & ~giant[q][li]

    uid_rank = _ranks(table.column("record_uid"))
    lefts, rights, rule_ids, windows = [], [], [], []
    for i, rule in enumerate(rules):
        entries = _entries(table, i, rule, codes.get(i))
        if len(entries.rows) < 2:
            continue
        a, b = _rule_pairs(table, entries, settings, stats, rule)
        li, ri = entries.rows[a], entries.rows[b]
        keep = uid_rank[li] < uid_rank[ri]
        a, li, ri = a[keep], li[keep], ri[keep]
        # Scored once. A rule whose block with the pair is not giant certainly finds it: the first
        # such rule owns it. A pair that only giant blocks share belongs to the first rule sharing
        # it (if that rule's window missed the pair, later windows do not score it either).
        windowed = entries.giant[a]
        keep = np.ones(len(li), dtype=bool)
        memo: dict = {}
        for q in range(len(rules)):
            if q == i:
                continue
            shared, certain = sharing(q, li, ri, memo)
            if q < i:
                keep &= ~certain & ~(shared & windowed)
            else:
                keep &= ~(certain & windowed)
        if i in token_sets and len(li):
            # within a multi-valued rule: the block of the first slot shared (first whole one, if any)
            bits = token_sets[i].shared_slots(li, ri, memo)
            whole = bits & ~token_sets[i].giant[li]
            keep &= np.where(whole != 0, _lowest_bit(whole), _lowest_bit(bits)) == entries.slot[a]
        li, ri, windowed = li[keep], ri[keep], windowed[keep]
        stats["pairs_by_rule"][rule.name] += len(li)
        lefts.append(li)
        rights.append(ri)
        rule_ids.append(np.full(len(li), i, dtype=np.int8))
        windows.append(windowed)
    li = np.concatenate(lefts) if lefts else np.zeros(0, dtype=np.int64)
    ri = np.concatenate(rights) if rights else np.zeros(0, dtype=np.int64)
    satisfied = np.zeros(len(li), dtype=np.int32)
    memo = {}
    for q in range(len(rules)):
        satisfied |= sharing(q, li, ri, memo)[1].astype(np.int32) << q
    names = pa.array([r.name for r in rules], pa.string())
    rule = np.concatenate(rule_ids) if rule_ids else np.zeros(0, dtype=np.int8)
    # only what the comparisons, term frequencies and the clustering guard read: every column is
    # gathered once per pair (blocking keys and token lists were for blocking only)
    read = {"record_uid", *GUARD_COLUMNS}
    for c in settings.comparisons:
        read.update(columns_for(c))
        read.update([c.tf_column] if c.tf_column else [])
    values = encode_strings(table.select([c for c in table.column_names if c in read]))
    windowed = np.concatenate(windows) if windows else np.zeros(0, dtype=bool)
    # row indices of one partition fit 32 bits: half the memory of tens of millions of pairs
    return CandidatePairs(values, li.astype(np.int32), ri.astype(np.int32), rule, names, pa.array(satisfied, pa.int32()),
                          pa.array(windowed, pa.bool_()), stats)
