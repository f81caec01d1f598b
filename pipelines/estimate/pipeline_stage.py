"""Pipeline stage: multiple systems estimation (MSE) from the reconciled persons.

``EstimatePopulation`` is the stage's PTransform. Each Arrow batch of persons is reduced to
capture-history cell counts (role x event year x sex x child/adult x exploitation type x the exact
set of agencies), the partial counts are merged by a CombineFn, and the small merged table is
fitted on one worker: one capture-history table per stratum (all persons of the role, then each
value of each stratification dimension), one :func:`pipelines.estimate.estimate` per table.

Outputs, under ``OUT/runs/<run_id>/mse/``:

* ``estimates.parquet``: one row per stratum (table ``mse_estimate`` of ``schemas/model.yaml``),
  with the model, the interval, or the reason the data cannot support an estimate;
* ``capture_histories/<role>-<stratum>.parquet``: the tables that were fitted (a 0/1 column per
  list, then ``count``), which ``concilia mse`` reads, so an analyst can refit them with another method.

Lists are agencies, with the papers' practice for small lists (docs/mse.md, "In the pipeline"):
an agency that saw nobody in a stratum is left out; agencies that saw fewer than
``min_list_persons`` persons are merged into one list, and if that merged list is still that small,
into the smallest other list (as UKdat_5, Ned_5 and NewOrl_5 merge their small lists).
"""

from __future__ import annotations

import logging
import posixpath
from collections import Counter
from dataclasses import dataclass
from typing import Iterable

import apache_beam as beam
import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipelines import codelists, model

from . import DEFAULT_INTERVAL, DEFAULT_METHOD, CaptureHistory, default_method_for, estimate

log = logging.getLogger(__name__)

DIMENSIONS = ("sex", "child_adult", "exploitation_type")
ROLES = ("victim",)
OVERALL = "all"
#: An agency that saw fewer persons than this in a stratum is merged with other small lists.
MIN_LIST_PERSONS = 10
#: Fewer persons than this on two or more lists and the stratum is refused (the estimate would
#: rest on a handful of overlaps: N ~ n1 * n2 / m explodes as m shrinks).
MIN_OVERLAP = 5
#: Strata not estimated: "not known" is a recording outcome, not a population (they count in "all").
UNKNOWN_VALUES = frozenset({"UNKNOWN"})
MERGE_SEPARATOR = "|"  # "MIMP|SUNAFIL": seen by MIMP or by SUNAFIL ("+" means "and" in overlap/)
ESTIMATES_FILE = "estimates.parquet"
HISTORIES_FOLDER = "capture_histories"
MANIFEST_KEYS = ("estimate", "lower", "upper", "method", "model", "observed", "lists", "interval_method")

# role, event_year, sex, child_adult, exploitation_type, agencies joined with "+"
CellKey = tuple


# ---------------------------------------------------------------- counting (runs on the workers)

def capture_cells(persons: pa.Table, roles: Iterable[str] = ROLES) -> Counter:
    """One batch of persons -> {(role, year, sex, child_adult, exploitation_type, agencies): persons}."""
    if not persons.num_rows:
        return Counter()
    persons = persons.filter(pc.is_in(persons.column("role"), value_set=pa.array(list(roles), pa.string())))
    if not persons.num_rows:
        return Counter()
    columns = {"role": persons.column("role"), "event_year": persons.column("event_year")}
    for dim in DIMENSIONS:  # offenders carry no exploitation type: a null column groups them all
        columns[dim] = persons.column(dim) if dim in persons.column_names else pa.nulls(persons.num_rows, pa.string())
    columns["agencies"] = pc.binary_join(persons.column("agencies"), "+")
    grouped = pa.table(columns).group_by(list(columns), use_threads=False).aggregate([([], "count_all")])
    keys = zip(*(grouped.column(c).to_pylist() for c in columns))
    return Counter(dict(zip(keys, grouped.column("count_all").to_pylist())))


