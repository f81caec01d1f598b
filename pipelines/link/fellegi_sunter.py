"""The Fellegi-Sunter model: m and u per comparison level, a prior, term-frequency adjustments.

u is estimated from random record pairs (almost all non-matches); m and the prior by EM over the
blocked candidate pairs, run on the counts of distinct agreement patterns (a few thousand rows
whatever the data size). The trained model is a JSON artefact a person can read and pin.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from pipelines.core.settings_file import SettingsError
from pipelines.link.comparisons import LEVELS, NULL
from pipelines.link.settings import BlockingRule, Comparison, LinkageSettings, Training

MODEL_FORMAT = "concilia-fellegi-sunter/1"
_FLOOR = 1e-6  # no level is ever impossible: keeps weights finite when a level was unseen in training


class LinkageModelError(ValueError):
    """A pinned linkage model cannot be used (wrong format or settings)."""


@dataclass
class ComparisonParameters:
    name: str
    type: str
    levels: list[int]                      # non-null levels, strongest first
    m: dict[int, float]
    u: dict[int, float]
    tf_column: str | None = None

    def bayes_factor_log2(self, level: int) -> float:
        if level == NULL:
            return 0.0
        weight = math.log2(max(self.m[level], _FLOOR) / max(self.u[level], _FLOOR))
        # disagreement is never evidence for a match (a level unseen among random pairs would say so)
        return min(weight, 0.0) if level == 0 else weight

    def to_json(self) -> dict:
        labels = LEVELS.get(self.type, {})
        return {
            "name": self.name, "type": self.type, "tf_column": self.tf_column,
            "levels": [
                {"level": lvl, "label": labels.get(lvl, ""), "m": self.m[lvl], "u": self.u[lvl],
                 "match_weight": round(self.bayes_factor_log2(lvl), 4)}
                for lvl in self.levels
            ],
        }


@dataclass
class LinkageModel:
    comparisons: list[ComparisonParameters]
    prior: float                              # P(match) among candidate pairs
    settings: LinkageSettings                 # those it was trained with
    trained: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "format": MODEL_FORMAT,
            "settings_version": self.settings.version,
            "prior_match_probability": self.prior,
            "prior_match_weight": round(math.log2(self.prior / (1 - self.prior)), 4),
            "thresholds": self.settings.thresholds.to_dict(),
            "comparisons": [c.to_json() for c in self.comparisons],
            "trained": self.trained,
            "settings": self.settings.to_dict(),
        }

    @classmethod
    def from_json(cls, data: dict) -> "LinkageModel":
        if data.get("format") != MODEL_FORMAT:
            raise LinkageModelError(f"not a Concilia linkage model (format {data.get('format')!r})")
        comps = [
            ComparisonParameters(
                name=c["name"], type=c["type"], tf_column=c.get("tf_column"),
                levels=[lv["level"] for lv in c["levels"]],
                m={lv["level"]: lv["m"] for lv in c["levels"]}, u={lv["level"]: lv["u"] for lv in c["levels"]},
            )
            for c in data["comparisons"]
        ]
        for c in comps:  # a model trained before a comparison's levels changed cannot score today's levels
            if c.type in LEVELS and sorted(c.levels) != sorted(LEVELS[c.type]):
                raise LinkageModelError(f"the model's comparison {c.name!r} has levels {sorted(c.levels)}, this "
                                        f"version computes {sorted(LEVELS[c.type])}: train a new model")
        try:
            settings = LinkageSettings.from_dict(data["settings"])
        except SettingsError as e:
            raise LinkageModelError(f"the model's settings: {e}") from None
        return cls(comparisons=comps, prior=data["prior_match_probability"], settings=settings,
                   trained=data.get("trained", {}))

    def score(self, gammas: dict[str, np.ndarray], tf: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Match weight (log2 odds), probability and each comparison's contribution per pair."""
        n = len(next(iter(gammas.values()))) if gammas else 0
        total = np.full(n, math.log2(self.prior / (1 - self.prior)))
        out: dict[str, np.ndarray] = {}
        for c in self.comparisons:
            g = gammas[c.name]
            table = np.zeros(max(c.levels) + 2)
            for lvl in c.levels:
                table[lvl + 1] = c.bayes_factor_log2(lvl)
            contribution = table[g.astype(np.int64) + 1]
            if tf is not None and c.name in tf:
                # Splink-style term-frequency adjustment on the exact levels: agreeing on QUISPE
                # says less than agreeing on a rare surname. tf holds the value's frequency or NaN.
                freq = tf[c.name]
                exact = (g == c.levels[0]) & ~np.isnan(freq)
                adjust = np.log2(c.u[c.levels[0]] / np.maximum(freq, _FLOOR))
                contribution = contribution + np.where(exact, adjust, 0.0)
            out[f"w_{c.name}"] = contribution
            total = total + contribution
        out["match_weight"] = total
        out["match_probability"] = 1.0 / (1.0 + np.exp2(-total))
        return out


