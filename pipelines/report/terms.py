"""The report's small closed vocabularies (roles, statuses, severities, zones), as catalog messages.

Each value is an English msgid marked with ``N_`` and translated where it is shown; a value the
vocabulary does not know is shown as it came (a code).
"""

from __future__ import annotations

from pipelines.i18n import N_, _

ROLE_TEXT = {
    "victims": {"title": N_("Victims"), "noun": N_("victims"), "unique": N_("Unique victims"),
                "estimated": N_("Estimated victims (MSE)"), "no_estimate": N_("No estimate for victims in this run")},
    "offenders": {"title": N_("Offenders"), "noun": N_("offenders"), "unique": N_("Unique offenders"),
                  "estimated": N_("Estimated offenders (MSE)"),
                  "no_estimate": N_("No estimate for offenders in this run")},
}
STATUS = {"pass": N_("✓ passed"), "warn": N_("! warning"), "fail": N_("✗ failed"), "skipped": N_("skipped"),
          "unknown": N_("unknown")}
SEVERITY = {"blocking": N_("blocking"), "warning": N_("warning")}
CHANGE = {"added": N_("added"), "removed": N_("removed"), "changed": N_("changed")}
ZONE = {"restricted": N_("restricted"), "pseudonymised": N_("pseudonymised"), "public": N_("public")}
LINEAGE = {"merged": N_("merged"), "split": N_("split"), "retired": N_("retired")}  # pipelines/steward/registry.py


def _known(vocabulary: dict[str, str], value) -> str:
    return _(vocabulary[value]) if value in vocabulary else ("" if value is None else str(value))


def role_text(role: str, form: str) -> str:
    """``form`` (title, noun, unique, estimated, no_estimate) of a role folder name (victims, offenders)."""
    return _(ROLE_TEXT[role][form]) if role in ROLE_TEXT else str(role)


def status_label(value) -> str:
    return _known(STATUS, value)


def severity_label(value) -> str:
    return _known(SEVERITY, value)


def change_label(value) -> str:
    return _known(CHANGE, value)


def zone_label(value) -> str:
    return _known(ZONE, value)


def lineage_label(value) -> str:
    return _known(LINEAGE, value)


def dimension_label(dim) -> str:
    """A model dimension (sex, child_adult...) in words, as the public tables' Spanish edition names it."""
    from pipelines.public_es import DIMENSION

    return _(DIMENSION[dim]).lower() if dim in DIMENSION else str(dim)
