"""Tests for pipelines.estimate (multiple systems estimation).

The reference tables are copies of the public test cases in tests/data/mse/ (see
docs/mse.md); published figures are from the papers cited there.  Tolerances: point
estimates 1%, profile-likelihood (and Wald) interval ends 2%, bootstrap BCa interval
ends 10%.  Bootstrap tests use the API's default seed (0), fixed before looking at
the results.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.estimate import (
    CaptureHistory,
    CaptureHistoryError,
    MSERefusal,
    enumerate_hierarchical,
    estimate,
    fit_model,
)
from pipelines.estimate.cli import mse_main
from pipelines.estimate.fit_tests import heterogeneity_columns
from pipelines.estimate.intervals import model_averaged_profile_interval, profile_interval
from pipelines.estimate.loglinear import parse_term

DATA = Path(__file__).parent / "data" / "mse"
ROOT = Path(__file__).resolve().parents[1]


def table(name: str) -> CaptureHistory:
    return CaptureHistory.from_csv(DATA / f"{name}.csv")


def close(value, published, rel):
    return value is not None and abs(value / published - 1) <= rel


# --------------------------------------------------------------------------- published point estimates (1%)
POINT_CASES = [
    # data, method, published estimate, published model (None = not stated)
    ("UKdat", "stepwise_bhs", 11409, None),
    ("NewOrl", "independence", 997, []),
    ("NewOrl", "stepwise_csv", 1184, ["D:E"]),
    ("NewOrl_5", "stepwise_csv", 1034, []),
    ("Western", "stepwise_csv", 2483, ["A:E"]),
    ("Kosovo", "min_bic", 10357, None),
    ("Kosovo", "min_bic_pairwise", 14342, None),
    ("UKdat_5", "min_bic", 25311, None),
    ("UKdat_5", "min_bic_pairwise", 22991, None),
    ("Korea", "min_bic", 157, None),
]


@pytest.mark.parametrize("name,method,published,model", POINT_CASES, ids=[f"{c[0]}-{c[1]}" for c in POINT_CASES])
def test_published_point_estimate(name, method, published, model):
    r = estimate(table(name), method=method, interval="wald")
    assert close(r.estimate, published, 0.01), (r.estimate, published)
    if model is not None:
        assert r.model == model
    assert r.diagnostics["mle_exists"] is True


# --------------------------------------------------------------------------- profile likelihood (2%)
def test_ukdat_bhs_profile_interval():
    """Silverman (2014): 11,409 [9,982, 13,182] (Rcapture multinomial profile likelihood)."""
    r = estimate(table("UKdat"), method="stepwise_bhs", interval="profile")
    assert r.interval_method == "profile"
    assert close(r.lower, 9982, 0.02) and close(r.upper, 13182, 0.02), (r.lower, r.upper)
    # The R code reports the multinomial MLE of N as its point estimate.
    assert close(r.diagnostics["interval"]["multinomial_mle"], 11409, 0.001)
    assert r.model == ["LA:NG", "LA:PF", "NG:GO", "NG:GP", "PF:GP", "PF:NCA", "GO:GP"]


def test_neworl_main_effects_interval_is_lognormal_wald():
    """CSV (2021) s.4.1: main effects 997 (644, 1618) -- the SparseMSE ``estimatepopulation.0``
    log-normal interval from the intercept's standard error (not a bootstrap)."""
    r = estimate(table("NewOrl"), method="independence", interval="wald")
    assert close(r.lower, 644, 0.02) and close(r.upper, 1618, 0.02), (r.lower, r.upper)


def test_profile_interval_contains_estimate_and_matches_chi2_cut():
    ch = table("Western")
    r = estimate(ch, method="stepwise_csv", interval="profile")
    assert r.lower < r.estimate < r.upper
    assert r.lower >= ch.n_observed


# --------------------------------------------------------------------------- bootstrap BCa (10%)
BOOT_CASES = [
    # data, method, published (lower, upper), replicates
    ("NewOrl", "stepwise_csv", (717, 1657), 1000),
    ("NewOrl_5", "stepwise_csv", (589, 1703), 1000),
    ("Western", "stepwise_csv", (1293, 3670), 1000),
    ("Kosovo", "min_bic", (6947, 18010), 2000),
    ("Kosovo", "min_bic_pairwise", (12451, 16273), 1000),
    ("UKdat_5", "min_bic", (11168, 56052), 2000),
    ("Korea", "min_bic", (128, 349), 2000),
]


