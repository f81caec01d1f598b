"""Does the table reject a pairwise log-linear model? Two likelihood-ratio tests on the observed cells.

* **Omnibus**: the model's deviance against the saturated table of observed cells, chi-squared on the
  residual degrees of freedom.
* **Heterogeneity**: the model against the same model plus the terms that unequal visibility adds to it.
  When people differ in how visible they are (lists independent given the person), the observed cells
  follow a log-linear model whose interactions of each order are equal across lists (the quasi-symmetric
  form; Darroch, Fienberg, Glonek & Junker 1993, *JASA* 88:1137). Pairwise interactions absorb the
  second-order part; what they leave is one term per higher order r = 3 ... k - 1: the number of r-list
  subsets a history contains, C(lists seen, r). That is k - 3 degrees of freedom (2 with five lists),
  against the omnibus test's 15, so it has more power against the alternative the fallback
  (``latent_class``) is for: a class of people seen by nearly every list.

The default's switch to ``latent_class`` follows the heterogeneity test; the omnibus test is reported, and
a warning says when it alone rejects. On the simulation's tables (``benchmarks/mse/goodness_of_fit.py``,
docs/mse.md "Which default") the heterogeneity test rejected Manrique-Vallier's design 198 times in 200
(the deviance 185) and switched fewer of the tables where the pairwise model is right or nearly so: 7 of
the 745 testable tables (four lists or more) of the log-linear and logit-normal scenarios, the deviance 9,
whose chi-squared reference over-rejects on four-list tables with a list of about ten persons.
"""

from __future__ import annotations

from math import comb

import numpy as np
from scipy.stats import chi2

from .loglinear import _poisson_deviance, irls, model_setup_for, popcount, sort_terms


def heterogeneity_columns(codes: np.ndarray, k: int) -> np.ndarray:
    """C(lists seen, r) for r = 3 ... k - 1, one column per order (the k-list term is not identified)."""
    seen = np.array([popcount(int(c)) for c in codes])
    return np.array([[comb(int(s), r) for r in range(3, k)] for s in seen], dtype=float).reshape(len(codes), -1)


def _extend_by_rank(X: np.ndarray, extra: np.ndarray) -> np.ndarray:
    """X with those extra columns that add to its rank (cells dropped by the -inf convention can make an order
    redundant)."""
    for column in extra.T:
        candidate = np.c_[X, column]
        if np.linalg.matrix_rank(candidate) > np.linalg.matrix_rank(X):
            X = candidate
    return X


def goodness_of_fit(counts: np.ndarray, k: int, terms, threshold: float) -> dict:
    """The omnibus and heterogeneity tests of the model with main effects and ``terms`` (bit masks)."""
    counts = np.asarray(counts, dtype=float)
    setup = model_setup_for(counts, k, sort_terms(terms))
    df = int(setup.X.shape[0] - setup.X.shape[1])
    if df <= 0 or not setup.rank_ok:
        return {"deviance": None, "df": max(df, 0), "p_value": None, "deviance_rejects": False, "heterogeneity": None,
                "rejected": False,
                "test": "none: the model fits every observed cell (no residual degrees of freedom)"}
    y = counts[setup.keep_codes]
    deviance = float(_poisson_deviance(y, irls(setup.X, y)[1]))
    p = float(chi2.sf(deviance, df))
    wider = _extend_by_rank(setup.X, heterogeneity_columns(setup.keep_codes, k))
    het = None
    if wider.shape[1] > setup.X.shape[1]:
        lr = max(deviance - float(_poisson_deviance(y, irls(wider, y)[1])), 0.0)
        het_df = wider.shape[1] - setup.X.shape[1]
        het = {"statistic": lr, "df": het_df, "p_value": float(chi2.sf(lr, het_df))}
    return {"deviance": deviance, "df": df, "p_value": p, "deviance_rejects": p < threshold, "heterogeneity": het,
            "rejected": bool(het is not None and het["p_value"] < threshold),
            "test": (f"likelihood ratio against the model plus equal higher-order interactions (heterogeneity"
                     f"{'' if het else ': not testable here'}), rejected below p = {threshold}; deviance on {df} df "
                     f"reported")}
