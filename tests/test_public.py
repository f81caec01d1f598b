"""Public release: small-cell and complementary suppression, the UNODC export, formula-safe files."""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter

import openpyxl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines import public, release
from pipelines.public import ALL, POPULATIONS, TABLES, build_release, count_cells, recoverable, table_rows

VALUES = {
    "sex": ["FEMALE", "MALE", None], "child_adult": ["CHILD", "ADULT", None], "nationality": ["PER", "VEN", "COL", None],
    "exploitation_type": ["SEXUAL_EXPLOITATION", "FORCED_LABOUR", "DOMESTIC_SERVITUDE", "FORCED_BEGGING", None],
    "department": ["15", "07", "16", None], "furthest_stage": ["ARRESTED", "INVESTIGATED", "PROSECUTED", "CONVICTED"],
    "agency": ["PNP", "MP", "MIMP"], "stage": ["ARRESTED", "CONVICTED"], "event_year": [2017, 2018],
}


def persons(rows: list[dict], role: str) -> pa.Table:
    cols = ["event_year", "sex", "child_adult", "nationality", "exploitation_type", "department", "origin_department",
            "furthest_stage"]
    return pa.table({"role": [role] * len(rows), **{c: [r.get(c) for r in rows] for c in cols}})


def random_finest(seed: int, n_victims: int, n_offenders: int, skew: float = 0.8) -> dict[str, Counter]:
    rng = random.Random(seed)

    def pick(values):  # skewed: a few big categories and many small ones, as in real data
        weights = [skew ** i for i in range(len(values))]
        return rng.choices(values, weights)[0]

    victims = [{k: pick(v) for k, v in VALUES.items()} for _ in range(n_victims)]
    offenders = [{k: pick(v) for k, v in VALUES.items()} for _ in range(n_offenders)]
    origins = random.Random(seed + 1)  # its own draws: the other dimensions stay as they were before it
    for victim in victims:
        victim["origin_department"] = origins.choices([None, "15", "07"], [1.0, skew, skew ** 2])[0]
    finest = {"victims": count_cells(persons(victims, "victim"), POPULATIONS["victims"]),
              "offenders": count_cells(persons(offenders, "offender"), POPULATIONS["offenders"])}
    for name, rows in (("victim_records", victims), ("offender_records", offenders)):
        t = pa.table({c: [r.get(c) for r in rows] for c in ("event_year", "agency", "sex", "child_adult",
                                                            "exploitation_type", "stage")})
        finest[name] = count_cells(t, POPULATIONS[name])
    return finest


def assert_protected(release, threshold):
    for key, n in release.cells.items():
        if 0 < n < threshold:
            assert key in release.hidden, key
    assert recoverable(release) == []
    assert public.pinned(release.cells, release.relations, release.hidden, threshold) == []
    # the same check on the rendered 2-D tables: every row and every column, total included
    for spec in TABLES:
        rows = table_rows(release, spec)[1:]
        nd = len(spec.dims)
        grid = {tuple(r[:nd]): r[nd:] for r in rows}
        hidden = {k: [v in (f"<{threshold}", public.SECONDARY) for v in vals] for k, vals in grid.items()}
        for k, flags in hidden.items():  # along the years (the last flag is the all-years total)
            assert sum(flags) != 1, (spec.name, k)
        for axis in range(nd):  # along each dimension, per year column
            lines: dict[tuple, list[bool]] = {}
            for k, flags in hidden.items():
                rest = k[:axis] + k[axis + 1:]
                for col, flag in enumerate(flags):
                    lines.setdefault((rest, col), []).append(flag)
            for line, flags in lines.items():
                assert sum(flags) != 1, (spec.name, axis, line)


@pytest.mark.parametrize("seed,n", [(1, 40), (2, 200), (3, 1500), (4, 9)])
def test_no_cell_under_threshold_and_none_recoverable(seed, n):
    release = build_release(random_finest(seed, n, n // 2))
    assert_protected(release, 5)
    assert any(v == "secondary" for v in release.hidden.values()) or n == 9


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), n=st.integers(0, 120), threshold=st.integers(2, 12),
       skew=st.floats(0.2, 1.0))
def test_suppression_holds_for_any_population(seed, n, threshold, skew):
    assert_protected(build_release(random_finest(seed, n, n, skew), threshold), threshold)


