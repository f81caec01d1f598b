import pyarrow as pa
import pytest

from pipelines.harmonise.lookups import apply_lookup


def test_keys_compared_after_folding():
    mapped, unmapped = apply_lookup(
        pa.array(["Explotación  sexual", "explotacion sexual", "TRABAJO FORZOSO", "x", "x", None, ""]),
        {"EXPLOTACION SEXUAL": "SEXUAL_EXPLOITATION", "Trabajo forzoso": "FORCED_LABOUR"},
    )
    assert mapped.to_pylist() == ["SEXUAL_EXPLOITATION", "SEXUAL_EXPLOITATION", "FORCED_LABOUR", None, None, None, None]
    assert unmapped == {"x": 2}


def test_none_value_is_known_and_null():
    mapped, unmapped = apply_lookup(pa.array(["SIN DOCUMENTO", "DNI"]), {"DNI": "01", "SIN DOCUMENTO": None})
    assert mapped.to_pylist() == [None, "01"]
    assert unmapped == {}


def test_boolean_values_give_boolean_output():
    mapped, _ = apply_lookup(pa.array(["detenido", "No detenido", "libre"]), {"DETENIDO": True, "NO DETENIDO": False, "LIBRE": False})
    assert mapped.type == pa.bool_()
    assert mapped.to_pylist() == [True, False, False]


def test_numeric_codes_and_integer_keys():
    mapped, _ = apply_lookup(pa.array([1, 2, None]), {1: "MALE", "2": "FEMALE"})
    assert mapped.to_pylist() == ["MALE", "FEMALE", None]


def test_bad_mappings_are_rejected():
    with pytest.raises(ValueError):
        apply_lookup(pa.array(["a"]), {"A": "X", "a": "Y"})
    with pytest.raises(ValueError):
        apply_lookup(pa.array(["a"]), {"A": "X", "B": True})
    with pytest.raises(ValueError):
        apply_lookup(pa.array(["a"]), {False: "X"})  # YAML's unquoted NO
