"""Reconcile stage: linked records -> persons, the conflicts inside them, and the overlap.

``BuildPersons`` (per role) groups each person's records on one worker (partitioned by person)
and yields the person row and the attributes its agencies disagree on; ``Overlap`` and
``Funnel`` aggregate persons into the tables that answer the seed report's question: how far
the agencies' counts overlap, and how many of those arrested were convicted. Attributes are kept
on the person when the records agree and left null when they disagree: never guessed.
"""

from __future__ import annotations

from typing import Iterator, Tuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import codelists, model
from pipelines.core.arrow_coder import ArrowTableCoder  # noqa: F401 (registers pa.Table's coder)
from pipelines.core.handoff import Handoff, load_all
from pipelines.core.ids import stable_bucket

DEFAULT_PARTITIONS = 32
# attributes reported on the person when the records agree
AGREED_ATTRIBUTES = ("sex", "age_group", "child_adult", "nationality", "exploitation_type")
# attributes whose disagreement is a conflict for the steward
CONFLICT_ATTRIBUTES = ("sex", "age_group", "child_adult", "nationality", "exploitation_type", "offence")
DETAINED = "DETAINED"
# person columns the person registry puts on every record (pipelines/steward/registry.py), and how
# a person's records combine them (they agree: the registry computes them per person)
PERIOD_COLUMNS = {"first_period_seen": "min", "last_period_seen": "max", "seen_in_earlier_period": "max"}


def _stage_order() -> list[str]:
    return list(codelists.load("justice_stages").codes_in_order)


def sorted_lists(lists: pa.ChunkedArray | pa.ListArray) -> pa.ListArray:
    """Sort the values inside each list (hash aggregation returns them in arbitrary order)."""
    lists = lists.combine_chunks() if isinstance(lists, pa.ChunkedArray) else lists
    values = pa.table({"parent": pc.list_parent_indices(lists), "value": pc.list_flatten(lists)})
    ordered = values.sort_by([("parent", "ascending"), ("value", "ascending")]).column("value").combine_chunks()
    offsets = pc.subtract(lists.offsets, lists.offsets[0])
    return pa.ListArray.from_arrays(offsets, ordered)


def _distinct_lists(records: pa.Table, column: str) -> pa.Table:
    """person_id -> sorted distinct non-null values of ``column``."""
    grouped = records.select(["person_id", column]).group_by("person_id", use_threads=False).aggregate(
        [(column, "distinct", pc.CountOptions(mode="only_valid"))])
    return pa.table({"person_id": grouped.column("person_id"),
                     column: sorted_lists(grouped.column(f"{column}_distinct"))}).sort_by("person_id")


def _document_types(records: pa.Table, person_ids: pa.ChunkedArray) -> pa.Array:
    """Per person (in ``person_ids`` order): the sorted types of every valid document its records carry."""
    docs = records.column("documents").combine_chunks()
    owners = pc.take(records.column("person_id").combine_chunks(), pc.list_parent_indices(docs))
    types = pa.table({"person_id": owners, "document_types": pc.utf8_slice_codeunits(pc.list_flatten(docs), 0, 2)})
    lists = _distinct_lists(types, "document_types")
    return pc.take(lists.column("document_types"), pc.index_in(person_ids, value_set=lists.column("person_id")))


def _stages_attested(records: pa.Table) -> pa.Table:
    """(person_id, stage) per record, plus DETAINED where a record says the person was detained."""
    stages = pa.table({"person_id": records.column("person_id").combine_chunks(),
                       "stage": records.column("stage").combine_chunks().cast(pa.string())})
    detained = records.filter(pc.fill_null(records.column("detained"), False)).column("person_id").combine_chunks()
    extra = pa.table({"person_id": detained, "stage": pa.array([DETAINED] * len(detained), pa.string())})
    return pa.concat_tables([stages, extra.cast(stages.schema)])


