"""Assemble the steward's report of one run into ``reports/index.html``.

``build_report`` reads whatever the run folder holds (manifest, Parquet outputs) and the previous
published run's manifest, computes the sections (``sections.py``), and renders one self-contained
page (``templates/report.html``): inline CSS, inline SVG, no script, no external resource. The page
is in the active language (``pipelines.i18n``) or the ``lang`` asked for: text through the gettext
catalog (Jinja2's i18n extension), numbers and dates in that language's format.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

import jinja2

from pipelines import i18n
from pipelines.i18n import _
from pipelines.report import actions, sections, terms
from pipelines.report.data import RunFolder
from pipelines.report.screen import Screen

log = logging.getLogger(__name__)

REPORT_PATH = "reports/index.html"
REPORT_ZONE = "pseudonymised"  # counts and pseudonymous ids: for stewards, not a public release
_RESTRICTED_COLUMNS = ["given_names", "paternal_surname", "maternal_surname", "document_number", "birth_date",
                       "documents", "aliases"]
_RECORD_COLUMNS = ["agency", "feed_id", "sex", "child_adult", "nationality", "exploitation_type", "stage"]


def _fmt_number(value, decimals: int | None = None) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, int):
        return i18n.number(value, decimals or 0)
    if isinstance(value, float):
        if decimals is None:
            decimals = 0 if value.is_integer() or abs(value) >= 100 else 2
        return i18n.number(value, decimals)
    return str(value)


def _when(value) -> str:
    """An ISO timestamp as a UTC date and time in the page's format (as given when it does not parse)."""
    if not value:
        return "—"
    try:
        return i18n.timestamp(dt.datetime.fromisoformat(str(value)))
    except ValueError:
        return str(value)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipelines.report", "templates"), extensions=["jinja2.ext.i18n"],
        autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # the active language's catalog
    env.filters.update(n=_fmt_number, when=_when, pct=i18n.percent, role_text=terms.role_text,
                       status_label=terms.status_label, severity=terms.severity_label, change_label=terms.change_label,
                       zone_label=terms.zone_label, lineage_label=terms.lineage_label, role_label=lambda code: sections.label("roles", code),
                       spanish=lambda text: i18n.catalog("es").gettext(text))
    return env


def report_context(run_dir: str, previous_run_dir: str | None = None, manifest: dict | None = None) -> dict:
    """Everything the page shows, as plain data (the tests read it too)."""
    run = RunFolder(run_dir)
    manifest = manifest if manifest is not None else run.manifest()
    if manifest is None:
        raise FileNotFoundError(f"no manifest.json in run {run.run_id}")
    restricted = [t for t in (run.table(f"restricted/{r}", _RESTRICTED_COLUMNS) for r in sections.ROLES) if t is not None]
    screen = Screen.from_restricted(restricted)
    del restricted
    records = {r: run.table(f"harmonised/{r}", _RECORD_COLUMNS) for r in sections.ROLES}
    persons = run.table("persons")

    previous = RunFolder(previous_run_dir) if previous_run_dir else None
    previous_manifest = previous.manifest() if previous else None

    headline = sections.headline(manifest, records, persons)
    overlap = sections.overlap(persons, run.table("overlap"))
    validation = sections.validation(manifest, run, screen)
    feeds = sections.feeds(manifest, screen)
    sections.feed_validation(validation.get("suites", []), feeds)
    conflicts = sections.conflicts(run.table("conflicts"), persons, screen)
    conflict_split = actions.split_conflicts(run.table("conflicts"), screen)
    judgements = actions.judgements(run.table("judgements"), screen)
    review = sections.review_queue(run.table("review_queue", keep=sections.review_column_allowed), screen)
    all_feeds = manifest.get("feeds", {}).values()
    glance = {
        "feeds": len(manifest.get("feeds", {})),
        "files": sum(len(f.get("files", [])) for f in all_feeds),
        "files_rejected": manifest.get("files_rejected", 0),
        "rows_read": sum(f.get("rows_read", 0) for f in all_feeds),
        "rows_harmonised": sum(f.get("rows_harmonised", 0) for f in all_feeds),
        "rows_quarantined": sum(f.get("rows_quarantined", 0) for f in all_feeds),
        "conflicts": conflicts.get("persons") if conflicts.get("available") and conflicts.get("persons") is not None
        else sum((conflicts.get("flagged") or {}).values()),
    }
    outputs = [{"folder": folder, "zone": o.get("zone"), "rows": o.get("rows"), "files": len(o.get("files", []))}
               for folder, o in manifest.get("outputs", {}).items()]
    return {
        "run": {"run_id": manifest.get("run_id", run.run_id), "started": manifest.get("started"),
                "finished": manifest.get("finished"), "code_version": manifest.get("code_version"),
                "model_version": manifest.get("model_version"), "git_commit": manifest.get("git_commit"), "demo": bool(manifest.get("demo")),
                "status": manifest.get("status"),
                "previous": screen.ident((previous_manifest or {}).get("run_id") or (previous.run_id if previous else None))},
        "glance": glance,
        "headline": headline,
        "overlap": overlap,
        "mse": sections.mse(manifest, overlap),
        "validation": validation,
        "feeds": feeds,
        "quarantine": sections.quarantine(run.table("quarantine"), manifest, screen),
        "conflicts": conflicts,
        "review": review,
        "actions": actions.action_list(validation, review, conflict_split, judgements),
        "conflict_split": conflict_split,
        "judgements": judgements,
        "continuity": actions.continuity(run.table("lineage"), persons),
        "changes": sections.changes(manifest, previous_manifest, previous.run_id if previous else None, screen),
        "outputs": outputs,
        "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def render(context: dict) -> str:
    lang = i18n.active()
    return _environment().get_template("report.html").render(**context, lang=lang, html_lang=i18n.BCP47[lang])


def build_report(run_dir: str, previous_run_dir: str | None = None, manifest: dict | None = None,
                 lang: str | None = None) -> str:
    """Write ``<run_dir>/reports/index.html`` and return its path (or URL, for a remote run folder).

    ``previous_run_dir`` is the run ``current.json`` named before this run (None for the first run);
    ``manifest`` may be passed when the run's manifest is not written yet; ``lang`` (en, es) defaults
    to the active language.
    """
    run = RunFolder(run_dir)
    with i18n.use(lang or i18n.active()):
        html = render(report_context(run_dir, previous_run_dir, manifest))
    run.write_text(REPORT_PATH, html)
    log.info("steward report written: %s (%d bytes)", REPORT_PATH, len(html.encode()))
    return run.url_of(REPORT_PATH)


def report_output(run_dir: str) -> dict:
    """The manifest's ``outputs`` entry for the report file (path, bytes, sha256)."""
    run = RunFolder(run_dir)
    path = f"{run.path}/{REPORT_PATH}"
    with run.fs.open(path, "rb") as fh:
        data = fh.read()
    return {"path": REPORT_PATH, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def publish_report(run_dir: str, previous_run_dir: str | None, manifest: dict) -> dict:
    """The run's last step before ``current.json`` switches: build the report, return its outputs entry."""
    build_report(run_dir, previous_run_dir, manifest)
    return {"reports": {"zone": REPORT_ZONE, "rows": 0, "files": [report_output(run_dir)]}}
