"""Shared test set-up. Tests run offline; every pipeline test names its runner explicitly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The commands read their language from the environment (pipelines/i18n.py); tests expect English
# unless they ask for Spanish (--lang es), whatever the developer's locale.
os.environ["LANGUAGE"] = "en"

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_FEEDS = ROOT / "sample_feeds"
# Beam 2.77's DirectRunner tries to download Prism first; the in-process runner is pinned instead.
TEST_RUNNER = "FnApiRunner"


@pytest.fixture
def beam_args():
    return [f"--runner={TEST_RUNNER}"]


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """One real, published run of the committed sample feeds (demo key), shared by every test that
    only reads a standard run: a run takes a while. Tests that change a run work on a copy."""
    from pipelines.pipeline import run
    from pipelines.privacy import demo_key

    out = tmp_path_factory.mktemp("sample-run")
    return run(str(SAMPLE_FEEDS), str(out), [f"--runner={TEST_RUNNER}"], key=demo_key(), data_docs=True)
