import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings, strategies as st

from pipelines.core import vector


def test_clean_turns_placeholders_into_null():
    arr = pa.array([" a ", "", "   ", "NULL", "null", "-", None, "x-y"])
    assert vector.clean(arr).to_pylist() == ["a", None, None, None, None, None, None, "x-y"]


def test_clean_accepts_numbers_and_chunked_and_dictionary():
    assert vector.clean(pa.array([1, None, 30])).to_pylist() == ["1", None, "30"]
    chunked = pa.chunked_array([["a", " b"], [None, "c "]])
    assert vector.clean(chunked).to_pylist() == ["a", "b", None, "c"]
    dic = pa.array(["x", "x", " y"]).dictionary_encode()
    assert vector.clean(dic).to_pylist() == ["x", "x", "y"]


def test_as_string_drops_whole_float_suffix():
    assert vector.as_string(pa.array([17.0, 17.5, None])).to_pylist() == ["17", "17.5", None]
    assert vector.as_string(pa.nulls(2)).type == pa.string()


def test_fold():
    arr = pa.array(["Explotación  sexual", "ñandú", "O'Brien", " a,b.c ", "129-A", "Nº 12", None])
    assert vector.fold(arr).to_pylist() == ["EXPLOTACION SEXUAL", "NANDU", "OBRIEN", "A B C", "129-A", "N 12", None]


def test_map_unique_calls_once_per_distinct_value():
    calls = []

    def fn(v):
        calls.append(v)
        return v.lower()

    arr = pa.array(["A", "B", "A", None, "A", "B"])
    out = vector.map_unique(arr, fn, pa.string())
    assert out.to_pylist() == ["a", "b", "a", None, "a", "b"]
    assert sorted(calls) == ["A", "B"]


def test_map_unique_many_and_arrow():
    t = vector.map_unique_many(pa.array(["ab", None, "ab"]), lambda v: (v[0], len(v)), {"first": pa.string(), "n": pa.int32()})
    assert t.column("first").to_pylist() == ["a", None, "a"]
    assert t.column("n").to_pylist() == [2, None, 2]
    out = vector.map_unique_arrow(pa.array(["x", "y", "x"]), pc.utf8_upper)
    assert out.to_pylist() == ["X", "Y", "X"]


def test_value_counts_and_constant():
    assert vector.value_counts(pa.array(["a", "b", "a", None])) == {"a": 2, "b": 1}
    assert vector.value_counts(pa.array([], pa.string())) == {}
    assert vector.constant("01", 3, pa.string()).to_pylist() == ["01"] * 3
    assert vector.constant(None, 2, pa.string()).to_pylist() == [None, None]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text()), max_size=30))
def test_fold_and_clean_never_crash_and_keep_length(values):
    arr = pa.array(values, pa.string())
    assert len(vector.fold(arr)) == len(values)
    assert len(vector.clean(arr)) == len(values)


def test_distinct_across_takes_several_columns_together_and_keeps_their_type_when_empty():
    pairs = pa.table({"left_uid": ["a", "b", "a"], "right_uid": ["b", "c", "d"]})
    assert sorted(vector.distinct_across(pairs, ("left_uid", "right_uid")).to_pylist()) == ["a", "b", "c", "d"]
    # a table decoded from an empty Arrow stream has columns with no chunks
    empty = pa.Table.from_batches([], pa.schema([("left_uid", pa.large_string()), ("right_uid", pa.large_string())]))
    out = vector.distinct_across(empty, ("left_uid", "right_uid"))
    assert out.type == pa.large_string() and len(out) == 0
