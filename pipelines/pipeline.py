"""The reconciliation pipeline: read -> harmonise -> link -> reconcile -> publish.

``build`` wires the stages' PTransforms into a Beam pipeline; ``run`` executes it on the chosen
runner and finalises the run (accounting check, manifest, ``current.json``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import posixpath
from dataclasses import dataclass

import apache_beam as beam
import fsspec
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import model, publish, quarantine
from pipelines.contracts import Contract, load_contracts
from pipelines.harmonise import TAG_OFFENDER, TAG_QUARANTINE, TAG_UNMAPPED, TAG_VICTIM, Harmonise
from pipelines.link import LinkPersons
from pipelines.read import TAG_QUARANTINE as READ_QUARANTINE
from pipelines.read import TAG_STATS, ReadFeeds, discover_deliveries
from pipelines.reconcile import BuildPersons

log = logging.getLogger(__name__)

ROLE_FOLDERS = {TAG_VICTIM: "victims", TAG_OFFENDER: "offenders"}


class NoDeliveries(RuntimeError):
    """No file under the feeds root matches any contract."""


@dataclass
class RunResult:
    run_id: str
    run_dir: str
    manifest: dict


def build(p: beam.Pipeline, deliveries: list[tuple[str, str, str]], contracts: list[Contract], run_dir: str) -> None:
    read = p | "Read" >> ReadFeeds(deliveries, contracts)
    harmonised = read.raw | "Harmonise" >> Harmonise(contracts)

    persons = []
    for role, folder in ROLE_FOLDERS.items():
        table = model.table(role)
        linked = getattr(harmonised, role) | f"Link{folder.title()}" >> LinkPersons(role)
        _ = linked | f"Write{folder.title()}" >> publish.WriteTables(
            posixpath.join(run_dir, "harmonised", folder), table.schema(include_restricted=False))
        _ = linked | f"WriteRestricted{folder.title()}" >> publish.WriteTables(
            posixpath.join(run_dir, "restricted", folder), table.restricted_schema())
        persons.append(linked | f"Persons{folder.title()}" >> BuildPersons(role))

    _ = tuple(persons) | "AllPersons" >> beam.Flatten() | "WritePersons" >> publish.WriteTables(
        posixpath.join(run_dir, "persons"), model.table("person").schema())
    _ = (
        (read[READ_QUARANTINE], harmonised[TAG_QUARANTINE])
        | "AllQuarantine" >> beam.Flatten()
        | "WriteQuarantine" >> publish.WriteTables(posixpath.join(run_dir, "quarantine"), quarantine.schema())
    )
    for name, pcoll in (("stats", read[TAG_STATS]), ("unmapped", harmonised[TAG_UNMAPPED])):
        _ = (
            pcoll
            | f"{name.title()}AsJson" >> beam.Map(lambda d: json.dumps(d, sort_keys=True, ensure_ascii=False))
            | f"Write{name.title()}" >> beam.io.WriteToText(
                posixpath.join(run_dir, publish.WORK_DIR, name), file_name_suffix=".jsonl")
        )


def run(feeds: str, out: str, beam_args: list[str] | None = None, extra_contracts: list[str] | None = None) -> RunResult:
    started = dt.datetime.now(dt.timezone.utc)
    contracts = load_contracts(*(extra_contracts or []))
    deliveries = discover_deliveries(feeds, contracts)
    if not deliveries:
        raise NoDeliveries(f"no file under {feeds} matches a feed contract")
    fs = fsspec.core.url_to_fs(feeds)[0]
    run_id = publish.new_run_id([{"source_file": rel, "sha256": str(fs.size(url))} for _, url, rel in deliveries])
    run_dir = posixpath.join(out.rstrip("/"), "runs", run_id)
    options = PipelineOptions(beam_args or ["--runner=DirectRunner"])
    log.info("run %s: %d deliveries for %d feeds", run_id, len(deliveries), len({d[0] for d in deliveries}))
    with beam.Pipeline(options=options) as p:
        build(p, deliveries, contracts, run_dir)
    manifest = publish.finalise_run(out, run_id, contracts, started)
    return RunResult(run_id=run_id, run_dir=run_dir, manifest=manifest)
