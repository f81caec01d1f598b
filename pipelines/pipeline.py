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
import pyarrow as pa
from apache_beam.options.pipeline_options import PipelineOptions

from pipelines import aggregates, checks, model, privacy, publish, quarantine, validate
from pipelines.aggregates import Counts, TopRows
from pipelines.contracts import Contract, load_contracts
from pipelines.core import beam_memo  # noqa: F401  (remembers what Beam re-derives per DoFn: construction time)
from pipelines.core import handoff, local_pool
from pipelines.core.files import read_json
from pipelines.core.lease import Lease
from pipelines.core.progress import heartbeat
from pipelines.core.progress import log as progress
from pipelines.core.zones import zone_of
from pipelines.harmonise.transform import TAG_OFFENDER, TAG_QUARANTINE, TAG_UNMAPPED, TAG_VICTIM, Harmonise
from pipelines.estimate.linkage_band import UncertainPersonPairs
from pipelines.estimate.pipeline_stage import EstimatePopulation
from pipelines.public import DEFAULT_THRESHOLD
from pipelines.release import PublicRelease
from pipelines.read import TAG_QUARANTINE as READ_QUARANTINE
from pipelines.read import TAG_STATS, ReadFeeds, discover_deliveries
from pipelines.link.transform import links_schema, model_as_json, review_schema
from pipelines.reconcile import BuildPersons, CountPersons
from pipelines.report import UNKNOWN, publish_report, review_column_allowed
from pipelines.steward import decisions as steward_decisions
from pipelines.link.constraints import EVIDENCE_SCHEMA
from pipelines.steward.registry import LINEAGE_FOLDER, LINEAGE_SCHEMA, REGISTRY_FOLDER, LinkWithRegistry, registry_schema

log = logging.getLogger(__name__)

ROLE_FOLDERS = {TAG_VICTIM: "victims", TAG_OFFENDER: "offenders"}


class NoDeliveries(RuntimeError):
    """No file under the feeds root matches any contract."""


@dataclass
class RunResult:
    run_id: str
    run_dir: str
    manifest: dict


def _write_linkage(linkage: dict, role: str, folder: str, run_dir: str, marked, write,
                   summary: aggregates.Summarise) -> None:
    """The linker's outputs: scored links, the review queue (restricted), the model and its stats;
    the review queue's and the judgements' counts and first rows go to the run summary."""
    title = folder.title()
    summary.add(linkage["review"], f"Review{title}", Counts(aggregates.review_counts), "review", role)
    summary.add(linkage["review"], f"ReviewRows{title}", TopRows(aggregates.TABLE_LIMIT, aggregates.REVIEW_ORDER,
                                                                 aggregates.review_rows(role, review_column_allowed)),
                "review_rows", role)
    summary.add(linkage["judgements"], f"Judgements{title}", Counts(aggregates.judgement_counts), "judgements", role)
    summary.add(linkage["judgements"], f"Contradicted{title}", TopRows(
        aggregates.TABLE_LIMIT, aggregates.JUDGEMENT_ORDER, aggregates.contradicted(role)), "contradicted_judgements", role)
    _ = linkage["links"] | f"WriteLinks{title}" >> write(
        posixpath.join(run_dir, "links", folder), marked(links_schema(), f"links/{folder}", "link"))
    _ = linkage["review"] | f"WriteReview{title}" >> write(
        posixpath.join(run_dir, "review_queue", folder), marked(review_schema(role), f"review_queue/{folder}", "link"))
    _ = linkage["registry"] | f"WriteRegistry{title}" >> write(
        posixpath.join(run_dir, REGISTRY_FOLDER, folder), marked(registry_schema(role), f"{REGISTRY_FOLDER}/{folder}", "registry"))
    _ = linkage["judgements"] | f"WriteJudgements{title}" >> write(
        posixpath.join(run_dir, "judgements", folder), marked(EVIDENCE_SCHEMA, f"judgements/{folder}"))
    for name in ("model", "stats"):
        _ = (linkage[name] | f"{name.title()}Json{title}" >> beam.Map(model_as_json)
             | f"Write{name.title()}{title}" >> beam.io.WriteToText(
                 posixpath.join(run_dir, "linkage", f"{name}_{folder}"), file_name_suffix=".json",
                 shard_name_template=""))


