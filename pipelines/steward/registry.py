"""The person registry: person ids that last from one published run to the next, and across periods.

Every run writes ``restricted/registry/<role>s/``: one row per record it knows of, keyed by the
record's pseudonym (``record_uid`` = "R" + HMAC of feed:record id, never the agency's id itself),
with the person id the record ended in, the delivery period of the run that read it, the record's
period, and the comparison fields the linker needs (names, birth date, document: restricted zone).

The next run starts from the registry of the run ``OUT/current.json`` names:

* records of *other* delivery periods are carried: linked together with this run's records
  (``LinkPersons(carried=...)``), so a person seen in 2018 and again in 2019 is one person;
* records of the *same* delivery period are replaced by what this run reads (a corrected delivery);
* ids: each person of this run keeps the id of the earlier person that holds most of its records
  (ties: the smaller id, then the person with the smaller record); every other person gets a new id,
  the pseudonym of its smallest record key, never one used before. ``lineage/`` says, for every earlier
  id that is not simply kept, what became of it: ``merged`` into another kept id, ``split`` (part of
  its records now in another person), or ``retired`` (none of its records are left).

Periods: a run's period is its delivery period (``--period``, the service's period); a run without
one counts each record in its event year.
"""

from __future__ import annotations

import hashlib
import posixpath

import apache_beam as beam
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import model
from pipelines.core.handoff import Handoff, load_named
from pipelines.core.vector import map_unique
from pipelines.link import aliases, linker
from pipelines.link.cluster import person_id_for
from pipelines.link.prepare import comparison_table
from pipelines.link.settings import LinkageSettings
from pipelines.link.transform import LinkPersons
from pipelines.privacy import pseudonymise
from pipelines.publish import read_output

REGISTRY_FOLDER = "restricted/registry"
LINEAGE_FOLDER = "lineage"
MERGED, SPLIT, RETIRED = "merged", "split", "retired"
KEY_COLUMNS = ("record_uid", "person_id", "delivery_period", "period")
LINEAGE_SCHEMA = model.table("lineage").schema()
# what the records of a person learn from the registry (working columns: persons_of reads them)
PERIOD_COLUMNS = ("first_period_seen", "last_period_seen", "seen_in_earlier_period")


def record_keys(uids: pa.Array | pa.ChunkedArray, key=None) -> pa.Array:
    """The registry's key of each record: "R" + keyed pseudonym of its record_uid (unkeyed hash in tests)."""
    if key is not None:
        hashed = pseudonymise(uids, key, "record")
    else:
        hashed = map_unique(uids, lambda v: hashlib.blake2b(v.encode("utf-8"), digest_size=16).hexdigest(), pa.string())
    return pc.binary_join_element_wise(pa.scalar("R"), hashed, "")


def comparison_fields(role: str, settings: LinkageSettings | None = None) -> pa.Schema:
    """The comparison columns the registry keeps per record (what linking a carried record needs)."""
    settings = settings or linker.load_settings()
    comp = comparison_table(model.table(role).schema().empty_table())
    wanted = set(linker.comparison_columns(settings))
    return pa.schema([f for f in comp.schema if f.name in wanted])


def registry_schema(role: str, settings: LinkageSettings | None = None) -> pa.Schema:
    comp = comparison_fields(role, settings)
    extra = [pa.field(n, pa.string()) for n in KEY_COLUMNS if n != "record_uid"] + [pa.field("run_id", pa.string())]
    return pa.schema(list(comp) + extra)


def upgraded(registry: pa.Table, role: str) -> pa.Table:
    """Registry rows written by an earlier release, with every column this release keeps and they lack.

    Alias columns are rebuilt from the name tokens (pipelines.link.aliases.complete); any other missing
    column says nothing: null, or an empty list (a registry written before document sets compares its
    records on their main document alone, as pipelines.link.documents does for a record with no set)."""
    registry = aliases.complete(registry, "aliases" in model.table(role).schema().names)
    for field in registry_schema(role):
        if field.name not in registry.column_names:
            empty = (pa.array([[]] * registry.num_rows, field.type) if pa.types.is_list(field.type)
                     else pa.nulls(registry.num_rows, field.type))
            registry = registry.append_column(field, empty)
    return registry


