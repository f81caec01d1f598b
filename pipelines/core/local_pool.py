"""The heaviest per-element work of the in-process runner done by other processes of this machine.

Beam's in-process runner (FnApiRunner, what ``--runner=DirectRunner`` runs here) runs one bundle at
a time on one core. A ``PooledDoFn`` whose work per element is a pure function of picklable
arguments (file names of handed-off tables, a batch, settings) hands that work to a pool of spawned
processes: it submits each element's work and yields the oldest finished work while the next
elements are read, with at most ``processes`` elements waiting, so that memory stays bounded. The
outputs come in the elements' order, with the windows and timestamps of the elements they came
from: the same PCollections as when the work is done inline, which it is with one process (the
default on any other runner, whose workers are the parallelism).

The workers are shared by the DoFns of one fused stage (harmonising and validating the feeds, the
linkage's comparison rows) and started for a bundle and stopped at its end; within ``held()`` (a
whole job: ``pipeline.run``) they are kept for a pooled step that follows within ``IDLE_SECONDS``
(the linkage's partitioning, comparing and scoring), since each start costs a spawn and the
imports. Workers import no Beam (``pipelines.core.pool_worker``) unless their work does. A worker
hands the memory its task freed back after each task. Their log records go to the parent's
handlers. A worker that fails fails the bundle, with the worker's exception, and the pool is stopped.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import logging
import logging.handlers
import multiprocessing
import os
import threading
from typing import Callable

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.core import pool_worker

MAX_DEFAULT_PROCESSES = 4  # each worker holds one element's working set: a default for any machine
# a pool costs seconds to start at each step that uses one (a feed validation's workers import Great
# Expectations): by default only for deliveries this large (measured, docs/benchmarks.md: at 46 MB,
# 100k records, no faster; at 453 MB, 1M records, a fifth less time)
MIN_DEFAULT_BYTES = 100 << 20
IN_PROCESS_RUNNERS = {None, "directrunner", "fnapirunner", "direct"}


class LocalProcessesOptions(PipelineOptions):
    """``--local_processes``: a Beam option, given after ``--`` on the command line."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument(
            "--local_processes", type=int, default=None,
            help="processes of this machine for the in-process runner's heaviest steps (harmonising and "
                 "validating the feeds, preparing, partitioning, comparing and scoring the linkage's records); "
                 "default: "
                 f"the CPUs this process may use, at most {MAX_DEFAULT_PROCESSES}, for deliveries of "
                 f"{MIN_DEFAULT_BYTES >> 20} MB or more; 1: none. Other runners ignore it")


def local_processes(options: PipelineOptions, input_bytes: Callable[[], int] | None = None) -> int:
    """How many processes a ``PooledDoFn`` of a pipeline with ``options`` uses: 1 unless the runner is
    the in-process one in its default (in-memory) mode; by default, 1 for inputs under
    ``MIN_DEFAULT_BYTES`` (``input_bytes()``: their size, asked only then)."""
    runner = options.view_as(StandardOptions).runner
    name = runner if isinstance(runner, str) or runner is None else type(runner).__name__
    if (name.rsplit(".", 1)[-1].lower() if name else None) not in IN_PROCESS_RUNNERS:
        return 1
    if options.view_as(DirectOptions).direct_running_mode not in (None, "in_memory"):
        return 1  # Beam's own worker processes or threads: no pool inside each of them
    requested = options.view_as(LocalProcessesOptions).local_processes
    if requested is not None:
        return max(1, requested)
    if input_bytes is not None and input_bytes() < MIN_DEFAULT_BYTES:
        return 1
    return max(1, min(usable_cpus(), MAX_DEFAULT_PROCESSES))


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity where the OS says, as in a container)."""
    if hasattr(os, "sched_getaffinity"):  # Linux; not macOS
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


#: How long a pool held for a job (``held()``) waits for the next pooled step before its workers
#: stop. The linkage's pooled steps follow one another within seconds (partitioning, comparing, then
#: scoring after the model's training: 3-4 s at a million records), while kept idle through the
#: steps after them, which hold the job's most memory, the workers held 1.15 GB (measured at 1M).
IDLE_SECONDS = 6.0


class _SharedPool:
    """One pool of spawned processes per process, held while any bundle uses it (within ``held()``,
    until it has been idle for ``IDLE_SECONDS``). The idle timer runs on a thread of its own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        self._listener: logging.handlers.QueueListener | None = None
        self._timer: threading.Timer | None = None
        self._processes = 0
        self._users = 0
        self.keep = False

    def acquire(self, processes: int) -> concurrent.futures.ProcessPoolExecutor:
        with self._lock:
            if self._executor is not None and self._processes != processes and not self._users:
                self._stop()  # a kept pool of another size
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._executor is None:
                self._start(processes)
            self._users += 1
            return self._executor

    def release(self, failed: bool = False) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0:
                return
            if failed or not self.keep:
                self._stop()
            else:
                self._timer = threading.Timer(IDLE_SECONDS, self._stop_if_idle)
                self._timer.daemon = True
                self._timer.start()

    def stop(self) -> None:
        with self._lock:
            self._stop()

    def _stop_if_idle(self) -> None:
        with self._lock:
            if not self._users:  # a step may have taken the pool while the timer waited for the lock
                self._stop()

    def _start(self, processes: int) -> None:
        # spawn, not fork: the runner's process has threads, and a forked child would share its memory
        context = multiprocessing.get_context("spawn")
        queue = context.Queue()
        root = logging.getLogger()
        self._listener = logging.handlers.QueueListener(queue, *root.handlers, respect_handler_level=True)
        self._listener.start()
        levels = {"": root.level} | {name: logger.level for name, logger in root.manager.loggerDict.items()
                                     if isinstance(logger, logging.Logger) and logger.level}
        self._executor = concurrent.futures.ProcessPoolExecutor(
            processes, mp_context=context, initializer=pool_worker.start, initargs=(queue, levels))
        self._processes = processes

    def _stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._listener.stop()  # after the workers: every record they sent is handled
        self._executor, self._listener, self._timer, self._processes, self._users = None, None, None, 0, 0


