"""Clustering scored edges into persons without chaining strangers.

Edges are merged strongest first (union-find). A merge that would put two different valid
documents of the same type kept for life (a DNI; not a passport, renewed under a new number), or
birth dates more than a year apart, into one person is refused:
the edge goes to the review queue instead of silently chaining two people through a third
record. One exception, never silent either: when the rest of the pair's evidence alone (its match
weight without the conflicting comparison) reaches ``clustering.merge_conflicts_at`` in the
settings, the conflicting value is taken for a corrupted field (a mistyped document, a birth date
keyed from another form), the records are merged and the merge is flagged for review. Edges at a level the
settings name in ``clustering.refuse_levels`` (given names that differ: siblings, twins) are
never merged, but for the narrow case of ``clustering.refusal_lifted_when`` (one given name
shortened two ways or mistyped twice, on one document and birth date, with no sign of a second
person), merged and flagged; a DNI the guard saw on two such people is not held against the
copy's holder joining her own records (``clustering.copied_document_when``). Runs on one
worker; bounded (see docs/linkage.md: 10 million edges take about two minutes and 5 GB here).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from rapidfuzz import process
from rapidfuzz.distance import OSA

from pipelines.link.documents import for_life_types
from pipelines.link.settings import Clustering, LinkageSettings

MEMBERSHIP_SCHEMA = pa.schema([("record_uid", pa.string()), ("person_id", pa.string()), ("match_rule", pa.string())])
REFUSED_SCHEMA = pa.schema([("left_uid", pa.string()), ("right_uid", pa.string()),
                            ("match_probability", pa.float64()), ("reason", pa.string())])
MAX_BIRTH_DAYS_APART = 366
# the comparison type whose contribution a conflict discounts before the override is weighed
CONFLICT_COMPARISON_TYPE = {"different_valid_documents": "document", "incompatible_birth_dates": "birth_date"}
FLAGGED_PREFIX = "merged_despite_"
# what the guard reads of each record, carried with every pair so that it needs no other lookup
GUARD_COLUMNS = ("document_type", "document_core", "document_valid", "birth_date", "given_words")


def person_id_for(anchor_uids: Iterable[str], role: str, key=None) -> list[str]:
    """Person id from the cluster's smallest record_uid: stable while those records come back.

    With a pseudonymisation key (privacy.PseudonymKey) it is a keyed HMAC, stable across runs with
    the same key; without one (tests, benchmarks) an unkeyed hash.
    """
    anchors = list(anchor_uids)
    if key is not None:
        from pipelines.privacy import pseudonymise

        return ["P" + p for p in pseudonymise(pa.array(anchors, pa.string()), key, f"person:{role}").to_pylist()]
    return ["P" + hashlib.blake2b(f"{role}|{u}".encode("utf-8"), digest_size=10).hexdigest() for u in anchors]


def _incompatible_births(a: int, b: int) -> bool:
    """Birth dates (days since the epoch) of two different people: more than a year apart and not
    one keystroke apart as written (1962-05-04 and 1926-05-04 is a typo, not another person)."""
    if abs(a - b) <= MAX_BIRTH_DAYS_APART:
        return False
    epoch = dt.date(1970, 1, 1)
    return OSA.distance((epoch + dt.timedelta(days=a)).strftime("%Y%m%d"),
                        (epoch + dt.timedelta(days=b)).strftime("%Y%m%d")) > 1


class _Clusters:
    """Union-find that remembers each cluster's documents and birth-date range."""

    def __init__(self, n: int):
        self.parent = list(range(n))
        self.size = [1] * n
        self.docs: list[dict[str, str] | None] = [None] * n
        self.births: list[set[int] | None] = [None] * n  # days since the epoch

    def find(self, x: int) -> int:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def conflict(self, a: int, b: int) -> str | None:
        da, db = self.docs[a], self.docs[b]
        if da and db:
            for doc_type, number in da.items():
                # one edit apart is a typo of the same document, not another person's
                if doc_type in db and OSA.distance(db[doc_type], number) > 1:
                    return "different_valid_documents"
        ba, bb = self.births[a], self.births[b]
        if ba and bb and any(_incompatible_births(x, y) for x in ba for y in bb):
            return "incompatible_birth_dates"
        return None

    def union(self, a: int, b: int, overriding: str | None = None) -> None:
        """Merge b into a. A merge made despite a conflict keeps only the larger side's value of
        the conflicting field, so that one corrupted value does not block the person's next
        records (the flagged merge is in the review queue)."""
        if overriding and self.size[b] > self.size[a]:
            a, b = b, a
        self.parent[b] = a
        self.size[a] += self.size[b]
        if self.docs[b] and overriding != "different_valid_documents":
            self.docs[a] = {**(self.docs[b]), **(self.docs[a] or {})}
        if self.births[b] and overriding != "incompatible_birth_dates":
            self.births[a] = (self.births[a] or set()) | self.births[b]


