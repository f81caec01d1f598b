"""Latent-class multiple systems estimation (LCMCR; Manrique-Vallier 2016, *Biometrics* 72:1246).

People differ in how visible they are. The model lets them: each person belongs to one of K latent
classes, and given the class the lists capture independently, with class-specific probabilities
``lam[k, j]``. The class weights come from a truncated stick-breaking Dirichlet process with
concentration ``alpha ~ Gamma(a, b)``; ``lam[k, j] ~ Beta(1, 1)``; ``p(N) ∝ 1/N``. The data-augmentation
Gibbs sampler of the paper draws, in turn, the class of every person (the unseen ones included, as the
all-zero cell), the capture probabilities, the stick-breaking weights, alpha and the number of unseen
persons ``n0 ~ NegativeBinomial(n, 1 - p0)`` where ``p0`` is the probability of the all-zero history.

The sampler works on cell counts, not on persons: the class labels of the ``y_c`` persons of cell ``c``
are one multinomial draw, so an iteration costs O(2^k * K) whatever the population, and all chains are
updated together as one batch of arrays. The estimate is the posterior median of N, the interval the
equal-tailed posterior quantiles; R-hat and the effective sample sizes (bulk and tail, ArviZ) come from
the chains.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["LatentClassSettings", "LatentClassFit", "fit_latent_class", "RHAT_LIMIT", "ESS_MIN"]

#: Convergence thresholds of Vehtari et al. (2021): above / below these the diagnostics warn.
RHAT_LIMIT = 1.01
ESS_MIN = 400


@dataclass(frozen=True)
class LatentClassSettings:
    """Prior and sampler settings: LCMCR's prior (``a_alpha = b_alpha = 0.25``) and its Kosovo example's
    truncation and chain length (``lcmCR(K = 10, ...)``, ``lcmCR_PostSampl(burnin = 10000, samples = 1000,
    thinning = 100)``; the package's default truncation is K = 5)."""

    classes: int = 10  # K*, the truncation of the stick-breaking process
    a_alpha: float = 0.25
    b_alpha: float = 0.25
    # Chain lengths of LCMCR's own Kosovo example (burn-in 10,000, 1,000 draws thinned by 100), on eight
    # chains: N mixes slowly (autocorrelation time 600 to 2,700 iterations on Kosovo; a chain started far off
    # takes thousands of iterations to come back), and eight chains cost little more than four here
    # (numpy's per-call overhead dominates at this size).
    chains: int = 8
    burn_in: int = 10000
    draws: int = 1000  # kept per chain
    thin: int = 100


@dataclass
class LatentClassFit:
    draws: np.ndarray  # (chains, draws) posterior draws of N
    observed: int
    settings: LatentClassSettings
    diagnostics: dict

    def quantiles(self, probs) -> np.ndarray:
        return np.quantile(self.draws, probs)


def _cells(k: int) -> np.ndarray:
    codes = np.arange(2 ** k)
    return ((codes[:, None] >> np.arange(k)) & 1).astype(float)


def _sticks(v: np.ndarray) -> np.ndarray:
    """Stick-breaking weights from V (..., K), V[..., -1] = 1."""
    rest = np.cumprod(np.concatenate([np.ones_like(v[..., :1]), 1 - v[..., :-1]], axis=-1), axis=-1)
    return v * rest


def fit_latent_class(counts: np.ndarray, seed: int = 0,
                     settings: LatentClassSettings = LatentClassSettings()) -> LatentClassFit:
    """Posterior draws of N for the dense capture-history ``counts`` (length 2^k, ``counts[0]`` unused)."""
    started = time.perf_counter()
    draws, occupied, alphas = sample_posterior(np.asarray(counts, float)[None, :], seed, settings)
    draws, s = draws[0], settings
    diagnostics = {
        "sampler": "data-augmentation Gibbs sampler (Manrique-Vallier 2016), numpy, chains batched",
        "prior": {"classes": s.classes, "alpha": f"Gamma({s.a_alpha}, {s.b_alpha})", "capture": "Beta(1, 1)",
                  "N": "p(N) proportional to 1/N"},
        "settings": asdict(s),
        "seed": seed,
        "posterior_mean": float(draws.mean()),
        "posterior_sd": float(draws.std(ddof=1)),
        "classes_occupied_mean": float(occupied.mean()),
        "alpha_mean": float(alphas.mean()),
        **convergence(draws),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return LatentClassFit(draws=draws, observed=int(round(counts[1:].sum())), settings=s, diagnostics=diagnostics)


def sample_posterior(counts: np.ndarray, seed: int, settings: LatentClassSettings):
    """Gibbs sampler for R tables at once: ``counts`` (R, 2^k) -> draws of N (R, chains, draws), classes
    occupied and alpha (same shape). Every chain of every table is one row of the same arrays, so the
    per-iteration cost of numpy's calls is paid once for all (the simulation fits its replicates this way)."""
    r, c = counts.shape
    k = int(np.log2(c))
    s = settings
    if min(s.classes, s.chains, s.draws, s.thin) < 1 or s.burn_in < 0 or s.classes < 2:
        raise ValueError("latent_class needs at least 2 classes, and at least 1 chain, draw and thinning step")
    x = _cells(k)  # (C, J)
    xt, not_xt = x.T.copy(), (1 - x).T.copy()
    y_obs = np.rint(counts).astype(np.int64)
    y_obs[:, 0] = 0
    n = np.repeat(y_obs.sum(axis=1), s.chains)  # (M,), M = R * chains: chains of a table are adjacent rows
    m, kk = r * s.chains, s.classes
    rng = np.random.default_rng(seed)

    # dispersed starting points, one per chain
    lam = rng.beta(1.0, 1.0, size=(m, kk, k))
    alpha = np.full(m, 1.0)
    v = rng.beta(1.0, alpha[:, None], size=(m, kk))
    v[:, -1] = 1.0
    pi = _sticks(v)
    n0 = np.floor(rng.uniform(0.25, 2.0, size=m) * n).astype(np.int64)

    kept = np.empty((m, s.draws), dtype=np.int64)
    occupied = np.empty((m, s.draws), dtype=np.int64)
    alphas = np.empty((m, s.draws))
    y = np.repeat(y_obs, s.chains, axis=0)
    for it in range(s.burn_in + s.draws * s.thin):
        y[:, 0] = n0
        # class of every person, per cell: multinomial over classes
        logp = np.log(pi)[:, :, None] + np.log(lam) @ xt + np.log1p(-lam) @ not_xt  # (M, K, C)
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        p /= p.sum(axis=1, keepdims=True)
        z = rng.multinomial(y, p.transpose(0, 2, 1))  # (M, C, K)
        nk = z.sum(axis=1)  # (M, K)
        on = z.transpose(0, 2, 1) @ x  # (M, K, J): persons of class k on list j
        lam = np.clip(rng.beta(1.0 + on, 1.0 + nk[:, :, None] - on), 1e-12, 1 - 1e-12)
        after = np.cumsum(nk[:, ::-1], axis=1)[:, ::-1]  # persons in class k or later
        v = np.clip(rng.beta(1.0 + nk[:, :-1], alpha[:, None] + after[:, 1:]), 1e-12, 1 - 1e-12)
        alpha = rng.gamma(s.a_alpha + kk - 1, 1.0 / (s.b_alpha - np.log1p(-v).sum(axis=1)))
        pi = _sticks(np.concatenate([v, np.ones((m, 1))], axis=1))
        p0 = (pi * np.prod(1 - lam, axis=2)).sum(axis=1)  # probability of the all-zero history
        n0 = rng.negative_binomial(n, np.clip(1 - p0, 1e-300, 1.0))
        if it >= s.burn_in and (it - s.burn_in) % s.thin == s.thin - 1:
            d = (it - s.burn_in) // s.thin
            kept[:, d] = n + n0
            occupied[:, d] = (nk > 0).sum(axis=1)
            alphas[:, d] = alpha
    shape = (r, s.chains, s.draws)
    return kept.astype(float).reshape(shape), occupied.reshape(shape), alphas.reshape(shape)


def convergence(draws: np.ndarray) -> dict:
    """Rank-normalised split R-hat and bulk/tail ESS of the N draws (chains, draws), by ArviZ
    (``arviz_stats``, the array functions of ArviZ without xarray)."""
    from arviz_stats.base import array_stats

    rhat = float(array_stats.rhat(draws, chain_axis=0, draw_axis=1))
    bulk = float(array_stats.ess(draws, chain_axis=0, draw_axis=1, method="bulk"))
    # tail ESS at the interval's own quantiles (ArviZ's default is 5% and 95%)
    tail = float(array_stats.ess(draws, chain_axis=0, draw_axis=1, method="tail", prob=(0.025, 0.975)))
    warnings = []
    if not np.isfinite(rhat) or rhat > RHAT_LIMIT:
        warnings.append(f"R-hat of N is {rhat:.3f} (> {RHAT_LIMIT}): the chains have not mixed; run longer")
    if min(bulk, tail) < ESS_MIN:
        warnings.append(f"effective sample size of N is {min(bulk, tail):.0f} (< {ESS_MIN}): the interval's ends "
                        "are imprecise; run more draws")
    return {"rhat": rhat, "ess_bulk": bulk, "ess_tail": tail, "convergence_warnings": warnings}
