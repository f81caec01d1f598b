"""Per-stage time and memory from a ``tree_probe.py`` result of a ``beam_stages.py`` run.

Each Beam stage runs from its "beam stage:" line to the next one (the in-process runner runs one
bundle at a time); for each, its seconds, the tree's RSS when it started and the most it reached
while it ran. ``--top N`` keeps the N stages that added the most memory, then the N longest.
"""

from __future__ import annotations

import argparse
import json
import sys


def stages(result: dict) -> list[dict]:
    marks = [(t, line.split("beam stage: ", 1)[1]) for t, line in result["stderr"] if "beam stage: " in line]
    samples = result["samples"]
    end = result["wall_s"]
    rows = []
    for i, (start, name) in enumerate(marks):
        stop = marks[i + 1][0] if i + 1 < len(marks) else end
        during = [mb for t, mb, _ in samples if start <= t <= stop] or [0]
        before = [mb for t, mb, _ in samples if t <= start] or [0]
        rows.append({"stage": name, "start_s": start, "seconds": round(stop - start, 1), "rss_start_mb": before[-1],
                     "rss_max_mb": max(during), "added_mb": max(during) - before[-1]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result")
    parser.add_argument("--top", type=int, default=0)
    args = parser.parse_args()
    with open(args.result) as f:
        result = json.load(f)
    rows = stages(result)
    if args.top:
        rows = (sorted(rows, key=lambda r: -r["added_mb"])[:args.top]
                + sorted(rows, key=lambda r: -r["seconds"])[:args.top])
    for r in rows:
        print(f"{r['start_s']:8.1f} {r['seconds']:7.1f}s {r['rss_start_mb']:7d} -> {r['rss_max_mb']:7d} MB  {r['stage'][:150]}")
    print(f"wall {result['wall_s']} s, peak {result['peak_tree_rss_mb']} MB at {result['peak_at_s']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
