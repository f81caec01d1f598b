"""The run's aggregates, computed inside the Beam job and gathered into one ``RunSummary``.

Everything that happens after the job (accounting check, manifest, cross-feed check verdicts, the
steward's report) reads this summary and the files' hashes, never the tables again: its memory does
not grow with the records. Each aggregate is a combine over Arrow tables (``Counts``: nested counts
summed across batches; ``TopRows``: the first rows by a sort order), so the job computes it where
the records already are. The summary holds counts, codes and pseudonymous ids, never a source value
of a restricted field; it is written to the run's work folder and removed with it.
"""

from __future__ import annotations

import heapq
import json
import posixpath
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Callable, Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

NULL = "__null__"  # a null value as a count key (JSON object keys are strings)
SUMMARY_FILE = "run_summary.json"
OUTPUT_FOLDER = "summary"  # where the finaliser keeps it in the run folder
TABLE_LIMIT = 50  # rows kept of a bounded table (the report shows as many)
BANDS = 10  # probability bands of the review queue


def key_of(value) -> str:
    return NULL if value is None else str(value)


def value_of(key: str):
    """The value a count key stands for (None for ``NULL``)."""
    return None if key == NULL else key


def value_counts(column: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """Occurrences of each value, nulls under ``NULL``."""
    if not len(column):
        return {}
    return {key_of(r["values"]): r["counts"] for r in pc.value_counts(column).to_pylist()}


def grouped_counts(table: pa.Table, keys: list[str]) -> dict:
    """Rows per combination of ``keys`` as nested dicts: {k1: {k2: n}}."""
    out: dict = {}
    if not table.num_rows:
        return out
    counted = table.select(keys).group_by(keys, use_threads=False).aggregate([([], "count_all")])
    for row in counted.to_pylist():
        node = out
        for k in keys[:-1]:
            node = node.setdefault(key_of(row[k]), {})
        node[key_of(row[keys[-1]])] = node.get(key_of(row[keys[-1]]), 0) + row["count_all"]
    return out


def add_counts(into: dict, other: dict) -> dict:
    """Sum nested count dicts into ``into`` (numbers add, dicts merge)."""
    for k, v in other.items():
        if isinstance(v, dict):
            add_counts(into.setdefault(k, {}), v)
        else:
            into[k] = into.get(k, 0) + v
    return into


class Counts(beam.CombineFn):
    """Nested counts over Arrow tables: ``partial(table)`` per batch, summed (without ``partial``
    the inputs are such counts already)."""

    def __init__(self, partial: Callable[[pa.Table], dict] | None = None):
        self._partial = partial

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, acc: dict, item) -> dict:
        if self._partial is None:
            return add_counts(acc, item)
        return add_counts(acc, self._partial(item)) if item.num_rows else acc

    def merge_accumulators(self, accs: Iterable[dict]) -> dict:
        merged: dict = {}
        for acc in accs:
            add_counts(merged, acc)
        return merged

    def extract_output(self, acc: dict) -> dict:
        return acc


def _sort_key(row: dict, order: list[tuple[str, str]]) -> tuple:
    """Arrow's sort order in Python: nulls last in either direction; descending only on numbers."""
    key = []
    for column, direction in order:
        v = row.get(column)
        key.append((v is None, 0 if v is None else (-v if direction == "descending" else v)))
    return tuple(key)


class TopRows(beam.CombineFn):
    """The first ``n`` rows (as dicts) of all batches in ``order``, after ``prepare`` (which picks
    the columns: only what may be shown leaves the batch)."""

    def __init__(self, n: int, order: list[tuple[str, str]], prepare: Callable[[pa.Table], pa.Table] | None = None):
        self._n, self._order, self._prepare = n, order, prepare

    def create_accumulator(self) -> list[dict]:
        return []

    def add_input(self, acc: list[dict], table: pa.Table) -> list[dict]:
        if self._prepare is not None:
            table = self._prepare(table)
        if not table.num_rows:
            return acc
        first = table.sort_by(self._order).slice(0, self._n).to_pylist()
        return self.merge_accumulators([acc, first])

    def merge_accumulators(self, accs: Iterable[list[dict]]) -> list[dict]:
        order = self._order
        return heapq.nsmallest(self._n, (r for acc in accs for r in acc), key=lambda r: _sort_key(r, order))

    def extract_output(self, acc: list[dict]) -> list[dict]:
        return acc


