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
from pipelines.aggregates import RunSummary
from pipelines.report.data import RunFolder, summary_of
from pipelines.report.screen import RecordingScreen, Screen

log = logging.getLogger(__name__)

REPORT_PATH = "reports/index.html"
REPORT_ZONE = "pseudonymised"  # counts and pseudonymous ids: for stewards, not a public release
_RESTRICTED_COLUMNS = ["given_names", "paternal_surname", "maternal_surname", "document_number", "birth_date",
                       "documents", "aliases"]


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
    env.filters.update(
        n=_fmt_number, when=_when, pct=i18n.percent, role_text=terms.role_text, status_label=terms.status_label,
        severity=terms.severity_label, change_label=terms.change_label, zone_label=terms.zone_label,
        lineage_label=terms.lineage_label, dimension_label=terms.dimension_label,
        role_label=lambda code: sections.label("roles", code),
        spanish=lambda text: i18n.catalog("es").gettext(text))  # the glosses of an English page
    return env


def report_context(run_dir: str, previous_run_dir: str | None = None, manifest: dict | None = None,
                   summary: RunSummary | None = None) -> dict:
    """Everything the page shows, as plain data (the tests read it too). ``summary`` is the job's
    (a run's report reads no table); without it the run folder's tables are summarised here.

    Two passes: the first, through a screen that only records, finds every value the page would
    show; the restricted zone is then streamed for those values alone (``Screen.for_values``), and
    the second pass renders with that screen. Neither holds the restricted zone in memory."""
    run = RunFolder(run_dir)
    manifest = manifest if manifest is not None else run.manifest()
    if manifest is None:
        raise FileNotFoundError(f"no manifest.json in run {run.run_id}")
    summary = summary if summary is not None else summary_of(run, sections.review_column_allowed, actions.UNKNOWN)
    previous = RunFolder(previous_run_dir) if previous_run_dir else None
    previous_manifest = previous.manifest() if previous else None
    recording = RecordingScreen()
    _context(run, manifest, summary, previous, previous_manifest, recording)
    screen = Screen.for_values(recording.seen, (batch for r in sections.ROLES
                                                for batch in run.batches(f"restricted/{r}", _RESTRICTED_COLUMNS)))
    return _context(run, manifest, summary, previous, previous_manifest, screen)


def _context(run: RunFolder, manifest: dict, summary: RunSummary, previous: RunFolder | None,
             previous_manifest: dict | None, screen: Screen) -> dict:
    headline = sections.headline(manifest, summary)
    overlap = sections.overlap(summary)
    validation = sections.validation(manifest, run, screen)
    feeds = sections.feeds(manifest, screen)
    sections.feed_validation(validation.get("suites", []), feeds)
    conflicts = sections.conflicts(summary, screen)
    conflict_split = actions.split_conflicts(summary, screen)
    judgements = actions.judgements(summary, screen)
    review = sections.review_queue(summary, screen)
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
        "quarantine": sections.quarantine(summary, manifest, screen),
        "conflicts": conflicts,
        "review": review,
        "actions": actions.action_list(validation, review, conflict_split, judgements),
        "conflict_split": conflict_split,
        "judgements": judgements,
        "continuity": actions.continuity(summary),
        "changes": sections.changes(manifest, previous_manifest, previous.run_id if previous else None, screen),
        "outputs": outputs,
        "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def render(context: dict) -> str:
    lang = i18n.active()
    return _environment().get_template("report.html").render(**context, lang=lang, html_lang=i18n.BCP47[lang])


def build_report(run_dir: str, previous_run_dir: str | None = None, manifest: dict | None = None,
                 lang: str | None = None, summary: RunSummary | None = None) -> str:
    """Write ``<run_dir>/reports/index.html`` and return its path (or URL, for a remote run folder).

    ``previous_run_dir`` is the run ``current.json`` named before this run (None for the first run);
    ``manifest`` may be passed when the run's manifest is not written yet, ``summary`` when the job's
    is at hand (else the run's tables are summarised); ``lang`` (en, es) defaults to the active language.
    """
    run = RunFolder(run_dir)
    with i18n.use(lang or i18n.active()):
        html = render(report_context(run_dir, previous_run_dir, manifest, summary))
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


def publish_report(run_dir: str, previous_run_dir: str | None, manifest: dict, summary: RunSummary | None = None) -> dict:
    """The run's last step before ``current.json`` switches: build the report (from the job's
    ``summary``), return its outputs entry."""
    build_report(run_dir, previous_run_dir, manifest, summary=summary)
    return {"reports": {"zone": REPORT_ZONE, "rows": 0, "files": [report_output(run_dir)]}}
