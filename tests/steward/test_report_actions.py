"""The report's work list and conflict split (pipelines/report/actions.py), on small tables."""

import pyarrow as pa

from pipelines import aggregates
from pipelines.aggregates import Counts, RunSummary, TopRows, combine
from pipelines.report import actions
from pipelines.report.screen import Screen


def _summary(conflicts=None, judgements=None, lineage=None, persons=None) -> RunSummary:
    """A RunSummary of small tables, made by the job's own combines."""
    s = RunSummary(lineage=combine(Counts(aggregates.lineage_counts), lineage),
                   persons=combine(Counts(aggregates.person_counts), persons))
    if conflicts is not None:
        s.conflicts = combine(Counts(aggregates.conflict_counts(actions.UNKNOWN)), conflicts)
        s.conflict_rows_by_kind = {k: combine(TopRows(50, aggregates.CONFLICT_ORDER,
                                                      aggregates.with_conflict_kind(actions.UNKNOWN, k)), conflicts)
                                   for k in aggregates.CONFLICT_KINDS}
    if judgements is not None:
        s.judgements = {"victim": combine(Counts(aggregates.judgement_counts), judgements)}
        s.contradicted_judgements = {"victim": combine(TopRows(50, aggregates.JUDGEMENT_ORDER,
                                                               aggregates.contradicted("victim")), judgements)}
    return s


def _conflicts():
    return pa.table({"person_id": ["P1", "P2", "P3"], "role": ["victim"] * 3,
                     "attribute": ["exploitation_type", "exploitation_type", "sex"],
                     "values": [["MP=SEXUAL_EXPLOITATION", "PNP=UNKNOWN"],
                                ["MIMP=FORCED_LABOUR", "PNP=DOMESTIC_SERVITUDE", "MP=UNKNOWN"],
                                ["MP=FEMALE", "PNP=MALE"]],
                     "n_records": [2, 3, 2]})


def test_gaps_are_told_apart_from_contradictions_and_codes_get_labels():
    split = actions.split_conflicts(_summary(_conflicts()), Screen())
    assert (split["gaps"]["total"], split["gaps"]["persons"]) == (1, 1)
    assert (split["contradictions"]["total"], split["contradictions"]["persons"]) == (2, 2)
    first = split["contradictions"]["rows"][0]
    assert first["person_id"] == "P2" and "MIMP: Forced labour" in first["agency_values"]
    assert "FORCED_LABOUR" not in first["agency_values"]


def test_the_action_list_counts_each_kind_of_work_and_links_to_it():
    validation = {"available": True, "suites": [{"failed_blocking": 1}, {"failed_blocking": 0}],
                  "checks": [{"name": "control_totals", "severity": "warning", "status": "failed"},
                             {"name": "referrals", "severity": "blocking", "status": "failed"}]}
    judged = actions.judgements(_summary(judgements=pa.table({
        "left_uid": ["a"], "right_uid": ["b"], "decision": ["different"], "match_probability": [0.99],
        "evidence": ["scored_as_match"], "contradicted": [True], "role": ["victim"]})), Screen())
    tiles = actions.action_list(validation, {"available": True, "total": 3},
                                actions.split_conflicts(_summary(_conflicts()), Screen()), judged)
    assert {t["key"]: (t["count"], t["href"]) for t in tiles} == {
        "blocking": (2, "#validation"), "control_totals": (1, "#validation"), "review": (3, "#review"),
        "contradictions": (2, "#conflicts"), "contradicted": (1, "#judgements")}
    assert judged["contradicted"][0]["evidence"] == "scored as a match"
    quiet = actions.action_list({"available": False}, {"available": False}, {"available": False},
                                actions.judgements(RunSummary(), Screen()))
    assert all(t["count"] == 0 and t["severity"] == "done" for t in quiet)


def test_continuity_counts_lineage_changes_and_persons_seen_before():
    lineage = pa.table({"change": ["merged", "split", "split"]})
    persons = pa.table({"role": ["victim", "victim", "offender"], "seen_in_earlier_period": [True, False, True]})
    summary = actions.continuity(RunSummary(lineage=combine(Counts(aggregates.lineage_counts), lineage),
                                            persons={r: {"seen_in_earlier_period": n} for r, n in
                                                     (("victim", 1), ("offender", 1))}))
    assert summary["changes"] == {"merged": 1, "split": 2}
    assert summary["seen_before"] == {"victim": 1, "offender": 1}
    assert not actions.continuity(RunSummary())["available"]


def test_every_reason_the_clustering_guard_gives_has_a_label_in_the_report():
    from pipelines.link import constraints
    from pipelines.link.linker import load_settings

    refused = {f"disagreeing_{name}" for name in load_settings().clustering.refuse_levels}
    for reason in (*constraints.GUARD_REASONS, *refused):
        assert reason in actions.EVIDENCE
        assert constraints.classify(0.99, f"merged_despite_{reason}", 0.9, 0.05) == reason
