"""The report's sections as plain data: each function takes what the run has and returns a dict.

A section whose inputs the run lacks returns ``{"available": False, "reason": ...}`` and the page
says so; nothing here invents a figure. Values that could carry source text go through the
``Screen``; everything else is counts, codes, code labels and pseudonymous ids.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections import Counter
from functools import lru_cache

from pipelines import codelists
from pipelines.aggregates import RunSummary, value_of
from pipelines.i18n import N_, _, number
from pipelines.report import charts
from pipelines.report.terms import role_text
from pipelines.report.data import RunFolder
from pipelines.report.screen import Screen

ROLES = ("victims", "offenders")
TABLE_LIMIT = 50       # rows of a bounded table (conflicts, review queue, failed expectations)
TOP_NATIONALITIES = 8
NOT_RECORDED = N_("Not recorded")


def unavailable(reason: str, **extra) -> dict:
    return {"available": False, "reason": reason, **extra}


@lru_cache(maxsize=None)
def _codelist(name: str):
    try:
        return codelists.load(name)
    except (LookupError, OSError):
        return None


def label(list_name: str, code) -> str:
    """A code's label in the active language, the code itself when the list does not know it."""
    if code is None:
        return _(NOT_RECORDED)
    cl = _codelist(list_name)
    return (cl.label(code) if cl else None) or str(code)


def gloss(list_name: str, code) -> str | None:
    """The Spanish label shown under an English one (None on a Spanish page: the label is Spanish already)."""
    cl = _codelist(list_name)
    return cl.labels_es.get(code) if cl and code is not None and cl.label(code) != cl.labels_es.get(code) else None


def agency_order(agencies) -> list[str]:
    """Agencies in the code list's order (PNP, MP, MIMP, SUNAFIL, PJ), unknown ones after."""
    cl = _codelist("agencies")
    order = list(cl.codes_in_order) if cl else []
    present = set(agencies)
    return [a for a in order if a in present] + sorted(present - set(order))


def _counter(counts: dict | None) -> Counter:
    """A summary's counts (keys are values as text, ``NULL`` for null) as a Counter of values."""
    return Counter({value_of(k): n for k, n in (counts or {}).items()})


def _most_common(counts: Counter) -> list[tuple]:
    """Most frequent first, ties in the order of their keys (whatever order the counts came in)."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))


def _role_persons(summary: RunSummary, role: str) -> dict | None:
    """The persons' counts of a role (``{}`` when the run has none); None when persons/ is not in the run."""
    return None if summary.persons is None else summary.persons.get(role.rstrip("s"), {})


# ---------------------------------------------------------------- headline figures

DIMENSIONS = (
    ("child_adult", N_("Children and adults"), "child_adult"),
    ("sex", N_("Sex"), "sex"),
    ("nationality", N_("Nationality"), "countries"),
    ("exploitation_type", N_("Exploitation type"), "exploitation_types"),
)


def headline(manifest: dict, summary: RunSummary) -> dict:
    per_agency = manifest.get("figures", {}).get("per_agency", {})
    unique = manifest.get("figures", {}).get("reconciled_unique", {})
    roles = []
    for role in ROLES:
        records = summary.records.get(role.rstrip("s"))
        by_agency = Counter({a: c["records"] for a, c in records.get("agencies", {}).items()}) if records is not None else Counter(
            {a: f.get(role, 0) for a, f in per_agency.items() if f.get(role)})
        role_persons = _role_persons(summary, role)
        seen_by = _counter((role_persons or {}).get("seen_by"))
        agencies = agency_order(set(by_agency) | set(seen_by))
        n_unique = role_persons.get("persons", 0) if role_persons is not None else unique.get(role, {}).get("persons")
        total_records = sum(by_agency.values())
        rows = [{"agency": a, "agency_name": gloss("agencies", a) or label("agencies", a),  # the official, Spanish name
                 "records": by_agency.get(a, 0),
                 "persons": seen_by.get(a, 0) if seen_by else None} for a in agencies]
        bars = [charts.Bar(a, by_agency.get(a, 0), seen_by.get(a, 0) if seen_by else None) for a in agencies]
        bars.append(charts.Bar(_("All agencies"), total_records, None, emphasis=False))
        if n_unique is not None:
            bars.append(charts.Bar(_("Unique persons"), n_unique, None, emphasis=True))
        names = {"role": role_text(role, "title"), "noun": role_text(role, "noun"), "records": number(total_records),
                 "unique": number(n_unique) if n_unique is not None else _("an unknown number")}
        chart = charts.bar_chart(
            bars, _("%(role)s: records per agency and reconciled unique persons") % names,
            _("Each agency's %(noun)s records (dark) and the distinct persons among them (light); the sum of all "
              "agencies' records is %(records)s, of whom %(unique)s are unique persons.") % names,
            legend=(_("records"), _("persons") if seen_by else ""))
        roles.append({
            "role": role, "rows": rows, "total_records": total_records, "unique": n_unique,
            "duplicates": total_records - n_unique if n_unique is not None else None, "chart": chart,
            "persons_available": bool(seen_by),
        })
    victims = summary.records.get("victim")
    victim_persons = _role_persons(summary, "victims")
    dims = []
    for column, title, list_name in DIMENSIONS:
        dims.append(_dimension(column, title, list_name, victims, victim_persons, per_agency))
    offenders = []
    for a in agency_order(a for a, f in per_agency.items() if f.get("offenders")):
        f = per_agency[a]
        offenders.append({"agency": a, "records": f.get("offenders", 0), "detained": f.get("offenders_detained"),
                          "stages": [{"stage": label("justice_stages", s), "count": n}
                                     for s, n in sorted(f.get("offenders_by_stage", {}).items())]})
    return {"available": True, "roles": roles, "dimensions": dims, "offender_stages": offenders,
            "funnel": funnel(manifest.get("figures", {}).get("offender_funnel"))}


