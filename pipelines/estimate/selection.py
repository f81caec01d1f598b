"""Model selection rules for MSE.

Each rule takes ``(lists, counts)`` (see :mod:`.capture_history`) and returns a
:class:`Selection`; all use the fast numpy engine so that they can be rerun
inside the bootstrap.  The fit that is finally *reported* is redone with
statsmodels by :func:`pipelines.estimate.estimate`.

Rules
-----
``independence``
    Main effects only.
``stepwise_bhs``
    Bales, Hesketh & Silverman (2015) / Silverman (2014), as in the R package
    ``modslavmse`` (``MSEfit``): starting from main effects, add the pairwise
    interaction whose model has the lowest AIC, provided the AIC improves and the
    Wald p-value of the added coefficient is below ``p_threshold`` (default 0.05).
    A pair with no overlap would be fitted at ``-inf``; its Wald test has no
    information (in R the coefficient diverges and p ~ 1), so its p-value is 1.
``stepwise_csv``
    Chan, Silverman & Vincent (2021), as in ``SparseMSE::stepwisefit``: add the
    pair with the smallest one-sided Poisson p-value of its overlap count
    ``n*_ij`` under the current model, ``min(P(X <= n*), P(X >= n*))`` with
    ``X ~ Poisson(sum of fitted cells containing both lists)``, while that
    p-value is below ``p_threshold`` (default 0.02), skipping pairs whose model
    fails the identifiability (rank) or MLE-existence (linear program) check.
``min_bic``
    Minimum BIC over all hierarchical log-linear models with interactions up to
    order ``max_order`` (default ``k - 1``; the saturated model is not
    identifiable), as in Silverman, Chan & Vincent (2024).  BIC uses the number
    of observed cases as sample size and counts ``-inf`` parameters.  Models whose
    MLE does not exist are discarded.  Exhaustive: ``k <= 5``.
``min_bic_pairwise``
    The same over models with pairwise interactions only (``k <= 6``).
``model_average``
    No single model is chosen.  Every model with main effects and any set of pairwise
    interactions (``k <= 6``) whose MLE exists is fitted and weighted by its Akaike weight
    ``exp(-AIC/2)`` (Buckland, Burnham & Augustin 1997); models more than
    ``MA_DELTA_AIC`` above the best get no weight.  The estimate is the weighted mean of
    the models' estimates; the interval (:mod:`.intervals`) is the model-averaged
    profile-likelihood interval of Fletcher & Turek (2012).  A dependence the data cannot
    rule out keeps its weight instead of being dropped by a test with no power.
``all_pairwise``
    Main effects and every pairwise interaction, no selection. With three lists it is the richest
    identifiable model (it fits the seven observed cells exactly; N rests only on "no three-list
    interaction"), and it contains the heterogeneity model of Darroch et al. (1993, *JASA* 88:1137),
    whose equal pairwise interactions are what people of unequal visibility produce. Where its MLE
    does not exist (a zero overlap cell), the model average is used instead and a note says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Sequence

import numpy as np
from scipy.stats import norm

from .loglinear import (
    Terms,
    _poisson_deviance,
    all_pairs,
    irls,
    irls_batch,
    mle_exists,
    nstar_vector,
    popcount,
    setup_model,
    sort_terms,
    sparse_terms,
    term_name,
)
from scipy.special import gammaln, pdtr, pdtrc

__all__ = [
    "Selection",
    "MSERefusal",
    "METHODS",
    "select",
    "enumerate_hierarchical",
    "MAX_LISTS_MIN_BIC",
    "MAX_LISTS_MIN_BIC_PAIRWISE",
]

#: Exhaustive search bounds (number of candidate models grows super-exponentially:
#: k=3: 8, k=4: 113, k=5: 7,580 hierarchical models below the saturated one;
#: k=6 would be ~7.8 million).  Pairwise-only: 2**(k(k-1)/2) models, 32,768 at k=6.
MAX_LISTS_MIN_BIC = 5
MAX_LISTS_MIN_BIC_PAIRWISE = 6

METHODS = ("model_average", "all_pairwise", "stepwise_csv", "independence", "stepwise_bhs", "min_bic",
           "min_bic_pairwise")
#: ``model_average``: models whose AIC is more than this above the best one get no weight
#: (relative weight below exp(-10) = 4.5e-5).
MA_DELTA_AIC = 20.0
DEFAULT_P = {"stepwise_csv": 0.02, "stepwise_bhs": 0.05}


class MSERefusal(Exception):
    """The data cannot support an estimate; ``reason`` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class QuickFit:
    terms: Terms
    sparse: Terms
    estimate: float
    loglik: float
    aic: float
    bic: float
    n_params: int
    fitted: np.ndarray  # over all 2**k codes
    beta: np.ndarray
    cov: np.ndarray | None
    converged: bool


