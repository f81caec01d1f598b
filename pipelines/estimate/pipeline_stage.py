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

from . import DEFAULT_INTERVAL, DEFAULT_METHOD, CaptureHistory, LatentClassSettings, default_method_for, estimate
from .linkage_band import involved_persons, relinked_cells
from .stratified import SUM_PREFIX, merge_sparse, sum_estimates

log = logging.getLogger(__name__)

#: Dimensions a person's cell is keyed by; the settings choose which are estimated (schemas/mse/settings.yaml).
DIMENSIONS = ("sex", "child_adult", "exploitation_type", "department")
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
MANIFEST_KEYS = ("estimate", "lower", "upper", "method", "model", "observed", "lists", "interval_method",
                 "linkage_lower", "linkage_upper", "uncertain_pairs", "comparison_method", "comparison_estimate",
                 "comparison_lower", "comparison_upper", "methods_disagree")

# role, event_year, one value per DIMENSIONS, agencies joined with "+"
CellKey = tuple


@dataclass(frozen=True, kw_only=True)
class MseSettings:
    """A run's MSE settings (schemas/mse/settings.yaml says what each does)."""

    method: str
    dimensions: tuple[str, ...]
    stratify_by: str | None = None
    min_stratum_persons: int = 50
    compare_method: str | None = None
    linkage_band: bool = True
    latent_class_chains: LatentClassSettings | None = None  # None: LatentClassSettings' defaults


def load_settings(path: str | None = None) -> MseSettings:
    """The run's MSE settings (schemas/mse/settings.yaml unless ``path``); a ``SettingsError`` (a
    ValueError) names a key the file gets wrong."""
    import yaml

    from pipelines.core.settings_file import SettingsError, parse
    from pipelines.resources import schemas_dir

    with open(path or schemas_dir() / "mse" / "settings.yaml", encoding="utf-8") as fh:
        settings = parse(MseSettings, yaml.safe_load(fh))
    unknown = [d for d in [*settings.dimensions, settings.stratify_by] if d and d not in DIMENSIONS]
    if unknown:
        raise SettingsError(f"MSE settings: unknown dimensions {unknown}; known: {', '.join(DIMENSIONS)}")
    return settings


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
    columns["agencies"] = pc.binary_join(persons.column("agencies"), "+")  # last: k[-1]
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


def _role_cells(cells: Counter, role: str) -> tuple[dict, tuple[str, ...]]:
    order = _agency_order()
    mine = {k: n for k, n in cells.items() if k[0] == role}
    agencies = tuple(sorted({a for k in mine for a in k[-1].split("+") if a}, key=lambda a: (order.get(a, len(order)), a)))
    return mine, agencies


def _stratum(role, dimension, value, mine, role_agencies, keep) -> Stratum:
    sets, years = Counter(), set()
    for k, n in mine.items():
        if keep(k):
            sets[frozenset(a for a in k[-1].split("+") if a)] += n
            if k[1] is not None:
                years.add(int(k[1]))
    return Stratum(role, dimension, value, sets, role_agencies, tuple(sorted(years)))


def _known(value) -> bool:
    return value is not None and value not in UNKNOWN_VALUES


def strata(cells: Counter, roles: Iterable[str] = ROLES, dimensions: Iterable[str] = DIMENSIONS[:3]) -> list[Stratum]:
    """Every role overall, then each known value of each dimension (persons with the value null,
    UNKNOWN or in conflict between agencies count in the overall stratum only)."""
    out = []
    for role in roles:
        mine, role_agencies = _role_cells(cells, role)
        out.append(_stratum(role, None, None, mine, role_agencies, lambda k: True))
        for dim in dimensions:
            i = 2 + DIMENSIONS.index(dim)
            for value in sorted({k[i] for k in mine if _known(k[i])}):
                out.append(_stratum(role, dim, value, mine, role_agencies, lambda k, i=i, value=value: k[i] == value))
    return out


def partition(cells: Counter, role: str, dimension: str) -> list[Stratum]:
    """Every person of the role in exactly one stratum of ``dimension``: one per known value, and one
    for the persons whose value is unknown or in conflict (so the strata sum to everyone)."""
    mine, role_agencies = _role_cells(cells, role)
    i = 2 + DIMENSIONS.index(dimension)
    out = [_stratum(role, dimension, value, mine, role_agencies, lambda k, value=value: k[i] == value)
           for value in sorted({k[i] for k in mine if _known(k[i])})]
    if any(not _known(k[i]) for k in mine):
        out.append(_stratum(role, dimension, "UNKNOWN", mine, role_agencies, lambda k: not _known(k[i])))
    return out


