"""Multiple systems estimation (MSE) of a hidden population from k overlapping lists.

>>> from pipelines.estimate import estimate
>>> result = estimate("tests/data/mse/NewOrl.csv")          # doctest: +SKIP
>>> result.estimate, result.lower, result.upper, result.model  # doctest: +SKIP

See ``docs/mse.md`` for the methods, conventions and the reproduced published figures.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .capture_history import CaptureHistory, CaptureHistoryError
from .fit_tests import goodness_of_fit as _tests
from .intervals import (
    IntervalResult,
    bootstrap_interval,
    model_averaged_profile_interval,
    model_averaged_wald_interval,
    profile_interval,
    wald_interval,
)
from .latent_class import LatentClassSettings, fit_latent_class
from .loglinear import Fit, fit_model, parse_term, term_name
from .selection import (
    DEFAULT_P,
    MAX_LISTS_MIN_BIC,
    MAX_LISTS_MIN_BIC_PAIRWISE,
    MSERefusal,
    enumerate_hierarchical,
    select,
)

__all__ = [
    "estimate",
    "MSEResult",
    "CaptureHistory",
    "CaptureHistoryError",
    "MSERefusal",
    "fit_model",
    "Fit",
    "METHODS",
    "LOGLINEAR_METHODS",
    "LATENT_CLASS",
    "PAIRWISE_OR_LATENT_CLASS",
    "goodness_of_fit",
    "LatentClassSettings",
    "INTERVALS",
    "DEFAULT_METHOD",
    "DEFAULT_INTERVAL",
    "MIN_OBSERVED",
    "MAX_LISTS_MIN_BIC",
    "MAX_LISTS_MIN_BIC_PAIRWISE",
    "enumerate_hierarchical",
    "default_method_for",
]

from .selection import METHODS as LOGLINEAR_METHODS  # noqa: E402

LATENT_CLASS = "latent_class"
#: The default: ``all_pairwise``, or ``latent_class`` where the table rejects every pairwise model (docs/mse.md,
#: "Which default": the simulation's evidence).
PAIRWISE_OR_LATENT_CLASS = "pairwise_or_latent_class"
METHODS = (*LOGLINEAR_METHODS, LATENT_CLASS, PAIRWISE_OR_LATENT_CLASS)
DEFAULT_METHOD = PAIRWISE_OR_LATENT_CLASS
#: The pairwise model is rejected when its heterogeneity test gives a p-value below this (it needs residual
#: degrees of freedom: four lists or more; ``fit_tests.py``).
GOODNESS_OF_FIT_P = 0.01
#: What the default becomes past the exhaustive average's bound on lists.
FALLBACK_METHOD = "stepwise_csv"
DEFAULT_INTERVAL = "profile"
INTERVALS = ("profile", "bootstrap", "wald")
#: Fewer observed cases than this and :func:`estimate` refuses.
MIN_OBSERVED = 10


@dataclass
class MSEResult:
    """Outcome of :func:`estimate`.  ``estimate is None`` means an honest refusal; see ``reason``."""

    estimate: float | None
    lower: float | None
    upper: float | None
    method: str
    model: list[str]
    interval_method: str | None
    observed: int
    lists: list[str]
    alpha: float
    diagnostics: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    #: latent_class: the posterior draws of N (all chains), which strata sum draw by draw; not in to_dict
    draws: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def refused(self) -> bool:
        return self.estimate is None

    @property
    def unobserved(self) -> float | None:
        return None if self.estimate is None else self.estimate - self.observed

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("draws")
        d["refused"] = self.refused
        d["unobserved"] = self.unobserved
        return _jsonable(d)


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x


def _refuse(reason, method, interval, ch_lists, observed, alpha, diagnostics=None, strict=False):
    if strict:
        raise MSERefusal(reason)
    return MSEResult(
        estimate=None, lower=None, upper=None, method=method, model=[], interval_method=interval,
        observed=observed, lists=list(ch_lists), alpha=alpha, diagnostics=diagnostics or {}, reason=reason,
    )


def default_method_for(k: int) -> tuple[str, str | None]:
    """The default method for a table of k lists, and why when it is not DEFAULT_METHOD."""
    if k <= MAX_LISTS_MIN_BIC_PAIRWISE:
        return DEFAULT_METHOD, None
    return FALLBACK_METHOD, (f"{DEFAULT_METHOD} supports at most {MAX_LISTS_MIN_BIC_PAIRWISE} lists ({k} here): "
                             f"{FALLBACK_METHOD} was used, and its interval ignores the uncertainty of the model choice")


def estimate(
    table,
    method: str = DEFAULT_METHOD,
    seed: int = 0,
    alpha: float = 0.05,
    interval: str = DEFAULT_INTERVAL,
    n_bootstrap: int = 1000,
    *,
    p_threshold: float | None = None,
    max_order: int | None = None,
    n_top: int | None = None,
    min_observed: int = MIN_OBSERVED,
    count_column: str | None = None,
    strict: bool = False,
    mcmc: LatentClassSettings | None = None,
) -> MSEResult:
    """Estimate the total population (observed + unobserved) from a capture-history table.

    Parameters
    ----------
    table
        :class:`CaptureHistory`, path to a CSV, pandas DataFrame or pyarrow Table with
        0/1 list columns and a ``count`` column.
    method
        ``"model_average"`` (default: AIC-weighted average over all pairwise models, k <= 6,
        with the model-averaged profile-likelihood interval of Fletcher & Turek 2012),
        ``"stepwise_csv"`` (Chan, Silverman & Vincent 2021), ``"independence"``,
        ``"stepwise_bhs"`` (Bales, Hesketh & Silverman 2015), ``"min_bic"`` (all
        hierarchical models, k <= 5), ``"min_bic_pairwise"`` (k <= 6) or ``"latent_class"``
        (LCMCR, Manrique-Vallier 2016: posterior median and equal-tailed credible interval; ``interval``
        does not apply).
    seed
        Seed of the bootstrap and of the latent-class sampler (numpy ``default_rng``); results are reproducible.
    alpha
        1 - confidence level of the interval.
    interval
        ``"profile"`` (default; profile likelihood for the chosen model; for ``model_average``
        the model-averaged profile-likelihood interval),
        ``"bootstrap"`` (BCa, model selection redone in every replicate) or ``"wald"``.
    n_bootstrap
        Bootstrap replicates (``interval="bootstrap"`` only).
    p_threshold
        Stepwise threshold (defaults 0.02 for ``stepwise_csv``, 0.05 for ``stepwise_bhs``).
    max_order
        Highest interaction order for ``min_bic`` (default k - 1).
    n_top
        Bootstrap candidate set for the BIC rules (default as Silverman et al. 2024).
    min_observed
        Refuse when fewer cases than this were observed.
    strict
        Raise :class:`MSERefusal` instead of returning a refusal result.
    mcmc
        Prior and chain lengths for ``latent_class`` (default :class:`LatentClassSettings`).

    Raises
    ------
    CaptureHistoryError
        The table is malformed.
    ValueError
        Bad arguments (unknown method/interval, too many lists for an exhaustive search).
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; choose one of {', '.join(INTERVALS)}")
    if not (0 < alpha < 1):
        raise ValueError("alpha must be between 0 and 1")
    if interval == "bootstrap" and int(n_bootstrap) < 20:
        raise ValueError("n_bootstrap must be at least 20")
    if p_threshold is not None and not (0 < p_threshold <= 1):
        raise ValueError("p_threshold must be in (0, 1]")
    ch = CaptureHistory.load(table, count_column)
    warnings: list[str] = []
    observed = ch.n_observed
    args = (method, interval)
    if ch.k < 2:
        return _refuse("at least two lists are needed for multiple systems estimation", *args, ch.lists,
                       observed, alpha, strict=strict)
    totals = ch.list_totals()
    empty = [name for name, t in totals.items() if t == 0]
    if empty:
        warnings.append(f"lists with no cases carry no information and were dropped: {empty}")
        ch = ch.drop_lists(empty)
        if ch.k < 2:
            return _refuse("fewer than two lists have any cases", *args, ch.lists, observed, alpha,
                           {"warnings": warnings}, strict)
    if observed < min_observed:
        return _refuse(f"too few observed cases ({observed} < {min_observed}) for a credible estimate", *args,
                       ch.lists, observed, alpha, {"warnings": warnings}, strict)
    overlaps = ch.pair_overlaps()
    if all(v == 0 for v in overlaps.values()):
        return _refuse(
            "no case appears on more than one list: with no overlap between lists the data carry "
            "no information about the unobserved population", *args, ch.lists, observed, alpha,
            {"warnings": warnings, "pair_overlaps": {f"{a}:{b}": v for (a, b), v in overlaps.items()}}, strict,
        )
    if method == PAIRWISE_OR_LATENT_CLASS:
        return _pairwise_or_latent_class(ch, seed, alpha, interval, n_bootstrap, mcmc, warnings, strict)
    if method == LATENT_CLASS:
        if interval != DEFAULT_INTERVAL:
            warnings.append(f"interval={interval} does not apply to latent_class: its interval is the posterior's")
        return _latent_class_result(ch, seed, alpha, mcmc or LatentClassSettings(), warnings)
    if method == "min_bic" and ch.k > MAX_LISTS_MIN_BIC:
        raise ValueError(f"min_bic is exhaustive and supports at most {MAX_LISTS_MIN_BIC} lists (got {ch.k}); "
                         "use min_bic_pairwise or stepwise_csv")
    if method in ("min_bic_pairwise", "model_average") and ch.k > MAX_LISTS_MIN_BIC_PAIRWISE:
        raise ValueError(f"{method} is exhaustive and supports at most {MAX_LISTS_MIN_BIC_PAIRWISE} "
                         f"lists (got {ch.k}); use stepwise_csv")
    pth = p_threshold if p_threshold is not None else DEFAULT_P.get(method)
    try:
        sel = select(method, ch.lists, ch.counts, p_threshold=pth, max_order=max_order)
    except MSERefusal as exc:
        return _refuse(exc.reason, *args, ch.lists, observed, alpha, {"warnings": warnings}, strict)
    warnings.extend(sel.notes)

    fit = fit_model(ch, sel.terms, engine="statsmodels")
    if not fit.ok:
        return _refuse("the selected model could not be fitted: " + "; ".join(fit.warnings), *args, ch.lists,
                       observed, alpha, {"warnings": warnings + fit.warnings}, strict)
    warnings.extend(fit.warnings)
    newton_gap = abs(fit.estimate - sel.fit.estimate) / fit.estimate
    if newton_gap > 1e-6:
        warnings.append(f"statsmodels and Newton fits differ by {newton_gap:.2e} (relative)")
    averaged = sel.average is not None
    point = float(sel.average) if averaged else float(fit.estimate)

    if interval == "profile":
        iv = (model_averaged_profile_interval(ch.lists, ch.counts, sel.weights, alpha) if averaged
              else profile_interval(ch.lists, ch.counts, sel.terms, alpha))
    elif interval == "wald":
        iv = (model_averaged_wald_interval(ch.lists, ch.counts, sel.weights, alpha) if averaged
              else wald_interval(fit.estimate, fit.observed, fit.intercept_se, alpha))
    else:
        iv = bootstrap_interval(ch.lists, ch.counts, method, point, n_bootstrap=int(n_bootstrap),
                                seed=int(seed), alpha=alpha, p_threshold=pth, max_order=max_order, n_top=n_top)
    warnings.extend(iv.warnings)

    non_overlapping = [f"{a}:{b}" for (a, b), v in overlaps.items() if v == 0]
    diagnostics = {
        "aic": fit.aic,
        "bic": fit.bic,
        "loglik": fit.loglik,
        "deviance": fit.deviance,
        "df_resid": fit.df_resid,
        "n_params": fit.n_params,
        "mle_exists": fit.exists,
        "identifiable": fit.identifiable,
        "converged": fit.converged,
        "neg_inf_terms": [term_name(t, ch.lists) for t in fit.neg_inf_terms],
        "non_overlapping_pairs": non_overlapping,
        "coefficients": fit.coefficients,
        "std_errors": fit.std_errors,
        "p_threshold": pth,
        "engine": "statsmodels GLM (Poisson, log link)",
        "interval": {"method": iv.method, **iv.details},
        "selection_trace": sel.trace,
        "warnings": warnings,
    }
    if averaged:
        diagnostics["model_average"] = {
            "weights": "Akaike weights exp(-AIC/2), models with MLE, pairwise interactions",
            "models_averaged": len(sel.weights),
            "top_models": [{"model": [term_name(t, ch.lists) for t in terms], "aic": aic, "weight": w,
                            "estimate": est} for terms, aic, w, est in sel.weights[:10]],
            "heaviest_model_estimate": float(fit.estimate),
        }
    if sel.candidates:
        diagnostics["top_models"] = [
            {"model": [term_name(t, ch.lists) for t in terms], "bic": bic, "estimate": est}
            for terms, bic, est in sel.candidates
        ]
    return MSEResult(
        estimate=point,
        lower=iv.lower,
        upper=iv.upper,
        method=method,
        model=[term_name(t, ch.lists) for t in fit.terms],
        interval_method=iv.method if iv.lower is not None else None,
        observed=observed,
        lists=list(ch.lists),
        alpha=alpha,
        diagnostics=diagnostics,
    )


