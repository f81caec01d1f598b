"""What the person registry costs (pipelines/steward/registry.py).

    python benchmarks/steward_registry.py assign --records 1000000   # the one-worker id assignment
    python benchmarks/steward_registry.py runs                       # sample run: first, rerun, next period

``assign``: N records in persons of 1-4 records, the previous registry holding the same persons
(every id kept) after 1% of the persons gained a record and 1% merged in pairs; wall time and the
process's peak RSS. ``runs``: the sample feeds run three times in one output root: the first run
(no registry), a rerun (the registry read, every id kept) and a 2019 period run of MIMP's file
under new case codes (2,618 earlier victim records carried and linked); wall times and the ratio
rerun / first, which is the figure to read on this noisy machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bench_assign(n: int) -> dict:
    from pipelines.privacy import demo_key
    from pipelines.steward.registry import assign, current_keys

    key = demo_key()
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 5, size=n)
    person = np.repeat(np.arange(len(sizes)), sizes)[:n]
    uids = pa.array([f"f:{i}" for i in range(n)], pa.string())
    records = pa.table({"record_uid": uids, "event_year": pa.array(np.full(n, 2018, np.int32))})
    current = current_keys(records, key, "")
    first = pa.array([f"Pold{p}" for p in person], pa.string())
    previous = pa.table({"record_uid": current.column("key"), "person_id": first,
                         "delivery_period": pa.array([""] * n), "period": current.column("period")})
    # this run: 1% of persons merge with their neighbour, the rest as before
    merged = person.copy()
    pick = rng.random(len(sizes)) < 0.01
    merged = np.where(pick[person], np.maximum(person - 1, 0), person)
    membership = pa.table({"record_uid": uids, "person_id": pa.array([f"Ptmp{p}" for p in merged], pa.string()),
                           "match_rule": pa.nulls(n, pa.string())})
    started = time.perf_counter()
    out = assign(membership, [current], [previous], "", "victim", key, "bench")
    seconds = time.perf_counter() - started
    return {"records": n, "persons": int(len(np.unique(merged))), "seconds": round(seconds, 2),
            "lineage_rows": out["lineage"].num_rows,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def bench_runs() -> dict:
    from pipelines.pipeline import run
    from pipelines.privacy import demo_key

    feeds = ROOT / "sample_feeds"
    out = tempfile.mkdtemp(prefix="registry-bench-")
    times = {}
    for name in ("first", "rerun"):
        started = time.perf_counter()
        run(str(feeds), out, ["--runner=FnApiRunner"], key=demo_key())
        times[name] = round(time.perf_counter() - started, 1)
    later = Path(tempfile.mkdtemp(prefix="registry-bench-2019-")) / "mimp"
    later.mkdir()
    text = (feeds / "mimp" / "ninos_victimas_2018.csv").read_text(encoding="utf-8").replace("-2018-0", "-2019-0")
    (later / "ninos_victimas_2019.csv").write_text(text, encoding="utf-8")
    started = time.perf_counter()
    run(str(later.parent), out, ["--runner=FnApiRunner"], key=demo_key(), period="2019", allow_missing=("*",))
    times["next_period"] = round(time.perf_counter() - started, 1)
    return {**times, "rerun_over_first": round(times["rerun"] / times["first"], 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("assign", "runs"))
    p.add_argument("--records", type=int, default=100_000)
    args = p.parse_args(argv)
    print(json.dumps(bench_assign(args.records) if args.what == "assign" else bench_runs(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