def _node_attributes(edges: pa.Table, idx: np.ndarray, n_nodes: int, for_life: list[str] | None = None) -> pa.Table:
    """Per node: its valid document (type, number) and birth date, as the edges carry them. Only a
    document of a type kept for life (``for_life``; every type when None) can conflict: a passport
    renewed under a new number is not another person."""
    m = edges.num_rows
    parts = []
    for side, offset in (("left", 0), ("right", m)):
        doc_type = edges.column(f"{side}_document_type")
        usable = pc.fill_null(edges.column(f"{side}_document_valid"), False)
        if for_life is not None:
            usable = pc.and_(usable, pc.fill_null(pc.is_in(doc_type, pa.array(for_life, pa.string())), False))
        parts.append(pa.table({
            "node": pa.array(idx[offset:offset + m]),
            "doc_type": pc.if_else(usable, doc_type, pa.scalar(None, pa.string())),
            "doc": edges.column(f"{side}_document_core"),
            "birth": edges.column(f"{side}_birth_date").cast(pa.int32()),
        }))
    table = pa.concat_tables(parts)
    return table.group_by("node", use_threads=False).aggregate(
        [("doc_type", "first"), ("doc", "first"), ("birth", "first")]).sort_by("node")


def _suspect_components(attrs: pa.Table, labels: np.ndarray) -> np.ndarray:
    """Components that might chain strangers: two document numbers of one type, or birth dates
    more than a year apart. Only these go through the (slower) guarded merge."""
    comp = pa.array(labels[attrs.column("node").to_numpy()])
    t = attrs.append_column("comp", comp)
    docs = t.filter(pc.and_(pc.is_valid(t.column("doc_type_first")), pc.is_valid(t.column("doc_first"))))
    docs = docs.group_by(["comp", "doc_type_first"], use_threads=False).aggregate([("doc_first", "count_distinct")])
    by_docs = pc.filter(docs.column("comp"), pc.greater(docs.column("doc_first_count_distinct"), 1))
    births = t.filter(pc.is_valid(t.column("birth_first"))).group_by("comp", use_threads=False).aggregate(
        [("birth_first", "min"), ("birth_first", "max")])
    spread = pc.subtract(births.column("birth_first_max"), births.column("birth_first_min"))
    by_births = pc.filter(births.column("comp"), pc.greater(spread, MAX_BIRTH_DAYS_APART))
    return np.unique(np.concatenate([by_docs.to_numpy(), by_births.to_numpy()])).astype(np.int64)


def _weight_without(edges: pa.Table, settings: LinkageSettings | None) -> dict[str, np.ndarray]:
    """Per conflict reason: each edge's match weight minus the conflicting comparison's
    contribution (what the rest of the evidence says), where the edges carry both."""
    if not settings or "match_weight" not in edges.column_names:
        return {}
    total = edges.column("match_weight").to_numpy()
    out = {}
    for reason, comparison_type in CONFLICT_COMPARISON_TYPE.items():
        for c in settings.comparisons:
            if c.type == comparison_type and f"w_{c.name}" in edges.column_names:
                out[reason] = total - edges.column(f"w_{c.name}").to_numpy()
    return out


