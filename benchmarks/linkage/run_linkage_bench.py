"""`make bench-linkage`: Concilia's linker and Splink 5 (DuckDB) on the same data, in one run.

For each dataset (FEBRL3, FEBRL4, the sample feeds, generated sets of 100k and 1M records) and each
tool, a child process links the prepared data (victims and offenders separately for the Peruvian
data) and reports: precision, recall and F1 pairwise and on clusters, candidate pairs, the recall
ceiling blocking leaves, wall seconds of the linkage (input loaded -> clusters) and the child's
peak RSS. Tools: ``concilia`` (link_in_memory + cluster), ``concilia_beam`` (LinkPersons on
FnApiRunner; Peruvian data only), ``splink``. The machine is shared: read ratios. Results go to
benchmarks/results/linkage.json; docs/linkage-benchmark.md explains them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parents[1]))

import datasets  # noqa: E402
import metrics  # noqa: E402

RESULTS = datasets.ROOT / "benchmarks" / "results"
DEFAULT_DATASETS = "febrl3,febrl4,sample_feeds,generated_100000,generated_1000000"
DEFAULT_TOOLS = "concilia,splink,concilia_beam"
TOOL_NAMES = DEFAULT_TOOLS.split(",")
COUNT_KEYS = ("true_positives", "predicted_pairs", "true_pairs")


def dataset_folder(name: str, refresh: bool = False) -> Path:
    people = int(name.split("_")[1]) if name.startswith("generated_") else None
    return datasets.prepared(name, people=people, refresh=refresh)


def _cpu_s() -> float:
    """CPU seconds of this process, all its threads: on a shared machine the wall clock measures
    the other jobs too, the CPU time mostly this one."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)


# ---------------------------------------------------------------------------------------------
# child: one tool on one dataset


def limit_memory(gb: float) -> None:
    """DuckDB gets the run's memory budget as its memory_limit (it spills to disk below it) via
    CONCILIA_BENCH_MEMORY_GB; the parent's watchdog enforces the budget on resident memory."""
    if gb > 0:
        os.environ["CONCILIA_BENCH_MEMORY_GB"] = str(gb)


