"""Candidate pairs per blocking rule on the prepared generated sets: Concilia's (bounded blocks,
each pair once) and the same rules' whole blocks (Splink's way): how pair counts grow from 100k to
1M records (pairs are counted as row indices, never gathered).

    .venv/bin/python benchmarks/linkage/blocking_growth.py [generated_100000 generated_1000000]

"unbounded" counts are per rule before de-duplication across rules (an upper bound of what whole
blocks score). Needs the datasets prepared by run_linkage_bench.py.
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
    import pyarrow as pa

    from pipelines.link import blocking
    from pipelines.link.linker import load_settings, slim

    settings = load_settings()
    rules = settings.blocking_rules
    folder = datasets.LINKAGE_WORK / name
    meta = datasets.load_meta(folder)
    out = {"records": meta["records"], "bounded": {}, "unbounded": {}}
    for group in meta["groups"]:
        comp = slim(pq.read_table(folder / f"{group}.comp.parquet"), settings)
        for i, rule in enumerate(rules):
            counts = pc.value_counts(comp.column(blocking.key_column(i)).drop_null()).field("counts").to_numpy()
            out["unbounded"][rule.name] = out["unbounded"].get(rule.name, 0) + _pairs(counts.astype(np.int64))
        # the linker's own candidate pairs (indices only), each pair once, by the rule that scores it
        parts = [t for _, t in blocking.partition_by_block(comp, settings, 1)]
        found = blocking.pairs_in_partition(pa.concat_tables(parts), settings).stats["pairs_by_rule"]
        for rule, n in found.items():
            out["bounded"][rule] = out["bounded"].get(rule, 0) + n
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