def combine(fn: beam.CombineFn, table: pa.Table | None):
    """``fn`` over one whole table, outside Beam (None for no table): what the job's combine gives."""
    return None if table is None else fn.extract_output(fn.add_input(fn.create_accumulator(), table))


# --- the partial aggregates of each table ------------------------------------------------------------

VICTIM_DIMENSIONS = ("child_adult", "sex", "nationality", "exploitation_type")


def record_counts(role: str) -> Callable[[pa.Table], dict]:
    """Harmonised records of one role: per feed, per agency (with the victims' dimensions and the
    offenders' stages), and per feed and event year (what the next run's volume check compares)."""
    dimensions = VICTIM_DIMENSIONS if role == "victim" else ("stage",)

    def partial(table: pa.Table) -> dict:
        agencies = {a: {"records": n} for a, n in value_counts(table.column("agency")).items()}
        for dim in dimensions:
            for agency, counts in grouped_counts(table, ["agency", dim]).items():
                agencies[agency][dim] = counts
        if role == "offender":
            detained = grouped_counts(table.filter(pc.fill_null(table.column("detained"), False)), ["agency"])
            for agency, n in detained.items():
                agencies[agency]["detained"] = n
        return {"feeds": value_counts(table.column("feed_id")), "agencies": agencies,
                "volumes": grouped_counts(table, ["feed_id", "event_year"])}

    return partial


def person_counts(table: pa.Table) -> dict:
    """Reconciled persons per role: how many, by exact agency combination, by each agency, by the
    victims' dimensions, with a conflict, and seen in an earlier period."""
    out: dict = {}
    for role, n in value_counts(table.column("role")).items():
        sub = table.filter(pc.equal(table.column("role"), role))
        entry = out.setdefault(role, {"persons": n})
        entry["combinations"] = value_counts(pc.binary_join(sub.column("agencies"), "+"))
        entry["seen_by"] = value_counts(pc.list_flatten(sub.column("agencies")))
        for dim in VICTIM_DIMENSIONS:
            entry[dim] = value_counts(sub.column(dim))
        entry["has_conflict"] = int(pc.sum(pc.cast(pc.fill_null(sub.column("has_conflict"), False), pa.int64())).as_py() or 0)
        entry["seen_in_earlier_period"] = int(pc.sum(pc.cast(pc.fill_null(sub.column("seen_in_earlier_period"), False),
                                                             pa.int64())).as_py() or 0)
    return out


def quarantine_counts(table: pa.Table) -> dict:
    """Quarantined rows: row-level rows per feed and reason (the accounting), every row per reason
    and feed, and row-level rows per reason and field."""
    row_level = table.filter(pc.is_valid(table.column("source_row")))
    return {"rows": value_counts(row_level.column("feed_id")),
            "reasons": grouped_counts(row_level, ["feed_id", "reason_code"]),
            "by_reason": grouped_counts(table, ["reason_code", "feed_id"]),
            "fields": grouped_counts(row_level, ["reason_code", "field"]),
            "total": table.num_rows}


def file_level_quarantine(table: pa.Table) -> pa.Table:
    """The rows that quarantine a whole file (one per file: what the report lists)."""
    rows = table.filter(pc.invert(pc.is_valid(table.column("source_row"))))
    return rows.select(["feed_id", "source_file", "reason_code", "detail"])


