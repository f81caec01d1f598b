"""The stratified estimate: the strata of one dimension estimated one by one and summed.

Capture differs between strata (women and men, children and adults reach different agencies), so a
sum of per-stratum estimates carries less heterogeneity bias than one estimate over everyone (Ball et
al. 2003 stratified Peru's truth-commission estimate by region). Strata too sparse to estimate are
merged by the declared rule (``merge_sparse``). The interval of the sum accounts for every stratum:

* ``latent_class``: the strata's posterior draws of N are summed draw by draw (independent posteriors,
  so the sum of draws is a draw of the sum) and the interval is the sum's posterior quantiles;
* log-linear methods: each stratum's uncertainty is a log-normal on its unseen count, split at the
  point estimate so that its 2.5% and 97.5% points are the stratum's own interval ends (profile
  intervals are skewed); the strata are independent, so the sum's interval is taken from the sum of
  ``MONTE_CARLO_DRAWS`` draws (seeded). The point estimate is the sum of the strata's estimates.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

MONTE_CARLO_DRAWS = 20000
SUM_PREFIX = "sum:"


def merge_sparse(groups: list, fit, observed, min_persons: int) -> tuple[list, list]:
    """Merge sparse strata until every one is estimated. ``groups`` are lists of strata, ``fit(group)``
    returns its row, ``observed(group)`` its persons. A group with fewer than ``min_persons`` persons, or
    whose estimate is refused, is merged with the smallest other group; repeated until none is left
    or one group remains. Returns (groups, rows)."""
    groups = [list(g) for g in groups]
    while True:
        rows = [fit(g) for g in groups]
        sparse = [i for i, (g, r) in enumerate(zip(groups, rows))
                  if observed(g) < min_persons or r.get("estimate") is None]
        if not sparse or len(groups) == 1:
            return groups, rows
        i = min(sparse, key=lambda i: observed(groups[i]))
        j = min((j for j in range(len(groups)) if j != i), key=lambda j: observed(groups[j]))
        groups[j] = groups[j] + groups[i]
        del groups[i]


def sum_estimates(rows: list[dict], alpha: float = 0.05, seed: int = 0) -> dict:
    """{estimate, lower, upper, interval_method} of the sum of the strata's estimates (rows all estimated)."""
    if all(r.get("draws") is not None for r in rows):
        length = min(len(r["draws"]) for r in rows)
        total = np.sum([np.asarray(r["draws"][:length], float) for r in rows], axis=0)
        lower, median, upper = np.quantile(total, [alpha / 2, 0.5, 1 - alpha / 2])
        return {"estimate": float(median), "lower": float(lower), "upper": float(upper),
                "interval_method": "sum of the strata's posterior draws"}
    rng = np.random.default_rng(seed)
    z = norm.ppf(1 - alpha / 2)
    total = np.zeros(MONTE_CARLO_DRAWS)
    for r in rows:
        unseen = max(r["estimate"] - r["observed"], 0.5)
        low = max(r["lower"] - r["observed"], 0.5) if r.get("lower") is not None else unseen
        high = (max(r["upper"] - r["observed"], unseen) if r.get("upper") is not None else np.inf)
        centre = np.log(unseen)
        below = max(centre - np.log(min(low, unseen)), 0.0) / z
        above = (np.log(high) - centre) / z if np.isfinite(high) else np.inf
        d = rng.standard_normal(MONTE_CARLO_DRAWS)
        total += r["observed"] + np.exp(centre + np.where(d < 0, below, above) * d)
    lower, upper = np.quantile(total, [alpha / 2, 1 - alpha / 2])
    return {"estimate": float(sum(r["estimate"] for r in rows)), "lower": float(lower),
            "upper": float(upper) if np.isfinite(upper) else None,
            "interval_method": "sum of the strata (split log-normal per stratum, Monte Carlo)"}
