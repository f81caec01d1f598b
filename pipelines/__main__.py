"""``python -m pipelines`` and the ``concilia`` console script.

The process ends with ``os._exit`` once the command has returned and its output is flushed: a
native thread pool (Arrow, gRPC) left joinable at interpreter teardown can otherwise abort the
process ("terminate called without an active exception") after the work is done, turning a
successful command into exit code -6.
"""

import os
import sys

from pipelines.cli import main


def run() -> None:
    try:
        code = main()
    except SystemExit as exc:  # argparse: --help, --version (0) and usage errors (2)
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    run()
