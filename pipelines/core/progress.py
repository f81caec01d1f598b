"""Progress on long runs: a heartbeat log line while a blocking step (a Beam pipeline) runs."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time

log = logging.getLogger("pipelines.progress")

ENV_INTERVAL = "CONCILIA_PROGRESS_SECONDS"  # default 30; an operator can ask for more or less


@contextlib.contextmanager
def heartbeat(what: str, interval: float | None = None):
    """Log ``what``, then ``what: still running, N s`` every ``interval`` seconds until the block
    ends, then its duration (shown by default: pipelines.logs; one JSON object per line with
    --log-json). On a terminal the beats come every second and rewrite one line."""
    interval = interval or float(os.environ.get(ENV_INTERVAL, "1" if sys.stderr.isatty() else "30"))
    started = time.monotonic()
    stop = threading.Event()
    log.info("%s ...", what)

    def beat():
        while not stop.wait(interval):
            log.info("%s: still running, %d s", what, time.monotonic() - started, extra={"transient": True})

    thread = threading.Thread(target=beat, name="concilia-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1)
        log.info("%s: %.1f s", what, time.monotonic() - started)
