"""Feeds are read through fsspec: a feeds root at a memory:// URL works like a local folder."""

from __future__ import annotations

import fsspec
import pytest

from pipelines.pipeline import run
from pipelines.privacy import demo_key
from tests.conftest import SAMPLE_FEEDS, TEST_RUNNER

pytestmark = pytest.mark.pipeline  # every test here runs the pipeline


def test_feeds_from_a_memory_url(tmp_path):
    fs = fsspec.filesystem("memory")
    root = "memory://concilia-test-feeds"
    for path in ("mimp/ninos_victimas_2018.csv", "sunafil/hallazgos_2018.csv"):
        with fs.open(f"{root}/{path}", "wb") as fh:
            fh.write((SAMPLE_FEEDS / path).read_bytes())
    try:
        result = run(root, str(tmp_path / "out"), [f"--runner={TEST_RUNNER}"], key=demo_key(), allow_missing=["*"])
    finally:
        fs.rm("/concilia-test-feeds", recursive=True)
    feeds = result.manifest["feeds"]
    assert feeds["mimp_child_victims"]["rows_harmonised"] == 128
    assert feeds["sunafil_findings"]["rows_harmonised"] == 8
    assert feeds["mimp_child_victims"]["files"][0]["source_file"] == "mimp/ninos_victimas_2018.csv"