def conflict_kind(table: pa.Table, unknown: str) -> pa.Array:
    """gap (a known value against ``unknown`` only) or contradiction (different known values)."""
    flat = pc.list_flatten(table.column("values"))
    parents = pc.list_parent_indices(table.column("values"))
    value = pc.if_else(pc.match_substring(flat, "="), pc.replace_substring_regex(flat, r"^[^=]*=", ""), "")
    known = pa.table({"row": parents, "value": value}).filter(pc.not_equal(value, unknown))
    distinct = known.group_by(["row"], use_threads=False).aggregate([("value", "count_distinct")])
    many = distinct.filter(pc.greater(distinct.column("value_count_distinct"), 1)).column("row")
    rows = pa.array(range(table.num_rows), pa.int64())
    contradiction = pc.is_in(rows, pc.cast(many, pa.int64()))
    return pc.if_else(contradiction, "contradiction", "gap")


def conflict_counts(unknown: str) -> Callable[[pa.Table], dict]:
    """Conflicts of one partition (a person's conflicts are all in one): rows, distinct persons,
    rows per attribute, and per kind (gap or contradiction) rows and distinct persons."""

    def partial(table: pa.Table) -> dict:
        kinds = conflict_kind(table, unknown)
        out = {"total": table.num_rows, "persons": len(pc.unique(table.column("person_id"))),
               "by_attribute": value_counts(table.column("attribute")), "kinds": {}}
        for kind in ("gap", "contradiction"):
            sub = table.filter(pc.equal(kinds, kind))
            out["kinds"][kind] = {"total": sub.num_rows, "persons": len(pc.unique(sub.column("person_id")))}
        return out

    return partial


CONFLICT_KINDS = ("gap", "contradiction")
CONFLICT_ORDER = [("attribute", "ascending"), ("person_id", "ascending")]


def with_conflict_kind(unknown: str, only: str | None = None) -> Callable[[pa.Table], pa.Table]:
    """The conflicts' columns with their kind (only those of kind ``only`` when given)."""

    def prepare(table: pa.Table) -> pa.Table:
        kinds = conflict_kind(table, unknown)
        out = table.select(["person_id", "role", "attribute", "values", "n_records"]).append_column("kind", kinds)
        return out.filter(pc.equal(kinds, only)) if only else out

    return prepare


REVIEW_ORDER = [("match_probability", "descending"), ("left_uid", "ascending"), ("right_uid", "ascending")]


def review_rows(role: str, review_column_allowed: Callable[[str], bool]) -> Callable[[pa.Table], pa.Table]:
    """The review queue's columns the report may show (``review_column_allowed``: ids, probability,
    the comparisons' numbers, reason; never a side's fields: the queue is restricted), with the role."""

    def prepare(table: pa.Table) -> pa.Table:
        keep = [c for c in table.column_names if review_column_allowed(c) and (
            c in ("left_uid", "right_uid", "reason", "rule") or pa.types.is_integer(table.schema.field(c).type)
            or pa.types.is_floating(table.schema.field(c).type))]
        out = table.select(keep)
        return out.append_column("role", pa.array([role] * out.num_rows, pa.string()))

    return prepare


JUDGEMENT_ORDER = [("left_uid", "ascending"), ("right_uid", "ascending")]


def contradicted(role: str) -> Callable[[pa.Table], pa.Table]:
    """Judgements the run's evidence argues against, ids and codes only."""

    def prepare(table: pa.Table) -> pa.Table:
        out = table.filter(pc.fill_null(table.column("contradicted"), False)).select(
            ["left_uid", "right_uid", "decision", "match_probability", "evidence"])
        return out.append_column("role", pa.array([role] * out.num_rows, pa.string()))

    return prepare


FILES_LIMIT = 10_000  # whole files quarantined (one row each) the summary lists
FILE_ORDER = [("feed_id", "ascending"), ("source_file", "ascending")]


def review_counts(table: pa.Table) -> dict:
    """The review queue: pairs, per reason, per band of match probability."""
    prob = table.column("match_probability")
    band = pc.min_element_wise(pc.cast(pc.floor(pc.multiply(prob, float(BANDS))), pa.int64()), BANDS - 1)
    return {"total": table.num_rows, "by_reason": value_counts(table.column("reason")),
            "bands": {k: n for k, n in value_counts(band).items() if k != NULL}}


