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
import dataclasses
import json
from pathlib import Path

from pipelines.link.linker import load_settings
from pipelines.link.prepare import comparison_table

from common import best_of_both_orders, harmonised, score, truth  # noqa: E402  (run as a script, beside it)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", default="sample_feeds")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    root = Path(args.feeds)
    key = truth(root)
    shipped = load_settings()
    single = dataclasses.replace(shipped, comparisons=tuple(
        dataclasses.replace(c, type="document", for_life_types=None) if c.type == "document_set" else c
        for c in shipped.comparisons))
    report = {"feeds": str(root)}
    for role, records in sorted(harmonised(root).items()):
        comp = comparison_table(records)
        report[role] = {"records": records.num_rows}
        report[role] |= best_of_both_orders(comp, role, [("document_set", shipped), ("document", single)],
                                            lambda membership: score(records, membership, key))
        report[role]["time_ratio"] = round(report[role]["document_set"]["seconds"]
                                           / report[role]["document"]["seconds"], 2)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
