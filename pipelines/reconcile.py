"""Reconcile stage: linked records -> one row per person, with the agencies that saw them.

``BuildPersons`` is the stage's PTransform. Attributes are kept when the person's records agree
and left null (with ``has_conflict``) when they disagree: unknown stays null, never guessed.
"""

from __future__ import annotations

from typing import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import codelists, model
from pipelines.link.baseline import DEFAULT_PARTITIONS, stable_bucket

# attributes reported on the person when the records agree; disagreement is a conflict
AGREED_ATTRIBUTES = ("sex", "age_group", "child_adult", "nationality", "exploitation_type")
CONFLICT_ATTRIBUTES = ("sex", "child_adult", "nationality", "exploitation_type")


def _stage_ranks() -> dict[str, int]:
    return {code: rank for rank, code in enumerate(codelists.load("justice_stages").codes_in_order)}


def sorted_lists(lists: pa.ChunkedArray | pa.ListArray) -> pa.ListArray:
    """Sort the values inside each list (hash aggregation returns them in arbitrary order)."""
    lists = lists.combine_chunks() if isinstance(lists, pa.ChunkedArray) else lists
    values = pa.table({"parent": pc.list_parent_indices(lists), "value": pc.list_flatten(lists)})
    ordered = values.sort_by([("parent", "ascending"), ("value", "ascending")]).column("value").combine_chunks()
    offsets = pc.subtract(lists.offsets, lists.offsets[0])
    return pa.ListArray.from_arrays(offsets, ordered)


def persons_of(records: pa.Table, role: str) -> pa.Table:
    """One row per person_id in ``records`` (all records of each person must be present)."""
    target = model.table("person")
    if not records.num_rows:
        return target.schema().empty_table()
    present = [a for a in AGREED_ATTRIBUTES if a in records.column_names]
    by_event = records.sort_by([("person_id", "ascending"), ("event_date", "ascending")])
    aggs = [("record_uid", "count"), ("event_date", "min"), ("department", "first")]
    aggs += [(a, "count_distinct") for a in present] + [(a, "min") for a in present]
    if "stage" in records.column_names:
        ranks = _stage_ranks()
        stage_rank = pc.index_in(by_event.column("stage"), pa.array(list(ranks)))
        by_event = by_event.append_column("stage_rank", stage_rank)
        aggs.append(("stage_rank", "max"))
    summary = by_event.group_by("person_id", use_threads=False).aggregate(aggs).sort_by("person_id")

    # list columns cannot pass through a join: both groupings are sorted by person_id and aligned
    by_source = records.sort_by([("agency", "ascending"), ("feed_id", "ascending")])
    sources = by_source.group_by("person_id", use_threads=False).aggregate(
        [("agency", "distinct"), ("feed_id", "distinct")]
    ).sort_by("person_id")
    summary = summary.append_column("agency_distinct", sorted_lists(sources.column("agency_distinct"))).append_column(
        "feed_id_distinct", sorted_lists(sources.column("feed_id_distinct")))

    n = summary.num_rows
    columns = {
        "person_id": summary.column("person_id"),
        "role": pa.array([role] * n, pa.string()),
        "n_records": summary.column("record_uid_count").cast(pa.int32()),
        "agencies": summary.column("agency_distinct"),
        "feeds": summary.column("feed_id_distinct"),
        "first_event_date": summary.column("event_date_min"),
        "event_year": pc.year(summary.column("event_date_min")).cast(pa.int32()),
        "department": summary.column("department_first"),
    }
    conflict = pa.array(np.zeros(n, dtype=bool))
    for a in present:
        agree = pc.equal(summary.column(f"{a}_count_distinct"), 1)
        columns[a] = pc.if_else(agree, summary.column(f"{a}_min"), pa.scalar(None, pa.string()))
        if a in CONFLICT_ATTRIBUTES:
            conflict = pc.or_(conflict, pc.greater(summary.column(f"{a}_count_distinct"), 1))
    columns["has_conflict"] = conflict
    if "stage_rank_max" in summary.column_names:
        columns["furthest_stage"] = pc.take(pa.array(list(_stage_ranks())), summary.column("stage_rank_max"))
    return model.conform(pa.table(columns), target)


class _PartitionByPerson(beam.DoFn):
    def __init__(self, partitions: int):
        self._partitions = partitions

    def process(self, records: pa.Table) -> Iterator[tuple[int, pa.Table]]:
        buckets = stable_bucket(records.column("person_id").combine_chunks(), self._partitions)
        for bucket in np.unique(buckets):
            yield int(bucket), records.filter(pa.array(buckets == bucket))


class BuildPersons(beam.PTransform):
    """Linked records of one role -> person tables, partitioned by person so no worker holds all."""

    def __init__(self, role: str, partitions: int = DEFAULT_PARTITIONS):
        super().__init__()
        self._role = role
        self._partitions = partitions

    def expand(self, records):
        role = self._role
        return (
            records
            | "PartitionByPerson" >> beam.ParDo(_PartitionByPerson(self._partitions))
            | "GroupByPerson" >> beam.GroupByKey()
            | "Aggregate" >> beam.Map(lambda kv: persons_of(pa.concat_tables(list(kv[1])), role))
        )
