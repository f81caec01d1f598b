"""Data zones: every output folder of a run belongs to exactly one (docs/data-protection.md).

* ``restricted``: names, document numbers, birth dates (inside the linkage stage and under ``restricted/``);
* ``pseudonymised``: records and persons under keyed pseudonyms, quarantine without values, the manifest;
* ``public``: aggregate tables only, small cells suppressed (``pipelines.public``).
"""

from __future__ import annotations

ZONE_RESTRICTED = "restricted"
ZONE_PSEUDONYMISED = "pseudonymised"
ZONE_PUBLIC = "public"
ZONE_NAMES = (ZONE_RESTRICTED, ZONE_PSEUDONYMISED, ZONE_PUBLIC)

ZONES = {
    "harmonised/victims": "pseudonymised",
    "harmonised/offenders": "pseudonymised",
    "persons": "pseudonymised",
    "quarantine": "pseudonymised",
    "restricted/victims": "restricted",
    "restricted/offenders": "restricted",
    "public": "public",  # aggregate tables, small cells suppressed (pipelines.public)
    "reports": "pseudonymised",  # the steward's report and Data Docs (counts, ids, reasons; no PII: tests/test_pii_scan.py)
    "checks": "pseudonymised",  # cross-feed check findings (pipelines.checks)
    "links/victims": "pseudonymised",  # scored record pairs with each comparison's contribution
    "links/offenders": "pseudonymised",
    "review_queue/victims": "restricted",  # uncertain pairs, both records side by side (names)
    "review_queue/offenders": "restricted",
    "conflicts": "pseudonymised",  # attributes a person's agencies disagree on
    "overlap": "pseudonymised",  # unique persons per combination of agencies (no suppression: not public)
    "funnel": "pseudonymised",
    "linkage": "pseudonymised",  # the trained model and blocking statistics, per role (JSON)
    "mse": "pseudonymised",  # multiple systems estimates per stratum (no names; public/ has the estimates)
    "mse/capture_histories": "pseudonymised",  # the fitted capture-history tables (Parquet; `concilia mse` reads them)
    "restricted/registry/victims": "restricted",  # the person registry the next run starts from (pipelines/steward)
    "restricted/registry/offenders": "restricted",
    "lineage": "pseudonymised",  # what became of every earlier person id: merged, split, retired
    "judgements/victims": "pseudonymised",  # stewards' judgements in force with this run's evidence (ids, no names)
    "judgements/offenders": "pseudonymised",
    "summary": "pseudonymised",  # the run's aggregates (pipelines.aggregates.RunSummary): counts, codes, ids
}


def zone_of(folder: str) -> str:
    """The zone of an output folder (relative to the run directory), from ``ZONES``."""
    folder = folder.strip("/")
    for prefix, zone in sorted(ZONES.items(), key=lambda kv: -len(kv[0])):
        if folder == prefix or folder.startswith(prefix + "/"):
            return zone
    raise KeyError(f"output folder {folder!r} belongs to no zone")
