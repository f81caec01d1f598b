import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from pipelines.harmonise import names


def rows(table):
    return [(r["given_names"], r["paternal_surname"], r["maternal_surname"]) for r in table.to_pylist()]


def test_surnames_comma_given():
    t = names.split_full_name(pa.array([
        "QUISPE MAMANI, MARIA ELENA",
        "de la cruz  quispe,maría del carmen",
        "QUISPE, ROSA",
        "DEL AGUILA SAN MARTIN, LUIS",
        "ORTEGA Y GASSET, JOSE",
        None, " , ",
    ]), "surnames_comma_given")
    assert rows(t) == [
        ("MARIA ELENA", "QUISPE", "MAMANI"),
        ("MARÍA DEL CARMEN", "DE LA CRUZ", "QUISPE"),
        ("ROSA", "QUISPE", None),
        ("LUIS", "DEL AGUILA", "SAN MARTIN"),
        ("JOSE", "ORTEGA", "GASSET"),
        (None, None, None), (None, None, None),
    ]


def test_surnames_first_without_comma():
    t = names.split_full_name(pa.array(["QUISPE MAMANI MARIA ELENA", "QUISPE MARIA", "QUISPE"]), "surnames_comma_given")
    assert rows(t) == [("MARIA ELENA", "QUISPE", "MAMANI"), ("MARIA", "QUISPE", None), (None, "QUISPE", None)]


def test_given_then_surnames():
    t = names.split_full_name(pa.array([
        "MARIA ELENA QUISPE MAMANI", "María de los Ángeles De La Cruz Quispe", "JUAN  PEREZ", "JUAN",
    ]), "given_then_surnames")
    assert rows(t) == [
        ("MARIA ELENA", "QUISPE", "MAMANI"),
        ("MARÍA DE LOS ÁNGELES", "DE LA CRUZ", "QUISPE"),
        ("JUAN", "PEREZ", None),
        ("JUAN", None, None),
    ]


def test_unknown_style():
    with pytest.raises(ValueError):
        names.split_full_name(pa.array(["X"]), "parts")


def test_split_surnames():
    paternal, maternal = names.split_surnames(pa.array(["DE LA CRUZ QUISPE", "quispe", "QUISPE MAMANI DE PEREZ", None, ""]))
    assert paternal.to_pylist() == ["DE LA CRUZ", "QUISPE", "QUISPE", None, None]
    assert maternal.to_pylist() == ["QUISPE", None, "MAMANI DE PEREZ", None, None]


def test_normalise_name_part_keeps_accents():
    out = names.normalise_name_part(pa.array([" maría  josé ", "QUISPE.", "Ñahui", " ", None]))
    assert out.to_pylist() == ["MARÍA JOSÉ", "QUISPE", "ÑAHUI", None, None]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=40)), max_size=20), st.sampled_from(names.STYLES))
def test_never_crashes_and_keeps_length(values, style):
    t = names.split_full_name(pa.array(values, pa.string()), style)
    assert t.num_rows == len(values)
    assert t.column_names == ["given_names", "paternal_surname", "maternal_surname"]
    p, m = names.split_surnames(pa.array(values, pa.string()))
    assert len(p) == len(m) == len(values)
    assert len(names.normalise_name_part(pa.array(values, pa.string()))) == len(values)