@pytest.mark.parametrize("name,method,published,nboot", BOOT_CASES, ids=[f"{c[0]}-{c[1]}" for c in BOOT_CASES])
def test_published_bootstrap_interval(name, method, published, nboot):
    r = estimate(table(name), method=method, interval="bootstrap", n_bootstrap=nboot, seed=0)
    assert r.interval_method == "bootstrap"
    assert close(r.lower, published[0], 0.10), (r.lower, published)
    assert close(r.upper, published[1], 0.10), (r.upper, published)


def test_ukdat5_pairwise_bootstrap_lower():
    r = estimate(table("UKdat_5"), method="min_bic_pairwise", interval="bootstrap", n_bootstrap=1000, seed=0)
    assert close(r.lower, 11456, 0.10), r.lower


@pytest.mark.xfail(strict=True, reason=(
    "UKdat_5 pairwise-only BCa upper end not reproduced within 10%: published 43,894; "
    "seed 0, B=1000 gives 37,904 (-13.6%); B=2000, seeds 0-2 give 49,000-50,700 (+12% to +16%). "
    "The BCa level there is ~0.99999, i.e. the sample maximum of the replicates; see docs/mse.md"))
def test_ukdat5_pairwise_bootstrap_upper():
    r = estimate(table("UKdat_5"), method="min_bic_pairwise", interval="bootstrap", n_bootstrap=1000, seed=0)
    assert close(r.upper, 43894, 0.10), r.upper


def test_bootstrap_is_reproducible_with_seed():
    a = estimate(table("Korea"), method="min_bic", interval="bootstrap", n_bootstrap=200, seed=7)
    b = estimate(table("Korea"), method="min_bic", interval="bootstrap", n_bootstrap=200, seed=7)
    c = estimate(table("Korea"), method="min_bic", interval="bootstrap", n_bootstrap=200, seed=8)
    assert (a.lower, a.upper) == (b.lower, b.upper)
    assert (a.lower, a.upper) != (c.lower, c.upper)


# --------------------------------------------------------------------------- engines, conventions
@pytest.mark.parametrize("name", ["NewOrl", "Western", "Kosovo", "UKdat_5", "Korea"])
def test_statsmodels_and_newton_engines_agree(name):
    ch = table(name)
    r = estimate(ch, method="min_bic" if ch.k <= 4 or name == "UKdat_5" else "stepwise_csv", interval="wald")
    terms = [parse_term(t, ch.lists) for t in r.model]
    a = fit_model(ch, terms, engine="statsmodels")
    b = fit_model(ch, terms, engine="newton")
    assert a.estimate == pytest.approx(b.estimate, rel=1e-7)
    assert a.aic == pytest.approx(b.aic, rel=1e-9)
    assert a.bic == pytest.approx(b.bic, rel=1e-9)


def test_no_overlap_pair_is_minus_infinity_and_counted():
    ch = table("NewOrl")
    assert ch.pair_overlaps()[("A", "B")] == 0
    ab = parse_term("A:B", ch.lists)
    f = fit_model(ch, [ab], engine="statsmodels")
    main = fit_model(ch, [], engine="statsmodels")
    assert f.neg_inf_terms == (ab,)
    assert f.coefficients["A:B"] == -math.inf
    assert f.n_params == main.n_params + 1  # still a parameter in AIC/BIC
    codes = np.arange(2**ch.k)
    both = (codes & ab) == ab
    assert np.all(f.fitted[both] == 0)  # cells containing both lists dropped
    # Equivalent to fitting main effects on the table without those cells:
    import statsmodels.api as sm

    keep = (~both) & (codes > 0)
    X = np.column_stack([np.ones(keep.sum())] + [((codes[keep] >> j) & 1) for j in range(ch.k)])
    ref = sm.GLM(ch.counts[keep], X, family=sm.families.Poisson()).fit()
    assert f.estimate == pytest.approx(ch.n_observed + math.exp(ref.params[0]), rel=1e-8)
    assert f.aic == pytest.approx(2 * f.n_params - 2 * ref.llf, rel=1e-9)
    assert f.bic == pytest.approx(f.n_params * math.log(ch.n_observed) - 2 * ref.llf, rel=1e-9)
    # and its profile interval is still computable
    iv = profile_interval(ch.lists, ch.counts, (ab,))
    assert iv.lower < f.estimate < iv.upper