def funnel(figures: dict | None) -> dict:
    """Distinct offenders at each justice stage, and how many of them reach each later stage."""
    if not figures or not figures.get("persons_at_stage"):
        return unavailable(_("the run has no offender funnel (funnel/)"))
    cl = _codelist("justice_stages")
    at = figures["persons_at_stage"]
    order = [s for s in (cl.codes_in_order if cl else ()) if s in at] + sorted(s for s in at if not cl or s not in cl)
    reaching = []
    for key, n in (figures.get("persons_reaching") or {}).items():
        start, _arrow, end = key.partition("->")
        reaching.append({"from": label("justice_stages", start), "to": label("justice_stages", end), "persons": n,
                         "share": n / at[start] if at.get(start) else None})
    chart = charts.bar_chart([charts.Bar(label("justice_stages", s), at[s]) for s in order],
                             _("Offenders: distinct persons at each justice stage"),
                             _("Distinct offenders recorded at each stage of the criminal-justice system, all agencies "
                               "together."),
                             label_width=230, width=560)
    return {"available": True, "chart": chart, "reaching": reaching,
            "stages": [{"code": s, "label": label("justice_stages", s), "gloss": gloss("justice_stages", s),
                        "persons": at[s]} for s in order]}


def _dimension(column: str, title: str, list_name: str, victims: dict | None,
               persons: dict | None, per_agency: dict) -> dict:
    """Victims by one attribute: one column per agency (records) and one for unique persons
    (``victims``: the victims' record counts, ``persons``: the victim persons' counts of the summary)."""
    manifest_key = {"child_adult": "victims_by_child_adult", "sex": "victims_by_sex",
                    "nationality": "victims_by_nationality"}.get(column)
    by_agency: dict[str, Counter] = {}
    if victims is not None:
        agencies = victims.get("agencies", {})
        for a in agency_order(agencies):
            by_agency[a] = _counter(agencies[a].get(column))
            missing = by_agency[a].pop(None, 0)
            if missing:
                by_agency[a][None] = missing
    elif manifest_key:
        for a in agency_order(a for a, f in per_agency.items() if f.get("victims")):
            by_agency[a] = Counter(per_agency[a].get(manifest_key, {}))
    else:
        return unavailable(_("%(title)s: the harmonised victim records are not in this run") % {"title": _(title)},
                           title=_(title))
    person_counts = _counter(persons.get(column)) if persons is not None else None
    codes = Counter()
    for c in by_agency.values():
        codes.update(c)
    if person_counts:
        codes.update(person_counts)
    cl = _codelist(list_name)
    order = list(cl.codes_in_order) if cl and list_name != "countries" else []
    known = [c for c in order if c in codes]
    rest = sorted((c for c in codes if c not in known and c is not None), key=lambda c: (-codes[c], c))
    shown = known + rest
    other: list = []
    if column == "nationality" and len(shown) > TOP_NATIONALITIES:
        shown, other = shown[:TOP_NATIONALITIES], shown[TOP_NATIONALITIES:]
    rows = []
    for code in shown:
        rows.append({"code": code, "label": label(list_name, code), "gloss": gloss(list_name, code),
                     "agencies": [by_agency[a].get(code, 0) for a in by_agency],
                     "persons": person_counts.get(code, 0) if person_counts is not None else None})
    if other:
        rows.append({"code": None, "label": _("Other (%(n)s nationalities)") % {"n": number(len(other))}, "gloss": None,
                     "agencies": [sum(by_agency[a].get(c, 0) for c in other) for a in by_agency],
                     "persons": sum(person_counts.get(c, 0) for c in other) if person_counts is not None else None})
    if codes.get(None) or (person_counts and person_counts.get(None)):
        rows.append({"code": None, "label": _("Not recorded or in conflict") if person_counts is not None else _(NOT_RECORDED),
                     "gloss": None, "agencies": [by_agency[a].get(None, 0) for a in by_agency],
                     "persons": person_counts.get(None, 0) if person_counts is not None else None})
    return {"available": True, "title": _(title), "column": column, "agencies": list(by_agency), "rows": rows,
            "persons_available": person_counts is not None}


