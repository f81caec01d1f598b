"""The in-process runner's heaviest steps done by a pool of local processes (pipelines.core.local_pool):
the same outputs, tags and order as inline, a failing worker fails the step, and only the in-process
runner uses a pool."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.core import local_pool
from pipelines.core.local_pool import PooledDoFn


class _DivideFn(PooledDoFn):
    """x -> x // 3 (main), x % 3 (tagged): builtins, so a spawned worker can import the work."""

    def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        yield from self.run(divmod, (element, 3), window, timestamp)

    def outputs(self, result, element):
        quotient, remainder = result
        yield quotient
        yield beam.pvalue.TaggedOutput("remainder", remainder)


def _bundle(fn: PooledDoFn, elements) -> list[tuple]:
    """One bundle through the DoFn as a runner calls it: (tag, value, window) per output, in order."""
    window = GlobalWindow()
    fn.setup()
    fn.start_bundle()
    outputs = [o for e in elements for o in fn.process(e, window=window, timestamp=MIN_TIMESTAMP)]
    outputs += list(fn.finish_bundle() or [])
    fn.teardown()
    seen = []
    for output in outputs:
        tag, value = (output.tag, output.value) if isinstance(output, beam.pvalue.TaggedOutput) else (None, output)
        if isinstance(value, WindowedValue):  # finished in a worker: emitted with its element's window
            assert value.timestamp == MIN_TIMESTAMP
            value, windows = value.value, value.windows
        else:
            windows = (window,)
        seen.append((tag, value, tuple(windows)))
    return seen


def test_pooled_outputs_are_the_inline_outputs_in_the_same_order():
    values = list(range(40))
    inline = _bundle(_DivideFn(1), values)
    assert [v for tag, v, _ in inline if tag is None] == [v // 3 for v in values]
    assert [v for tag, v, _ in inline if tag == "remainder"] == [v % 3 for v in values]
    assert _bundle(_DivideFn(2), values) == inline


@pytest.mark.pipeline
def test_a_pooled_step_in_a_pipeline_gives_the_inline_pcollections():
    with beam.Pipeline("FnApiRunner") as p:
        out = p | beam.Create(list(range(40))) | beam.ParDo(_DivideFn(2)).with_outputs("remainder", main="main")
        assert_that(out.main, equal_to([v // 3 for v in range(40)]), label="Main")
        assert_that(out.remainder, equal_to([v % 3 for v in range(40)]), label="Remainder")


class _ParseFn(PooledDoFn):
    def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        yield from self.run(int, (element,), window, timestamp)

    def outputs(self, result, element):
        yield result


@pytest.mark.pipeline
def test_a_failing_worker_fails_the_step_with_its_error():
    with pytest.raises(Exception, match="invalid literal for int"):
        with beam.Pipeline("FnApiRunner") as p:
            _ = p | beam.Create(["1", "two", "3"]) | beam.ParDo(_ParseFn(2))
    # the pool was stopped with the bundle: the next pipeline starts its own
    with beam.Pipeline("FnApiRunner") as p:
        assert_that(p | beam.Create(["1", "2"]) | beam.ParDo(_ParseFn(2)), equal_to([1, 2]))


@pytest.mark.parametrize("args, expected", [
    (["--runner=FnApiRunner", "--local_processes=3"], 3),
    (["--runner=DirectRunner", "--local_processes=0"], 1),
    (["--runner=DataflowRunner", "--local_processes=3"], 1),  # its workers are the parallelism
    (["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--local_processes=3"], 1),
])
def test_only_the_in_process_runner_uses_a_pool(args, expected):
    assert local_pool.local_processes(PipelineOptions(args)) == expected


def test_by_default_only_for_large_inputs():
    options = PipelineOptions(["--runner=FnApiRunner"])
    assert local_pool.local_processes(options, lambda: local_pool.MIN_DEFAULT_BYTES - 1) == 1
    assert local_pool.local_processes(options, lambda: local_pool.MIN_DEFAULT_BYTES) == local_pool.local_processes(options)
    # an operator's --local_processes holds whatever the size; another runner never asks it
    assert local_pool.local_processes(PipelineOptions(["--runner=FnApiRunner", "--local_processes=2"]), lambda: 0) == 2
    assert local_pool.local_processes(PipelineOptions(["--runner=DataflowRunner"]), lambda: 1 / 0) == 1


def test_by_default_the_cpus_this_process_may_use_at_most_four(monkeypatch):
    monkeypatch.setattr(local_pool.os, "sched_getaffinity", lambda pid: set(range(16)))
    assert local_pool.local_processes(PipelineOptions(["--runner=FnApiRunner"])) == local_pool.MAX_DEFAULT_PROCESSES
    monkeypatch.setattr(local_pool.os, "sched_getaffinity", lambda pid: {0})
    assert local_pool.local_processes(PipelineOptions(["--runner=FnApiRunner"])) == 1


def _warn(n: int) -> int:
    logging.getLogger("pipelines.read").warning("file %d rejected", n)
    return n


class _WarnFn(PooledDoFn):
    def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        yield from self.run(_warn, (element,), window, timestamp)

    def outputs(self, result, element):
        yield result


def test_a_workers_log_records_reach_the_runs_handlers(caplog):
    caplog.set_level(logging.WARNING)
    assert [v for _, v, _ in _bundle(_WarnFn(2), [1, 2, 3])] == [1, 2, 3]
    assert sorted(r.getMessage() for r in caplog.records if r.name == "pipelines.read") == [
        "file 1 rejected", "file 2 rejected", "file 3 rejected"]
    assert {r.process for r in caplog.records if r.name == "pipelines.read"} - {os.getpid()}  # from the workers


def test_without_an_affinity_call_the_cpu_count(monkeypatch):
    monkeypatch.delattr(local_pool.os, "sched_getaffinity", raising=False)  # macOS
    monkeypatch.setattr(local_pool.os, "cpu_count", lambda: 3)
    assert local_pool.local_processes(PipelineOptions(["--runner=FnApiRunner"])) == 3


def _pid(_) -> int:
    return os.getpid()


class _PidFn(PooledDoFn):
    def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        yield from self.run(_pid, (element,), window, timestamp)

    def outputs(self, result, element):
        yield result


def _workers(values) -> set[int]:
    return {v for _, v, _ in _bundle(_PidFn(2), values)}


def test_a_held_pool_serves_the_next_steps_until_it_is_idle(monkeypatch):
    monkeypatch.setattr(local_pool, "IDLE_SECONDS", 0.5)
    assert not _workers(range(4)) & _workers(range(4))  # not held: each bundle starts its own
    with local_pool.held():
        first = _workers(range(4))
        assert _workers(range(4)) <= first  # the next step, at once: the same workers
        assert local_pool._POOL._executor is not None
        time.sleep(2)  # idle past IDLE_SECONDS: stopped, and the next step starts new workers
        assert local_pool._POOL._executor is None
        assert not _workers(range(4)) & first
    assert local_pool._POOL._executor is None  # and none is left after held()


def test_a_failed_step_stops_a_held_pool():
    with local_pool.held():
        with pytest.raises(Exception, match="invalid literal for int"):
            _bundle(_ParseFn(2), ["1", "two"])
        assert local_pool._POOL._executor is None


def test_a_task_hands_freed_memory_back_and_runs_without_beam():
    from pipelines.core import pool_worker

    assert pool_worker.run_task(divmod, 7, 3) == (2, 1)
    code = "import sys, pipelines.core.pool_worker, pipelines.link.compare; print('apache_beam' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
