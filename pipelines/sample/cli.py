"""`concilia sample --out PATH --seed N [--people N]`: write the seeded sample feeds."""
from __future__ import annotations

import argparse
import sys
import time


def _whole_number(minimum: int):
    """An argparse type: a whole number at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}: {value}")
        return value

    return parse


_positive_int = _whole_number(1)
_seed = _whole_number(0)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one-line error, exit status 2
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser(prog: str = "concilia sample") -> argparse.ArgumentParser:
    p = _Parser(
        prog=prog,
        description="Write deterministic, seeded sample feeds for Peru 2018 (every agency's files as their "
                    "contracts say, with planted invalid rows) plus the ground truth under OUT/_truth/.",
    )
    p.add_argument("--out", required=True, metavar="PATH", help="output root (local path or fsspec URL)")
    p.add_argument("--seed", type=_seed, default=2018, metavar="N", help="random seed (default 2018)")
    p.add_argument("--people", type=_positive_int, default=None, metavar="N",
                   help="scale the world to about N records in total (default: the seed report's figures)")
    return p


def sample_main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import generate

    t0 = time.perf_counter()
    try:
        expected = generate(args.out, seed=args.seed, people=args.people)
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"concilia sample: error: {exc}\n")
        return 1
    rows = expected["valid_rows"]
    print(f"wrote {expected['total_valid_rows']} valid rows + "
          f"{sum(expected['planted_invalid_rows'].values())} planted invalid rows in {len(rows)} feeds "
          f"to {args.out} in {time.perf_counter() - t0:.1f}s")
    for fid, n in rows.items():
        print(f"  {fid}: {n} valid, {expected['planted_invalid_rows'][fid]} invalid")
    return 0
