"""benchmarks/results/linkage.json -> the Markdown figures table of docs/linkage-benchmark.md.

    .venv/bin/python benchmarks/linkage/table.py [benchmarks/results/linkage.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TOOLS = ("concilia", "concilia_beam", "splink")
HEADER = ("| dataset | tool | records | pairwise P / R / F1 | clusters P / R / F1 | candidate pairs | "
          "recall ceiling | wall s | CPU s | peak RSS MB |\n|---|---|---:|---|---|---:|---:|---:|---:|---:|")
ROLE_HEADER = ("| dataset | role | tool | records | pairwise P / R / F1 | clusters F1 |\n"
               "|---|---|---|---:|---|---:|")


def _prf(m: dict) -> str:
    return f"{m['precision']:.4f} / {m['recall']:.4f} / **{m['f1']:.4f}**"


def rows(report: dict) -> list[str]:
    out = []
    for name, entry in report["datasets"].items():
        for tool in TOOLS:
            r = entry.get(tool)
            if r is None:
                continue
            label = _label(tool, r)
            if "error" in r:
                out.append(f"| {name} | {label} | {entry['records']:,} | not finished: {r['error']} | | | | | | |")
                continue
            cand = f"{r['candidate_pairs']:,}" if r.get("candidate_pairs") is not None else "-"
            ceiling = f"{r['recall_ceiling']:.4f}" if r.get("recall_ceiling") is not None else "-"
            out.append(f"| {name} | {label} | {r['records']:,} | {_prf(r['pairwise'])} | {_prf(r['clusters'])} | "
                       f"{cand} | {ceiling} | {r['wall_s']:.1f} | {_cpu(r)} | {r['peak_rss_mb']:,.0f} |")
    return out


def _label(tool: str, r: dict) -> str:
    """The tool, with Splink's configuration where the entry records it (runs before did not)."""
    config = r.get("configuration")
    if not config:
        return tool
    size = lambda x: f"{x:.0e}".replace("e+0", "e")  # 1e8
    em = f", EM {size(config['em_max_pairs'])}" if config.get("em_max_pairs") else ""
    return f"{tool} ({config['name']}, u {size(config['u_max_pairs'])}{em})"


def _cpu(r: dict) -> str:
    return f"{r['cpu_s']:.1f}" if r.get("cpu_s") is not None else "-"  # runs before cpu_s was recorded


def role_rows(report: dict) -> list[str]:
    """Victims and offenders apart (the datasets with both roles): the tables above sum them."""
    out = []
    for name, entry in report["datasets"].items():
        for role in entry.get("groups", []):
            if len(entry["groups"]) < 2:
                continue
            for tool in TOOLS:
                g = (entry.get(tool) or {}).get("groups", {}).get(role)
                if g:
                    out.append(f"| {name} | {role} | {_label(tool, entry[tool])} | {g['records']:,} | {_prf(g['pairwise'])} | "
                               f"{g['clusters']['f1']:.4f} |")
    return ["\nPer role:\n", ROLE_HEADER, *out] if out else []


def growth_rows(report: dict) -> list[str]:
    g = report.get("growth")
    if not g:
        return []
    out = [f"\nGrowth {g['from']} -> {g['to']} (fitted exponent: time ~ records^k):\n",
           "| tool | time exponent | memory exponent | candidate-pairs exponent | time ratio |",
           "|---|---:|---:|---:|---:|"]
    for tool, t in g["tools"].items():
        out.append(f"| {tool} | {t['time_exponent']} | {t['memory_exponent']} | "
                   f"{t.get('candidate_pairs_exponent', '-')} | {t['time_ratio']} |")
    return out


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "results" / "linkage.json"
    report = json.loads(path.read_text())
    print("\n".join([HEADER, *rows(report), *growth_rows(report), *role_rows(report)]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
