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

Errors are one line on stderr with a non-zero exit; no source values ever appear in them. ``--lang es|en``
(default: the environment's locale) chooses the language of what people read: the run summary, the
steward's report, status, diff and review (``pipelines.i18n``).
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

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_INPUT = 3      # unreadable or missing inputs, malformed contracts
EXIT_ACCOUNTING = 4  # rows were lost: the run was not published
EXIT_OUTPUT = 5      # the run's folder does not hold exactly its listed outputs: not published
EXIT_BLOCKED = 6     # a blocking expectation or cross-feed check failed: written, not published
EXIT_BUSY = 7        # another live process holds the lease (a run on OUT, a watcher on the ledger)
EXIT_FAILED = 1

# Beam 2.77's DirectRunner first tries to download the Prism runner binary and falls back when
# offline; the in-process FnApiRunner is what it falls back to, so we name it directly.
RUNNER_ALIASES = {"directrunner": "FnApiRunner", "direct": "FnApiRunner"}
BEAM_SEPARATOR = "--"  # concilia run ... -- --direct_num_workers=2


class UsageError(ValueError):
    """A bad argument found after parsing: one line on stderr, exit 2."""


def split_beam_options(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the command's own arguments, the Beam options after ``--``)."""
    if BEAM_SEPARATOR in argv:
        at = argv.index(BEAM_SEPARATOR)
        return argv[:at], argv[at + 1:]
    return argv, []


def check_beam_options(beam_args: list[str]) -> list[str]:
    """``beam_args`` if Apache Beam knows every one of them; else :class:`UsageError` naming the
    first it does not (Beam itself would only log a warning and drop it)."""
    import difflib

    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)  # how Beam builds its own parser (PipelineOptions.get_all_options)
    _, unknown = parser.parse_known_args(beam_args)
    if unknown:
        known = [o for action in parser._actions for o in action.option_strings]
        close = difflib.get_close_matches(unknown[0].split("=", 1)[0], known, n=1)
        raise UsageError(f"unknown Beam option {unknown[0].split('=', 1)[0]}" + (f" (did you mean {close[0]}?)" if close else ""))
    return beam_args


def resolve_runner(name: str) -> str:
    """The Beam runner to name for ``--runner NAME`` (DirectRunner becomes the in-process runner),
    or :class:`UsageError` for a runner Beam does not know (a dotted class path is taken as given)."""
    from apache_beam.options.pipeline_options import StandardOptions

    runner = RUNNER_ALIASES.get(name.lower(), name)
    known = sorted({path.rsplit(".", 1)[-1] for path in StandardOptions.ALL_KNOWN_RUNNERS})
    if "." in runner or runner.lower() in {k.lower() for k in known} or f"{runner}runner".lower() in {
            k.lower() for k in known}:
        return runner
    raise UsageError(f"unknown runner {name!r}; known: {', '.join(known)}")


def report_unpublished(command: str, exc: Exception) -> int:
    """One line on stderr, and the exit code, for a run that finished but was not published."""
    from pipelines.publish import AccountingError, IncompleteOutput, ValidationBlocked

    for kind, code, hint in ((ValidationBlocked, EXIT_BLOCKED, _("; see the run's reports/index.html")),
                             (AccountingError, EXIT_ACCOUNTING, _("; the run was not published")),
                             (IncompleteOutput, EXIT_OUTPUT, "")):
        if isinstance(exc, kind):
            print(f"{command}: {exc}{hint}", file=sys.stderr)
            return code
    raise exc


#: concilia run's settings of a run: also concilia watch's (for every run it starts) and the Dataflow
#: Flex Template's parameters (deploy/metadata.json, with "_" for "-"; tests/test_dataflow.py compares).
RUN_SETTINGS = (
    ("contracts", dict(action="append", default=[], metavar="DIR",
                       help="extra feed contracts folder (layout <agency>/<feed>.yaml); repeatable")),
    ("public-threshold", dict(type=int, default=5, metavar="N",
                              help="public tables show counts under N as '<N' (default 5)")),
    ("linkage-model", dict(default=None, metavar="PATH",
                           help="pin the linkage models of an earlier run (its run folder, or a folder holding "
                                "model_victims.json and model_offenders.json) instead of training new ones")),
    ("mse-method", dict(default=None, metavar="M",
                        help="method of the multiple systems estimate (docs/mse.md; default: schemas/mse/settings.yaml): "
                             "pairwise_or_latent_class, all_pairwise, model_average, latent_class, stepwise_csv, "
                             "independence, stepwise_bhs, min_bic, min_bic_pairwise")),
    ("allow-missing", dict(action="append", default=[], metavar="FEED",
                           help="publish although this required feed (delivery.required) was not delivered; "
                                "repeatable, '*' for any (recorded in the manifest)")),
    ("decisions", dict(default=None, metavar="URL",
                       help="stewards' decisions store applied as must/cannot-links (default OUT/steward/decisions)")),
    ("data-docs", dict(action="store_true",
                       help="also render Great Expectations Data Docs under reports/data_docs/ (the steward's "
                            "report shows every suite's results without them)")),
)


def add_run_settings(p: argparse.ArgumentParser, template: bool = False) -> None:
    """The settings of a run; ``template``: as Flex Template parameters (--public_threshold=7,
    --data_docs=true: a template passes every parameter as name=value)."""
    for name, spec in RUN_SETTINGS:
        if template:
            spec = {**spec, "action": "store", "type": true_false, "default": False} \
                if spec.get("action") == "store_true" else spec
            name = name.replace("-", "_")
        p.add_argument(f"--{name}", **spec)


def true_false(value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, not {value!r}")
    return value.lower() == "true"


def add_key_options(p: argparse.ArgumentParser) -> None:
    key = p.add_mutually_exclusive_group()
    key.add_argument("--key-file", default=None, metavar="PATH",
                     help="pseudonymisation key file (else $CONCILIA_PSEUDONYM_KEY or Secret Manager via "
                          "$CONCILIA_PSEUDONYM_KEY_SECRET)")
    key.add_argument("--demo-key", action="store_true",
                     help="use the public demo key (sample data only): every output is marked as demo")


def run_settings(args: argparse.Namespace) -> dict:
    """Parsed run settings -> keyword arguments of ``pipeline.run``; :class:`UsageError` for a bad
    value, ``FileNotFoundError``/``LinkageModelError`` for a pinned model that cannot be read."""
    from pipelines.estimate import METHODS as MSE_METHODS
    from pipelines.link.linker import load_pinned_models

    if args.public_threshold < 2:
        raise UsageError(_("--public-threshold must be at least 2"))
    if args.mse_method is not None and args.mse_method not in MSE_METHODS:
        raise UsageError(_("--mse-method must be one of %(methods)s") % {"methods": ", ".join(MSE_METHODS)})
    return {"public_threshold": args.public_threshold, "mse_method": args.mse_method, "decisions": args.decisions,
            "data_docs": args.data_docs, "allow_missing": args.allow_missing,
            "linkage_models": load_pinned_models(args.linkage_model) if args.linkage_model else None}


def _run_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("run", help="reconcile the feeds under --feeds and publish a run under --out",
                       usage="concilia run --feeds PATH --out PATH [options] [-- beam options]",
                       description="Reconcile every feed delivery under --feeds and publish Parquet under --out. "
                                   "Apache Beam options go after -- (e.g. -- --direct_num_workers=2).")
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
    from pipelines.service.lease import LeaseHeld, LeaseLost

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
                     period=args.period, **settings)
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
