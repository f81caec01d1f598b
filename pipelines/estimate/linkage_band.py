"""The linkage band: how much the estimate moves with the linkage's uncertain pairs.

The run's persons are the clustering at the upper review threshold (``match_probability``): a pair
below it is not linked. The review queue holds the uncertain pairs, with match probability in
``[review_lower, match_probability)``. Linking them all gives the clustering at the lower review
threshold: fewer persons, more of them on several lists, so a lower estimate (a missed link splits a
person and inflates the one-list cells; a false link does the opposite). The stage re-estimates "all"
and the stratified estimate on that clustering; the band is the span of the two estimates, published
beside the statistical interval. The clustering guards (cluster.py) are not re-applied to these
pairs, so the lower end is the most the uncertain links can merge.
"""

from __future__ import annotations

from collections import Counter
from typing import Callable

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core.vector import distinct_across

UNCERTAIN = "uncertain"  # the review queue's reason for a pair in the review band (pipelines/link/review.py)


def uncertain_uids(review: pa.Table) -> pa.Array:
    return distinct_across(_uncertain(review), ("left_uid", "right_uid"))


def _uncertain(review: pa.Table) -> pa.Table:
    if not review.num_rows or "reason" not in review.column_names:
        return pa.table({"left_uid": pa.array([], pa.string()), "right_uid": pa.array([], pa.string())})
    return review.filter(pc.equal(review.column("reason"), UNCERTAIN)).select(["left_uid", "right_uid"])


def owners(records: pa.Table, uids: pa.Array) -> pa.Table:
    """record_uid -> person_id for the records the uncertain pairs name."""
    if not records.num_rows:
        return pa.table({"record_uid": pa.array([], pa.string()), "person_id": pa.array([], pa.string())})
    return records.filter(pc.is_in(records.column("record_uid"), uids)).select(["record_uid", "person_id"])


def person_pairs(review: pa.Table, owned: list[pa.Table]) -> list[tuple[str, str]]:
    """The uncertain pairs as pairs of distinct persons (both records already in one person: dropped)."""
    pairs = _uncertain(review)
    owned = [t for t in owned if t.num_rows]
    if not pairs.num_rows or not owned:
        return []
    table = pa.concat_tables(owned)
    out = set()
    for side_a, side_b in zip(*(pc.take(table.column("person_id"), pc.index_in(pairs.column(c), table.column(
            "record_uid"))).to_pylist() for c in ("left_uid", "right_uid"))):
        if side_a and side_b and side_a != side_b:
            out.add(tuple(sorted((side_a, side_b))))
    return sorted(out)


class UncertainPersonPairs(beam.PTransform):
    """(review queue, linked records) of one role -> one element: ``(role, [(person_a, person_b), ...])``."""

    def __init__(self, role: str):
        super().__init__()
        self._role = role

    def expand(self, inputs):
        review, linked = inputs
        role = self._role
        uids = review | "UncertainUids" >> beam.Map(uncertain_uids)
        owned = (linked | "Owners" >> beam.Map(owners, uids=beam.pvalue.AsSingleton(uids))
                 | "AllOwners" >> beam.combiners.ToList())
        return review | "PersonPairs" >> beam.Map(
            lambda r, owned: (role, person_pairs(r, owned)), owned=beam.pvalue.AsSingleton(owned))


def involved_persons(persons: pa.Table, ids: set[str]) -> list[dict]:
    """The rows of the persons named by an uncertain pair (few: per-row dicts are fine here)."""
    if not ids or not persons.num_rows:
        return []
    return persons.filter(pc.is_in(persons.column("person_id"), pa.array(sorted(ids), pa.string()))).to_pylist()


def relinked_cells(cells: Counter, persons: list[dict], pairs: list[tuple[str, str]],
                   key_of: Callable[[dict], tuple], merge_rows: Callable[[list[dict]], dict]) -> tuple[Counter, int]:
    """The cell counts at the lower review threshold: every uncertain pair linked (union-find over
    persons). Returns (cells, persons fewer than in the run)."""
    by_id = {p["person_id"]: p for p in persons}
    parent = {pid: pid for pid in by_id}

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in pairs:
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    groups: dict[str, list[dict]] = {}
    for pid, row in by_id.items():
        groups.setdefault(find(pid), []).append(row)
    out, fewer = Counter(cells), 0
    for members in groups.values():
        if len(members) < 2:
            continue
        for row in members:
            out[key_of(row)] -= 1
        out[key_of(merge_rows(members))] += 1
        fewer += len(members) - 1
    return +out, fewer