def _guard(settings: LinkageSettings | None) -> Clustering:
    """The settings' clustering guard; without settings, the guard that refuses every conflict."""
    return settings.clustering if settings else Clustering()


def _override_weight(settings: LinkageSettings | None) -> float | None:
    p = _guard(settings).merge_conflicts_at
    return None if p is None else math.log2(p / (1 - p))


def _documents_compared(edges: pa.Table, for_life: list[str] | None) -> tuple[np.ndarray, np.ndarray]:
    """Per edge: whether both records carry a valid document of one type with the same number
    (``shared``: one person, or a copied number), and whether they carry valid documents of one
    type kept for life more than one edit apart (``conflicting``: two people; one edit is a typo)."""
    names = [f"{side}_{c}" for side in ("left", "right") for c in ("document_type", "document_core", "document_valid")]
    if not all(n in edges.column_names for n in names):
        return np.zeros(edges.num_rows, dtype=bool), np.zeros(edges.num_rows, dtype=bool)
    lt, lc, lv, rt, rc, rv = (edges.column(n) for n in names)
    usable = pc.and_(pc.and_(pc.fill_null(lv, False), pc.fill_null(rv, False)), pc.fill_null(pc.equal(lt, rt), False))
    usable = pc.and_(usable, pc.and_(pc.is_valid(lc), pc.is_valid(rc))).to_numpy(zero_copy_only=False)
    same = pc.fill_null(pc.equal(lc, rc), False).to_numpy(zero_copy_only=False)
    for_life_type = np.ones(edges.num_rows, dtype=bool) if for_life is None else pc.fill_null(
        pc.is_in(lt, pa.array(for_life, pa.string())), False).to_numpy(zero_copy_only=False)
    conflicting = np.zeros(edges.num_rows, dtype=bool)
    differ = np.nonzero(usable & for_life_type & ~same)[0]
    if len(differ):
        take = pa.array(differ)
        conflicting[differ] = process.cpdist(pc.take(lc, take).to_pylist(), pc.take(rc, take).to_pylist(),
                                             scorer=OSA.distance, workers=1) > 1
    return usable & same, conflicting


def _lifted(edges: pa.Table, vetoed: np.ndarray, name: str, settings: LinkageSettings | None,
            shared: np.ndarray, conflicting: np.ndarray) -> np.ndarray:
    """The vetoed edges of comparison ``name`` the settings lift (``clustering.refusal_lifted_when``):
    one person whose compound given name was shortened two ways (YOMIRA / PILAR of YOMIRA PILAR) or
    whose one given name was mistyped in both records (EDDTH / EOITH) looks like two siblings.
    Lifted where each record gives one given name only, both carry the same valid document (a
    passport's number is no less one person's than a DNI's), and the comparisons the setting
    names agree at its levels (birth date, sex, surnames); never where either record has an
    accepted edge to a record with another document of a type kept for life: a second person,
    whose number was copied onto the record (twins of one case)."""
    when = _guard(settings).refusal_lifted_when.get(name)
    words = ("left_given_words", "right_given_words")
    if not when or not vetoed.any() or not all(w in edges.column_names for w in words):
        return np.zeros(edges.num_rows, dtype=bool)
    one_word = np.ones(edges.num_rows, dtype=bool)
    for w in words:
        one_word &= pc.fill_null(pc.equal(edges.column(w), 1), False).to_numpy(zero_copy_only=False)
    lift = vetoed & one_word
    for other, levels in when.items():
        column = f"gamma_{other}"
        if column not in edges.column_names:
            return np.zeros(edges.num_rows, dtype=bool)
        lift &= np.isin(edges.column(column).to_numpy(zero_copy_only=False), levels)
    lift &= shared
    if conflicting.any():  # records with an accepted edge to another document kept for life
        second = pa.concat_arrays([pc.filter(edges.column(c).combine_chunks(), pa.array(conflicting))
                                   for c in ("left_uid", "right_uid")])
        lift &= ~(pc.is_in(edges.column("left_uid"), second).to_numpy(zero_copy_only=False)
                  | pc.is_in(edges.column("right_uid"), second).to_numpy(zero_copy_only=False))
    return lift


