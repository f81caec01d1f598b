"""Public release: aggregate tables with small-cell and complementary suppression, and the UNODC export.

The release's cells, tables and suppression; the stage that writes them (``PublicRelease``, in
``pipelines.release``) turns persons and harmonised records into cell counts (combined across
workers) and writes the suppressed tables under ``OUT/runs/<run_id>/public/``, the only public zone.

Every published number is a *cell*: a population (victims, offenders, victim records, offender
records), a year (or all years) and an assignment of some dimensions ("sex=FEMALE,
child_adult=CHILD"). Tables share cells (the sex margin of ``victims_by_sex_child_adult`` is the
body of ``victims_by_sex``), so suppression runs once over all cells and every additive relation
between published cells (a total and its parts, a UNODC group and its codes): a cell under the
threshold is hidden ("<5"), and while any relation has exactly one hidden member another member
is hidden too ("x"), so no hidden count can be recovered by subtraction, from any table. Then all
relations are combined (``pinned``: linear programming over every published cell at once) and
more cells are hidden until no hidden count has a single possible value (docs/data-protection.md
says what this guarantees and what it does not).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import codelists

DEFAULT_THRESHOLD = 5
UNKNOWN = "UNKNOWN"  # a null attribute is counted, as its own category
ALL = "Total"  # the all-years column, and a dimension summed over
SECONDARY = "x"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Derived:
    """A dimension grouping another through a code list peer (e.g. exploitation type -> UNODC form)."""

    source: str
    codelist: str
    peer: str

    def mapping(self) -> dict[str, str]:
        cl = codelists.load(self.codelist)
        return {e["code"]: str(e.get(self.peer) or UNKNOWN) for e in cl.entries}


@dataclass(frozen=True)
class Population:
    name: str
    source: str  # persons | victim | offender (harmonised records)
    role: str | None  # persons only
    dims: tuple[str, ...]
    derived: dict[str, Derived] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class TableSpec:
    name: str
    population: str
    dims: tuple[str, ...]
    title: str


UNODC_FORM = Derived("exploitation_type", "exploitation_types", "unodc")
UNODC_STAGE = Derived("furthest_stage", "justice_stages", "unodc")

POPULATIONS = {p.name: p for p in (
    Population("victims", "persons", "victim",
               ("sex", "child_adult", "nationality", "exploitation_type", "exploitation_unodc", "department",
                "origin_department", "seen_in_earlier_period"),
               {"exploitation_unodc": UNODC_FORM}),
    Population("offenders", "persons", "offender",
               ("sex", "child_adult", "nationality", "furthest_stage", "stage_unodc", "department",
                "seen_in_earlier_period"),
               {"stage_unodc": UNODC_STAGE}),
    Population("victim_records", "victim", None, ("agency", "sex", "child_adult", "exploitation_type")),
    Population("offender_records", "offender", None, ("agency", "stage")),
)}

TABLES = (
    TableSpec("victims_by_sex", "victims", ("sex",), "Reconciled victims by sex and year"),
    TableSpec("victims_by_child_adult", "victims", ("child_adult",), "Reconciled victims, children and adults"),
    TableSpec("victims_by_sex_child_adult", "victims", ("sex", "child_adult"), "Reconciled victims by sex and age group"),
    TableSpec("victims_by_nationality", "victims", ("nationality",), "Reconciled victims by nationality (ISO 3166-1)"),
    TableSpec("victims_by_exploitation_type", "victims", ("exploitation_type",), "Reconciled victims by form of exploitation"),
    TableSpec("victims_by_unodc_form", "victims", ("exploitation_unodc",), "Reconciled victims by UNODC form of exploitation"),
    TableSpec("victims_by_department", "victims", ("department",), "Reconciled victims by department of the first event (INEI)"),
    TableSpec("victims_by_origin_department", "victims", ("origin_department",),
              "Reconciled victims by department of origin (INEI), where a feed records it"),
    TableSpec("victims_by_seen_in_earlier_period", "victims", ("seen_in_earlier_period",),
              "Reconciled victims recorded in an earlier published period too (re-victimisation): true or false"),
    TableSpec("offenders_by_sex", "offenders", ("sex",), "Reconciled offenders by sex"),
    TableSpec("offenders_by_child_adult", "offenders", ("child_adult",), "Reconciled offenders, children and adults"),
    TableSpec("offenders_by_sex_child_adult", "offenders", ("sex", "child_adult"), "Reconciled offenders by sex and age group"),
    TableSpec("offenders_by_nationality", "offenders", ("nationality",), "Reconciled offenders by nationality"),
    TableSpec("offenders_by_stage", "offenders", ("furthest_stage",), "Reconciled offenders by furthest justice stage"),
    TableSpec("offenders_by_department", "offenders", ("department",), "Reconciled offenders by department"),
    TableSpec("offenders_by_unodc_stage_sex_child_adult", "offenders", ("stage_unodc", "sex", "child_adult"),
              "Offenders by UNODC stage (furthest reached), sex and age group"),
    TableSpec("offenders_by_unodc_stage_nationality", "offenders", ("stage_unodc", "nationality"),
              "Offenders by UNODC stage (furthest reached) and nationality"),
    TableSpec("offenders_by_seen_in_earlier_period", "offenders", ("seen_in_earlier_period",),
              "Reconciled offenders recorded in an earlier published period too (re-offending): true or false"),
    TableSpec("victim_records_by_agency", "victim_records", ("agency",), "Victim records reported by each agency"),
    TableSpec("victim_records_by_agency_sex", "victim_records", ("agency", "sex"), "Victim records by agency and sex"),
    TableSpec("victim_records_by_agency_child_adult", "victim_records", ("agency", "child_adult"),
              "Victim records by agency, children and adults"),
    TableSpec("victim_records_by_agency_exploitation_type", "victim_records", ("agency", "exploitation_type"),
              "Victim records by agency and form of exploitation"),
    TableSpec("offender_records_by_agency", "offender_records", ("agency",), "Offender records reported by each agency"),
    TableSpec("offender_records_by_agency_stage", "offender_records", ("agency", "stage"),
              "Offender records by agency and justice stage"),
)


# ---------------------------------------------------------------- counting (runs on the workers)

def _column(table: pa.Table, name: str, population: Population) -> pa.Array:
    if name in population.derived:
        d = population.derived[name]
        mapping = d.mapping()
        source = _column(table, d.source, population)
        keys = pa.array(list(mapping), pa.string())
        mapped = pc.take(pa.array(list(mapping.values()), pa.string()), pc.index_in(source, value_set=keys))
        return pc.fill_null(mapped, UNKNOWN)
    if name not in table.column_names:
        return pa.repeat(pa.scalar(UNKNOWN), table.num_rows)
    column = table.column(name).combine_chunks()
    return pc.fill_null(column.cast(pa.string()), UNKNOWN)


def count_cells(table: pa.Table, population: Population) -> Counter:
    """(year, *dims) -> records, the finest cells of one population in one Arrow chunk."""
    if population.role is not None and "role" in table.column_names:
        table = table.filter(pc.equal(table.column("role"), population.role))
    if not table.num_rows:
        return Counter()
    columns = {"year": _column(table, "event_year", population)}
    columns |= {d: _column(table, d, population) for d in population.dims}
    grouped = pa.table(columns).group_by(list(columns), use_threads=False).aggregate([([], "count_all")])
    keys = zip(*(grouped.column(c).to_pylist() for c in columns))
    return Counter(dict(zip(keys, grouped.column("count_all").to_pylist())))


def chunk_counts(table: pa.Table, source: str) -> dict[str, Counter]:
    return {p.name: count_cells(table, p) for p in POPULATIONS.values() if p.source == source}


class MergeCounts(beam.CombineFn):
    def create_accumulator(self):
        return {}

    def add_input(self, acc, counts):
        for name, c in counts.items():
            acc.setdefault(name, Counter()).update(c)
        return acc

    def merge_accumulators(self, accs):
        merged = {}
        for acc in accs:
            self.add_input(merged, acc)
        return merged

    def extract_output(self, acc):
        return acc


# ---------------------------------------------------------------- cells, relations, suppression

Key = tuple  # (population, year, ((dim, value), ...)) with dims in the population's order


@dataclass
class Release:
    cells: dict[Key, int]
    relations: list[tuple[Key, list[Key]]]  # total == sum(parts)
    hidden: dict[Key, str]  # key -> "primary" | "secondary"
    years: dict[str, list[str]]  # population -> years in order
    values: dict[tuple[str, str], list[str]]  # (population, dim) -> categories in order
    threshold: int

    def display(self, key: Key) -> str:
        status = self.hidden.get(key)
        if status == "primary":
            return f"<{self.threshold}"
        if status == "secondary":
            return SECONDARY
        return str(self.cells[key])


def _order(dim: str, population: Population, seen: Iterable[str]) -> list[str]:
    lists = {"sex": "sex", "child_adult": "child_adult", "exploitation_type": "exploitation_types",
             "furthest_stage": "justice_stages", "stage": "justice_stages", "agency": "agencies",
             "department": "departments", "origin_department": "departments"}
    rank: dict[str, int] = {}
    if dim in lists:
        rank = {c: i for i, c in enumerate(codelists.load(lists[dim]).codes_in_order)}
    elif dim in population.derived:
        d = population.derived[dim]
        for i, c in enumerate(codelists.load(d.codelist).codes_in_order):
            rank.setdefault(d.mapping()[c], i)
    return sorted(set(seen), key=lambda v: (v == UNKNOWN, rank.get(v, len(rank)), v))


def _key(population: str, year: str, assignment: dict[str, str], dims: tuple[str, ...]) -> Key:
    return (population, year, tuple((d, assignment[d]) for d in dims if d in assignment))


def build_release(finest: dict[str, Counter], threshold: int = DEFAULT_THRESHOLD,
                  tables: tuple[TableSpec, ...] = TABLES) -> Release:
    cells: dict[Key, int] = {}
    relations: list[tuple[Key, list[Key]]] = []
    years: dict[str, list[str]] = {}
    values: dict[tuple[str, str], list[str]] = {}
    for name, pop in POPULATIONS.items():
        counts = finest.get(name, Counter())
        years[name] = sorted({k[0] for k in counts}, key=lambda y: (y == UNKNOWN, y))
        for i, d in enumerate(pop.dims):
            values[(name, d)] = _order(d, pop, (k[i + 1] for k in counts))

    def marginal(pop: Population, year: str, assignment: dict[str, str]) -> int:
        idx = [(pop.dims.index(d) + 1, v) for d, v in assignment.items()]
        return sum(n for k, n in finest.get(pop.name, Counter()).items()
                   if (year == ALL or k[0] == year) and all(k[i] == v for i, v in idx))

    for spec in tables:
        pop = POPULATIONS[spec.population]
        yrs = years[pop.name]
        for size in range(len(spec.dims) + 1):
            for subset in itertools.combinations(spec.dims, size):
                for combo in itertools.product(*(values[(pop.name, d)] for d in subset)):
                    assignment = dict(zip(subset, combo))
                    for year in [*yrs, ALL]:
                        key = _key(pop.name, year, assignment, pop.dims)
                        if key not in cells:
                            cells[key] = marginal(pop, year, assignment)
                    # all years = sum of the years
                    relations.append((_key(pop.name, ALL, assignment, pop.dims),
                                      [_key(pop.name, y, assignment, pop.dims) for y in yrs]))
                    # a margin = sum over each dimension it leaves out
                    for d in spec.dims:
                        if d in assignment:
                            continue
                        for year in [*yrs, ALL]:
                            relations.append((_key(pop.name, year, assignment, pop.dims),
                                              [_key(pop.name, year, assignment | {d: v}, pop.dims)
                                               for v in values[(pop.name, d)]]))
    # a grouped category = sum of its codes, wherever both sides are published cells
    for pop in POPULATIONS.values():
        for dim, derived in pop.derived.items():
            mapping = derived.mapping()
            groups: dict[str, list[str]] = {}
            for code in values[(pop.name, derived.source)]:  # as _column groups them
                groups.setdefault(mapping.get(code, UNKNOWN), []).append(code)
            for key in list(cells):
                if key[0] != pop.name:
                    continue
                assignment = dict(key[2])
                if dim not in assignment or derived.source in assignment:
                    continue
                rest = {d: v for d, v in assignment.items() if d != dim}
                parts = [_key(pop.name, key[1], rest | {derived.source: c}, pop.dims)
                         for c in groups.get(assignment[dim], [])]
                if parts and all(p in cells for p in parts):
                    relations.append((key, parts))
    relations = [(t, parts) for t, parts in relations if parts]
    hidden = suppress(cells, relations, threshold)
    hidden = protect_combined(cells, relations, hidden, threshold)
    return Release(cells, relations, hidden, years, values, threshold)


def _cost(cells: dict[Key, int], total: Key):
    """Which cell to hide next among candidates: the smallest non-zero part (a total last), so the
    least information is lost."""
    return lambda m: (cells[m] == 0, m == total, len(m[2]) == 0, cells[m], m)


def suppress(cells: dict[Key, int], relations: list[tuple[Key, list[Key]]], threshold: int,
             hidden: dict[Key, str] | None = None) -> dict[Key, str]:
    """Primary: 0 < count < threshold. Complementary: no relation may have exactly one hidden member.
    ``hidden`` (cells already hidden) is extended rather than recomputed."""
    hidden = dict(hidden) if hidden is not None else {k: "primary" for k, n in cells.items() if 0 < n < threshold}
    members_of: dict[Key, list[int]] = {}
    for i, (total, parts) in enumerate(relations):
        for k in (total, *parts):
            members_of.setdefault(k, []).append(i)
    queue = sorted({i for k in hidden for i in members_of.get(k, [])})
    while queue:
        i = queue.pop()
        total, parts = relations[i]
        members = list(dict.fromkeys((*parts, total)))
        if sum(m in hidden for m in members) != 1:
            continue
        pick = min((m for m in members if m not in hidden), key=_cost(cells, total))
        hidden[pick] = "secondary"
        queue.extend(members_of.get(pick, []))
    return hidden


def pinned(cells: dict[Key, int], relations: list[tuple[Key, list[Key]]], hidden: dict[Key, str],
           threshold: int) -> list[Key]:
    """Hidden cells whose value follows from every published cell and every additive relation
    together: cells whose least and greatest value over all solutions are equal. A solution gives
    each hidden cell a value (a primary cell from 1 to threshold - 1, as "<N" says; any other
    hidden cell from 0) such that every relation holds with the visible cells' values.

    Exact, by linear programming (HiGHS) on each group of cells the relations tie together: first
    the bounds every solution meets with equality (a cell that must sit at 1 or at 0), found by
    maximising the slack of the cells not yet known to be fixed until no slack is possible; then a
    cell is pinned when it is fixed, or when the equations and the fixed cells determine it (its
    unit vector lies in their row space: no null-space direction moves it)."""
    from threadpoolctl import threadpool_limits

    order = sorted(hidden)
    index = {k: i for i, k in enumerate(order)}
    entries: dict[tuple[int, int], float] = {}
    rhs = []
    for total, parts in relations:
        members = list(dict.fromkeys((*parts, total)))
        if not any(m in index for m in members):
            continue
        constant = 0.0
        for m in members:
            sign = -1.0 if m == total else 1.0
            if m in index:
                entries[(len(rhs), index[m])] = entries.get((len(rhs), index[m]), 0.0) + sign
            else:
                constant += sign * cells[m]
        rhs.append(-constant)
    if not order or not rhs:
        return []
    with threadpool_limits(1):  # small dense solves: BLAS threads only contend (a shared worker's cores)
        return _pinned_cells(order, hidden, entries, rhs, threshold)


def _pinned_cells(order, hidden, entries, rhs, threshold) -> list[Key]:
    import numpy as np
    from scipy.linalg import eigh
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols = zip(*entries)
    a_eq = csr_matrix((list(entries.values()), (rows, cols)), shape=(len(rhs), len(order)))
    rhs = np.array(rhs)
    low = np.array([1.0 if hidden[k] == "primary" else 0.0 for k in order])
    high = np.array([threshold - 1.0 if hidden[k] == "primary" else np.inf for k in order])
    _, component = connected_components(a_eq.T @ a_eq, directed=False)
    found = []
    for part in range(component.max() + 1):
        members = np.flatnonzero(component == part)
        equations = a_eq[np.unique(a_eq[:, members].nonzero()[0])][:, members].toarray()
        fixed = _fixed_at_a_bound(equations, rhs[np.unique(a_eq[:, members].nonzero()[0])], low[members],
                                  high[members], linprog)
        known = np.vstack([equations, np.eye(len(members))[fixed]])
        # the null space of what is known, as the eigenvectors of its Gram matrix with eigenvalue 0
        values, vectors = eigh(known.T @ known)
        null = vectors[:, values < 1e-9 * max(values.max(initial=0.0), 1.0)]
        moves = np.abs(null).max(axis=1, initial=0.0) > 1e-6
        for j, i in enumerate(members):
            if high[i] - low[i] >= 1 and not moves[j]:  # "<2" says 1 by itself: nothing to protect there
                found.append(order[i])
    return found


def _fixed_at_a_bound(equations, rhs, low, high, linprog) -> "np.ndarray":
    """Cells that sit at one of their bounds in every solution of ``equations @ x == rhs``,
    ``low <= x <= high``: maximise the summed slack (each capped at 1) of the cells still in doubt;
    cells that gain slack are free, and once none can, the rest are fixed."""
    import numpy as np

    n = len(low)
    doubt = np.ones(n, bool)
    while doubt.any():
        d = np.flatnonzero(doubt)
        # variables: x (n), then one slack t per cell in doubt; maximise sum(t)
        objective = np.concatenate([np.zeros(n), -np.ones(len(d))])
        a_eq = np.hstack([equations, np.zeros((len(equations), len(d)))])
        upper = []
        for k, i in enumerate(d):  # t <= x - low and, with a finite bound, t <= high - x
            row = np.zeros(n + len(d))
            row[i], row[n + k] = -1.0, 1.0
            upper.append((row, -low[i]))
            if np.isfinite(high[i]):
                row = np.zeros(n + len(d))
                row[i], row[n + k] = 1.0, 1.0
                upper.append((row, high[i]))
        a_ub = np.array([r for r, _ in upper])
        b_ub = np.array([b for _, b in upper])
        bounds = [(lo, hi if np.isfinite(hi) else None) for lo, hi in zip(low, high)] + [(0, 1)] * len(d)
        result = linprog(objective, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=rhs, bounds=bounds, method="highs")
        if result.status != 0:  # cannot happen with consistent counts: treat every cell in doubt as fixed
            break
        slack = result.x[n:] > 1e-7
        if not slack.any():
            break
        doubt[d[slack]] = False
    return doubt


def protect_combined(cells: dict[Key, int], relations: list[tuple[Key, list[Key]]], hidden: dict[Key, str],
                     threshold: int) -> dict[Key, str]:
    """Hide further until no hidden cell is pinned by all relations together (``pinned``): for each
    pinned cell, the cheapest visible cell nearest to it through the relations (its own first,
    then those of the hidden cells they hold...), or, when every cell around is hidden, show a
    "<N" cell as "x" instead; then the single-relation closure again."""
    members_of: dict[Key, list[list[Key]]] = {}
    for total, parts in relations:
        members = [*parts, total]
        for k in members:
            members_of.setdefault(k, []).append(members)

    def nearest(key: Key, hidden: dict[Key, str]) -> Key | None:
        """The visible cell nearest to ``key``; with none left, the nearest cell shown as "<N"."""
        frontier, seen, small = {key}, {key}, [key] if hidden[key] == "primary" else []
        while frontier:
            reached = {m for k in frontier for members in members_of.get(k, []) for m in members} - seen
            visible = [m for m in reached if m not in hidden]
            if visible:  # the smallest non-zero count, a grand total last: the least information lost
                return min(visible, key=lambda m: (cells[m] == 0, len(m[2]) == 0, cells[m], m))
            small += sorted(m for m in reached if hidden[m] == "primary")
            seen |= reached
            frontier = reached
        return small[0] if small else None

    while True:
        exposed = pinned(cells, relations, hidden, threshold)
        extra = dict(hidden)
        for key in exposed:
            # a visible cell becomes "x"; when all are hidden, a "<N" cell becomes "x": "<N" tells
            # the count is at least 1, and four "<5" parts of a "<5" total are each 1
            pick = nearest(key, extra)
            if pick is not None:
                extra[pick] = "secondary"
        if extra == hidden:  # none pinned, or nothing left to hide: write_release fails closed on the rest
            return hidden
        hidden = suppress(cells, relations, threshold, extra)


def recoverable(release: Release) -> list[Key]:
    """Hidden cells a single relation gives away (total minus the visible parts): must be empty."""
    leaked = []
    for total, parts in release.relations:
        members = set((*parts, total))
        h = [m for m in members if m in release.hidden]
        if len(h) == 1:
            leaked.append(h[0])
    return leaked


# ---------------------------------------------------------------- exports

def neutralise(value) -> str:
    """A cell a spreadsheet would run as a formula (=, +, -, @, tab, CR) is quoted to stay text."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def table_rows(release: Release, spec: TableSpec) -> list[list[str]]:
    pop = POPULATIONS[spec.population]
    yrs = release.years[pop.name]
    rows = [[*spec.dims, *yrs, ALL]]
    choices = [[*release.values[(pop.name, d)], ALL] for d in spec.dims]
    for combo in itertools.product(*choices):
        assignment = {d: v for d, v in zip(spec.dims, combo) if v != ALL}
        rows.append([*combo, *(release.display(_key(pop.name, y, assignment, pop.dims)) for y in [*yrs, ALL])])
    return rows


