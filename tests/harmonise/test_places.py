import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

from pipelines.harmonise import places


def test_known_inei_ubigeos():
    codes = places.known_inei_ubigeos()
    assert len(codes) == 1893
    assert {"150101", "070101", "240101"} <= codes
    assert all(len(c) == 6 and c.isdigit() for c in codes)


def test_inei_codes_pass_and_zeros_are_restored():
    t = places.to_inei_ubigeo(pa.array(["150101", "70101", "999999", None, "  "]), "INEI", restore_leading_zeros=True)
    assert t.column_names == ["ubigeo", "ubigeo_raw", "ubigeo_source_list", "department", "place_level"]
    assert t.column("ubigeo").to_pylist() == ["150101", "070101", None, None, None]
    assert t.column("ubigeo_raw").to_pylist() == ["150101", "70101", "999999", None, None]
    assert t.column("ubigeo_source_list").to_pylist() == ["INEI", "INEI", "INEI", None, None]
    assert t.column("department").to_pylist() == ["15", "07", None, None, None]


def test_zeros_not_restored_unless_asked():
    t = places.to_inei_ubigeo(pa.array(["70101"]), "INEI")
    assert t.column("ubigeo").to_pylist() == [None]


def test_integer_input_from_jsonl():
    t = places.to_inei_ubigeo(pa.array([70101, 150101]), "INEI", restore_leading_zeros=True)
    assert t.column("ubigeo").to_pylist() == ["070101", "150101"]


def test_reniec_to_inei():
    # RENIEC: Callao 24, Lima 14, Cusco 07; Loreto's Putumayo moved to its own INEI province
    t = places.to_inei_ubigeo(pa.array(["240101", "140101", "070101", "150107"]), "RENIEC")
    assert t.column("ubigeo").to_pylist() == ["070101", "150101", "080101", "160801"]
    assert t.column("ubigeo_raw").to_pylist() == ["240101", "140101", "070101", "150107"]
    assert t.column("department").to_pylist() == ["07", "15", "08", "16"]


def test_places_are_kept_at_the_level_given():
    t = places.to_inei_ubigeo(pa.array(["150100", "1501", "150000", "15", "150101", "159900", "99"]), "INEI")
    assert t.column("ubigeo").to_pylist() == ["150100", "150100", "150000", "150000", "150101", None, None]
    assert t.column("place_level").to_pylist() == ["province", "province", "department", "department", "district",
                                                   None, None]
    assert t.column("department").to_pylist() == ["15", "15", "15", "15", "15", None, None]


def test_reniec_provinces_and_departments_are_translated():
    # RENIEC numbers Callao 24 and Lima 14; INEI 07 and 15
    t = places.to_inei_ubigeo(pa.array(["240100", "24", "140100", "1401", "140000"]), "RENIEC")
    assert t.column("ubigeo").to_pylist() == ["070100", "070000", "150100", "150100", "150000"]


def test_a_feed_mixing_lists_takes_the_first_list_that_knows_the_code():
    t = places.to_inei_ubigeo(pa.array(["240101", "070101", "999999"]), ["RENIEC", "INEI"])
    # 070101 is Cusco's district at RENIEC (listed first), so it is read as RENIEC
    assert t.column("ubigeo").to_pylist() == ["070101", "080101", None]
    assert t.column("ubigeo_source_list").to_pylist() == ["RENIEC", "RENIEC", "RENIEC"]
    t = places.to_inei_ubigeo(pa.array(["010513"]), ["RENIEC", "INEI"])  # a code only the INEI list has
    assert t.column("ubigeo").to_pylist() == ["010513"]
    assert t.column("ubigeo_source_list").to_pylist() == ["INEI"]


def test_crosswalk_is_one_to_one_and_nearly_complete():
    for source in ("RENIEC", "SUNAT"):
        cw = places.crosswalk_to_inei(source)
        assert len(set(cw.values())) == len(cw)
        assert set(cw.values()) <= places.known_inei_ubigeos()
        assert len(cw) >= 1830


def test_unknown_list():
    with pytest.raises(ValueError):
        places.to_inei_ubigeo(pa.array(["150101"]), "XYZ")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=8), st.from_regex(r"\d{5,6}", fullmatch=True)), max_size=20),
       st.sampled_from(["INEI", "RENIEC"]), st.booleans())
def test_never_crashes_and_keeps_length(values, source, restore):
    t = places.to_inei_ubigeo(pa.array(values, pa.string()), source, restore)
    assert t.num_rows == len(values)
    # a place at any level ("1" with restored zeros is department 01, kept at that level)
    assert all(u in places.known_inei_places() for u in t.column("ubigeo").to_pylist() if u is not None)
