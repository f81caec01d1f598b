"""Accuracy against the ground truth: pairwise (scored pairs at the threshold) and on clusters.

A pair is *in scope* when both records are in the same group (a role: victims and offenders are
linked separately) and, for a linkage dataset (FEBRL4), come from different sources; within a
source pairs are neither rewarded nor penalised. True pairs are the in-scope pairs of records
with the same entity.

- pairwise: the scored pairs at or above the threshold (the edges) against the true pairs;
- clusters: the pairs that the clusters imply (every two records in one predicted cluster)
  against the true pairs, counted from cluster x entity sizes, never enumerated.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def _prf(tp: int, predicted: int, true: int) -> dict:
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "true_positives": int(tp), "predicted_pairs": int(predicted), "true_pairs": int(true)}


def scope_pairs(table: pa.Table, keys: list[str], scope: str) -> int:
    """In-scope pairs inside each group of ``keys`` (table has a ``source`` column for links)."""
    if not table.num_rows:
        return 0
    if scope == "dedupe":
        n = table.group_by(keys, use_threads=False).aggregate([([], "count_all")]).column("count_all")
        n = n.to_numpy().astype(np.int64)
        return int((n * (n - 1) // 2).sum())
    per_source = table.group_by(keys + ["source"], use_threads=False).aggregate([([], "count_all")])
    c = per_source.column("count_all").to_numpy().astype(np.int64)
    per_source = per_source.append_column("sq", pa.array(c * c))
    grouped = per_source.group_by(keys, use_threads=False).aggregate([("count_all", "sum"), ("sq", "sum")])
    n = grouped.column("count_all_sum").to_numpy().astype(np.int64)
    sq = grouped.column("sq_sum").to_numpy().astype(np.int64)
    return int(((n * n - sq) // 2).sum())


def true_pair_count(truth: pa.Table, scope: str) -> int:
    return scope_pairs(truth, ["entity"], scope)


def _truth_positions(uids: pa.Array | pa.ChunkedArray, truth: pa.Table) -> np.ndarray:
    """Row of each uid in the truth, -1 when it is not there."""
    at = pc.index_in(uids, truth.column("record_uid").combine_chunks())
    return pc.fill_null(at, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _counts_at(lt: np.ndarray, rt: np.ndarray, truth: pa.Table, scope: str) -> tuple[int, int]:
    """(in-scope pairs, of which true) for pairs given as truth rows (-1: not in the truth, out of scope)."""
    known = (lt >= 0) & (rt >= 0)
    lt, rt = np.where(known, lt, 0), np.where(known, rt, 0)
    entity = pc.dictionary_encode(truth.column("entity").combine_chunks()).indices.to_numpy(zero_copy_only=False)
    source = pc.dictionary_encode(truth.column("source").combine_chunks()).indices.to_numpy(zero_copy_only=False)
    in_scope = known & ((source[lt] != source[rt]) if scope == "link" else True)
    return int(in_scope.sum()), int((in_scope & (entity[lt] == entity[rt])).sum())


def pair_counts(pairs: pa.Table, truth: pa.Table, scope: str) -> tuple[int, int]:
    """(in-scope pairs, of which true) for a table of left_uid/right_uid pairs."""
    if not pairs.num_rows:
        return 0, 0
    return _counts_at(_truth_positions(pairs.column("left_uid"), truth),
                      _truth_positions(pairs.column("right_uid"), truth), truth, scope)


def pair_counts_indexed(uids: pa.Array, left_index: np.ndarray, right_index: np.ndarray, truth: pa.Table,
                        scope: str) -> tuple[int, int]:
    """pair_counts for pairs given as row indices into ``uids`` (millions of candidate pairs
    without building their uid strings)."""
    at = _truth_positions(uids, truth)
    return _counts_at(at[left_index], at[right_index], truth, scope)


def pairwise(edges: pa.Table, truth: pa.Table, scope: str) -> dict:
    predicted, tp = pair_counts(edges, truth, scope)
    return _prf(tp, predicted, true_pair_count(truth, scope))


def clusters(membership: pa.Table, truth: pa.Table, scope: str) -> dict:
    """membership: record_uid -> cluster_id (records without a row are clusters of their own)."""
    uids = membership.column("record_uid").combine_chunks()
    at = pc.index_in(truth.column("record_uid"), uids)
    cluster_id = pc.take(membership.column("cluster_id").combine_chunks().cast(pa.string()), at)
    # a record the tool left alone is a singleton: give it its own id
    cluster_id = pc.coalesce(cluster_id, pc.binary_join_element_wise("~", truth.column("record_uid"), ""))
    table = pa.table({"cluster": cluster_id, "entity": truth.column("entity"), "source": truth.column("source")})
    predicted = scope_pairs(table, ["cluster"], scope)
    tp = scope_pairs(table, ["cluster", "entity"], scope)
    result = _prf(tp, predicted, true_pair_count(truth, scope))
    result["clusters"] = int(pc.count_distinct(cluster_id).as_py())
    result["true_entities"] = int(pc.count_distinct(truth.column("entity")).as_py())
    return result


def true_pairs(truth: pa.Table, scope: str) -> pa.Table:
    """Every in-scope true pair as left_uid/right_uid (for blocking recall ceilings)."""
    t = pa.table({"record_uid": truth.column("record_uid"), "entity": truth.column("entity"),
                  "source": truth.column("source")})
    counts = t.group_by("entity", use_threads=False).aggregate([([], "count_all")])
    multi = counts.filter(pc.greater(counts.column("count_all"), 1)).column("entity")
    t = t.filter(pc.is_in(t.column("entity"), multi))
    j = t.join(t, "entity", join_type="inner", left_suffix="_l", right_suffix="_r", use_threads=False)
    keep = pc.less(j.column("record_uid_l"), j.column("record_uid_r"))
    if scope == "link":
        keep = pc.and_(keep, pc.not_equal(j.column("source_l"), j.column("source_r")))
    j = j.filter(keep)
    return pa.table({"left_uid": j.column("record_uid_l"), "right_uid": j.column("record_uid_r")})


def blocked_true_pairs(table: pa.Table, uid: str, rules: list[list[str]], pairs: pa.Table) -> int:
    """How many of ``pairs`` share every key of at least one blocking rule (nulls never match):
    the recall ceiling of a tool that scores whole blocks (Splink)."""
    if not pairs.num_rows:
        return 0
    uids = table.column(uid).combine_chunks()
    li = pc.index_in(pairs.column("left_uid"), uids)
    ri = pc.index_in(pairs.column("right_uid"), uids)
    ok = pc.and_(pc.is_valid(li), pc.is_valid(ri)).to_numpy(zero_copy_only=False)
    li, ri = pc.fill_null(li, 0), pc.fill_null(ri, 0)
    found = np.zeros(pairs.num_rows, dtype=bool)
    for keys in rules:
        same = np.ones(pairs.num_rows, dtype=bool)
        for k in keys:
            col = table.column(k).combine_chunks()
            same &= pc.fill_null(pc.equal(pc.take(col, li), pc.take(col, ri)), False).to_numpy(zero_copy_only=False)
        found |= same
    return int((found & ok).sum())
