"""Shared test set-up. Tests run offline; every pipeline test names its runner explicitly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_FEEDS = ROOT / "sample_feeds"
# Beam 2.77's DirectRunner tries to download Prism first; the in-process runner is pinned instead.
TEST_RUNNER = "FnApiRunner"

os.environ.setdefault("CONCILIA_LOG_FORMAT", "text")


@pytest.fixture
def beam_args():
    return [f"--runner={TEST_RUNNER}"]