def record_periods(records: pa.Table, label: str) -> pa.Array:
    """Each record's period: the run's delivery period, else its event year."""
    if label:
        return pa.array([label] * records.num_rows, pa.string())
    return pc.cast(records.column("event_year").combine_chunks(), pa.string())


def current_keys(records: pa.Table, key, label: str) -> pa.Table:
    """(record_uid, key, period) of this run's records."""
    uid = records.column("record_uid").combine_chunks()
    return pa.table({"record_uid": uid, "key": record_keys(uid, key), "period": record_periods(records, label)})


def carried_rows(previous: pa.Table, label: str, current: list[pa.Table]) -> pa.Table:
    """The previous registry's records of other delivery periods that this run did not read again."""
    other = previous.filter(pc.not_equal(pc.fill_null(previous.column("delivery_period"), ""), label))
    keys = [t.column("key") for t in current if t.num_rows]
    if keys and other.num_rows:
        other = other.filter(pc.invert(pc.is_in(other.column("record_uid"), pa.chunked_array(keys).combine_chunks())))
    return other


def _new_ids(anchors: list[str], used: set[str], role: str, key) -> list[str]:
    """Pseudonym of each anchor; an id used before (an earlier person's) is never handed out again."""
    ids = person_id_for(anchors, role, key)
    taken = pc.is_in(pa.array(ids, pa.string()), pa.array(sorted(used), pa.string())).to_pylist() if used else []
    for i in (i for i, t in enumerate(taken) if t):  # a collision with an earlier id: rare
        anchor, pid, n = anchors[i], ids[i], 1
        while pid in used:
            n += 1
            pid = person_id_for([f"{anchor}#{n}"], role, key)[0]
        used.add(pid)
        ids[i] = pid
    return ids


def assign(membership: pa.Table, current: list[pa.Table], previous: list[pa.Table], label: str, role: str,
           key=None, run_id: str = "") -> dict[str, pa.Table]:
    """Stable person ids for one role.

    ``membership``: the clustering (record_uid -> provisional person id) of this run's and carried
    records; ``current``: (record_uid, key, period) of this run's records; ``previous``: the previous
    registry's (record_uid, person_id, delivery_period, period). Returns ``records`` (this run's
    record_uid -> registry key, period, person_id and the period columns), ``carried`` (carried
    key -> person_id) and ``lineage``."""
    cur = pa.concat_tables([t for t in current if t.num_rows]) if any(t.num_rows for t in current) else \
        pa.table({"record_uid": pa.array([], pa.string()), "key": pa.array([], pa.string()),
                  "period": pa.array([], pa.string())})
    prev = pa.concat_tables([t.select(list(KEY_COLUMNS)) for t in previous if t.num_rows]) if any(
        t.num_rows for t in previous) else pa.schema([(c, pa.string()) for c in KEY_COLUMNS]).empty_table()
    carried = carried_rows(prev, label, [cur])
    # every node of this run's graph: this run's records (by uid) and the carried ones (by key)
    nodes = pa.table({
        "node": pa.concat_arrays([cur.column("record_uid").combine_chunks(), carried.column("record_uid").combine_chunks()]),
        "key": pa.concat_arrays([cur.column("key").combine_chunks(), carried.column("record_uid").combine_chunks()]),
        "period": pa.concat_arrays([cur.column("period").combine_chunks().cast(pa.string()),
                                    carried.column("period").combine_chunks().cast(pa.string())]),
        "is_current": pa.array(np.r_[np.ones(cur.num_rows, bool), np.zeros(carried.num_rows, bool)]),
    })
    at = pc.index_in(nodes.column("node"), membership.column("record_uid"))
    cluster = pc.coalesce(pc.take(membership.column("person_id"), at),
                          pc.binary_join_element_wise(pa.scalar("self:"), nodes.column("node"), ""))
    old = pc.take(prev.column("person_id"), pc.index_in(nodes.column("key"), prev.column("record_uid")))
    nodes = nodes.append_column("cluster", cluster).append_column("old", old)

    kept = _keep_old_ids(nodes)
    clusters = nodes.group_by("cluster", use_threads=False).aggregate([("key", "min")]).sort_by("key_min")
    cluster_ids = clusters.column("cluster").to_pylist()
    final = {c: kept[c] for c in cluster_ids if c in kept}
    fresh = [c for c in cluster_ids if c not in kept]
    anchors = dict(zip(cluster_ids, clusters.column("key_min").to_pylist()))
    used = set(prev.column("person_id").to_pylist()) | set(final.values())
    final.update(zip(fresh, _new_ids([anchors[c] for c in fresh], used, role, key)))
    names = pa.array(list(final), pa.string())
    person = pc.take(pa.array(list(final.values()), pa.string()), pc.index_in(nodes.column("cluster"), names))
    nodes = nodes.append_column("person_id", person)

    periods = _periods(nodes)
    mine = nodes.filter(nodes.column("is_current"))
    at = pc.index_in(mine.column("person_id"), periods.column("person_id"))
    records = pa.table({"record_uid": mine.column("node"), "key": mine.column("key"), "period": mine.column("period"),
                        "person_id": mine.column("person_id"), **{c: pc.take(periods.column(c), at) for c in PERIOD_COLUMNS}})
    theirs = nodes.filter(pc.invert(nodes.column("is_current")))
    return {"records": records,
            "carried": pa.table({"record_uid": theirs.column("key"), "person_id": theirs.column("person_id")}),
            "lineage": _lineage(nodes, prev, set(kept.values()), role, run_id)}


