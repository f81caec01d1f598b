"""Candidate pairs per blocking rule on the prepared generated sets, with and without Concilia's
bounded blocks: how pair counts grow from 100k to 1M records (no pairs are materialised).

    .venv/bin/python benchmarks/linkage/blocking_growth.py [generated_100000 generated_1000000]

Counts are per rule, summed over rules and roles, before de-duplication across rules (an upper
bound of the scored pairs). Needs the datasets prepared by run_linkage_bench.py.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parents[2]))

import datasets  # noqa: E402


def _pairs(counts: np.ndarray) -> int:
    return int((counts * (counts - 1) // 2).sum())


def rule_pairs(name: str) -> dict:
    from pipelines.link import blocking
    from pipelines.link.linker import load_settings, slim

    settings = load_settings()
    folder = datasets.LINKAGE_WORK / name
    meta = datasets.load_meta(folder)
    out = {"records": meta["records"], "bounded": {}, "unbounded": {}}
    for group in meta["groups"]:
        comp = slim(pq.read_table(folder / f"{group}.comp.parquet"), settings)
        for i, rule in enumerate(settings["blocking_rules"]):
            key = comp.column(blocking.key_column(i)).combine_chunks()
            sub = comp.filter(pc.is_valid(key))
            sub = sub.append_column(blocking.KEY, sub.column(blocking.key_column(i)))
            raw = pc.value_counts(sub.column(blocking.KEY).combine_chunks()).field("counts").to_numpy()
            stats = {"giant_blocks": 0, "records_in_giant_blocks": 0, "blocks_chunked": 0}
            bounded = pc.value_counts(blocking._bounded_keys(sub, settings, stats)).field("counts").to_numpy()
            for kind, counts in (("unbounded", raw), ("bounded", bounded)):
                out[kind][rule["name"]] = out[kind].get(rule["name"], 0) + _pairs(counts.astype(np.int64))
    for kind in ("bounded", "unbounded"):
        out[f"{kind}_total"] = sum(out[kind].values())
    return out


def main(argv: list[str]) -> int:
    names = argv or ["generated_100000", "generated_1000000"]
    result = {n: rule_pairs(n) for n in names}
    if len(names) >= 2:
        a, b = result[names[0]], result[names[-1]]
        scale = math.log(b["records"] / a["records"])
        result["exponents"] = {k: round(math.log(b[f"{k}_total"] / a[f"{k}_total"]) / scale, 3)
                               for k in ("bounded", "unbounded")}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