def judgement_counts(table: pa.Table) -> dict:
    return {"total": table.num_rows, "by_decision": value_counts(table.column("decision")),
            "contradicted": int(pc.sum(pc.cast(pc.fill_null(table.column("contradicted"), False), pa.int64())).as_py() or 0)}


def lineage_counts(table: pa.Table) -> dict:
    return {"changes": value_counts(table.column("change"))}


def funnel_counts(table: pa.Table) -> dict:
    """Distinct offenders per stage and per stage -> later stage, all years together."""
    summed = table.group_by(["from_stage", "to_stage"], use_threads=False).aggregate([("persons", "sum")])
    return {f"{r['from_stage']}->{key_of(r['to_stage'])}": r["persons_sum"] for r in summed.to_pylist()}


def overlap_counts(table: pa.Table) -> dict:
    """Unique persons per role and exact agency combination, and per role and event year."""
    out: dict = {}
    for r in table.select(["role", "event_year", "agencies", "persons"]).to_pylist():
        entry = out.setdefault(r["role"], {"combinations": {}, "years": {}})
        entry["combinations"][r["agencies"]] = entry["combinations"].get(r["agencies"], 0) + r["persons"]
        year = key_of(r["event_year"])
        entry["years"][year] = entry["years"].get(year, 0) + r["persons"]
    return out


NAME_COLUMNS = ("given_names", "paternal_surname", "maternal_surname")


def words(values: pa.Array) -> set[str]:
    """The folded words (3 letters or more) of some values: how names are compared."""
    from pipelines.core.vector import fold

    out: set[str] = set()
    for value in pc.unique(fold(values)).to_pylist():
        if value:
            out.update(w for w in value.split() if len(w) >= 3)
    return out


def name_words_in(table: pa.Table, candidates: list[str]) -> list[str]:
    """Which ``candidates`` are words of a name in ``table`` (restricted columns, read in memory only)."""
    if not candidates or not table.num_rows:
        return []
    wanted = set(candidates)
    found: set[str] = set()
    for column in NAME_COLUMNS:
        if column in table.column_names:
            found |= words(table.column(column).combine_chunks()) & wanted
    return sorted(found)


class NameWords(beam.PTransform):
    """Words of the unmapped code values (small) that are words of some name in the records: the
    finaliser withholds such a value from the manifest without reading the names itself."""

    def __init__(self, records: list[beam.PCollection]):
        super().__init__()
        self._records = records

    def expand(self, unmapped):
        candidates = (unmapped | "ValueWords" >> beam.Map(lambda u: words(pa.array([u.get("value")], pa.string())))
                      | "AllValueWords" >> beam.CombineGlobally(lambda sets: sorted(set().union(*sets))))
        found = [records | f"NameWords{i}" >> beam.FlatMap(name_words_in, beam.pvalue.AsSingleton(candidates))
                 for i, records in enumerate(self._records)]
        return tuple(found) | "AllNameWords" >> beam.Flatten()


class Union(beam.CombineFn):
    """A set of strings, sorted."""

    def create_accumulator(self) -> set:
        return set()

    def add_input(self, acc: set, word: str) -> set:
        acc.add(word)
        return acc

    def merge_accumulators(self, accs):
        return set().union(*accs)

    def extract_output(self, acc: set) -> list[str]:
        return sorted(acc)


# --- the summary ---------------------------------------------------------------------------------------

