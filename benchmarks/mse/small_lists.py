"""Rules for agencies too small to be a list of their own, compared with the simulator (docs/mse.md).

    .venv/bin/python benchmarks/mse/small_lists.py [--replicates 500] [--rule merge --rule leave_out ...]
                                                   [--scenario NAME ...] [--out benchmarks/results/mse_small_lists.json]

The pipeline merges an agency that saw fewer than MIN_LIST_PERSONS (10) persons with the other small
ones, and a merged list still that small into the smallest other list (``choose_lists``). The
alternatives checked here, on the same tables (replicate r of scenario s drawn with
``default_rng([seed, s, r])``, as ``simulate.py`` does, so the figures pair up with its own):

* ``merge``: the pipeline's rule, through ``fit_stratum``;
* ``merge_largest``: the same, but into the largest other list;
* ``leave_out``: small agencies that together saw at least 10 persons are one list; otherwise they
  are left out of the fitted table. The persons only they saw still count as observed: to the
  fitted lists they are part of the unseen cell their model estimates, so the estimate is that
  model's total (figures below the persons seen are raised to them, never the case here);
* ``leave_out_all``: every small agency left out, never merged;
* ``keep_all``: no bound, every agency that saw anyone is a list.

Scenarios: the sample ones of ``simulate.py`` (the others have no small list), and two with a second
small list X of 7 expected persons added to a4 (independent of every list, or dependent on MP with
log odds ratio 1), where SUNAFIL and X together reach the bound.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipelines.estimate import DEFAULT_METHOD, estimate  # noqa: E402
from pipelines.estimate import pipeline_stage as ps  # noqa: E402

_spec = importlib.util.spec_from_file_location("mse_simulate", Path(__file__).with_name("simulate.py"))
sim = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = sim  # its dataclasses look their module up
_spec.loader.exec_module(sim)

SAMPLE_SCENARIOS = ("a1_sample_independent", "a2_sample_pnp_mp", "a4_sample_projected",
                    "b_sample_heterogeneous_sigma0.5", "b_sample_heterogeneous_sigma1")
X_PERSONS = 7


def leave_out_lists(stratum, merge_small_together: bool, min_list_persons=ps.MIN_LIST_PERSONS):
    seen = ps.persons_seen(stratum)
    present = [a for a in stratum.role_agencies if seen[a] > 0]
    small = [a for a in present if seen[a] < min_list_persons]
    groups = [[a] for a in present if a not in small]
    if merge_small_together and len(small) > 1 and ps.persons_on(stratum, small) >= min_list_persons:
        groups.append(small)
    return [(ps.MERGE_SEPARATOR.join(g), frozenset(g)) for g in groups]


def fit_without(stratum: ps.Stratum, lists, method: str) -> dict:
    """The stratum fitted on ``lists`` only: persons on none of them are in the table's unseen cell."""
    counts = np.zeros(2 ** len(lists))
    for agencies, n in stratum.agency_sets.items():
        code = sum(1 << j for j, (_, members) in enumerate(lists) if agencies & members)
        if code:
            counts[code] += n
    row = {"lists": [name for name, _ in lists], "observed": stratum.observed, "warnings": []}
    ch = ps.CaptureHistory(tuple(row["lists"]), counts)
    overlap = sum(counts[c] for c in range(1, len(counts)) if bin(c).count("1") >= 2)
    if ch.k < 2 or overlap < ps.MIN_OVERLAP:
        return row | {"estimate": None, "refused_reason": "fewer than two lists or too few overlaps"}
    r = estimate(ch, method=method)
    if r.estimate is None:
        return row | {"estimate": None, "refused_reason": r.reason}
    figures = [None if v is None else max(v, float(stratum.observed)) for v in (r.estimate, r.lower, r.upper)]
    raised = any(v is not None and v < stratum.observed for v in (r.estimate, r.lower, r.upper))
    return row | dict(zip(("estimate", "lower", "upper"), figures), model=r.model,
                      warnings=["raised to the persons seen"] if raised else [])


def fit(rule: str, stratum: ps.Stratum, method: str) -> dict:
    if rule == "merge":
        return ps.fit_stratum(stratum, method)[0]
    if rule == "merge_largest":
        original = ps.choose_lists
        ps.choose_lists = functools.partial(original, merge_into=max)
        try:
            return ps.fit_stratum(stratum, method)[0]
        finally:
            ps.choose_lists = original
    if rule == "keep_all":
        return ps.fit_stratum(stratum, method, min_list_persons=1)[0]
    return fit_without(stratum, leave_out_lists(stratum, merge_small_together=rule == "leave_out"), method)


