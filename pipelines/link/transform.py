"""``LinkPersons``: the probabilistic linker as a Beam PTransform.

records --ComparisonTable--> comparison rows --PartitionByBlock/GroupByKey--> blocks
blocks --ComparePairs--> candidate pairs with agreement levels (per partition: its records' comparison
    columns and the pairs as row indices and int8 levels) + agreement-pattern counts
pattern counts --MergePatterns, Train--> model (u from a hash sample of the records)
compared pairs --ScorePairs (model, term frequencies)--> links; accepted edges --Cluster (one
    worker)--> membership --> records

No stage holds all records on one worker; clustering holds the accepted edges only. With a work
folder, the records, comparison rows, blocks and compared pairs pass between stages as files
(``pipelines.core.handoff``), so that a runner holds their names only.
"""

from __future__ import annotations

import json
from typing import Tuple

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core.arrow_coder import ArrowTableCoder  # noqa: F401 (registers pa.Table's coder)
from pipelines.core.handoff import Handoff, load_shared
from pipelines.core.local_pool import PooledDoFn, PooledMapFn
from pipelines.link import blocking, linker, review
from pipelines.link.cluster import attach_persons, cluster_with_judgements
from pipelines.link.compare import (ComparedPartition, compare_partition, comparison_rows, partition_rows,
                                    score_partition)
from pipelines.link.settings import LinkageSettings
from pipelines.link import constraints

DEFAULT_PARTITIONS = 32
MERGE_AFTER_BYTES = 64 << 20  # what a combine lets wait before merging it (bounded memory, few merges)
TAG_STATS = "stats"
TAG_PATTERNS = "patterns"


