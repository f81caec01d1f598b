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


#: The run's steps, as the stage names show them (first match wins): a fused stage that ends one
#: step and starts the next counts for the first.
STEPS = (
    ("read, harmonise, validate", ("Read/ParseFiles", "Harmonise/", "ValidateVictims", "ValidateOffenders")),
    ("link victims", ("LinkVictims",)),
    ("link offenders", ("LinkOffenders",)),
    ("persons, conflicts, checks", ("PersonsVictims", "PersonsOffenders", "AllPersons", "CountOverlap", "CountFunnel",
                                    "CrossFeedChecks", "ValidatePersons", "AllConflicts")),
    ("estimate (MSE)", ("EstimatePopulation", "UncertainPersons")),
    ("public release", ("PublicRelease",)),
)


def by_step(rows: list[dict]) -> list[dict]:
    """Seconds and memory per step of the run (the stages of each summed, the most RSS reached)."""
    out: dict[str, dict] = {}
    for r in rows:
        step = next((name for name, marks in STEPS if any(m in r["stage"] for m in marks)), "writes, summary, other")
        entry = out.setdefault(step, {"step": step, "seconds": 0.0, "rss_max_mb": 0, "stages": 0})
        entry["seconds"] = round(entry["seconds"] + r["seconds"], 1)
        entry["rss_max_mb"] = max(entry["rss_max_mb"], r["rss_max_mb"])
        entry["stages"] += 1
    order = [name for name, _ in STEPS] + ["writes, summary, other"]
    return sorted(out.values(), key=lambda e: order.index(e["step"]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("result")
    parser.add_argument("--top", type=int, default=0)
    parser.add_argument("--steps", action="store_true", help="per step of the run instead of per stage")
    args = parser.parse_args()
    with open(args.result) as f:
        result = json.load(f)
    rows = stages(result)
    if args.steps:
        for e in by_step(rows):
            print(f"{e['step']:<28} {e['seconds']:8.1f} s  max {e['rss_max_mb']:7d} MB  ({e['stages']} stages)")
        rows = []
    if args.top:
        rows = (sorted(rows, key=lambda r: -r["added_mb"])[:args.top]
                + sorted(rows, key=lambda r: -r["seconds"])[:args.top])
    for r in rows:
        print(f"{r['start_s']:8.1f} {r['seconds']:7.1f}s {r['rss_start_mb']:7d} -> {r['rss_max_mb']:7d} MB  {r['stage'][:150]}")
    print(f"wall {result['wall_s']} s, peak {result['peak_tree_rss_mb']} MB at {result['peak_at_s']} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