def build(p: beam.Pipeline, deliveries: list[tuple[str, str, str]], contracts: list[Contract], run_dir: str,
          key: privacy.PseudonymKey, public_threshold: int = DEFAULT_THRESHOLD,
          suites: dict[str, dict] | None = None, run_date: dt.date | None = None,
          linkage_models: dict[str, dict] | None = None, mse_method: str | None = None,
          period: str | None = None, previous_run: str | None = None,
          judgements: pa.Table | None = None, control_files: list[checks.ControlFile] | None = None) -> None:
    """The run's Beam graph. ``period`` is the delivery period (records of other periods in
    ``previous_run``'s person registry are carried and linked with these); ``judgements`` the stewards'
    decisions (``steward_decisions.read_decisions``); ``control_files`` the delivered control totals
    (``checks.read_control_files``). All are read by the caller, so building the graph reads nothing
    from OUT (a Dataflow dry run translates offline).

    Besides the outputs, the job writes one ``RunSummary`` (``pipelines.aggregates``) of every figure
    the finaliser and the report need, so that nothing after the job reads the tables again."""
    suites = validate.run_suites(contracts) if suites is None else suites
    run_date = run_date or dt.datetime.now(dt.timezone.utc).date()
    run_id = posixpath.basename(run_dir.rstrip("/"))

    def marked(schema, folder, table_name=None):
        """The schema as written: field descriptions, table, model version, run id, zone and key."""
        table_name = table_name or schema.metadata[b"concilia.table"].decode()
        return privacy.mark_schema(model.describe(schema, table_name, run_id), zone_of(folder), key)

    work = posixpath.join(run_dir, publish.WORK_DIR, handoff.FOLDER)  # tables handed between stages
    # the in-process runner's heaviest steps in processes of this machine (by default, for large inputs)
    processes = local_pool.local_processes(p.options, lambda: delivered_bytes(deliveries))

    def write(folder, schema):
        """``publish.WriteTables`` with the tables handed off through the work folder."""
        return publish.WriteTables(folder, schema, work=posixpath.join(work, "tables"))

    judgements = steward_decisions.EMPTY if judgements is None else judgements
    summary = aggregates.Summarise()

    read = p | "Read" >> ReadFeeds(deliveries, contracts)
    harmonised = read.raw | "Harmonise" >> Harmonise(contracts, posixpath.join(work, "harmonised"), processes)

    persons, conflicts, linked_by_role, validated_by_role, lineage, uncertain = [], [], [], [], [], []
    for role, folder in ROLE_FOLDERS.items():
        table = model.table(role)
        validated = getattr(harmonised, role) | f"Validate{folder.title()}" >> validate.Validate(
            validate.suites_for_table(suites, f"harmonised/{folder}"), run_date, processes=processes)
        validated_by_role.append(validated)
        linkage = validated.kept | f"Link{folder.title()}" >> LinkWithRegistry(
            role, folder, key, run_id, period, previous_run, steward_decisions.judged_pairs_table(judgements, role),
            (linkage_models or {}).get(role), work=posixpath.join(work, folder), processes=processes)
        lineage.append(linkage["lineage"])
        linked = linkage["linked"]
        linked_by_role.append(linked)
        _write_linkage(linkage, role, folder, run_dir, marked, write, summary)
        summary.add(linked, f"Records{folder.title()}", Counts(aggregates.record_counts(role)), "records", role)
        _ = linked | f"Write{folder.title()}" >> write(
            posixpath.join(run_dir, "harmonised", folder),
            marked(table.schema(include_restricted=False), f"harmonised/{folder}"))
        _ = linked | f"WriteRestricted{folder.title()}" >> write(
            posixpath.join(run_dir, "restricted", folder), marked(table.restricted_schema(), f"restricted/{folder}"))
        uncertain.append((linkage["review"], linked) | f"UncertainPersons{folder.title()}" >> UncertainPersonPairs(role))
        built = linked | f"Persons{folder.title()}" >> BuildPersons(role, work=posixpath.join(work, folder, "persons"))
        persons.append(built["persons"])
        conflicts.append(built["conflicts"])

    all_persons = tuple(persons) | "AllPersons" >> beam.Flatten()
    summary.add(all_persons, "Persons", Counts(aggregates.person_counts), "persons")
    all_lineage = tuple(lineage) | "AllLineage" >> beam.Flatten()
    _ = all_lineage | "WriteLineage" >> write(
        posixpath.join(run_dir, LINEAGE_FOLDER), marked(LINEAGE_SCHEMA, LINEAGE_FOLDER))
    summary.add(all_lineage, "Lineage", Counts(aggregates.lineage_counts), "lineage")
    all_conflicts = tuple(conflicts) | "AllConflicts" >> beam.Flatten()
    _ = all_conflicts | "WriteConflicts" >> write(
        posixpath.join(run_dir, "conflicts"), marked(model.table("conflict").schema(), "conflicts"))
    _summarise_conflicts(all_conflicts, summary)
    for name, counts in (("overlap", aggregates.overlap_counts), ("funnel", aggregates.funnel_counts)):
        counted = all_persons | f"Count{name.title()}" >> CountPersons(name)
        _ = counted | f"Write{name.title()}" >> write(posixpath.join(run_dir, name),
                                                                   marked(model.table(name).schema(), name))
        summary.add(counted, name.title(), Counts(counts), name)
    # the cross-feed checks: partial counts to the summary, findings written here (checks/)
    checked = dict(zip(ROLE_FOLDERS, linked_by_role)) | "CrossFeedChecks" >> checks.CrossFeedChecks(
        checks.load_config(), control_files or [])
    _ = checked["findings"] | "WriteCheckFindings" >> write(
        posixpath.join(run_dir, checks.FOLDER), marked(checks.FINDINGS_SCHEMA, checks.FOLDER, "check_finding"))
    summary.add(checked["counts"], "Checks", Counts(), "checks")
    validated_persons = all_persons | "ValidatePersons" >> validate.Validate(
        validate.suites_for_table(suites, "persons"), run_date, quarantine_rows=False, combine=True,
        work=posixpath.join(work, "persons"))
    _ = all_persons | "WritePersons" >> write(
        posixpath.join(run_dir, "persons"), marked(model.table("person").schema(), "persons"))
    # multiple systems estimate of the victims no agency saw (docs/mse.md); the public zone gets the estimates
    estimates = all_persons | "EstimatePopulation" >> EstimatePopulation(
        posixpath.join(run_dir, "mse"), marked(model.table("mse_estimate").schema(), "mse"), mse_method,
        uncertain=uncertain)
    _ = (all_persons, *linked_by_role, estimates) | "PublicRelease" >> PublicRelease(
        posixpath.join(run_dir, "public"), public_threshold, key.demo)
    all_quarantine = ((read[READ_QUARANTINE], harmonised[TAG_QUARANTINE],
                       *(v[validate.TAG_QUARANTINE] for v in validated_by_role)) | "AllQuarantine" >> beam.Flatten())
    _ = all_quarantine | "WriteQuarantine" >> write(posixpath.join(run_dir, "quarantine"),
                                                                  marked(quarantine.schema(), "quarantine"))
    summary.add(all_quarantine, "Quarantine", Counts(aggregates.quarantine_counts), "quarantine")
    summary.add(all_quarantine, "QuarantinedFiles", TopRows(aggregates.FILES_LIMIT, aggregates.FILE_ORDER,
                                                            aggregates.file_level_quarantine), "quarantined_files")
    _ = (
        tuple(v[validate.TAG_RESULTS] for v in (*validated_by_role, validated_persons))
        | "AllValidationResults" >> beam.Flatten()
        | "WriteValidationResults" >> beam.io.WriteToText(
            posixpath.join(run_dir, publish.WORK_DIR, validate.WORK_FOLDER), file_name_suffix=".jsonl")
    )
    for name, pcoll in (("stats", read[TAG_STATS]), ("unmapped", harmonised[TAG_UNMAPPED])):
        _ = (
            pcoll
            | f"{name.title()}AsJson" >> beam.Map(lambda d: json.dumps(d, sort_keys=True, ensure_ascii=False))
            | f"Write{name.title()}" >> beam.io.WriteToText(
                posixpath.join(run_dir, publish.WORK_DIR, name), file_name_suffix=".jsonl")
        )
    name_words = (harmonised[TAG_UNMAPPED] | "NameWords" >> aggregates.NameWords(linked_by_role))
    summary.add(name_words, "NameWords", aggregates.Union(), "name_words")
    summary.write(posixpath.join(run_dir, publish.WORK_DIR))