class _PartitionFn(PooledDoFn):
    """Comparison rows -> (partition, its rows), each part handed off on its own
    (``compare.partition_rows``, in ``processes`` processes at once)."""

    def __init__(self, settings: LinkageSettings, partitions: int, handoff: Handoff, processes: int = 1):
        super().__init__(processes)
        self._settings = settings
        self._partitions = partitions
        self._handoff = handoff

    def process(self, comp, giant: dict, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        yield from self.run(partition_rows, (comp, self._settings, self._partitions, giant, self._handoff),
                            window, timestamp)

    def outputs(self, parts: list, element):
        yield from parts


class _ComparePairsFn(PooledDoFn):
    """One partition's blocks -> its candidate pairs, compared once (``compare.compare_partition``):
    the agreement-pattern counts that train the model (tagged), the blocking stats (tagged), and the
    partition's compared pairs (main): its records' comparison columns and, per pair, the two rows,
    the rule and the levels (int8), kept until the model is trained to score them (a million
    records give tens of millions of pairs; as row indices and levels they take some 20 bytes
    each). Partitions are compared in ``processes`` processes at once."""

    def __init__(self, settings: LinkageSettings, handoff: Handoff, processes: int = 1):
        super().__init__(processes)
        self._settings = settings
        self._handoff = handoff

    def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        k, parts = element
        yield from self.run(compare_partition, (k, list(parts), self._settings, self._handoff), window, timestamp)

    def outputs(self, compared: ComparedPartition, element):
        yield beam.pvalue.TaggedOutput(TAG_STATS, compared.stats)
        for patterns in compared.patterns:
            yield beam.pvalue.TaggedOutput(TAG_PATTERNS, patterns)
        yield compared.values, compared.pairs


class _ScorePairsFn(PooledDoFn):
    """A partition's compared pairs -> the scored pairs at or above the links floor
    (``compare.score_partition``, in ``processes`` processes at once)."""

    def __init__(self, settings: LinkageSettings, floor: float, processes: int = 1):
        super().__init__(processes)
        self._settings = settings
        self._floor = floor

    def process(self, element, model_json, tf, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        yield from self.run(score_partition, (element, model_json, tf, self._settings, self._floor), window, timestamp)

    def outputs(self, scored: pa.Table, element):
        yield scored


class _MergeTablesFn(beam.CombineFn):
    """Combine tables with a merge function (pattern counts, samples, block sizes) without holding
    them all. The accumulator is (merged part or None, inputs waiting); inputs wait until they are
    as large as the merged part (and at least ``MERGE_AFTER_BYTES``): merging at each input merged
    the whole part again every time (a million victims' block sizes in ten batches: 5.4 s of
    group-bys, against 1.1 s for one merge)."""

    def __init__(self, reduce):
        self._reduce = reduce

    def _merged(self, merged, waiting) -> tuple:
        """The accumulator with nothing waiting (a merged part is not merged again on its own)."""
        if not waiting:
            return merged, []
        return self._reduce(waiting if merged is None else [merged, *waiting]), []

    def create_accumulator(self):
        return None, []

    def add_input(self, acc, table):
        merged, waiting = acc
        waiting.append(table)
        size = merged.nbytes if merged is not None else 0
        return self._merged(merged, waiting) if sum(t.nbytes for t in waiting) >= max(size, MERGE_AFTER_BYTES) else acc

    def merge_accumulators(self, accs):
        accs = list(accs)
        merged = [m for m, _ in accs if m is not None]
        waiting = [t for _, w in accs for t in w]
        if len(merged) > 1:
            return self._reduce(merged + waiting), []
        return self._merged(merged[0] if merged else None, waiting)

    def compact(self, acc):
        # an accumulator leaves its bundle merged: waiting inputs passed on would be held until
        # the merge (a million records' sample: every record's comparison row, 1 GB)
        return self._merged(*acc)

    def extract_output(self, acc):
        return self._merged(*acc)[0]  # None when there was nothing to combine (an empty role)


def _sum_stats(parts: list[dict]) -> dict:
    total = {"giant_blocks": 0, "records_in_giant_blocks": 0, "pairs_by_rule": {}}
    for p in parts:
        for k in ("giant_blocks", "records_in_giant_blocks"):
            total[k] += p.get(k, 0)
        for rule, n in p.get("pairs_by_rule", {}).items():
            total["pairs_by_rule"][rule] = total["pairs_by_rule"].get(rule, 0) + n
    total["candidate_pairs"] = sum(total["pairs_by_rule"].values())
    return total


def _train(patterns, sample, n_records, settings) -> dict:
    if patterns is None or sample is None:  # no candidate pair at all: nothing to learn or link
        patterns = pa.table({"rules_satisfied": pa.array([], pa.int32()), "windowed": pa.array([], pa.bool_()),
                             **{name: pa.array([], pa.int8()) for name in settings.comparison_names},
                             "count": pa.array([], pa.int64())})
    u = linker.u_from_sample(sample, settings) if sample is not None else linker.uniform_u(settings)
    return linker.train_model(patterns, u, settings, n_records).to_json()


def _band(pairs: pa.Table, lower: float, upper: float) -> pa.Table:
    p = pairs.column("match_probability")
    return pairs.filter(pc.and_(pc.greater_equal(p, lower), pc.less(p, upper)))


def _cluster_all(edge_tables: list[pa.Table], role: str, key, settings: LinkageSettings, judged,
                 handoff: Handoff) -> tuple[pa.Table | str, pa.Table | str]:
    """(membership, refused edges) of all accepted edges, handed off: later stages read them as side
    inputs, and the in-process runner keeps a side input's encoded copy for each reader until the
    job ends (file names instead of tables, with a work folder)."""
    tables = [t for t in edge_tables if t.num_rows]
    membership, refused = cluster_with_judgements(pa.concat_tables(tables) if tables else pa.table({}), role, key,
                                                  settings, judged)
    return handoff.store(membership, "membership"), handoff.store(refused, "refused")


class LinkPersons(beam.PTransform):
    """Harmonised records of one role -> dict of PCollections:
    ``linked`` (records with person_id, match_rule), ``links`` (scored pairs above the floor),
    ``review`` (uncertain pairs and refused merges, records side by side: restricted),
    ``model`` (the model JSON), ``stats`` (candidate pairs per rule, bounded blocks),
    ``membership`` (record -> person of every clustered record, carried ones included; handed off
    with a work folder), ``judgements`` (each steward's judgement in force with this run's evidence)
    and ``rows`` (this run's records' comparison rows, handed off with a work folder).

    ``judged`` (left_uid, right_uid, decision) are the stewards' judgements, enforced as must- and
    cannot-links; ``carried`` (comparison rows of earlier periods' records, pipelines/steward/registry.py)
    are linked together with this run's records. ``work``: a folder the job may write (the run's
    work folder) through which the records, comparison rows, blocks and compared pairs pass from
    one stage to the next (``pipelines.core.handoff``); without it they stay in the PCollections.
    ``processes``: with a work folder, the comparison rows are made and the partitions made and
    compared in that many processes of this machine at once (``pipelines.core.local_pool``)."""

    def __init__(self, role: str, settings: LinkageSettings | None = None, pinned_model: dict | None = None,
                 partitions: int = DEFAULT_PARTITIONS, key=None, judged: pa.Table | None = None, carried=None,
                 work: str | None = None, processes: int = 1):
        super().__init__()
        self._processes = processes if work is not None else 1  # a worker is handed files, not tables
        self._handoff = Handoff(work)
        self._role = role
        self._settings = settings or linker.load_settings()
        self._pinned = pinned_model
        self._partitions = partitions
        self._key = key  # privacy.PseudonymKey: person ids are keyed pseudonyms
        self._judged = judged
        self._carried = carried

    def expand(self, records):
        settings, role, key, judged = self._settings, self._role, self._key, self._judged
        thresholds, training = settings.thresholds, settings.training
        handoff = self._handoff
        # the records are read again by AttachPersons and PickReviewRecords, after the clustering;
        # a stage that reads a handed-off table loads it itself: a load of its own would be fused
        # into the stage that wrote it, and its tables held until the later stage runs
        held = records | "HandOffRecords" >> beam.Map(handoff.sub("records").store, "records").with_output_types(
            handoff.type)
        rows = handoff.sub("comparison")
        comp = records | "ComparisonTable" >> beam.ParDo(
            PooledMapFn(comparison_rows, settings, rows, processes=self._processes)).with_output_types(handoff.type)
        own_rows = comp  # this run's records' comparison rows (the person registry keeps them)
        if self._carried is not None:
            carried = self._carried | "SlimCarried" >> beam.Map(
                lambda t: rows.store(linker.slim(t, settings), "carried")).with_output_types(handoff.type)
            comp = (comp, carried) | "WithCarried" >> beam.Flatten().with_output_types(handoff.type)
        loaded = comp | "LoadRows" >> beam.Map(Handoff.load).with_output_types(pa.Table)
        # which blocks are giant is decided over all records, before any record is partitioned
        giant = (loaded | "BlockSizes" >> beam.Map(blocking.block_sizes, settings.blocking_rules)
                 | "MergeBlockSizes" >> beam.CombineGlobally(_MergeTablesFn(blocking.merge_block_sizes))
                 | "GiantBlocks" >> beam.Map(lambda sizes: blocking.giant_keys(sizes, settings) if sizes is not None else {}))
        blocks = (
            comp
            | "PartitionByBlock" >> beam.ParDo(
                _PartitionFn(settings, self._partitions, handoff.sub("blocks"), self._processes),
                beam.pvalue.AsSingleton(giant)).with_output_types(Tuple[int, handoff.type])
            | "GroupByBlock" >> beam.GroupByKey()
        )
        compared = blocks | "ComparePairs" >> beam.ParDo(
            _ComparePairsFn(settings, handoff.sub("pairs"), self._processes)).with_output_types(
            Tuple[handoff.type, handoff.type]).with_outputs(TAG_STATS, TAG_PATTERNS, main="pairs")
        stats = compared[TAG_STATS] | "BlockingStats" >> beam.combiners.ToList() | beam.Map(_sum_stats)

        # every scoring worker reads the term frequencies: handed off, each reads the file once
        tf = (loaded | "TermFrequencies" >> beam.Map(linker.term_frequencies, settings)
              | "MergeFrequencies" >> beam.CombineGlobally(lambda parts: linker.merge_counts(list(parts)))
              | "HandOffFrequencies" >> beam.Map(
                  lambda counts: handoff.sub("frequencies").store(linker.frequency_table(counts), "frequencies")))
        if self._pinned is not None:
            model = records.pipeline | "PinnedModel" >> beam.Create([self._pinned])
        else:
            k, seed = training.u_sample_records, training.seed
            sample = loaded | "HashSample" >> beam.CombineGlobally(
                _MergeTablesFn(lambda ts: linker.bottom_k(pa.concat_tables(ts), k, seed)))
            n_records = loaded | "CountRecords" >> beam.Map(lambda t: t.num_rows) | beam.CombineGlobally(sum)
            patterns = compared.patterns | "MergePatterns" >> beam.CombineGlobally(
                _MergeTablesFn(linker.merge_pattern_counts))
            model = patterns | "Train" >> beam.Map(
                _train, sample=beam.pvalue.AsSingleton(sample), n_records=beam.pvalue.AsSingleton(n_records),
                settings=settings)
        floor = thresholds.floor
        scored = compared.pairs | "ScorePairs" >> beam.ParDo(
            _ScorePairsFn(settings, floor, self._processes), beam.pvalue.AsSingleton(model),
            beam.pvalue.AsSingleton(tf)).with_output_types(pa.Table)
        links = scored | "LinksAboveFloor" >> beam.Map(linker.keep_above, thresholds.links_floor)
        clustered = (
            scored
            | "AcceptedEdges" >> beam.Map(linker.keep_above, thresholds.match_probability)
            | "AllEdges" >> beam.combiners.ToList()
            | "Cluster" >> beam.Map(_cluster_all, role, key, settings, judged, handoff.sub("clusters"))
        )
        membership = clustered | "Membership" >> beam.Map(lambda r: r[0])
        linked = held | "AttachPersons" >> beam.Map(
            lambda ref, membership: attach_persons(Handoff.load(ref), load_shared(membership), role, key),
            membership=beam.pvalue.AsSingleton(membership)).with_output_types(pa.Table)

        to_review = (
            scored
            | "Uncertain" >> beam.Map(_band, thresholds.review_lower, thresholds.match_probability)
            | "AllUncertain" >> beam.combiners.ToList()
            | "ReviewPairs" >> beam.Map(lambda tables, clustered: constraints.without_judged(
                review.review_pairs(tables, Handoff.load(clustered[1])), judged),
                clustered=beam.pvalue.AsSingleton(clustered))
        )
        uids = to_review | "ReviewUids" >> beam.Map(review.uids_of)
        picked = (held | "PickReviewRecords" >> beam.Map(lambda ref, uids: review.pick(Handoff.load(ref), uids),
                                                         uids=beam.pvalue.AsSingleton(uids))
                  | "AllPicked" >> beam.combiners.ToList())
        queue = to_review | "SideBySide" >> beam.Map(review.side_by_side, picked=beam.pvalue.AsSingleton(picked))
        judgements = (
            scored
            | "JudgedPairs" >> beam.Map(constraints.judged_only, judged)
            | "AllJudgedPairs" >> beam.combiners.ToList()
            | "JudgementEvidence" >> beam.Map(
                lambda tables, clustered: constraints.judgement_evidence(
                    tables, Handoff.load(clustered[1]), judged, thresholds.match_probability, thresholds.review_lower),
                clustered=beam.pvalue.AsSingleton(clustered))
        )
        return {"linked": linked, "links": links, "review": queue, "model": model, "stats": stats,
                "membership": membership, "judgements": judgements, "rows": own_rows}


def model_as_json(model: dict) -> str:
    return json.dumps(model, indent=2, sort_keys=False, ensure_ascii=False, default=str)


def links_schema(settings: LinkageSettings | None = None) -> pa.Schema:
    """Scored pairs as published: ids, rule, weight, probability, each comparison's level and
    contribution. The pair tables' guard and term-frequency columns hold identifying values and
    are left out here (WriteTables selects by this schema)."""
    settings = settings or linker.load_settings()
    names = settings.comparison_names
    return pa.schema(
        [("left_uid", pa.string()), ("right_uid", pa.string()), ("rule", pa.string()),
         ("match_weight", pa.float64()), ("match_probability", pa.float64())]
        + [(f"gamma_{n}", pa.int8()) for n in names] + [(f"w_{n}", pa.float64()) for n in names]
    )


def review_schema(role: str, settings: LinkageSettings | None = None) -> pa.Schema:
    """The review queue: why, probability, contributions, and both records' review fields."""
    from pipelines import model

    table = model.table(role).schema()
    sides = [pa.field(f"{side}_{f}", table.field(f).type) for side in ("left", "right") for f in review.SIDE_FIELDS]
    base = links_schema(settings)
    return pa.schema(list(base) + [pa.field("reason", pa.string())] + sides)
