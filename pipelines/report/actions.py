"""The report as a work list: what needs a steward, at the top of the page, each tile linking to its
section; conflicts split into gaps one agency fills and real contradictions, with code labels.

Its text goes through the message catalog (``pipelines.i18n``): tile labels and evidence are marked
here and translated where they are built; headings and captions are in the page's template.
"""

from __future__ import annotations

from pipelines import model
from pipelines.aggregates import RunSummary
from pipelines.i18n import N_, _
from pipelines.report.sections import TABLE_LIMIT, label
from pipelines.report.screen import Screen

UNKNOWN = "UNKNOWN"
# cross-feed checks (pipelines/checks.py) that compare an agency's declared totals with its records
CONTROL_TOTAL_CHECKS = ("control_totals", "children_plus_adults")

TILES = {"blocking": N_("Blocking validations failed"), "control_totals": N_("Control totals missed"),
         "review": N_("Review pairs to judge"), "contradictions": N_("Real conflicts between agencies"),
         "contradicted": N_("Judgements the new evidence argues against")}
EVIDENCE = {"scored_as_match": N_("scored as a match"), "scored_uncertain": N_("scored as uncertain"),
            "scored_as_non_match": N_("scored as a non-match"), "not_compared": N_("not compared by the blocking rules"),
            "different_valid_documents": N_("different valid documents"),
            "disagreeing_given_names": N_("different given names (the sibling guard)"),
            "incompatible_birth_dates": N_("incompatible birth dates")}


def _code_list(role: str, attribute: str) -> str | None:
    try:
        return model.table(role).field(attribute).code_list
    except (KeyError, LookupError):
        return None


def _labelled(values: list[str], code_list: str | None, screen: Screen) -> str:
    """['MP=SEXUAL_EXPLOITATION', 'PNP=UNKNOWN'] -> 'MP: Sexual exploitation; PNP: Unknown'."""
    parts = []
    for v in values or []:
        agency, _sep, code = str(v).partition("=")
        shown = label(code_list, code) if code_list else code
        parts.append(f"{screen.text(agency)}: {screen.text(shown)}")
    return "; ".join(parts)


KIND_OF = {"gap": "gaps", "contradiction": "contradictions"}  # pipelines.aggregates.conflict_kind -> section


def split_conflicts(summary: RunSummary, screen: Screen) -> dict:
    """Conflicts whose only disagreement is a known value against UNKNOWN (gaps) apart from those
    where agencies recorded different known values (contradictions)."""
    if summary.conflicts is None:
        return {"available": False}
    out = {}
    for kind, section in KIND_OF.items():
        counts = (summary.conflicts.get("kinds") or {}).get(kind) or {}
        rows = []
        for r in summary.conflict_rows_by_kind.get(kind, [])[:TABLE_LIMIT]:
            role = str(r.get("role") or "victim")
            rows.append({"person_id": screen.ident(r["person_id"]), "role": role,
                         "attribute": screen.text(r.get("attribute")),
                         "agency_values": _labelled(r.get("values"), _code_list(role, r.get("attribute")), screen)})
        out[section] = {"total": counts.get("total", 0), "persons": counts.get("persons", 0), "rows": rows}
    return {"available": True, **out}


def _evidence(code: str) -> str:
    return _(EVIDENCE[code]) if code in EVIDENCE else code


def judgements(summary: RunSummary, screen: Screen) -> dict:
    """The stewards' judgements in force with this run's evidence (judgements/)."""
    total = sum(e.get("total", 0) for e in summary.judgements.values())
    if not total:
        return {"available": bool(summary.judgements), "total": 0, "contradicted": [], "by_decision": {}}
    by_decision: dict[str, int] = {}
    for entry in summary.judgements.values():
        for decision, n in (entry.get("by_decision") or {}).items():
            by_decision[decision] = by_decision.get(decision, 0) + n
    rows = sorted((r for rows in summary.contradicted_judgements.values() for r in rows),
                  key=lambda r: (r["left_uid"], r["right_uid"]))
    contradicted = [{"left_uid": screen.ident(r["left_uid"]), "right_uid": screen.ident(r["right_uid"]),
                     "role": r.get("role"), "decision": r["decision"], "probability": r.get("match_probability"),
                     "evidence": _evidence(r["evidence"])} for r in rows[:TABLE_LIMIT]]
    return {"available": True, "total": total, "contradicted": contradicted,
            "contradicted_total": sum(e.get("contradicted", 0) for e in summary.judgements.values()),
            "by_decision": by_decision}


def action_list(validation: dict, review: dict, conflicts: dict, judged: dict) -> list[dict]:
    """One tile per kind of work, in the order a steward should take it; ``count`` 0 means done."""
    blocking = control = 0
    if validation.get("available"):
        blocking = sum(1 for s in validation.get("suites", []) if s.get("failed_blocking"))
        failed = [c for c in validation.get("checks", []) if str(c.get("status")).lower() in ("fail", "failed")]
        blocking += sum(1 for c in failed if c.get("severity") == "blocking")
        control = sum(1 for c in failed if c.get("name") in CONTROL_TOTAL_CHECKS)
    tiles = [
        ("blocking", blocking, "#validation", "blocking"),
        ("control_totals", control, "#validation", "action"),
        ("review", review.get("total") or 0 if review.get("available") else 0, "#review", "action"),
        ("contradictions", conflicts.get("contradictions", {}).get("persons", 0), "#conflicts", "action"),
        ("contradicted", judged.get("contradicted_total", 0), "#judgements", "action"),
    ]
    return [{"key": key, "label": _(TILES[key]), "count": count, "href": href,
             "severity": severity if count else "done"} for key, count, href, severity in tiles]


def continuity(summary: RunSummary) -> dict:
    """How many earlier ids merged, split or retired (lineage/), and how many persons of this run
    had been recorded in an earlier period (persons.seen_in_earlier_period), per role."""
    changes = dict((summary.lineage or {}).get("changes") or {})
    seen = {role: e["seen_in_earlier_period"] for role, e in (summary.persons or {}).items()
            if e.get("seen_in_earlier_period")}
    return {"available": summary.lineage is not None, "changes": changes, "seen_before": seen}