def test_threshold_is_configurable_and_displayed():
    finest = random_finest(7, 300, 100)
    loose, strict = build_release(finest, 3), build_release(finest, 11)
    under = {t: {k for k, n in r.cells.items() if 0 < n < t} for t, r in ((3, loose), (11, strict))}
    assert under[3] < under[11] and under[3] <= set(loose.hidden) and under[11] <= set(strict.hidden)
    assert_protected(loose, 3)
    assert_protected(strict, 11)
    shown = {v for spec in TABLES for row in table_rows(strict, spec)[1:] for v in row}
    assert "<11" in shown and "<5" not in shown
    for spec in TABLES:
        for row in table_rows(strict, spec)[1:]:
            for v in row[len(spec.dims):]:
                assert not v.isdigit() or int(v) == 0 or int(v) >= 11


def test_shared_cells_have_one_status_in_every_table():
    release = build_release(random_finest(5, 400, 50))
    # the sex margin of sex x child_adult is the body of victims_by_sex
    by_sex = {r[0]: r[1:] for r in table_rows(release, public.TABLES[0])[1:]}
    by_sex_age = {r[0]: r[2:] for r in table_rows(release, public.TABLES[2])[1:] if r[1] == ALL}
    assert by_sex == by_sex_age


def test_unodc_groups_cannot_open_their_codes():
    # DOMESTIC_SERVITUDE is grouped with FORCED_LABOUR in UNODC's "forced labour"
    finest = {"victims": Counter({("2018", "FEMALE", "ADULT", "PER", code, group, "15", "07", "false"): n
                                  for code, group, n in (
        ("SEXUAL_EXPLOITATION", "sexual exploitation", 50), ("FORCED_LABOUR", "forced labour", 30),
        ("DOMESTIC_SERVITUDE", "forced labour", 2), ("FORCED_BEGGING", "begging", 20))})}
    release = build_release(finest)
    assert_protected(release, 5)
    rows = {r[0]: r[1] for r in table_rows(release, TABLES[4])[1:]}
    assert rows["DOMESTIC_SERVITUDE"] == "<5" and rows["FORCED_LABOUR"] == "x"


def test_counting_matches_the_records():
    t = persons([{"event_year": 2018, "sex": "FEMALE", "child_adult": "CHILD"}] * 3
                + [{"event_year": 2018, "sex": None}], "victim")
    counts = count_cells(t, POPULATIONS["victims"])
    assert sum(counts.values()) == 4
    assert sum(n for k, n in counts.items() if k[1] == "FEMALE" and k[2] == "CHILD") == 3
    assert sum(n for k, n in counts.items() if k[1] == public.UNKNOWN) == 1
    assert count_cells(t, POPULATIONS["offenders"]) == Counter()


@pytest.mark.parametrize("text", ["=1+2", "+1", "-2+3", "@SUM(A1)", "\t=x", "=HYPERLINK(\"http://x\")"])
def test_formulas_are_neutralised(text):
    assert public.neutralise(text) == "'" + text
    assert public.neutralise("<5") == "<5" and public.neutralise(12) == "12"


def test_exports_never_carry_a_formula(tmp_path):
    hostile = "=HYPERLINK(\"http://evil\",\"x\")"
    finest = {"victims": Counter({("2018", "FEMALE", "ADULT", hostile, "SEXUAL_EXPLOITATION",
                                   "sexual exploitation", "@15", "15", "false"): 12,
                                  ("2018", "MALE", "ADULT", "+PER", "FORCED_LABOUR", "forced labour", "-1", "=1",
                                   "false"): 9})}
    paths = release.write_release(finest, str(tmp_path), demo=True)
    cells = []
    for path in paths:
        if path.endswith(".csv"):
            text = open(path, encoding="utf-8").read()
            assert text.startswith("# DEMO")
            cells += [v for row in csv.reader(io.StringIO(text.split("\n", 1)[1])) for v in row]
        elif path.endswith(".xlsx"):
            ws = openpyxl.load_workbook(path).active
            for row in ws.iter_rows():
                for cell in row:
                    assert cell.data_type != "f"
                    cells.append("" if cell.value is None else str(cell.value))
    assert any(hostile in c for c in cells)
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@")]