_SEX_AGE = {("FEMALE", "ADULT"): "Women", ("MALE", "ADULT"): "Men", ("FEMALE", "CHILD"): "Girls",
            ("MALE", "CHILD"): "Boys"}


def _sex_age_label(sex: str, age: str) -> str:
    if (sex, age) in _SEX_AGE:
        return _SEX_AGE[(sex, age)]
    sex_label = {"UNKNOWN": "sex unknown"}.get(sex, f"sex {sex.lower()}")
    age_label = {"CHILD": "children", "ADULT": "adults", "UNKNOWN": "age unknown"}[age]
    return f"Other: {sex_label}, {age_label}"


def unodc_rows(release: Release) -> list[list[str]]:
    """The GLOTIP questionnaire's layout: section, item, one column per year, from published cells only."""
    rows = []
    years = sorted(set(release.years["victims"]) | set(release.years["offenders"]), key=lambda y: (y == UNKNOWN, y))

    def add(section: str, item: str, pop: str, assignment: dict[str, str]) -> None:
        keys = [_key(pop, y, assignment, POPULATIONS[pop].dims) for y in years]
        # a year the population has no record in is a true zero
        rows.append([section, item, *(release.display(k) if k in release.cells else "0" for k in keys)])

    def sex_age(section: str, pop: str, base: dict[str, str]) -> None:
        add(section, "Total", pop, base)
        for sex in release.values[(pop, "sex")]:
            for age in release.values[(pop, "child_adult")]:
                add(section, _sex_age_label(sex, age), pop, base | {"sex": sex, "child_adult": age})

    def citizenship(section: str, pop: str, base: dict[str, str]) -> None:
        for nat in release.values[(pop, "nationality")]:
            label = "Nationals (Peru)" if nat == "PER" else ("Citizenship unknown" if nat == UNKNOWN
                                                             else f"Foreign: {nat}")
            add(section, label, pop, base | {"nationality": nat})

    sex_age("Victims detected, by sex and age", "victims", {})
    citizenship("Victims detected, by citizenship", "victims", {})
    for form in release.values[("victims", "exploitation_unodc")]:
        add("Victims detected, by form of exploitation", form, "victims", {"exploitation_unodc": form})
    for stage in release.values[("offenders", "stage_unodc")]:
        title = {"formal contact": "Persons brought into formal contact", "prosecuted": "Persons prosecuted",
                 "convicted": "Persons convicted"}.get(stage, f"Persons, stage {stage}")
        sex_age(f"{title} (furthest stage reached), by sex and age", "offenders", {"stage_unodc": stage})
        citizenship(f"{title} (furthest stage reached), by citizenship", "offenders", {"stage_unodc": stage})
    return [["section", "item", *years], *rows]