# ---------------------------------------------------------------- overlap between agencies

def _combo(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        parts = value
    else:
        parts = re.split(r"[+|,;\s]+", str(value))
    return tuple(agency_order(p for p in parts if p))


def overlap(summary: RunSummary) -> dict:
    """Persons per exact combination of agencies, per role; from overlap/ when the run has it."""
    source = None
    by_role: dict[str, Counter] = {}
    years: dict[str, dict] = {}
    if summary.overlap:
        source = "overlap/"
        for role, entry in summary.overlap.items():
            role = str(role or "victim").rstrip("s") + "s"
            for combo, n in entry.get("combinations", {}).items():
                by_role.setdefault(role, Counter())[_combo(combo)] += int(n or 0)
            for year, n in entry.get("years", {}).items():
                if value_of(year) is not None:
                    years.setdefault(role, Counter())[int(year)] += int(n or 0)
    if source is None and summary.persons is not None:
        source = "persons/"
        for role in ROLES:
            combos = (_role_persons(summary, role) or {}).get("combinations")
            if combos:
                by_role[role] = Counter()
                for combo, n in combos.items():
                    by_role[role][_combo(value_of(combo))] += n
    if source is None:
        return unavailable(_("neither overlap/ nor persons/ is in this run"))
    roles = []
    for role in ROLES:
        combos = by_role.get(role)
        if not combos:
            continue
        agencies = agency_order({a for c in combos for a in c})
        sets = [(a, sum(n for c, n in combos.items() if a in c)) for a in agencies]
        inter = sorted(((c, n) for c, n in combos.items() if c), key=lambda kv: (-kv[1], len(kv[0]), kv[0]))
        total = sum(combos.values())
        multi = sum(n for c, n in combos.items() if len(c) > 1)
        names = {"role": role_text(role, "title"), "noun": role_text(role, "noun"), "total": number(total),
                 "multi": number(multi)}
        chart = charts.upset(
            sets, inter, _("%(role)s: overlap between agencies (UpSet chart)") % names,
            _("%(total)s unique %(noun)s; %(multi)s were recorded by more than one agency. Columns are the persons "
              "recorded by exactly the agencies marked below them; bars on the left are all persons each agency "
              "recorded.") % names)
        roles.append({"role": role, "total": total, "multi": multi, "sets": sets, "chart": chart,
                      "intersections": [{"agencies": " + ".join(c), "size": len(c), "persons": n} for c, n in inter],
                      "years": sorted(years.get(role, {}).items())})
    return {"available": bool(roles), "reason": _("no persons in this run"), "source": source, "roles": roles}


# ---------------------------------------------------------------- feeds and validation

def _status(success) -> str:
    return {True: "pass", False: "fail"}.get(success, "unknown")


def feeds(manifest: dict, screen: Screen) -> list[dict]:
    rows = []
    for feed_id, f in manifest.get("feeds", {}).items():
        rows.append({
            "feed_id": feed_id, "agency": f.get("agency"), "role": f.get("role"),
            "contract_version": (f.get("contract") or {}).get("version"),
            "files": len(f.get("files", [])),
            "files_rejected": sum(1 for x in f.get("files", []) if x.get("file_rejected")),
            "rows_read": f.get("rows_read", 0), "rows_harmonised": f.get("rows_harmonised", 0),
            "rows_quarantined": f.get("rows_quarantined", 0),
            "accounting_ok": f.get("rows_read", 0) == f.get("rows_harmonised", 0) + f.get("rows_quarantined", 0),
            "unmapped": [{"field": u.get("field"), "value": screen.text(u.get("value")), "count": u.get("count")}
                         for u in f.get("unmapped_values", [])],
            "assertion_failures": [screen.text(a) for a in f.get("assertion_failures", [])],
            "required_warnings": required_warnings(f),
        })
    return rows


def required_warnings(feed: dict) -> list[dict]:
    """Rows kept although a field the contract requires with ``warn`` failed (the manifest's
    ``required_warnings``: field -> reason -> rows): field, reason and count, never a value."""
    return [{"field": field_name, "code": code, "reason": label("quarantine_reasons", code),
             "gloss": gloss("quarantine_reasons", code), "count": count}
            for field_name, reasons in sorted((feed.get("required_warnings") or {}).items())
            for code, count in sorted(reasons.items())]


def _docs_link(run: RunFolder, path) -> dict | None:
    """A Data Docs path from the manifest, as a link relative to reports/index.html."""
    if not path:
        return None
    path = str(path).lstrip("/")
    if re.match(r"^[a-z][a-z0-9+.-]*:", path):  # absolute URL: never linked from an offline page
        return {"href": None, "text": posixpath.basename(path), "exists": False}
    for rel in (path, posixpath.join("reports", path)):
        if run.exists(rel):
            return {"href": posixpath.relpath(rel, "reports"), "text": rel, "exists": True}
    return {"href": None, "text": path, "exists": False}


_RESULT_KEYS = ("expectation", "expectation_type", "type", "name", "column", "severity", "success",
                "unexpected_count", "unexpected_percent", "element_count", "quarantined", "row_action")


def _flat(value) -> str:
    """A check's observed/expected value as one line (mappings as 'key: value; ...')."""
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_flat(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(_flat(v) for v in value)
    if isinstance(value, float):  # three significant digits, whole numbers from 100 on
        return number(value, 0 if value == 0 or abs(value) >= 100 else min(6, 2 - math.floor(math.log10(abs(value)))))
    if isinstance(value, int) and not isinstance(value, bool):
        return number(value)
    return str(value)


def validation(manifest: dict, run, screen: Screen) -> dict:
    v = manifest.get("validation")
    if not v:
        return unavailable(_("this run carries no validation results (no \"validation\" in its manifest)"))
    suites = []
    for name, s in (v.get("suites") or {}).items():
        failed = []
        for r in s.get("results") or []:
            if not isinstance(r, dict) or r.get("success", True):
                continue
            row = {k: r[k] for k in _RESULT_KEYS if k in r and not isinstance(r[k], (dict, list))}
            failed.append({k: screen.text(val) if isinstance(val, str) else val for k, val in row.items()})
        blocking, warning = s.get("failed_blocking", 0) or 0, s.get("failed_warning", 0) or 0
        suites.append({
            "name": screen.text(name), "target": screen.text(s.get("target")),
            "status": "fail" if blocking or (s.get("success") is False and not warning)
                      else "warn" if warning else _status(s.get("success")),
            "evaluated": s.get("evaluated"), "failed_blocking": blocking, "failed_warning": warning,
            "data_docs": _docs_link(run, s.get("data_docs")),
            "failed": failed[:TABLE_LIMIT], "failed_total": len(failed),
        })
    checks = []
    for c in v.get("checks") or []:
        entry = {k: screen.text(_flat(c.get(k))) if c.get(k) is not None else None
                 for k in ("name", "severity", "status", "observed", "expected", "detail")}
        entry["findings"] = c.get("findings") if isinstance(c.get("findings"), int) else None
        checks.append(entry)
    order = {"fail": 0, "failed": 0, "warn": 1, "warning": 1}
    checks.sort(key=lambda c: (order.get(str(c["status"]).lower(), 2), str(c["name"])))
    docs_index = _docs_link(run, v.get("data_docs") or "reports/data_docs/index.html")
    return {"available": True, "blocking_failed": bool(v.get("blocking_failed")), "suites": suites,
            "checks": checks, "data_docs_index": docs_index if docs_index and docs_index["exists"] else None,
            "checks_failed": sum(1 for c in checks if str(c["status"]).lower() in ("fail", "failed")),
            "suites_failed": sum(1 for s in suites if s["status"] == "fail"),
            "suites_warned": sum(1 for s in suites if s["status"] == "warn")}


def feed_validation(suites: list[dict], feed_rows: list[dict]) -> None:
    """Attach each feed's suites (matched by target or name) to its row of the feeds table."""
    for row in feed_rows:
        row["suites"] = [s for s in suites if row["feed_id"] in (s["target"], s["name"])
                         or (s["target"] or "").endswith("/" + row["feed_id"])]


# ---------------------------------------------------------------- quarantine

def quarantine(summary: RunSummary, manifest: dict, screen: Screen) -> dict:
    counts = summary.quarantine
    if counts is None:
        reasons = Counter()
        for f in manifest.get("feeds", {}).values():
            reasons.update(f.get("quarantine_reasons", {}))
        if not reasons:
            return unavailable(_("quarantine/ is not in this run"))
        return {"available": True, "source": "manifest", "total": sum(reasons.values()), "files": [], "fields": [],
                "reasons": [{"code": c, "label": label("quarantine_reasons", c),
                             "gloss": gloss("quarantine_reasons", c), "count": n, "feeds": ""}
                            for c, n in reasons.most_common()]}
    by_reason = {reason: _counter(feeds) for reason, feeds in (counts.get("by_reason") or {}).items()}
    fields = Counter({(reason, value_of(f)): n for reason, per_field in (counts.get("fields") or {}).items()
                      for f, n in per_field.items()})
    files = [{"feed_id": r.get("feed_id"), "file": screen.text(r.get("source_file")),
              "reason": label("quarantine_reasons", r["reason_code"]), "detail": screen.text(r.get("detail"))}
             for r in summary.quarantined_files]
    reasons = sorted(by_reason.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
    return {
        "available": True, "source": "quarantine/", "total": counts.get("total", 0), "files": files,
        "reasons": [{"code": c, "label": label("quarantine_reasons", c), "gloss": gloss("quarantine_reasons", c),
                     "count": sum(feeds.values()),
                     "feeds": ", ".join(f"{f} {n}" for f, n in sorted(feeds.items(), key=lambda kv: (-kv[1], str(kv[0]))))}
                    for c, feeds in reasons],
        "fields": [{"reason": label("quarantine_reasons", r), "field": screen.text(f), "count": n}
                   for (r, f), n in _most_common(fields)[:TABLE_LIMIT]],
    }


# ---------------------------------------------------------------- conflicts

def _format_values(value, screen: Screen) -> str:
    """An 'agency -> value' cell from whatever shape the conflicts table uses (map, struct, list, text)."""
    if value is None:
        return ""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list) and value and all(isinstance(v, tuple) and len(v) == 2 for v in value):
        items = value  # pyarrow map -> list of (key, value)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        items = [(v.get("agency") or v.get("key") or v.get("feed_id"),
                  v.get("value") if "value" in v else v.get("values")) for v in value]
    elif isinstance(value, list):
        return ", ".join(screen.text(v) or "" for v in value)
    else:
        return screen.text(value) or ""
    parts = []
    for k, v in items:
        if isinstance(v, list):
            v = "/".join(str(x) for x in v)
        parts.append(f"{screen.text(k)}: {screen.text(v) if v is not None else '—'}")
    return "; ".join(parts)


