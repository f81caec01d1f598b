"""``concilia status``: what is current, the recent runs, and what is pending.

Read-only: it lists ``OUT/runs/*`` (each run's manifest, and whether the folder verifies), the
pointers (``OUT/current.json``, ``OUT/periods/<period>/current.json``), the ledger's runs and
deliveries, and, given the landing zone, the folders that are not yet complete deliveries.
"""

from __future__ import annotations

import posixpath

import fsspec

from pipelines import publish, validate
from pipelines.i18n import N_, _
from pipelines.contracts import load_contracts
from pipelines.service import landing
from pipelines.read import safe_name
from pipelines.core.lease import holder
from pipelines.core.files import read_json
from pipelines.service.ledger import Ledger
from pipelines.pipeline import run_lease
from pipelines.service.watch import STATE_DIR, required_feeds


def status(out: str, landing_url: str | None = None, state: str | None = None, limit: int = 10,
           extra_contracts: list[str] | None = None) -> dict:
    fs, out_path = fsspec.core.url_to_fs(out)
    out_path = out_path.rstrip("/")
    current = read_json(fs, f"{out_path}/current.json")
    periods = {}
    for pointer in sorted(fs.glob(f"{out_path}/periods/*/current.json")):
        entry = read_json(fs, pointer) or {}
        versions = sorted(posixpath.basename(p)[:-5] for p in fs.glob(f"{posixpath.dirname(pointer)}/versions/*.json"))
        periods[posixpath.basename(posixpath.dirname(pointer))] = {"current": entry.get("run_id"), "versions": versions}

    running = holder(run_lease(out)) or {}
    runs = []
    run_ids = sorted((posixpath.basename(p) for p in fs.glob(f"{out_path}/runs/*") if fs.isdir(p)), reverse=True)
    for run_id in run_ids[:limit]:
        run_path = f"{out_path}/runs/{run_id}"
        manifest = read_json(fs, f"{run_path}/manifest.json")
        problems = publish.verify_run(fs, run_path)
        state_ = ("current" if current and current.get("run_id") == run_id else
                  "running" if run_id == running.get("run_id") else
                  "incomplete" if problems or not manifest else
                  "blocked" if manifest.get("status") == "blocked" else
                  "published" if publish.was_published(fs, out_path, run_id) else
                  "not published")  # verified, but stopped before the pointers switched
        runs.append({"run_id": run_id, "state": state_, "period": (manifest or {}).get("period"),
                     "finished": (manifest or {}).get("finished"), "problems": problems[:3]})

    state = (state or f"{out.rstrip('/')}/{STATE_DIR}").rstrip("/")
    ledger = Ledger(state)
    ledger_runs = [{"run_id": r.run_id, "period": r.period, "state": r.state, "input_hash": r.input_hash,
                    "reason": (r.states.get("failed") or {}).get("reason")} for r in ledger.runs()][-limit:]
    published_inputs = {(r.period, f, h) for r in ledger.runs() if r.state == "published" for f, h in r.inputs.items()}
    unpublished = [{"feed": d.feed, "period": d.period, "set_hash": d.set_hash, "seen": d.seen}
                   for d in ledger.deliveries() if (d.period, d.feed, d.set_hash) not in published_inputs]
    active = {period: {feed: {"set_hash": d.set_hash, "arrived": d.seen, "files": [f.name for f in d.files]}
                       for feed, d in sorted(ledger.latest(period).items())} for period in ledger.periods()}
    result = {"out": out, "current": current, "current_run": _current_run(fs, out_path, current), "periods": periods, "runs": runs, "ledger_runs": ledger_runs,
              "deliveries_not_published": unpublished, "active_deliveries": active,
              "refused": [n for n in ledger.notices() if n["kind"] == "refused"],
              "unclaimed": [n for n in ledger.notices() if n["kind"] == "unclaimed"],
              "leases": {"run": running or None, "watcher": holder(f"{state}/leases/watcher")}}
    if landing_url:
        contracts = load_contracts(*(extra_contracts or []))
        _ready, pending = landing.scan(landing_url, contracts)
        result["landing_pending"] = [{"feed": p.feed, "period": p.period, "reason": p.reason, "kind": p.kind,
                                      "folder": safe_name(p.folder)} for p in pending]
        required = required_feeds(contracts)
        result["waiting"] = {}
        for period in ledger.periods():
            missing = sorted(required - set(ledger.latest(period)))
            if missing:
                result["waiting"][period] = missing
    return result