def merge_strata(group: list[Stratum]) -> Stratum:
    """Strata of one dimension pooled into one ("A|B")."""
    if len(group) == 1:
        return group[0]
    sets = Counter()
    for st in group:
        sets.update(st.agency_sets)
    first = group[0]
    return Stratum(first.role, first.dimension, MERGE_SEPARATOR.join(st.value for st in group), sets,
                   first.role_agencies, tuple(sorted({y for st in group for y in st.years})))


def person_key(row: dict) -> CellKey:
    """A person's cell, as ``capture_cells`` keys it."""
    return (row["role"], row.get("event_year"), *(row.get(d) for d in DIMENSIONS), "+".join(row["agencies"]))


def merge_person_rows(rows: list[dict]) -> dict:
    """Persons linked into one: agencies united, first year, a dimension kept where they agree."""
    years = [r["event_year"] for r in rows if r.get("event_year") is not None]
    merged = {"role": rows[0]["role"], "event_year": min(years) if years else None,
              "agencies": sorted({a for r in rows for a in r["agencies"]})}
    for d in DIMENSIONS:
        values = {r.get(d) for r in rows}
        merged[d] = values.pop() if len(values) == 1 else None
    return merged


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
                history_path: str | None = None, mcmc=None) -> tuple[dict, CaptureHistory | None]:
    """One stratum -> (a row of the ``mse_estimate`` table, the capture history fitted or None)."""
    row, ch = prepare_stratum(stratum, method, alpha=alpha, min_list_persons=min_list_persons,
                              min_overlap=min_overlap, history_path=history_path)
    if "refused_reason" in row:
        return row, ch
    try:
        result = estimate(ch, method=row["method"], seed=seed, alpha=alpha, interval=DEFAULT_INTERVAL, mcmc=mcmc)
    except ValueError as exc:  # e.g. min_bic on more lists than its exhaustive search allows
        return {**row, "refused_reason": f"method {row['method']} cannot fit this table: {exc}"}, ch
    return result_row(row, result), ch


def result_row(row: dict, result) -> dict:
    """The stratum's row with an :class:`MSEResult`'s figures (``draws`` kept for summing strata)."""
    diag = result.diagnostics
    return row | {
        "estimate": result.estimate, "lower": result.lower, "upper": result.upper,
        "unobserved": result.unobserved, "interval_method": result.interval_method,
        "model": result.model if not result.refused else None, "refused_reason": result.reason,
        "aic": diag.get("aic"), "deviance": diag.get("deviance"), "rhat": diag.get("rhat"),
        "ess": min(diag["ess_bulk"], diag["ess_tail"]) if "ess_bulk" in diag else None,
        "warnings": row["warnings"] + [str(w) for w in diag.get("warnings", [])], "draws": result.draws}


def prepare_stratum(stratum: Stratum, method: str = DEFAULT_METHOD, *, alpha: float = 0.05,
                    min_list_persons: int = MIN_LIST_PERSONS, min_overlap: int = MIN_OVERLAP,
                    history_path: str | None = None) -> tuple[dict, CaptureHistory | None]:
    """The lists, the capture history and the row before fitting; the row has ``refused_reason`` when the
    stratum cannot be estimated, and the method that will be fitted (the default's fallback past six lists)."""
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
    return row, ch