def _keep_old_ids(nodes: pa.Table) -> dict[str, str]:
    """cluster -> the earlier id it keeps: each earlier id goes to the cluster holding most of its
    records, each cluster keeps at most one (the one it holds most of), greedily from the largest share."""
    known = nodes.filter(pc.is_valid(nodes.column("old")))
    if not known.num_rows:
        return {}
    shares = known.group_by(["cluster", "old"], use_threads=False).aggregate([([], "count_all"), ("key", "min")])
    # most persons are one earlier person and nothing else: settled without the greedy loop
    per_cluster = shares.group_by("cluster", use_threads=False).aggregate([([], "count_all")])
    per_old = shares.group_by("old", use_threads=False).aggregate([([], "count_all")])
    alone = pc.and_(
        pc.is_in(shares.column("cluster"), per_cluster.filter(pc.equal(per_cluster.column("count_all"), 1)).column("cluster")),
        pc.is_in(shares.column("old"), per_old.filter(pc.equal(per_old.column("count_all"), 1)).column("old")))
    settled = shares.filter(alone)
    kept = dict(zip(settled.column("cluster").to_pylist(), settled.column("old").to_pylist()))
    shares = shares.filter(pc.invert(alone)).sort_by(
        [("count_all", "descending"), ("old", "ascending"), ("key_min", "ascending")])
    taken: set[str] = set()
    for cluster, old in zip(shares.column("cluster").to_pylist(), shares.column("old").to_pylist()):
        if cluster not in kept and old not in taken:
            kept[cluster] = old
            taken.add(old)
    return kept


def _periods(nodes: pa.Table) -> pa.Table:
    """Per person: first and last period seen over all its records, and whether a carried record
    is from a period before this run's first record of the person."""
    every = nodes.group_by("person_id", use_threads=False).aggregate([("period", "min"), ("period", "max")])
    mine = nodes.filter(nodes.column("is_current")).group_by("person_id", use_threads=False).aggregate(
        [("period", "min")]).rename_columns(["person_id", "own_first"])
    before = nodes.filter(pc.invert(nodes.column("is_current"))).group_by("person_id", use_threads=False).aggregate(
        [("period", "min")]).rename_columns(["person_id", "carried_first"])
    t = every.join(mine, "person_id", join_type="left outer", use_threads=False).join(
        before, "person_id", join_type="left outer", use_threads=False)
    return pa.table({"person_id": t.column("person_id"), "first_period_seen": t.column("period_min"),
                     "last_period_seen": t.column("period_max"),
                     "seen_in_earlier_period": pc.fill_null(pc.less(t.column("carried_first"), t.column("own_first")), False)})