def conflicts(summary: RunSummary, screen: Screen) -> dict:
    flagged = {}
    if summary.persons is not None:
        for role in ROLES:
            flagged[role] = int(_role_persons(summary, role).get("has_conflict", 0))
    counts = summary.conflicts
    if counts is None:
        if not flagged:
            return unavailable(_("neither conflicts/ nor persons/ is in this run"))
        return {"available": False, "partial": True, "flagged": flagged,
                "reason": _("per-attribute conflict detail (conflicts/) is not available in this run")}
    by_attr = _counter(counts.get("by_attribute"))
    rows = []
    for r in summary.conflict_rows[:TABLE_LIMIT]:
        rows.append({"person_id": screen.ident(r.get("person_id")), "role": r.get("role"),
                     "n_records": r.get("n_records"), "attribute": screen.text(r.get("attribute")),
                     "agency_values": _format_values(r.get("values"), screen)})
    return {"available": True, "flagged": flagged, "total": counts.get("total", 0), "persons": counts.get("persons", 0),
            "by_attribute": [{"attribute": screen.text(a), "count": n} for a, n in _most_common(by_attr)],
            "rows": rows, "shown": len(rows)}


# ---------------------------------------------------------------- review queue

_ID_COL = re.compile(r"^(?:(?:left|right|l|r)_)?(?:record_uid|person_id|pair_id|unique_id|cluster_id|uid|id|"
                     r"record_id|[a-z_]*_uid)(?:_(?:l|r|1|2|left|right|a|b))?$")