def _rss_mb(pid: int) -> float:
    """Resident memory of a process (0 once it is gone), from /proc."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_child(tool: str, name: str) -> dict:
    """Link every group of a dataset with one tool; timings first, then accuracy (untimed)."""
    import pyarrow.parquet as pq

    import tools

    folder = dataset_folder(name)
    meta = datasets.load_meta(folder)
    scope = meta["scope"]
    report = {"tool": tool, "dataset": name, "groups": {}, "wall_s": 0.0}
    if tool == "splink":  # as the child runs it
        report["configuration"] = tools.splink_configuration_used(meta["splink"])
    for group in meta["groups"]:
        steps = tools.TOOLS[tool](folder, group, meta, folder / "runs" / tool / group)
        records = next(steps)
        start, cpu = time.perf_counter(), _cpu_s()
        run = next(steps)
        wall, cpu = time.perf_counter() - start, _cpu_s() - cpu
        peak = _peak_mb()
        for run in steps:  # untimed bookkeeping (Splink's own candidate count)
            pass
        truth = pq.read_table(folder / f"{group}.truth.parquet")
        true = metrics.true_pairs(truth, scope)
        if run.candidates is not None:
            _, ceiling = metrics.pair_counts_indexed(*run.candidates, truth, scope)
        elif run.splink_rules is not None:
            ceiling = metrics.blocked_true_pairs(run.splink_input, run.splink_uid, run.splink_rules, true)
        else:
            ceiling = None
        report["groups"][group] = {
            "records": records if tool != "concilia_beam" else truth.num_rows,
            "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2),
            "candidate_pairs": run.candidate_pairs,
            "candidates_true_pairs": ceiling,
            "pairwise": metrics.pairwise(run.edges, truth, scope),
            "clusters": metrics.clusters(run.clusters, truth, scope),
            "stats": {k: v for k, v in run.stats.items() if k != "pairs_by_rule"} | (
                {"pairs_by_rule": run.stats["pairs_by_rule"]} if "pairs_by_rule" in run.stats else {}),
        }
        report["wall_s"] += wall
        report["cpu_s"] = report.get("cpu_s", 0.0) + cpu
        report["peak_rss_mb"] = peak
        del run, steps
    report["wall_s"] = round(report["wall_s"], 2)
    report["cpu_s"] = round(report.get("cpu_s", 0.0), 2)
    return report


# ---------------------------------------------------------------------------------------------
# parent: every tool on every dataset, in child processes


def _combine(parts: list[dict]) -> dict:
    counts = {k: sum(p[k] for p in parts) for k in COUNT_KEYS}
    out = metrics._prf(counts["true_positives"], counts["predicted_pairs"], counts["true_pairs"])
    for extra in ("clusters", "true_entities"):
        if all(extra in p for p in parts):
            out[extra] = sum(p[extra] for p in parts)
    return out


def summarise(child: dict) -> dict:
    groups = list(child["groups"].values())
    candidates = [g["candidate_pairs"] for g in groups]
    ceilings = [g["candidates_true_pairs"] for g in groups]
    pairwise = _combine([g["pairwise"] for g in groups])
    summary = {
        "records": sum(g["records"] for g in groups),
        "wall_s": child["wall_s"],
        "cpu_s": child.get("cpu_s"),
        "peak_rss_mb": child["peak_rss_mb"],
        "process_wall_s": child.get("process_wall_s"),
        "pairwise": pairwise,
        "clusters": _combine([g["clusters"] for g in groups]),
        "candidate_pairs": sum(candidates) if None not in candidates else None,
    }
    if "configuration" in child:
        summary["configuration"] = child["configuration"]
    if None not in ceilings:
        summary["recall_ceiling"] = round(sum(ceilings) / pairwise["true_pairs"], 4) if pairwise["true_pairs"] else 1.0
    if len(groups) > 1:
        summary["groups"] = child["groups"]
    else:
        summary["stats"] = groups[0]["stats"]
    return summary


def measure(tool: str, name: str, timeout: float, memory_gb: float) -> dict:
    """One tool on one dataset in a child process, stopped (and reported) past the timeout or when
    its resident memory outgrows the budget: on a shared machine, before the OOM killer picks."""
    start = time.perf_counter()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", tool, name, "--memory-gb", str(memory_gb)]
    with subprocess.Popen(cmd, cwd=datasets.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        stopped, peak = None, 0.0
        out: dict[str, str] = {}
        readers = [threading.Thread(target=lambda k, f: out.__setitem__(k, f.read()), args=(k, f), daemon=True)
                   for k, f in (("stdout", proc.stdout), ("stderr", proc.stderr))]
        for r in readers:
            r.start()
        while proc.poll() is None:
            peak = max(peak, _rss_mb(proc.pid))
            if memory_gb > 0 and peak > memory_gb * 1024:
                stopped = f"stopped at {peak / 1024:.1f} GB resident: over the {memory_gb:g} GB budget"
            elif time.perf_counter() - start > timeout:
                stopped = f"timed out after {timeout:.0f} s"
            if stopped:
                proc.kill()
                break
            time.sleep(0.5)
        proc.wait()
        for r in readers:
            r.join()
    if stopped:
        return {"error": stopped, "elapsed_s": round(time.perf_counter() - start, 1)}
    lines = out.get("stdout", "").strip().splitlines()
    if proc.returncode != 0 or not lines:
        errors = [l for l in out.get("stderr", "").splitlines() if "Error" in l or "error" in l]
        tail = errors[-1:] or out.get("stderr", "").strip().splitlines()[-1:] or ["(no output)"]
        return {"error": f"exit {proc.returncode}: {tail[0][:300]}", "elapsed_s": round(time.perf_counter() - start, 1)}
    child = json.loads(lines[-1])
    child["process_wall_s"] = round(time.perf_counter() - start, 2)
    return summarise(child)


def growth(report: dict, small: str, large: str) -> dict:
    out = {}
    a, b = report["datasets"].get(small, {}), report["datasets"].get(large, {})
    for tool in [t for t in TOOL_NAMES if t in a and t in b]:
        ra, rb = a[tool], b[tool]
        if "error" in ra or "error" in rb:
            continue
        records = math.log(rb["records"] / ra["records"])
        out[tool] = {"time_exponent": round(math.log(rb["wall_s"] / ra["wall_s"]) / records, 3),
                     "memory_exponent": round(math.log(rb["peak_rss_mb"] / ra["peak_rss_mb"]) / records, 3),
                     "time_ratio": round(rb["wall_s"] / ra["wall_s"], 2),
                     "records_ratio": round(rb["records"] / ra["records"], 2)}
        if ra.get("candidate_pairs") and rb.get("candidate_pairs"):
            out[tool]["candidate_pairs_exponent"] = round(
                math.log(rb["candidate_pairs"] / ra["candidate_pairs"]) / records, 3)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", default=DEFAULT_DATASETS, help="comma-separated; generated_N = N people")
    parser.add_argument("--tools", default=DEFAULT_TOOLS, help="comma-separated: concilia, splink, concilia_beam")
    parser.add_argument("--out", default=str(RESULTS / "linkage.json"))
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per tool and dataset")
    parser.add_argument("--memory-gb", type=float, default=12.0,
                        help="resident-memory budget per tool run (0: none); DuckDB's memory_limit is 80%% of it")
    parser.add_argument("--splink-em", choices=["birth", "names"], default="birth",
                        help="Splink's EM sessions on the Peruvian data (see tools.PERU_EM_RULES)")
    parser.add_argument("--splink-config", choices=["peru", "robust"], default="peru",
                        help="Splink's configuration on the Peruvian data: peru (Concilia's blocking keys) or "
                             "robust (Splink's own blocking rules, tools.ROBUST_RULES); FEBRL keeps its example's")
    parser.add_argument("--splink-u-pairs", type=float, default=None,
                        help="Splink's max_pairs for u by random sampling (default: the configuration's)")
    parser.add_argument("--splink-em-pairs", type=float, default=None,
                        help="Splink's max_pairs per EM session (a sample of the session's pairs; default: all)")
    parser.add_argument("--refresh", action="store_true", help="prepare the datasets again")
    parser.add_argument("--update", action="store_true",
                        help="keep the other datasets and tools already in --out (each tool's entry records when it ran)")
    parser.add_argument("--child", nargs=2, metavar=("TOOL", "DATASET"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # Splink's options come from the parent's environment
        limit_memory(args.memory_gb)
        print(json.dumps(run_child(*args.child)))
        return 0
    os.environ["CONCILIA_BENCH_SPLINK_EM"] = args.splink_em
    os.environ["CONCILIA_BENCH_SPLINK_CONFIG"] = args.splink_config
    for variable, value in (("CONCILIA_BENCH_SPLINK_U_PAIRS", args.splink_u_pairs),
                            ("CONCILIA_BENCH_SPLINK_EM_PAIRS", args.splink_em_pairs)):
        os.environ.pop(variable, None)
        if value:
            os.environ[variable] = repr(value)

    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
              "threshold_match_probability": 0.9, "splink_em": args.splink_em, "memory_budget_gb": args.memory_gb, "timeout_s": args.timeout,
              "versions": _versions(), "datasets": {}}
    tool_names = [t for t in args.tools.split(",") if t]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.update and out.exists():
        report["datasets"] = json.loads(out.read_text()).get("datasets", {})
    for name in [d for d in args.datasets.split(",") if d]:
        folder = dataset_folder(name, refresh=args.refresh)
        meta = datasets.load_meta(folder)
        entry = report["datasets"].setdefault(name, {})  # --update: other tools' figures stay
        entry.update({"records": meta["records"], "scope": meta["scope"], "groups": meta["groups"]})
        for tool in tool_names:
            if tool == "concilia_beam" and meta["splink"] != "peru":
                continue  # LinkPersons takes harmonised records; FEBRL has none
            started = {"run_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
            entry[tool] = measure(tool, name, args.timeout, args.memory_gb) | started
            print(name, tool, json.dumps({k: entry[tool].get(k) for k in (
                "error", "wall_s", "cpu_s", "peak_rss_mb", "candidate_pairs", "recall_ceiling")}
                | {"pairwise_f1": entry[tool].get("pairwise", {}).get("f1"),
                   "cluster_f1": entry[tool].get("clusters", {}).get("f1")}), flush=True)
            out.write_text(json.dumps(report, indent=2) + "\n")  # as it goes: a late failure keeps the rest
    sizes = sorted((n for n in report["datasets"] if n.startswith("generated_")), key=lambda n: int(n.split("_")[1]))
    if len(sizes) >= 2:
        report["growth"] = {"from": sizes[0], "to": sizes[-1], "tools": growth(report, sizes[0], sizes[-1])}
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("splink", "duckdb", "apache-beam", "pyarrow", "rapidfuzz", "recordlinkage"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = None
    return found


if __name__ == "__main__":
    sys.exit(main())