def persons_of(records: pa.Table, role: str) -> pa.Table:
    """One row per person_id in ``records`` (all records of each person must be present)."""
    target = model.table("person")
    if not records.num_rows:
        return target.schema().empty_table()
    present = [a for a in AGREED_ATTRIBUTES if a in records.column_names]
    by_event = records.sort_by([("person_id", "ascending"), ("event_date", "ascending")])
    aggs = [("record_uid", "count"), ("event_date", "min"), ("department", "first")]
    if "origin_department" in records.column_names:
        aggs.append(("origin_department", "first"))  # the earliest record that says where the person comes from
    aggs += [(a, "count_distinct") for a in present] + [(a, "min") for a in present]
    summary = by_event.group_by("person_id", use_threads=False).aggregate(aggs).sort_by("person_id")
    n = summary.num_rows
    columns = {
        "person_id": summary.column("person_id"),
        "role": pa.array([role] * n, pa.string()),
        "n_records": summary.column("record_uid_count").cast(pa.int32()),
        "agencies": _distinct_lists(records, "agency").column("agency"),
        "feeds": _distinct_lists(records, "feed_id").column("feed_id"),
        "first_event_date": summary.column("event_date_min"),
        "event_year": pc.year(summary.column("event_date_min")).cast(pa.int32()),
        "department": summary.column("department_first"),
    }
    if "origin_department" in records.column_names:
        columns["origin_department"] = summary.column("origin_department_first")
    if "documents" in records.column_names:
        columns["document_types"] = _document_types(records, summary.column("person_id"))
    for a in present:
        agree = pc.equal(summary.column(f"{a}_count_distinct"), 1)
        columns[a] = pc.if_else(agree, summary.column(f"{a}_min"), pa.scalar(None, pa.string()))
    periods = [(c, how) for c, how in PERIOD_COLUMNS.items() if c in records.column_names]
    if periods:
        seen = records.group_by("person_id", use_threads=False).aggregate(periods).sort_by("person_id")
        columns.update({c: seen.column(f"{c}_{how}") for c, how in periods})
    conflicted = conflicts_of(records, role).column("person_id")
    columns["has_conflict"] = pc.is_in(summary.column("person_id"), conflicted)
    if "stage" in records.column_names:
        stages = _distinct_lists(_stages_attested(records), "stage").column("stage")
        order = _stage_order()
        rank = pc.index_in(pc.list_flatten(stages), pa.array(order))
        furthest = pa.table({"p": pc.list_parent_indices(stages), "r": rank}).group_by("p", use_threads=False) \
            .aggregate([("r", "max")]).sort_by("p")
        best = np.full(n, -1)
        best[furthest.column("p").to_numpy()] = furthest.column("r_max").to_numpy()
        columns["stages"] = stages
        columns["furthest_stage"] = pc.take(pa.array(order + [None], pa.string()), pa.array(np.where(best < 0, len(order), best)))
    return model.conform(pa.table(columns), target)


def conflicts_of(records: pa.Table, role: str) -> pa.Table:
    """(person, attribute) pairs whose agencies disagree, with each agency's value."""
    target = model.table("conflict")
    parts = []
    for attribute in CONFLICT_ATTRIBUTES:
        if attribute not in records.column_names:
            continue
        values = records.select(["person_id", "agency", attribute]).filter(pc.is_valid(records.column(attribute)))
        counts = values.group_by("person_id", use_threads=False).aggregate(
            [(attribute, "count_distinct"), (attribute, "count")])
        disputed = counts.filter(pc.greater(counts.column(f"{attribute}_count_distinct"), 1))
        if not disputed.num_rows:
            continue
        values = values.filter(pc.is_in(values.column("person_id"), disputed.column("person_id")))
        labelled = pa.table({"person_id": values.column("person_id"),
                             "value": pc.binary_join_element_wise(values.column("agency"), values.column(attribute), "=")})
        listed = _distinct_lists(labelled, "value")
        n_records = disputed.sort_by("person_id").column(f"{attribute}_count").cast(pa.int32())
        parts.append(pa.table({
            "person_id": listed.column("person_id"), "role": pa.array([role] * listed.num_rows, pa.string()),
            "attribute": pa.array([attribute] * listed.num_rows, pa.string()), "values": listed.column("value"),
            "n_records": n_records}))
    if not parts:
        return target.schema().empty_table()
    return model.conform(pa.concat_tables(parts), target)


def _seen_before(persons: pa.Table) -> pa.Array:
    return pc.fill_null(persons.column("seen_in_earlier_period"), False).combine_chunks() \
        if "seen_in_earlier_period" in persons.column_names else pa.array([False] * persons.num_rows)


def overlap_counts(persons: pa.Table) -> pa.Table:
    target = model.table("overlap")
    if not persons.num_rows:
        return target.schema().empty_table()
    table = pa.table({"role": persons.column("role"), "event_year": persons.column("event_year"),
                      "agencies": pc.binary_join(persons.column("agencies"), "+"),
                      "n_agencies": pc.list_value_length(persons.column("agencies")).cast(pa.int32()),
                      "seen_in_earlier_period": _seen_before(persons)})
    counted = table.group_by(["role", "event_year", "agencies", "n_agencies", "seen_in_earlier_period"],
                             use_threads=False).aggregate(
        [([], "count_all")])
    return model.conform(counted.rename_columns(
        [("persons" if c == "count_all" else c) for c in counted.column_names]), target)


