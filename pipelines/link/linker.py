"""The linker's steps as plain functions on Arrow tables, shared by the Beam transform and by
in-memory callers (tests, benchmarks): settings, candidate pairs with comparisons, u from a
deterministic sample, term frequencies, training, scoring.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import yaml

from pipelines.link import blocking
from pipelines.link.comparisons import (
    check_options, columns_for, compare, compared_columns, decode, encode_strings, kept_per_value,
)
from pipelines.link.cluster import GUARD_COLUMNS
from pipelines.link.fellegi_sunter import LinkageModel, estimate_u, train
from pipelines.link.settings import LinkageSettings
from pipelines.resources import schemas_dir

U_CHUNK_PAIRS = 200_000
PAIR_SLICE = 500_000  # candidate pairs gathered and compared at once (bounds memory per step)


@functools.lru_cache(maxsize=None)
def _load_settings(path: str) -> LinkageSettings:
    with open(path, encoding="utf-8") as fh:
        settings = LinkageSettings.from_dict(yaml.safe_load(fh))
    check_options(settings.comparisons)
    return settings


def load_settings(path: str | None = None) -> LinkageSettings:
    """The linkage settings (schemas/linkage/settings.yaml unless ``path``), checked: a
    ``pipelines.core.settings_file.SettingsError`` names a key the file gets wrong."""
    return _load_settings(str(path or schemas_dir() / "linkage" / "settings.yaml"))


def load_pinned_models(path: str) -> dict[str, dict]:
    """Models to pin, by role, from a run folder (its linkage/) or a folder of model_<role>s.json."""
    import json

    import fsspec

    from pipelines.link.fellegi_sunter import LinkageModel

    fs, root = fsspec.core.url_to_fs(path)
    root = root.rstrip("/")
    folder = f"{root}/linkage" if fs.exists(f"{root}/linkage") else root
    models = {}
    for role in ("victim", "offender"):
        candidate = f"{folder}/model_{role}s.json"
        if fs.exists(candidate):
            with fs.open(candidate, "r", encoding="utf-8") as fh:
                data = json.load(fh)
            LinkageModel.from_json(data)  # fail now, not on a worker, if it is not a model
            models[role] = data
    if not models:
        raise FileNotFoundError(f"no linkage model (model_victims.json, model_offenders.json) under {path}")
    return models


def comparison_columns(settings: LinkageSettings) -> list[str]:
    cols = {"record_uid"} | set(GUARD_COLUMNS)
    for c in settings.comparisons:
        cols.update(columns_for(c))
        if c.tf_column:
            cols.add(c.tf_column)
    for rule in settings.blocking_rules:
        cols.update(rule.keys)
        if rule.multi:
            cols.add(rule.tokens)
    for orders in (settings.giant_block_orders, *(r.giant_block_orders for r in settings.blocking_rules)):
        cols.update(c for order in orders or () for c in order)
    return sorted(cols)


def slim(comp: pa.Table, settings: LinkageSettings) -> pa.Table:
    """Only what blocking, comparisons and the clustering guard read, plus the rule keys."""
    keep = [c for c in comparison_columns(settings) if c in comp.column_names]
    return blocking.with_rule_keys(comp.select(keep), settings.blocking_rules)


def levels(candidates: blocking.CandidatePairs, settings: LinkageSettings) -> dict[str, np.ndarray]:
    """The agreement level of every pair on every comparison (int8 per comparison)."""
    if not len(candidates):
        return {name: np.zeros(0, dtype=np.int8) for name in settings.comparison_names}
    values = candidates.values
    values = values.select([c for c in compared_columns(settings.comparisons) if c in values.column_names])
    return compare(values.take(candidates.left_index), values.take(candidates.right_index), settings.comparisons)


def scored_pairs(candidates: blocking.CandidatePairs, settings: LinkageSettings,
                 gammas: dict[str, np.ndarray] | None = None) -> pa.Table:
    """Pair table: uids, rule, one int8 level column per comparison, tf values, guard columns
    (levels compared here unless already known)."""
    left, right = candidates.left, candidates.right
    gammas = gammas if gammas is not None else compare(left, right, settings.comparisons)
    columns = {"left_uid": decode(left.column("record_uid")), "right_uid": decode(right.column("record_uid")),
               "rule": candidates.rule, "rules_satisfied": candidates.satisfied}
    columns.update({f"gamma_{name}": pa.array(g, pa.int8()) for name, g in gammas.items()})
    for c in settings.comparisons:
        if c.tf_column:
            columns[f"tf_{c.name}"] = decode(left.column(c.tf_column))
    for side, table in (("left", left), ("right", right)):
        for g in GUARD_COLUMNS:
            if g in table.column_names:  # a comparison table prepared before a guard column was added
                columns[f"{side}_{g}"] = decode(table.column(g))
    return pa.table(columns)


def gamma_dict(pairs: pa.Table, names: list[str]) -> dict[str, np.ndarray]:
    """The level columns of a pair table, by comparison name."""
    return {name: pairs.column(f"gamma_{name}").to_numpy() for name in names}


def level_table(candidates: blocking.CandidatePairs, gammas: dict[str, np.ndarray]) -> pa.Table:
    """Just what training counts: the rules each pair satisfies and its levels."""
    return pa.table({"rules_satisfied": candidates.satisfied, "windowed": candidates.windowed,
                     **{f"gamma_{name}": pa.array(g, pa.int8()) for name, g in gammas.items()}})


def pattern_counts(pairs: pa.Table, settings: LinkageSettings) -> pa.Table:
    names = ["rules_satisfied", "windowed"] + [f"gamma_{name}" for name in settings.comparison_names]
    counted = pairs.select(names).group_by(names, use_threads=False).aggregate([([], "count_all")])
    return pa.table({**{n.removeprefix("gamma_"): counted.column(n) for n in names},
                     "count": counted.column("count_all")}).combine_chunks()


def merge_pattern_counts(tables: list[pa.Table]) -> pa.Table:
    tables = [t for t in tables if t is not None and t.num_rows]
    if not tables:
        return None
    table = pa.concat_tables(tables)
    keys = [c for c in table.column_names if c != "count"]
    summed = table.group_by(keys, use_threads=False).aggregate([("count", "sum")])
    # combined: group_by's output chunks share buffers that pickling would copy whole
    return pa.table({**{k: summed.column(k) for k in keys}, "count": summed.column("count_sum")}).combine_chunks()


def sample_priority(comp: pa.Table, seed: int) -> np.ndarray:
    from pipelines.core.vector import map_unique

    salt = str(seed).encode()
    return map_unique(comp.column("record_uid"), lambda v: zlib.crc32(salt + v.encode("utf-8")), pa.int64()).to_numpy(
        zero_copy_only=False)


def bottom_k(comp: pa.Table, k: int, seed: int) -> pa.Table:
    """The k records with the smallest hash: a uniform sample that any partitioning reproduces."""
    if comp.num_rows <= k:
        return comp
    order = np.argsort(sample_priority(comp, seed), kind="stable")[:k]
    return comp.take(np.sort(order))


def u_from_sample(sample: pa.Table, settings: LinkageSettings) -> dict[str, dict[int, float]]:
    n = sample.num_rows
    max_pairs = settings.training.u_max_pairs
    rng = np.random.default_rng(settings.training.seed)
    if n * (n - 1) // 2 <= max_pairs:
        left_i, right_i = np.triu_indices(n, k=1)
    else:
        left_i = rng.integers(0, n, size=max_pairs)
        right_i = rng.integers(0, n, size=max_pairs)
        keep = left_i != right_i
        left_i, right_i = left_i[keep], right_i[keep]
    compared = compared_columns(settings.comparisons)
    sample = encode_strings(sample.select([c for c in sample.column_names if c in compared]))
    # compared in chunks: only the int8 levels of every random pair are kept, never their values
    parts: dict[str, list[np.ndarray]] = {name: [np.zeros(0, dtype=np.int8)] for name in settings.comparison_names}
    with kept_per_value():  # the chunks share the sample's dictionaries
        for start in range(0, len(left_i), U_CHUNK_PAIRS):
            chunk = slice(start, start + U_CHUNK_PAIRS)
            levels = compare(sample.take(left_i[chunk]), sample.take(right_i[chunk]), settings.comparisons)
            for name, values in levels.items():
                parts.setdefault(name, []).append(values)
    gammas = {name: np.concatenate(values) for name, values in parts.items()}
    return estimate_u(gammas, settings)


def uniform_u(settings: LinkageSettings) -> dict[str, dict[int, float]]:
    """u when there is nothing to sample (an empty role): every level equally likely."""
    from pipelines.link.comparisons import LEVELS

    return {c.name: {lvl: 1.0 / len(LEVELS[c.type]) for lvl in LEVELS[c.type]} for c in settings.comparisons}


TF_SCHEMA = pa.schema([("comparison", pa.string()), ("value", pa.string()), ("count", pa.int64())])


def term_frequencies(comp: pa.Table, settings: LinkageSettings) -> dict[str, dict[str, int]]:
    """How many records hold each value of each term-frequency column, per comparison."""
    counts = {}
    for c in settings.comparisons:
        if c.tf_column:
            vc = pc.value_counts(comp.column(c.tf_column).combine_chunks())
            values, n = vc.field("values").to_pylist(), vc.field("counts").to_pylist()
            counts[c.name] = {v: k for v, k in zip(values, n) if v is not None}
    return counts


def merge_counts(parts: list[dict[str, dict[str, int]]]) -> dict[str, dict[str, int]]:
    merged: dict[str, dict[str, int]] = {}
    for part in parts:
        for name, values in part.items():
            bucket = merged.setdefault(name, {})
            for v, c in values.items():
                bucket[v] = bucket.get(v, 0) + c
    return merged


def frequency_table(counts: dict[str, dict[str, int]] | None) -> pa.Table:
    """The merged counts as a table (comparison, value, count): what every scoring worker reads
    (a whole given name, a surname pair or a case reference has hundreds of thousands of distinct
    values at scale)."""
    counts = counts or {}
    return pa.table([pa.array([name for name, values in counts.items() for _ in values], pa.string()),
                     pa.array([v for values in counts.values() for v in values], pa.string()),
                     pa.array([n for values in counts.values() for n in values.values()], pa.int64())],
                    schema=TF_SCHEMA)


_FREQUENCIES: dict[tuple[int, str], tuple[pa.Table, pa.Array, pa.Array]] = {}


def _frequencies(tf: pa.Table, name: str) -> tuple[pa.Array, pa.Array]:
    """(values, frequencies among all records that hold one) of one comparison's term frequencies,
    built once per table: the same table scores every slice of every partition."""
    hit = _FREQUENCIES.get((id(tf), name))
    if hit is None or hit[0] is not tf:
        if len(_FREQUENCIES) >= 8:  # a job's roles' tables, a few comparisons each
            _FREQUENCIES.clear()
        rows = tf.filter(pc.equal(tf.column("comparison"), name))
        counts = rows.column("count").to_numpy()
        hit = _FREQUENCIES[(id(tf), name)] = (tf, rows.column("value").combine_chunks(),
                                              pa.array(counts.astype(np.float64) / counts.sum()))
    return hit[1], hit[2]


def _tf_frequencies(column: pa.Array | pa.ChunkedArray, keys: pa.Array, freqs: pa.Array) -> np.ndarray:
    """Each value's frequency among all records (NaN where the value is unknown or not counted)."""
    at = pc.index_in(decode(column), keys)
    return pc.fill_null(pc.take(freqs, at), float("nan")).to_numpy(zero_copy_only=False)


