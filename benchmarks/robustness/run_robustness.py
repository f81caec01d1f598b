"""`make bench-robustness`: Concilia's linker and Splink 5 on corrupted copies of two clean populations.

For each population (``sample``: the sample generator's own people; ``febrl``: FEBRL4's originals
in the Peruvian shape) and each scenario (clean; one corruption class at a time at 20 %; all
classes at a normal and a heavy level; families), the records are linked by both tools with the
same settings for every scenario, and scored against the truth: candidate pairs, the recall
ceiling (true pairs that blocking finds), pairwise and cluster precision/recall/F1. Results go to
benchmarks/results/robustness.json and the table in docs/linkage-robustness.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "linkage"))
sys.path.insert(2, str(HERE.parents[1]))

import pyarrow.parquet as pq  # noqa: E402

import datasets  # noqa: E402
import metrics  # noqa: E402
import scenarios  # noqa: E402

RESULTS = datasets.ROOT / "benchmarks" / "results" / "robustness.json"
WORK = datasets.WORK / "robustness"
DOC = datasets.ROOT / "docs" / "linkage-robustness.md"
SETTINGS = "schemas/linkage/settings.yaml"


def prepare(population: str, scenario: str, persons: int) -> tuple[Path, dict]:
    """The scenario's records as the linkage benchmark's prepared folder (one group, "all")."""
    from pipelines.link.prepare import comparison_table

    records, truth, changed = scenarios.build(population, scenario, persons)
    folder = WORK / population / scenario.replace(":", "_")
    folder.mkdir(parents=True, exist_ok=True)
    comp = comparison_table(records)
    pq.write_table(comp, folder / "all.comp.parquet")
    pq.write_table(datasets.splink_input(comp), folder / "all.splink.parquet")
    pq.write_table(truth, folder / "all.truth.parquet")
    meta = {"scope": "dedupe", "groups": ["all"], "settings": SETTINGS, "splink": "robust",
            "records": records.num_rows}
    return folder, meta | changed


def run_tool(tool: str, folder: Path, meta: dict) -> dict:
    import tools

    steps = tools.TOOLS[tool](folder, "all", meta, folder / "runs" / tool)
    next(steps)
    start = time.perf_counter()
    run = next(steps)
    wall = time.perf_counter() - start
    for run in steps:
        pass
    truth = pq.read_table(folder / "all.truth.parquet")
    true = metrics.true_pairs(truth, "dedupe")
    if run.candidates is not None:
        _, found = metrics.pair_counts_indexed(*run.candidates, truth, "dedupe")
    else:
        found = metrics.blocked_true_pairs(run.splink_input, run.splink_uid, run.splink_rules, true)
    pairwise = metrics.pairwise(run.edges, truth, "dedupe")
    return {"wall_s": round(wall, 2), "candidate_pairs": run.candidate_pairs,
            "recall_ceiling": round(found / pairwise["true_pairs"], 4) if pairwise["true_pairs"] else 1.0,
            "pairwise": pairwise, "clusters": metrics.clusters(run.clusters, truth, "dedupe")}


def table(report: dict) -> str:
    """The docs table: per population and scenario, both tools side by side."""
    lines = ["| population | scenario | records | Concilia pairs | ceiling | pairwise P / R / F1 | cluster F1 "
             "| Splink pairs | ceiling | pairwise P / R / F1 | cluster F1 |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---|---:|"]
    for population, by_scenario in report["populations"].items():
        for scenario, entry in by_scenario.items():
            cells = [population, scenario, str(entry["records"])]
            for tool in ("concilia", "splink"):
                r = entry.get(tool)
                if not r or "error" in r:
                    cells += ["error"] + [""] * 3
                    continue
                p = r["pairwise"]
                cells += [f"{r['candidate_pairs']:,}", f"{r['recall_ceiling']:.4f}",
                          f"{p['precision']:.3f} / {p['recall']:.3f} / **{p['f1']:.3f}**", f"{r['clusters']['f1']:.3f}"]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_doc_table(report: dict) -> None:
    """Replace the generated table between the markers in docs/linkage-robustness.md."""
    start, end = "<!-- robustness-table:start -->", "<!-- robustness-table:end -->"
    text = DOC.read_text(encoding="utf-8")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(head + start + "\n" + table(report) + "\n" + end + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--populations", default=",".join(scenarios.POPULATIONS))
    parser.add_argument("--scenarios", default=",".join(scenarios.SCENARIOS))
    parser.add_argument("--tools", default="concilia,splink")
    parser.add_argument("--persons", type=int, default=scenarios.PERSONS)
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--no-doc", action="store_true", help="do not rewrite the table in docs/")
    parser.add_argument("--combine", help="comma-separated result files of partial runs (other options ignored): "
                                          "merged into --out and the docs table, later files winning tool by tool")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.combine:
        parts = [json.loads(Path(f).read_text()) for f in args.combine.split(",")]
        report = parts[0] | {"populations": {}}
        for part in parts:  # later files win, tool by tool (a Concilia-only run keeps Splink's figures)
            for population, by_scenario in part["populations"].items():
                for scenario, entry in by_scenario.items():
                    report["populations"].setdefault(population, {}).setdefault(scenario, {}).update(entry)
        order = {s: i for i, s in enumerate(scenarios.SCENARIOS)}
        report["populations"] = {p: dict(sorted(e.items(), key=lambda kv: order.get(kv[0], len(order))))
                                 for p, e in report["populations"].items()}
        out.write_text(json.dumps(report, indent=2) + "\n")
        if not args.no_doc and DOC.exists():
            write_doc_table(report)
        print(f"wrote {out}")
        return 0
    report = {"persons_per_population": args.persons, "single_rate": scenarios.SINGLE_RATE,
              "levels": scenarios.LEVELS, "settings": SETTINGS, "splink_rules": __import__("tools").ROBUST_RULES,
              "load_average_at_start": [round(x, 2) for x in os.getloadavg()], "populations": {}}
    for population in args.populations.split(","):
        for scenario in args.scenarios.split(","):
            folder, meta = prepare(population, scenario, args.persons)
            entry = {"records": meta["records"], "changed": meta["changed"]}
            for tool in args.tools.split(","):
                try:
                    entry[tool] = run_tool(tool, folder, meta)
                except Exception as exc:  # reported in the table, never hidden
                    entry[tool] = {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}
            report["populations"].setdefault(population, {})[scenario] = entry
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(report, indent=2) + "\n")  # after each scenario: a stopped run keeps its figures
            print(population, scenario, json.dumps({t: {k: entry[t].get(k) for k in ("recall_ceiling", "error")}
                                                     | {"f1": entry[t].get("pairwise", {}).get("f1"),
                                                        "p": entry[t].get("pairwise", {}).get("precision")}
                                                     for t in args.tools.split(",")}), flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    if not args.no_doc and DOC.exists():
        write_doc_table(report)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
