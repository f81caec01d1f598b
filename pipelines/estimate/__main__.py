"""``python -m pipelines.estimate TABLE.csv [--method M] [--seed S] [--interval profile|bootstrap]``."""

import sys

from .cli import mse_main

if __name__ == "__main__":
    raise SystemExit(mse_main(sys.argv[1:], prog="python -m pipelines.estimate"))
