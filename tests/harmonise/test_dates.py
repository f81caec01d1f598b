import datetime as dt

import pyarrow as pa
from hypothesis import given, settings, strategies as st

from pipelines.harmonise import dates

D = dt.date


def test_parses_the_declared_format_strictly():
    values, problems = dates.parse_dates(
        pa.array(["01/02/2018", " 1/2/2018 ", "29/02/2020", "31/02/2018", "29/02/2019", "ayer",
                  "2018-02-01", "01/02/18", "", None, "01/02/2018 00:00:00"]),
        ["%d/%m/%Y"],
    )
    assert values.type == pa.date32()
    assert values.to_pylist() == [D(2018, 2, 1), D(2018, 2, 1), D(2020, 2, 29), None, None, None,
                                  None, None, None, None, D(2018, 2, 1)]
    assert problems.to_pylist() == [None, None, None, "invalid_date", "invalid_date", "invalid_date",
                                    "invalid_date", "invalid_date", None, None, None]


def test_first_matching_format_wins():
    values, problems = dates.parse_dates(pa.array(["2018-13-01", "2018-01-13", "13/01/2018"]), ["%Y-%m-%d", "%d/%m/%Y"])
    assert values.to_pylist() == [None, D(2018, 1, 13), D(2018, 1, 13)]
    assert problems.to_pylist() == ["invalid_date", None, None]


def test_typed_dates_pass_through():
    arr = pa.array([D(2020, 1, 1), None], pa.date32())
    values, problems = dates.parse_dates(arr, ["%Y-%m-%d"])
    assert values.to_pylist() == [D(2020, 1, 1), None]
    assert problems.null_count == 2


def test_age_in_years_completed_years_and_leap_days():
    birth = pa.array([D(2000, 2, 29), D(2000, 2, 29), D(2000, 2, 29), D(2000, 6, 15), D(2000, 6, 15), D(2010, 1, 1), None], pa.date32())
    at = pa.array([D(2018, 2, 28), D(2018, 3, 1), D(2020, 2, 29), D(2018, 6, 14), D(2018, 6, 15), D(2009, 12, 31), D(2018, 1, 1)], pa.date32())
    out = dates.age_in_years(birth, at)
    assert out.type == pa.int32()
    assert out.to_pylist() == [17, 18, 20, 17, 18, -1, None]


def test_year():
    assert dates.year(pa.array([D(2021, 3, 31), None], pa.date32())).to_pylist() == [2021, None]
    assert dates.year(pa.nulls(2)).to_pylist() == [None, None]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=12), st.dates().map(lambda d: d.strftime("%d/%m/%Y"))), max_size=20))
def test_never_crashes_length_kept_and_problem_iff_unparsed(values):
    out, problems = dates.parse_dates(pa.array(values, pa.string()), ["%d/%m/%Y"])
    assert len(out) == len(problems) == len(values)
    for v, d, p in zip(values, out.to_pylist(), problems.to_pylist()):
        assert (p is not None) == (d is None and v is not None and v.strip() not in ("", "-") and v.strip().upper() != "NULL")


@settings(max_examples=100, deadline=None)
@given(st.dates(min_value=D(1900, 1, 1)), st.dates(min_value=D(1900, 1, 1)))
def test_age_matches_a_reference_implementation(b, a):
    expected = a.year - b.year - ((a.month, a.day) < (b.month, b.day))
    assert dates.age_in_years(pa.array([b]), pa.array([a])).to_pylist() == [expected]
