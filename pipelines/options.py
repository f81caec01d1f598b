"""What every ``concilia`` command shares: exit codes (README's list), the settings of a run (also
``concilia watch``'s and the Dataflow Flex Template's parameters), the key options, and the runner
and Beam options, checked before anything starts. ``pipelines.cli`` and ``pipelines.service.cli``
both build on it; it imports neither.
"""

from __future__ import annotations

import argparse
import sys

from pipelines.core.settings import RunSettings
from pipelines.i18n import _

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

    from pipelines.core import local_pool  # noqa: F401 (declares --local_processes)

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


def run_settings(args: argparse.Namespace) -> RunSettings:
    """Parsed run settings; :class:`UsageError` for a bad value, ``FileNotFoundError``/``LinkageModelError``
    for a pinned model that cannot be read."""
    from pipelines.estimate import METHODS as MSE_METHODS
    from pipelines.link.linker import load_pinned_models

    if args.public_threshold < 2:
        raise UsageError(_("--public-threshold must be at least 2"))
    if args.mse_method is not None and args.mse_method not in MSE_METHODS:
        raise UsageError(_("--mse-method must be one of %(methods)s") % {"methods": ", ".join(MSE_METHODS)})
    return RunSettings(public_threshold=args.public_threshold, mse_method=args.mse_method, decisions=args.decisions,
                       data_docs=args.data_docs, allow_missing=tuple(args.allow_missing),
                       linkage_models=load_pinned_models(args.linkage_model) if args.linkage_model else None)