def _lineage(nodes: pa.Table, prev: pa.Table, kept: set[str], role: str, run_id: str) -> pa.Table:
    moved = nodes.filter(pc.and_(pc.is_valid(nodes.column("old")), pc.not_equal(nodes.column("old"), nodes.column("person_id"))))
    moved = moved.group_by(["old", "person_id"], use_threads=False).aggregate([([], "count_all")]).sort_by(
        [("old", "ascending"), ("person_id", "ascending")])
    old, new = moved.column("old"), moved.column("person_id")
    # an earlier id that lives on lost part of its records (split); one that does not went into another
    # kept id (merged) or into a new person (split)
    earlier = pa.array(sorted(kept | set(prev.column("person_id").to_pylist())), pa.string())
    change = pc.if_else(pc.and_(pc.invert(pc.is_in(old, pa.array(sorted(kept), pa.string()))), pc.is_in(new, earlier)),
                        pa.scalar(MERGED), pa.scalar(SPLIT))
    gone = pc.unique(prev.column("person_id")).filter(pc.invert(pc.is_in(
        pc.unique(prev.column("person_id")), nodes.filter(pc.is_valid(nodes.column("old"))).column("old"))))
    rows = pa.table({"role": pa.array([role] * (moved.num_rows + len(gone)), pa.string()),
                     "old_person_id": pa.concat_arrays([old.combine_chunks(), gone]),
                     "new_person_id": pa.concat_arrays([new.combine_chunks(), pa.nulls(len(gone), pa.string())]),
                     "change": pa.concat_arrays([change.combine_chunks() if moved.num_rows else pa.array([], pa.string()),
                                                 pa.array([RETIRED] * len(gone), pa.string())]),
                     "records": pa.concat_arrays([moved.column("count_all").combine_chunks(), pa.nulls(len(gone), pa.int64())]),
                     "run_id": pa.array([run_id] * (moved.num_rows + len(gone)), pa.string())})
    return rows.cast(LINEAGE_SCHEMA)


def apply_assignment(records: pa.Table, assigned: dict[str, pa.Table]) -> pa.Table:
    """This run's records with their stable person id and the person's period columns."""
    table = assigned["records"]
    at = pc.index_in(records.column("record_uid"), table.column("record_uid"))
    records = records.set_column(records.column_names.index("person_id"), "person_id",
                                 pc.take(table.column("person_id"), at))
    for c in PERIOD_COLUMNS:
        records = records.append_column(c, pc.take(table.column(c), at))
    return records


def registry_rows(comparison_rows: pa.Table, assigned: dict[str, pa.Table], role: str, label: str, run_id: str,
                  settings: LinkageSettings | None = None) -> pa.Table:
    """This run's records as registry rows (restricted: comparison fields included), made of the
    comparison rows the linkage made of them (a superset of the registry's fields) and the keys,
    periods and stable person ids ``assign`` gave them."""
    schema = registry_schema(role, settings)
    table = assigned["records"]
    at = pc.index_in(comparison_rows.column("record_uid"), table.column("record_uid"))
    n = comparison_rows.num_rows
    rows = comparison_rows.set_column(comparison_rows.column_names.index("record_uid"), "record_uid",
                                      pc.take(table.column("key"), at))
    rows = rows.append_column("person_id", pc.take(table.column("person_id"), at)).append_column(
        "delivery_period", pa.array([label] * n, pa.string())).append_column(
        "period", pc.take(table.column("period"), at)).append_column("run_id", pa.array([run_id] * n, pa.string()))
    return rows.select(schema.names).cast(schema)


def carried_registry_rows(previous: pa.Table, assigned: dict[str, pa.Table], label: str,
                          current: list[pa.Table]) -> pa.Table:
    """The carried rows of the previous registry, with the person id they hold now."""
    rows = carried_rows(previous, label, current)
    table = assigned["carried"]
    pid = pc.take(table.column("person_id"), pc.index_in(rows.column("record_uid"), table.column("record_uid")))
    return rows.set_column(rows.column_names.index("person_id"), "person_id", pid)


def previous_registry(previous_run: str | None, folder: str) -> str | None:
    """Glob of the previous run's registry files for one role, or None when it has none."""
    if not previous_run:
        return None
    fs, path = fsspec.core.url_to_fs(previous_run)
    glob = f"{path.rstrip('/')}/{REGISTRY_FOLDER}/{folder}/*.parquet"
    return posixpath.join(previous_run.rstrip("/"), REGISTRY_FOLDER, folder, "*.parquet") if fs.glob(glob) else None


