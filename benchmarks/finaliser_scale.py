"""The finaliser's peak memory against the rows it reads (issue 16: flat in N, within 20 %).

Takes a run the Beam job wrote and did not finalise (the Flex Template program with
``--finalise=false``: the run folder still holds ``_work/``) and finalises copies of it, each in a
child process: the run as it is, and a copy in which every Parquet output is there ``--times``
times over, so that the footers, hashes, the report's screen and the Delta commit read that many
rows. The job's summary stays the run's own, so that copy skips the check of the files' row counts
against it (and only that). Each child resets its peak before each step (``/proc/self/clear_refs``)
and prints the peak after it.

    python benchmarks/finaliser_scale.py --out OUT --run-id ID --feeds FEEDS --times 10 [--code ../main]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work" / "finaliser-scale"

_CHILD = r"""
import contextlib, datetime as dt, json, sys
steps = []

def peak_mb():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) // 1024 for l in f if l.startswith("VmHWM"))

@contextlib.contextmanager
def step(name):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    yield
    steps.append((name, peak_mb()))

with step("imports"):
    from pipelines import delta, pipeline, privacy, publish
    from pipelines.contracts import load_contracts
    import pipelines.report.build as report
out, run_id, feeds, replica = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
if replica:  # the files hold `times` the rows the job counted
    publish.check_written = lambda summary, outputs: None

def timed(name, fn):
    def wrapped(*a, **k):
        with step(name):
            return fn(*a, **k)
    return wrapped

publish.list_outputs = timed("footers and hashes", publish.list_outputs)
report.build_report = timed("report", report.build_report)
delta.commit_run = timed("Delta commit", delta.commit_run)
with step("whole finaliser"):
    try:
        pipeline.finish(feeds, out, run_id, load_contracts(), privacy.resolve_key(demo=True),
                        dt.datetime.now(dt.timezone.utc))
    except publish.ValidationBlocked as exc:
        print(json.dumps({"blocked": str(exc)[:200]}), file=sys.stderr)
print(json.dumps(dict(steps)))
"""


def replica(run_dir: Path, target: Path, times: int) -> None:
    """A copy of the run folder in which every Parquet output file is there ``times`` times."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(run_dir, target)
    for path in list(target.rglob("*.parquet")):
        if "_work" not in path.parts:
            for i in range(2, times + 1):
                shutil.copyfile(path, path.with_name(f"{path.stem}-copy{i}.parquet"))


def finalise(run_dir: Path, run_id: str, feeds: str, name: str, times: int, code: Path) -> dict:
    out = WORK / name
    shutil.rmtree(out, ignore_errors=True)
    replica(run_dir, out / "runs" / run_id, times)
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(out), run_id, feeds, "1" if times > 1 else "0"],
                          cwd=code, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"finalising {name} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="the output root of a run that was not finalised")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--feeds", required=True)
    parser.add_argument("--times", type=int, default=10)
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout whose finaliser runs (a peer: main's)")
    parser.add_argument("--output", default="finaliser_scale.json", help="file name under benchmarks/results/")
    args = parser.parse_args()
    run_dir = Path(args.out) / "runs" / args.run_id
    if not (run_dir / "_work").is_dir():
        raise SystemExit(f"{run_dir} has no _work/: run the job with --finalise=false")
    feeds = str(Path(args.feeds).resolve())
    result = {"code": str(args.code), "run": finalise(run_dir, args.run_id, feeds, "x1", 1, args.code),
              f"run_x{args.times}": finalise(run_dir, args.run_id, feeds, f"x{args.times}", args.times, args.code)}
    whole = [result[k]["whole finaliser"] for k in ("run", f"run_x{args.times}")]
    result["peak_ratio"] = round(whole[1] / whole[0], 3)
    (ROOT / "benchmarks" / "results" / args.output).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
