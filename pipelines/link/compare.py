"""The work of ``LinkPersons``' ComparisonTable, PartitionByBlock, ComparePairs and ScorePairs steps as functions
of tables or file names and settings (a worker process of ``pipelines.core.local_pool`` runs them
without Beam)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipelines.core.handoff import Handoff, load_all, load_shared
from pipelines.link import blocking, linker
from pipelines.link.fellegi_sunter import LinkageModel
from pipelines.link.prepare import comparison_table
from pipelines.link.settings import LinkageSettings


@dataclass
class ComparedPartition:
    stats: dict  # candidate pairs per rule, bounded blocks
    patterns: list[pa.Table]  # agreement-pattern counts, a table per slice of pairs
    values: pa.Table | str  # the partition's records' comparison columns (a handoff ref)
    pairs: pa.Table | str  # per pair: the two rows, the rule and the levels (int8) (a handoff ref)


def comparison_rows(records: pa.Table, settings: LinkageSettings, handoff: Handoff) -> pa.Table | str:
    """Harmonised records -> the ref of their comparison rows (the columns the linkage reads)."""
    return handoff.store(linker.slim(comparison_table(records), settings), "rows")


def partition_rows(comp, settings: LinkageSettings, partitions: int, giant: dict,
                   handoff: Handoff) -> list[tuple[int, pa.Table | str]]:
    """Comparison rows (a handoff ref) -> (partition, ref of its rows), each part handed off on its own."""
    return [(k, handoff.store(part, f"p{k}"))
            for k, part in blocking.partition_by_block(Handoff.load(comp), settings, partitions, giant)]


def compare_partition(k: int, parts: list, settings: LinkageSettings, handoff: Handoff) -> ComparedPartition:
    """The candidate pairs of partition ``k`` (its blocks' refs, ``parts``), compared once."""
    candidates = blocking.pairs_in_partition(load_all(parts), settings)
    levels, patterns = [], []
    for part in candidates.slices(linker.PAIR_SLICE):  # a slice at a time: bounded memory when compared
        gammas = linker.levels(part, settings)
        patterns.append(linker.pattern_counts(linker.level_table(part, gammas), settings))
        levels.append(gammas)
    pairs = pa.table({
        "left": candidates.left_index, "right": candidates.right_index, "rule": candidates.rule_index,
        "rules_satisfied": candidates.satisfied, "windowed": candidates.windowed,
        **{f"gamma_{n}": np.concatenate([g[n] for g in levels]) for n in settings.comparison_names}})
    return ComparedPartition(candidates.stats, patterns, handoff.store(candidates.values, f"values-p{k}"),
                             handoff.store(pairs, f"pairs-p{k}"))


def score_partition(compared: tuple, model_json: dict, tf, settings: LinkageSettings, floor: float) -> pa.Table:
    """A partition's compared pairs (the refs ``compare_partition`` made) -> its scored pairs at or
    above ``floor``; ``tf`` the (ref of the) term frequencies, read once per process."""
    values, pairs = (Handoff.load(ref) for ref in compared)
    candidates = blocking.CandidatePairs(
        values, pairs.column("left").to_numpy(), pairs.column("right").to_numpy(),
        pairs.column("rule").to_numpy(), pa.array([r.name for r in settings.blocking_rules], pa.string()),
        pairs.column("rules_satisfied").combine_chunks(), pairs.column("windowed").combine_chunks(), {})
    gammas = linker.gamma_dict(pairs, settings.comparison_names)
    return linker.score_above(candidates, gammas, LinkageModel.from_json(model_json), load_shared(tf), settings, floor)