def _summarise_conflicts(conflicts: beam.PCollection, summary: aggregates.Summarise) -> None:
    """Conflicts' counts (a partition holds all of a person's conflicts) and first rows, overall and
    per kind (gap: a known value against UNKNOWN only; contradiction: different known values)."""
    summary.add(conflicts, "Conflicts", Counts(aggregates.conflict_counts(UNKNOWN)), "conflicts")
    summary.add(conflicts, "ConflictRows", TopRows(aggregates.TABLE_LIMIT, aggregates.CONFLICT_ORDER,
                                                   aggregates.with_conflict_kind(UNKNOWN)), "conflict_rows")
    for kind in aggregates.CONFLICT_KINDS:
        summary.add(conflicts, f"ConflictRows{kind.title()}", TopRows(
            aggregates.TABLE_LIMIT, aggregates.CONFLICT_ORDER, aggregates.with_conflict_kind(UNKNOWN, kind)),
            "conflict_rows_by_kind", kind)


def delivered_bytes(deliveries: list[tuple[str, str | None, str]]) -> int:
    """The deliveries' total size (a link out of the feeds root, without a url, counts nothing)."""
    return sum(fsspec.core.url_to_fs(url)[0].size(url) for _, url, _ in deliveries if url)


def run(feeds: str, out: str, beam_args: list[str] | None = None, extra_contracts: list[str] | None = None,
        *, key: privacy.PseudonymKey | None = None, public_threshold: int = DEFAULT_THRESHOLD,
        period: str | None = None, run_id: str | None = None,
        linkage_models: dict[str, dict] | None = None, mse_method: str | None = None,
        decisions: str | None = None, allow_missing=(), data_docs: bool = False) -> RunResult:
    """Run and publish. Without ``key`` the key is read from the environment (or the run refuses).
    ``period`` also switches ``OUT/periods/<period>/current.json``; ``run_id`` is chosen by the
    caller when it must know it before the run starts (the service's ledger). A required feed
    that was not delivered blocks the run unless ``allow_missing`` names it ("*": any).
    ``data_docs`` also renders Great Expectations Data Docs beside the steward's report (which shows
    the results anyway)."""
    started = dt.datetime.now(dt.timezone.utc)
    key = key or privacy.resolve_key()
    contracts = load_contracts(*(extra_contracts or []))
    deliveries = discover_deliveries(feeds, contracts)
    if not deliveries:
        raise NoDeliveries(f"no file under {feeds} matches a feed contract")
    fs = fsspec.core.url_to_fs(feeds)[0]
    run_id = run_id or publish.new_run_id([{"source_file": rel, "sha256": str(fs.size(url)) if url else None}
                                          for _, url, rel in deliveries])  # no url: a link out of the root
    run_dir = posixpath.join(out.rstrip("/"), "runs", run_id)
    # one run at a time per OUT: a second one refuses (LeaseHeld) instead of racing to the pointers
    with Lease(run_lease(out), f"concilia run {run_id}", run_id=run_id) as lease:
        swept = sweep_stale_runs(out)
        if swept:
            log.warning("removed %d partial run folder(s) of stopped runs: %s", len(swept), ", ".join(swept))
        previous_run = publish.current_run_dir(out)  # its person registry seeds this run's ids; the report compares
        judgements = steward_decisions.read_decisions(decisions or steward_decisions.default_location(out))
        options = PipelineOptions(beam_args or ["--runner=DirectRunner"])
        progress.info("run %s: %d deliveries of %d feeds", run_id, len(deliveries), len({d[0] for d in deliveries}))
        suites = validate.run_suites(contracts)
        # the local pool (if any) kept from one pooled step to the next, and stopped before the finaliser
        with local_pool.held(), heartbeat(f"run {run_id}: Beam pipeline (read to write)"), \
                beam.Pipeline(options=options) as p:
            build(p, deliveries, contracts, run_dir, key, public_threshold, suites, started.date(), linkage_models,
                  mse_method, period, previous_run, judgements,
                  checks.read_control_files(feeds, checks.load_control_declarations()))
        lease.check()  # a run whose lease was taken over must not publish
        manifest = finish(feeds, out, run_id, contracts, key, started, previous_run, period, suites, allow_missing,
                          data_docs=data_docs)
    return RunResult(run_id=run_id, run_dir=run_dir, manifest=manifest)


