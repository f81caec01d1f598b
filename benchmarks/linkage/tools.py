"""The linkers under test, each run on one group (a role, or all of FEBRL) of a prepared dataset.

Each is a generator: it loads its input and yields once (the timed part starts), then yields a
ToolRun (the timed part ends), and may yield it again after untimed bookkeeping. A ToolRun holds
the accepted edges (pairs at or above the threshold), the clusters, the candidate-pair count and
what the recall ceiling needs. The threshold policy is the same for both tools: a pair is a match at match_probability >= 0.9
(Concilia's default in schemas/linkage/settings.yaml), and clusters are built from those edges
(Concilia: its guarded clustering; Splink: connected components at the same threshold).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from datasets import ROOT

THRESHOLD = 0.9
EDGE_COLUMNS = ["left_uid", "right_uid", "match_probability"]
GUARDED_COLUMNS = ["left_uid", "right_uid", "reason"]


@dataclass
class ToolRun:
    edges: pa.Table                      # left_uid, right_uid, match_probability (>= THRESHOLD)
    clusters: pa.Table                   # record_uid, cluster_id
    candidate_pairs: int | None = None
    stats: dict = field(default_factory=dict)
    candidates: tuple | None = None      # Concilia: (record uids, left rows, right rows) of every candidate pair
    splink_rules: list[list[str]] | None = None  # Splink: its blocking rules as column lists
    splink_input: pa.Table | None = None
    splink_uid: str = "record_uid"


# ---------------------------------------------------------------------------------------------
# Concilia


def _settings(meta: dict):
    from pipelines.link.linker import load_settings

    return load_settings(ROOT / meta["settings"])


def concilia_memory(folder: Path, group: str, meta: dict, work: Path):
    """link_in_memory (blocking, comparisons, EM, scoring) + cluster() on the comparison table."""
    # the linker first: on main, cluster imported first meets a register-back import cycle
    # (documents <-> comparisons), mended on s5-11q
    from pipelines.link.linker import keep_above, link_in_memory
    from pipelines.link.cluster import FLAGGED_PREFIX, cluster
    from pipelines.link.comparisons import decode

    settings = _settings(meta)
    threshold = settings.thresholds.match_probability
    comp = pq.read_table(folder / f"{group}.comp.parquet")
    yield comp.num_rows  # input loaded: the timed part starts here
    linkage = link_in_memory(comp, settings)
    edges = keep_above(linkage.pairs, threshold)
    membership, guarded = cluster(edges, group, settings=settings)
    stats = dict(linkage.stats)
    flagged = pc.sum(pc.starts_with(guarded.column("reason"), FLAGGED_PREFIX)).as_py() or 0
    stats["refused_merges"] = guarded.num_rows - flagged
    stats["flagged_merges"] = flagged
    stats["model_prior"] = linkage.model.prior
    yield ToolRun(edges=_without_refused(edges, guarded).select(EDGE_COLUMNS),
                  clusters=pa.table({"record_uid": membership.column("record_uid"),
                                     "cluster_id": membership.column("person_id")}),
                  candidate_pairs=stats["candidate_pairs"], stats=stats,
                  candidates=(decode(linkage.candidates.values.column("record_uid")),
                              linkage.candidates.left_index, linkage.candidates.right_index))


def _without_refused(edges: pa.Table, guarded: pa.Table) -> pa.Table:
    """The accepted edges: those the clustering guard refused are review items, not links (a
    merge it let through and flagged stays)."""
    from pipelines.link.cluster import FLAGGED_PREFIX

    refused = guarded.filter(pc.invert(pc.starts_with(guarded.column("reason"), FLAGGED_PREFIX)))
    pair_key = lambda t: pc.binary_join_element_wise(t.column("left_uid"), t.column("right_uid"), "|")
    return edges.filter(pc.invert(pc.is_in(pair_key(edges), pair_key(refused))))


def _collect(path: Path):
    """A Beam sink for a benchmark: the list of tables -> one Parquet file."""
    def write(tables):
        tables = [t for t in tables if t.num_rows]
        if tables:
            pq.write_table(pa.concat_tables(tables, promote_options="default"), path)
    return write


def concilia_beam(folder: Path, group: str, meta: dict, work: Path, chunk_rows: int = 50_000):
    """LinkPersons (the pipeline's PTransform) on FnApiRunner over Arrow record tables read from
    Parquet chunks inside the pipeline, as the product reads its feeds (a ``beam.Create`` of the
    tables would pickle every record into the pipeline graph)."""
    import json

    import apache_beam as beam

    from pipelines.link.transform import LinkPersons

    settings = _settings(meta)
    threshold = settings.thresholds.match_probability
    chunks = work / "input"
    shutil.rmtree(chunks, ignore_errors=True)
    chunks.mkdir(parents=True)
    records = pq.read_table(folder / f"{group}.records.parquet")
    paths = []
    for i, batch in enumerate(records.to_batches(max_chunksize=chunk_rows)):
        paths.append(str(chunks / f"{i:05d}.parquet"))
        pq.write_table(pa.Table.from_batches([batch]), paths[-1])
    del records
    yield len(paths)
    linked_path, edges_path, stats_path = work / "linked.parquet", work / "edges.parquet", work / "stats.json"
    review_path = work / "refused.parquet"
    for p in (linked_path, edges_path, stats_path, review_path):
        p.unlink(missing_ok=True)
    with beam.Pipeline(runner="FnApiRunner") as p:
        out = (p | "Chunks" >> beam.Create(paths) | "Read" >> beam.Map(pq.read_table)
               | "Link" >> LinkPersons(group, settings=settings))
        _ = (out["linked"] | "Membership" >> beam.Map(lambda t: t.select(["record_uid", "person_id"]))
             | "AllLinked" >> beam.combiners.ToList() | "WriteLinked" >> beam.Map(_collect(linked_path)))
        _ = (out["links"]
             | "Edges" >> beam.Map(lambda t: t.filter(pc.greater_equal(t.column("match_probability"), threshold))
                                   .select(EDGE_COLUMNS))
             | "AllEdges" >> beam.combiners.ToList() | "WriteEdges" >> beam.Map(_collect(edges_path)))
        _ = out["stats"] | "WriteStats" >> beam.Map(lambda s: stats_path.write_text(json.dumps(s)))
        # the review queue's refused merges (and the flagged ones: _without_refused tells them apart)
        _ = (out["review"] | "Guarded" >> beam.Map(
                 lambda t: t.filter(pc.not_equal(t.column("reason"), "uncertain")).select(GUARDED_COLUMNS))
             | "AllGuarded" >> beam.combiners.ToList() | "WriteGuarded" >> beam.Map(_collect(review_path)))
    linked = pq.read_table(linked_path)
    edges = pq.read_table(edges_path) if edges_path.exists() else pa.table(
        {c: pa.array([], t) for c, t in zip(EDGE_COLUMNS, [pa.string(), pa.string(), pa.float64()])})
    stats = json.loads(stats_path.read_text())
    if review_path.exists():
        edges = _without_refused(edges, pq.read_table(review_path))
    yield ToolRun(edges=edges, clusters=pa.table({"record_uid": linked.column("record_uid"),
                                                  "cluster_id": linked.column("person_id")}),
                  candidate_pairs=stats.get("candidate_pairs"), stats=stats)


# ---------------------------------------------------------------------------------------------
# Splink 5 (DuckDB)


def splink_configuration(kind: str) -> dict:
    """Splink settings and training plan.

    FEBRL: the structure of Splink's own FEBRL3 (dedupe_only) and FEBRL4 (link_only) examples on
    the example's columns: NameComparison on given_name and surname with term frequencies,
    DateOfBirthComparison on the YYYYMMDD string, Damerau-Levenshtein on soc_sec_id, exact
    street_number/postcode with term frequencies (plus Jaro-Winkler on address_1 and suburb and
    exact state, as Concilia's FEBRL settings have), the example's blocking rules; the prior from
    deterministic rules, u by random sampling (max_pairs 1e7), m by EM per blocking rule.

    Peruvian data: the same prepared columns and blocking rules as Concilia's settings.yaml, each
    of Concilia's comparisons written with Splink's library (names with term frequencies,
    document, a birth comparison that falls back to the birth year implied by the age, sex,
    nationality, UBIGEO at three levels, event date distance, the cross-agency references with
    term frequencies: a reference a whole family shares weighs less). ``robust`` (the robustness
    suite): the same comparisons with Splink's own blocking rules (ROBUST_RULES).
    """
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import ColumnExpression

    if kind in ("febrl3", "febrl4"):
        comparisons = [
            cl.NameComparison("given_name").configure(term_frequency_adjustments=True),
            cl.NameComparison("surname").configure(term_frequency_adjustments=True),
            cl.DateOfBirthComparison("date_of_birth", input_is_string=True, datetime_format="%Y%m%d"),
            cl.DamerauLevenshteinAtThresholds("soc_sec_id", [1, 2]),
            cl.ExactMatch("street_number").configure(term_frequency_adjustments=True),
            cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
            cl.JaroWinklerAtThresholds("address_1", [0.9, 0.7]),
            cl.JaroWinklerAtThresholds("suburb", [0.9, 0.7]),
            cl.ExactMatch("state"),
        ]
        if kind == "febrl3":
            rules = [["soc_sec_id"], ["given_name"], ["surname"], ["date_of_birth"], ["postcode"]]
        else:
            rules = [["given_name", "surname"], ["date_of_birth"], ["soc_sec_id"], ["state", "address_1"],
                     ["street_number", "address_1"], ["postcode"]]
        deterministic = [["soc_sec_id"], ["given_name", "surname", "date_of_birth"]]
        em_rules = [["date_of_birth"], ["postcode"]]
        return {"uid": "rec_id", "link_type": "dedupe_only" if kind == "febrl3" else "link_only",
                "comparisons": comparisons, "rules": rules, "deterministic": deterministic, "recall": 0.9,
                "em_rules": em_rules, "u_max_pairs": 1e7}

    ubigeo = ColumnExpression("ubigeo")
    comparisons = [
        cl.NameComparison("paternal").configure(term_frequency_adjustments=True),
        cl.NameComparison("maternal").configure(term_frequency_adjustments=True),
        cl.NameComparison("given").configure(term_frequency_adjustments=True),
        cl.DamerauLevenshteinAtThresholds("document_core", [1]),
        cl.CustomComparison(
            output_column_name="birth",
            comparison_levels=[
                cll.NullLevel("birth_year"),
                cll.ExactMatchLevel("birth_date"),
                cll.DamerauLevenshteinLevel("birth_date_text", 1),
                cll.AbsoluteDateDifferenceLevel("birth_date", input_is_string=False, threshold=1, metric="year"),
                cll.AbsoluteDifferenceLevel("birth_year", 1),  # age-only records: the implied birth year
                cll.ElseLevel(),
            ],
        ),
        cl.ExactMatch("sex"),
        cl.ExactMatch("nationality"),
        cl.CustomComparison(
            output_column_name="place",
            comparison_levels=[cll.NullLevel("ubigeo"), cll.ExactMatchLevel("ubigeo"),
                               cll.ExactMatchLevel(ubigeo.substr(1, 4)), cll.ExactMatchLevel(ubigeo.substr(1, 2)),
                               cll.ElseLevel()],
        ),
        cl.AbsoluteDateDifferenceAtThresholds("event_date", input_is_string=False, metrics=["day", "day"],
                                              thresholds=[30, 365]),
        # a shared case reference says "same case", not "same person": with term frequencies, a
        # reference many records share (a family recorded in one case) weighs less
        cl.ExactMatch("police_report_ref").configure(term_frequency_adjustments=True),
        cl.ExactMatch("prosecutor_case_ref").configure(term_frequency_adjustments=True),
    ]
    if kind == "robust":
        rules = ROBUST_RULES
    else:
        from pipelines.link.linker import load_settings

        # the rules on keys (Splink has no rule over a record's token combinations)
        rules = [list(r.keys) for r in load_settings().blocking_rules if r.keys]
    return {"uid": "record_uid", "link_type": "dedupe_only", "comparisons": comparisons, "rules": rules,
            "u_max_pairs": 1e6 if kind == "robust" else 1e7,  # robust: the suite's 4,000-record sets, 8M pairs in all
            "deterministic": [["document_core"], ["paternal", "maternal", "given", "birth_date"]], "recall": 0.9,
            # when those see no pair (the generated 100k set's offenders: no birth dates, no shared
            # document), the prior would be 0 and Splink's predict fails on log2(0); a careful user
            # then estimates it from the full name
            "deterministic_fallback": [["paternal", "maternal", "given"]],
            "em_rules": PERU_EM_RULES[os.environ.get("CONCILIA_BENCH_SPLINK_EM", "birth")]}


def splink_configuration_for(dataset_kind: str) -> tuple[str, dict]:
    """The configuration Splink runs with on a dataset: FEBRL's examples' on FEBRL; on the Peruvian
    data the bench's --splink-config (peru unless asked); the u and EM sample sizes from
    --splink-u-pairs and --splink-em-pairs if given."""
    kind = os.environ.get("CONCILIA_BENCH_SPLINK_CONFIG", "peru") if dataset_kind == "peru" else dataset_kind
    config = splink_configuration(kind)
    if os.environ.get("CONCILIA_BENCH_SPLINK_U_PAIRS"):
        config["u_max_pairs"] = float(os.environ["CONCILIA_BENCH_SPLINK_U_PAIRS"])
    if os.environ.get("CONCILIA_BENCH_SPLINK_EM_PAIRS"):
        config["em_max_pairs"] = float(os.environ["CONCILIA_BENCH_SPLINK_EM_PAIRS"])
    return kind, config


def splink_configuration_used(dataset_kind: str) -> dict:
    """What a results entry records of Splink's configuration."""
    kind, config = splink_configuration_for(dataset_kind)
    return {"name": kind, "blocking_rules": config["rules"], "em_rules": config["em_rules"],
            "u_max_pairs": config["u_max_pairs"], "em_max_pairs": config.get("em_max_pairs")}


# Splink's own blocking rules for the robustness suite (benchmarks/robustness), as a careful user
# would write them for recall at a sane pair count, not Concilia's: the document; each surname
# with the first given name; both surnames; the birth date; the first given name with the birth
# year; all the name words sorted (names entered in each other's fields); each case reference (a
# police report or prosecutor case has a handful of people).
ROBUST_RULES = [["document_core"], ["paternal", "given1"], ["maternal", "given1"], ["paternal", "maternal"],
                ["birth_date"], ["given1", "birth_year"], ["name_set"], ["police_report_ref"], ["prosecutor_case_ref"]]


# Splink's EM sessions for the Peruvian data. "birth" (the default, like the FEBRL examples' EM on
# date_of_birth) trains everything but the birth comparison on pairs sharing a birth date, then
# birth on pairs sharing paternal surname and first given name (not the birth year as well: the
# birth comparison reads it, so Splink would leave birth untrained, at its default m). "names" (paternal +
# first given name, then document) does better on the sample feeds and much worse at 100k; both
# are reported in docs/linkage-benchmark.md rather than picked per dataset with the ground truth.
PERU_EM_RULES = {
    "birth": [["birth_date"], ["paternal", "given1"]],
    "names": [["paternal", "given1"], ["document_core"], ["birth_date"]],
}


COUNT_EXACT_UP_TO = 200_000


class _Steps:
    """CPU seconds of the process (DuckDB's threads included) per step of a Splink run."""

    def __init__(self):
        self.cpu, self._at = {}, time.process_time()

    def done(self, step: str) -> None:
        now = time.process_time()
        self.cpu[step], self._at = round(now - self._at, 2), now


def splink(folder: Path, group: str, meta: dict, work: Path):
    """Splink 5 on DuckDB: train (prior, u, EM), predict at the threshold, cluster at the threshold."""
    import duckdb
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on
    from splink.internals.exceptions import EMTrainingException

    _, config = splink_configuration_for(meta["splink"])
    table = pq.read_table(folder / f"{group}.splink.parquet")
    yield table.num_rows
    budget = os.environ.get("CONCILIA_BENCH_MEMORY_GB")
    # DuckDB spills under the run's work folder, within a limit: by default it spills into the
    # working directory without one, and a stopped 1M run left 39 GB there on a shared disk
    spill = work / "duckdb-spill"
    shutil.rmtree(spill, ignore_errors=True)  # a stopped run's
    duckdb_config = {"temp_directory": str(spill),
                     "max_temp_directory_size": os.environ.get("CONCILIA_BENCH_SPILL", "20GB")}
    if budget:  # the run's memory budget as DuckDB's own limit (it spills below it)
        duckdb_config["memory_limit"] = f"{float(budget) * 0.8:.1f}GB"
    db_api = DuckDBAPI(duckdb.connect(config=duckdb_config))
    if config["link_type"] == "link_only":
        source = table.column("source_dataset").combine_chunks()
        inputs = [db_api.register(table.filter(pc.equal(source, s)).drop_columns(["source_dataset"]),
                                  dataset_display_name=s) for s in pc.unique(source).to_pylist()]
    else:
        inputs = db_api.register(table.drop_columns([c for c in ["source_dataset"] if c in table.column_names]))
    settings = SettingsCreator(
        unique_id_column_name=config["uid"],
        link_type=config["link_type"],
        blocking_rules_to_generate_predictions=[block_on(*r) for r in config["rules"]],
        comparisons=config["comparisons"],
    )
    linker = Linker(inputs, settings, log_level=logging.WARNING)
    steps = _Steps()
    linker.training.estimate_probability_two_random_records_match(
        [block_on(*r) for r in config["deterministic"]], recall=config["recall"])
    prior_fallback = None
    if linker._settings_obj._probability_two_random_records_match <= 0 and config.get("deterministic_fallback"):
        prior_fallback = config["deterministic"] + config["deterministic_fallback"]
        linker.training.estimate_probability_two_random_records_match(
            [block_on(*r) for r in prior_fallback], recall=config["recall"])
    steps.done("prior")
    linker.training.estimate_u_using_random_sampling(max_pairs=config["u_max_pairs"], seed=2018)
    steps.done("u")
    failed = []
    for rule in config["em_rules"]:
        try:
            linker.training.estimate_parameters_using_expectation_maximisation(
                block_on(*rule), max_pairs=config.get("em_max_pairs"))
        except (ValueError, EMTrainingException) as exc:
            # Splink 5 raises when an m probability underflows (seen on tiny sets and with a
            # session of almost only matches), and when a session's rule finds no pair (the
            # generated offenders have no birth date); the other sessions still train: reported,
            # not hidden
            failed.append({"em_rule": rule, "error": str(exc)[:120]})
    steps.done("em")
    predictions = linker.inference.predict(threshold_match_probability=THRESHOLD)
    steps.done("predict")
    clustered = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD)
    steps.done("cluster")
    uid = config["uid"]
    edges = predictions.as_pyarrow_table()
    edges = pa.table({"left_uid": edges.column(f"{uid}_l").cast(pa.string()),
                      "right_uid": edges.column(f"{uid}_r").cast(pa.string()),
                      "match_probability": edges.column("match_probability").cast(pa.float64())})
    members = clustered.as_pyarrow_table()
    clusters = pa.table({"record_uid": members.column(uid).cast(pa.string()),
                         "cluster_id": members.column("cluster_id").cast(pa.string())})
    run = ToolRun(edges=edges, clusters=clusters, splink_rules=config["rules"], splink_input=table,
                  splink_uid=uid, stats={"cpu_s_by_step": steps.cpu} | ({"em_sessions_failed": failed} if failed else {})
                  | ({"prior_rules": prior_fallback} if prior_fallback else {}))
    yield run
    # after the timed part: Splink's own count of the pairs its blocking rules generate. It makes
    # the pairs to count them: exact up to COUNT_EXACT_UP_TO records, beyond that Splink's estimate
    # from a sample of records on each side (robust rules at 1M: about 800 M pairs)
    from splink.blocking_analysis import count_comparisons_from_blocking_rules

    proportion = 1.0 if table.num_rows <= COUNT_EXACT_UP_TO else 0.2
    counted = count_comparisons_from_blocking_rules(
        inputs, blocking_rules=[block_on(*r) for r in config["rules"]], link_type=config["link_type"],
        unique_id_column_name=uid, record_sample_proportion=proportion)
    if proportion < 1:
        run.stats["candidate_pairs_estimated_from_record_sample"] = proportion
    run.candidate_pairs = int(counted[-1].cumulative_comparison_count if hasattr(counted[-1], "cumulative_comparison_count")
                              else counted[-1]["cumulative_comparison_count"])
    yield run


TOOLS = {"concilia": concilia_memory, "concilia_beam": concilia_beam, "splink": splink}
