"""Stewards' judgements as clustering constraints.

``same`` is a must-link: the two records end in one person whatever the scores say (even where
the clustering guard would have refused the merge). ``different`` is a cannot-link: a person that
holds both records is rebuilt from its accepted edges strongest first (a maximum spanning forest),
and the edge that would join the two sides is left out, so the person splits at the weakest link of
the path between them. ``unsure`` changes nothing but is not asked again.

``apply`` runs after the guarded clustering (pipelines/link/cluster.py) on the persons the
judgements touch only; ``judgement_evidence`` says, for every judgement in force, what this run's
scores say about the pair and whether they argue against it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import model

SAME, DIFFERENT, UNSURE = "same", "different", "unsure"
STEWARD_RULE = "steward_same"  # match_rule of a record joined by a steward's judgement alone
EVIDENCE_SCHEMA = model.table("judgement").schema()


def _pairs(judged: pa.Table | None, decision: str) -> list[tuple[str, str]]:
    if judged is None or not judged.num_rows:
        return []
    t = judged.filter(pc.equal(judged.column("decision"), decision))
    return list(zip(t.column("left_uid").to_pylist(), t.column("right_uid").to_pylist()))


class _Sets:
    """Union-find over record uids that keeps each set's members (components here are persons:
    small), so a cannot-link can be checked before two sets are joined."""

    def __init__(self, nodes):
        self.parent = {n: n for n in nodes}
        self.members = {n: {n} for n in nodes}

    def find(self, x):
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b, apart: dict[str, set[str]] | None = None) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return True
        if apart and any(p in self.members[ra] for u in self.members[rb] for p in apart.get(u, ())):
            return False
        if len(self.members[ra]) < len(self.members[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.members[ra] |= self.members.pop(rb)
        return True


def apply(membership: pa.Table, edges: pa.Table, refused: pa.Table, judged: pa.Table | None,
          person_ids) -> pa.Table:
    """Membership (record_uid, person_id, match_rule) with the judgements enforced.

    ``edges`` are the accepted edges, ``refused`` the guard's decisions
    (an edge it refused stays out), ``person_ids(anchor_uids) -> ids`` names a rebuilt person."""
    same, different = _pairs(judged, SAME), _pairs(judged, DIFFERENT)
    if not same and not different:
        return membership
    uid = membership.column("record_uid").to_pylist()
    pid = membership.column("person_id").to_pylist()
    rule_of = dict(zip(uid, membership.column("match_rule").to_pylist()))
    person_of = dict(zip(uid, pid))
    members: dict[str, list[str]] = {}
    for u, p in zip(uid, pid):
        members.setdefault(p, []).append(u)

    # the persons the judgements touch, joined through must-links, are rebuilt; the rest stay as they are
    def person(u):
        return person_of.get(u, "self:" + u)

    touched = _Sets({person(u) for pair in same + different for u in pair})
    for a, b in same:
        touched.union(person(a), person(b))
    groups: dict[str, set[str]] = {}
    for p in list(touched.parent):
        groups.setdefault(touched.find(p), set()).update(members.get(p, [p.removeprefix("self:")]))
    nodes = set().union(*groups.values())

    apart: dict[str, set[str]] = {}
    for a, b in different:
        apart.setdefault(a, set()).add(b)
        apart.setdefault(b, set()).add(a)
    refused_pairs = set()
    if refused.num_rows:
        kept = refused.filter(pc.invert(pc.starts_with(refused.column("reason"), "merged_despite_")))
        refused_pairs = {frozenset(p) for p in zip(kept.column("left_uid").to_pylist(), kept.column("right_uid").to_pylist())}
    node_array = pa.array(sorted(nodes), pa.string())
    left = right = []
    if edges.num_rows:  # only the edges inside the touched persons, strongest first
        edges = edges.filter(pc.and_(pc.is_in(edges.column("left_uid"), node_array),
                                     pc.is_in(edges.column("right_uid"), node_array)))
        edges = edges.sort_by([("match_probability", "descending"), ("left_uid", "ascending"), ("right_uid", "ascending")])
        left, right = edges.column("left_uid").to_pylist(), edges.column("right_uid").to_pylist()
    sets = _Sets(nodes)
    for a, b in same:  # must-links first: stronger than any score
        if sets.union(a, b, apart):
            rule_of.setdefault(a, STEWARD_RULE)
            rule_of.setdefault(b, STEWARD_RULE)
    for a, b in zip(left, right):  # then the accepted edges, strongest first
        if frozenset((a, b)) not in refused_pairs:
            sets.union(a, b, apart)

    rebuilt = [sorted(m) for m in sets.members.values() if len(m) > 1]
    ids = person_ids([m[0] for m in rebuilt])
    new_uid, new_pid, new_rule = [], [], []
    for members_, p in zip(rebuilt, ids):
        for u in members_:
            new_uid.append(u)
            new_pid.append(p)
            new_rule.append(rule_of.get(u))
    untouched = membership.filter(pc.invert(pc.is_in(membership.column("record_uid"), node_array)))
    rebuilt_table = pa.table({"record_uid": pa.array(new_uid, pa.string()), "person_id": pa.array(new_pid, pa.string()),
                              "match_rule": pa.array(new_rule, pa.string())}, schema=membership.schema)
    return pa.concat_tables([untouched, rebuilt_table])


def _is_judged(pairs: pa.Table, judged: pa.Table) -> pa.Array:
    keys = set(zip(judged.column("left_uid").to_pylist(), judged.column("right_uid").to_pylist()))
    keys |= {(b, a) for a, b in keys}
    return pa.array([(a, b) in keys for a, b in zip(pairs.column("left_uid").to_pylist(),
                                                    pairs.column("right_uid").to_pylist())], pa.bool_())


def without_judged(pairs: pa.Table, judged: pa.Table | None) -> pa.Table:
    """Review pairs minus those a judgement in force already answers (never asked twice)."""
    if judged is None or not judged.num_rows or not pairs.num_rows:
        return pairs
    return pairs.filter(pc.invert(_is_judged(pairs, judged)))


def judged_only(pairs: pa.Table, judged: pa.Table | None) -> pa.Table:
    """The scored pairs a judgement names (a few of one partition's pairs): uids and probability."""
    pairs = pairs.select(["left_uid", "right_uid", "match_probability"])
    if judged is None or not judged.num_rows or not pairs.num_rows:
        return pairs.slice(0, 0)
    uids = pa.concat_arrays([judged.column("left_uid").combine_chunks(), judged.column("right_uid").combine_chunks()])
    pairs = pairs.filter(pc.and_(pc.is_in(pairs.column("left_uid"), uids), pc.is_in(pairs.column("right_uid"), uids)))
    return pairs.filter(_is_judged(pairs, judged)) if pairs.num_rows else pairs


GUARD_REASONS = ("different_valid_documents", "incompatible_birth_dates")
# the evidence that argues against each judgement
ARGUES_AGAINST = {SAME: {"scored_as_non_match", *GUARD_REASONS}, DIFFERENT: {"scored_as_match"}, UNSURE: set()}


def classify(p: float | None, guard: str | None, match_at: float, review_below: float) -> str:
    """What a run says about a pair: the clustering guard's conflict, or where its score falls.
    A pair the blocking never compared (or scored below the links floor) is ``not_compared``."""
    if guard:
        return guard.removeprefix("merged_despite_")
    if p is None:
        return "not_compared"
    return "scored_as_match" if p >= match_at else "scored_uncertain" if p >= review_below else "scored_as_non_match"


def judgement_evidence(links: list[pa.Table], refused: pa.Table, judged: pa.Table | None,
                       match_at: float, review_below: float) -> pa.Table:
    """Every judgement in force with what this run's evidence says about the pair.

    The evidence argues against ``different`` when the pair scores as a match, against ``same``
    when it scores as a non-match or the guard finds conflicting documents or birth dates. A
    judgement is *contradicted* when this run's evidence argues against it and the evidence the
    steward saw when judging (``evidence_when_judged``) did not: new evidence, not a judgement
    made knowingly against the scores, which would otherwise be reported on every run."""
    if judged is None or not judged.num_rows:
        return EVIDENCE_SCHEMA.empty_table()
    score = {frozenset((a, b)): p for t in links for a, b, p in zip(
        t.column("left_uid").to_pylist(), t.column("right_uid").to_pylist(), t.column("match_probability").to_pylist())}
    guard = {}
    if refused.num_rows:
        guard = {frozenset((a, b)): r for a, b, r in zip(refused.column("left_uid").to_pylist(),
                                                          refused.column("right_uid").to_pylist(),
                                                          refused.column("reason").to_pylist())}
    before = judged.column("evidence_when_judged").to_pylist() if "evidence_when_judged" in judged.column_names \
        else [None] * judged.num_rows
    rows = []
    for a, b, decision, then in zip(judged.column("left_uid").to_pylist(), judged.column("right_uid").to_pylist(),
                                    judged.column("decision").to_pylist(), before):
        key = frozenset((a, b))
        evidence = classify(score.get(key), guard.get(key), match_at, review_below)
        against = ARGUES_AGAINST.get(decision, set())
        rows.append({"left_uid": a, "right_uid": b, "decision": decision, "match_probability": score.get(key),
                     "evidence": evidence, "evidence_when_judged": then,
                     "contradicted": evidence in against and then not in against})
    return pa.Table.from_pylist(rows, schema=EVIDENCE_SCHEMA)


def as_table(pairs: list[tuple]) -> pa.Table:
    """(left_uid, right_uid, decision[, evidence_when_judged]) tuples as the table ``apply`` takes."""
    return pa.table({"left_uid": pa.array([p[0] for p in pairs], pa.string()),
                     "right_uid": pa.array([p[1] for p in pairs], pa.string()),
                     "decision": pa.array([p[2] for p in pairs], pa.string()),
                     "evidence_when_judged": pa.array([p[3] if len(p) > 3 else None for p in pairs], pa.string())})