_PII_WORDS = ("name", "document", "birth", "surname", "given", "dni")
_CONTRIBUTION = re.compile(r"^(?:w|weight|contribution|bf|gamma|level)_[a-z0-9_]+$")
_WEIGHT = re.compile(r"^(?:w|weight|match_weight|contribution|bf|gamma|level)_(.+)$|^(.+)_(?:weight|contribution|bf|gamma|level)$")


def _review_columns(cols: list[str]) -> tuple[list[str], str | None, dict[str, tuple[str, str]]]:
    ids = [c for c in cols if _ID_COL.match(c) and not any(w in c for w in _PII_WORDS)]
    prob = next((c for c in cols if c in ("match_probability", "probability")), None) or \
        next((c for c in cols if "prob" in c), None)
    comps: dict[str, tuple[str, str]] = {}
    rank = {"w": 0, "weight": 0, "match": 0, "contribution": 0, "bf": 1, "gamma": 2, "level": 2}
    for c in cols:
        if c in ids or c == prob or c == "match_weight":
            continue
        m = _WEIGHT.match(c)
        if not m:
            continue
        name = m.group(1) or m.group(2)
        kind = c.split("_", 1)[0] if m.group(1) else c.rsplit("_", 1)[1]
        kind = "weight" if kind in ("w", "weight", "match", "contribution") else kind
        if name not in comps or rank.get(kind, 3) < rank.get(comps[name][1], 3):
            comps[name] = (c, kind)
    return ids, prob, comps


