"""Simulation check of the pipeline's multiple systems estimate: coverage and bias with a known total.

    .venv/bin/python benchmarks/mse/simulate.py [--replicates 500] [--seed 2018] [--out benchmarks/results/mse_simulation.json]

Capture histories are simulated directly (no feeds, no linkage: this checks the estimator, not the
linker), from the victim list membership of the sample generator (``pipelines/sample/world.py``,
``build_world(2018)``): lists PNP, MP, MIMP and SUNAFIL, a true total of 3,221 victims of whom 1,300
no agency saw, and the generator's dependence between lists. Each replicate is estimated exactly as
the pipeline does it (``pipelines.estimate.pipeline_stage.fit_stratum``: small lists merged,
refusal on too few overlaps, then ``estimate()`` with the method, by default the pipeline's,
``pairwise_or_latent_class``: the model with every pairwise interaction and its profile-likelihood
interval, or the latent-class posterior where the table rejects that model; ``--method`` and
``--compare`` run other methods, log-linear ones with their profile interval).

Scenarios (``SCENARIOS``):

(a) the model's assumptions hold: every person has the same capture-history distribution (a
    log-linear model with main effects and pairwise interactions), drawn as a multinomial over the
    2^k histories with the total N fixed;
(b) capture probability varies between people: person i is on list j with probability
    expit(a_j + sigma * z_i), z_i ~ N(0, 1), lists independent given z_i (a Rasch model), a_j set
    so that each list's expected size is the generator's.
(c) latent classes: each person belongs to one of 2 or 3 classes of visibility (a logit shift), lists
    independent given the class; and Manrique-Vallier (2016)'s own simulation (five lists, 90/10);
(d) logit-normal visibility with a list dependence on top (on PNP, MP's logit rises);
(e) linkage errors: the persons seen are counted as an imperfect linkage would (links missed: a person
    split in two; false links: two persons merged), at the rates measured for the victims' linkage
    (docs/linkage-benchmark.md) and at five times them. The truth stays the true N.

New scenarios are appended, so the seeds of the earlier ones are unchanged. ``latent_class`` fits the
replicates of a scenario as one batch of chains (``latent_class_like_the_pipeline``).

Seeds: replicate r of scenario s uses numpy ``default_rng([seed, s, r])``. Writes a JSON summary
(coverage of the 95% interval, relative bias, refusals, the models selected) and prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pipelines.estimate import (LATENT_CLASS, PAIRWISE_OR_LATENT_CLASS, CaptureHistory, DEFAULT_INTERVAL,  # noqa: E402
                                DEFAULT_METHOD, LatentClassSettings, estimate, goodness_of_fit)
from pipelines.estimate.intervals import profile_interval  # noqa: E402
from pipelines.estimate.loglinear import fit_model  # noqa: E402
from pipelines.estimate.latent_class import convergence, sample_posterior  # noqa: E402
from pipelines.estimate.pipeline_stage import Stratum, fit_stratum, prepare_stratum, result_row  # noqa: E402
from pipelines.sample.world import build_world  # noqa: E402

SAMPLE_LISTS = ("PNP", "MP", "MIMP", "SUNAFIL")
#: Split and merge rates of the victims' linkage at 1M persons (docs/linkage-benchmark.md: pairwise recall
#: 0.9878, precision 0.9979): 1.2% of true links missed, 0.21% false links per true link.
LINKAGE_MEASURED = (1 - 0.9878, (1 - 0.9979) / 0.9979)
SCENARIO_KINDS = {"a": "the model's assumptions hold (homogeneous capture, pairwise dependence)",
                  "b": "capture probability varies between people (logit-normal visibility)",
                  "c": "latent classes of visibility, lists independent given the class",
                  "d": "logit-normal visibility and a list dependence on top",
                  "e": "linkage errors (split and merge) on top of another scenario"}
TARGET_COVERAGE = 0.90  # in every scenario but the linkage-error ones (e)
TARGET_BIAS = 0.05  # |mean relative bias|, every scenario
#: latent_class's chains in the simulation: shorter than a run's (LatentClassSettings()), which would take
#: hours per scenario on the shared machine; the law is the same posterior, the quantiles are noisier.
SIMULATION_MCMC = LatentClassSettings(chains=4, burn_in=2000, draws=1000, thin=20)


def sample_world(seed: int = 2018) -> tuple[dict[tuple[int, ...], int], int]:
    """The generator's victims: {history over SAMPLE_LISTS: persons} including the unseen, and N."""
    w = build_world(seed)
    a, v = w.arrays, w.arrays["victim"]
    m = np.c_[a["in_pnp"][v], a["in_mp"][v], a["in_mimp"][v], a["in_sunafil"][v]].astype(int)
    table = Counter(map(tuple, m.tolist()))
    return dict(table), int(v.sum())


