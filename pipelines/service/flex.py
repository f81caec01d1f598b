"""Dataflow Flex Template program, and ``concilia finalise`` for the job it launched.

Inside the template launcher the program only builds the pipeline and hands it to the
DataflowRunner (the launcher turns it into a job and must not wait for it). What ``concilia run``
does after the Beam job (validation summary, checks, manifest, pointers) is then
``concilia finalise --out OUT --run-id ID`` once the job is done: it reads the launch record this
program wrote under ``STATE/launches/<run_id>.json``.

    python -m pipelines.service.flex --feeds gs://B/staging/R --out gs://B/out --run_id R [--period P]
        [--pseudonym_key_secret projects/P/secrets/S] [Beam/Dataflow options...]
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

from pipelines.service.ledger import read_json, write_json_atomic

log = logging.getLogger(__name__)


def _launch_record(state: str, run_id: str) -> str:
    return f"{state.rstrip('/')}/launches/{run_id}.json"


def template_main(argv: list[str] | None = None) -> int:
    from pipelines import privacy, publish
    from pipelines.contracts import load_contracts
    from pipelines.pipeline import NoDeliveries, build
    from pipelines.read import discover_deliveries
    from pipelines.service.watch import STATE_DIR
    from pipelines.steward import decisions as steward_decisions

    p = argparse.ArgumentParser(prog="concilia-flex-template")
    p.add_argument("--feeds", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--run_id", required=True)
    p.add_argument("--period", default=None)
    p.add_argument("--state", default=None)
    p.add_argument("--pseudonym_key_secret", default=None)
    p.add_argument("--allow_missing", action="append", default=[],
                   help="a required feed that may be missing from this delivery (concilia run --allow-missing)")
    args, beam_args = p.parse_known_args(argv)
    key = privacy.resolve_key(secret_name=args.pseudonym_key_secret)
    contracts = load_contracts()
    deliveries = discover_deliveries(args.feeds, contracts)
    if not deliveries:
        raise NoDeliveries(f"no file under {args.feeds} matches a feed contract")
    state = args.state or f"{args.out.rstrip('/')}/{STATE_DIR}"
    previous_run = publish.current_run_dir(args.out)
    fs, path = fsspec.core.url_to_fs(_launch_record(state, args.run_id))
    write_json_atomic(fs, path, {
        "run_id": args.run_id, "feeds": args.feeds, "out": args.out, "period": args.period,
        "started": dt.datetime.now(dt.timezone.utc).isoformat(), "previous_run": previous_run,
        "pseudonym_key_secret": args.pseudonym_key_secret, "allow_missing": args.allow_missing})
    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    build(pipeline, deliveries, contracts, posixpath.join(args.out.rstrip("/"), "runs", args.run_id), key,
          period=args.period, previous_run=previous_run,
          judgements=steward_decisions.read_decisions(steward_decisions.default_location(args.out)))
    pipeline.run()  # the launcher submits the job; no waiting here
    return 0


def finalise(out: str, run_id: str, state: str | None = None, key_file: str | None = None) -> dict:
    """Finalise a job the template launched: the same steps as after ``concilia run``'s pipeline."""
    from pipelines import privacy
    from pipelines.contracts import load_contracts
    from pipelines.pipeline import finish, run_lease
    from pipelines.service.lease import Lease
    from pipelines.service.watch import STATE_DIR

    state = state or f"{out.rstrip('/')}/{STATE_DIR}"
    fs, path = fsspec.core.url_to_fs(_launch_record(state, run_id))
    record = read_json(fs, path)
    if record is None:
        raise FileNotFoundError(f"no launch record for run {run_id} under {state}/launches/")
    key = privacy.resolve_key(key_file=key_file, secret_name=record.get("pseudonym_key_secret"))
    with Lease(run_lease(out), f"concilia finalise {run_id}", run_id=run_id):  # one publisher per OUT
        return finish(record["feeds"], out, run_id, load_contracts(), key,
                      dt.datetime.fromisoformat(record["started"]), record.get("previous_run"), record.get("period"),
                      allow_missing=record.get("allow_missing", ()))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(template_main())