def score_above(candidates: blocking.CandidatePairs, gammas: dict[str, np.ndarray], model: LinkageModel,
                tf: pa.Table | None, settings: LinkageSettings, floor: float) -> pa.Table:
    """``keep_above(score(scored_pairs(...)), floor)`` without building the pair table of the
    pairs below the floor (almost all candidate pairs): weights from the levels and each record's
    term frequencies (``term_frequencies``: looked up once per record, not per pair), then the
    table of the kept ones."""
    frequencies = {}
    for c in settings.comparisons:
        keys, freqs = _frequencies(tf, c.name) if c.tf_column and tf is not None else ([], [])
        if len(keys):  # no counts for this comparison: its top level is not weighed by frequency
            per_record = _tf_frequencies(candidates.values.column(c.tf_column), keys, freqs)
            frequencies[c.name] = per_record[candidates.left_index]
    result = model.score(gammas, frequencies)
    keep = np.nonzero(result["match_probability"] >= floor)[0]
    kept = candidates.take(keep)
    pairs = scored_pairs(kept, settings, {name: g[keep] for name, g in gammas.items()})
    for name, values in result.items():
        pairs = pairs.append_column(name, pa.array(values[keep]))
    return pairs


def train_model(patterns: pa.Table, u: dict, settings: LinkageSettings, n_records: int) -> LinkageModel:
    return train(patterns, u, settings, n_records)