def funnel_counts(persons: pa.Table) -> pa.Table:
    """Persons per stage and per (stage, later stage) pair, by year."""
    target = model.table("funnel")
    offenders = persons.filter(pc.equal(persons.column("role"), "offender")) if persons.num_rows else persons
    if not offenders.num_rows:
        return target.schema().empty_table()
    order = _stage_order()
    rows = []
    years = offenders.column("event_year")
    seen = _seen_before(offenders)
    stages = offenders.column("stages")
    flat = pa.table({"p": pc.list_parent_indices(stages), "s": pc.list_flatten(stages)})
    positions = pa.array(np.arange(offenders.num_rows))
    has = {s: pc.is_in(positions, flat.filter(pc.equal(flat.column("s"), s)).column("p")) for s in order}
    for i, stage in enumerate(order):
        rows.append(pa.table({"event_year": years, "seen_in_earlier_period": seen, "from_stage": pa.array([stage] * len(years)),
                              "to_stage": pa.nulls(len(years), pa.string()), "hit": has[stage]}))
        for later in order[i + 1:]:
            rows.append(pa.table({"event_year": years, "seen_in_earlier_period": seen,
                                  "from_stage": pa.array([stage] * len(years)),
                                  "to_stage": pa.array([later] * len(years)), "hit": pc.and_(has[stage], has[later])}))
    table = pa.concat_tables(rows)
    table = table.filter(table.column("hit"))
    counted = table.group_by(["event_year", "seen_in_earlier_period", "from_stage", "to_stage"],
                             use_threads=False).aggregate([([], "count_all")])
    return model.conform(counted.rename_columns(
        [("persons" if c == "count_all" else c) for c in counted.column_names]), target)


def merge_counts(tables: list[pa.Table], keys: list[str], target: str) -> pa.Table:
    tables = [t for t in tables if t is not None and t.num_rows]
    schema = model.table(target).schema()
    if not tables:
        return schema.empty_table()
    summed = pa.concat_tables(tables).group_by(keys, use_threads=False).aggregate([("persons", "sum")])
    summed = summed.rename_columns([("persons" if c == "persons_sum" else c) for c in summed.column_names])
    return model.conform(summed, model.table(target)).sort_by([(k, "ascending") for k in keys])


class _PartitionByPerson(beam.DoFn):
    def __init__(self, partitions: int, handoff: Handoff):
        self._partitions = partitions
        self._handoff = handoff

    def process(self, records: pa.Table) -> Iterator[tuple[int, pa.Table | str]]:
        buckets = stable_bucket(records.column("person_id").combine_chunks(), self._partitions)
        for bucket in np.unique(buckets):
            yield int(bucket), self._handoff.store(records.filter(pa.array(buckets == bucket)), "persons")


class _PersonsAndConflictsFn(beam.DoFn):
    def __init__(self, role: str):
        self._role = role

    def process(self, element):
        records = load_all(element[1])
        yield persons_of(records, self._role)
        conflicts = conflicts_of(records, self._role)
        if conflicts.num_rows:
            yield beam.pvalue.TaggedOutput("conflicts", conflicts)


class BuildPersons(beam.PTransform):
    """Linked records of one role -> {"persons", "conflicts"}, partitioned by person."""

    def __init__(self, role: str, partitions: int = DEFAULT_PARTITIONS, work: str | None = None):
        super().__init__()
        self._role = role
        self._partitions = partitions
        self._handoff = Handoff(work)  # with a folder, the grouped records wait there, not in the runner

    def expand(self, records):
        result = (
            records
            # typed: the runner holds the persons (and, without a work folder, the grouped records)
            # as zstd Arrow IPC (the link stage's ArrowTableCoder), not pickled
            | "PartitionByPerson" >> beam.ParDo(_PartitionByPerson(self._partitions, self._handoff)).with_output_types(
                Tuple[int, self._handoff.type])
            | "GroupByPerson" >> beam.GroupByKey()
            | "PersonsAndConflicts" >> beam.ParDo(_PersonsAndConflictsFn(self._role)).with_output_types(
                pa.Table).with_outputs("conflicts", main="persons")
        )
        return {"persons": result.persons, "conflicts": result.conflicts}


class CountPersons(beam.PTransform):
    """Persons -> one small table (overlap or funnel), summed across partitions on one worker."""

    def __init__(self, target: str):
        super().__init__()
        self._target = target

    def expand(self, persons):
        count = overlap_counts if self._target == "overlap" else funnel_counts
        keys = [f.name for f in model.table(self._target).fields if f.name != "persons"]
        target = self._target
        return (persons | "Count" >> beam.Map(count)
                | "Sum" >> beam.combiners.ToList()
                | "Merge" >> beam.Map(merge_counts, keys, target))