def _cells(k: int) -> np.ndarray:
    """All 2^k histories, row c = bits of the cell code c (bit j: on list j), as in CaptureHistory."""
    codes = np.arange(2 ** k)
    return ((codes[:, None] >> np.arange(k)) & 1).astype(float)


def loglinear_probabilities(k: int, main: np.ndarray, pairs: dict[tuple[int, int], float]) -> np.ndarray:
    """Cell probabilities of a log-linear model: log mu_c = sum_j main_j c_j + sum_jk u_jk c_j c_k
    (u = -inf: the two lists never share a person)."""
    x = _cells(k)
    eta = x @ main
    for (i, j), u in pairs.items():
        both = (x[:, i] * x[:, j]) > 0
        eta = np.where(both, eta + u if np.isfinite(u) else -np.inf, eta)
    mu = np.exp(eta - eta[np.isfinite(eta)].max())
    return mu / mu.sum()


def project_pairwise(table: dict[tuple[int, ...], int], k: int) -> tuple[np.ndarray, dict]:
    """The pairwise log-linear model closest (Poisson MLE) to a complete table, unseen cell included:
    the generator's list membership under the model's assumptions."""
    import statsmodels.api as sm

    x = _cells(k)
    y = np.array([table.get(tuple(int(b) for b in row), 0) for row in x], float)
    all_pairs = list(itertools.combinations(range(k), 2))
    overlap = {p: y[(x[:, p[0]] * x[:, p[1]]) > 0].sum() for p in all_pairs}
    pairs = [p for p in all_pairs if overlap[p] > 0]
    structural = [p for p in all_pairs if overlap[p] == 0]
    ok = np.array([not any(row[i] and row[j] for i, j in structural) for row in x])
    design = np.c_[np.ones(len(x)), x, *[x[:, i] * x[:, j] for i, j in pairs]]
    beta = sm.GLM(y[ok], design[ok], family=sm.families.Poisson()).fit().params
    main = beta[1:k + 1]
    u = {p: float(b) for p, b in zip(pairs, beta[k + 1:])} | {p: -math.inf for p in structural}
    return main, u


def logit(p):
    return math.log(p / (1 - p))


def _expit(x):
    return 1 / (1 + np.exp(-x))


def rasch_intercepts(marginal: np.ndarray, sigma: float, nodes=None, weights=None) -> np.ndarray:
    """a_j with E[expit(a_j + sigma z)] = marginal_j, z ~ N(0, 1) (Gauss-Hermite quadrature, bisection);
    with ``nodes`` and ``weights``, z takes those values with those probabilities (latent classes)."""
    if nodes is None:
        nodes, weights = np.polynomial.hermite_e.hermegauss(60)
    nodes, weights = np.asarray(nodes, float), np.asarray(weights, float) / np.sum(weights)
    out = []
    for p in marginal:
        lo, hi = -30.0, 30.0
        for _ in range(100):
            mid = (lo + hi) / 2
            if (weights * _expit(mid + sigma * nodes)).sum() < p:
                lo = mid
            else:
                hi = mid
        out.append((lo + hi) / 2)
    return np.array(out)


