"""``concilia``: the command line of the reconciliation service.

    concilia run --feeds PATH --out PATH [--runner R] [-- beam options...]
    concilia sample --out PATH --seed N [--people N]
    concilia mse TABLE.csv [--method M] [--seed S]
    concilia docs [--out DIR]
    concilia contract draft FILE --agency A --role R [--out PATH]
    concilia contract check CONTRACT [FILE...]
    concilia watch --landing URL --out URL [--interval S] [--schedule CRON] [-- beam options...]
    concilia status --out URL [--landing URL]
    concilia diff RUN_A RUN_B --out URL
    concilia review [export|apply FILE] --out URL

Errors are one line on stderr with a non-zero exit (codes: ``pipelines.options``); no source values
ever appear in them. ``--lang es|en`` (default: the environment's locale) chooses the language of what
people read: the run summary, the steward's report, status, diff and review (``pipelines.i18n``).
Options this program does not know are usage errors (exit 2); Apache Beam's options go after
``--`` and are checked against Beam's own (a misspelt one would otherwise be dropped silently).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pipelines
from pipelines import i18n
from pipelines.i18n import _
from pipelines.logs import configure as configure_logging
from pipelines.logs import verbosity
from pipelines.options import (EXIT_BUSY, EXIT_INPUT, EXIT_OK, EXIT_USAGE, UsageError, add_key_options,
                               add_run_settings, check_beam_options, report_unpublished, resolve_runner, run_settings,
                               split_beam_options)

def _run_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="reconcile the feeds under --feeds and publish a run under --out",
                       usage="concilia run --feeds PATH --out PATH [options] [-- beam options]",
                       description="Reconcile every feed delivery under --feeds and publish Parquet under --out. "
                                   "Apache Beam options go after -- (e.g. -- --local_processes=2: the in-process "
                                   "runner's heaviest steps in 2 processes of this machine).")
    p.add_argument("--feeds", required=True, help="feeds root (local path or fsspec URL: memory://, gs://)")
    p.add_argument("--out", required=True, help="output root; the run goes to OUT/runs/<run_id>/")
    p.add_argument("--runner", default="DirectRunner", help="Beam runner (default: DirectRunner, in-process)")
    add_key_options(p)
    add_run_settings(p)
    p.add_argument("--period", default=None, metavar="LABEL",
                   help="delivery period of the feeds (e.g. 2019): persons of other periods in the previous run's "
                        "registry are linked with this run's records, and OUT/periods/LABEL/current.json switches too")
    p.add_argument("--json", action="store_true", help="print the manifest's figures as JSON instead of a table")
    i18n.add_argument(p)
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more log lines: -v Concilia's own, -vv also third-party libraries' (progress is shown anyway)")
    p.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    return p


def _cmd_run(args, beam_args: list[str]) -> int:
    from pipelines.contracts import ContractError
    from pipelines.link.fellegi_sunter import LinkageModelError
    from pipelines.pipeline import NoDeliveries, run
    from pipelines.privacy import KeyUnavailable, resolve_key
    from pipelines.publish import AccountingError, IncompleteOutput
    from pipelines.core.lease import LeaseHeld, LeaseLost

    try:
        runner = resolve_runner(args.runner)
        check_beam_options(beam_args)
        settings = run_settings(args)
    except UsageError as exc:
        print(f"concilia run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (FileNotFoundError, LinkageModelError) as exc:
        print(f"concilia run: {exc}", file=sys.stderr)
        return EXIT_INPUT
    started = time.monotonic()
    try:
        key = resolve_key(key_file=args.key_file, demo=args.demo_key)
    except KeyUnavailable as exc:  # refuse to start: outputs would carry unkeyed or guessable pseudonyms
        print(f"concilia run: {exc}", file=sys.stderr)
        return EXIT_INPUT
    try:
        result = run(args.feeds, args.out, [f"--runner={runner}", *beam_args], args.contracts, key=key,
                     period=args.period, **settings.run_kwargs())
    except (NoDeliveries, ContractError, FileNotFoundError, LinkageModelError) as exc:
        print(f"concilia run: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except (AccountingError, IncompleteOutput) as exc:
        return report_unpublished("concilia run", exc)
    except (LeaseHeld, LeaseLost) as exc:
        print("concilia run: " + _("%(error)s; nothing was published") % {"error": exc}, file=sys.stderr)
        return EXIT_BUSY
    if args.json:
        print(json.dumps({"run_id": result.run_id, "demo": key.demo, **result.manifest["figures"],
                          "mse": result.manifest.get("mse")}, indent=2))
    else:
        from pipelines.summary import render

        if key.demo:
            print(_("DEMO RUN: pseudonyms use the public demo key; outputs are marked demo, not for real data"))
        print(render(result.manifest, result.run_dir, time.monotonic() - started))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    configure_logging(verbose=verbosity(argv), as_json="--log-json" in argv)
    language = argparse.ArgumentParser(prog="concilia", add_help=False)
    i18n.add_argument(language)
    with i18n.use(language.parse_known_args(argv)[0].lang):  # the commands' own parsers declare --lang too
        return _dispatch(argv)


def _dispatch(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="concilia", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"concilia {pipelines.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _run_parser(sub)
    sub.add_parser("sample", help="write the deterministic sample feeds", add_help=False)
    sub.add_parser("mse", help="multiple systems estimation on a capture-history CSV", add_help=False)
    sub.add_parser("watch", help="watch a landing zone and run periods as deliveries complete", add_help=False)
    sub.add_parser("status", help="what is current, recent runs, pending deliveries", add_help=False)
    sub.add_parser("diff", help="what changed between two runs", add_help=False)
    sub.add_parser("finalise", help="finalise a run launched by the Dataflow Flex Template", add_help=False)
    sub.add_parser("contract", help="draft a feed contract from a delivered file, or check one", add_help=False)
    sub.add_parser("review", help="the review queue: list, export for a steward, apply judgements", add_help=False)
    docs = sub.add_parser("docs", help="generate the field reference (docs/model.md) from schemas/")
    docs.add_argument("--out", default=None, help="folder to write into (default: the project's docs/)")

    if argv and argv[0] == "sample":
        from pipelines.sample.cli import sample_main

        return sample_main(argv[1:])
    if argv and argv[0] == "mse":
        from pipelines.estimate.cli import mse_main

        return mse_main(argv[1:])
    if argv and argv[0] == "contract":
        from pipelines.onboarding import contract_main

        return contract_main(argv[1:])
    if argv and argv[0] == "review":
        from pipelines.steward.cli import review_main

        return review_main(argv[1:])
    if argv and argv[0] in ("watch", "status", "diff", "finalise"):
        from pipelines.service.cli import COMMANDS

        return COMMANDS[argv[0]](argv[1:])

    own, beam_args = split_beam_options(argv)
    args, unknown = parser.parse_known_args(own)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    if unknown:  # the command's usage line and exit 2
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "run":
        return _cmd_run(args, beam_args)
    if beam_args:
        parser.error(f"options after -- are Beam options, for run and watch only: {' '.join(beam_args)}")
    if args.command == "docs":
        from pipelines.docs import write_docs

        for path in write_docs(args.out):
            print(path)
        return EXIT_OK
    parser.print_help()
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
