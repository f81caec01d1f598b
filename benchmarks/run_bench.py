"""`make bench`: wall time and peak memory of whole reconciliation runs.

Each measurement runs `concilia` in a child process under ``tree_probe.py``, which samples the
resident memory of its whole process tree (the multi-process runner's workers included), and with
``beam_stages.py``, so that the time and memory of each Beam stage can be read. The machine is
shared and noisy: read the 100k -> 1M ratio (the fitted growth exponent) rather than the absolute
seconds. Results go to benchmarks/results/.

Per case: the whole `concilia run` (wall, peak, and the time of each phase it logs: the Beam job,
the validation summary, the cross-feed check verdicts, the finalisation), then the same feeds
again as the Beam job alone (the Flex Template program with ``--finalise=false``) and `concilia
finalise` in a process of its own: the finaliser's own peak, which must not grow with the records.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stage_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work"
RESULTS = ROOT / "benchmarks" / "results"
CONCILIA = [sys.executable, "-m", "pipelines"]


PROBE = [sys.executable, str(ROOT / "benchmarks" / "tree_probe.py"), "--interval", "1"]
STAGES = [sys.executable, str(ROOT / "benchmarks" / "beam_stages.py")]
# a phase's end as the run logs it (pipelines.core.progress.heartbeat): "run <id>: <phase>: 12.3 s"
_PHASE = re.compile(r"run \S+: (?P<phase>[^:]+): (?P<seconds>[0-9.]+) s$")


def measure(args: list[str], cap_mb: float = 0) -> dict:
    """Run one command under ``tree_probe.py``: wall seconds, the peak of its whole process tree's
    RSS (the multi-process runner's workers included), the seconds of each phase it logged, and
    with ``beam_stages.py`` the Beam stages that took the most time and memory."""
    proc = subprocess.run([*PROBE, "--cap-mb", str(cap_mb), "--", *args], cwd=ROOT, capture_output=True, text=True)
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    if probe["code"] != 0 or probe["capped"]:
        sys.stderr.write("\n".join(line for _, line in probe["stderr"][-40:]) + "\n")
        why = f"stopped at the {cap_mb:.0f} MB cap" if probe["capped"] else f"exit {probe['code']}"
        raise SystemExit(f"benchmark step failed: {' '.join(args[2:4])} ({why}, {probe['wall_s']} s, "
                         f"peak {probe['peak_tree_rss_mb']} MB)")
    lines = [line for _, line in probe["stderr"]]
    phases = {m["phase"]: float(m["seconds"]) for m in map(_PHASE.search, lines) if m}
    result = {"wall_s": probe["wall_s"], "peak_rss_mb": probe["peak_tree_rss_mb"]}
    if phases:
        result["phases_s"] = phases
    stages = stage_table.stages(probe)
    if stages:
        result["stages_by_memory"] = sorted(stages, key=lambda r: -r["added_mb"])[:8]
        result["stages_by_time"] = sorted(stages, key=lambda r: -r["seconds"])[:8]
    return result


def records_in(manifest_path: Path) -> int:
    manifest = json.loads(manifest_path.read_text())
    return sum(f["rows_read"] for f in manifest["feeds"].values())


_DELTA = """
import sys
from pipelines import delta
delta.commit_run(sys.argv[1], sys.argv[2], "bench")
"""


def delta_commit(out: Path) -> dict:
    """The Delta Lake commit of a published run on its own (it is inside the run's wall time too):
    the run's tables committed again, into an empty output root, in a child process."""
    scratch = WORK / "delta-scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    current = json.loads((out / "current.json").read_text())
    result = measure([sys.executable, "-c", _DELTA, str(scratch), str(out / current["path"])])
    result["bytes"] = sum(p.stat().st_size for p in (scratch / "tables").rglob("*") if p.is_file())
    return result


def finaliser_apart(name: str, feeds: Path, beam: list[str], cap_mb: float) -> tuple[dict, Path]:
    """The Beam job alone (its stages logged), then `concilia finalise` in its own process: each
    one's wall and peak."""
    out = WORK / f"out-{name}-apart"
    shutil.rmtree(out, ignore_errors=True)
    run_id = f"bench-{name}"
    job = measure([*STAGES, "flex", "--feeds", str(feeds), "--out", str(out), "--run_id", run_id, "--demo_key=true",
                   "--finalise=false", "--runner=DirectRunner", *beam], cap_mb)
    finalise = measure([*CONCILIA, "finalise", "--out", str(out), "--run-id", run_id])
    return {"job": job, "finaliser": finalise}, out


def run_case(name: str, feeds: Path, measure_: str = "both", beam: list[str] = (), cap_mb: float = 0) -> dict:
    """``measure_``: "run" (the whole `concilia run`), "apart" (the job and the finaliser apart: the
    case's wall is their sum, its peak the larger), or "both". ``beam``: Beam options of the job
    (e.g. the multi-process runner's); ``cap_mb`` stops a job whose process tree passes it."""
    result: dict = {}
    if measure_ in ("run", "both"):
        out = WORK / f"out-{name}"
        shutil.rmtree(out, ignore_errors=True)
        # generated data only: the public demo key is the right one (outputs are marked demo)
        result = measure([*STAGES, "run", "--feeds", str(feeds), "--out", str(out), "--json", "--demo-key",
                          *(["--", *beam] if beam else [])], cap_mb)
    if measure_ in ("apart", "both"):
        result["apart"], apart_out = finaliser_apart(name, feeds, list(beam), cap_mb)
        if measure_ == "apart":
            out = apart_out
            result["wall_s"] = round(sum(result["apart"][k]["wall_s"] for k in ("job", "finaliser")), 2)
            result["peak_rss_mb"] = max(result["apart"][k]["peak_rss_mb"] for k in ("job", "finaliser"))
    current = json.loads((out / "current.json").read_text())
    result["records"] = records_in(out / current["path"] / "manifest.json")
    result["records_per_s"] = round(result["records"] / result["wall_s"])
    result["delta_commit"] = delta_commit(out)
    result["delta_share_of_run"] = round(result["delta_commit"]["wall_s"] / result["wall_s"], 3)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000", help="generated record counts (comma-separated)")
    parser.add_argument("--measure", choices=("both", "run", "apart"), default="both",
                        help="the whole run, the job and the finaliser apart, or both (the default)")
    parser.add_argument("--no-sample", action="store_true", help="skip the sample feeds case")
    parser.add_argument("--output", default="pipeline.json", help="file name under benchmarks/results/")
    parser.add_argument("--beam", default="", help="Beam options of the jobs, space-separated (e.g. "
                        "'--direct_running_mode=multi_processing --direct_num_workers=2')")
    parser.add_argument("--cap-mb", type=float, default=0,
                        help="stop a job whose processes pass this many MB (a shared machine; 0: no cap)")
    args = parser.parse_args()
    beam = args.beam.split()
    WORK.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "measure": args.measure,
              "beam_options": beam, "cases": {}}

    if not args.no_sample:
        report["cases"]["sample_feeds"] = run_case("sample", ROOT / "sample_feeds", args.measure, beam, args.cap_mb)
        print("sample_feeds", report["cases"]["sample_feeds"], flush=True)
    for size in [int(s) for s in args.sizes.split(",") if s]:
        feeds = WORK / f"feeds-{size}"
        if not (feeds / "_truth" / "expected.json").exists():
            shutil.rmtree(feeds, ignore_errors=True)
            gen = measure([*CONCILIA, "sample", "--out", str(feeds), "--seed", "7", "--people", str(size)])
            report.setdefault("generation", {})[str(size)] = gen
        report["cases"][f"generated_{size}"] = case = run_case(f"g{size}", feeds, args.measure, beam, args.cap_mb)
        print(f"generated_{size}", case, flush=True)

    sizes = [k for k in report["cases"] if k.startswith("generated_")]
    if len(sizes) >= 2:
        a, b = report["cases"][sizes[0]], report["cases"][sizes[-1]]
        report["growth_exponent"] = round(math.log(b["wall_s"] / a["wall_s"]) / math.log(b["records"] / a["records"]), 3)
        report["time_ratio"] = round(b["wall_s"] / a["wall_s"], 2)
        report["records_ratio"] = round(b["records"] / a["records"], 2)
        if "apart" in a and "apart" in b:  # the finaliser's peak must stay flat in the records (issue 16)
            report["finaliser_peak_ratio"] = round(b["apart"]["finaliser"]["peak_rss_mb"]
                                                   / a["apart"]["finaliser"]["peak_rss_mb"], 3)
    (RESULTS / args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