@dataclass
class Selection:
    method: str
    terms: Terms
    fit: QuickFit
    trace: list[dict] = field(default_factory=list)
    candidates: list[tuple[Terms, float, float]] = field(default_factory=list)  # (terms, bic, estimate), ranked
    notes: list[str] = field(default_factory=list)
    #: ``model_average``: (terms, AIC, weight, estimate), by decreasing weight; ``fit`` is the heaviest model
    weights: list[tuple[Terms, float, float, float]] = field(default_factory=list)
    average: float | None = None

    @property
    def estimate(self) -> float:
        return self.fit.estimate if self.average is None else self.average


# --------------------------------------------------------------------------- quick fits
_LP_CACHE: dict = {}


def exists_cached(setup, y: np.ndarray) -> bool:
    key = (setup.k, setup.terms, setup.sparse, (y > 0).tobytes())
    hit = _LP_CACHE.get(key)
    if hit is None:
        if len(_LP_CACHE) > 200000:
            _LP_CACHE.clear()
        hit = _LP_CACHE[key] = mle_exists(setup.X, y)
    return hit


def quick_fit(counts: np.ndarray, k: int, terms: Terms, want_cov: bool = False) -> QuickFit | None:
    """Newton fit; ``None`` when the model is not identifiable on these cells."""
    terms = sort_terms(terms)
    setup = setup_model(k, terms, sparse_terms(counts, terms))
    if not setup.rank_ok:
        return None
    y = counts[setup.keep_codes]
    beta, mu, conv, _ = irls(setup.X, y)
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = float(np.sum(np.where(y > 0, y * np.log(mu), 0.0) - mu - gammaln(y + 1.0)))
    n = float(counts.sum())
    npar = setup.n_params
    fitted = np.zeros(len(counts))
    fitted[setup.keep_codes] = mu
    fitted[0] = math.exp(min(beta[0], 700.0))
    cov = None
    if want_cov:
        xtw = setup.X.T * mu
        try:
            cov = np.linalg.inv(xtw @ setup.X)
        except np.linalg.LinAlgError:
            cov = None
    return QuickFit(
        terms=terms,
        sparse=setup.sparse,
        estimate=n + fitted[0],
        loglik=ll,
        aic=2 * npar - 2 * ll,
        bic=npar * math.log(max(n, 1.0)) - 2 * ll,
        n_params=npar,
        fitted=fitted,
        beta=beta,
        cov=cov,
        converged=conv,
    )


def model_ok(counts: np.ndarray, k: int, terms: Terms) -> bool:
    """Identifiable and MLE exists (SparseMSE ``checkident`` == 0)."""
    terms = sort_terms(terms)
    setup = setup_model(k, terms, sparse_terms(counts, terms))
    if not setup.rank_ok:
        return False
    y = counts[setup.keep_codes]
    if screen_exists(setup, y):
        return True
    return exists_cached(setup, y)


def support_identifies(X: np.ndarray, y: np.ndarray) -> bool:
    """Sufficient condition for MLE existence: the design restricted to the cells with
    positive counts has full column rank, so no direction of the parameters can send
    zero cells' fitted values to 0 while leaving the observed cells unchanged."""
    pos = y > 0
    if pos.all():
        return True
    Xs = X[pos]
    return Xs.shape[0] >= Xs.shape[1] and np.linalg.matrix_rank(Xs) == Xs.shape[1]


def screen_exists(setup, y: np.ndarray) -> bool:
    """``True`` if :func:`support_identifies`; ``False`` means "ask the linear program"."""
    return support_identifies(setup.X, y)


