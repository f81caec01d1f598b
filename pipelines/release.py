"""The public release stage: persons and harmonised records -> cell counts, combined across
workers -> the suppressed tables (``pipelines.public``) in English and Spanish
(``pipelines.public_es``), the UNODC export and metadata under ``OUT/runs/<run_id>/public/``."""

from __future__ import annotations

import io
import json
import posixpath
from collections import Counter

import apache_beam as beam
import fsspec

from pipelines.public import (ALL, DEFAULT_THRESHOLD, SECONDARY, TABLES, MergeCounts, build_release, chunk_counts,
                              csv_bytes, estimate_rows, neutralise, pinned, recoverable, table_rows, unodc_rows)
from pipelines.public_es import spanish_edition


def _xlsx_bytes(sheets: dict[str, list[list[str]]], banner: str | None) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name[:31])
        if banner:
            ws.append([banner])
        for row in rows:
            ws.append([neutralise(v) for v in row])
        for r in ws.iter_rows():
            for cell in r:
                cell.data_type = "s"  # never a formula, whatever the text
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


DEMO_BANNER = "DEMO RUN: pseudonyms made with the public demo key; not an official release"


def write_release(finest: dict[str, Counter], folder: str, threshold: int = DEFAULT_THRESHOLD,
                  demo: bool = False, estimates: list[dict] | None = None) -> list[str]:
    """Suppress and write every public table, the UNODC export and metadata.json; returns the paths."""
    release = build_release(finest, threshold)
    leaked = recoverable(release)
    if leaked:  # fail closed: never publish a table a subtraction can open
        raise RuntimeError(f"suppression left {len(leaked)} recoverable cells")
    exposed = pinned(release.cells, release.relations, release.hidden, threshold)
    if exposed:  # nor one that all the tables together open
        raise RuntimeError(f"suppression left {len(exposed)} cells that the published relations together pin")
    banner = DEMO_BANNER if demo else None
    files = {f"{spec.name}.csv": csv_bytes(table_rows(release, spec), banner) for spec in TABLES}
    unodc = unodc_rows(release)
    files["unodc_glotip.csv"] = csv_bytes(unodc, banner)
    files["unodc_glotip.xlsx"] = _xlsx_bytes({"GLOTIP": unodc}, banner)
    if estimates is not None:
        files["mse_estimates.csv"] = csv_bytes(estimate_rows(release, estimates), banner)
    meta = {
        "demo": demo,
        "threshold": threshold,
        "legend": {f"<{threshold}": f"a count from 1 to {threshold - 1}, suppressed",
                   SECONDARY: "suppressed so that a hidden count cannot be recovered from totals",
                   ALL: "summed over the dimension, or over all years"},
        "cells": len(release.cells),
        "suppressed": {"primary": sum(v == "primary" for v in release.hidden.values()),
                       "secondary": sum(v == "secondary" for v in release.hidden.values())},
        "tables": {spec.name: {"title": spec.title, "population": spec.population, "dimensions": list(spec.dims)}
                   for spec in TABLES},
    }
    if estimates is not None:
        meta["tables"]["mse_estimates"] = {"title": "Estimated total victims, seen and unseen by the agencies "
                                                    "(multiple systems estimation, docs/mse.md)"}
    files["metadata.json"] = json.dumps(meta, indent=2).encode("utf-8")
    # the same cells, headers and labels in Spanish
    files.update(spanish_edition(release, demo))
    written = []
    for name, data in files.items():
        path = posixpath.join(folder, name)
        with fsspec.open(path, "wb") as fh:
            fh.write(data)
        written.append(path)
    return written


class PublicRelease(beam.PTransform):
    """(persons, victim records, offender records[, MSE estimate rows]) -> suppressed aggregate tables
    under ``folder``."""

    def __init__(self, folder: str, threshold: int = DEFAULT_THRESHOLD, demo: bool = False):
        super().__init__()
        self._folder = folder
        self._threshold = threshold
        self._demo = demo

    def expand(self, inputs):
        persons, victims, offenders, *estimates = inputs
        counts = [
            pcoll | f"Count{source.title()}" >> beam.Map(chunk_counts, source)
            for source, pcoll in (("persons", persons), ("victim", victims), ("offender", offenders))
        ]
        folder, threshold, demo = self._folder, self._threshold, self._demo
        return (
            tuple(counts)
            | "AllCounts" >> beam.Flatten()
            | "MergeCounts" >> beam.CombineGlobally(MergeCounts())
            | "WriteRelease" >> beam.Map(lambda finest, est: write_release(finest, folder, threshold, demo, est),
                                         beam.pvalue.AsSingleton(estimates[0]) if estimates else None)
        )
