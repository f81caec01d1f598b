"""``concilia mse TABLE.csv [--method M] [--seed S] [--interval profile|bootstrap]``.

Prints one JSON object (``estimate``, ``lower``, ``upper``, ``method``, ``model``, ...).

Exit status (README's list): 0 an estimate was produced; 2 bad arguments; 3 the table cannot be
read; 8 the data cannot support an estimate (the JSON is still printed, with ``"estimate": null``
and a ``reason``).  Errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from . import (DEFAULT_INTERVAL, DEFAULT_METHOD, FALLBACK_METHOD, INTERVALS, MAX_LISTS_MIN_BIC_PAIRWISE, METHODS,
                CaptureHistory, CaptureHistoryError, LatentClassSettings, default_method_for, estimate)

#: The short diagnostics block (--full prints all): the fit of a log-linear model, the chains of latent_class.
SHORT_DIAGNOSTICS = ("aic", "bic", "deviance", "mle_exists", "neg_inf_terms", "non_overlapping_pairs", "rhat",
                     "ess_bulk", "ess_tail", "posterior_mean", "classes_occupied_mean", "settings", "seconds",
                     "warnings")

EXIT_OK, EXIT_USAGE, EXIT_UNREADABLE, EXIT_REFUSED = 0, 2, 3, 8  # 7: another process holds a lease (README)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_USAGE)


def build_parser(prog: str = "concilia mse") -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Multiple systems estimation of a hidden population from a capture-history CSV.")
    p.add_argument("table", metavar="TABLE.csv", help="0/1 column per list, then 'count' (CSV, or a run's Parquet)")
    p.add_argument("--method", default=None, choices=METHODS,
                   help=f"default {DEFAULT_METHOD} ({FALLBACK_METHOD} past {MAX_LISTS_MIN_BIC_PAIRWISE} lists)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of latent_class's sampler (default 0)")
    p.add_argument("--interval", default=DEFAULT_INTERVAL, choices=INTERVALS)
    p.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level (default 0.05)")
    p.add_argument("--n-bootstrap", type=int, default=1000, help="bootstrap replicates (default 1000)")
    p.add_argument("--p-threshold", type=float, default=None, help="stepwise p-value threshold")
    p.add_argument("--max-order", type=int, default=None, help="highest interaction order for min_bic")
    p.add_argument("--count-column", default=None, help="name of the count column (default 'count')")
    p.add_argument("--full", action="store_true", help="include all diagnostics in the JSON")
    mcmc = LatentClassSettings()
    for name, help_text in (("chains", "chains"), ("burn_in", "iterations discarded per chain"),
                            ("draws", "draws kept per chain"), ("thin", "iterations per kept draw"),
                            ("classes", "latent classes (truncation)")):
        p.add_argument(f"--mcmc-{name.replace('_', '-')}", type=int, default=getattr(mcmc, name),
                       help=f"latent_class: {help_text} (default {getattr(mcmc, name)})")
    return p


def mse_main(argv=None, prog: str = "concilia mse") -> int:
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or usage error (2)
        return int(exc.code or 0)
    try:
        table = (CaptureHistory.from_arrow(pq.read_table(args.table), args.count_column)  # a run's mse/capture_histories/
                 if args.table.endswith(".parquet") else CaptureHistory.from_csv(args.table, args.count_column))
    except (OSError, UnicodeDecodeError, pa.ArrowException) as exc:
        sys.stderr.write(f"{prog}: error: cannot read {args.table}: {getattr(exc, 'strerror', None) or exc}\n")
        return EXIT_UNREADABLE
    except CaptureHistoryError as exc:
        sys.stderr.write(f"{prog}: error: {args.table}: {exc}\n")
        return EXIT_UNREADABLE
    method, note = (args.method, None) if args.method else default_method_for(table.k)
    try:
        result = estimate(
            table, method=method, seed=args.seed, alpha=args.alpha, interval=args.interval,
            n_bootstrap=args.n_bootstrap, p_threshold=args.p_threshold, max_order=args.max_order,
            mcmc=LatentClassSettings(classes=args.mcmc_classes, chains=args.mcmc_chains, burn_in=args.mcmc_burn_in,
                                     draws=args.mcmc_draws, thin=args.mcmc_thin),
        )
    except ValueError as exc:
        sys.stderr.write(f"{prog}: error: {exc}\n")
        return EXIT_USAGE
    d = result.to_dict()
    if note:
        d.setdefault("diagnostics", {}).setdefault("warnings", []).append(note)
    if not args.full:
        diag = d.pop("diagnostics", {})
        d["diagnostics"] = {key: diag[key] for key in SHORT_DIAGNOSTICS if key in diag}
    sys.stdout.write(json.dumps(d, allow_nan=False) + "\n")
    return EXIT_REFUSED if result.refused else EXIT_OK


def main() -> None:  # pragma: no cover
    raise SystemExit(mse_main(sys.argv[1:]))
