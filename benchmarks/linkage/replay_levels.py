"""The comparisons alone, on the candidate pairs of a real run: capture them once, replay them with
any commit's code, and check that its levels are the captured ones, pair by pair.

    # the pairs of LinkPersons on FnApiRunner (each slice compared, and u's random pairs), with
    # their levels as the code of --root computes them
    .venv/bin/python benchmarks/linkage/replay_levels.py capture generated_100000 victim /tmp/levels
    # the same pairs compared again by this checkout: CPU seconds, and every level equal or not
    .venv/bin/python benchmarks/linkage/replay_levels.py replay /tmp/levels [--profile]

``--root`` names the repository whose pipelines/ (and, for capture, prepared datasets) are used,
as in profile_beam.py; a capture holds record values: keep it out of the repository.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pickle
import pstats
import sys
import time
from pathlib import Path


def _write_table(table, path: Path) -> None:
    import pyarrow as pa

    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)  # IPC keeps the dictionaries the comparisons read codes of


def _recording(compare, parts: dict):
    """compare() that also keeps each comparison's levels in ``parts`` (u's random pairs)."""
    def recorded(left, right, comparisons):
        gammas = compare(left, right, comparisons)
        for k, v in gammas.items():
            parts.setdefault(k, []).append(v)
        return gammas
    return recorded


def capture(root: Path, dataset: str, role: str, out: Path) -> None:
    import numpy as np

    import tools
    from pipelines.link import linker

    out.mkdir(parents=True, exist_ok=True)
    levels, u_from_sample, slices = linker.levels, linker.u_from_sample, [0]

    def captured_levels(candidates, settings):
        gammas = levels(candidates, settings)
        stem = out / f"slice{slices[0]:05d}"
        slices[0] += 1
        _write_table(candidates.values, stem.with_suffix(".arrow"))
        np.savez(stem.with_suffix(".npz"), left=candidates.left_index, right=candidates.right_index,
                 **{f"level_{k}": v for k, v in gammas.items()})
        (out / "settings.pkl").write_bytes(pickle.dumps(settings))
        return gammas

    def captured_u(sample, settings):
        compare, parts = linker.compare, {}
        linker.compare = _recording(compare, parts)
        try:
            u = u_from_sample(sample, settings)
        finally:
            linker.compare = compare
        _write_table(sample, out / "u_sample.arrow")
        np.savez(out / "u_sample.npz", **{f"level_{k}": np.concatenate(v) for k, v in parts.items()})
        return u

    linker.levels, linker.u_from_sample = captured_levels, captured_u
    folder = root / "benchmarks" / "work" / "linkage" / dataset
    steps = tools.concilia_beam(folder, role, json.loads((folder / "meta.json").read_text()),
                                folder / "runs" / "replay_levels" / role)
    next(steps)
    next(steps)
    print(json.dumps({"slices": slices[0], "out": str(out)}))


def replay(out: Path, profile: bool) -> int:
    import numpy as np
    import pyarrow as pa

    from pipelines.link import linker
    from pipelines.link.blocking import CandidatePairs

    settings = pickle.loads((out / "settings.pkl").read_bytes())
    slices = []
    for path in sorted(out.glob("slice*.arrow")):
        saved = np.load(path.with_suffix(".npz"))
        slices.append((pa.ipc.open_file(str(path)).read_all().combine_chunks(), saved))
    sample = pa.ipc.open_file(str(out / "u_sample.arrow")).read_all()
    u_saved = np.load(out / "u_sample.npz")
    compare, u_parts = linker.compare, {}
    profiler = cProfile.Profile() if profile else None
    differing, pairs, cpu = [], 0, {}
    start = time.process_time()
    if profiler:
        profiler.enable()
    for values, saved in slices:
        left, right = saved["left"], saved["right"]
        pairs += len(left)
        gammas = linker.levels(CandidatePairs(values, left, right, None, None, None, None, {}), settings)
        differing += [k for k in gammas if len(left) and not np.array_equal(gammas[k], saved[f"level_{k}"])]
    cpu["candidate_pairs_s"] = round(time.process_time() - start, 2)
    linker.compare = _recording(compare, u_parts)
    try:
        start = time.process_time()
        linker.u_from_sample(sample, settings)
        cpu["u_random_pairs_s"] = round(time.process_time() - start, 2)
    finally:
        linker.compare = compare
    if profiler:
        profiler.disable()
    differing += [f"u:{k}" for k in u_parts if not np.array_equal(np.concatenate(u_parts[k]), u_saved[f"level_{k}"])]
    print(json.dumps({"slices": len(slices), "candidate_pairs": pairs, "cpu": cpu,
                      "levels_differing": sorted(set(differing))}))
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats("pipelines/link", 30)
    return 1 if differing else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(Path(__file__).resolve().parents[2]))
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture")
    cap.add_argument("dataset")
    cap.add_argument("role")
    cap.add_argument("out")
    rep = sub.add_parser("replay")
    rep.add_argument("out")
    rep.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    root = Path(args.root).resolve()
    sys.path[:0] = [str(root / "benchmarks" / "linkage"), str(root)]
    if args.command == "capture":
        capture(root, args.dataset, args.role, Path(args.out))
        return 0
    return replay(Path(args.out), args.profile)


if __name__ == "__main__":
    sys.exit(main())