def run_lease(out: str) -> str:
    """The lease a run holds on its output root (``pipelines.core.lease``)."""
    return f"{out.rstrip('/')}/_leases/run"


def sweep_stale_runs(out: str) -> list[str]:
    """Remove run folders without a complete manifest that no pointer names: what a killed or
    failed run left. Called while holding OUT's run lease, so none of them is still being written
    (a Dataflow job the Flex Template launched holds no lease: its launch record spares it)."""
    fs, out_path = fsspec.core.url_to_fs(out)
    out_path = out_path.rstrip("/")
    named = {(read_json(fs, p) or {}).get("run_id")
             for p in [f"{out_path}/current.json", *fs.glob(f"{out_path}/periods/*/current.json")]}
    swept = []
    for path in sorted(p for p in fs.glob(f"{out_path}/runs/*") if fs.isdir(p)):
        run_id = posixpath.basename(path)
        launched = fs.exists(f"{out_path}/_service/launches/{run_id}.json")
        if run_id not in named and not launched and not fs.exists(f"{path}/manifest.json"):
            fs.rm(path, recursive=True)
            swept.append(run_id)
    return swept


def finish(feeds: str, out: str, run_id: str, contracts: list[Contract], key: privacy.PseudonymKey,
           started: dt.datetime, previous_run: str | None = None, period: str | None = None,
           suites: dict[str, dict] | None = None, allow_missing=(), data_docs: bool = False) -> dict:
    """After the Beam job: validation summary, cross-feed check verdicts, manifest and pointers, from
    the job's ``RunSummary`` (never the tables). Apart from ``run`` so that a job launched elsewhere
    (the Dataflow Flex Template) is finalised the same way."""
    suites = validate.run_suites(contracts) if suites is None else suites
    with heartbeat(f"run {run_id}: validation results and Data Docs"):
        validation = validate.summarise(out, run_id, suites, publish.WORK_DIR, data_docs=data_docs)
    fs, out_path = fsspec.core.url_to_fs(out)
    summary = aggregates.RunSummary.read(fs, f"{out_path.rstrip('/')}/runs/{run_id}/{publish.WORK_DIR}")
    with heartbeat(f"run {run_id}: cross-feed checks"):
        validation = checks.add_to_validation(validation, checks.verdicts(
            out, run_id, feeds, summary.checks, publish.volumes(summary), key=key))
    with heartbeat(f"run {run_id}: accounting, report, manifest, tables and pointers"):
        manifest = publish.finalise_run(out, run_id, contracts, started, key, validation=validation,
                                        before_switch=lambda rd, m, s: publish_report(rd, previous_run, m, s),
                                        period=period, allow_missing=allow_missing, summary=summary)
    feeds_ = manifest["feeds"].values()
    unique = manifest["figures"]["reconciled_unique"]
    progress.info("run %s: published: %s rows read, %s harmonised, %s quarantined; %s unique persons; validation %s; "
                  "%.0f s", run_id, *(f"{sum(f[k] for f in feeds_):,}" for k in ("rows_read", "rows_harmonised",
                                                                                  "rows_quarantined")),
                  f"{sum(u['persons'] for u in unique.values()):,}", validate.overall_state(manifest.get("validation")),
                  (dt.datetime.now(dt.timezone.utc) - started).total_seconds())
    return manifest