def test_mle_existence_check_flags_nonexistent_model():
    # A:B:C-style support trap: with cell ABC empty and only pairwise cells seen,
    # the all-pairs model has no finite MLE (Fienberg & Rinaldo).
    ch = CaptureHistory.from_rows(
        [(1, 0, 0, 10), (0, 1, 0, 12), (0, 0, 1, 9), (1, 1, 0, 3), (1, 0, 1, 4), (0, 1, 1, 5)], ["A", "B", "C"])
    ok = fit_model(ch, [parse_term("A:B", ch.lists)])
    assert ok.exists is True
    bad = CaptureHistory.from_rows([(1, 0, 0, 10), (0, 1, 0, 12), (1, 1, 0, 3), (0, 0, 1, 4)], ["A", "B", "C"])
    f = fit_model(bad, [parse_term("A:B", bad.lists)])
    assert f.exists is False or not f.identifiable


def test_hierarchical_model_counts():
    assert len(enumerate_hierarchical(3, 2)) == 8
    assert len(enumerate_hierarchical(4, 3)) == 113
    assert len(enumerate_hierarchical(4, 2)) == 64


# --------------------------------------------------------------------------- refusals
def test_refuses_single_list():
    r = estimate(pd.DataFrame({"A": [1], "count": [40]}))
    assert r.estimate is None and r.refused and "two lists" in r.reason


def test_refuses_no_overlap():
    df = pd.DataFrame({"A": [1, 0, 0], "B": [0, 1, 0], "C": [0, 0, 1], "count": [30, 20, 25]})
    r = estimate(df)
    assert r.estimate is None and "overlap" in r.reason
    with pytest.raises(MSERefusal):
        estimate(df, strict=True)


def test_refuses_too_few_observed():
    df = pd.DataFrame({"A": [1, 0, 1], "B": [0, 1, 1], "count": [3, 2, 1]})
    r = estimate(df)
    assert r.estimate is None and "too few" in r.reason


def test_refuses_when_mle_does_not_exist():
    # list A holds every case: nothing is learnt about those missed by A
    df = pd.DataFrame({"A": [1, 1], "B": [0, 1], "count": [50, 20]})
    for method in ("independence", "stepwise_csv", "min_bic", "model_average", "all_pairwise",
                   "pairwise_or_latent_class"):
        r = estimate(df, method=method)
        assert r.estimate is None and "does not exist" in r.reason, method


def test_empty_list_is_dropped_with_warning():
    ch = table("Korea")
    df = ch.to_dataframe()
    df.insert(0, "Z", 0)
    r = estimate(df, method="min_bic", interval="wald")
    assert r.lists == ["b", "c", "d"]
    assert r.estimate == pytest.approx(estimate(ch, method="min_bic", interval="wald").estimate)
    assert any("dropped" in w for w in r.diagnostics["warnings"])


def test_bad_arguments_raise():
    with pytest.raises(ValueError):
        estimate(table("Korea"), method="nope")
    with pytest.raises(ValueError):
        estimate(table("Korea"), interval="nope")
    with pytest.raises(ValueError, match="at most"):
        estimate(table("UKdat"), method="min_bic")


# --------------------------------------------------------------------------- capture histories
def test_capture_history_readers_agree():
    ch = table("Western")
    df = pd.read_csv(DATA / "Western.csv")
    assert np.array_equal(CaptureHistory.from_dataframe(df).counts, ch.counts)
    pa = pytest.importorskip("pyarrow")
    assert np.array_equal(CaptureHistory.from_arrow(pa.Table.from_pandas(df)).counts, ch.counts)
    assert ch.n_observed == 345 and ch.k == 5


def test_capture_history_sums_duplicates_and_validates():
    ch = CaptureHistory.from_csv_text("A,B,count\n1,0,3\n1,0,2\n1,1,1\n")
    assert ch.counts[1] == 5 and ch.n_observed == 6
    for bad in ("A,B,count\n2,0,3\n", "A,B,count\n1,0,-1\n", "A,B,count\n0,0,4\n", "A,B\n1,0\n",
                "A,B,count\n1,0,1.5\n"):
        with pytest.raises(CaptureHistoryError):
            CaptureHistory.from_csv_text(bad)