def _without_refused_levels(edges: pa.Table,
                            settings: LinkageSettings | None) -> tuple[pa.Table, pa.Table, pa.Table, pa.Array]:
    """Edges at a level the settings never merge on (``clustering.refuse_levels``: given names
    that differ, which is what siblings and twins of one case look like however much else they
    share, even a copied document number) are taken out before clustering and go to the review
    queue as ``disagreeing_<comparison>``; those ``_lifted`` stay in and are flagged for review as
    ``merged_despite_disagreeing_<comparison>``.

    Returns (edges kept, refused, flagged, copied): ``copied`` are the records whose document is
    taken for a sibling's copied number (``_copied``) and not held against their other merges."""
    refuse = _guard(settings).refuse_levels
    vetoed = np.zeros(edges.num_rows, dtype=bool)
    lifted = np.zeros(edges.num_rows, dtype=bool)
    reasons = np.full(edges.num_rows, None, dtype=object)
    shared = conflicting = None
    for name, levels in refuse.items():
        column = f"gamma_{name}"
        if column in edges.column_names:
            hit = np.isin(edges.column(column).to_numpy(zero_copy_only=False), levels) & ~vetoed
            if shared is None and hit.any():
                shared, conflicting = _documents_compared(edges, for_life_types(settings))
            reasons[hit] = f"disagreeing_{name}"
            vetoed |= hit
            if hit.any():
                lifted |= _lifted(edges, hit, name, settings, shared, conflicting)
    if not vetoed.any():
        return edges, REFUSED_SCHEMA.empty_table(), REFUSED_SCHEMA.empty_table(), pa.array([], pa.string())

    def decisions(mask: np.ndarray, prefix: str = "") -> pa.Table:
        out = edges.filter(pa.array(mask))
        return pa.table({"left_uid": out.column("left_uid"), "right_uid": out.column("right_uid"),
                         "match_probability": out.column("match_probability"),
                         "reason": pa.array([prefix + r for r in reasons[mask]], pa.string())}, schema=REFUSED_SCHEMA)

    refused = vetoed & ~lifted
    return (edges.filter(pa.array(~refused)), decisions(refused), decisions(lifted, FLAGGED_PREFIX),
            _copied(edges, refused & shared, conflicting, settings))


def _copied(edges: pa.Table, refused_shared: np.ndarray, conflicting: np.ndarray,
            settings: LinkageSettings | None) -> pa.Array:
    """Records whose document kept for life was most likely copied from a sibling's: the guard
    refused their edge to a record carrying the same number (two people), and they have an accepted
    edge to a record that gives the same name at the levels of ``clustering.copied_document_when``
    under another number of that type (the twin's own records)."""
    when = _guard(settings).copied_document_when
    contested = conflicting.copy()
    for name, levels in when.items():
        column = f"gamma_{name}"
        contested &= column in edges.column_names and np.isin(
            edges.column(column).to_numpy(zero_copy_only=False), levels)
    if not when or not refused_shared.any() or not contested.any():
        return pa.array([], pa.string())

    def ends(mask: np.ndarray) -> pa.Array:
        return pa.concat_arrays([pc.filter(edges.column(c).combine_chunks(), pa.array(mask))
                                 for c in ("left_uid", "right_uid")])
    both = ends(refused_shared)
    return pc.filter(both, pc.is_in(both, ends(contested)))


