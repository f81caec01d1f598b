"""Logging set-up for the CLI: plain text or one JSON object per line (``--log-json``).

By default an operator sees progress: each stage of a run, its rows and elapsed time (the
``pipelines.progress`` logger), on stderr; on a terminal the "still running" beats rewrite one
line, elsewhere (logs, Dataflow, CI) every line is a plain line. ``-v`` adds Concilia's other INFO
lines; third-party INFO (Great Expectations, Apache Beam: most of a run's lines) only with ``-vv``.

Log records carry counts, ids, file names and reasons, never source values.
"""

from __future__ import annotations

import json
import logging
import sys

PROGRESS = "pipelines.progress"
OWN = "pipelines"
TRANSIENT = "transient"  # extra={"transient": True}: a beat a terminal may overwrite with the next line

# Beam logs this at import on every machine without the GCP extra; it is noise to an operator.
_NOISE = ("apitools not found",)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(str(record.msg).startswith(n) for n in _NOISE)


class _ThirdPartyInfo(logging.Filter):
    """Keep other libraries' INFO and DEBUG out (they are most of a run's lines); warnings pass."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.name == OWN or record.name.startswith(OWN + ".")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                           "logger": record.name, "message": record.getMessage()}, ensure_ascii=False)


class _TerminalHandler(logging.StreamHandler):
    """On a terminal, a transient beat rewrites the current line; the next line replaces it."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            end = "" if getattr(record, TRANSIENT, False) else "\n"
            self.stream.write("\r\x1b[K" + self.format(record) + end)
            self.flush()
        except Exception:  # noqa: BLE001 (logging must not raise)
            self.handleError(record)


def configure(verbose: int | bool = 0, as_json: bool = False) -> None:
    """``verbose``: 0 progress and warnings; 1 also Concilia's INFO; 2 also third-party INFO."""
    verbose = int(verbose)
    terminal = sys.stderr.isatty() and not as_json
    handler = _TerminalHandler(sys.stderr) if terminal else logging.StreamHandler(sys.stderr)
    handler.addFilter(_DropNoise())
    if verbose < 2:
        handler.addFilter(_ThirdPartyInfo())
    if as_json:
        handler.setFormatter(_JsonFormatter())
    elif verbose:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("concilia: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger(PROGRESS).setLevel(logging.INFO)  # stages, rows and elapsed time, by default


def verbosity(argv: list[str]) -> int:
    """0, 1 (-v, --verbose) or 2 (-vv, or -v twice), read before the command's own parser runs."""
    return min(2, sum(2 if a == "-vv" else 1 for a in argv if a in ("-v", "--verbose", "-vv")))