def fit_many(counts_matrix: np.ndarray, k: int, terms: Terms, check_exists: bool = True):
    """Fit one model to many tables (rows of ``counts_matrix``, each over 2**k codes).

    Returns ``(estimate, bic)`` arrays; NaN where the model is not identifiable or
    its MLE does not exist.
    """
    C = np.asarray(counts_matrix, dtype=float)
    B = C.shape[0]
    est = np.full(B, np.nan)
    bic = np.full(B, np.nan)
    terms = sort_terms(terms)
    if terms:
        ns = C @ ((np.arange(C.shape[1])[:, None] & np.array(terms)[None, :]) == np.array(terms)[None, :]).astype(float)
        zero = ns == 0
    else:
        zero = np.zeros((B, 0), dtype=bool)
    groups: dict[bytes, list[int]] = {}
    for b in range(B):
        groups.setdefault(zero[b].tobytes(), []).append(b)
    for key, idx in groups.items():
        zmask = np.frombuffer(key, dtype=bool)
        sparse = tuple(t for t, z in zip(terms, zmask) if z)
        setup = setup_model(k, terms, sparse)
        if not setup.rank_ok:
            continue
        idx = np.asarray(idx)
        Y = C[idx][:, setup.keep_codes]
        beta, MU, conv = irls_batch(setup.X, Y)
        if check_exists:
            # Exact shortcut before the (slower) linear program: if the cells with
            # positive counts alone identify every parameter (full column rank),
            # the MLE exists.  Otherwise the LP decides (cached by support).
            suspect = np.array([not support_identifies(setup.X, y) for y in Y], dtype=bool)
            ok = np.ones(len(idx), dtype=bool)
            for r in np.flatnonzero(suspect):
                ok[r] = exists_cached(setup, Y[r])
            idx, Y, beta, MU, conv = idx[ok], Y[ok], beta[ok], MU[ok], conv[ok]
            if len(idx) == 0:
                continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ll = np.sum(np.where(Y > 0, Y * np.log(MU), 0.0) - MU - gammaln(Y + 1.0), axis=1)
        n = C[idx].sum(axis=1)
        e = n + np.exp(np.minimum(beta[:, 0], 700.0))
        bb = setup.n_params * np.log(np.maximum(n, 1.0)) - 2 * ll
        e[~conv] = np.nan
        bb[~conv] = np.nan
        est[idx] = e
        bic[idx] = bb
    return est, bic


# --------------------------------------------------------------------------- rules
def _require_main(counts: np.ndarray, k: int) -> QuickFit:
    if not model_ok(counts, k, ()):
        raise MSERefusal(
            "the maximum likelihood estimate does not exist even for the main-effects model "
            "(e.g. a list holds every case, or the lists do not overlap enough)"
        )
    f = quick_fit(counts, k, ())
    if f is None:
        raise MSERefusal("the main-effects model is not identifiable from these data")
    return f


def independence(lists, counts, **_) -> Selection:
    k = len(lists)
    f = _require_main(counts, k)
    return Selection("independence", (), f)


def stepwise_csv(lists, counts, p_threshold: float = 0.02, **_) -> Selection:
    k = len(lists)
    fit = _require_main(counts, k)
    pairs = all_pairs(k)
    nstar = nstar_vector(counts, pairs)
    codes = np.arange(len(counts))
    inc = np.array([(codes & p) == p for p in pairs], dtype=float)  # pairs x codes
    terms: list[int] = []
    included = np.zeros(len(pairs), dtype=bool)
    trace = []
    for _cycle in range(len(pairs)):
        lam = inc @ fit.fitted - inc[:, 0] * fit.fitted[0]  # exclude the all-zero cell (never contains a pair)
        lower = pdtr(nstar, lam)  # P(X <= n*)
        upper = np.where(nstar > 0, pdtrc(np.maximum(nstar - 1, 0), lam), 1.0)  # P(X >= n*)
        pv = np.where(included, 1.0, np.minimum(lower, upper))
        order = sorted((p, j) for j, p in enumerate(pv) if not included[j])
        chosen = None
        skipped = []
        for p, j in order:
            if p >= p_threshold:
                break
            if model_ok(counts, k, tuple(terms) + (pairs[j],)):
                chosen = (p, j)
                break
            skipped.append(term_name(pairs[j], lists))
        if chosen is None:
            trace.append({"stop": True, "skipped_no_mle": skipped})
            break
        p, j = chosen
        terms.append(pairs[j])
        included[j] = True
        new = quick_fit(counts, k, tuple(terms))
        trace.append(
            {"added": term_name(pairs[j], lists), "p_value": float(p), "skipped_no_mle": skipped,
             "estimate": new.estimate}
        )
        fit = new
    return Selection("stepwise_csv", fit.terms, fit, trace=trace)