@settings(max_examples=15, deadline=None)
@given(st.permutations(range(5)))
def test_estimate_invariant_to_list_order(perm):
    df = pd.read_csv(DATA / "Western.csv")
    cols = [df.columns[i] for i in perm]
    r = estimate(df[cols + ["count"]], method="independence", interval="wald")
    assert r.estimate == pytest.approx(2007.14, rel=1e-4)


# --------------------------------------------------------------------------- CLI
def test_cli_prints_one_json_object(capsys):
    rc = mse_main([str(DATA / "NewOrl.csv"), "--method", "stepwise_csv"])
    out = capsys.readouterr().out
    assert rc == 0
    assert out.count("\n") == 1
    d = json.loads(out)
    for key in ("estimate", "lower", "upper", "method", "model"):
        assert key in d
    assert d["method"] == "stepwise_csv" and d["model"] == ["D:E"]
    assert d["estimate"] == pytest.approx(1184, rel=0.01)


def test_cli_default_past_the_average_bound_uses_the_stepwise_rule_and_says_so(capsys):
    # NewOrl has 8 lists: more than the default allows
    rc = mse_main([str(DATA / "NewOrl.csv")])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["method"] == "stepwise_csv" and d["model"] == ["D:E"]
    assert any("pairwise_or_latent_class supports at most" in w for w in d["diagnostics"]["warnings"])