def judgements_on_carried(judged: pa.Table | None, previous_glob: str | None, label: str, key) -> pa.Table | None:
    """Judgements with each side named as the linkage names it: a record carried from another
    period by its registry key, this run's records by their record_uid. (A judgement made in 2018
    keeps holding in 2019, when its records are carried.)"""
    if judged is None or not judged.num_rows or not previous_glob:
        return judged
    fs, path = fsspec.core.url_to_fs(previous_glob)
    previous = read_output(fs, posixpath.dirname(path), columns=["record_uid", "delivery_period"])
    carried = previous.filter(pc.not_equal(pc.fill_null(previous.column("delivery_period"), ""), label)).column("record_uid")
    for side in ("left_uid", "right_uid"):
        uids = judged.column(side).combine_chunks()
        keys = record_keys(uids, key)
        judged = judged.set_column(judged.column_names.index(side), side,
                                   pc.if_else(pc.is_in(keys, carried), keys, uids))
    return judged


class LinkWithRegistry(beam.PTransform):
    """``LinkPersons`` with the registry around it: carried records of earlier periods join the
    linkage, the stewards' judgements are enforced, and persons get their stable ids.

    Returns LinkPersons' outputs (``linked`` with stable ids and the period columns) plus
    ``registry`` (rows for this run's registry: a tuple of this run's records' rows and the carried
    ones, which ``publish.WriteTables`` hands off before it flattens them) and ``lineage``."""

    def __init__(self, role: str, folder: str, key, run_id: str, period: str | None = None,
                 previous_run: str | None = None, judged: pa.Table | None = None, pinned_model: dict | None = None,
                 work: str | None = None, processes: int = 1):
        super().__init__()
        self._work = work  # LinkPersons' handoff folder
        self._processes = processes  # LinkPersons' processes of this machine (pipelines.core.local_pool)
        self._role, self._folder, self._key, self._run_id = role, folder, key, run_id
        self._label = period or ""
        self._previous = previous_registry(previous_run, folder)
        self._judged = judgements_on_carried(judged, self._previous, self._label, key)
        self._pinned = pinned_model

    def expand(self, records):
        role, key, label, run_id = self._role, self._key, self._label, self._run_id
        if self._previous:
            previous = (records.pipeline | "ReadRegistry" >> beam.io.ReadFromParquetBatched(self._previous)
                        | "UpgradeRegistry" >> beam.Map(upgraded, role))
        else:
            previous = records.pipeline | "NoRegistry" >> beam.Create([registry_schema(role).empty_table()])
        # side inputs' tables handed off: each reader of a side input gets the runner's encoded copy,
        # kept until the job ends (see LinkPersons' clustering); the side inputs hold file names
        handoff = Handoff(self._work)
        current = records | "RecordKeys" >> beam.Map(
            lambda t: handoff.sub("keys").store(current_keys(t, key, label), "keys"))
        fields = comparison_fields(role).names
        carried = previous | "Carried" >> beam.Map(
            lambda t, cur: carried_rows(t, label, [Handoff.load(c) for c in cur]).select(fields),
            cur=beam.pvalue.AsList(current))
        linkage = records | "Link" >> LinkPersons(role, key=key, pinned_model=self._pinned, judged=self._judged,
                                                  carried=carried, work=self._work, processes=self._processes)
        previous_keys = previous | "RegistryKeys" >> beam.Map(lambda t: t.select(list(KEY_COLUMNS)))
        assigned = linkage["membership"] | "StableIds" >> beam.Map(
            lambda membership, current, previous: handoff.sub("assigned").store_named(assign(
                Handoff.load(membership), [Handoff.load(c) for c in current], previous, label, role, key, run_id)),
            current=beam.pvalue.AsList(current), previous=beam.pvalue.AsList(previous_keys))
        linked = linkage["linked"] | "AttachStableIds" >> beam.Map(
            lambda records, assigned: apply_assignment(records, load_named(assigned)),
            assigned=beam.pvalue.AsSingleton(assigned)).with_output_types(pa.Table)
        rows = linkage["rows"] | "RegistryRows" >> beam.Map(
            lambda ref, assigned: registry_rows(Handoff.load(ref), load_named(assigned), role, label, run_id),
            assigned=beam.pvalue.AsSingleton(assigned))
        kept = previous | "CarriedRows" >> beam.Map(
            lambda t, assigned, current: carried_registry_rows(t, load_named(assigned), label,
                                                               [Handoff.load(c) for c in current]),
            assigned=beam.pvalue.AsSingleton(assigned), current=beam.pvalue.AsList(current))
        return {**linkage, "linked": linked,
                "registry": (rows, kept),
                "lineage": assigned | "Lineage" >> beam.Map(lambda a: Handoff.load(a["lineage"]))}
