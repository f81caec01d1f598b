"""Shared test set-up. Tests run offline; every pipeline test names its runner explicitly.

A whole run takes a while, so the suite shares a few, each made once per session through the command
line (once for all pytest-xdist workers): ``sample_run``, the committed sample feeds; ``judged_rerun``,
the same feeds again after a steward's judgements; ``spanish_multiprocess_run``, the same feeds in
Spanish on two worker processes. A test that only reads a run's outputs uses one of them; a test that
must run the pipeline itself uses the smallest input that makes its point. Such tests (and every test
of a shared run) carry the ``pipeline`` marker: ``make test-fast`` leaves them out.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# The commands read their language from the environment (pipelines/i18n.py); tests expect English
# unless they ask for Spanish (--lang es), whatever the developer's locale.
os.environ["LANGUAGE"] = "en"
# Offline, gcsfs would spend 15 s asking the GCE metadata server for credentials before falling back to
# anonymous access, at every gs:// file system a test makes (read by fsspec when it is first imported).
os.environ.setdefault("FSSPEC_GS_TOKEN", "anon")

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_FEEDS = ROOT / "sample_feeds"
# Beam 2.77's DirectRunner tries to download Prism first; the in-process runner is pinned instead.
TEST_RUNNER = "FnApiRunner"


SHARED_RUNS = {"sample_run", "judged_rerun", "spanish_multiprocess_run"}  # the session's runs, below


UNITS = "module-units.json"  # the modules make test hands out whole: written by its workers, read by the scheduler


def pytest_collection_modifyitems(config, items):
    # make test (pytest-xdist) hands the workers one unit at a time, in this order: the modules that run
    # the pipeline themselves first, then those reading the shared runs, then the unit tests, so that the
    # workers start on the longest work and do not both wait for the first shared run; in each kind the
    # property-based tests first (the longest of the rest). The units: pytest_collection_finish.
    modules: dict[str, tuple[bool, bool]] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        shared = bool(SHARED_RUNS & set(getattr(item, "fixturenames", ())))
        if shared:  # a test of a shared run is a pipeline test whether or not its module says so
            item.add_marker(pytest.mark.pipeline)
        pipeline, reads_shared = modules.get(module, (False, False))
        modules[module] = (pipeline or item.get_closest_marker("pipeline") is not None, reads_shared or shared)

    def order(item):
        pipeline, reads_shared = modules[item.nodeid.split("::")[0]]
        property_based = getattr(getattr(item, "obj", None), "is_hypothesis_test", False)  # many examples each
        return not pipeline, reads_shared, not property_based

    items.sort(key=order)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's worker reports its collection to the scheduler
def pytest_collection_finish(session):
    # The garbage collector took 8% of make test-fast's CPU, mostly in full passes over what the tests had
    # imported: what collection made lives to the end and leaves its passes, and a full pass comes a tenth
    # as often (young objects are collected as before).
    gc.freeze()
    gc.set_threshold(*gc.get_threshold()[:2], 100)
    # A module whose selected tests use a module-scoped fixture is one unit (its fixture is made once); any
    # other test is a unit of its own, so that the two workers finish together (pytest_xdist_make_scheduler).
    # After -m's deselection: make test-fast does not hand out a module whole for a fixture it never makes.
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    whole = {item.nodeid.split("::")[0] for item in session.items
             if any(d.scope in ("module", "class", "package")
                    for defs in getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}).values()
                    for d in defs)}
    # the workers' temporary folders are in the scheduler's
    (Path(session.config.option.basetemp).parent / UNITS).write_text(json.dumps(sorted(whole)), encoding="utf-8")


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadscope`` with this suite's units (above) instead of whole modules. (pytest-xdist's
    own ``loadgroup`` cannot group under pytest 9: the group it appends to a test's id is lost.)"""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleOrTest(LoadScopeScheduling):
        whole: set[str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.whole is None:  # called once the workers have collected
                self.whole = set(json.loads((config._tmp_path_factory.getbasetemp() / UNITS).read_text("utf-8")))
            module = nodeid.split("::")[0]
            return module if module in self.whole else nodeid

    return ModuleOrTest(config, log)


@pytest.fixture
def beam_args():
    return [f"--runner={TEST_RUNNER}"]


@dataclass(frozen=True)
class SampleRun:
    """The shared run: where it is, its manifest, and what the command printed."""

    out: Path
    run_id: str
    run_dir: str
    manifest: dict
    logs: str  # stdout + stderr of `concilia run --verbose` (tests/test_pii_scan.py scans them)
    stdout: str  # the run's printed summary
    judged: dict | None = None  # judged_rerun: what the steward judged before the run


@contextlib.contextmanager
def made_once(tmp_path_factory, name: str):
    """A folder made once per test session: ``with made_once(f, "x") as (folder, make):`` holds an
    exclusive lock; ``make`` is true for the first caller, who fills ``folder``. With pytest-xdist
    (``make test`` runs two workers) the workers share the folder: the first makes it, the others wait."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's root, shared by its workers
    folder, done = base / name, base / f"{name}.done"
    with open(base / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        make = not done.exists()
        yield folder, make
        if make:
            done.write_text("")


def shared_run(tmp_path_factory, name: str, *options: str) -> SampleRun:
    """``concilia run`` of the committed sample feeds with the demo key and ``options``, once per
    session (``made_once``)."""
    with made_once(tmp_path_factory, name) as (out, make):
        printed = out.parent / f"{name}.stdout", out.parent / f"{name}.stderr"
        if make:
            proc = subprocess.run(
                [sys.executable, "-m", "pipelines", "run", "--feeds", str(SAMPLE_FEEDS), "--out", str(out),
                 f"--runner={TEST_RUNNER}", "--demo-key", *options], capture_output=True, text=True, cwd=ROOT)
            assert proc.returncode == 0, proc.stderr[-2000:]
            for path, text in zip(printed, (proc.stdout, proc.stderr)):
                path.write_text(text, encoding="utf-8")
    run_id = json.loads((out / "current.json").read_text(encoding="utf-8"))["run_id"]
    run_dir = out / "runs" / run_id
    stdout, stderr = (path.read_text(encoding="utf-8") for path in printed)
    return SampleRun(out=out, run_id=run_id, run_dir=str(run_dir),
                     manifest=json.loads((run_dir / "manifest.json").read_text(encoding="utf-8")),
                     logs=stdout + stderr, stdout=stdout)


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> SampleRun:
    """One real, published run of the committed sample feeds (demo key, Data Docs, ``--verbose``), made
    the way an operator makes one, shared by every test that only reads a standard run (and by the
    session's workers). Tests that change a run work on a copy of ``out``. Its heaviest steps run in
    two local processes (``--local_processes=2``, the default of a 2-CPU machine for large inputs;
    the sample feeds are under the default's size), so that every test reading it reads the pooled
    outputs, and tests/test_multiprocessing.py compares them with a run without a pool."""
    return shared_run(tmp_path_factory, "sample-run", "--data-docs", "--verbose", "--", "--local_processes=2")


@pytest.fixture(scope="session")
def spanish_multiprocess_run(tmp_path_factory) -> SampleRun:
    """The same feeds again, in Spanish (``--lang es``) on two worker processes of Beam's (and so
    without a local pool): one run serves both tests/test_i18n.py (a Spanish run) and
    tests/test_multiprocessing.py (the same outputs as the in-process ``sample_run`` with its pool;
    the language changes only the report and the printed summary)."""
    return shared_run(tmp_path_factory, "spanish-multiprocess-run", "--lang", "es", "--",
                      "--direct_num_workers=2", "--direct_running_mode=multi_processing")


@pytest.fixture(scope="session")
def judged_rerun(sample_run, tmp_path_factory) -> SampleRun:
    """A second published run into a copy of ``sample_run``'s output root, after a steward judged two of
    its pairs (tests/test_steward_loop.py): the steward's loop, and two runs for the Delta tables
    (tests/test_delta.py)."""
    with made_once(tmp_path_factory, "judged-rerun") as (out, make):
        judged = out.parent / "judged-rerun.json"
        if make:
            from tests.test_steward_loop import judge_and_run_again

            shutil.copytree(sample_run.out, out)
            judged.write_text(json.dumps(judge_and_run_again(str(out), sample_run)), encoding="utf-8")
    facts = json.loads(judged.read_text(encoding="utf-8"))
    run_dir = out / "runs" / facts["second_run_id"]
    return SampleRun(out=out, run_id=facts["second_run_id"], run_dir=str(run_dir),
                     manifest=json.loads((run_dir / "manifest.json").read_text(encoding="utf-8")),
                     logs="", stdout="", judged=facts)