@dataclass
class Scenario:
    name: str
    kind: str  # "a" model's assumptions, "b" logit-normal visibility, "c" latent classes, "d" b + dependence,
    #            "e" linkage errors on top of another scenario (see SCENARIO_KINDS)
    description: str
    lists: tuple[str, ...]
    total: int
    probabilities: np.ndarray | None = None  # (a): cell probabilities
    true_terms: list[tuple[int, int]] = field(default_factory=list)  # (a): interactions of the true model
    intercepts: np.ndarray | None = None  # (b, c, d): a_j, list j's logit for a person of visibility 0
    sigma: float = 0.0  # (b, d): visibility ~ N(0, sigma^2) on the logit scale
    classes: tuple[tuple[float, float], ...] = ()  # (c): (share, visibility) of each latent class
    class_probabilities: np.ndarray | None = None  # (c): capture probabilities per class and list, given outright
    dependence: tuple[int, int, float] | None = None  # (d): on list i, list j's logit rises by u
    linkage: tuple[float, float] | None = None  # (e): (split, merge) rates applied to the persons seen
    base: "Scenario | None" = None  # (e): the population the linkage errors are applied to

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One population's capture-history counts (dense, cell code order; [0] = the unseen)."""
        k = len(self.lists)
        if self.kind == "a":
            return rng.multinomial(self.total, self.probabilities).astype(float)
        if self.kind == "e":
            return link_with_errors(self.base.draw(rng), *self.linkage, rng)
        if self.kind == "c":
            shares = np.array([c[0] for c in self.classes])
            cls = rng.choice(len(shares), size=self.total, p=shares / shares.sum())
            if self.class_probabilities is not None:
                prob = self.class_probabilities[cls]
            else:
                prob = _expit(self.intercepts[None, :] + np.array([c[1] for c in self.classes])[cls][:, None])
            on = rng.random((self.total, k)) < prob
        else:
            z = rng.standard_normal(self.total)
            logits = self.intercepts[None, :] + self.sigma * z[:, None]
            on = np.zeros((self.total, k), bool)
            for j in range(k):  # list by list: a dependence raises list j's logit for persons on list i
                extra = self.dependence[2] * on[:, self.dependence[0]] if self.dependence and j == self.dependence[1] else 0
                on[:, j] = rng.random(self.total) < _expit(logits[:, j] + extra)
        codes = on.astype(np.int64) @ (1 << np.arange(k))
        return np.bincount(codes, minlength=2 ** k).astype(float)


def link_with_errors(counts: np.ndarray, split: float, merge: float, rng: np.random.Generator) -> np.ndarray:
    """The persons seen as an imperfect linkage would count them (the unseen cell is left as it was).

    Split: each of a person's lists after the first is, with probability ``split``, not linked to the
    rest and becomes a person of its own (a missed link; 1 - pairwise recall). Merge: ``merge`` times the
    number of true links, two persons seen on different lists are wrongly linked into one (a false link;
    (1 - precision) / precision of the links)."""
    k = int(np.log2(len(counts)))
    codes = np.repeat(np.arange(len(counts)), counts.astype(np.int64))
    codes = codes[codes > 0]
    bits = ((codes[:, None] >> np.arange(k)) & 1).astype(bool)
    links = int((bits.sum(axis=1) - 1).clip(0).sum())
    first = np.argmax(bits, axis=1)
    detach = bits & (rng.random(bits.shape) < split)
    detach[np.arange(len(codes)), first] = False
    kept = (bits & ~detach).astype(np.int64) @ (1 << np.arange(k))
    alone = (1 << np.nonzero(detach)[1]).astype(np.int64)
    persons = np.concatenate([kept, alone])
    for _ in range(rng.binomial(links, merge) if links else 0):
        a, b = rng.choice(len(persons), size=2, replace=False)
        if persons[a] & persons[b] == 0:  # two records of one agency are not a cross-list link
            persons[a] |= persons[b]
            persons = np.delete(persons, b)
    out = np.bincount(persons, minlength=len(counts)).astype(float)
    out[0] = counts[0]
    return out