@dataclass
class InMemoryLinkage:
    pairs: pa.Table                        # scored pairs at or above the links floor
    model: LinkageModel
    stats: dict
    candidates: blocking.CandidatePairs    # every candidate pair, as row indices


def link_in_memory(comp: pa.Table, settings: LinkageSettings, model: LinkageModel | None = None,
                   slice_pairs: int = PAIR_SLICE) -> InMemoryLinkage:
    """The whole linker on one table (tests and benchmarks); the pipeline does the same in Beam.

    Candidate pairs are held as row indices; their records are gathered and compared one slice
    at a time, keeping only the int8 levels. After training, each slice is scored from its levels
    and only the pairs at or above the links floor are built into the returned table."""
    comp = slim(comp, settings)
    parts = [part for _, part in blocking.partition_by_block(comp, settings, 1)]
    candidates = blocking.pairs_in_partition(pa.concat_tables(parts), settings)
    slices = list(candidates.slices(slice_pairs))
    compared = [levels(s, settings) for s in slices]
    if model is None:
        sample = bottom_k(comp, settings.training.u_sample_records, settings.training.seed)
        counted = [pattern_counts(level_table(s, g), settings) for s, g in zip(slices, compared)]
        patterns = merge_pattern_counts(counted)
        model = train_model(patterns if patterns is not None else counted[0], u_from_sample(sample, settings),
                            settings, comp.num_rows)
    tf = frequency_table(term_frequencies(comp, settings))
    floor = settings.thresholds.floor
    pairs = pa.concat_tables([score_above(s, g, model, tf, settings, floor) for s, g in zip(slices, compared)])
    stats = {**candidates.stats, "candidate_pairs": len(candidates)}
    return InMemoryLinkage(pairs=pairs, model=model, stats=stats, candidates=candidates)


def keep_above(pairs: pa.Table, threshold: float) -> pa.Table:
    return pairs.filter(pc.greater_equal(pairs.column("match_probability"), threshold))
