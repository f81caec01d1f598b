"""The reconciliation pipeline: read -> harmonise -> link -> reconcile -> publish.

``build`` wires the stages' PTransforms into a Beam pipeline; ``run`` executes it on the chosen
runner and finalises the run (accounting check, manifest, ``current.json``).
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import logging
import posixpath
from dataclasses import dataclass

import apache_beam as beam
import fsspec
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import model, privacy, publish, quarantine
from pipelines.contracts import Contract, load_contracts
from pipelines.harmonise import TAG_OFFENDER, TAG_QUARANTINE, TAG_UNMAPPED, TAG_VICTIM, Harmonise
from pipelines.link import LinkPersons
from pipelines.public import DEFAULT_THRESHOLD, PublicRelease
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


def _link_options(key: privacy.PseudonymKey) -> dict:
    """The linker takes the pseudonymisation key once its constructor accepts one (keyed person ids)."""
    return {"key": key} if "key" in inspect.signature(LinkPersons.__init__).parameters else {}


def build(p: beam.Pipeline, deliveries: list[tuple[str, str, str]], contracts: list[Contract], run_dir: str,
          key: privacy.PseudonymKey, public_threshold: int = DEFAULT_THRESHOLD) -> None:
    def marked(schema, folder):
        return privacy.mark_schema(schema, privacy.zone_of(folder), key)

    read = p | "Read" >> ReadFeeds(deliveries, contracts)
    harmonised = read.raw | "Harmonise" >> Harmonise(contracts)

    persons, linked_by_role = [], []
    for role, folder in ROLE_FOLDERS.items():
        table = model.table(role)
        linked = getattr(harmonised, role) | f"Link{folder.title()}" >> LinkPersons(role, **_link_options(key))
        linked_by_role.append(linked)
        _ = linked | f"Write{folder.title()}" >> publish.WriteTables(
            posixpath.join(run_dir, "harmonised", folder),
            marked(table.schema(include_restricted=False), f"harmonised/{folder}"))
        _ = linked | f"WriteRestricted{folder.title()}" >> publish.WriteTables(
            posixpath.join(run_dir, "restricted", folder), marked(table.restricted_schema(), f"restricted/{folder}"))
        persons.append(linked | f"Persons{folder.title()}" >> BuildPersons(role))

    all_persons = tuple(persons) | "AllPersons" >> beam.Flatten()
    _ = all_persons | "WritePersons" >> publish.WriteTables(
        posixpath.join(run_dir, "persons"), marked(model.table("person").schema(), "persons"))
    _ = (all_persons, *linked_by_role) | "PublicRelease" >> PublicRelease(
        posixpath.join(run_dir, "public"), public_threshold, key.demo)
    _ = (
        (read[READ_QUARANTINE], harmonised[TAG_QUARANTINE])
        | "AllQuarantine" >> beam.Flatten()
        | "WriteQuarantine" >> publish.WriteTables(posixpath.join(run_dir, "quarantine"),
                                                   marked(quarantine.schema(), "quarantine"))
    )
    for name, pcoll in (("stats", read[TAG_STATS]), ("unmapped", harmonised[TAG_UNMAPPED])):
        _ = (
            pcoll
            | f"{name.title()}AsJson" >> beam.Map(lambda d: json.dumps(d, sort_keys=True, ensure_ascii=False))
            | f"Write{name.title()}" >> beam.io.WriteToText(
                posixpath.join(run_dir, publish.WORK_DIR, name), file_name_suffix=".jsonl")
        )


def run(feeds: str, out: str, beam_args: list[str] | None = None, extra_contracts: list[str] | None = None,
        *, key: privacy.PseudonymKey | None = None, public_threshold: int = DEFAULT_THRESHOLD) -> RunResult:
    """Run and publish. Without ``key`` the key is read from the environment (or the run refuses)."""
    started = dt.datetime.now(dt.timezone.utc)
    key = key or privacy.resolve_key()
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
        build(p, deliveries, contracts, run_dir, key, public_threshold)
    manifest = publish.finalise_run(out, run_id, contracts, started, key)
    return RunResult(run_id=run_id, run_dir=run_dir, manifest=manifest)