class CaptureCellsFn(beam.CombineFn):
    """Partial cell counts per batch, summed: the whole run's capture histories in a few hundred cells."""

    def __init__(self, roles: Iterable[str] = ROLES):
        super().__init__()
        self._roles = tuple(roles)

    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, acc: Counter, persons: pa.Table) -> Counter:
        acc.update(capture_cells(persons, self._roles))
        return acc

    def merge_accumulators(self, accs) -> Counter:
        merged = Counter()
        for acc in accs:
            merged.update(acc)
        return merged

    def extract_output(self, acc: Counter) -> Counter:
        return acc


# ---------------------------------------------------------------- strata and lists (one worker)

@dataclass
class Stratum:
    role: str
    dimension: str | None
    value: str | None
    agency_sets: Counter  # frozenset of agencies -> persons
    role_agencies: tuple[str, ...]  # agencies that saw anyone of the role in the run
    years: tuple[int, ...]

    @property
    def name(self) -> str:
        return OVERALL if self.dimension is None else f"{self.dimension}={self.value}"

    @property
    def observed(self) -> int:
        return int(sum(self.agency_sets.values()))

    @property
    def period(self) -> str | None:
        if not self.years:
            return None
        lo, hi = min(self.years), max(self.years)
        return str(lo) if lo == hi else f"{lo}-{hi}"

    @property
    def file_name(self) -> str:
        safe = self.name.replace("=", "-").replace("/", "_")
        return f"{self.role}-{safe}.parquet"


def _agency_order() -> dict[str, int]:
    return {code: i for i, code in enumerate(codelists.load("agencies").codes_in_order)}


def strata(cells: Counter, roles: Iterable[str] = ROLES, dimensions: Iterable[str] = DIMENSIONS) -> list[Stratum]:
    """Every role overall, then each known value of each dimension (persons with the value null,
    UNKNOWN or in conflict between agencies count in the overall stratum only)."""
    out = []
    order = _agency_order()
    for role in roles:
        mine = {k: n for k, n in cells.items() if k[0] == role}
        role_agencies = tuple(sorted({a for k in mine for a in k[5].split("+") if a},
                                     key=lambda a: (order.get(a, len(order)), a)))

        def build(dimension, value, keep):
            sets, years = Counter(), set()
            for k, n in mine.items():
                if keep(k):
                    sets[frozenset(a for a in k[5].split("+") if a)] += n
                    if k[1] is not None:
                        years.add(int(k[1]))
            return Stratum(role, dimension, value, sets, role_agencies, tuple(sorted(years)))

        out.append(build(None, None, lambda k: True))
        for dim in dimensions:
            i = 2 + DIMENSIONS.index(dim)
            values = sorted({k[i] for k in mine if k[i] is not None and k[i] not in UNKNOWN_VALUES})
            for value in values:
                out.append(build(dim, value, lambda k, i=i, value=value: k[i] == value))
    return out


def persons_seen(stratum: Stratum) -> Counter:
    """Persons each agency saw in the stratum."""
    seen = Counter()
    for agencies, n in stratum.agency_sets.items():
        for a in agencies:
            seen[a] += n
    return seen


def persons_on(stratum: Stratum, group) -> int:
    """Persons seen by any agency of ``group``."""
    return int(sum(n for agencies, n in stratum.agency_sets.items() if agencies & set(group)))


def choose_lists(stratum: Stratum, min_list_persons: int = MIN_LIST_PERSONS,
                 merge_into=min) -> tuple[list[tuple[str, frozenset]], list[str]]:
    """The lists to fit, as (name, agencies), and the agencies left out because they saw nobody here.

    Small agencies are merged into one list; a merged list still under ``min_list_persons`` goes
    into the smallest of the other lists (``merge_into=max``: the largest, for the benchmark that
    compares the two). The merged name joins its agencies with ``|``."""
    seen = persons_seen(stratum)
    dropped = [a for a in stratum.role_agencies if seen[a] == 0]
    present = [a for a in stratum.role_agencies if seen[a] > 0]
    small = [a for a in present if seen[a] < min_list_persons]
    groups = [[a] for a in present if a not in small]
    if small:
        groups.append(small)
        if persons_on(stratum, small) < min_list_persons and len(groups) > 1:
            target = merge_into(groups[:-1], key=lambda g: (persons_on(stratum, g), g))
            target.extend(groups.pop())
    order = _agency_order()
    lists = []
    for group in groups:
        group = sorted(group, key=lambda a: (order.get(a, len(order)), a))
        lists.append((MERGE_SEPARATOR.join(group), frozenset(group)))
    return lists, dropped


