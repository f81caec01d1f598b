"""``concilia diff RUN_A RUN_B``: what changed between two published runs.

Counts per agency and category come from the two manifests' figures; persons are compared by
membership: each run's harmonised records carry ``person_id``, so every person is the set of
``record_uid``s it groups. A person of B none of whose records are in A is *added*; a person of A
none of whose records are in B is *removed*; a B person holding records of several A persons
*merged* them; an A person whose records went to several B persons was *split*; a person kept
one-to-one but with records gained or lost is *changed*. Ids and counts only: no record values.
"""

from __future__ import annotations

from collections import defaultdict

import fsspec

from pipelines import publish
from pipelines.i18n import N_, _
from pipelines.report.terms import role_text
from pipelines.core.files import read_json

ROLES = ("victims", "offenders")


class UnknownRun(LookupError):
    """No published run of that id under OUT."""


def _flatten(figures: dict) -> dict[tuple[str, str], int]:
    """(agency, category) -> count for every number in the per-agency figures."""
    flat: dict[tuple[str, str], int] = {}
    for agency, entry in (figures.get("per_agency") or {}).items():
        for key, value in entry.items():
            if isinstance(value, dict):
                for sub, n in value.items():
                    flat[(agency, f"{key}.{sub}")] = n
            elif isinstance(value, (int, float)):
                flat[(agency, key)] = value
    for role, entry in (figures.get("reconciled_unique") or {}).items():
        flat[("ALL", f"unique_{role}")] = entry.get("persons", 0)
    return flat


def _memberships(fs, run_path: str, folder: str) -> dict[str, frozenset[str]]:
    table = publish.read_output(fs, f"{run_path}/harmonised/{folder}", ["record_uid", "person_id"])
    if not table.num_rows:
        return {}
    members: dict[str, set[str]] = defaultdict(set)
    for uid, pid in zip(table.column("record_uid").to_pylist(), table.column("person_id").to_pylist()):
        if pid is not None:
            members[pid].add(uid)
    return {pid: frozenset(uids) for pid, uids in members.items()}


def compare_persons(a: dict[str, frozenset[str]], b: dict[str, frozenset[str]]) -> dict:
    owner_a = {uid: pid for pid, uids in a.items() for uid in uids}
    owner_b = {uid: pid for pid, uids in b.items() for uid in uids}
    added = sorted(pid for pid, uids in b.items() if not any(u in owner_a for u in uids))
    removed = sorted(pid for pid, uids in a.items() if not any(u in owner_b for u in uids))
    merged = {pid: sorted({owner_a[u] for u in uids if u in owner_a}) for pid, uids in b.items()}
    merged = {pid: src for pid, src in merged.items() if len(src) > 1}
    split = {pid: sorted({owner_b[u] for u in uids if u in owner_b}) for pid, uids in a.items()}
    split = {pid: dst for pid, dst in split.items() if len(dst) > 1}
    a_sets = set(a.values())
    unchanged = sum(1 for uids in b.values() if uids in a_sets)
    # one A person -> one B person, with records gained or lost
    changed = sum(1 for pid, uids in b.items() if uids not in a_sets
                  and len({owner_a[u] for u in uids if u in owner_a}) == 1
                  and len({owner_b[u] for u in a[next(owner_a[u] for u in uids if u in owner_a)] if u in owner_b}) == 1)
    return {"persons_a": len(a), "persons_b": len(b), "added": added, "removed": removed, "merged": merged,
            "split": split, "unchanged": unchanged, "changed": changed,
            "records_added": len(set(owner_b) - set(owner_a)), "records_removed": len(set(owner_a) - set(owner_b))}


def diff_runs(out: str, run_a: str, run_b: str) -> dict:
    fs, out_path = fsspec.core.url_to_fs(out)
    out_path = out_path.rstrip("/")
    manifests = {}
    for run_id in (run_a, run_b):
        manifest = read_json(fs, f"{out_path}/runs/{run_id}/manifest.json")
        if manifest is None:
            raise UnknownRun(f"no run {run_id} with a manifest under {out}")
        manifests[run_id] = manifest
    fa, fb = _flatten(manifests[run_a].get("figures", {})), _flatten(manifests[run_b].get("figures", {}))
    counts = [{"agency": agency, "category": category, "a": fa.get((agency, category), 0),
               "b": fb.get((agency, category), 0), "change": fb.get((agency, category), 0) - fa.get((agency, category), 0)}
              for agency, category in sorted(set(fa) | set(fb))]
    inputs = {}
    for run_id, manifest in manifests.items():
        inputs[run_id] = {f["source_file"]: f["sha256"] for feed in manifest.get("feeds", {}).values()
                          for f in feed.get("files", [])}
    changed_files = sorted(f for f in set(inputs[run_a]) | set(inputs[run_b])
                           if inputs[run_a].get(f) != inputs[run_b].get(f))
    persons = {role: compare_persons(_memberships(fs, f"{out_path}/runs/{run_a}", role),
                                     _memberships(fs, f"{out_path}/runs/{run_b}", role)) for role in ROLES}
    return {"run_a": run_a, "run_b": run_b, "periods": [manifests[run_a].get("period"), manifests[run_b].get("period")],
            "changed_input_files": changed_files, "counts": [c for c in counts if c["change"]],
            "counts_unchanged": sum(1 for c in counts if not c["change"]), "persons": persons}


PERSON_CHANGES = {"added": N_("added"), "removed": N_("removed"), "merged": N_("merged"), "split": N_("split")}


def render(d: dict, show_ids: int = 10) -> str:
    lines = [f"diff {d['run_a']} -> {d['run_b']}"]
    lines.append(_("input files changed: %(n)s") % {"n": len(d["changed_input_files"])})
    lines += [f"  {f}" for f in d["changed_input_files"]]
    lines.append(_("counts changed: %(n)s (unchanged: %(same)s)") % {"n": len(d["counts"]), "same": d["counts_unchanged"]})
    lines.append("  {:<8} {:<40} {:>7} {:>7} {:>7}".format(_("agency"), _("category"), "A", "B", _("change")))
    for c in d["counts"]:
        lines.append(f"  {c['agency']:<8} {c['category']:<40} {c['a']:>7} {c['b']:>7} {c['change']:>+7}")
    for role, p in d["persons"].items():
        lines.append(_("%(role)s: persons %(a)s -> %(b)s; added %(added)s, removed %(removed)s, merged %(merged)s, "
                       "split %(split)s, unchanged %(unchanged)s, records changed %(changed)s; records +%(plus)s "
                       "-%(minus)s") % {
            "role": role_text(role, "noun"), "a": p["persons_a"], "b": p["persons_b"], "added": len(p["added"]),
            "removed": len(p["removed"]), "merged": len(p["merged"]), "split": len(p["split"]),
            "unchanged": p["unchanged"], "changed": p["changed"], "plus": p["records_added"], "minus": p["records_removed"]})
        for key in ("added", "removed"):
            if p[key]:
                lines.append(f"  {_(PERSON_CHANGES[key])}: {', '.join(p[key][:show_ids])}"
                             + (" ..." if len(p[key]) > show_ids else ""))
        for key, arrow in (("merged", "<-"), ("split", "->")):
            for pid, others in list(p[key].items())[:show_ids]:
                lines.append(f"  {_(PERSON_CHANGES[key])}: {pid} {arrow} {', '.join(others)}")
    return "\n".join(lines)
