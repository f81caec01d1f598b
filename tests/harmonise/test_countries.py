import pyarrow as pa
from hypothesis import given, settings, strategies as st

from pipelines.harmonise import countries


def test_demonyms_names_and_codes():
    values = ["PERUANA", "peruano", "Perú", "VENEZOLANA", "VENEZOLANO", "VENEZUELA", "COLOMBIANA", "ECUATORIANA",
              "BOLIVIANA", "CHILENA", "BRASILERA", "Brasileña", "ARGENTINA", "CHINA", "DOMINICANA", "PARAGUAYA",
              "HAITIANA", "PE", "VEN", "United States", "Alemania"]
    assert countries.to_iso3(pa.array(values)).to_pylist() == [
        "PER", "PER", "PER", "VEN", "VEN", "VEN", "COL", "ECU", "BOL", "CHL", "BRA", "BRA", "ARG", "CHN", "DOM",
        "PRY", "HTI", "PER", "VEN", "USA", "DEU"]


def test_placeholders_are_null_and_not_unmapped():
    arr = pa.array(["SIN DATO", "NA", "No precisa", "", None, "XX", "marciana", "XX"])
    assert countries.to_iso3(arr).to_pylist() == [None] * 8
    assert countries.unmapped_values(arr) == {"XX": 2, "marciana": 1}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=15)), max_size=20))
def test_never_crashes_and_keeps_length(values):
    arr = pa.array(values, pa.string())
    out = countries.to_iso3(arr)
    assert len(out) == len(values)
    assert sum(countries.unmapped_values(arr).values()) <= out.null_count
