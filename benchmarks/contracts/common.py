"""What the contract benchmarks share: feeds harmonised in memory, the generator's truth, scores and timing."""
from __future__ import annotations

import csv
import itertools
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from pipelines.contracts import load_contracts
from pipelines.harmonise.engine import harmonise
from pipelines.link.cluster import cluster
from pipelines.link.linker import keep_above, link_in_memory
from pipelines.read import read_delivery


def harmonised(root: Path) -> dict[str, pa.Table]:
    tables = defaultdict(list)
    for contract in load_contracts():
        for path in sorted(root.glob(contract.files)):
            for chunk in read_delivery(contract, path.read_bytes(), str(path.relative_to(root))).chunks:
                tables[contract.role].append(harmonise(contract, chunk).records)
    return {role: pa.concat_tables(t) for role, t in tables.items()}


def truth(root: Path) -> dict[str, str]:
    with open(root / "_truth" / "records.csv", encoding="utf-8", newline="") as fh:
        return {f"{r['feed_id']}:{r['source_record_id']}": r["person_key"] for r in csv.DictReader(fh)
                if not r["planted_invalid_reason"]}


def pairs_of(groups: dict[str, list[str]]) -> set[tuple[str, str]]:
    return {tuple(sorted(p)) for members in groups.values() for p in itertools.combinations(members, 2)}


def score(records: pa.Table, membership: pa.Table, key: dict[str, str]) -> dict:
    uids = records.column("record_uid").to_pylist()
    found = dict(zip(membership.column("record_uid").to_pylist(), membership.column("person_id").to_pylist()))
    predicted, actual = defaultdict(list), defaultdict(list)
    for uid in uids:
        predicted[found.get(uid, uid)].append(uid)
        actual[key[uid]].append(uid)
    p, a = pairs_of(predicted), pairs_of(actual)
    tp = len(p & a)
    precision, recall = tp / max(len(p), 1), tp / max(len(a), 1)
    return {"precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(2 * precision * recall / max(precision + recall, 1e-12), 4), "true_pairs": len(a)}


def best_of_both_orders(comp: pa.Table, role: str, variants: list[tuple[str, dict]],
                        evaluate: Callable[[pa.Table], dict]) -> dict[str, dict]:
    """Link and cluster with each variant's settings, twice, in both orders (the first run warms caches);
    each variant's scores from ``evaluate(membership)`` and its best time in seconds."""
    results: dict[str, dict] = {}
    for order in (variants, variants[::-1]):
        for name, settings in order:
            started = time.perf_counter()
            linkage = link_in_memory(comp, settings)
            membership, _ = cluster(keep_above(linkage.pairs, settings.thresholds.match_probability),
                                    role, settings=settings)
            seconds = round(time.perf_counter() - started, 2)
            best = min(seconds, results.get(name, {}).get("seconds", seconds))
            results[name] = evaluate(membership) | {"seconds": best}
    return results