def build_scenarios(seed_world: int = 2018) -> list[Scenario]:
    table, total = sample_world(seed_world)
    k = len(SAMPLE_LISTS)
    x = _cells(k)
    full = np.array([table.get(tuple(int(b) for b in row), 0) for row in x], float)
    marginal = (x * full[:, None]).sum(0) / total
    main_ind = np.array([logit(p) for p in marginal])
    # PNP-MP dependence of the generator: the odds ratio of the 2x2 PNP x MP table, unseen included
    pm = {(a, b): full[(x[:, 0] == a) & (x[:, 1] == b)].sum() for a in (0, 1) for b in (0, 1)}
    u_pm = math.log(pm[(1, 1)] * pm[(0, 0)] / (pm[(1, 0)] * pm[(0, 1)]))
    main_pm = main_ind.copy()
    p_pm = loglinear_probabilities(k, main_pm, {(0, 1): u_pm})
    # keep list sizes at the generator's: adjust main effects for the interaction (a few fixed-point steps)
    for _ in range(50):
        got = (x * p_pm[:, None]).sum(0)
        main_pm += np.log(marginal / got) - np.log((1 - marginal) / (1 - got))
        p_pm = loglinear_probabilities(k, main_pm, {(0, 1): u_pm})
    main_proj, u_proj = project_pairwise(table, k)
    five = ("A", "B", "C", "D", "E")
    p5 = np.array([0.25, 0.20, 0.15, 0.12, 0.10])
    pairs5 = {(0, 1): 1.0, (2, 3): 0.7}
    scenarios = [
        Scenario("a1_sample_independent", "a",
                 "generator's four victim lists and list sizes, lists independent", SAMPLE_LISTS, total,
                 loglinear_probabilities(k, main_ind, {}), []),
        Scenario("a2_sample_pnp_mp", "a",
                 f"generator's lists and sizes with its PNP-MP dependence (log odds ratio {u_pm:.2f}), "
                 "other lists independent", SAMPLE_LISTS, total, p_pm, [(0, 1)]),
        Scenario("a3_five_lists_two_pairs", "a",
                 "five lists (capture 0.25, 0.20, 0.15, 0.12, 0.10), interactions A:B = 1.0 and C:D = 0.7, "
                 "N = 2,000", five, 2000, loglinear_probabilities(5, np.array([logit(p) for p in p5]), pairs5),
                 list(pairs5)),
        Scenario("a4_sample_projected", "a",
                 "the generator's whole list membership projected on the pairwise model (all its pairwise "
                 "dependences: PNP:MP, PNP:MIMP, MP:MIMP, PNP:SUNAFIL; MP:SUNAFIL, MIMP:SUNAFIL never overlap)",
                 SAMPLE_LISTS, total, loglinear_probabilities(k, main_proj, u_proj), list(u_proj)),
    ]
    for sigma in (0.5, 1.0):
        scenarios.append(Scenario(
            f"b_sample_heterogeneous_sigma{sigma:g}", "b",
            f"generator's lists and sizes; capture probability varies between people (Rasch, sigma = {sigma:g} "
            "on the logit scale), lists independent given the person", SAMPLE_LISTS, total,
            intercepts=rasch_intercepts(marginal, sigma), sigma=sigma))
    scenarios.append(Scenario(
        "b_five_lists_heterogeneous_sigma1", "b",
        "five lists (capture 0.25 ... 0.10), N = 2,000, Rasch heterogeneity sigma = 1", five, 2000,
        intercepts=rasch_intercepts(p5, 1.0), sigma=1.0))
    for name, classes in (("c_sample_two_classes", ((0.2, 2.0), (0.8, 0.0))),
                          ("c_sample_three_classes", ((0.1, 3.0), (0.3, 1.0), (0.6, -1.0)))):
        shares, shifts = zip(*classes)
        scenarios.append(Scenario(
            name, "c", f"generator's lists and sizes; {len(classes)} latent classes (share, logit shift): "
            + ", ".join(f"({a:g}, {b:+g})" for a, b in classes) + "; lists independent given the class",
            SAMPLE_LISTS, total, intercepts=rasch_intercepts(marginal, 1.0, shifts, shares), classes=classes))
    scenarios.append(Scenario(
        "c_mv2016_five_lists", "c", "Manrique-Vallier (2016)'s simulation: N = 2,000, five lists, 90% of people "
        "captured with (0.033, 0.033, 0.099, 0.132, 0.033), 10% with (0.660, 0.825, 0.759, 0.990, 0.693)",
        five, 2000, classes=((0.9, 0.0), (0.1, 0.0)),
        class_probabilities=np.array([[0.033, 0.033, 0.099, 0.132, 0.033], [0.660, 0.825, 0.759, 0.990, 0.693]])))
    scenarios.append(Scenario(
        "b_sample_heterogeneous_sigma1.5", "b", "generator's lists and sizes; logit-normal visibility, sigma = 1.5",
        SAMPLE_LISTS, total, intercepts=rasch_intercepts(marginal, 1.5), sigma=1.5))
    scenarios.append(Scenario(
        "d_sample_heterogeneous_pnp_mp", "d",
        f"logit-normal visibility (sigma = 1) and, on top, PNP -> MP referral: on PNP, MP's logit rises by "
        f"{u_pm:.2f} (the generator's log odds ratio)", SAMPLE_LISTS, total,
        intercepts=rasch_intercepts(marginal, 1.0), sigma=1.0, dependence=(0, 1, u_pm)))
    by_name = {sc.name: sc for sc in scenarios}
    for name, base, rates in (("e_a2_linkage_measured", "a2_sample_pnp_mp", LINKAGE_MEASURED),
                              ("e_two_classes_linkage_measured", "c_sample_two_classes", LINKAGE_MEASURED),
                              ("e_two_classes_linkage_5x", "c_sample_two_classes",
                               tuple(5 * r for r in LINKAGE_MEASURED))):
        b = by_name[base]
        scenarios.append(Scenario(
            name, "e",
            f"{base} seen through a linkage that misses {rates[0]:.1%} of links (split) and adds "
            f"{rates[1]:.2%} false ones (merge)", b.lists, b.total, linkage=rates, base=b))
    return scenarios



