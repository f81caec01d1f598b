"""The steward's review queue: uncertain pairs, refused merges and merges made despite a conflict
(cluster.py), both records side by side.

It shows names, document numbers and birth dates, so it lives in the restricted zone; the
steward's report shows only its counts.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core.vector import distinct_across

SIDE_FIELDS = ("agency", "feed_id", "source_record_id", "event_date", "given_names", "paternal_surname",
               "maternal_surname", "birth_date", "age_at_event", "sex", "nationality", "document_type",
               "document_number", "ubigeo")


def review_pairs(uncertain: list[pa.Table], refused: pa.Table) -> pa.Table:
    """One row per pair to review: why, the probability, and each comparison's contribution."""
    parts = []
    for t in uncertain:
        if t.num_rows:
            keep = ["left_uid", "right_uid", "rule", "match_probability", "match_weight"] + [
                c for c in t.column_names if c.startswith("w_") or c.startswith("gamma_")]
            parts.append(t.select(keep).append_column("reason", pa.array(["uncertain"] * t.num_rows, pa.string())))
    pairs = pa.concat_tables(parts, promote_options="permissive") if parts else None
    if refused.num_rows:
        refused = refused.select(["left_uid", "right_uid", "match_probability", "reason"])
        pairs = pa.concat_tables([pairs, refused], promote_options="permissive") if pairs is not None else refused
    if pairs is None:
        return pa.table({"left_uid": pa.array([], pa.string()), "right_uid": pa.array([], pa.string()),
                         "match_probability": pa.array([], pa.float64()), "reason": pa.array([], pa.string())})
    return pairs.sort_by([("match_probability", "descending"), ("left_uid", "ascending")])


def uids_of(pairs: pa.Table) -> pa.Array:
    return distinct_across(pairs, ("left_uid", "right_uid"))


def pick(records: pa.Table, uids: pa.Array) -> pa.Table:
    """The review fields of the records a pair names (a small subset of one batch)."""
    fields = ["record_uid"] + [f for f in SIDE_FIELDS if f in records.column_names]
    return records.filter(pc.is_in(records.column("record_uid"), uids)).select(fields)


def side_by_side(pairs: pa.Table, picked: list[pa.Table]) -> pa.Table:
    picked = [t for t in picked if t.num_rows]
    if not picked or not pairs.num_rows:
        return pairs
    records = pa.concat_tables(picked, promote_options="permissive")
    for side in ("left", "right"):
        at = pc.index_in(pairs.column(f"{side}_uid"), records.column("record_uid"))
        for f in records.column_names[1:]:
            pairs = pairs.append_column(f"{side}_{f}", pc.take(records.column(f), at))
    return pairs
