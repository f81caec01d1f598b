"""What a worker process of ``pipelines.core.local_pool`` runs besides its tasks: its logging set-up
and a task wrapper. Kept apart from ``local_pool``, and free of Beam, because a spawned worker
imports the module of every function it is handed: with Beam, each worker's start took 1.5-2 s
more CPU and 125 MB more memory (measured: ``import pipelines.link.compare`` 0.5 s and 82 MB,
``import apache_beam`` 2.2 s and 206 MB), and a pooled step's workers start together on the cores
the step is waiting for.
"""

from __future__ import annotations

import ctypes
import logging
import logging.handlers

import pyarrow as pa


def start(queue, levels: dict[str, int]) -> None:
    """A worker's logging: its records go to the parent's handlers (format, filters, JSON lines)."""
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(queue)]
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)


def _glibc_trim():
    """glibc's ``malloc_trim`` (None elsewhere: macOS, musl)."""
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_TRIM = _glibc_trim()


def run_task(function, *args):
    """``function(*args)``, then the memory it freed handed back to the system: Arrow's allocator
    and the C library's keep freed memory for reuse, which a worker kept for the next step would
    hold while idle."""
    try:
        return function(*args)
    finally:
        pa.default_memory_pool().release_unused()
        if _TRIM is not None:
            _TRIM(0)
