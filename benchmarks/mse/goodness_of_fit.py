"""How often the default's tests reject the pairwise model, per simulated scenario (no latent-class fits).

    .venv/bin/python benchmarks/mse/goodness_of_fit.py [--replicates 200] [--scenario NAME ...] [--out FILE]

The default (``pairwise_or_latent_class``) reports ``latent_class`` where the table rejects the model with
every pairwise interaction (``pipelines/estimate/fit_tests.py``). A rejection is right in Manrique-Vallier's
design (the pairwise model is +175% off on its expected table, ``latent_class`` covers) and wrong in the
log-linear and logit-normal scenarios (the pairwise model covers, ``latent_class`` does not). Each
replicate is the simulation's table (``simulate.py``'s seeds), through the stage's lists and refusals.
Counted per scenario: tables with residual degrees of freedom (four lists or more after merging), and
rejections at p < 0.01 by

* ``deviance``: the omnibus deviance test, chi-squared asymptotics (the rule before this check);
* ``deviance_bootstrap``: the same deviance, its p-value from a parametric bootstrap (999 tables from the
  fitted model, total fixed): is the chi-squared reference what limits the test on sparse tables?
* ``heterogeneity``: the likelihood ratio against the equal higher-order interactions;
* ``rule``: what the default does (``goodness_of_fit``: the heterogeneity test).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import chi2

sys.path.insert(0, str(Path(__file__).resolve().parent))
from simulate import as_stratum, build_scenarios, scenario_study  # noqa: E402

from pipelines.estimate import PAIRWISE_OR_LATENT_CLASS, estimate, goodness_of_fit  # noqa: E402
from pipelines.estimate.loglinear import _poisson_deviance, irls_batch, model_setup_for, parse_term  # noqa: E402
from pipelines.estimate.pipeline_stage import prepare_stratum  # noqa: E402

P = 0.01
BOOTSTRAP = 999


def bootstrap_p(ch, model, seed: int) -> float:
    """The deviance's p-value from tables drawn from the fitted model (multinomial, total fixed), each refitted."""
    setup = model_setup_for(ch.counts, ch.k, tuple(sorted(parse_term(t, ch.lists) for t in model)))
    y = ch.counts[setup.keep_codes]
    _, mu, _ = irls_batch(setup.X, y[None, :])
    observed = float(_poisson_deviance(y, mu[0]))
    tables = np.random.default_rng([seed, 18]).multinomial(int(y.sum()), mu[0] / mu[0].sum(), BOOTSTRAP)
    _, mu_b, _ = irls_batch(setup.X, tables.astype(float))
    return float((1 + np.sum(_poisson_deviance(tables, mu_b) >= observed - 1e-9)) / (BOOTSTRAP + 1))


def run(replicates: int, seed: int, only: list[str] | None) -> list[dict]:
    out = []
    for index, s in enumerate(build_scenarios()):
        if only and s.name not in only:
            continue
        t = time.perf_counter()
        counts = {"testable": 0, "deviance": 0, "deviance_bootstrap": 0, "heterogeneity": 0, "rule": 0}
        for r in range(replicates):
            row, ch = prepare_stratum(as_stratum(s.lists, s.draw(np.random.default_rng([seed, index, r]))),
                                      PAIRWISE_OR_LATENT_CLASS)
            if "refused_reason" in row or row["method"] != PAIRWISE_OR_LATENT_CLASS:
                continue
            fit = estimate(ch, "all_pairwise")
            if fit.refused:
                continue
            test = goodness_of_fit(ch, fit.model)
            if test["p_value"] is None:
                continue
            het = test["heterogeneity"]
            counts["testable"] += 1
            counts["deviance"] += chi2.sf(test["deviance"], test["df"]) < P
            counts["deviance_bootstrap"] += bootstrap_p(ch, fit.model, r) < P
            counts["heterogeneity"] += het is not None and het["p_value"] < P
            counts["rule"] += test["rejected"]
        out.append({"scenario": s.name, "kind": s.kind, "replicates": replicates,
                    **{key: int(v) for key, v in counts.items()}, "seconds": round(time.perf_counter() - t, 1)})
        print(out[-1], flush=True)
    return out


def main(argv=None) -> int:
    return scenario_study("goodness_of_fit.py", __doc__, run, "mse_goodness_of_fit.json", argv, p_threshold=P, bootstrap_tables=BOOTSTRAP)


if __name__ == "__main__":
    raise SystemExit(main())
