"""The Spanish edition of the public tables: the same published cells, with Spanish headers and labels.

For every table of ``public.TABLES`` the release also writes ``<name>.es.csv`` beside ``<name>.csv``:
per dimension a column of Spanish labels and a column of its codes, then the years and the total.
The cells are the English edition's displayed values, suppression marks included ("<5", "x"): this
edition translates an already-suppressed table, it never counts or suppresses anything itself.
``metadata.es.json`` carries the Spanish titles and legend. The UNODC export stays in English, the
questionnaire's language.
"""

from __future__ import annotations

import json

from pipelines import codelists, i18n
from pipelines.i18n import N_, _
from pipelines.public import ALL, SECONDARY, TABLES, UNKNOWN, csv_bytes, table_rows

# the code list of each dimension's codes; the UNODC groupings are terms of the questionnaire (UNODC_TERMS).
# Departments keep their INEI codes, as in the English edition: their names (Lima, San Martín...) are also
# surnames, and the public zone's PII scan (tests/test_pii_scan.py) cannot tell the two apart.
CODELIST_OF = {"sex": "sex", "child_adult": "child_adult", "nationality": "countries",
               "exploitation_type": "exploitation_types", "furthest_stage": "justice_stages",
               "stage": "justice_stages", "agency": "agencies"}
DIMENSION = {"sex": N_("Sex"), "child_adult": N_("Children and adults"), "nationality": N_("Nationality"),
             "exploitation_type": N_("Form of exploitation"), "exploitation_unodc": N_("UNODC form of exploitation"),
             "department": N_("Department"), "furthest_stage": N_("Furthest justice stage"),
             "stage": N_("Justice stage"), "stage_unodc": N_("UNODC stage (furthest reached)"), "agency": N_("Agency"),
             "origin_department": N_("Department of origin"),
             "seen_in_earlier_period": N_("Recorded in an earlier published period")}
YES_NO = {"true": N_("yes"), "false": N_("no")}  # a true/false dimension (seen_in_earlier_period)
# the ``unodc`` peers of exploitation_types and justice_stages (tests/test_i18n.py checks none is missing)
UNODC_TERMS = (N_("sexual exploitation"), N_("forced labour"), N_("begging"), N_("forced criminal activity"),
               N_("forced marriage"), N_("organ removal"), N_("mixed"), N_("other"), N_("formal contact"),
               N_("prosecuted"), N_("convicted"))
SUFFIX = ".es.csv"
METADATA = "metadata.es.json"


def value_label(dim: str, value: str) -> str:
    if value == ALL:
        return _("Total")
    if value == UNKNOWN:
        return _("Unknown")
    if dim in CODELIST_OF:
        return codelists.load(CODELIST_OF[dim]).label(value) or value
    if value in YES_NO:
        return _(YES_NO[value])
    return _(value)  # a UNODC term, or a department's INEI code as it is


def spanish_rows(dims: tuple[str, ...], rows: list[list[str]]) -> list[list[str]]:
    """A table as ``public.table_rows`` renders it (codes, then cells) -> its Spanish edition."""
    n = len(dims)
    header, *body = rows
    with i18n.use("es"):
        out = [[h for d in dims for h in (_(DIMENSION[d]), _("%(dimension)s (code)") % {"dimension": _(DIMENSION[d])})]
               + [_("Total") if y == ALL else y for y in header[n:]]]
        for row in body:
            out.append([v for d, code in zip(dims, row[:n]) for v in (value_label(d, code), code)] + row[n:])
    return out


def spanish_edition(release, demo: bool) -> dict[str, bytes]:
    """File name -> bytes of the Spanish edition of a suppressed release (``public.Release``)."""
    with i18n.use("es"):
        banner = _("DEMO RUN: pseudonyms made with the public demo key; not an official release") if demo else None
        files = {f"{spec.name}{SUFFIX}": csv_bytes(spanish_rows(spec.dims, table_rows(release, spec)), banner)
                 for spec in TABLES}
        meta = {
            "language": "es", "demo": demo, "threshold": release.threshold,
            "legend": {f"<{release.threshold}": _("a count from 1 to %(n)s, suppressed") % {"n": release.threshold - 1},
                       SECONDARY: _("suppressed so that a hidden count cannot be recovered from totals"),
                       _("Total"): _("summed over the dimension, or over all years")},
            "tables": {spec.name: {"title": _(spec.title), "file": f"{spec.name}{SUFFIX}",
                                   "dimensions": list(spec.dims)} for spec in TABLES},
        }
    files[METADATA] = json.dumps(meta, indent=2, ensure_ascii=False).encode("utf-8")
    return files