def scenario_study(script: str, doc: str, run, out: str, argv=None, **header) -> int:
    """The command line of a study over the scenarios (``run(replicates, seed, scenarios)`` -> rows): the
    rows written as JSON with the command that made them and ``header``."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--replicates", type=int, default=200)
    p.add_argument("--seed", type=int, default=2018)
    p.add_argument("--scenario", action="append", default=None)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / out))
    args = p.parse_args(argv)
    result = {"command": "python " + " ".join([f"benchmarks/mse/{script}", *(argv if argv is not None else sys.argv[1:])]),
              **header, "scenarios": run(args.replicates, args.seed, args.scenario)}
    if args.out != "-":
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"written {args.out}")
    return 0


def as_stratum(lists: tuple[str, ...], counts: np.ndarray) -> Stratum:
    k = len(lists)
    sets = Counter()
    for code in range(1, 2 ** k):
        if counts[code]:
            sets[frozenset(lists[j] for j in range(k) if code >> j & 1)] += int(counts[code])
    return Stratum("victim", None, None, sets, lists, (2018,))


def estimate_like_the_pipeline(lists: tuple[str, ...], counts: np.ndarray, method: str) -> dict:
    """The replicate as a stratum of persons x agencies, through the pipeline stage's own path."""
    row, _ = fit_stratum(as_stratum(lists, counts), method)
    return row


def latent_class_like_the_pipeline(lists: tuple[str, ...], tables: list[np.ndarray], seed: int) -> list[dict]:
    """``latent_class`` on every replicate, through the stage's lists and refusals, with the run's prior and
    shorter chains (``SIMULATION_MCMC``); the replicates with the same lists are sampled as one batch of
    chains (one numpy call per step for all of them), so replicate r's chains differ from a lone
    ``concilia mse`` run's, not its law."""
    prepared = [prepare_stratum(as_stratum(lists, c), LATENT_CLASS) for c in tables]
    return _latent_class_rows(prepared, seed)


def _latent_class_rows(prepared: list[tuple[dict, CaptureHistory]], seed: int) -> list[dict]:
    rows = [row for row, _ in prepared]
    groups: dict[tuple, list[int]] = {}
    for i, (row, ch) in enumerate(prepared):
        if "refused_reason" not in row:
            groups.setdefault(ch.lists, []).append(i)
    settings = SIMULATION_MCMC
    for g, members in enumerate(sorted(groups.values())):
        draws, _, _ = sample_posterior(np.array([prepared[i][1].counts for i in members]), seed + g, settings)
        for i, d in zip(members, draws):
            lower, median, upper = np.quantile(d, [0.025, 0.5, 0.975])
            conv = convergence(d)
            rows[i] = rows[i] | {"estimate": median, "lower": lower, "upper": upper, "model": [],
                                 "rhat": conv["rhat"], "ess": min(conv["ess_bulk"], conv["ess_tail"])}
    return rows


