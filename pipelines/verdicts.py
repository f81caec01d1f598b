"""Delivery verdicts: whether each delivered file, each feed and the run's deliveries as a whole
may be published (docs/service.md, "Verdicts").

A file is *accepted*, *accepted_with_warnings* or *rejected*, with its reasons. Row-level faults
(an undecodable line, a NUL byte, a value shaped like personal data under a reference column)
cost their rows and make a warning; once their share of the file's rows passes the contract's
``delivery.block_share`` the file is rejected whole, because the layout or the encoding is
wrong rather than a few rows. A rejected file has every row quarantined, so nothing of it lands
in any output; it, a feed under its ``min_rows``, or a required feed that was not delivered
blocks the run (exit 6): the run is written and reported, the previous version stays current.
"""

from __future__ import annotations

from pipelines.contracts import Contract
from pipelines.i18n import _, percent

ACCEPTED, WARNINGS, REJECTED = "accepted", "accepted_with_warnings", "rejected"
WARN_SHARE = 0.0  # any row-level fault makes a warning
BLOCK_SHARE = 0.05  # above this share of a file's rows the file is rejected,
BLOCK_MIN_ROWS = 5  # once at least this many rows show the fault (one bad row of 14 is a row's fault)
CHECK_NAME = "delivery"


def tolerances(contract: Contract) -> tuple[float, float, int]:
    """(warn above share, reject above share, reject from rows): ``delivery: {warn_share,
    block_share, block_min_rows}`` in the contract, else the defaults above."""
    delivery = contract.raw.get("delivery") or {}
    return (float(delivery.get("warn_share", WARN_SHARE)), float(delivery.get("block_share", BLOCK_SHARE)),
            int(delivery.get("block_min_rows", BLOCK_MIN_ROWS)))


def file_verdict(stats: dict, contract: Contract, unreadable_lines: int = 0) -> dict:
    """The verdict of one delivered file from its read statistics."""
    if stats.get("file_rejected"):
        return {"verdict": REJECTED, "reasons": [stats["file_rejected"]["detail"]]}
    rows = stats.get("rows_read") or 0
    if not rows:
        return {"verdict": REJECTED, "reasons": [_("the file holds no data rows")]}
    if stats.get("missing_columns"):
        return {"verdict": REJECTED, "reasons": [_("the file lacks columns the contract maps: %(columns)s") % {
            "columns": ", ".join(stats["missing_columns"])}]}
    warn_share, block_share, block_min_rows = tolerances(contract)
    faults = (
        (unreadable_lines, _("line(s) not readable (encoding, NUL bytes, quoting or field count)")),
        (stats.get("encoding_suspect_lines") or 0, stats.get("encoding_contradiction") or _("encoding contradictions")),
        (stats.get("contradicting_rows") or 0, _("row(s) with a value that contradicts its column's declared kind")),
    )
    rejected, warnings = [], []
    for count, what in faults:
        share = count / rows
        reason = _("%(count)s of %(rows)s rows (%(share)s): %(what)s") % {
            "count": count, "rows": rows, "share": percent(share, 1), "what": what}
        if share > block_share and count >= block_min_rows:
            rejected.append(_("%(reason)s; over the %(share)s the contract tolerates") % {
                "reason": reason, "share": percent(block_share)})
        elif count and share > warn_share:
            warnings.append(reason)
    if rejected:
        return {"verdict": REJECTED, "reasons": rejected + warnings}
    return {"verdict": WARNINGS if warnings else ACCEPTED, "reasons": warnings}


def delivery_check(feeds: dict[str, dict], contracts: list[Contract], allow_missing=()) -> dict:
    """The run's delivery check (a blocking check entry, as the manifest's validation lists them):
    failed when a file was rejected or a required feed is missing and not named in ``allow_missing``
    ("*": every feed). A feed under its ``min_rows`` is a contract assertion (``publish.assertion_checks``)."""
    problems = []
    for contract in contracts:
        feed = feeds.get(contract.feed) or {}
        files = feed.get("files") or []
        for f in files:
            if f["verdict"]["verdict"] == REJECTED:
                problems.append(_("%(file)s rejected: %(reasons)s") % {
                    "file": f["source_file"], "reasons": "; ".join(f["verdict"]["reasons"])})
        if not files and contract.required_for_period and not ({"*", contract.feed} & set(allow_missing)):
            problems.append(_("%(feed)s: required feed not delivered (delivery.required)") % {"feed": contract.feed})
    observed = {f["source_file"]: f["verdict"]["verdict"] for feed in feeds.values() for f in feed.get("files") or []}
    return {"name": CHECK_NAME, "severity": "blocking", "status": "failed" if problems else "passed",
            "observed": observed, "expected": "every file accepted, every required feed delivered",
            "detail": "; ".join(problems) or _("every delivered file was accepted"), "findings": len(problems)}