def csv_bytes(rows: list[list[str]], banner: str | None) -> bytes:
    buf = io.StringIO()
    if banner:
        buf.write(f"# {banner}\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows([[neutralise(v) for v in row] for row in rows])
    return buf.getvalue().encode("utf-8")


def estimate_rows(release: Release, estimates: list[dict]) -> list[list[str]]:
    """Multiple systems estimates (rows of pipelines.estimate.pipeline_stage) as a public table. A stratum
    whose observed count the release suppresses has its estimate suppressed too: the estimate could help
    recover the hidden count."""
    rows = [["population", "stratum", "persons_seen", "estimate", "lower", "upper", "confidence", "method",
             "model", "lists", "note"]]
    for e in estimates:
        pop = POPULATIONS.get(f"{e['role']}s")
        assignment = {e["dimension"]: e["value"]} if e.get("dimension") else {}
        key = _key(pop.name, ALL, assignment, pop.dims) if pop and set(assignment) <= set(pop.dims) else None
        hidden = key not in release.cells or key in release.hidden
        if hidden:
            seen, figures, note = (release.display(key) if key in release.cells else SECONDARY), [SECONDARY] * 3, \
                "suppressed with the count it rests on"
        else:
            seen, note = release.display(key), e.get("refused_reason") or ""
            figures = ["" if e.get(c) is None else str(round(e[c])) for c in ("estimate", "lower", "upper")]
        model = "" if e.get("estimate") is None else " + ".join(["main effects", *(e.get("model") or [])])
        rows.append([pop.name if pop else e["role"], e["stratum"], seen, *figures, str(e.get("confidence") or ""),
                     e["method"], model, "; ".join(e.get("lists") or []), note])
    return rows