def cluster(edges: pa.Table, role: str, key=None, settings: LinkageSettings | None = None) -> tuple[pa.Table, pa.Table]:
    """Edges (left/right uid, match_probability, rule, per-side document and birth date; with
    match_weight and w_<comparison> when the override is used) -> (membership of every record with
    an accepted edge, the guard's decisions: refused edges with the reason, and merges made
    despite a conflict, whose reason starts with ``merged_despite_``).

    Connected components first (vectorised); components whose records carry conflicting
    documents or birth dates are then re-merged edge by edge, strongest first, refusing the
    merges the guard forbids."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges, vetoed, lifted, copied = _without_refused_levels(edges, settings)
    if not edges.num_rows:
        return MEMBERSHIP_SCHEMA.empty_table(), vetoed
    edges = edges.sort_by([("match_probability", "descending"), ("left_uid", "ascending"), ("right_uid", "ascending")])
    both = pa.chunked_array(edges.column("left_uid").chunks + edges.column("right_uid").chunks).combine_chunks()
    encoded = both.dictionary_encode()
    nodes = encoded.dictionary
    idx = encoded.indices.to_numpy()
    m, n_nodes = edges.num_rows, len(nodes)
    left_idx, right_idx = idx[:m], idx[m:]
    graph = coo_matrix((np.ones(m, dtype=np.int8), (left_idx, right_idx)), shape=(n_nodes, n_nodes))
    n_comp, labels = connected_components(graph, directed=False)
    roots = labels.astype(np.int64)

    attrs = _node_attributes(edges, idx, n_nodes, for_life_types(settings))
    if len(copied):
        doc_type = attrs.column("doc_type_first")
        attrs = attrs.set_column(attrs.column_names.index("doc_type_first"), "doc_type_first", pc.if_else(
            pc.is_in(pc.take(nodes, attrs.column("node")), copied), pa.scalar(None, doc_type.type), doc_type))
    suspect = _suspect_components(attrs, labels)
    refused = []
    if len(suspect):
        in_suspect = np.isin(labels[left_idx], suspect)
        clusters = _Clusters(n_nodes)
        types = attrs.column("doc_type_first").to_pylist()
        docs = attrs.column("doc_first").to_pylist()
        births = attrs.column("birth_first").to_pylist()
        for node, t, d, b in zip(attrs.column("node").to_pylist(), types, docs, births):
            if t and d:
                clusters.docs[node] = {t: d}
            if b is not None:
                clusters.births[node] = {b}
        probs = edges.column("match_probability").to_numpy()
        rest, override = _weight_without(edges, settings), _override_weight(settings)
        for k in np.nonzero(in_suspect)[0]:
            a, b = clusters.find(left_idx[k]), clusters.find(right_idx[k])
            if a == b:
                continue
            reason = clusters.conflict(a, b)
            if reason:
                merge = override is not None and reason in rest and rest[reason][k] >= override
                refused.append((nodes[left_idx[k]].as_py(), nodes[right_idx[k]].as_py(), float(probs[k]),
                                FLAGGED_PREFIX + reason if merge else reason))
                if not merge:
                    continue
            clusters.union(a, b, overriding=reason)
        members = np.nonzero(np.isin(labels, suspect))[0]
        roots[members] = n_comp + np.array([clusters.find(int(v)) for v in members])

    table = pa.table({"record_uid": nodes, "root": pa.array(roots)})
    anchors = table.group_by("root", use_threads=False).aggregate([("record_uid", "min"), ("record_uid", "count")])
    anchors = anchors.filter(pc.greater(anchors.column("record_uid_count"), 1))
    table = table.join(anchors, "root", join_type="inner", use_threads=False)
    # each record's rule: that of its strongest accepted edge (edges are sorted strongest first)
    firsts = pa.table({"node": pa.array(idx), "rule": pa.concat_arrays(
        [edges.column("rule").combine_chunks()] * 2)}).group_by("node", use_threads=False).aggregate(
        [("rule", "first")])
    rule_of = pc.take(firsts.column("rule_first"),
                      pc.index_in(pc.index_in(table.column("record_uid"), nodes), firsts.column("node")))
    anchor_uids = anchors.column("record_uid_min")
    anchor_ids = pa.array(person_id_for(anchor_uids.to_pylist(), role, key), pa.string())
    person_ids = pc.take(anchor_ids, pc.index_in(table.column("record_uid_min"), anchor_uids))
    membership = pa.table({"record_uid": table.column("record_uid"), "person_id": person_ids, "match_rule": rule_of},
                          schema=MEMBERSHIP_SCHEMA)
    refused_table = pa.Table.from_pylist(
        [{"left_uid": a, "right_uid": b, "match_probability": p, "reason": r} for a, b, p, r in refused],
        schema=REFUSED_SCHEMA)
    lifted = lifted.filter(_one_person(lifted, membership)) if lifted.num_rows else lifted
    return membership, pa.concat_tables([_outside_one_person(vetoed, membership), lifted, refused_table,
                                         _merged_on_copied(edges, copied, membership, settings)])


def _merged_on_copied(edges: pa.Table, copied: pa.Array, membership: pa.Table,
                      settings: LinkageSettings | None) -> pa.Table:
    """The merges made although a record's document differed, because that document was taken for
    a sibling's copied number (``_copied``): flagged for review as ``merged_despite_different_valid_documents``."""
    if not len(copied) or not edges.num_rows:
        return REFUSED_SCHEMA.empty_table()
    touching = pc.or_(pc.is_in(edges.column("left_uid"), copied), pc.is_in(edges.column("right_uid"), copied))
    edges = edges.filter(touching)
    _, conflicting = _documents_compared(edges, for_life_types(settings))
    edges = edges.filter(pa.array(conflicting))
    edges = edges.filter(_one_person(edges, membership))
    return pa.table({"left_uid": edges.column("left_uid"), "right_uid": edges.column("right_uid"),
                     "match_probability": edges.column("match_probability"),
                     "reason": pa.array([FLAGGED_PREFIX + "different_valid_documents"] * edges.num_rows, pa.string())},
                    schema=REFUSED_SCHEMA)


