"""Logging set-up for the CLI: plain text or one JSON object per line (``--log-json``).

Log records carry counts, ids, file names and reasons, never source values.
"""

from __future__ import annotations

import json
import logging
import sys

# Beam logs this at import on every machine without the GCP extra; it is noise to an operator.
_NOISE = ("apitools not found",)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(str(record.msg).startswith(n) for n in _NOISE)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                           "logger": record.name, "message": record.getMessage()}, ensure_ascii=False)


def configure(verbose: bool = False, as_json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_DropNoise())
    handler.setFormatter(_JsonFormatter() if as_json else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    if verbose:
        # Beam's own INFO chatter (bundle progress) drowns the stage logs
        logging.getLogger("apache_beam").setLevel(logging.WARNING)