def _current_run(fs, out_path: str, pointer: dict | None) -> dict | None:
    """What the pointer names: whether it verifies, its validation in one word, and its times."""
    if not pointer:
        return None
    run_path = f"{out_path}/{pointer.get('path') or 'runs/' + str(pointer.get('run_id'))}"
    manifest = read_json(fs, f"{run_path}/manifest.json") or {}
    problems = publish.verify_run(fs, run_path) if fs.exists(run_path) else [f"run folder {pointer.get('path')} is missing"]
    return {"run_id": pointer.get("run_id"), "verifies": not problems, "problems": problems[:3],
            "status": manifest.get("status"), "validation": validate.overall_state(manifest.get("validation")),
            "demo": manifest.get("demo"), "started": manifest.get("started"), "finished": manifest.get("finished"),
            "published": pointer.get("published")}


LANDING_NOTES = {"refused": N_("landing folders refused: %(n)s"), "unclaimed": N_("landing folders unclaimed: %(n)s")}


def render(s: dict) -> str:
    cur = s.get("current") or {}
    lines = [_("output: %(out)s") % {"out": s["out"]}, _("current: %(run_id)s") % {"run_id": cur.get("run_id", _("(none)"))}
             + (_(" (period %(period)s)") % {"period": cur["period"]} if cur.get("period") else "")]
    run = s.get("current_run")
    if run:
        problems = "; ".join(run["problems"])
        lines.append("  " + (_("verifies: yes") if run["verifies"] else _("verifies: NO: %(problems)s") % {"problems": problems}))
        lines.append("  " + _("validation: %(state)s") % {"state": run["validation"] or _("(none)")}
                     + ("  " + _("(demo key)") if run["demo"] else ""))
        lines.append("  " + _("started %(started)s, finished %(finished)s, published %(published)s") % {
            k: run[k] or "?" for k in ("started", "finished", "published")})
    for period, p in sorted(s["periods"].items()):
        lines.append(_("  period %(period)s: current %(run_id)s; %(n)s version(s)") % {
            "period": period, "run_id": p["current"], "n": len(p["versions"])})
    lines.append(_("recent runs:"))
    for r in s["runs"] or [{"run_id": _("(none)"), "state": "", "period": None, "problems": []}]:
        extra = f"  [{r['problems'][0]}]" if r["problems"] and r["state"] == "incomplete" else ""
        lines.append(f"  {r['run_id']:<34} {r['state']:<10} {r['period'] or '':<8}{extra}")
    if s["ledger_runs"]:
        lines.append(_("service runs (ledger):"))
        for r in s["ledger_runs"]:
            lines.append(f"  {r['run_id']:<34} {r['state']:<10} {r['period']:<8} {r['reason'] or ''}")
    for name, lease in (s.get("leases") or {}).items():
        if lease:
            lines.append(_("%(name)s lease: %(owner)s (host %(host)s, pid %(pid)s, expires %(expires)s)") % {
                "name": name, **{k: lease[k] for k in ("owner", "host", "pid", "expires")}})
    if s.get("active_deliveries"):
        lines.append(_("active deliveries (the last to arrive, per feed and period):"))
        for period, feeds in sorted(s["active_deliveries"].items()):
            for feed, d in feeds.items():
                lines.append(f"  {period:<8} {feed:<22} {d['set_hash']}  " + _("arrived %(when)s") % {"when": d["arrived"]}
                             + f"  {', '.join(d['files'])}")
    for kind, heading in LANDING_NOTES.items():
        if s.get(kind):
            lines.append(_(heading) % {"n": len(s[kind])})
            lines.extend(f"  {n['folder']}: {n['reason']}" for n in s[kind])
    lines.append(_("deliveries not yet published: %(n)s") % {"n": len(s["deliveries_not_published"])})
    for d in s["deliveries_not_published"]:
        lines.append(f"  {d['feed']:<22} {d['period']:<8} {d['set_hash']}  " + _("seen %(when)s") % {"when": d["seen"]})
    for period, missing in sorted(s.get("waiting", {}).items()):
        lines.append(_("  period %(period)s waits for: %(feeds)s") % {"period": period, "feeds": ", ".join(missing)})
    if "landing_pending" in s:
        lines.append(_("landing folders not ready: %(n)s") % {"n": len(s["landing_pending"])})
        for p in s["landing_pending"]:
            lines.append(f"  {p['feed'] or p['folder']:<22} {p['period']:<8} {p['reason']}")
    return "\n".join(lines)