def _one_person(pairs: pa.Table, membership: pa.Table) -> pa.Array:
    """Per pair: whether its two records ended in one person."""
    uids, pids = membership.column("record_uid"), membership.column("person_id")
    left = pc.take(pids, pc.index_in(pairs.column("left_uid"), uids))
    right = pc.take(pids, pc.index_in(pairs.column("right_uid"), uids))
    return pc.fill_null(pc.equal(left, right), False)


def _outside_one_person(vetoed: pa.Table, membership: pa.Table) -> pa.Table:
    """The vetoed edges whose two records did not end up in one person through other records (a
    compound name shortened two ways, JOSE and CESAR, both joined through JOSE CESAR): those are
    links the clustering agrees with, not refused merges for the review queue."""
    if not vetoed.num_rows or not membership.num_rows:
        return vetoed
    return vetoed.filter(pc.invert(_one_person(vetoed, membership)))


def attach_persons(records: pa.Table, membership: pa.Table, role: str, key=None) -> pa.Table:
    """Add person_id and match_rule; a record with no accepted edge is a person of its own."""
    uid = records.column("record_uid").combine_chunks()
    at = pc.index_in(uid, membership.column("record_uid").combine_chunks())
    linked_pid = pc.take(membership.column("person_id").combine_chunks(), at)
    rule = pc.take(membership.column("match_rule").combine_chunks(), at)
    alone = pc.is_null(linked_pid)
    own = pa.array(person_id_for(pc.filter(uid, alone).to_pylist(), role, key), pa.string())
    person_id = pc.replace_with_mask(linked_pid, alone, own) if len(own) else linked_pid
    records = records.set_column(records.column_names.index("person_id"), "person_id", person_id)
    return records.set_column(records.column_names.index("match_rule"), "match_rule", rule)


def cluster_with_judgements(edges: pa.Table, role: str, key=None, settings: LinkageSettings | None = None,
                            judged: pa.Table | None = None) -> tuple[pa.Table, pa.Table]:
    """``cluster``, then the stewards' judgements in force as must-links and cannot-links
    (pipelines/link/constraints.py)."""
    membership, refused = cluster(edges, role, key, settings)
    if judged is not None and judged.num_rows:
        from pipelines.link import constraints

        membership = constraints.apply(membership, edges, refused, judged,
                                       lambda anchors: person_id_for(anchors, role, key))
    return membership, refused