def _levels_of(settings: LinkageSettings) -> dict[str, list[int]]:
    return {c.name: sorted(LEVELS[c.type], reverse=True) for c in settings.comparisons}


def estimate_u(gammas: dict[str, np.ndarray], settings: LinkageSettings) -> dict[str, dict[int, float]]:
    """u per level: level frequencies among random pairs (nulls excluded)."""
    u = {}
    for name, levels in _levels_of(settings).items():
        g = gammas[name]
        known = g[g != NULL]
        counts = {lvl: float(np.sum(known == lvl)) for lvl in levels}
        total = sum(counts.values())
        u[name] = {lvl: max(c / total, _FLOOR) if total else 1.0 / len(levels) for lvl, c in counts.items()}
    return u


def _em(G: np.ndarray, counts: np.ndarray, active: list[bool], levels: list[list[int]],
        u: list[dict[int, float]], cfg: Training) -> tuple[list[dict[int, float]], float, int]:
    """EM for m (active comparisons only) and the session's prior, u fixed."""

    def log_likelihood(params: list[dict[int, float]]) -> np.ndarray:
        total = np.zeros(len(counts))
        for j, lv in enumerate(levels):
            if not active[j]:
                continue
            lut = np.zeros(max(lv) + 2)
            for lvl in lv:
                lut[lvl + 1] = math.log(max(params[j][lvl], _FLOOR))
            total += lut[G[:, j] + 1]
        return total

    m = []
    for lv in levels:  # start: strong agreement likely among matches
        raw = {lvl: 2.0 ** (-i) for i, lvl in enumerate(lv)}
        z = sum(raw.values())
        m.append({k: v / z for k, v in raw.items()})
    prior, log_u, iterations = 0.5, log_likelihood(u), 0
    for iterations in range(1, cfg.em_max_iterations + 1):
        a = math.log(prior) + log_likelihood(m)
        b = math.log(1 - prior) + log_u
        weighted = counts / (1.0 + np.exp(np.clip(b - a, -700, 700)))
        new_prior = min(max(float(weighted.sum() / counts.sum()), _FLOOR), 1 - _FLOOR)
        new_m = []
        for j, lv in enumerate(levels):
            known = G[:, j] != NULL
            denom = weighted[known].sum()
            # one pseudo-pair per level: a level unseen among a session's matches stays possible
            new_m.append({lvl: float((weighted[G[:, j] == lvl].sum() + 1.0) / (denom + len(lv)))
                          if active[j] and denom else m[j][lvl] for lvl in lv})
        delta = max([abs(new_prior - prior)] + [abs(new_m[j][l] - m[j][l]) for j, lv in enumerate(levels) for l in lv])
        m, prior = new_m, new_prior
        if delta < cfg.em_tolerance:
            break
    return m, prior, iterations


def _uses(comparison: Comparison, rule: BlockingRule) -> bool:
    """Whether a blocking rule's keys constrain a comparison (its pairs then say nothing about m)."""
    from pipelines.link.comparisons import DERIVED, columns_for

    keys = set(rule.keys) | ({rule.tokens} if rule.multi else set())
    keys |= {c for k in keys for c in DERIVED.get(k, ())}
    return bool(set(columns_for(comparison)) & keys)