@dataclass
class RunSummary:
    """One run's aggregates (see the module docstring). Each field is plain JSON data: counts are
    nested dicts whose keys are values (``NULL`` for null), lists are rows shown by the report."""

    # None (or a role missing) means "not in this run": a report built from an incomplete run folder
    # says so; the job always fills every field.
    records: dict[str, dict] = field(default_factory=dict)  # role -> record_counts
    persons: dict[str, dict] | None = None  # role -> person_counts entry
    quarantine: dict[str, Any] | None = None  # quarantine_counts
    quarantined_files: list[dict] = field(default_factory=list)  # file_level_quarantine rows
    conflicts: dict[str, Any] | None = None  # conflict_counts
    conflict_rows: list[dict] = field(default_factory=list)  # first rows by attribute, person
    conflict_rows_by_kind: dict[str, list[dict]] = field(default_factory=dict)  # kind -> first rows
    review: dict[str, dict] = field(default_factory=dict)  # role -> review_counts
    review_rows: dict[str, list[dict]] = field(default_factory=dict)  # role -> most probable pairs (shown columns)
    judgements: dict[str, dict] = field(default_factory=dict)  # role -> judgement_counts
    contradicted_judgements: dict[str, list[dict]] = field(default_factory=dict)  # role -> first rows
    lineage: dict[str, Any] | None = None  # lineage_counts
    funnel: dict[str, int] = field(default_factory=dict)  # "FROM->TO" (TO NULL: the stage itself) -> persons
    overlap: dict[str, dict] | None = None  # role -> {combinations, years}
    checks: dict[str, dict] = field(default_factory=dict)  # check name -> its partial counts (pipelines.checks)
    name_words: list[str] = field(default_factory=list)  # words of unmapped code values that are also name words

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, text: str) -> "RunSummary":
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"run summary: unknown fields {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def read(cls, fs, folder: str) -> "RunSummary":
        """The summary in ``folder`` (the run's work folder, or its ``summary/``)."""
        with fs.open(posixpath.join(folder, SUMMARY_FILE), "r", encoding="utf-8") as fh:
            return cls.from_json(fh.read())

    def write(self, fs, run_path: str) -> str:
        """Keep the summary with the run (``summary/``), without ``name_words``: words of names
        belong to the restricted zone only."""
        path = posixpath.join(run_path, OUTPUT_FOLDER, SUMMARY_FILE)
        fs.makedirs(posixpath.dirname(path), exist_ok=True)
        with fs.open(path, "w", encoding="utf-8") as fh:
            fh.write(replace(self, name_words=[]).to_json())
        return path


class _Gather(beam.CombineFn):
    """(field, sub-key or None, value) parts -> one RunSummary's JSON."""

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, acc: dict, part: tuple) -> dict:
        name, sub, value = part
        if sub is None:
            acc[name] = value
        else:
            acc.setdefault(name, {})[sub] = value
        return acc

    def merge_accumulators(self, accs: Iterable[dict]) -> dict:
        merged: dict = {}
        for acc in accs:
            for name, value in acc.items():
                if isinstance(value, dict) and isinstance(merged.get(name), dict):
                    merged[name].update(value)
                else:
                    merged[name] = value
        return merged

    def extract_output(self, acc: dict) -> str:
        return RunSummary(**acc).to_json()


class Summarise:
    """Collects the job's aggregates (``add``) and writes them as one summary (``write``)."""

    def __init__(self):
        self._parts: list[beam.PCollection] = []

    def add(self, pcoll: beam.PCollection, label: str, fn: beam.CombineFn, name: str, sub: str | None = None) -> None:
        """Combine ``pcoll`` with ``fn`` into the summary's ``name`` (or ``name[sub]``)."""
        self._parts.append(pcoll | f"Summary{label}" >> beam.CombineGlobally(fn)
                           | f"Summary{label}Part" >> beam.Map(lambda v, n=name, s=sub: (n, s, v)))

    def write(self, work_path: str) -> None:
        _ = (tuple(self._parts) | "SummaryParts" >> beam.Flatten()
             | "GatherSummary" >> beam.CombineGlobally(_Gather())
             | "WriteSummary" >> beam.io.WriteToText(posixpath.join(work_path, SUMMARY_FILE.removesuffix(".json")),
                                                     file_name_suffix=".json", shard_name_template=""))
