"""Poisson log-linear models for capture-history tables.

Conventions (those of the published reference analyses, see docs/mse.md):

* the model is fitted to all ``2**k - 1`` observable cells, unseen
  combinations entering as zeros;
* a model is the intercept, all ``k`` main effects and a set of interaction
  *terms*; a term is a set of two or more lists, held as a bit mask;
* the estimated total is ``observed + exp(intercept)`` (the fitted count of the
  all-zero cell);
* an interaction term whose lists have no case in common (``nstar == 0``) has
  its extended-MLE value ``-inf``: every cell containing all its lists gets
  fitted value 0 and is dropped from the fit, and the term still counts as a
  parameter in AIC/BIC;
* whether the (extended) MLE exists is checked by the linear program of
  Fienberg & Rinaldo (2012) as used by Chan, Silverman & Vincent (2021).

Two fitting engines give the same answer: statsmodels' GLM (used for the fit
that is reported) and a small Newton/IRLS solver in numpy (used inside model
searches, the bootstrap and the profile likelihood, where thousands of tiny
fits are needed; it also has a batched form).  ``tests/test_estimate.py``
checks that the two agree.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import combinations
from typing import Sequence

import numpy as np
from scipy.optimize import linprog
from scipy.special import gammaln

from .capture_history import CaptureHistory

__all__ = [
    "Fit",
    "fit_model",
    "mle_exists",
    "term_name",
    "parse_term",
    "all_pairs",
    "irls",
    "irls_batch",
]

Terms = tuple[int, ...]


# --------------------------------------------------------------------------- helpers
def popcount(x: int) -> int:
    return bin(x).count("1")


def all_pairs(k: int) -> list[int]:
    """Pair masks in the reference order (1,2), (1,3), ..., (k-1,k)."""
    return [(1 << i) | (1 << j) for i, j in combinations(range(k), 2)]


def term_name(mask: int, lists: Sequence[str]) -> str:
    return ":".join(lists[j] for j in range(len(lists)) if mask >> j & 1)


def parse_term(name: str, lists: Sequence[str]) -> int:
    mask = 0
    for part in name.split(":"):
        part = part.strip()
        if part not in lists:
            raise ValueError(f"unknown list {part!r} in term {name!r}; lists are {list(lists)}")
        mask |= 1 << list(lists).index(part)
    if popcount(mask) < 2:
        raise ValueError(f"term {name!r} is not an interaction of two or more lists")
    return mask


def sort_terms(terms) -> Terms:
    return tuple(sorted(set(terms), key=lambda t: (popcount(t), [j for j in range(t.bit_length()) if t >> j & 1])))


@lru_cache(maxsize=64)
def _codes(k: int) -> np.ndarray:
    return np.arange(1, 2**k)


def design_columns(k: int, terms: Terms) -> list[int]:
    """Parameter masks: 0 (intercept), main effects, then the terms."""
    return [0, *[1 << j for j in range(k)], *terms]


def design_matrix(codes: np.ndarray, columns: Sequence[int]) -> np.ndarray:
    cols = np.asarray(columns, dtype=np.int64)
    return ((codes[:, None] & cols[None, :]) == cols[None, :]).astype(float)


def nstar_vector(counts: np.ndarray, masks: Sequence[int]) -> np.ndarray:
    codes = np.arange(len(counts))
    m = np.asarray(masks, dtype=np.int64)
    inc = (codes[None, :] & m[:, None]) == m[:, None]
    return inc.astype(float) @ counts


# --------------------------------------------------------------------------- fitting engines
def _poisson_deviance(y: np.ndarray, mu: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    return 2.0 * np.sum(t - (y - mu), axis=-1)


def irls(X: np.ndarray, y: np.ndarray, maxiter: int = 100, tol: float = 1e-10, beta0=None):
    """Poisson log-link IRLS (Newton) fit.  Returns ``(beta, mu, converged, n_iter)``."""
    if beta0 is None:
        mu = y + 0.1
        eta = np.log(mu)
    else:
        eta = X @ beta0
        mu = np.exp(eta)
    dev_old = np.inf
    beta = np.zeros(X.shape[1])
    converged = False
    it = 0
    for it in range(1, maxiter + 1):
        z = eta + (y - mu) / mu
        xtw = X.T * mu
        try:
            beta = np.linalg.solve(xtw @ X, xtw @ z)
        except np.linalg.LinAlgError:
            beta = np.linalg.lstsq(xtw @ X, xtw @ z, rcond=None)[0]
        eta = X @ beta
        eta = np.minimum(eta, 700.0)
        mu = np.exp(eta)
        dev = float(_poisson_deviance(y, mu))
        if abs(dev - dev_old) <= tol * (abs(dev) + 0.1):
            converged = True
            break
        dev_old = dev
    return beta, mu, converged, it


def newton_step(X: np.ndarray, y: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """One further Newton step from ``beta`` (rows of ``y``/``beta`` may be batched).

    At a finite MLE this is ~0; when the MLE does not exist the iterations keep
    moving along the recession direction by O(1) per step, whatever the tolerance.
    """
    y = np.atleast_2d(y)
    beta = np.atleast_2d(beta)
    eta = np.minimum(beta @ X.T, 700.0)
    mu = np.exp(eta)
    XtWX = np.einsum("ci,bc,cj->bij", X, mu, X)
    grad = (y - mu) @ X
    try:
        step = np.linalg.solve(XtWX, grad[..., None])[..., 0]
    except np.linalg.LinAlgError:
        step = np.stack([np.linalg.lstsq(A, g, rcond=None)[0] for A, g in zip(XtWX, grad)])
    return step


def irls_batch(X: np.ndarray, Y: np.ndarray, maxiter: int = 100, tol: float = 1e-10):
    """Batched IRLS: one design ``X`` (cells x p), many count vectors ``Y`` (B x cells).

    Returns ``(beta (B x p), mu (B x cells), converged (B,))``.
    """
    Y = np.asarray(Y, dtype=float)
    MU = Y + 0.1
    ETA = np.log(MU)
    B, p = Y.shape[0], X.shape[1]
    beta = np.zeros((B, p))
    dev_old = np.full(B, np.inf)
    converged = np.zeros(B, dtype=bool)
    for _ in range(maxiter):
        active = ~converged
        if not active.any():
            break
        Ya, MUa, ETAa = Y[active], MU[active], ETA[active]
        Z = ETAa + (Ya - MUa) / MUa
        XtWX = (X.T[None, :, :] * MUa[:, None, :]) @ X
        XtWz = (MUa * Z) @ X
        try:
            b = np.linalg.solve(XtWX, XtWz[..., None])[..., 0]
        except np.linalg.LinAlgError:
            b = np.stack([np.linalg.lstsq(A, r, rcond=None)[0] for A, r in zip(XtWX, XtWz)])
        beta[active] = b
        ETAn = np.minimum(b @ X.T, 700.0)
        MUn = np.exp(ETAn)
        ETA[active], MU[active] = ETAn, MUn
        dev = _poisson_deviance(Ya, MUn)
        done = np.abs(dev - dev_old[active]) <= tol * (np.abs(dev) + 0.1)
        idx = np.flatnonzero(active)
        converged[idx[done]] = True
        dev_old[active] = dev
    return beta, MU, converged


def poisson_loglik(y: np.ndarray, mu: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y > 0, y * np.log(mu), 0.0)
    return float(np.sum(t - mu - gammaln(y + 1.0)))


# --------------------------------------------------------------------------- existence check
def mle_exists(X: np.ndarray, y: np.ndarray) -> bool:
    """Fienberg-Rinaldo linear program: does the (extended) MLE exist?

    Maximise ``s`` subject to ``X^T x = X^T y``, ``x >= s``, ``x, s >= 0``.  The
    MLE exists (all fitted cells strictly positive) iff the optimum is > 0.
    Depends on ``y`` only through its support.
    """
    ncell, p = X.shape
    A_eq = np.hstack([X.T, np.zeros((p, 1))])
    b_eq = X.T @ y
    A_ub = np.hstack([-np.eye(ncell), np.ones((ncell, 1))])
    b_ub = np.zeros(ncell)
    c = np.zeros(ncell + 1)
    c[-1] = -1.0
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    if res.status != 0:
        # Infeasible cannot happen (x = y is feasible); an unbounded/failed LP
        # is treated as "cannot certify existence".
        return False
    return -res.fun > 1e-7


# --------------------------------------------------------------------------- model set-up
@dataclass(frozen=True)
class ModelSetup:
    k: int
    terms: Terms  # all interaction terms of the model (including -inf ones)
    sparse: Terms  # terms with no case in common -> -inf
    columns: tuple[int, ...]  # estimated parameters (intercept, mains, non-sparse terms)
    keep_codes: np.ndarray  # observable cells kept in the fit
    X: np.ndarray
    rank_ok: bool

    @property
    def n_params(self) -> int:
        return 1 + self.k + len(self.terms)


_SETUP_CACHE: dict = {}


def setup_model(k: int, terms: Terms, sparse: Terms) -> ModelSetup:
    key = (k, terms, sparse)
    hit = _SETUP_CACHE.get(key)
    if hit is not None:
        return hit
    codes = _codes(k)
    keep = np.ones(len(codes), dtype=bool)
    for s in sparse:
        keep &= (codes & s) != s
    keep_codes = codes[keep]
    cols = tuple(design_columns(k, tuple(t for t in terms if t not in sparse)))
    X = design_matrix(keep_codes, cols)
    rank_ok = X.shape[0] >= X.shape[1] and np.linalg.matrix_rank(X) == X.shape[1]
    setup = ModelSetup(k, terms, sparse, cols, keep_codes, X, bool(rank_ok))
    if len(_SETUP_CACHE) > 20000:
        _SETUP_CACHE.clear()
    _SETUP_CACHE[key] = setup
    return setup


def sparse_terms(counts: np.ndarray, terms: Terms) -> Terms:
    if not terms:
        return ()
    ns = nstar_vector(counts, terms)
    return tuple(t for t, v in zip(terms, ns) if v == 0)


def model_setup_for(counts: np.ndarray, k: int, terms: Terms) -> ModelSetup:
    return setup_model(k, terms, sparse_terms(counts, terms))


# --------------------------------------------------------------------------- fit result
@dataclass
class Fit:
    """One fitted log-linear model."""

    lists: tuple[str, ...]
    terms: Terms
    neg_inf_terms: Terms
    estimate: float | None  # observed + fitted all-zero cell
    observed: int
    intercept: float | None
    intercept_se: float | None
    loglik: float | None
    deviance: float | None
    df_resid: int | None
    n_params: int
    aic: float | None
    bic: float | None
    exists: bool | None  # LP check result (None = not checked)
    identifiable: bool
    converged: bool
    engine: str
    coefficients: dict[str, float] = field(default_factory=dict)
    std_errors: dict[str, float] = field(default_factory=dict)
    pvalues: dict[str, float] = field(default_factory=dict)
    fitted: np.ndarray | None = field(default=None, repr=False)  # over all 2**k codes (0 = dropped / unobserved)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.estimate is not None and self.identifiable and self.exists is not False

    def model_names(self) -> list[str]:
        return [term_name(t, self.lists) for t in self.terms]

    def summary(self) -> dict:
        return {
            "model": self.model_names(),
            "neg_inf_terms": [term_name(t, self.lists) for t in self.neg_inf_terms],
            "estimate": self.estimate,
            "loglik": self.loglik,
            "deviance": self.deviance,
            "df_resid": self.df_resid,
            "n_params": self.n_params,
            "aic": self.aic,
            "bic": self.bic,
            "mle_exists": self.exists,
            "identifiable": self.identifiable,
            "converged": self.converged,
            "engine": self.engine,
            "coefficients": self.coefficients,
            "std_errors": self.std_errors,
            "pvalues": self.pvalues,
        }


def _param_name(mask: int, lists) -> str:
    return "(Intercept)" if mask == 0 else term_name(mask, lists) if popcount(mask) > 1 else lists[mask.bit_length() - 1]


def fit_model(
    ch: CaptureHistory | tuple[tuple[str, ...], np.ndarray],
    terms: Sequence[int] = (),
    *,
    engine: str = "newton",
    check_exists: bool = True,
) -> Fit:
    """Fit the model with main effects plus ``terms`` (bit masks) to the table.

    ``engine="statsmodels"`` fits with ``statsmodels.api.GLM(family=Poisson)``;
    ``engine="newton"`` with the numpy IRLS solver.  Both follow the conventions in
    the module docstring.
    """
    if isinstance(ch, CaptureHistory):
        lists, counts = ch.lists, np.asarray(ch.counts, dtype=float)
    else:
        lists, counts = ch
    k = len(lists)
    terms = sort_terms(terms)
    setup = model_setup_for(counts, k, terms)
    y = counts[setup.keep_codes]
    n = float(counts.sum())
    observed = int(round(n))
    base = dict(
        lists=tuple(lists),
        terms=terms,
        neg_inf_terms=setup.sparse,
        observed=observed,
        n_params=setup.n_params,
        engine=engine,
    )
    if not setup.rank_ok:
        return Fit(
            estimate=None, intercept=None, intercept_se=None, loglik=None, deviance=None, df_resid=None,
            aic=None, bic=None, exists=None, identifiable=False, converged=False,
            warnings=["design matrix not of full rank: model not identifiable from these cells"], **base,
        )
    exists = mle_exists(setup.X, y) if check_exists else None
    warn: list[str] = []
    if exists is False:
        warn.append("the maximum likelihood estimate does not exist for this model (LP check)")
    X = setup.X
    if engine == "statsmodels":
        import statsmodels.api as sm
        from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = sm.GLM(y, X, family=sm.families.Poisson()).fit(method="IRLS", maxiter=200, tol=1e-12)
        # a model with as many parameters as observed cells fits them exactly: statsmodels then divides by
        # zero residual degrees of freedom and calls the exact fit "perfect separation"; neither is news
        exact = X.shape[0] == X.shape[1]
        for w in caught:
            if exact and issubclass(w.category, (PerfectSeparationWarning, RuntimeWarning)):
                continue
            if issubclass(w.category, (ConvergenceWarning, PerfectSeparationWarning, RuntimeWarning)):
                warn.append(str(w.message))
        beta = np.asarray(res.params)
        mu = np.asarray(res.fittedvalues)
        converged = bool(getattr(res, "converged", True))
        bse = np.asarray(res.bse)
    elif engine == "newton":
        beta, mu, converged, _ = irls(X, y)
        xtw = X.T * mu
        try:
            cov = np.linalg.inv(xtw @ X)
            bse = np.sqrt(np.maximum(np.diag(cov), 0.0))
        except np.linalg.LinAlgError:
            bse = np.full(len(beta), np.nan)
    else:
        raise ValueError(f"unknown engine {engine!r}")
    if not converged:
        warn.append("the GLM fit did not converge")
    loglik = poisson_loglik(y, mu)
    deviance = float(_poisson_deviance(y, mu))
    npar = setup.n_params
    nbic = n if n > 0 else 1.0
    fitted = np.zeros(2**k)
    fitted[setup.keep_codes] = mu
    fitted[0] = math.exp(min(beta[0], 700.0))
    from scipy.stats import norm

    coefs, ses, pvals = {}, {}, {}
    for mask, b, s in zip(setup.columns, beta, bse):
        name = _param_name(mask, lists)
        coefs[name] = float(b)
        ses[name] = float(s)
        pvals[name] = float(2 * norm.sf(abs(b / s))) if s > 0 and np.isfinite(s) else float("nan")
    for mask in setup.sparse:
        name = term_name(mask, lists)
        coefs[name] = float("-inf")
        ses[name] = float("nan")
        pvals[name] = float("nan")
    return Fit(
        estimate=n + fitted[0],
        intercept=float(beta[0]),
        intercept_se=float(bse[0]),
        loglik=loglik,
        deviance=deviance,
        df_resid=int(X.shape[0] - X.shape[1]),
        aic=2 * npar - 2 * loglik,
        bic=npar * math.log(nbic) - 2 * loglik,
        exists=exists,
        identifiable=True,
        converged=converged,
        coefficients=coefs,
        std_errors=ses,
        pvalues=pvals,
        fitted=fitted,
        warnings=warn,
        **base,
    )
