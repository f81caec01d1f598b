"""Do two output roots publish the same results? (A change meant for speed or memory must not move them.)

Compares the current runs of two output roots (``OUT/current.json``): every Parquet folder of the
run as a multiset of rows (columns naming a run left out), the public release's CSV, JSON and
Excel files, the linkage models and stats, and the run summary (run ids and times left out), and
the manifest's validation block (timings left out). Prints one line per difference and exits 1
if there is any.

    python benchmarks/compare_runs.py OUT_BEFORE OUT_AFTER
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

RUN_ID = re.compile(r"\d{8}T\d{6}\d*Z-[0-9a-f]{8}")
TIMES = re.compile(r'"?(run_id|generated_at|published_at|started|finished|created|trained_at)"?\s*[:=,]\s*"[^"]*"')
TIMINGS = re.compile(r'"([a-z_]*seconds|run_time|ge_load_time|validation_time|pandas_data_fingerprint|id|started|finished)"'
                     r': *("[^"]*"|[0-9.e-]+)')
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[.0-9]*(\+00:00|Z)?")


def run_dir(root: str) -> str:
    with open(os.path.join(root, "current.json")) as fh:
        return os.path.join(root, json.load(fh)["path"])


def parquet_folders(run: str) -> dict[str, list[str]]:
    folders: dict[str, list[str]] = {}
    for path in glob.glob(f"{run}/**/*.parquet", recursive=True):
        folders.setdefault(os.path.relpath(os.path.dirname(path), run), []).append(path)
    return folders


def rows(paths: list[str]) -> tuple[list[str], list[str]]:
    table = pa.concat_tables([pq.read_table(p) for p in paths], promote_options="permissive")
    columns = sorted(c for c in table.column_names if "run_id" not in c)
    frame = table.select(columns).to_pandas().astype(str)
    return columns, sorted(map(repr, frame.itertuples(index=False)))


def same_file(a: str, b: str) -> bool:
    if a.endswith(".xlsx"):
        xa, xb = pd.read_excel(a, sheet_name=None), pd.read_excel(b, sheet_name=None)
        return xa.keys() == xb.keys() and all(xa[k].astype(str).equals(xb[k].astype(str)) for k in xa)
    text = [RUN_ID.sub("RUN", TIMES.sub("", open(p, encoding="utf-8", errors="replace").read())) for p in (a, b)]
    return text[0] == text[1]


def validation(run: str) -> str:
    with open(os.path.join(run, "manifest.json")) as fh:
        block = json.dumps(json.load(fh).get("validation"), sort_keys=True, default=str)
    return STAMP.sub("T", TIMINGS.sub("", RUN_ID.sub("RUN", block)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before")
    parser.add_argument("after")
    args = parser.parse_args()
    a, b = run_dir(args.before), run_dir(args.after)
    differences = []
    fa, fb = parquet_folders(a), parquet_folders(b)
    for folder in sorted(set(fa) | set(fb)):
        if folder not in fa or folder not in fb:
            differences.append(f"{folder}: only in one run")
        elif rows(fa[folder]) != rows(fb[folder]):
            differences.append(f"{folder}: rows differ")
        else:
            print(f"same {folder}")
    for pattern in ("public/*", "linkage/*", "summary/*"):
        for path in sorted(glob.glob(os.path.join(a, pattern))):
            other = os.path.join(b, os.path.relpath(path, a))
            if os.path.isfile(path) and not (os.path.exists(other) and same_file(path, other)):
                differences.append(f"{os.path.relpath(path, a)}: differs")
    if validation(a) != validation(b):
        differences.append("manifest validation block: differs")
    for line in differences:
        print(f"DIFFERENT {line}")
    print(f"{len(differences)} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
