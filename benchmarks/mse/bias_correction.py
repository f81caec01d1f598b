"""Would a published small-sample correction remove the default's mean bias? Point estimates only.

    .venv/bin/python benchmarks/mse/bias_correction.py [--replicates 200] [--scenario NAME ...] [--out FILE]

The default's log-linear estimate (the model with every pairwise interaction, ``estimate(..., "all_pairwise")``
through the stage's lists and refusals) against Evans & Bonett (1994, *Biometrics* 50:388)'s modification:
add 0.5^(k-1) to every observable cell (0.25 with three lists; Plackett's 0.5 for two), fit, and subtract the
total added (``+ constant``). Both on the simulation's tables (``simulate.py``'s seeds). Reported per scenario:
mean and median relative bias. Evans & Bonett's constant is the published one; "0.5 every cell" is shown
only to say how large a constant the bias would need, not as a candidate (it was not chosen in advance).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simulate import as_stratum, build_scenarios, scenario_study  # noqa: E402

from pipelines.estimate import estimate  # noqa: E402
from pipelines.estimate.loglinear import all_pairs  # noqa: E402
from pipelines.estimate.pipeline_stage import prepare_stratum  # noqa: E402
from pipelines.estimate.selection import quick_fit  # noqa: E402


def with_constant(counts: np.ndarray, k: int, constant: float) -> float:
    """The pairwise model fitted to the cells plus ``constant``, less what was added (Evans & Bonett 1994)."""
    y = counts + constant
    y[0] = 0.0
    fit = quick_fit(y, k, tuple(all_pairs(k)))
    return np.nan if fit is None or not fit.converged else fit.estimate - constant * (2 ** k - 1)


def run(replicates: int, seed: int, only: list[str] | None) -> list[dict]:
    out = []
    for index, s in enumerate(build_scenarios()):
        if only and s.name not in only:
            continue
        est = {"mle (the default's log-linear estimate)": [], "evans_bonett_0.5^(k-1)": [], "0.5 every cell": []}
        for r in range(replicates):
            row, ch = prepare_stratum(as_stratum(s.lists, s.draw(np.random.default_rng([seed, index, r]))),
                                      "all_pairwise")
            if "refused_reason" in row:
                continue
            mle = estimate(ch, "all_pairwise")
            if mle.refused:
                continue
            est["mle (the default's log-linear estimate)"].append(mle.estimate)
            est["evans_bonett_0.5^(k-1)"].append(with_constant(ch.counts, ch.k, 0.5 ** (ch.k - 1)))
            est["0.5 every cell"].append(with_constant(ch.counts, ch.k, 0.5))
        rel = {m: np.array(v) / s.total - 1 for m, v in est.items()}
        out.append({"scenario": s.name, "true_total": s.total, "replicates": replicates,
                    **{m: {"bias_mean": float(np.nanmean(v)), "bias_median": float(np.nanmedian(v)),
                           "not_fitted": int(np.isnan(v).sum())} for m, v in rel.items()}})
        print(s.name, {m: f"{100 * np.nanmean(v):+.1f}% ({100 * np.nanmedian(v):+.1f}%)" for m, v in rel.items()},
              flush=True)
    return out


def main(argv=None) -> int:
    return scenario_study("bias_correction.py", __doc__, run, "mse_bias_correction.json", argv)


if __name__ == "__main__":
    raise SystemExit(main())
