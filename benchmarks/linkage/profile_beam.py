"""LinkPersons on FnApiRunner for one role of a prepared dataset, stage by stage: when each stage's
bundle starts, the process's resident memory and CPU seconds then; at the end the peak and its stage.

    .venv/bin/python benchmarks/linkage/profile_beam.py generated_100000 victim
    # another commit's code, from a worktree of it (its own prepared dataset):
    cd ../old && ../i11c/.venv/bin/python ../i11c/benchmarks/linkage/profile_beam.py --root . generated_100000 victim
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from pathlib import Path


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset")
    parser.add_argument("role")
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[2]),
                        help="the repository whose pipelines/ and prepared datasets are profiled")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    sys.path[:0] = [str(root / "benchmarks" / "linkage"), str(root)]
    import tools  # the root's own harness: its concilia_beam and prepared-dataset layout

    start, stage, peak = time.time(), [""], [0.0, ""]

    def sample():
        while True:
            rss = _rss_mb()
            if rss > peak[0]:
                peak[:] = [rss, stage[0]]
            time.sleep(0.2)

    class StageLog(logging.Handler):
        def emit(self, record):
            message = record.getMessage()
            if message.startswith("Running bundle for stage"):
                stage[0] = message.splitlines()[0][len("Running bundle for stage "):][:140]
                print(f"{time.time() - start:7.1f} s  rss {_rss_mb():6.0f} MB  cpu {time.process_time():6.1f} s  "
                      f"{stage[0]}", flush=True)

    threading.Thread(target=sample, daemon=True).start()
    bundles = logging.getLogger("apache_beam.runners.portability.fn_api_runner.fn_runner.run_bundle")
    bundles.addHandler(StageLog())
    bundles.setLevel(logging.DEBUG)
    bundles.propagate = False
    folder = root / "benchmarks" / "work" / "linkage" / args.dataset
    meta = json.loads((folder / "meta.json").read_text())
    steps = tools.concilia_beam(folder, args.role, meta, folder / "runs" / "profile_beam" / args.role)
    next(steps)
    cpu = time.process_time()
    run = next(steps)
    print(json.dumps({"cpu_s": round(time.process_time() - cpu, 1), "wall_s": round(time.time() - start, 1),
                      "peak_rss_mb": round(peak[0]), "peak_stage": peak[1], "candidate_pairs": run.candidate_pairs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