def train(patterns: pa.Table, u: dict[str, dict[int, float]], settings: LinkageSettings, n_records: int) -> LinkageModel:
    """m by EM per blocking rule (Splink's training sessions), u fixed, then the prior.

    Pairs found by a rule agree on that rule's keys whatever their match status, so each rule's
    session estimates m only for the comparisons its keys do not touch; estimates are averaged
    over sessions weighted by pairs; pairs from whole blocks only, where a rule has any. The prior is the probability that two random records match,
    solved so that the expected matches among candidate pairs equal prior x all record pairs
    (pairs outside every block are taken as non-matches).
    """
    cfg = settings.training
    comps = settings.comparisons
    names = settings.comparison_names
    # a fixed order: the same patterns merged in any order (any partitioning) give the same floats
    patterns = patterns.sort_by([(c, "ascending") for c in ["rules_satisfied", "windowed", *names]])
    levels = [sorted(LEVELS[c.type], reverse=True) for c in comps]
    u_list = [u[n] for n in names]
    counts_all = patterns.column("count").to_numpy().astype(np.float64)
    G_all = np.stack([patterns.column(n).to_numpy().astype(np.int64) for n in names], axis=1)
    satisfied = patterns.column("rules_satisfied").to_numpy().astype(np.int64)
    # Pairs from giant blocks were chosen as sorted neighbours, which agree on the sort fields more
    # than chance whatever their match status: EM on them would credit that agreement to matches.
    # Sessions learn m from whole blocks; the prior counts every candidate pair.
    whole = ~patterns.column("windowed").to_numpy(zero_copy_only=False).astype(bool)

    sums = [{lvl: 0.0 for lvl in lv} for lv in levels]
    weights = [0.0] * len(comps)
    sessions = []
    for i, rule in enumerate(settings.blocking_rules):
        if not rule.train:
            continue  # a rule too loose to learn from: its pairs are almost all non-matches
        mask = (satisfied >> i) & 1 == 1
        if (mask & whole).any():
            mask &= whole
        if not mask.any():
            continue
        active = [not _uses(c, rule) for c in comps]
        m, session_prior, iterations = _em(G_all[mask], counts_all[mask], active, levels, u_list, cfg)
        pairs = float(counts_all[mask].sum())
        matches = pairs * session_prior  # a session's estimates count as much as the matches it saw
        for j in range(len(comps)):
            if active[j]:
                weights[j] += matches
                for lvl in levels[j]:
                    sums[j][lvl] += matches * m[j][lvl]
        sessions.append({"rule": rule.name, "pairs": int(pairs), "em_iterations": iterations,
                         "session_match_share": round(session_prior, 4),
                         "estimated": [n for n, a in zip(names, active) if a]})
    m_final = []
    for j, lv in enumerate(levels):
        if weights[j]:
            m_final.append({lvl: max(sums[j][lvl] / weights[j], _FLOOR) for lvl in lv})
        else:  # never estimable (every rule uses it): fall back to agreement-favouring defaults
            raw = {lvl: 2.0 ** (-i) for i, lvl in enumerate(lv)}
            m_final.append({k: v / sum(raw.values()) for k, v in raw.items()})

    # prior: fixed point of prior = E[matches among candidates | prior] / all pairs
    total_pairs = max(n_records * (n_records - 1) / 2.0, 1.0)
    log_bf = np.zeros(len(counts_all))
    for j, lv in enumerate(levels):
        lut = np.zeros(max(lv) + 2)
        for lvl in lv:
            lut[lvl + 1] = math.log(m_final[j][lvl] / max(u_list[j][lvl], _FLOOR))
        log_bf += lut[G_all[:, j] + 1]
    prior = max(min(1e-3, counts_all.sum() / total_pairs), 1e-12)
    for _ in range(200):
        odds = math.log(prior / (1 - prior)) + log_bf
        expected = float((counts_all / (1.0 + np.exp(-np.clip(odds, -700, 700)))).sum())
        new_prior = min(max(expected / total_pairs, 1e-12), 0.5)
        if abs(new_prior - prior) <= 1e-9 * max(prior, 1e-12):
            break
        prior = new_prior
    params = [
        ComparisonParameters(name=c.name, type=c.type, levels=levels[j], m=m_final[j], u=u_list[j],
                             tf_column=c.tf_column)
        for j, c in enumerate(comps)
    ]
    trained = {"records": int(n_records), "candidate_pairs": int(counts_all.sum()), "patterns": int(len(counts_all)),
               "expected_matches": round(prior * total_pairs, 1), "sessions": sessions,
               "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    return LinkageModel(comparisons=params, prior=prior, settings=settings, trained=trained)