def default_like_the_pipeline(lists: tuple[str, ...], tables: list[np.ndarray], seed: int) -> list[dict]:
    """``pairwise_or_latent_class`` as ``estimate()`` runs it (``all_pairwise``; ``latent_class`` where the
    table rejects it), with the rejected replicates' chains sampled as one batch."""
    prepared = [prepare_stratum(as_stratum(lists, c), PAIRWISE_OR_LATENT_CLASS) for c in tables]
    rows, rejected = [], []
    for i, (row, ch) in enumerate(prepared):
        if "refused_reason" in row or row["method"] != PAIRWISE_OR_LATENT_CLASS:  # refused, or past six lists
            rows.append(row if "refused_reason" in row else fit_stratum(as_stratum(lists, tables[i]))[0])
            continue
        r = estimate(ch, "all_pairwise", interval=DEFAULT_INTERVAL)
        rows.append(result_row(row, r) | {"chosen": "all_pairwise"})
        if not r.refused and goodness_of_fit(ch, r.model)["rejected"]:
            rejected.append(i)
    for i, row in zip(rejected, _latent_class_rows([prepared[i] for i in rejected], seed)):
        rows[i] = row | {"chosen": LATENT_CLASS}
    return rows


def oracle(lists, counts, terms) -> tuple[float | None, float | None, float | None]:
    """The true model, no selection: how much of a miss is model selection rather than the estimator."""
    masks = [(1 << i) | (1 << j) for i, j in terms]
    ch = CaptureHistory(lists, np.r_[0.0, counts[1:]])
    fit = fit_model(ch, masks)
    if not fit.ok:
        return None, None, None
    iv = profile_interval(lists, ch.counts, masks)
    return fit.estimate, iv.lower, iv.upper


def summarise(s: Scenario, rows: list[dict], oracles: list[tuple], seconds: float) -> dict:
    n = s.total
    est = [r for r in rows if r.get("estimate") is not None]
    covered = [r for r in est if r["lower"] is not None and r["upper"] is not None and r["lower"] <= n <= r["upper"]]
    rel = np.array([r["estimate"] / n - 1 for r in est]) if est else np.array([])
    width = np.array([(r["upper"] - r["lower"]) / n for r in est if r["lower"] is not None and r["upper"] is not None])
    models = Counter(" + ".join(["main effects", *r["model"]]) for r in est)
    lists = Counter(", ".join(r["lists"]) for r in rows)
    out = {
        "scenario": s.name, "kind": s.kind, "description": s.description, "lists": list(s.lists),
        "true_total": n, "replicates": len(rows), "mean_observed": float(np.mean([r["observed"] for r in rows])),
        "refused": len(rows) - len(est),
        "refusal_reasons": dict(Counter(r.get("refused_reason") for r in rows if r.get("estimate") is None)),
        "coverage": len(covered) / len(est) if est else None,
        "coverage_counting_refusals_as_misses": len(covered) / len(rows) if rows else None,
        "relative_bias_mean": float(rel.mean()) if est else None,
        "relative_bias_median": float(np.median(rel)) if est else None,
        "relative_rmse": float(np.sqrt((rel ** 2).mean())) if est else None,
        "interval_width_relative_median": float(np.median(width)) if len(width) else None,
        "lists_fitted": dict(lists.most_common(3)),
        "models_selected": dict(models.most_common(5)),
        "seconds": round(seconds, 1),
    }
    if oracles:
        ok = [o for o in oracles if o[0] is not None]
        cov = [o for o in ok if o[1] is not None and o[2] is not None and o[1] <= n <= o[2]]
        out["oracle_true_model"] = {
            "note": "the true interactions fitted on the unmerged lists, no selection, profile interval",
            "coverage": len(cov) / len(ok) if ok else None,
            "relative_bias_mean": float(np.mean([o[0] / n - 1 for o in ok])) if ok else None,
            "fitted": len(ok)}
    sampled = [r for r in est if r.get("rhat") is not None]
    if sampled:
        rhat = [r["rhat"] for r in sampled]
        out["chains"] = {"rhat_median": float(np.median(rhat)), "rhat_over_1.05": int(sum(h > 1.05 for h in rhat)),
                         "ess_median": float(np.median([r["ess"] for r in sampled]))}
    chosen = Counter(r["chosen"] for r in est if r.get("chosen"))
    if chosen:
        out["chosen"] = dict(chosen)
    out["meets_coverage_target"] = bool(out["coverage"] is not None and out["coverage"] >= TARGET_COVERAGE)
    out["meets_bias_target"] = bool(out["relative_bias_mean"] is not None
                                    and abs(out["relative_bias_mean"]) <= TARGET_BIAS)
    return out


