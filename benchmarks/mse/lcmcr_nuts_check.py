"""Independent check of the latent_class Gibbs sampler: NUTS (NumPyro) on the same posterior.

    python -m venv /tmp/nuts && /tmp/nuts/bin/pip install numpyro pandas
    /tmp/nuts/bin/python benchmarks/mse/lcmcr_nuts_check.py tests/data/mse/Kosovo.csv [--classes 10]

NumPyro is not a dependency of the project; run this in a scratch environment. The model is LCMCR's
(truncated stick-breaking weights, alpha ~ Gamma(0.25, 0.25), capture probabilities ~ Beta(1, 1),
p(N) proportional to 1/N) with N integrated out: the prior 1/N turns the likelihood into the multinomial
of the observed cells given "seen", p_c / (1 - p_0), and N - n given the parameters is
NegativeBinomial(n, 1 - p_0), drawn once per posterior draw. Prints the 2.5%, 50% and 97.5% quantiles of N
(docs/mse.md, "Latent classes", compares them with ``concilia mse TABLE --method latent_class``).
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer import MCMC, NUTS


def dense_counts(path: str) -> np.ndarray:
    table = pd.read_csv(path)
    lists = [c for c in table.columns if c != "count"]
    codes = (table[lists].to_numpy().astype(int) << np.arange(len(lists))).sum(axis=1)
    return np.bincount(codes, weights=table["count"].to_numpy(), minlength=2 ** len(lists))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("table")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    counts, K = dense_counts(args.table), args.classes
    k = int(np.log2(len(counts)))
    x = jnp.asarray(((np.arange(2 ** k)[:, None] >> np.arange(k)) & 1).astype(float))
    y = jnp.asarray(counts[1:])

    def model():
        alpha = numpyro.sample("alpha", dist.Gamma(0.25, 0.25))
        v = jnp.concatenate([numpyro.sample("v", dist.Beta(jnp.ones(K - 1), alpha * jnp.ones(K - 1))), jnp.ones(1)])
        pi = v * jnp.concatenate([jnp.ones(1), jnp.cumprod(1 - v[:-1])])
        lam = numpyro.sample("lam", dist.Beta(jnp.ones((K, k)), jnp.ones((K, k))))
        cell = jnp.exp(jax.scipy.special.logsumexp(jnp.log(pi)[:, None] + jnp.log(lam) @ x.T
                                                   + jnp.log1p(-lam) @ (1 - x).T, axis=0))
        numpyro.deterministic("p0", cell[0])
        numpyro.factor("seen", jnp.sum(y * (jnp.log(cell[1:]) - jnp.log1p(-cell[0]))))

    mcmc = MCMC(NUTS(model, target_accept_prob=0.95), num_warmup=1500, num_samples=3000, num_chains=4,
                chain_method="sequential", progress_bar=False)
    mcmc.run(jax.random.PRNGKey(args.seed))
    p0 = np.asarray(mcmc.get_samples(group_by_chain=True)["p0"])
    n = int(counts[1:].sum())
    N = (n + np.random.default_rng(args.seed).negative_binomial(n, 1 - p0)).astype(float)
    print(f"NUTS, K = {K}: N quantiles (2.5%, 50%, 97.5%) {np.quantile(N, [0.025, 0.5, 0.975]).round(0)}, "
          f"R-hat {float(split_gelman_rubin(N)):.3f}, ESS {float(effective_sample_size(N)):.0f}, "
          f"divergences {int(mcmc.get_extra_fields()['diverging'].sum())}")


if __name__ == "__main__":
    main()
