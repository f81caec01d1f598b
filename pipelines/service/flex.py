"""Dataflow Flex Template program, and ``concilia finalise`` for a job that did not finalise itself.

Inside the template launcher the program only builds the pipeline and hands it to the
DataflowRunner (the launcher turns it into a job and must not wait for it). The job finalises
itself: its last stage (:class:`FinaliseRun`) starts once every output of the job is written and
does what ``concilia run`` does after its pipeline (validation summary, checks, manifest, Delta
tables, pointers), on a worker. The program also writes a launch record under
``STATE/launches/<run_id>.json``, from which ``concilia finalise --out OUT --run-id ID`` finalises
a job launched with ``--finalise=false``.

Every ``concilia run`` setting is a template parameter (``pipelines.options.RUN_SETTINGS``, with "_"
for "-"; deploy/metadata.json declares them, tests/test_dataflow.py compares):

    python -m pipelines.service.flex --feeds gs://B/staging/R --out gs://B/out --run_id R [--period P]
        [--pseudonym_key_secret projects/P/secrets/S] [--public_threshold N] [--mse_method M] ...
        [Beam/Dataflow options...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import posixpath
import sys

import apache_beam as beam
import fsspec
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import PipelineVisitor

from pipelines import i18n
from pipelines.checks import load_control_declarations, read_control_files
from pipelines.core.files import read_json, write_json_atomic
from pipelines.options import add_run_settings, run_settings, true_false

log = logging.getLogger(__name__)


def _launch_record(state: str, run_id: str) -> str:
    return f"{state.rstrip('/')}/launches/{run_id}.json"


def template_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="concilia-flex-template")
    p.add_argument("--feeds", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--run_id", required=True)
    p.add_argument("--period", default=None)
    p.add_argument("--state", default=None)
    p.add_argument("--pseudonym_key_secret", default=None)  # concilia run's --key-file: no files in a launcher
    p.add_argument("--demo_key", type=true_false, default=False)
    p.add_argument("--finalise", type=true_false, default=True)  # false: concilia finalise does it later
    i18n.add_argument(p)  # the steward's report's language
    add_run_settings(p, template=True)
    return p


def template_main(argv: list[str] | None = None) -> int:
    from pipelines import privacy, publish
    from pipelines.contracts import load_contracts
    from pipelines.pipeline import NoDeliveries, build
    from pipelines.read import discover_deliveries
    from pipelines.service.watch import STATE_DIR
    from pipelines.steward import decisions as steward_decisions

    args, beam_args = template_parser().parse_known_args(argv)  # the rest: Dataflow's own options
    settings = run_settings(args)
    key = privacy.resolve_key(secret_name=args.pseudonym_key_secret, demo=args.demo_key)
    contracts = load_contracts(*args.contracts)
    deliveries = discover_deliveries(args.feeds, contracts)
    if not deliveries:
        raise NoDeliveries(f"no file under {args.feeds} matches a feed contract")
    state = args.state or f"{args.out.rstrip('/')}/{STATE_DIR}"
    started = dt.datetime.now(dt.timezone.utc)
    previous_run = publish.current_run_dir(args.out)
    record = {"run_id": args.run_id, "feeds": args.feeds, "out": args.out, "period": args.period,
              "started": started.isoformat(), "previous_run": previous_run,
              "pseudonym_key_secret": args.pseudonym_key_secret, "demo_key": args.demo_key,
              "contracts": args.contracts, "data_docs": settings.data_docs, "allow_missing": list(settings.allow_missing),
              "lang": i18n.resolve(args.lang)}
    fs, path = fsspec.core.url_to_fs(_launch_record(state, args.run_id))
    write_json_atomic(fs, path, record)
    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    judgements = steward_decisions.read_decisions(settings.decisions or steward_decisions.default_location(args.out))
    build(pipeline, deliveries, contracts, posixpath.join(args.out.rstrip("/"), "runs", args.run_id), key,
          settings.public_threshold, None, started.date(), settings.linkage_models, settings.mse_method,
          args.period, previous_run, judgements, read_control_files(args.feeds, load_control_declarations()))
    if args.finalise:
        _ = tuple(_leaves(pipeline)) | "FinaliseRun" >> FinaliseRun(record)
    pipeline.run()  # the launcher submits the job; no waiting here
    return 0


class _Leaves(PipelineVisitor):
    """The PCollections no transform reads: the ends of the graph (the writes' results, mostly)."""

    def __init__(self):
        self.produced: dict[int, beam.pvalue.PCollection] = {}
        self.consumed: set[int] = set()

    def visit_transform(self, node):
        self.consumed.update(id(pc) for pc in node.inputs)
        self.consumed.update(id(side.pvalue) for side in node.side_inputs)
        self.produced.update((id(pc), pc) for pc in node.outputs.values() if isinstance(pc, beam.pvalue.PCollection))


def _leaves(pipeline: beam.Pipeline) -> list[beam.pvalue.PCollection]:
    visitor = _Leaves()
    pipeline.visit(visitor)
    return [pc for key, pc in visitor.produced.items() if key not in visitor.consumed]


class FinaliseRun(beam.PTransform):
    """The job's last stage: once every end of the graph is complete (each counted by a global
    combine, which emits only when its input is done), finalise the run on one worker."""

    def __init__(self, record: dict):
        super().__init__()
        self._record = record

    def expand(self, leaves):
        record = self._record
        done = [pc | f"Wait{i}" >> beam.combiners.Count.Globally() for i, pc in enumerate(leaves)]
        return (tuple(done) | "AllWritten" >> beam.Flatten() | "Written" >> beam.CombineGlobally(sum)
                | "Finalise" >> beam.Map(lambda _: finish_recorded(record)["run_id"]))


def finish_recorded(record: dict, key_file: str | None = None) -> dict:
    """What ``concilia run`` does after its pipeline, for the run a launch record describes."""
    from pipelines import privacy
    from pipelines.contracts import load_contracts
    from pipelines.pipeline import finish, run_lease
    from pipelines.core.lease import Lease

    key = privacy.resolve_key(key_file=key_file, secret_name=record.get("pseudonym_key_secret"),
                              demo=bool(record.get("demo_key")))
    with Lease(run_lease(record["out"]), f"finalise {record['run_id']}", run_id=record["run_id"]), \
            i18n.use(record.get("lang")):  # one publisher per OUT; the report in the launch's language
        return finish(record["feeds"], record["out"], record["run_id"], load_contracts(*record.get("contracts") or []),
                      key, dt.datetime.fromisoformat(record["started"]), record.get("previous_run"), record.get("period"),
                      allow_missing=record.get("allow_missing", ()), data_docs=bool(record.get("data_docs")))


def finalise(out: str, run_id: str, state: str | None = None, key_file: str | None = None) -> dict:
    """Finalise a job the template launched with ``--finalise=false``."""
    from pipelines.service.watch import STATE_DIR

    state = state or f"{out.rstrip('/')}/{STATE_DIR}"
    fs, path = fsspec.core.url_to_fs(_launch_record(state, run_id))
    record = read_json(fs, path)
    if record is None:
        raise FileNotFoundError(f"no launch record for run {run_id} under {state}/launches/")
    return finish_recorded({**record, "out": out}, key_file)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(template_main())