def estimate_strata(cells: Counter, method: str = DEFAULT_METHOD, *, roles: Iterable[str] = ROLES,
                    dimensions: Iterable[str] = DIMENSIONS[:3], stratify_by: str | None = None,
                    min_stratum_persons: int = 50, compare_method: str | None = None, seed: int = 0,
                    alpha: float = 0.05,
                    min_list_persons: int = MIN_LIST_PERSONS, min_overlap: int = MIN_OVERLAP, mcmc=None,
                    relinked: dict[str, tuple[Counter, int, int]] | None = None) -> tuple[list[dict], dict[str, pa.Table]]:
    """Merged cell counts -> (rows of ``mse_estimate``, {file name: capture-history table}).

    Besides "all" and each stratum: with ``stratify_by``, the row ``sum:<dimension>`` (stratified.py);
    with ``compare_method``, "all" fitted by that method too, and ``methods_disagree`` when each method's
    estimate lies outside the other's interval;
    with ``relinked`` ({role: (cells at the lower review threshold, persons fewer, uncertain pairs)}), the
    linkage band of "all" and of the sum (linkage_band.py)."""
    options = {"seed": seed, "alpha": alpha, "min_list_persons": min_list_persons, "min_overlap": min_overlap,
               "mcmc": mcmc}
    rows, histories = [], {}
    for stratum in strata(cells, roles, dimensions):
        rel = posixpath.join("mse", HISTORIES_FOLDER, stratum.file_name)
        row, ch = fit_stratum(stratum, method, history_path=rel, **options)
        if ch is not None:
            histories[stratum.file_name] = history_table(ch)
        else:
            row["capture_history"] = None
        rows.append(row)
    for role in roles:
        overall = next(r for r in rows if r["role"] == role and r["stratum"] == OVERALL)
        stratified = (stratified_row(cells, role, stratify_by, method, min_stratum_persons, **options)
                      if stratify_by else None)
        if stratified is not None:
            rows.append(stratified)
        if compare_method and compare_method != overall["method"] and overall.get("estimate") is not None:
            add_comparison(overall, fit_stratum(strata(cells, (role,), ())[0], compare_method, **options)[0])
        if relinked and role in relinked:
            other, fewer, pairs = relinked[role]  # no uncertain pair: the band is the estimate itself
            add_linkage_band(overall, fit_stratum(strata(other, (role,), ())[0], method, **options)[0]
                             if pairs else overall, fewer, pairs)
            if stratified is not None:
                add_linkage_band(stratified, stratified_row(other, role, stratify_by, method, min_stratum_persons,
                                                            **options) if pairs else stratified, fewer, pairs)
    for row in rows:
        log.info("mse %s %s: %s", row["role"], row["stratum"],
                 f"refused ({row['refused_reason']})" if row.get("estimate") is None
                 else f"{row['estimate']:.0f} [{row['lower']}, {row['upper']}]")
    return rows, histories


def stratified_row(cells: Counter, role: str, dimension: str, method: str, min_stratum_persons: int,
                   **options) -> dict:
    """The strata of ``dimension`` estimated one by one (sparse ones merged) and summed: row ``sum:<dim>``."""
    fitted = {}

    def fit(group):
        merged = merge_strata(group)
        if merged.name not in fitted:
            fitted[merged.name] = fit_stratum(merged, method, **options)[0]
        return fitted[merged.name]

    groups, parts = merge_sparse([[st] for st in partition(cells, role, dimension)], fit,
                                 lambda g: sum(st.observed for st in g), min_stratum_persons)
    row = {"role": role, "stratum": SUM_PREFIX + dimension, "dimension": dimension, "value": None,
           "period": parts[0]["period"] if parts else None, "method": method, "confidence": 1 - options["alpha"],
           "observed": int(sum(r["observed"] for r in parts)),
           "lists": sorted({name for r in parts for name in r["lists"]}), "model": None,
           "components": [_component(r) for r in parts], "capture_history": None,
           "warnings": [f"{r['stratum']}: {w}" for r in parts for w in r.get("warnings", [])]}
    if not parts or any(r.get("estimate") is None for r in parts):
        reasons = "; ".join(f"{r['stratum']}: {r.get('refused_reason')}" for r in parts if r.get("estimate") is None)
        return row | {"refused_reason": f"a stratum cannot be estimated even merged ({reasons})"}
    total = sum_estimates(parts, options["alpha"], options["seed"])
    return row | total | {"unobserved": total["estimate"] - row["observed"], "refused_reason": None}


def _figure(row: dict) -> str:
    """'2,130 [1,807, 3,186]' ('-' for an interval end not found)."""
    low, high = ("-" if row.get(k) is None else f"{row[k]:,.0f}" for k in ("lower", "upper"))
    return f"{row['estimate']:,.0f} [{low}, {high}]"


def _component(row: dict) -> str:
    return f"{row['stratum']}: {'refused' if row.get('estimate') is None else _figure(row)}"


def add_comparison(row: dict, other: dict) -> None:
    """The same table by another method; they disagree when each estimate is outside the other's interval."""
    row["comparison_method"] = other["method"]
    if other.get("estimate") is None:
        row["warnings"] = row["warnings"] + [f"{other['method']} refused: {other.get('refused_reason')}"]
        return
    row |= {"comparison_estimate": other["estimate"], "comparison_lower": other["lower"],
            "comparison_upper": other["upper"]}

    def outside(est, low, high):
        return (low is not None and est < low) or (high is not None and est > high)

    row["methods_disagree"] = bool(outside(row["estimate"], other["lower"], other["upper"])
                                   and outside(other["estimate"], row["lower"], row["upper"]))
    if row["methods_disagree"]:
        row["warnings"] = row["warnings"] + [f"methods disagree beyond their intervals: {row['method']} "
                                             f"{_figure(row)}, {other['method']} {_figure(other)}"]


