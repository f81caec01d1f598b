"""Shared test set-up. Tests run offline; every pipeline test names its runner explicitly.

A whole run takes a while, so the suite has one: ``sample_run``, the committed sample feeds run once
per session through the command line. A test that only reads a run's outputs uses it; a test that
must run the pipeline itself uses the smallest input that makes its point. Such tests (and every test
of the shared run) carry the ``pipeline`` marker: ``make test-fast`` leaves them out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# The commands read their language from the environment (pipelines/i18n.py); tests expect English
# unless they ask for Spanish (--lang es), whatever the developer's locale.
os.environ["LANGUAGE"] = "en"

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_FEEDS = ROOT / "sample_feeds"
# Beam 2.77's DirectRunner tries to download Prism first; the in-process runner is pinned instead.
TEST_RUNNER = "FnApiRunner"


def pytest_collection_modifyitems(items):
    for item in items:  # a test of the shared run is a pipeline test whether or not its module says so
        if "sample_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.pipeline)


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


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory) -> SampleRun:
    """One real, published run of the committed sample feeds (demo key, Data Docs, ``--verbose``), made
    the way an operator makes one, shared by every test that only reads a standard run. Tests that
    change a run work on a copy of ``out``."""
    out = tmp_path_factory.mktemp("sample-run")
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines", "run", "--feeds", str(SAMPLE_FEEDS), "--out", str(out),
         f"--runner={TEST_RUNNER}", "--demo-key", "--data-docs", "--verbose"],
        capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    run_id = json.loads((out / "current.json").read_text(encoding="utf-8"))["run_id"]
    run_dir = out / "runs" / run_id
    return SampleRun(out=out, run_id=run_id, run_dir=str(run_dir),
                     manifest=json.loads((run_dir / "manifest.json").read_text(encoding="utf-8")),
                     logs=proc.stdout + proc.stderr)