def run(replicates: int, seed: int, method: str = DEFAULT_METHOD, only: list[str] | None = None) -> dict:
    results = []
    print(f"method {method}, {replicates} replicates per scenario", flush=True)
    for index, s in enumerate(build_scenarios()):
        if only and s.name not in only:
            continue
        t = time.perf_counter()
        tables = [s.draw(np.random.default_rng([seed, index, r])) for r in range(replicates)]
        if method == LATENT_CLASS:
            rows = latent_class_like_the_pipeline(s.lists, tables, seed + index)
        elif method == PAIRWISE_OR_LATENT_CLASS:
            rows = default_like_the_pipeline(s.lists, tables, seed + index)
        else:
            rows = [estimate_like_the_pipeline(s.lists, counts, method) for counts in tables]
        oracles = [oracle(s.lists, counts, s.true_terms) for counts in tables] if s.kind == "a" else []
        results.append(summarise(s, rows, oracles, time.perf_counter() - t))
        print(_line(results[-1]), flush=True)
    return {"method": method,
            "interval": {"model_average": "model-averaged profile likelihood",
                         LATENT_CLASS: "posterior 2.5% and 97.5% quantiles",
                         PAIRWISE_OR_LATENT_CLASS: "profile likelihood (all_pairwise) or posterior quantiles "
                                                   "(latent_class)"}.get(method, "profile"),
            **({"mcmc": asdict(SIMULATION_MCMC)} if method in (LATENT_CLASS, PAIRWISE_OR_LATENT_CLASS) else {}),
            "confidence": 0.95, "replicates": replicates, "seed": seed,
            "scenarios": results}


def _pct(x):
    return "   -  " if x is None else f"{100 * x:5.1f}%"


def _line(r: dict) -> str:
    o = r.get("oracle_true_model", {})
    return (f"{r['scenario']:<38} N={r['true_total']:>5} seen~{r['mean_observed']:>6.0f} cover {_pct(r['coverage'])} "
            f"bias {_pct(r['relative_bias_mean'])} width {_pct(r['interval_width_relative_median'])} "
            f"refused {r['refused']:>3}"
            + (f" | oracle cover {_pct(o.get('coverage'))} bias {_pct(o.get('relative_bias_mean'))}" if o else ""))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--replicates", type=int, default=500)
    p.add_argument("--seed", type=int, default=2018)
    p.add_argument("--method", default=DEFAULT_METHOD, help=f"the method checked (default {DEFAULT_METHOD})")
    p.add_argument("--compare", action="append", default=[], metavar="METHOD",
                   help="also run another method for comparison (repeatable)")
    p.add_argument("--compare-replicates", type=int, default=None, help="replicates for --compare (default: same)")
    p.add_argument("--scenario", action="append", default=None, help="run only this scenario (repeatable)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mse_simulation.json"))
    args = p.parse_args(argv)
    started = time.perf_counter()
    result = {"target": f"the default's coverage >= {TARGET_COVERAGE:.0%} in every scenario of kinds a-d, "
                        f"|mean bias| <= {TARGET_BIAS:.0%} in every scenario",
              "command": "python " + " ".join(["benchmarks/mse/simulate.py", *(argv if argv is not None else sys.argv[1:])]),
              "scenario_kinds": SCENARIO_KINDS,
              **run(args.replicates, args.seed, args.method, args.scenario)}
    result["comparisons"] = [run(args.compare_replicates or args.replicates, args.seed, m, args.scenario)
                             for m in args.compare]
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.out != "-":
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