RULES = ("merge", "merge_largest", "leave_out", "leave_out_all", "keep_all")


def x_scenarios() -> list:
    """a4 plus a fifth list X of X_PERSONS expected persons, independent or dependent on MP."""
    table, total = sim.sample_world()
    main4, u4 = sim.project_pairwise(table, 4)
    x = sim._cells(5)
    out = []
    for name, extra in (("x5_a4_plus_small_X_independent", {}), ("x5_a4_plus_small_X_dependent_on_MP", {(1, 4): 1.0})):
        main, pairs = np.r_[main4, sim.logit(X_PERSONS / total)], dict(u4) | extra
        p = sim.loglinear_probabilities(5, main, pairs)
        for _ in range(50):  # X keeps its expected size under the dependence
            main[4] += np.log(X_PERSONS / total / (x * p[:, None]).sum(0)[4])
            p = sim.loglinear_probabilities(5, main, pairs)
        out.append(sim.Scenario(name, "a", f"a4 plus a list X of {X_PERSONS} expected persons"
                                + (", X:MP log odds ratio 1" if extra else ", X independent"),
                                (*sim.SAMPLE_LISTS, "X"), total, p, list(pairs)))
    return out


def run(replicates: int, seed: int, rules, only, method: str = DEFAULT_METHOD) -> list[dict]:
    scenarios = [(i, s) for i, s in enumerate(sim.build_scenarios()) if s.name in SAMPLE_SCENARIOS]
    scenarios += [(100 + i, s) for i, s in enumerate(x_scenarios())]
    out = []
    for rule in rules:
        for index, s in scenarios:
            if only and s.name not in only:
                continue
            t = time.perf_counter()
            rows = []
            for r in range(replicates):
                counts = s.draw(np.random.default_rng([seed, index, r]))
                sets = Counter()
                for code in range(1, len(counts)):
                    if counts[code]:
                        sets[frozenset(s.lists[j] for j in range(len(s.lists)) if code >> j & 1)] += int(counts[code])
                rows.append(fit(rule, ps.Stratum("victim", None, None, sets, s.lists, (2018,)), method))
            summary = sim.summarise(s, [r | {"model": r.get("model") or []} for r in rows], [], time.perf_counter() - t)
            est = [r for r in rows if r.get("estimate") is not None]
            summary |= {"rule": rule, "ends_below_truth": sum(r["upper"] < s.total for r in est),
                        "starts_above_truth": sum(r["lower"] > s.total for r in est),
                        "raised_to_observed": sum(bool(r["warnings"]) and "raised" in r["warnings"][0] for r in rows),
                        "coverage_by_lists_fitted": {}}
            for key in Counter(", ".join(r["lists"]) for r in rows):
                mine = [r for r in est if ", ".join(r["lists"]) == key]
                hit = sum(r["lower"] <= s.total <= r["upper"] for r in mine)
                summary["coverage_by_lists_fitted"][key] = f"{hit}/{len(mine)}"
            summary.pop("models_selected", None)
            out.append(summary)
            print(f"{rule:<14} {s.name:<36} cover {sim._pct(summary['coverage'])} "
                  f"bias mean {sim._pct(summary['relative_bias_mean'])} median {sim._pct(summary['relative_bias_median'])} "
                  f"width {sim._pct(summary['interval_width_relative_median'])} below {summary['ends_below_truth']:>3} "
                  f"above {summary['starts_above_truth']:>3} | {summary['coverage_by_lists_fitted']}", flush=True)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicates", type=int, default=500)
    p.add_argument("--seed", type=int, default=2018)
    p.add_argument("--rule", action="append", choices=RULES, default=None)
    p.add_argument("--scenario", action="append", default=None)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mse_small_lists.json"))
    args = p.parse_args(argv)
    started = time.perf_counter()
    results = run(args.replicates, args.seed, args.rule or ["merge", "leave_out"], args.scenario)
    record = {"command": "python " + " ".join(["benchmarks/mse/small_lists.py", *(argv if argv is not None else sys.argv[1:])]),
              "method": DEFAULT_METHOD, "replicates": args.replicates, "seed": args.seed, "results": results,
              "seconds": round(time.perf_counter() - started, 1)}
    if args.out != "-":
        out = Path(args.out)
        if out.exists():  # several invocations (rules x replicates) accumulate in one file
            old = json.loads(out.read_text(encoding="utf-8"))
            runs = old.get("runs", [old]) if "runs" in old or "results" in old else []
            record = {"runs": [*runs, record]}
        else:
            record = {"runs": [record]}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        print(f"written {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
