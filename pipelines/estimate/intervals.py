"""Confidence intervals for the total population.

``profile``
    Multinomial profile-likelihood interval for the total ``N`` (Cormack 1992),
    as computed by ``Rcapture::closedpCI.t`` (used by Silverman 2014 and the R
    package ``modslavmse``).  For each candidate ``N`` the all-zero cell is given
    count ``N - n``, the model (plus that cell) is fitted as a Poisson GLM, and the
    multinomial profile log-likelihood is
    ``-(deviance(N) - 2 c(N)) / 2`` with
    ``c(N) = n0 log n0 - log n0! + log N! - N log N``, ``n0 = N - n``.
    The interval is ``{N : 2 (l_max - l(N)) <= chi2_1(1 - alpha)}``; the model's
    ``-inf`` terms keep their cells out of every fit.  The lower end is clamped at
    the observed total when the likelihood never falls low enough there.

``profile`` for ``model_average``
    The model-averaged profile-likelihood interval (Fletcher & Turek 2012): each model's
    signed-root profile statistic ``r_i(N)`` is turned into tail areas, averaged with the Akaike
    weights, and the limits solve ``sum_i w_i Phi(r_i(N)) = alpha/2, 1 - alpha/2``
    (:func:`model_averaged_profile_interval`).  ``wald`` averages the log-normal intervals the
    same way; ``bootstrap`` redoes the averaging in every replicate.

``bootstrap``
    Nonparametric (multinomial) bootstrap with BCa limits, as in Chan, Silverman &
    Vincent (2021, ``SparseMSE::estimatepopulation``) and Silverman, Chan &
    Vincent (2024, ``bootstrapcal``/``jackknifecal``/``ntopBCa``): each replicate
    redistributes the ``n`` observed cases over the observed capture histories
    with probabilities proportional to the observed counts (``rng.multinomial``,
    numpy ``default_rng(seed)``) and **reruns the model selection**; the bias
    correction is ``z0 = Phi^-1(#{boot < estimate} / B)``; the acceleration comes
    from a delete-one-case jackknife over capture histories, each weighted by its
    count; limits are type-8 quantiles of the replicates.  For the minimum-BIC
    rules the selection in each replicate is among the top-ranked models on the
    original data (see :func:`default_n_top`).  Replicates for which no
    model can be fitted are dropped and counted in the diagnostics.

``wald``
    Log-normal interval for the unobserved count from the intercept's standard
    error (``SparseMSE::estimatepopulation.0``).  Cheap, not recommended.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq, minimize_scalar
from scipy.special import erfc, gammaln
from scipy.stats import chi2, norm

from .capture_history import CaptureHistory
from .loglinear import _poisson_deviance, irls, irls_batch, model_setup_for, sort_terms
from .selection import MA_DELTA_AIC, MSERefusal, fit_many, rank_models_by_aic, rank_models_by_bic, select

__all__ = ["profile_interval", "wald_interval", "model_averaged_profile_interval", "model_averaged_wald_interval",
           "ProfileLikelihood", "bca_limits", "bootstrap_interval", "IntervalResult"]


@dataclass
class IntervalResult:
    lower: float | None
    upper: float | None
    method: str
    details: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- profile likelihood
class ProfileLikelihood:
    """The multinomial profile log-likelihood of the total ``N`` under one model (Cormack 1992),
    as ``Rcapture::closedpCI.t`` computes it (see the module docstring).  ``ok`` is False when the
    model is not identifiable on these cells."""

    def __init__(self, lists, counts, terms):
        k = len(lists)
        counts = np.asarray(counts, dtype=float)
        setup = model_setup_for(counts, k, sort_terms(terms))
        self.ok = bool(setup.rank_ok)
        if not self.ok:
            return
        self.y = counts[setup.keep_codes]
        self.n = float(self.y.sum())
        zero_row = np.zeros((1, setup.X.shape[1]))
        zero_row[0, 0] = 1.0
        self._Xa = np.vstack([setup.X, zero_row])
        beta, _mu, _conv, _ = irls(setup.X, self.y)
        self.poisson_estimate = self.n + math.exp(min(beta[0], 700.0))
        self._cache: dict[float, float] = {}
        self._max: tuple[float, float] | None = None

    def loglik(self, N: float) -> float:
        hit = self._cache.get(N)
        if hit is not None:
            return hit
        n = self.n
        n0 = max(N - n, 0.0)
        ya = np.append(self.y, n0)
        _b, m, _c, _ = irls(self._Xa, ya)
        dev = float(_poisson_deviance(ya, m))
        ct = (n0 * math.log(n0) if n0 > 0 else 0.0) - gammaln(n0 + 1.0) + gammaln(N + 1.0) - N * math.log(N)
        val = -(dev - 2.0 * ct) / 2.0
        self._cache[N] = val
        return val

    def loglik_many(self, Ns) -> np.ndarray:
        """:meth:`loglik` at many ``N`` at once (one batched fit)."""
        Ns = np.asarray(Ns, dtype=float)
        n0 = np.maximum(Ns - self.n, 0.0)
        Y = np.hstack([np.repeat(self.y[None, :], len(Ns), axis=0), n0[:, None]])
        _b, M, _c = irls_batch(self._Xa, Y)
        dev = _poisson_deviance(Y, M)
        with np.errstate(divide="ignore", invalid="ignore"):
            n0logn0 = np.where(n0 > 0, n0 * np.log(np.where(n0 > 0, n0, 1.0)), 0.0)
        ct = n0logn0 - gammaln(n0 + 1.0) + gammaln(Ns + 1.0) - Ns * np.log(Ns)
        return -(dev - 2.0 * ct) / 2.0

    def maximum(self) -> tuple[float, float]:
        """``(N_max, l_max)``: the multinomial MLE of N and the profile log-likelihood there."""
        if self._max is None:
            n_pois = self.poisson_estimate
            opt = minimize_scalar(lambda N: -self.loglik(N), bounds=(self.n, 1.5 * n_pois), method="bounded",
                                  options={"xatol": 1e-6 * n_pois})
            n_max = float(opt.x)
            self._max = (n_max, self.loglik(n_max))
        return self._max

    def signed_root(self, N: float) -> float:
        """``sign(N - N_max) * sqrt(2 (l_max - l(N)))``: about N(0, 1) at the true N under the model."""
        n_max, lmax = self.maximum()
        return math.copysign(math.sqrt(max(2.0 * (lmax - self.loglik(N)), 0.0)), N - n_max)


def profile_interval(lists, counts, terms, alpha: float = 0.05, max_factor: float = 1000.0) -> IntervalResult:
    prof = ProfileLikelihood(lists, counts, terms)
    if not prof.ok:
        return IntervalResult(None, None, "profile", warnings=["model not identifiable: no profile interval"])
    n, n_pois, loglik = prof.n, prof.poisson_estimate, prof.loglik
    warn: list[str] = []
    n_max, lmax = prof.maximum()
    lmin = lmax - chi2.ppf(1.0 - alpha, 1) / 2.0

    def f(N):
        return loglik(N) - lmin

    if f(n) > 0:
        lower = n
        warn.append("profile interval: lower bound set to the observed total")
    else:
        lower = brentq(f, n, n_max, xtol=1e-8 * n_pois)
    hi = 3.0 * n_pois
    upper = None
    while hi <= max_factor * n_pois:
        if f(hi) < 0:
            upper = brentq(f, n_max, hi, xtol=1e-8 * n_pois)
            break
        hi *= 3.0
    if upper is None:
        upper = math.inf
        warn.append(f"profile interval: upper bound beyond {max_factor:g} x the estimate (unbounded)")
    return IntervalResult(float(lower), float(upper), "profile",
                          details={"multinomial_mle": n_max, "alpha": alpha}, warnings=warn)


# --------------------------------------------------------------------------- model-averaged intervals
#: The interval averages the heaviest models up to this share of the total weight.
MA_INTERVAL_WEIGHT = 0.999


def _interval_models(weights, share: float = MA_INTERVAL_WEIGHT):
    """The heaviest models of ``weights`` ((terms, aic, weight, estimate), by decreasing weight) up to
    ``share`` of the weight, renormalised: [(terms, weight)]."""
    chosen, total = [], 0.0
    for terms, _aic, w, _est in weights:
        chosen.append((terms, w))
        total += w
        if total >= share:
            break
    return [(terms, w / total) for terms, w in chosen]


def _phi(x: np.ndarray) -> np.ndarray:
    return 0.5 * erfc(-np.asarray(x) / math.sqrt(2.0))


def model_averaged_profile_interval(lists, counts, weights, alpha: float = 0.05,
                                    max_factor: float = 1000.0, grid: int = 64) -> IntervalResult:
    """Model-averaged profile-likelihood interval (Fletcher & Turek 2012, the MATA construction of
    Turek & Fletcher 2012 with profile likelihoods): the limits solve
    ``F(N) = sum_i w_i Phi(r_i(N)) = alpha/2`` and ``= 1 - alpha/2``, where ``r_i(N)`` is model i's
    signed root ``sign(N - N_i) sqrt(2 (l_i(N_i) - l_i(N)))`` of its multinomial profile likelihood
    (:class:`ProfileLikelihood`, maximum ``N_i``).  With one model this is that model's profile
    interval.  ``details["median"]`` solves ``F(N) = 1/2``.

    ``F`` is evaluated for every model at once on a grid in ``log(N - n)`` (one batched fit per
    model), and each limit is refined on a finer grid inside its bracket; the limits are exact to
    about 1e-5 relative."""
    counts = np.asarray(counts, dtype=float)
    profs = [(ProfileLikelihood(lists, counts, terms), w) for terms, w in _interval_models(weights)]
    profs = [(p, w) for p, w in profs if p.ok]
    if not profs:
        return IntervalResult(None, None, "profile", warnings=["no identifiable model: no interval"])
    ws = np.array([w for _, w in profs])
    ws = ws / ws.sum()
    n = profs[0][0].n
    scale = max(p.poisson_estimate for p, _ in profs)
    # coarse grid in log(N - n), shared by the models, with N = n itself first
    darks = [max(p.poisson_estimate - n, 0.5) for p, _ in profs]
    us = np.linspace(math.log(min(darks) / 20.0), math.log(max(darks) * 20.0), grid)
    Ns = np.concatenate([[n], n + np.exp(us)])
    maxima, lls = [], []
    for p, _ in profs:  # the multinomial maximum lies a little below the Poisson estimate
        offsets = np.linspace(-max(8.0, 0.02 * (p.poisson_estimate - n)), 1.0, 9)
        cand = np.maximum(p.poisson_estimate + offsets, n)
        both = p.loglik_many(np.concatenate([cand, Ns]))
        ll, lls_p = both[:len(cand)], both[len(cand):]
        j = int(np.argmax(ll))
        if 0 < j < len(cand) - 1 and cand[j - 1] < cand[j]:  # vertex of the parabola through the best three
            (x0, x1, x2), (y0, y1, y2) = cand[j - 1:j + 2], ll[j - 1:j + 2]
            h = x1 - x0
            curv = (y2 - 2 * y1 + y0) / h**2
            slope = (y2 - y0) / (2 * h)
            if curv < 0:
                xm = min(max(x1 - slope / curv, x0), x2)
                maxima.append((xm, y1 + slope * (xm - x1) + 0.5 * curv * (xm - x1) ** 2))
            else:
                maxima.append((float(x1), float(y1)))
        elif j == 0 and cand[0] <= n:
            maxima.append((float(cand[0]), float(ll[0])))
        else:
            maxima.append(p.maximum())
        lls.append(lls_p)

    def F_from(Ns, lls):
        out = np.zeros(len(Ns))
        for w, (nm, lm), ll in zip(ws, maxima, lls):
            out += w * _phi(np.sign(Ns - nm) * np.sqrt(np.maximum(2.0 * (lm - ll), 0.0)))
        return out

    def F(Ns):
        return F_from(Ns, [p.loglik_many(Ns) for p, _ in profs])

    Fs = F_from(Ns, lls)
    warn: list[str] = []
    while Fs[-1] < 1 - alpha / 2 and Ns[-1] < max_factor * scale:  # extend upwards
        more = n + np.exp(np.linspace(math.log(Ns[-1] - n), math.log(Ns[-1] - n) + math.log(27.0), 16)[1:])
        Ns, Fs = np.concatenate([Ns, more]), np.concatenate([Fs, F(more)])

    levels = (alpha / 2, 0.5, 1 - alpha / 2)
    fines = {}
    for level in levels:  # a finer grid inside each bracket, all in one batched fit per model
        if Fs[0] >= level or not (Fs >= level).any():
            continue
        j = int(np.flatnonzero(Fs >= level)[0])
        lo_d = max(Ns[j - 1] - n, (Ns[j] - n) * 1e-3)
        fines[level] = n + np.exp(np.linspace(math.log(lo_d), math.log(Ns[j] - n), 24))
    if fines:
        allfine = np.concatenate(list(fines.values()))
        Fall = F(allfine)
        Ffine, at = {}, 0
        for level, pts in fines.items():
            Ffine[level] = Fall[at:at + len(pts)]
            at += len(pts)

    def solve(level):
        if Fs[0] >= level:
            return n
        if level not in fines:
            return math.inf
        fine, Ff = fines[level], Ffine[level]
        if Ff[0] >= level:
            return float(fine[0])
        i = int(np.flatnonzero(Ff >= level)[0]) if (Ff >= level).any() else len(fine) - 1
        x0, x1, f0, f1 = fine[i - 1], fine[i], Ff[i - 1], Ff[i]
        if not f1 > f0:
            return float(x1)
        z0, z1, zl = norm.ppf([min(max(f0, 1e-300), 1 - 1e-16), min(f1, 1 - 1e-16), level])  # F is ~ probit-linear
        t = (zl - z0) / (z1 - z0) if np.isfinite(z0) and z1 > z0 else (level - f0) / (f1 - f0)
        return float(x0 + (x1 - x0) * min(max(t, 0.0), 1.0))

    lower = solve(alpha / 2)
    if lower <= n:
        warn.append("model-averaged profile interval: lower bound set to the observed total")
    upper = solve(1 - alpha / 2)
    if not math.isfinite(upper):
        warn.append(f"model-averaged profile interval: upper bound beyond {max_factor:g} x the estimate (unbounded)")
    median = solve(0.5)
    return IntervalResult(float(lower), float(upper), "profile",
                          details={"model_averaged": "Fletcher & Turek (2012)", "models_in_interval": len(profs),
                                   "median": float(median), "alpha": alpha},
                          warnings=warn)


def model_averaged_wald_interval(lists, counts, weights, alpha: float = 0.05) -> IntervalResult:
    """MATA-Wald (Turek & Fletcher 2012) on the log of the unobserved count: each model's log-normal
    interval (as :func:`wald_interval`) averaged through its tail areas."""
    from .selection import quick_fit

    counts = np.asarray(counts, dtype=float)
    n = float(counts.sum())
    mus, ses, ws = [], [], []
    for terms, w in _interval_models(weights):
        f = quick_fit(counts, len(lists), terms, want_cov=True)
        if f is None or f.cov is None or not f.cov[0, 0] > 0:
            continue
        mus.append(f.beta[0])
        ses.append(math.sqrt(f.cov[0, 0]))
        ws.append(w)
    if not ws:
        return IntervalResult(None, None, "wald", warnings=["no Wald interval: no model with a standard error"])
    mus, ses, ws = np.array(mus), np.array(ses), np.array(ws) / sum(ws)

    def F(t):
        return float(np.sum(ws * norm.cdf((t - mus) / ses)))

    a, b = float((mus - 10 * ses).min()), float((mus + 10 * ses).max())
    lo = brentq(lambda t: F(t) - alpha / 2, a, b)
    hi = brentq(lambda t: F(t) - (1 - alpha / 2), a, b)
    return IntervalResult(n + math.exp(lo), n + math.exp(hi), "wald", details={"model_averaged": "MATA-Wald"})


# --------------------------------------------------------------------------- Wald (log-normal)
def wald_interval(estimate: float, observed: float, intercept_se: float, alpha: float = 0.05) -> IntervalResult:
    dark = estimate - observed
    if dark <= 0 or not np.isfinite(intercept_se):
        return IntervalResult(None, None, "wald", warnings=["no Wald interval: non-positive dark figure or no SE"])
    z = norm.ppf(1 - alpha / 2)
    return IntervalResult(observed + dark * math.exp(-z * intercept_se), observed + dark * math.exp(z * intercept_se),
                          "wald")


# --------------------------------------------------------------------------- BCa
def bca_limits(boot: np.ndarray, estimate: float, ahat: float, probs) -> np.ndarray:
    boot = np.asarray(boot, dtype=float)
    boot = boot[np.isfinite(boot)]
    B = len(boot)
    prop = np.mean(boot < estimate)
    prop = min(max(prop, 0.5 / B), 1 - 0.5 / B)
    z0 = norm.ppf(prop)
    za = norm.ppf(np.asarray(probs, dtype=float))
    za0 = za + z0
    zq = norm.cdf(z0 + za0 / (1 - ahat * za0))
    return np.quantile(boot, zq, method="median_unbiased")


def _acceleration(jack: np.ndarray, weights: np.ndarray) -> float:
    w = weights
    mean = np.sum(w * jack) / np.sum(w)
    d = mean - jack
    den = np.sum(w * d**2)
    if den <= 0:
        return 0.0
    return float(np.sum(w * d**3) / (6.0 * den**1.5))


def default_n_top(k: int, max_order: int) -> int | None:
    """Bootstrap candidate set for the BIC rules.

    As ``bootstrap_mse`` of Silverman, Chan & Vincent (2024): all models for
    ``max_order <= 3``, the top 20 for ``max_order == 4``, the top 100 beyond.  For
    pairwise-only searches with ``k >= 5`` (1,024+ models) the top 20 are used: the
    2024 paper finds the restriction has little effect, and on UKdat_5 the BCa limits
    from the top 20 and from all 1,024 models are identical.
    """
    if max_order >= 5:
        return 100
    if max_order == 4:
        return 20
    if max_order == 2 and k >= 5:
        return 20
    return None


def bootstrap_interval(
    lists,
    counts,
    method: str,
    estimate: float,
    *,
    n_bootstrap: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    p_threshold: float | None = None,
    max_order: int | None = None,
    n_top: int | None = None,
) -> IntervalResult:
    lists = tuple(lists)
    k = len(lists)
    counts = np.asarray(counts, dtype=float)
    n = int(round(counts.sum()))
    rng = np.random.default_rng(seed)
    boot = rng.multinomial(n, counts / counts.sum(), size=n_bootstrap).astype(float)
    observed_cells = np.flatnonzero(counts > 0)
    jack = np.repeat(counts[None, :], len(observed_cells), axis=0)
    jack[np.arange(len(observed_cells)), observed_cells] -= 1.0
    weights = counts[observed_cells]
    details: dict = {"n_bootstrap": n_bootstrap, "seed": seed, "resampling": "multinomial over observed histories"}

    if method in ("min_bic", "min_bic_pairwise"):
        mo = (k - 1 if max_order is None else max(1, min(int(max_order), k - 1))) if method == "min_bic" else min(2, k - 1)
        if n_top is None:
            n_top = default_n_top(k, mo)
        ranked = rank_models_by_bic(lists, counts, mo, n_top)
        details.update({"candidate_models": len(ranked), "max_order": mo})

        def estimates_for(C):
            E = np.full((len(ranked), C.shape[0]), np.nan)
            Bc = np.full_like(E, np.nan)
            for i, (terms, _bic, _est) in enumerate(ranked):
                E[i], Bc[i] = fit_many(C, k, terms)
            out = np.full(C.shape[0], np.nan)
            finite = np.isfinite(Bc)
            anyf = finite.any(axis=0)
            Bc2 = np.where(finite, Bc, np.inf)
            best = np.argmin(Bc2, axis=0)
            out[anyf] = E[best[anyf], np.flatnonzero(anyf)]
            return out

        reps = estimates_for(boot)
        jk = estimates_for(jack)
    elif method == "model_average":
        # Averaging redone in every replicate, over the models that carry weight on the original
        # data (AIC within MA_DELTA_AIC of the best there), weights recomputed per replicate.
        ranked = rank_models_by_aic(lists, counts, min(2, k - 1), MA_DELTA_AIC)
        details.update({"candidate_models": len(ranked)})

        def estimates_for(C):
            E = np.full((len(ranked), C.shape[0]), np.nan)
            A = np.full_like(E, np.nan)
            logn = np.log(np.maximum(C.sum(axis=1), 1.0))
            for i, (terms, _aic, _est) in enumerate(ranked):
                E[i], bic = fit_many(C, k, terms)
                npar = 1 + k + len(terms)
                A[i] = bic - npar * logn + 2 * npar
            finite = np.isfinite(A) & np.isfinite(E)
            A = np.where(finite, A, np.inf)
            best = np.where(finite.any(axis=0), A.min(axis=0), 0.0)
            with np.errstate(invalid="ignore", over="ignore"):
                W = np.where(finite & (A - best <= MA_DELTA_AIC), np.exp(-(A - best) / 2.0), 0.0)
            tot = W.sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(tot > 0, np.nansum(np.where(finite, W * E, 0.0), axis=0) / tot, np.nan)

        reps = estimates_for(boot)
        jk = estimates_for(jack)
    elif method == "independence":
        reps, _ = fit_many(boot, k, ())
        jk, _ = fit_many(jack, k, ())
    else:
        kw = {"p_threshold": p_threshold}

        codes = np.arange(len(counts))

        def one(c):
            # A replicate in which a small list happens to get no case: the list is
            # uninformative there and is dropped (in the reference R code its main
            # effect simply diverges to -inf, with the same estimate).
            empty = [lists[j] for j in range(k) if c[(codes >> j & 1) == 1].sum() == 0]
            try:
                if empty:
                    if k - len(empty) < 2:
                        return np.nan
                    sub = CaptureHistory(lists, c).drop_lists(empty)
                    return select(method, sub.lists, np.asarray(sub.counts), **kw).estimate
                return select(method, lists, c, **kw).estimate
            except MSERefusal:
                return np.nan

        reps = np.array([one(c) for c in boot])
        jk = np.array([one(c) for c in jack])

    failed = int(np.sum(~np.isfinite(reps)))
    warn = []
    if failed:
        warn.append(f"bootstrap: {failed} of {n_bootstrap} replicates gave no estimate and were dropped")
    if np.sum(np.isfinite(reps)) < 10:
        return IntervalResult(None, None, "bootstrap", details=details, warnings=warn + ["too few usable replicates"])
    jk_ok = np.isfinite(jk)
    if not jk_ok.all():
        warn.append(f"jackknife: {int((~jk_ok).sum())} deletions gave no estimate and were ignored")
    ahat = _acceleration(jk[jk_ok], weights[jk_ok]) if jk_ok.sum() > 1 else 0.0
    lo, hi = bca_limits(reps, estimate, ahat, [alpha / 2, 1 - alpha / 2])
    finite = reps[np.isfinite(reps)]
    details.update(
        {
            "acceleration": ahat,
            "bias_correction_z0": float(norm.ppf(min(max(np.mean(finite < estimate), 0.5 / len(finite)),
                                                     1 - 0.5 / len(finite)))),
            "failed_replicates": failed,
            "replicate_median": float(np.median(finite)),
            "percentile_interval": [float(np.quantile(finite, alpha / 2)), float(np.quantile(finite, 1 - alpha / 2))],
        }
    )
    return IntervalResult(float(lo), float(hi), "bootstrap", details=details, warnings=warn)
