import pyarrow as pa
from hypothesis import given, settings, strategies as st

from pipelines.harmonise import ages


def test_parse_ages():
    values, problems = ages.parse_ages(pa.array(["17", "17 años", "17 AÑOS", " 9 ", "17.0", "8 meses", "0",
                                                  "111", "-3", "abc", "17.5", "", None]))
    assert values.type == pa.int32()
    assert values.to_pylist() == [17, 17, 17, 9, 17, 0, 0, None, None, None, None, None, None]
    assert problems.to_pylist() == [None] * 7 + ["invalid_age"] * 4 + [None, None]


def test_numeric_input():
    values, problems = ages.parse_ages(pa.array([5, None, 200]))
    assert values.to_pylist() == [5, None, None]
    assert problems.to_pylist() == [None, None, "invalid_age"]
    values, _ = ages.parse_ages(pa.array([17.0, None]))
    assert values.to_pylist() == [17, None]


def test_groupings():
    a = pa.array([0, 8, 9, 13, 14, 17, 18, 20, 21, 29, 30, 38, 39, 47, 48, 110, None], pa.int32())
    assert ages.age_groups(a).to_pylist() == ["UNDER_14"] * 4 + ["14_17"] * 2 + ["18_PLUS"] * 10 + [None]
    assert ages.child_adult(a).to_pylist() == ["CHILD"] * 6 + ["ADULT"] * 10 + [None]
    assert ages.age_broad(a).to_pylist() == ["0-8", "0-8", "9-17", "9-17", "9-17", "9-17", "18-20", "18-20",
                                             "21-23", "27-29", "30-38", "30-38", "39-47", "39-47", "48+", "48+", None]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=10), st.integers(-5, 200).map(str)), max_size=20))
def test_never_crashes_and_bounds_hold(values):
    out, problems = ages.parse_ages(pa.array(values, pa.string()))
    assert len(out) == len(problems) == len(values)
    assert all(0 <= v <= 110 for v in out.to_pylist() if v is not None)
    for v, p in zip(out.to_pylist(), problems.to_pylist()):
        assert not (v is not None and p is not None)