def capture_history(stratum: Stratum, lists: list[tuple[str, frozenset]]) -> CaptureHistory:
    counts = np.zeros(2 ** len(lists))
    for agencies, n in stratum.agency_sets.items():
        code = sum(1 << j for j, (_, members) in enumerate(lists) if agencies & members)
        counts[code] += n
    return CaptureHistory(tuple(name for name, _ in lists), counts)


def history_table(ch: CaptureHistory) -> pa.Table:
    rows = ch.to_rows()
    return pa.table({**{name: pa.array([r[name] for r in rows], pa.int8()) for name in ch.lists},
                     "count": [r["count"] for r in rows]})


def fit_stratum(stratum: Stratum, method: str = DEFAULT_METHOD, *, seed: int = 0, alpha: float = 0.05,
                min_list_persons: int = MIN_LIST_PERSONS, min_overlap: int = MIN_OVERLAP,
                history_path: str | None = None) -> tuple[dict, CaptureHistory | None]:
    """One stratum -> (a row of the ``mse_estimate`` table, the capture history fitted or None)."""
    lists, dropped = choose_lists(stratum, min_list_persons)
    row = {"role": stratum.role, "stratum": stratum.name, "dimension": stratum.dimension, "value": stratum.value,
           "period": stratum.period, "lists": [name for name, _ in lists], "dropped_lists": dropped,
           "observed": stratum.observed, "method": method, "interval_method": None, "model": None,
           "confidence": 1 - alpha, "warnings": []}
    if stratum.observed == 0:
        return {**row, "refused_reason": "no persons in this stratum"}, None
    ch = capture_history(stratum, lists)
    row["seen_by_list"] = [f"{name}={n}" for name, n in ch.list_totals().items()]
    row["overlap"] = int(sum(ch.counts[c] for c in range(1, len(ch.counts)) if bin(c).count("1") >= 2))
    row["capture_history"] = history_path
    if ch.k < 2:
        agencies = ch.lists[0].split(MERGE_SEPARATOR) if ch.lists else []
        reason = (f"only one agency saw anyone here ({', '.join(agencies)}): at least two lists are needed"
                  if len(agencies) < 2 else
                  f"fewer than two lists: agencies that saw fewer than {min_list_persons} persons are merged "
                  f"({ch.lists[0]})")
        return {**row, "refused_reason": reason}, ch
    if row["overlap"] < min_overlap:
        return {**row, "refused_reason": f"too few overlaps: {row['overlap']} persons on more than one list "
                                         f"(at least {min_overlap} needed)"}, ch
    if method == DEFAULT_METHOD:
        method, note = default_method_for(ch.k)  # more lists than the exhaustive average allows
        if note:
            row["warnings"].append(note)
            row["method"] = method
    try:
        result = estimate(ch, method=method, seed=seed, alpha=alpha, interval=DEFAULT_INTERVAL)
    except ValueError as exc:  # e.g. min_bic on more lists than its exhaustive search allows
        return {**row, "refused_reason": f"method {method} cannot fit this table: {exc}"}, ch
    row |= {"estimate": result.estimate, "lower": result.lower, "upper": result.upper,
            "unobserved": result.unobserved, "interval_method": result.interval_method,
            "model": result.model if not result.refused else None, "refused_reason": result.reason,
            "aic": result.diagnostics.get("aic"), "deviance": result.diagnostics.get("deviance"),
            "warnings": row["warnings"] + [str(w) for w in result.diagnostics.get("warnings", [])]}
    return row, ch