def test_sample_run_public_release(sample_run):
    from pathlib import Path

    result = sample_run
    folder = Path(result.run_dir) / "public"
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["demo"] is True and meta["suppressed"]["primary"] > 0
    files = {p.name for p in folder.iterdir()}
    assert files >= {f"{s.name}.csv" for s in TABLES} | {"unodc_glotip.csv", "unodc_glotip.xlsx", "metadata.json"}
    english = {f for f in files if f.endswith(".csv") and not f.endswith(".es.csv")}
    assert {f[:-4] for f in english} - {"unodc_glotip"} <= set(meta["tables"])
    spanish = json.loads((folder / "metadata.es.json").read_text(encoding="utf-8"))["tables"]  # pipelines/public_es.py
    assert {f for f in files if f.endswith(".es.csv")} == {t["file"] for t in spanish.values()}
    for spec in TABLES:
        rows = list(csv.reader(io.StringIO((folder / f"{spec.name}.csv").read_text().split("\n", 1)[1])))
        for row in rows[1:]:
            for v in row[len(spec.dims):]:
                assert v in ("<5", "x") or int(v) == 0 or int(v) >= 5, (spec.name, row)
    victims = {r[0]: r[-1] for r in csv.reader(io.StringIO(
        (folder / "victims_by_sex.csv").read_text().split("\n", 1)[1]))}
    assert int(victims[ALL]) == result.manifest["figures"]["reconciled_unique"]["victims"]["persons"]
    unodc = (folder / "unodc_glotip.csv").read_text()
    for section in ("Victims detected, by sex and age", "by citizenship", "by form of exploitation",
                    "Persons brought into formal contact", "Persons convicted"):
        assert section in unodc
    assert openpyxl.load_workbook(folder / "unodc_glotip.xlsx").sheetnames == ["GLOTIP"]


def _brute_force_ranges(cells, relations, hidden, threshold):
    """Each hidden cell's least and greatest value over all solutions, one linear program each."""
    import numpy as np
    from scipy.optimize import linprog
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return _ranges(cells, relations, hidden, threshold, np, linprog)


def _ranges(cells, relations, hidden, threshold, np, linprog):
    order = sorted(hidden)
    index = {k: i for i, k in enumerate(order)}
    a_eq, b_eq = [], []
    for total, parts in relations:
        members = list(dict.fromkeys((*parts, total)))
        row, constant = np.zeros(len(order)), 0.0
        for m in members:
            sign = -1.0 if m == total else 1.0
            if m in index:
                row[index[m]] += sign
            else:
                constant += sign * cells[m]
        if row.any():
            a_eq.append(row)
            b_eq.append(-constant)
    bounds = [(1, threshold - 1) if hidden[k] == "primary" else (0, None) for k in order]
    ranges = {}
    for k, i in index.items():
        c = np.zeros(len(order))
        c[i] = 1
        low = linprog(c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs").fun
        top = linprog(-c, A_eq=a_eq, b_eq=b_eq, bounds=bounds, method="highs")
        ranges[k] = (low, np.inf if top.status == 3 else -top.fun)  # 3: unbounded above
    return ranges


def test_no_hidden_cell_is_pinned_by_all_published_relations_together():
    release = build_release(random_finest(4, 30, 10))
    # suppression by single relations alone leaves cells that all relations together pin exactly
    everywhere = public.pinned(release.cells, release.relations,
                               public.suppress(release.cells, release.relations, 5), 5)
    # the smallest population with such cells (relations never cross populations): a quick brute force
    population = min({k[0] for k in everywhere}, key=lambda p: sum(k[0] == p for k in release.cells))
    cells = {k: n for k, n in release.cells.items() if k[0] == population}
    relations = [(t, parts) for t, parts in release.relations if t[0] == population]
    single = public.suppress(cells, relations, 5)
    exposed = public.pinned(cells, relations, single, 5)
    assert exposed and recoverable(public.Release(cells, relations, single, {}, {}, 5)) == []
    ranges = _brute_force_ranges(cells, relations, single, 5)
    assert sorted(exposed) == sorted(k for k, (lo, hi) in ranges.items() if hi - lo < 1e-6)
    for key in exposed:  # and the value they pin is the true count
        assert abs(ranges[key][0] - cells[key]) < 1e-6
    # the release hides more, until no hidden count has a single possible value
    hidden = {k: v for k, v in release.hidden.items() if k[0] == population}
    assert set(single) < set(hidden)
    ranges = _brute_force_ranges(cells, relations, hidden, 5)
    assert all(hi - lo >= 1 - 1e-6 for lo, hi in ranges.values())