def _verdict(value, kind: str) -> str:
    """agree / disagree / unknown from a comparison's contribution (weight, Bayes factor or level)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "unknown"
    if kind == "bf":
        return "agree" if v > 1 else "disagree" if v < 1 else "unknown"
    if kind in ("gamma", "level"):
        return "unknown" if v < 0 else "agree" if v > 0 else "disagree"
    return "agree" if v > 0 else "disagree" if v < 0 else "unknown"


def _contributions(row: dict, comps: dict, nested: str | None) -> dict[str, str]:
    verdicts = {name: _verdict(row.get(col), kind) for name, (col, kind) in comps.items()}
    if nested and row.get(nested):
        value = row[nested]
        items = value.items() if isinstance(value, dict) else (
            [(v.get("comparison") or v.get("name"), v.get("weight", v.get("contribution", v.get("bf"))))
             for v in value] if isinstance(value, list) and value and isinstance(value[0], dict) else value)
        for k, v in items:  # comparison names (surnames, document...) are field names, never values
            if k:
                verdicts[str(k)] = _verdict(v, "weight")
    return verdicts


def review_column_allowed(name: str) -> bool:
    """Columns of review_queue/ the report may read: ids, probability, contributions, reason, role.
    The queue is restricted (both records side by side, names included): those columns are never read."""
    if _ID_COL.match(name) or _CONTRIBUTION.match(name):  # contributions are numbers named after comparisons
        return True
    return not name.startswith(("left_", "right_")) and not any(w in name for w in _PII_WORDS)


def _probability(row: dict, prob: str | None) -> float:
    v = row.get(prob) if prob else None
    return -math.inf if v is None else v


def review_queue(summary: RunSummary, screen: Screen) -> dict:
    if not summary.review:
        return unavailable(_("review_queue/ is not in this run"))
    queued = [r for rows in summary.review_rows.values() for r in rows]
    cols = sorted({c for r in queued for c in r}) or ["left_uid", "right_uid", "match_probability", "reason", "role"]
    ids, prob, comps = _review_columns(cols)
    nested = next((c for c in cols if c in ("contributions", "comparisons", "weights")), None)
    counts = Counter()
    for entry in summary.review.values():
        counts.update({int(b): n for b, n in (entry.get("bands") or {}).items()})
    bands = [charts.Bar(f"{number(b / 10, 1)}–{number((b + 1) / 10, 1)}", counts[b]) for b in range(10) if counts.get(b)]
    chart = charts.bar_chart(bands, _("Review queue: pairs by match probability"),
                             _("Number of candidate pairs waiting for clerical review in each band of match probability."),
                             label_width=80, width=420) if bands else ""
    rows = []
    for r in sorted(queued, key=lambda r: -_probability(r, prob))[:TABLE_LIMIT]:
        verdicts = _contributions(r, comps, nested)
        rows.append({
            "ids": [screen.ident(r.get(c)) for c in ids],
            "role": r.get("role"), "reason": screen.text(r.get("reason")),
            "probability": r.get(prob) if prob else None,
            "agree": sorted(screen.text(k) for k, v in verdicts.items() if v == "agree"),
            "disagree": sorted(screen.text(k) for k, v in verdicts.items() if v == "disagree"),
            "unknown": sorted(screen.text(k) for k, v in verdicts.items() if v == "unknown"),
        })
    by_role = sorted(((role, e.get("total", 0)) for role, e in summary.review.items() if e.get("total")),
                     key=lambda kv: str(kv[0]))
    reasons = Counter()
    for entry in summary.review.values():
        reasons.update(_counter(entry.get("by_reason")))
    return {"available": True, "total": sum(e.get("total", 0) for e in summary.review.values()), "id_columns": ids,
            "probability_column": prob, "by_role": by_role,
            "by_reason": [(screen.text(k), n) for k, n in _most_common(reasons)],
            "has_role": True, "has_reason": "reason" in cols,
            "chart": chart, "bands": [{"band": b.label, "pairs": int(b.value)} for b in bands],
            "rows": rows, "shown": len(rows)}


# ---------------------------------------------------------------- multiple systems estimation

def mse(manifest: dict, overlap_section: dict) -> dict:
    m = manifest.get("mse")
    if not m:
        return unavailable(_("this run carries no multiple systems estimate (no \"mse\" in its manifest)"))
    sets = {r["role"]: r for r in overlap_section.get("roles", [])} if overlap_section.get("available") else {}
    roles = []
    for role, est in m.items():
        if not isinstance(est, dict):
            continue
        key = str(role).rstrip("s") + "s"
        seen = sets.get(key)
        entry = {"role": key, "seen_by": list(seen["sets"]) if seen else [],
                 "seen_any": est.get("observed", seen["total"] if seen else None)}
        if "refused" in est:
            entry.update(refused=str(est["refused"]))
        else:
            entry.update({k: est.get(k) for k in ("estimate", "lower", "upper", "method", "model", "interval_method")})
            entry["lists"] = ", ".join(str(x) for x in est.get("lists") or [])
            model = entry["model"]  # interaction terms besides the main effects, e.g. ["PNP:MIMP"]
            entry["model"] = " + ".join([_("main effects"), *model]) if isinstance(model, list) else \
                (str(model) if model is not None else None)
            bars = [charts.Bar(a, n) for a, n in entry["seen_by"]]
            if entry["seen_any"] is not None:
                bars.append(charts.Bar(_("Any agency"), entry["seen_any"]))
            if entry["estimate"] is not None:
                bars.append(charts.Bar(_("Estimated total"), float(entry["estimate"]), low=entry["lower"],
                                       high=entry["upper"], emphasis=True))
            figures = {k: "—" if entry[k] is None else number(entry[k]) for k in ("estimate", "lower", "upper", "seen_any")}
            entry.update(_mse_rests_on(est))
            entry["chart"] = charts.bar_chart(
                bars, _("%(role)s: seen by each agency, by any agency, and estimated in total") % {
                    "role": role_text(key, "title")},
                _("Multiple systems estimate %(estimate)s (interval %(lower)s to %(upper)s); "
                  "%(seen_any)s were seen by at least one agency.") % figures)
        roles.append(entry)
    return {"available": bool(roles), "reason": _("the manifest's \"mse\" entry is empty"), "roles": roles}


def _mse_rests_on(est: dict) -> dict:
    """What the figure rests on: the stratified estimate, the linkage band, the other method and whether
    the two disagree beyond their intervals (the template words them)."""
    out = {}
    stratified = est.get("stratified") or {}
    if stratified.get("estimate") is not None:
        out["stratified"] = {k: stratified.get(k) for k in ("estimate", "lower", "upper", "method", "components")}
        out["stratified"]["by"] = str(stratified.get("stratum", "")).split(":", 1)[-1]
    elif stratified.get("refused"):
        out["stratified_refused"] = str(stratified["refused"])
    if est.get("linkage_lower") is not None:
        out["linkage"] = {"lower": est["linkage_lower"], "upper": est["linkage_upper"],
                          "pairs": est.get("uncertain_pairs")}
    if est.get("comparison_estimate") is not None:
        out["comparison"] = {"method": est.get("comparison_method"), "estimate": est["comparison_estimate"],
                             "lower": est.get("comparison_lower"), "upper": est.get("comparison_upper"),
                             "disagree": bool(est.get("methods_disagree"))}
    return out


# ---------------------------------------------------------------- changes since the previous run

def _delta_row(what: str, before, after) -> dict:
    delta = after - before if isinstance(before, (int, float)) and isinstance(after, (int, float)) else None
    return {"what": what, "before": before, "after": after, "delta": delta,
            "changed": before != after}


def _mse_point(m: dict | None, role: str):
    est = (m or {}).get("mse", {}).get(role) or {}
    return est.get("estimate") if "refused" not in est else _("refused")


VERSION_FIGURES = {"code_version": N_("code version"), "model_version": N_("model version"),
                   "git_commit": N_("git commit")}
FEED_FIGURES = {"rows_read": N_("%(feed)s read"), "rows_harmonised": N_("%(feed)s harmonised"),
                "rows_quarantined": N_("%(feed)s quarantined")}


def changes(manifest: dict, previous: dict | None, previous_ref: str | None, screen: Screen) -> dict:
    """What moved between the previously published run and this one: inputs, rows, figures, versions."""
    if previous_ref is None:
        return unavailable(_("no run was published before this one"))
    if previous is None:
        return unavailable(_("the previous run (%(run)s) has no readable manifest") % {"run": screen.ident(previous_ref)})
    versions = [_delta_row(_(what), previous.get(k), manifest.get(k)) for k, what in VERSION_FIGURES.items()]
    files = []
    feed_rows = []
    contracts = []
    now_feeds, before_feeds = manifest.get("feeds", {}), previous.get("feeds", {})
    for feed_id in sorted(set(now_feeds) | set(before_feeds)):
        a, b = before_feeds.get(feed_id, {}), now_feeds.get(feed_id, {})
        for key, what in FEED_FIGURES.items():
            feed_rows.append(_delta_row(_(what) % {"feed": feed_id}, a.get(key, 0), b.get(key, 0)))
        va, vb = (a.get("contract") or {}).get("version"), (b.get("contract") or {}).get("version")
        if va != vb:
            contracts.append({"feed_id": feed_id, "before": va, "after": vb})
        fa = {f["source_file"]: f.get("sha256") for f in a.get("files", [])}
        fb = {f["source_file"]: f.get("sha256") for f in b.get("files", [])}
        for name in sorted(set(fa) | set(fb)):
            state = "added" if name not in fa else "removed" if name not in fb else \
                "changed" if fa[name] != fb[name] else None
            if state:
                files.append({"feed_id": feed_id, "file": screen.text(name), "change": state})
    figures = []
    pa_now = manifest.get("figures", {}).get("per_agency", {})
    pa_before = previous.get("figures", {}).get("per_agency", {})
    for agency in agency_order(set(pa_now) | set(pa_before)):
        for role in ROLES:
            before, after = pa_before.get(agency, {}).get(role, 0), pa_now.get(agency, {}).get(role, 0)
            if before or after:
                figures.append(_delta_row(_("%(agency)s %(role)s (records)") % {"agency": agency, "role": role_text(role, "noun")},
                                          before, after))
    u_now = manifest.get("figures", {}).get("reconciled_unique", {})
    u_before = previous.get("figures", {}).get("reconciled_unique", {})
    for role in ROLES:
        figures.append(_delta_row(_("unique %(role)s (persons)") % {"role": role_text(role, "noun")},
                                  u_before.get(role, {}).get("persons", 0),
                                  u_now.get(role, {}).get("persons", 0)))
    for role in sorted(set((manifest.get("mse") or {})) | set((previous.get("mse") or {}))):
        figures.append(_delta_row(_("estimated %(role)s (MSE)") % {"role": role_text(role, "noun")},
                                  _mse_point(previous, role), _mse_point(manifest, role)))
    validation_rows = []
    va, vb = previous.get("validation") or {}, manifest.get("validation") or {}
    if va or vb:
        validation_rows.append(_delta_row(_("blocking failures"), _("yes") if va.get("blocking_failed") else _("no"),
                                          _("yes") if vb.get("blocking_failed") else _("no")))
        before_checks = {c.get("name"): c.get("status") for c in va.get("checks") or []}
        for c in vb.get("checks") or []:
            if before_checks.get(c.get("name")) != c.get("status"):
                validation_rows.append(_delta_row(_("check %(name)s") % {"name": screen.text(c.get("name"))},
                                                  before_checks.get(c.get("name"), "—"), c.get("status")))
    moved = [r for r in feed_rows + figures + versions + validation_rows if r["changed"]]
    return {"available": True, "previous_run_id": screen.ident(previous.get("run_id") or previous_ref),
            "previous_finished": previous.get("finished"), "versions": versions, "files": files,
            "contracts": contracts, "feeds": [r for r in feed_rows if r["changed"]], "figures": figures,
            "validation": validation_rows, "n_changed": len(moved) + len(files) + len(contracts)}