def stepwise_bhs(lists, counts, p_threshold: float = 0.05, **_) -> Selection:
    k = len(lists)
    fit = _require_main(counts, k)
    pairs = all_pairs(k)
    aic0 = fit.aic
    terms: list[int] = []
    included = [False] * len(pairs)
    trace = []
    for _cycle in range(len(pairs)):
        aics = np.full(len(pairs), np.inf)
        fits = {}
        for j, pr in enumerate(pairs):
            if included[j]:
                continue
            f = quick_fit(counts, k, tuple(terms) + (pr,), want_cov=True)
            if f is not None and np.isfinite(f.aic):
                aics[j] = f.aic
                fits[j] = f
        if not fits or aics.min() >= aic0:
            trace.append({"stop": "no AIC improvement"})
            break
        j = int(np.flatnonzero(aics == aics.min())[0])
        f1 = fits[j]
        pr = pairs[j]
        if pr in f1.sparse or f1.cov is None:
            pval = 1.0
        else:
            setup = setup_model(k, f1.terms, f1.sparse)
            col = setup.columns.index(pr)
            se = math.sqrt(max(f1.cov[col, col], 0.0))
            pval = float(2 * norm.sf(abs(f1.beta[col] / se))) if se > 0 else 1.0
        if pval > p_threshold:
            trace.append({"stop": "p-value above threshold", "candidate": term_name(pr, lists), "p_value": pval,
                          "aic": float(aics[j])})
            break
        aic0 = aics[j]
        terms.append(pr)
        included[j] = True
        fit = f1
        trace.append({"added": term_name(pr, lists), "p_value": pval, "aic": float(aic0), "estimate": f1.estimate})
    return Selection("stepwise_bhs", fit.terms, fit, trace=trace)


def enumerate_hierarchical(k: int, max_order: int) -> list[Terms]:
    """All hierarchical models (as tuples of interaction masks) with all main effects
    and interactions of order <= ``max_order``."""
    cand = [sum(1 << j for j in c) for size in range(2, max_order + 1) for c in combinations(range(k), size)]
    out: list[Terms] = []

    def rec(i: int, chosen: list[int], chosen_set: set[int]):
        if i == len(cand):
            out.append(tuple(chosen))
            return
        t = cand[i]
        rec(i + 1, chosen, chosen_set)
        if popcount(t) == 2 or all((t & ~(1 << j)) in chosen_set for j in range(k) if t >> j & 1):
            chosen.append(t)
            chosen_set.add(t)
            rec(i + 1, chosen, chosen_set)
            chosen.pop()
            chosen_set.discard(t)

    rec(0, [], set())
    return out


def rank_models_by_bic(lists, counts, max_order: int, n_keep: int | None = None):
    """Fit every hierarchical model, rank by BIC, and keep (in BIC order) those whose
    MLE exists.  Returns a list of ``(terms, bic, estimate)``."""
    k = len(lists)
    models = enumerate_hierarchical(k, max_order)
    scored = []
    for terms in models:
        f = quick_fit(counts, k, terms)
        if f is None or not np.isfinite(f.bic):
            continue
        scored.append((f.bic, len(terms), terms, f.estimate))
    scored.sort(key=lambda r: (r[0], r[1]))
    ranked = []
    for bic, _, terms, est in scored:
        if model_ok(counts, k, terms):
            ranked.append((terms, bic, est))
            if n_keep is not None and len(ranked) >= n_keep:
                break
    return ranked


def _min_bic(lists, counts, max_order, method, n_keep=None, **_) -> Selection:
    k = len(lists)
    _require_main(counts, k)
    ranked = rank_models_by_bic(lists, counts, max_order, n_keep)
    if not ranked:
        raise MSERefusal("no candidate model has an existing, identifiable maximum likelihood estimate")
    terms = ranked[0][0]
    fit = quick_fit(counts, k, terms)
    return Selection(method, fit.terms, fit, candidates=ranked)


def min_bic(lists, counts, max_order: int | None = None, n_keep: int | None = 5, **kw) -> Selection:
    k = len(lists)
    if k > MAX_LISTS_MIN_BIC:
        raise ValueError(
            f"min_bic searches all hierarchical models exhaustively and supports at most "
            f"{MAX_LISTS_MIN_BIC} lists (got {k}); use min_bic_pairwise or stepwise_csv"
        )
    max_order = k - 1 if max_order is None else max(1, min(int(max_order), k - 1))
    return _min_bic(lists, counts, max_order, "min_bic", n_keep)