def add_linkage_band(row: dict, relinked_row: dict, fewer: int, pairs: int) -> None:
    """The span of the estimate at the upper review threshold (the run's persons) and at the lower one."""
    row["uncertain_pairs"] = pairs
    if row.get("estimate") is None or relinked_row.get("estimate") is None:
        return
    ends = (row["estimate"], relinked_row["estimate"])
    row["linkage_lower"], row["linkage_upper"] = min(ends), max(ends)
    if pairs:
        row["warnings"] = row.get("warnings", []) + [
            f"linkage band: with the {pairs} uncertain pairs linked ({fewer} persons fewer) the estimate is "
            f"{_figure(relinked_row)}"]


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
    """Persons (Arrow tables) -> MSE per stratum, the stratified estimate and the linkage band, written
    under ``folder``; outputs one element: the estimate rows (list of dicts), for the public release and
    tests. ``uncertain``: PCollections of ``(role, person pairs)`` (linkage_band.UncertainPersonPairs);
    without them there is no linkage band. ``method`` None: the settings' method."""

    def __init__(self, folder: str, schema: pa.Schema | None = None, method: str | None = None, *,
                 settings: MseSettings | None = None, roles: Iterable[str] = ROLES, seed: int = 0,
                 min_list_persons: int = MIN_LIST_PERSONS, min_overlap: int = MIN_OVERLAP, uncertain=()):
        super().__init__()
        settings = settings or load_settings()
        self._folder = folder
        self._schema = schema or model.table("mse_estimate").schema()
        self._method = method or settings.method
        self._uncertain = tuple(uncertain) if settings.linkage_band else ()
        self._options = {"roles": tuple(roles), "dimensions": settings.dimensions,
                         "stratify_by": settings.stratify_by, "compare_method": settings.compare_method,
                         "min_stratum_persons": settings.min_stratum_persons, "seed": seed,
                         "mcmc": settings.latent_class_chains,
                         "min_list_persons": min_list_persons, "min_overlap": min_overlap}

    def expand(self, persons):
        folder, schema, method, options = self._folder, self._schema, self._method, self._options
        roles, band = options["roles"], bool(self._uncertain)
        cells = persons | "CaptureCells" >> beam.CombineGlobally(CaptureCellsFn(roles))
        if not self._uncertain:
            pairs = persons.pipeline | "NoUncertainPairs" >> beam.Create([{}])
        else:
            pairs = (self._uncertain | "AllUncertainPairs" >> beam.Flatten()
                     | "PairsByRole" >> beam.combiners.ToList() | beam.Map(lambda items: {
                         role: p for role, p in items if role in roles}))
        involved = (persons | "PersonsInUncertainPairs" >> beam.Map(
            lambda t, pairs: involved_persons(t, {pid for p in pairs.values() for pair in p for pid in pair}),
            pairs=beam.pvalue.AsSingleton(pairs)) | "AllInvolved" >> beam.combiners.ToList())

        def fit_and_write(cells, pairs, involved):
            persons_rows = [row for part in involved for row in part]
            relinked = None
            if band:
                relinked = {}
                for role, p in pairs.items():
                    other, fewer = relinked_cells(cells, [r for r in persons_rows if r["role"] == role], p,
                                                  person_key, merge_person_rows)
                    relinked[role] = (other, fewer, len(p))
            rows, histories = estimate_strata(cells, method, relinked=relinked, **options)
            write_estimates(rows, histories, folder, schema)
            return rows

        return cells | "FitAndWrite" >> beam.Map(fit_and_write, pairs=beam.pvalue.AsSingleton(pairs),
                                                 involved=beam.pvalue.AsSingleton(involved))


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
    summed = pc.starts_with(estimates.column("stratum"), SUM_PREFIX)
    for row in estimates.filter(summed).to_pylist():
        entry = out.setdefault(_plural(row["role"]), {})
        entry["stratified"] = ({"refused": row.get("refused_reason") or "no estimate"} if row.get("estimate") is None
                               else {k: row.get(k) for k in (*MANIFEST_KEYS, "stratum", "components")})
    return out


def read_manifest_entry(fs, run_path: str) -> dict:
    """``manifest_entry`` of a run folder's ``mse/estimates.parquet``; {} when the run has none."""
    path = f"{run_path.rstrip('/')}/mse/{ESTIMATES_FILE}"
    if not fs.exists(path):
        return {}
    with fs.open(path, "rb") as fh:
        return manifest_entry(pq.read_table(fh))

