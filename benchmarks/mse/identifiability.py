"""What the observed lists can and cannot tell apart: each scenario's *expected* table, fitted as the pipeline fits it.

    .venv/bin/python benchmarks/mse/identifiability.py [--out benchmarks/results/mse_identifiability.json]

For every scenario of ``simulate.py`` (not the linkage-error ones) the expected capture-history counts are computed
exactly (quadrature over the visibility for the logit-normal scenarios), rounded to persons, and the small lists
merged as the pipeline merges them (``prepare_stratum``). On that table:

* ``all_pairwise`` gives the limit of the default's log-linear estimate as the lists grow. With three lists the
  model has as many parameters as there are observed cells, so it fits them exactly: a homogeneous population
  with these pairwise interactions and that total (a log-linear scenario, like a4) has the same distribution of
  observed persons as the scenario itself. The two totals cannot be told apart by any method, which bounds what
  the targets can ask: no estimate is within 5% of both when they differ by more than about 10%.
* ``model_average`` on the expected table rounded to persons (its weights depend on the table's size) shows the Akaike weights' pull towards simpler models.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import simulate as sim  # noqa: E402
from pipelines.estimate import CaptureHistory, estimate  # noqa: E402
from pipelines.estimate.pipeline_stage import MERGE_SEPARATOR, prepare_stratum  # noqa: E402


def expected_counts(s: sim.Scenario) -> np.ndarray:
    """Expected persons per history (dense, cell code order, [0] = the unseen)."""
    k = len(s.lists)
    x = sim._cells(k)
    if s.kind == "a":
        return s.probabilities * s.total
    if s.kind == "c":
        shares = np.array([c[0] for c in s.classes])
        shares = shares / shares.sum()
        p = (s.class_probabilities if s.class_probabilities is not None else
             sim._expit(s.intercepts[None, :] + np.array([c[1] for c in s.classes])[:, None]))
        cell = np.prod(np.where(x[None] > 0, p[:, None, :], 1 - p[:, None, :]), axis=2)
        return s.total * shares @ cell
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    out = np.zeros(2 ** k)
    for z, w in zip(nodes, weights / weights.sum()):
        p = np.broadcast_to(sim._expit(s.intercepts + s.sigma * z), (2 ** k, k)).copy()
        if s.dependence:  # on list i, list j's logit rises by u
            i, j, u = s.dependence
            p[x[:, i] > 0, j] = sim._expit(math.log(p[0, j] / (1 - p[0, j])) + u)
        out += w * np.prod(np.where(x > 0, p, 1 - p), axis=1)
    return s.total * out


#: The log-linear estimate scales with the counts (N(c y) = c N(y)), so the expected table is fitted at this
#: multiple, which keeps the fractions of a person in the small cells; the lists are merged as the pipeline
#: merges them at the real scale.
SCALE = 1000


def merged_exact(e: np.ndarray, lists: tuple[str, ...], fitted: tuple[str, ...]) -> np.ndarray:
    """The expected counts over the pipeline's merged lists (a merged list "A|B" holds whoever is on A or B)."""
    groups = [[lists.index(name) for name in merged.split(MERGE_SEPARATOR)] for merged in fitted]
    x = sim._cells(len(lists)).astype(bool)
    codes = sum((x[:, g].any(axis=1).astype(np.int64) << j) for j, g in enumerate(groups))
    return np.bincount(codes, weights=e, minlength=2 ** len(fitted))


def analyse(s: sim.Scenario) -> dict:
    e = expected_counts(s)
    row, ch = prepare_stratum(sim.as_stratum(s.lists, np.r_[0.0, np.rint(e[1:])]), "all_pairwise")
    exact = merged_exact(e, s.lists, ch.lists)
    scaled = CaptureHistory(ch.lists, np.r_[0.0, np.rint(SCALE * exact[1:])])
    pairwise = estimate(scaled, method="all_pairwise")
    pairwise.estimate, pairwise.lower, pairwise.upper = pairwise.estimate / SCALE, None, None
    average = estimate(ch, method="model_average")  # its weights depend on the table's size: the real scale
    n = s.total
    twin = pairwise.estimate
    return {
        "scenario": s.name, "true_total": n, "expected_seen": float(e[1:].sum()), "lists_fitted": list(ch.lists),
        "observed_cells": 2 ** ch.k - 1, "all_pairwise_parameters": 1 + ch.k + ch.k * (ch.k - 1) // 2,
        "all_pairwise_limit": {"estimate": twin, "relative": twin / n - 1},
        "model_average": {"estimate": average.estimate, "relative": average.estimate / n - 1,
                          "lower": average.lower, "upper": average.upper},
        # no estimate is within 5% of both totals when the interval [0.95 max, 1.05 min] is empty
        "within_5pct_of_both_possible": bool(0.95 * max(n, twin) <= 1.05 * min(n, twin)) if ch.k == 3 else None,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mse_identifiability.json"))
    args = p.parse_args(argv)
    rows = [analyse(s) for s in sim.build_scenarios() if s.kind != "e"]
    for r in rows:
        ap, ma = r["all_pairwise_limit"], r["model_average"]
        print(f"{r['scenario']:<36} N={r['true_total']:>5} lists {len(r['lists_fitted'])} | all_pairwise "
              f"{ap['estimate']:7.0f} ({ap['relative']:+6.1%}) | model_average {ma['estimate']:7.0f} "
              f"({ma['relative']:+6.1%}) | within 5% of both possible: {r['within_5pct_of_both_possible']}")
    if args.out != "-":
        Path(args.out).write_text(json.dumps({"command": "python benchmarks/mse/identifiability.py",
                                              "scenarios": rows}, indent=2) + "\n", encoding="utf-8")
        print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