def min_bic_pairwise(lists, counts, n_keep: int | None = 5, **kw) -> Selection:
    k = len(lists)
    if k > MAX_LISTS_MIN_BIC_PAIRWISE:
        raise ValueError(
            f"min_bic_pairwise searches all pairwise models exhaustively and supports at most "
            f"{MAX_LISTS_MIN_BIC_PAIRWISE} lists (got {k}); use stepwise_csv"
        )
    return _min_bic(lists, counts, min(2, k - 1), "min_bic_pairwise", n_keep)


def aic_weights(aics) -> np.ndarray:
    """Akaike weights ``exp(-(AIC - AIC_min)/2)``, normalised."""
    a = np.asarray(aics, dtype=float)
    w = np.exp(-(a - a.min()) / 2.0)
    return w / w.sum()


def rank_models_by_aic(lists, counts, max_order: int = 2, delta: float = MA_DELTA_AIC):
    """Every hierarchical model up to ``max_order`` whose MLE exists, with AIC within ``delta`` of the
    best such model, as ``(terms, aic, estimate)`` in AIC order (ties: fewer terms first)."""
    k = len(lists)
    scored = []
    for terms in enumerate_hierarchical(k, max_order):
        f = quick_fit(counts, k, terms)
        if f is None or not (np.isfinite(f.aic) and f.converged and np.isfinite(f.estimate)):
            continue
        scored.append((f.aic, len(terms), terms, f.estimate))
    scored.sort(key=lambda r: (r[0], r[1]))
    ranked: list[tuple[Terms, float, float]] = []
    for aic, _, terms, est in scored:
        if ranked and aic > ranked[0][1] + delta:
            break
        if model_ok(counts, k, terms):
            ranked.append((terms, aic, est))
    return ranked


def model_average(lists, counts, delta: float = MA_DELTA_AIC, **_) -> Selection:
    k = len(lists)
    if k > MAX_LISTS_MIN_BIC_PAIRWISE:
        raise ValueError(
            f"model_average averages over all pairwise models and supports at most "
            f"{MAX_LISTS_MIN_BIC_PAIRWISE} lists (got {k}); use stepwise_csv"
        )
    _require_main(counts, k)
    ranked = rank_models_by_aic(lists, counts, min(2, k - 1), delta)
    if not ranked:
        raise MSERefusal("no candidate model has an existing, identifiable maximum likelihood estimate")
    w = aic_weights([aic for _, aic, _ in ranked])
    order = np.argsort(-w, kind="stable")
    weights = [(ranked[i][0], ranked[i][1], float(w[i]), ranked[i][2]) for i in order]
    average = float(np.sum(w * np.array([est for _, _, est in ranked])))
    fit = quick_fit(counts, k, weights[0][0])
    return Selection("model_average", fit.terms, fit, weights=weights, average=average,
                     trace=[{"models_averaged": len(ranked), "delta_aic": delta}])


def all_pairwise(lists, counts, **_) -> Selection:
    k = len(lists)
    _require_main(counts, k)
    terms = tuple(all_pairs(k))
    if model_ok(counts, k, terms):
        f = quick_fit(counts, k, terms)
        if f is not None and f.converged and np.isfinite(f.estimate):
            return Selection("all_pairwise", f.terms, f)
    if k > MAX_LISTS_MIN_BIC_PAIRWISE:
        raise MSERefusal("the model with every pairwise interaction has no maximum likelihood estimate here")
    sel = model_average(lists, counts)
    sel.method = "all_pairwise"
    sel.notes.append("the model with every pairwise interaction has no maximum likelihood estimate here "
                     "(an overlap cell is empty): the Akaike-weighted average of the pairwise models was used")
    return sel


_RULES = {
    "model_average": model_average,
    "all_pairwise": all_pairwise,
    "independence": independence,
    "stepwise_csv": stepwise_csv,
    "stepwise_bhs": stepwise_bhs,
    "min_bic": min_bic,
    "min_bic_pairwise": min_bic_pairwise,
}


def select(method: str, lists: Sequence[str], counts: np.ndarray, **kw) -> Selection:
    try:
        rule = _RULES[method]
    except KeyError:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}") from None
    kw = {key: v for key, v in kw.items() if v is not None}
    return rule(tuple(lists), np.asarray(counts, dtype=float), **kw)
