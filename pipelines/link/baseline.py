"""Deterministic baseline linkage.

Two records are the same person when they carry the same valid identity document, or the same
folded full name and birth date. Keys are computed per Arrow batch, partitioned by a hash of the
key so that no worker holds all records, and the resulting edges are clustered into persons
with a connected-components pass on one worker (bounded: documented in docs/linkage.md).
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.harmonise.vector import fold, map_unique

DEFAULT_PARTITIONS = 32
EDGE_SCHEMA = pa.schema([("left_uid", pa.string()), ("right_uid", pa.string()), ("rule", pa.string())])
MEMBERSHIP_SCHEMA = pa.schema([("record_uid", pa.string()), ("person_id", pa.string()), ("match_rule", pa.string())])


def blocking_keys(records: pa.Table) -> pa.Table:
    """(rule, key, record_uid) for every record and rule whose key fields are all present."""
    uid = records.column("record_uid").combine_chunks()
    doc_key = pc.binary_join_element_wise(
        records.column("document_type").combine_chunks(), records.column("document_number").combine_chunks(), ":"
    )
    doc_key = pc.if_else(pc.fill_null(records.column("document_valid").combine_chunks(), False), doc_key,
                         pa.scalar(None, pa.string()))
    name_key = pc.binary_join_element_wise(
        fold(records.column("given_names").combine_chunks()),
        fold(records.column("paternal_surname").combine_chunks()),
        fold(records.column("maternal_surname").combine_chunks()),
        records.column("birth_date").combine_chunks().cast(pa.string()),
        "|",
    )
    parts = []
    for rule, key in (("document", doc_key), ("name_birth_date", name_key)):
        t = pa.table({"rule": pa.array([rule] * len(uid), pa.string()), "key": key, "record_uid": uid})
        parts.append(t.filter(pc.is_valid(key)))
    return pa.concat_tables(parts)


def stable_bucket(values: pa.Array, buckets: int) -> np.ndarray:
    """A deterministic bucket per string (crc32), the same on every worker and run."""
    hashed = map_unique(values, lambda v: zlib.crc32(v.encode("utf-8")) % buckets, pa.int64())
    return hashed.to_numpy(zero_copy_only=False)


class PartitionKeysFn(beam.DoFn):
    def __init__(self, partitions: int):
        self._partitions = partitions

    def process(self, records: pa.Table) -> Iterator[tuple[int, pa.Table]]:
        keys = blocking_keys(records)
        if not keys.num_rows:
            return
        buckets = stable_bucket(pc.binary_join_element_wise(keys.column("rule"), keys.column("key"), "#"),
                                self._partitions)
        for bucket in np.unique(buckets):
            yield int(bucket), keys.filter(pa.array(buckets == bucket))


def edges_within(keys: pa.Table) -> pa.Table:
    """Star edges from the smallest record_uid of each key group to the group's other records."""
    anchors = keys.group_by(["rule", "key"], use_threads=False).aggregate([("record_uid", "min")])
    joined = keys.join(anchors, ["rule", "key"], use_threads=False)
    linked = joined.filter(pc.not_equal(joined.column("record_uid"), joined.column("record_uid_min")))
    return pa.table(
        {"left_uid": linked.column("record_uid_min"), "right_uid": linked.column("record_uid"),
         "rule": linked.column("rule")},
        schema=EDGE_SCHEMA,
    )


def person_id_for(anchor_uids: Iterable[str], role: str) -> list[str]:
    return ["P" + hashlib.blake2b(f"{role}|{u}".encode("utf-8"), digest_size=10).hexdigest() for u in anchor_uids]


def cluster(edges: pa.Table, role: str) -> pa.Table:
    """Connected components over the edges -> membership of every record that has an edge.

    The person id derives from the component's smallest record_uid, so it is stable while the
    same records come back in a later run.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not edges.num_rows:
        return MEMBERSHIP_SCHEMA.empty_table()
    both = pa.chunked_array(edges.column("left_uid").chunks + edges.column("right_uid").chunks).combine_chunks()
    encoded = both.dictionary_encode()
    nodes = encoded.dictionary
    idx = encoded.indices.to_numpy()
    n_edges = edges.num_rows
    graph = coo_matrix((np.ones(n_edges, dtype=np.int8), (idx[:n_edges], idx[n_edges:])), shape=(len(nodes),) * 2)
    _, labels = connected_components(graph, directed=False)
    components = pa.table({"record_uid": nodes, "component": pa.array(labels)})
    anchors = components.group_by("component", use_threads=False).aggregate([("record_uid", "min")])
    components = components.join(anchors, "component", use_threads=False)
    # the rule that first joined each record (documents are the stronger evidence)
    rules = pa.concat_tables(
        [pa.table({"record_uid": edges.column(side), "rule": edges.column("rule")}) for side in ("left_uid", "right_uid")]
    )
    rules = rules.group_by("record_uid", use_threads=False).aggregate([("rule", "min")])
    membership = components.join(rules, "record_uid", use_threads=False)
    person_ids = pa.array(person_id_for(membership.column("record_uid_min").to_pylist(), role), pa.string())
    return pa.table(
        {"record_uid": membership.column("record_uid"), "person_id": person_ids,
         "match_rule": membership.column("rule_min")},
        schema=MEMBERSHIP_SCHEMA,
    )


def attach_persons(records: pa.Table, membership: pa.Table, role: str) -> pa.Table:
    """Add person_id and match_rule; a record with no edge is a person of its own."""
    uid = records.column("record_uid").combine_chunks()
    at = pc.index_in(uid, membership.column("record_uid").combine_chunks())
    linked_pid = pc.take(membership.column("person_id").combine_chunks(), at)
    rule = pc.take(membership.column("match_rule").combine_chunks(), at)
    own = pa.array(person_id_for(uid.to_pylist(), role), pa.string())
    person_id = pc.coalesce(linked_pid, own)
    records = records.set_column(records.column_names.index("person_id"), "person_id", person_id)
    return records.set_column(records.column_names.index("match_rule"), "match_rule", rule)


def _concat(tables: Iterable[pa.Table]) -> pa.Table:
    tables = list(tables)
    return pa.concat_tables(tables) if tables else EDGE_SCHEMA.empty_table()


class LinkPersons(beam.PTransform):
    """Harmonised records of one role -> the same records with person_id and match_rule."""

    def __init__(self, role: str, partitions: int = DEFAULT_PARTITIONS):
        super().__init__()
        self._role = role
        self._partitions = partitions

    def expand(self, records):
        role = self._role
        edges = (
            records
            | "BlockingKeys" >> beam.ParDo(PartitionKeysFn(self._partitions))
            | "GroupByBucket" >> beam.GroupByKey()
            | "EdgesPerBucket" >> beam.Map(lambda kv: edges_within(pa.concat_tables(list(kv[1]))))
        )
        membership = (
            edges
            | "AllEdges" >> beam.combiners.ToList()
            | "Cluster" >> beam.Map(lambda tables: cluster(_concat(tables), role))
        )
        return records | "AttachPersons" >> beam.Map(
            attach_persons, membership=beam.pvalue.AsSingleton(membership), role=role
        )
