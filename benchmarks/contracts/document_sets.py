"""Linkage with the document-set comparison against the single-document one, on generated feeds.

    python benchmarks/contracts/document_sets.py [--feeds sample_feeds] [--out benchmarks/contracts/document_sets.json]

Harmonises every feed of a generated feeds root in memory (no Beam), links each role with the shipped
settings (``document: document_set``) and with the same settings but ``document: document`` (the
single-number comparison it replaced), clusters, and scores both against the generator's truth
(``_truth/records.csv``): pairwise precision, recall and F1 of the clusters, and the time of the
linker (best of two runs, in both orders) as a ratio to its peer in the same run (the machine is shared).
"""
from __future__ import annotations

import argparse
import copy
import csv
import itertools
import json
import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa

from pipelines.contracts import load_contracts
from pipelines.harmonise.engine import harmonise
from pipelines.link.cluster import cluster
from pipelines.link.linker import keep_above, link_in_memory, load_settings
from pipelines.link.prepare import comparison_table
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", default="sample_feeds")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    root = Path(args.feeds)
    key = truth(root)
    shipped = load_settings()
    single = copy.deepcopy(shipped)
    for c in single["comparisons"]:
        if c["type"] == "document_set":
            c["type"] = "document"
    report = {"feeds": str(root)}
    for role, records in sorted(harmonised(root).items()):
        comp = comparison_table(records)
        report[role] = {"records": records.num_rows}
        variants = [("document_set", shipped), ("document", single)]
        for order in (variants, variants[::-1]):  # both orders, best time each: the first run warms caches
            for name, settings in order:
                started = time.perf_counter()
                linkage = link_in_memory(comp, settings)
                membership, _ = cluster(keep_above(linkage.pairs, settings["thresholds"]["match_probability"]),
                                        role, settings=settings)
                seconds = round(time.perf_counter() - started, 2)
                best = min(seconds, report[role].get(name, {}).get("seconds", seconds))
                report[role][name] = score(records, membership, key) | {"seconds": best}
        report[role]["time_ratio"] = round(report[role]["document_set"]["seconds"]
                                           / report[role]["document"]["seconds"], 2)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