def test_cli_bootstrap_and_method_flags(capsys):
    rc = mse_main([str(DATA / "Korea.csv"), "--method", "min_bic", "--interval", "bootstrap",
                   "--seed", "3", "--n-bootstrap", "200"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["interval_method"] == "bootstrap" and d["method"] == "min_bic"


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert mse_main([str(tmp_path / "missing.csv")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error" in err
    assert mse_main([str(DATA / "NewOrl.csv"), "--method", "bogus"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    bad = tmp_path / "bad.csv"
    bad.write_text("A,B,count\nx,0,3\n")
    assert mse_main([str(bad)]) == 3
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_refusal_prints_json_and_exits_8(tmp_path, capsys):
    f = tmp_path / "disjoint.csv"
    f.write_text("A,B,count\n1,0,30\n0,1,40\n")
    assert mse_main([str(f)]) == 8
    d = json.loads(capsys.readouterr().out)
    assert d["estimate"] is None and d["reason"]


def test_python_dash_m_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.estimate", str(DATA / "Western.csv"), "--method", "stepwise_csv"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["model"] == ["A:E"] and d["estimate"] == pytest.approx(2483, rel=0.01)


# --------------------------------------------------------------------------- model_average
def _dependent_lists(rng, n_total=3221):
    """Two large dependent lists and a small independent one (the sample generator's design, docs/mse.md
    scenario a2): A ~ 49%, B ~ 27%, C ~ 4%, log odds ratio of A:B 0.83, N fixed."""
    from itertools import product

    cells = np.array(list(product([0, 1], repeat=3)))[:, ::-1]  # row c: bits of code c (list j = bit j)
    eta = cells @ np.array([-0.2, -1.3, -3.2]) + 0.83 * cells[:, 0] * cells[:, 1]
    p = np.exp(eta) / np.exp(eta).sum()
    counts = rng.multinomial(n_total, p).astype(float)
    counts[0] = 0.0
    return CaptureHistory(("A", "B", "C"), counts)


def test_model_average_covers_dependent_lists_where_stepwise_fails():
    """A dependence between the two big lists, visible only through the small third list: stepwise_csv's
    test has no power and its interval misses; the average keeps A:B's weight and covers."""
    n_total, hits, step_hits = 3221, 0, 0
    for r in range(16):
        ch = _dependent_lists(np.random.default_rng([7, r]), n_total)
        ma = estimate(ch, method="model_average")
        st_ = estimate(ch, method="stepwise_csv")
        assert ma.method == "model_average" and ma.interval_method == "profile"
        assert ma.lower <= ma.estimate <= ma.upper
        hits += ma.lower <= n_total <= ma.upper
        step_hits += st_.lower <= n_total <= st_.upper
    assert hits >= 14 and step_hits <= 4, (hits, step_hits)


def test_model_average_is_deterministic_and_reports_its_weights():
    ch = table("Kosovo")
    a, b = estimate(ch, method="model_average"), estimate(ch, method="model_average")
    assert a.to_dict() == b.to_dict()
    ma = a.diagnostics["model_average"]
    weights = [m["weight"] for m in ma["top_models"]]
    assert weights == sorted(weights, reverse=True) and sum(weights) <= 1 + 1e-12
    assert a.model == ma["top_models"][0]["model"]
    # the estimate is the weighted mean of the models' estimates
    assert sum(m["weight"] * m["estimate"] for m in ma["top_models"]) == pytest.approx(a.estimate, rel=1e-3)
    perm = estimate(ch.to_dataframe()[["HRW", "OSCE", "EXH", "ABA", "count"]], method="model_average")
    assert perm.estimate == pytest.approx(a.estimate, rel=1e-9)
    assert (perm.lower, perm.upper) == pytest.approx((a.lower, a.upper), rel=1e-6)


def test_model_averaged_interval_with_one_model_is_the_profile_interval():
    ch = table("NewOrl_5")
    terms = (parse_term("BEFG:D", ch.lists),)
    one = model_averaged_profile_interval(ch.lists, ch.counts, [(terms, 0.0, 1.0, 0.0)])
    ref = profile_interval(ch.lists, ch.counts, terms)
    assert (one.lower, one.upper) == pytest.approx((ref.lower, ref.upper), rel=1e-4)
    assert one.details["median"] == pytest.approx(ref.details["multinomial_mle"], rel=1e-3)


def test_model_average_other_intervals_and_limits():
    ch = table("Korea")
    boot = estimate(ch, "model_average", interval="bootstrap", n_bootstrap=200, seed=3)
    assert boot.to_dict() == estimate(ch, "model_average", interval="bootstrap", n_bootstrap=200, seed=3).to_dict()
    assert boot.lower < boot.estimate < boot.upper and boot.interval_method == "bootstrap"
    wald = estimate(ch, "model_average", interval="wald")
    assert wald.lower < wald.estimate < wald.upper and wald.interval_method == "wald"
    with pytest.raises(ValueError, match="at most 6"):
        estimate(table("NewOrl"), "model_average")  # eight lists: 2^28 pairwise models; stepwise_csv is the way
    r = estimate(pd.DataFrame({"A": [1, 0, 0], "B": [0, 1, 0], "C": [0, 0, 1], "count": [30, 20, 25]}))
    assert r.refused and "overlap" in r.reason


# ---------------------------------------------------------------- latent_class (LCMCR)

from pipelines.estimate import LatentClassSettings  # noqa: E402

SHORT_CHAINS = LatentClassSettings(chains=4, burn_in=300, draws=200, thin=3)  # seconds, not the run's length


def test_latent_class_on_kosovo_agrees_with_the_published_estimates():
    """Kosovo: Ball et al. (2002) about 10,356; minimum BIC 10,357 [6,947, 18,010] (Silverman et al. 2024).
    The default chains give 10,342 [8,585, 13,631] at seed 1 (docs/mse.md); short chains here."""
    r = estimate(table("Kosovo"), method="latent_class", seed=1, mcmc=SHORT_CHAINS)
    assert r.method == "latent_class" and r.interval_method == "posterior quantiles" and r.model == []
    assert 9000 < r.estimate < 12000 and 6947 < r.lower < r.estimate < r.upper < 18010
    d = r.diagnostics
    assert d["rhat"] > 0.99 and d["ess_bulk"] > 0 and d["ess_tail"] > 0 and d["settings"]["chains"] == 4
    assert len(r.draws) == 4 * 200 and r.draws.min() >= r.observed


def test_latent_class_is_deterministic_given_the_seed():
    a, b = (estimate(table("Korea"), method="latent_class", seed=7, mcmc=SHORT_CHAINS) for _ in range(2))
    c = estimate(table("Korea"), method="latent_class", seed=8, mcmc=SHORT_CHAINS)
    assert (a.estimate, a.lower, a.upper) == (b.estimate, b.lower, b.upper)
    assert np.array_equal(a.draws, b.draws) and not np.array_equal(a.draws, c.draws)


def test_latent_class_recovers_a_population_of_two_visibility_classes():
    """Manrique-Vallier (2016)'s simulation design: 2,000 people, 10% far more visible than the rest,
    where an independence model underestimates badly."""
    rng = np.random.default_rng(3)
    probs = np.r_[np.tile([[0.033, 0.033, 0.099, 0.132, 0.033]], (1800, 1)),
                  np.tile([[0.660, 0.825, 0.759, 0.990, 0.693]], (200, 1))]
    codes = (rng.random(probs.shape) < probs).astype(int) @ (1 << np.arange(5))
    ch = CaptureHistory(tuple("ABCDE"), np.bincount(codes, minlength=32).astype(float) * (np.arange(32) > 0))
    lc = estimate(ch, method="latent_class", seed=0, mcmc=SHORT_CHAINS)
    ind = estimate(ch, method="independence")
    assert lc.lower <= 2000 <= lc.upper and abs(lc.estimate / 2000 - 1) < 0.2
    assert ind.upper < 2000 * 0.7  # the homogeneous model misses far below


def test_latent_class_refusals_and_bad_settings():
    none = CaptureHistory(("A", "B"), np.array([0, 30, 20, 0.0]))
    assert estimate(none, method="latent_class").reason.startswith("no case appears on more than one list")
    with pytest.raises(ValueError, match="at least 2 classes"):
        estimate(table("Korea"), method="latent_class", mcmc=LatentClassSettings(classes=1))


def test_cli_latent_class_prints_the_chains_diagnostics(capsys):
    code = mse_main([str(DATA / "Korea.csv"), "--method", "latent_class", "--seed", "3", "--mcmc-burn-in", "200",
                     "--mcmc-draws", "100", "--mcmc-thin", "2"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["method"] == "latent_class" and out["lower"] <= out["estimate"] <= out["upper"]
    assert {"rhat", "ess_bulk", "ess_tail", "settings", "warnings"} <= set(out["diagnostics"])
    assert out["diagnostics"]["settings"]["draws"] == 100


# ---------------------------------------------------------------- the default: all_pairwise, or latent_class

def _visibility_lists(rng, sigma=1.0, n_total=3221):
    """Three lists of the sample's sizes (49%, 27%, 4%) whose capture probability varies between people:
    expit(a_j + sigma z), z ~ N(0, 1), lists independent given the person (docs/mse.md, scenario b)."""
    a = np.array([0.0, -1.2, -3.6]) if sigma else np.array([-0.04, -1.0, -3.2])
    z = rng.standard_normal(n_total)
    on = rng.random((n_total, 3)) < 1 / (1 + np.exp(-(a + sigma * z[:, None])))
    counts = np.bincount(on.astype(int) @ (1 << np.arange(3)), minlength=8).astype(float)
    counts[0] = 0.0
    return CaptureHistory(("A", "B", "C"), counts)


def test_default_fits_every_pairwise_interaction_where_the_table_cannot_reject_it():
    ch = _visibility_lists(np.random.default_rng(11))
    r = estimate(ch)
    assert r.method == "pairwise_or_latent_class" and r.model == ["A:B", "A:C", "B:C"]
    choice = r.diagnostics["pairwise_or_latent_class"]
    assert choice["chosen"] == "all_pairwise" and choice["goodness_of_fit"]["df"] == 0  # three lists: saturated
    one = estimate(ch, method="all_pairwise")
    assert (r.estimate, r.lower, r.upper) == (one.estimate, one.lower, one.upper)
    iv = profile_interval(ch.lists, ch.counts, [0b011, 0b101, 0b110])
    assert (r.lower, r.upper) == pytest.approx((iv.lower, iv.upper), rel=1e-9)


def test_default_covers_people_of_unequal_visibility_where_the_average_undercovers():
    """People of unequal visibility make every pair of lists look dependent (Darroch et al. 1993); with a small
    third list the Akaike weights favour models without that dependence, and the average misses low."""
    n_total, hits, ma_hits = 3221, 0, 0
    for r in range(16):
        ch = _visibility_lists(np.random.default_rng([13, r]), 1.0, n_total)
        d, ma = estimate(ch), estimate(ch, method="model_average")
        hits += d.lower <= n_total <= d.upper
        ma_hits += ma.lower <= n_total <= ma.upper
    assert hits >= 14 and hits > ma_hits, (hits, ma_hits)


def test_default_switches_to_latent_class_where_the_table_rejects_every_pairwise_model():
    """Manrique-Vallier (2016)'s design: the heterogeneity test rejects the pairwise model (five lists leave it
    residual degrees of freedom) and the latent-class posterior is reported; the pairwise figure is kept."""
    rng = np.random.default_rng(3)
    probs = np.r_[np.tile([[0.033, 0.033, 0.099, 0.132, 0.033]], (1800, 1)),
                  np.tile([[0.660, 0.825, 0.759, 0.990, 0.693]], (200, 1))]
    codes = (rng.random(probs.shape) < probs).astype(int) @ (1 << np.arange(5))
    ch = CaptureHistory(tuple("ABCDE"), np.bincount(codes, minlength=32).astype(float) * (np.arange(32) > 0))
    r = estimate(ch, seed=0, mcmc=SHORT_CHAINS)
    choice = r.diagnostics["pairwise_or_latent_class"]
    assert r.method == "pairwise_or_latent_class" and choice["chosen"] == "latent_class"
    assert choice["goodness_of_fit"]["p_value"] < 0.01 and choice["goodness_of_fit"]["df"] == 15
    assert choice["goodness_of_fit"]["heterogeneity"]["df"] == 2 and choice["goodness_of_fit"]["heterogeneity"]["p_value"] < 0.01
    assert r.interval_method == "posterior quantiles" and r.lower <= 2000 <= r.upper and len(r.draws) == 800
    assert choice["all_pairwise"]["lower"] > 2000  # the pairwise model misses far above
    assert any("rejects the model with every pairwise interaction" in w for w in r.diagnostics["warnings"])


def test_heterogeneity_terms_are_equal_higher_order_interactions():
    """One column per order 3 ... k - 1: C(lists seen, r); the k-list interaction is not identified."""
    cols = heterogeneity_columns(np.arange(1, 32), 5)
    assert cols.shape == (31, 2)
    assert cols[0b00111 - 1].tolist() == [1, 0] and cols[0b01111 - 1].tolist() == [4, 1]
    assert cols[0b11111 - 1].tolist() == [10, 5] and cols[0b00011 - 1].tolist() == [0, 0]
    assert heterogeneity_columns(np.arange(1, 8), 3).shape == (7, 0)


def test_tables_from_a_pairwise_model_are_not_switched_to_latent_class():
    """Five lists drawn from a pairwise log-linear model (scenario a3's design): neither test rejects it."""
    rng = np.random.default_rng(7)
    x = ((np.arange(32)[:, None] >> np.arange(5)) & 1).astype(float)
    eta = x @ np.log(np.array([0.25, 0.20, 0.15, 0.12, 0.10]) / 0.75) + 1.0 * x[:, 0] * x[:, 1] + 0.7 * x[:, 2] * x[:, 3]
    counts = rng.multinomial(2000, np.exp(eta) / np.exp(eta).sum()).astype(float)
    counts[0] = 0.0
    ch = CaptureHistory(tuple("ABCDE"), counts)
    r = estimate(ch)
    test = r.diagnostics["pairwise_or_latent_class"]["goodness_of_fit"]
    assert r.diagnostics["pairwise_or_latent_class"]["chosen"] == "all_pairwise" and not test["rejected"]
    assert test["heterogeneity"]["p_value"] > 0.01 and test["p_value"] > 0.01


def test_all_pairwise_without_a_maximum_likelihood_estimate_averages_and_says_so():
    ch = table("Korea")  # an empty overlap cell: the three-pair model has no MLE
    r, ma = estimate(ch, method="all_pairwise"), estimate(ch, method="model_average")
    assert r.method == "all_pairwise" and r.estimate == pytest.approx(ma.estimate)
    assert any("Akaike-weighted average" in w for w in r.diagnostics["warnings"])


@pytest.mark.parametrize("name", sorted(p.stem for p in DATA.glob("*.csv")))
def test_cli_latent_class_on_every_reference_table_is_deterministic(name, capsys):
    """`concilia mse TABLE.csv --method latent_class --seed S` on the shared reference tables (short chains)."""
    argv = [str(DATA / f"{name}.csv"), "--method", "latent_class", "--seed", "5", "--mcmc-burn-in", "200",
            "--mcmc-draws", "100", "--mcmc-thin", "2"]
    outs = []
    for _ in range(2):
        assert mse_main(argv) == 0
        outs.append(json.loads(capsys.readouterr().out))
    for out in outs:
        out["diagnostics"].pop("seconds", None)  # the only field that may differ
    a, b = outs
    assert a == b and a["method"] == "latent_class"
    assert a["observed"] <= a["lower"] <= a["estimate"] <= a["upper"]