_POOL = _SharedPool()


@contextlib.contextmanager
def held():
    """Within it, a pool started by a pooled step is kept for the next ones while they follow
    within ``IDLE_SECONDS``, and stopped at its end."""
    _POOL.keep = True
    try:
        yield
    finally:
        _POOL.keep = False
        _POOL.stop()


class PooledDoFn(beam.DoFn):
    """A DoFn whose ``process`` does its work with ``self.run(function, args, window, timestamp)``:
    ``function`` a pure module-level function of picklable ``args``, its result turned into the
    DoFn's outputs (values or ``TaggedOutput``) by ``outputs(result, element)``, ``element`` what
    ``run`` was given (so that a worker need not send back what the DoFn already holds). With
    ``processes`` > 1 the work runs in a shared pool of that many processes.

        def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
            yield from self.run(work_on, (element, self._settings), window, timestamp)
    """

    def __init__(self, processes: int = 1):
        self._processes = processes

    def outputs(self, result, element):
        raise NotImplementedError

    def start_bundle(self) -> None:
        self._pool = None
        self._waiting: collections.deque = collections.deque()

    def run(self, function, args: tuple, window, timestamp, element=None):
        if self._processes <= 1:
            yield from self.outputs(function(*args), element)
            return
        if self._pool is None:
            self._pool = _POOL.acquire(self._processes)
        self._waiting.append((self._pool.submit(pool_worker.run_task, function, *args), element, window, timestamp))
        while len(self._waiting) > self._processes:  # the oldest first: outputs in the elements' order
            yield from self._emit(*self._waiting.popleft())

    def finish_bundle(self):
        finished = False
        try:
            while self._waiting:
                yield from self._emit(*self._waiting.popleft())
            finished = True
        finally:
            self._close(failed=not finished)

    def teardown(self) -> None:
        self._close(failed=True)  # a failed bundle's pool: its workers may still run its work

    def _close(self, failed: bool) -> None:
        if getattr(self, "_pool", None) is not None:
            self._waiting.clear()
            self._pool = None
            _POOL.release(failed)

    def _emit(self, future, element, window, timestamp):
        for output in self.outputs(future.result(), element):
            if isinstance(output, beam.pvalue.TaggedOutput):
                yield beam.pvalue.TaggedOutput(output.tag, WindowedValue(output.value, timestamp, (window,)))
            else:
                yield WindowedValue(output, timestamp, (window,))


class PooledMapFn(PooledDoFn):
    """``beam.Map(function, *args)`` in the pool: ``function(element, *args)``, one output per element."""

    def __init__(self, function, *args, processes: int = 1):
        super().__init__(processes)
        self._function = function
        self._args = args

    def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        yield from self.run(self._function, (element, *self._args), window, timestamp)

    def outputs(self, result, element):
        yield result
