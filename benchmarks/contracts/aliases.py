"""Offender linkage with the alias comparison and blocking rule against the same settings without them.

    python benchmarks/contracts/aliases.py [--feeds sample_feeds] [--out benchmarks/contracts/aliases.json]

Harmonises the offender feeds of a generated feeds root in memory (no Beam), links them with the
shipped settings and with the ``aliases`` comparison and ``alias_names`` rule removed, clusters, and
scores both against the generator's truth: pairwise precision, recall and F1 of the clusters, the
recall of the pairs whose police record holds a false name (persons with a two-word alias in
``_truth/population.csv``), and the linker's time (best of two runs, in both orders) as a ratio to
its peer in the same run.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from collections import defaultdict
from pathlib import Path

from pipelines.link.linker import load_settings
from pipelines.link.prepare import comparison_table

from common import best_of_both_orders, harmonised, pairs_of, score, truth  # noqa: E402  (run as a script, beside it)


def false_named(root: Path) -> set[str]:
    with open(root / "_truth" / "population.csv", encoding="utf-8", newline="") as fh:
        return {r["person_key"] for r in csv.DictReader(fh) if any(" " in a for a in r["aliases"].split("|"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", default="sample_feeds")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    root = Path(args.feeds)
    key, liars = truth(root), false_named(root)
    shipped = load_settings()
    without = dataclasses.replace(
        shipped, comparisons=tuple(c for c in shipped.comparisons if c.type != "aliases"),
        blocking_rules=tuple(r for r in shipped.blocking_rules if r.tokens != "alias_keys"))
    records = harmonised(root)["offender"]
    comp = comparison_table(records)
    actual = defaultdict(list)
    for uid in records.column("record_uid").to_pylist():
        if key[uid] in liars:
            actual[key[uid]].append(uid)
    liar_pairs = pairs_of(actual)
    report = {"feeds": str(root), "records": records.num_rows, "false_name_pairs": len(liar_pairs)}

    def evaluate(membership):
        found = dict(zip(membership.column("record_uid").to_pylist(), membership.column("person_id").to_pylist()))
        linked = sum(1 for a, b in liar_pairs if found.get(a, a) == found.get(b, b))
        return score(records, membership, key) | {"false_name_recall": round(linked / max(len(liar_pairs), 1), 4)}

    report |= best_of_both_orders(comp, "offender", [("aliases", shipped), ("without", without)], evaluate)
    report["time_ratio"] = round(report["aliases"]["seconds"] / report["without"]["seconds"], 2)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
