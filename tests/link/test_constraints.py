"""Judgements as must-links and cannot-links on small graphs (no pipeline)."""

import pyarrow as pa

from pipelines.link.cluster import cluster_with_judgements
from pipelines.link import constraints


def _edges(pairs):
    return pa.table({
        "left_uid": [a for a, _, _ in pairs], "right_uid": [b for _, b, _ in pairs],
        "match_probability": [p for _, _, p in pairs], "rule": ["r"] * len(pairs),
        **{f"{side}_{c}": pa.nulls(len(pairs), t) for side in ("left", "right") for c, t in (
            ("document_type", pa.string()), ("document_core", pa.string()), ("document_valid", pa.bool_()),
            ("birth_date", pa.date32()))}})


NO_REFUSALS = pa.table({"left_uid": pa.array([], pa.string()), "right_uid": pa.array([], pa.string()),
                       "reason": pa.array([], pa.string())})
CHAIN = [("a", "b", 0.99), ("b", "c", 0.95), ("c", "d", 0.99), ("x", "y", 0.99)]


def _persons(membership):
    groups = {}
    for uid, pid in zip(membership.column("record_uid").to_pylist(), membership.column("person_id").to_pylist()):
        groups.setdefault(pid, set()).add(uid)
    return sorted(map(sorted, groups.values()))


def test_without_judgements_the_chain_is_one_person():
    membership, _ = cluster_with_judgements(_edges(CHAIN), "victim")
    assert _persons(membership) == [["a", "b", "c", "d"], ["x", "y"]]


def test_cannot_link_splits_at_the_weakest_edge_of_the_path():
    judged = constraints.as_table([("a", "d", "different")])
    membership, _ = cluster_with_judgements(_edges(CHAIN), "victim", judged=judged)
    assert _persons(membership) == [["a", "b"], ["c", "d"], ["x", "y"]]


def test_must_link_joins_persons_and_singletons_and_leaves_the_rest_alone():
    before, _ = cluster_with_judgements(_edges(CHAIN), "victim")
    judged = constraints.as_table([("a", "x", "same"), ("d", "lonely", "same")])
    membership, _ = cluster_with_judgements(_edges(CHAIN), "victim", judged=judged)
    assert _persons(membership) == [["a", "b", "c", "d", "lonely", "x", "y"]]
    rules = dict(zip(membership.column("record_uid").to_pylist(), membership.column("match_rule").to_pylist()))
    assert rules["lonely"] == constraints.STEWARD_RULE and rules["a"] == "r"
    untouched = cluster_with_judgements(_edges(CHAIN + [("p", "q", 0.99)]), "victim", judged=judged)[0]
    ids = dict(zip(untouched.column("record_uid").to_pylist(), untouched.column("person_id").to_pylist()))
    plain = dict(zip(*(cluster_with_judgements(_edges(CHAIN + [("p", "q", 0.99)]), "victim")[0].column(c).to_pylist()
                       for c in ("record_uid", "person_id"))))
    assert ids["p"] == plain["p"]


def test_cannot_link_beats_must_link_and_unsure_changes_nothing():
    judged = constraints.as_table([("a", "d", "different"), ("b", "c", "same"), ("x", "y", "unsure")])
    membership, _ = cluster_with_judgements(_edges(CHAIN), "victim", judged=judged)
    persons = _persons(membership)
    assert ["x", "y"] in persons
    assert not any({"a", "d"} <= set(p) for p in persons)


def test_judged_pairs_leave_the_review_queue_and_evidence_is_reported():
    queue = pa.table({"left_uid": ["a", "c", "m"], "right_uid": ["b", "b", "n"], "match_probability": [0.5, 0.4, 0.3]})
    judged = constraints.as_table([("b", "a", "different"), ("m", "n", "same"), ("c", "d", "same")])
    assert constraints.without_judged(queue, judged).column("left_uid").to_pylist() == ["c"]
    links = [constraints.judged_only(_edges(CHAIN + [("m", "n", 0.001)]), judged)]
    evidence = constraints.judgement_evidence(links, NO_REFUSALS, judged, 0.9, 0.05)
    rows = {(r["left_uid"], r["right_uid"]): (r["evidence"], r["contradicted"]) for r in evidence.to_pylist()}
    assert rows == {("b", "a"): ("scored_as_match", True), ("m", "n"): ("scored_as_non_match", True),
                    ("c", "d"): ("scored_as_match", False)}
    # a steward who said different while seeing a match is not asked to look again every run
    knowingly = constraints.as_table([("b", "a", "different", "scored_as_match")])
    evidence = constraints.judgement_evidence(links, NO_REFUSALS, knowingly, 0.9, 0.05)
    assert evidence.column("contradicted").to_pylist() == [False]