def goodness_of_fit(ch: CaptureHistory, model: list[str]) -> dict:
    """The tests of a fitted log-linear model (term names, as ``MSEResult.model``) against the observed cells:
    the deviance, and the likelihood ratio against the terms unequal visibility adds (``fit_tests.py``)."""
    return _tests(ch.counts, ch.k, [parse_term(t, ch.lists) for t in model], GOODNESS_OF_FIT_P)


def _pairwise_or_latent_class(ch: CaptureHistory, seed: int, alpha: float, interval: str, n_bootstrap: int,
                              mcmc: LatentClassSettings | None, warnings: list[str], strict: bool) -> MSEResult:
    """``all_pairwise``; where the table rejects it (the heterogeneity is not of the kind pairwise interactions
    absorb: Manrique-Vallier's five-list design), ``latent_class``, which models it."""
    r = estimate(ch, "all_pairwise", seed, alpha, interval, n_bootstrap, min_observed=0, strict=strict)
    r.method = PAIRWISE_OR_LATENT_CLASS
    r.diagnostics["warnings"] = warnings + r.diagnostics.get("warnings", [])
    if r.refused:
        return r
    test = goodness_of_fit(ch, r.model)
    if not test["rejected"]:
        r.diagnostics[PAIRWISE_OR_LATENT_CLASS] = {"chosen": "all_pairwise", "goodness_of_fit": test}
        if test["deviance_rejects"]:
            r.diagnostics["warnings"].append(
                f"the table departs from the model with every pairwise interaction (deviance {test['deviance']:.1f} "
                f"on {test['df']} df, p = {test['p_value']:.2g}), but not in the way unequal visibility would: the "
                "estimate is the pairwise model's; compare other methods (--method)")
        return r
    het = test["heterogeneity"]
    note = (f"the table rejects the model with every pairwise interaction: people differ in visibility beyond "
            f"what pairwise interactions absorb (heterogeneity terms {het['statistic']:.1f} on {het['df']} df, "
            f"p = {het['p_value']:.2g}; deviance {test['deviance']:.1f} on {test['df']} df): the estimate is "
            "latent_class's")
    lc = _latent_class_result(ch, seed, alpha, mcmc or LatentClassSettings(), [*warnings, note])
    lc.method = PAIRWISE_OR_LATENT_CLASS
    lc.diagnostics[PAIRWISE_OR_LATENT_CLASS] = {
        "chosen": LATENT_CLASS, "goodness_of_fit": test,
        "all_pairwise": {"estimate": r.estimate, "lower": r.lower, "upper": r.upper, "model": r.model}}
    return lc


def _latent_class_result(ch: CaptureHistory, seed: int, alpha: float, settings: LatentClassSettings,
                         warnings: list[str]) -> MSEResult:
    """The posterior median of N and its equal-tailed credible interval, with the chains' diagnostics."""
    fit = fit_latent_class(ch.counts, seed=int(seed), settings=settings)
    lower, median, upper = fit.quantiles([alpha / 2, 0.5, 1 - alpha / 2])
    diagnostics = {**fit.diagnostics, "warnings": warnings + fit.diagnostics["convergence_warnings"]}
    return MSEResult(
        estimate=float(median), lower=float(lower), upper=float(upper), method=LATENT_CLASS, model=[],
        interval_method="posterior quantiles", observed=ch.n_observed, lists=list(ch.lists), alpha=alpha,
        diagnostics=diagnostics, draws=fit.draws.ravel(),
    )
