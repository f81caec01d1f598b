"""The report as a work list: what needs a steward, at the top of the page, each tile linking to its
section; conflicts split into gaps one agency fills and real contradictions, with code labels.

Its text goes through the message catalog (``pipelines.i18n``): tile labels and evidence are marked
here and translated where they are built; headings and captions are in the page's template.
"""

from __future__ import annotations

from pipelines import model
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


def split_conflicts(table, screen: Screen) -> dict:
    """Conflicts whose only disagreement is a known value against UNKNOWN (gaps) apart from those
    where agencies recorded different known values (contradictions)."""
    if table is None:
        return {"available": False}
    out = {"gaps": {"total": 0, "persons": set(), "rows": []}, "contradictions": {"total": 0, "persons": set(), "rows": []}}
    ordered = table.sort_by([("attribute", "ascending"), ("person_id", "ascending")]) if table.num_rows else table
    for r in ordered.to_pylist():
        known = {str(v).partition("=")[2] for v in r.get("values") or []} - {UNKNOWN}
        kind = out["contradictions" if len(known) > 1 else "gaps"]
        kind["total"] += 1
        kind["persons"].add(r["person_id"])
        if len(kind["rows"]) < TABLE_LIMIT:
            role = str(r.get("role") or "victim")
            kind["rows"].append({"person_id": screen.ident(r["person_id"]), "role": role,
                                 "attribute": screen.text(r.get("attribute")),
                                 "agency_values": _labelled(r.get("values"), _code_list(role, r.get("attribute")), screen)})
    for kind in out.values():
        kind["persons"] = len(kind["persons"])
    return {"available": True, **out}


def _evidence(code: str) -> str:
    return _(EVIDENCE[code]) if code in EVIDENCE else code


def judgements(table, screen: Screen) -> dict:
    """The stewards' judgements in force with this run's evidence (judgements/)."""
    if table is None or not table.num_rows:
        return {"available": table is not None, "total": 0, "contradicted": [], "by_decision": {}}
    rows = table.to_pylist()
    contradicted = [{"left_uid": screen.ident(r["left_uid"]), "right_uid": screen.ident(r["right_uid"]),
                     "role": r.get("role"), "decision": r["decision"], "probability": r.get("match_probability"),
                     "evidence": _evidence(r["evidence"])} for r in rows if r.get("contradicted")]
    by_decision: dict[str, int] = {}
    for r in rows:
        by_decision[r["decision"]] = by_decision.get(r["decision"], 0) + 1
    return {"available": True, "total": len(rows), "contradicted": contradicted[:TABLE_LIMIT],
            "contradicted_total": len(contradicted), "by_decision": by_decision}


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


def continuity(lineage, persons) -> dict:
    """How many earlier ids merged, split or retired (lineage/), and how many persons of this run
    had been recorded in an earlier period (persons.seen_in_earlier_period), per role."""
    changes: dict[str, int] = {}
    if lineage is not None:
        for change in lineage.column("change").to_pylist():
            changes[change] = changes.get(change, 0) + 1
    seen: dict[str, int] = {}
    if persons is not None and "seen_in_earlier_period" in persons.column_names:
        for role, flag in zip(persons.column("role").to_pylist(), persons.column("seen_in_earlier_period").to_pylist()):
            if flag:
                seen[role] = seen.get(role, 0) + 1
    return {"available": lineage is not None, "changes": changes, "seen_before": seen}
