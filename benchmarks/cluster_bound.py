"""Clustering bound: time and peak memory of pipelines.link.cluster.cluster on N accepted edges.

    python benchmarks/cluster_bound.py N

The edges join N random records pairwise (average degree 2, so a giant component forms: the
worst case for the union step). docs/linkage.md quotes N = 10,000,000.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
import pyarrow as pa

from pipelines.link.cluster import cluster


def random_edges(n_edges: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    uids = pa.array([f"f:{i:09d}" for i in range(n_edges)])
    columns = {
        "left_uid": uids.take(pa.array(rng.integers(0, n_edges, n_edges))),
        "right_uid": uids.take(pa.array(rng.integers(0, n_edges, n_edges))),
        "rule": pa.array(["document"] * n_edges),
        "match_probability": pa.array(rng.random(n_edges)),
    }
    for side in ("left", "right"):
        columns |= {f"{side}_document_type": pa.nulls(n_edges, pa.string()),
                    f"{side}_document_core": pa.nulls(n_edges, pa.string()),
                    f"{side}_document_valid": pa.nulls(n_edges, pa.bool_()),
                    f"{side}_birth_date": pa.nulls(n_edges, pa.date32())}
    return pa.table(columns)


def main() -> None:
    n_edges = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    edges = random_edges(n_edges)
    start = time.perf_counter()
    membership, _ = cluster(edges, "victim")
    print(json.dumps({"edges": n_edges, "cluster_s": round(time.perf_counter() - start, 1),
                      "records_linked": membership.num_rows,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))


if __name__ == "__main__":
    main()