def estimate_strata(cells: Counter, method: str = DEFAULT_METHOD, *, roles: Iterable[str] = ROLES,
                    dimensions: Iterable[str] = DIMENSIONS, seed: int = 0, alpha: float = 0.05,
                    min_list_persons: int = MIN_LIST_PERSONS,
                    min_overlap: int = MIN_OVERLAP) -> tuple[list[dict], dict[str, str]]:
    """Merged cell counts -> (rows of ``mse_estimate``, {file name: capture-history table})."""
    rows, histories = [], {}
    for stratum in strata(cells, roles, dimensions):
        rel = posixpath.join("mse", HISTORIES_FOLDER, stratum.file_name)
        row, ch = fit_stratum(stratum, method, seed=seed, alpha=alpha, min_list_persons=min_list_persons,
                              min_overlap=min_overlap, history_path=rel)
        if ch is not None:
            histories[stratum.file_name] = history_table(ch)
        else:
            row["capture_history"] = None
        rows.append(row)
        log.info("mse %s %s: %s", stratum.role, stratum.name,
                 f"refused ({row['refused_reason']})" if row.get("estimate") is None
                 else f"{row['estimate']:.0f} [{row['lower']}, {row['upper']}]")
    return rows, histories


def estimates_table(rows: list[dict], schema: pa.Schema | None = None) -> pa.Table:
    schema = schema or model.table("mse_estimate").schema()
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)


def write_estimates(rows: list[dict], histories: dict[str, pa.Table], folder: str, schema: pa.Schema) -> list[str]:
    """``folder/estimates.parquet`` and ``folder/capture_histories/*.parquet``; returns the paths."""
    paths = []
    path = posixpath.join(folder, ESTIMATES_FILE)
    with fsspec.open(path, "wb") as fh:
        pq.write_table(estimates_table(rows, schema), fh, compression="zstd")
    paths.append(path)
    for name, table in sorted(histories.items()):  # marked like the estimates (zone, key, demo, run id)
        described = model.describe(table.schema.with_metadata(schema.metadata or {}), "capture_history")
        path = posixpath.join(folder, HISTORIES_FOLDER, name)
        with fsspec.open(path, "wb", auto_mkdir=True) as fh:
            pq.write_table(table.cast(described), fh, compression="zstd")
        paths.append(path)
    return paths


class EstimatePopulation(beam.PTransform):
    """Persons (Arrow tables) -> MSE per stratum, written under ``folder``; outputs one element: the
    estimate rows (list of dicts), for the public release and tests."""

    def __init__(self, folder: str, schema: pa.Schema | None = None, method: str = DEFAULT_METHOD, *,
                 roles: Iterable[str] = ROLES, dimensions: Iterable[str] = DIMENSIONS, seed: int = 0,
                 min_list_persons: int = MIN_LIST_PERSONS, min_overlap: int = MIN_OVERLAP):
        super().__init__()
        self._folder = folder
        self._schema = schema or model.table("mse_estimate").schema()
        self._method = method
        self._options = {"roles": tuple(roles), "dimensions": tuple(dimensions), "seed": seed,
                         "min_list_persons": min_list_persons, "min_overlap": min_overlap}

    def expand(self, persons):
        folder, schema, method, options = self._folder, self._schema, self._method, self._options

        def fit_and_write(cells):
            rows, histories = estimate_strata(cells, method, **options)
            write_estimates(rows, histories, folder, schema)
            return rows

        return (
            persons
            | "CaptureCells" >> beam.CombineGlobally(CaptureCellsFn(options["roles"]))
            | "FitAndWrite" >> beam.Map(fit_and_write)
        )


# ---------------------------------------------------------------- manifest

def _plural(role: str) -> str:
    return role if role.endswith("s") else role + "s"


def manifest_entry(estimates: pa.Table) -> dict:
    """The overall estimate per role, as the manifest carries it: {"victims": {estimate, lower, upper,
    method, model, observed, lists, interval_method}} or {"victims": {"refused": reason}}."""
    out = {}
    if not estimates.num_rows:
        return out
    for row in estimates.filter(pc.equal(estimates.column("stratum"), OVERALL)).to_pylist():
        if row.get("estimate") is None:
            out[_plural(row["role"])] = {"refused": row.get("refused_reason") or "no estimate"}
        else:
            out[_plural(row["role"])] = {k: row.get(k) for k in MANIFEST_KEYS}
    return out


def read_manifest_entry(fs, run_path: str) -> dict:
    """``manifest_entry`` of a run folder's ``mse/estimates.parquet``; {} when the run has none."""
    path = f"{run_path.rstrip('/')}/mse/{ESTIMATES_FILE}"
    if not fs.exists(path):
        return {}
    with fs.open(path, "rb") as fh:
        return manifest_entry(pq.read_table(fh))

