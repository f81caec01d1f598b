import pyarrow as pa
from hypothesis import given, settings, strategies as st
from stdnum.pe import cui, ruc

from pipelines.harmonise import documents

DNI = "41728563"
DNI_CHECK_DIGIT, DNI_CHECK_LETTER = cui.calc_check_digits(DNI)
WRONG_CHECK = next(c for c in "0123456789" if c != DNI_CHECK_DIGIT)
PERSONAL_RUC = "10" + DNI + ruc.calc_check_digit("10" + DNI)


def norm(types, numbers, restore=False):
    t = documents.normalise_documents(pa.array(types, pa.string()), pa.array(numbers, pa.string()), restore)
    return [(r["document_type"], r["document_number"], r["document_valid"]) for r in t.to_pylist()]


def test_dni():
    assert norm(["01"] * 5, [DNI, f"{DNI}-{DNI_CHECK_LETTER}", DNI + DNI_CHECK_DIGIT, DNI + WRONG_CHECK, "1234"]) == [
        ("01", DNI, True), ("01", DNI, True), ("01", DNI, True), ("01", DNI, False), ("01", "1234", False)]


def test_placeholder_dni_is_invalid():
    assert norm(["01"], ["00000000"]) == [("01", "00000000", False)]


def test_restore_leading_zeros_of_number_and_type():
    assert norm(["1", "01", "01"], ["1234567", "123456", "1234"], restore=True) == [
        ("01", "01234567", True), ("01", "00123456", True), ("01", "1234", False)]
    assert norm(["01"], ["1234567"], restore=False) == [("01", "1234567", False)]
    assert norm(["01"], [f"{DNI}.0"], restore=True) == [("01", DNI, True)]


def test_lost_zeros_restored_on_every_fixed_length_type_the_contract_names():
    # CE, PTP and CPP numbers have 9 digits: a spreadsheet turns 004172856 into 4172856
    assert norm(["04", "23", "26", "04"], ["4172856", "7654321", "0076543", "12345"], restore=True) == [
        ("04", "004172856", True), ("23", "007654321", True), ("26", "000076543", True), ("04", "12345", True)]
    assert norm(["04"], ["4172856"], restore=["01"]) == [("04", "4172856", True)]  # only the types declared
    assert norm(["04", "01"], ["4172856", "4172856"], restore=["04"]) == [("04", "004172856", True),
                                                                          ("01", "4172856", False)]
    assert set(documents.fixed_length_types()) >= {"01", "04", "23", "26"}


def test_placeholders_are_never_valid_and_are_flagged():
    t = documents.normalise_documents(pa.array(["01", "01", "04", None, "01"]),
                                      pa.array(["12345678", "00000000", "111111111", "12345678", DNI]))
    assert t.column("document_valid").to_pylist() == [False, False, False, None, True]
    assert t.column("document_placeholder").to_pylist() == [True, True, True, True, False]


def test_ruc():
    assert norm(["06", "06"], [PERSONAL_RUC, PERSONAL_RUC[:-1] + str((int(PERSONAL_RUC[-1]) + 1) % 10)]) == [
        ("06", PERSONAL_RUC, True), ("06", PERSONAL_RUC[:-1] + str((int(PERSONAL_RUC[-1]) + 1) % 10), False)]
    assert documents.dni_from_personal_ruc(pa.array([PERSONAL_RUC, "20100047218", None, "x"])).to_pylist() == [DNI, None, None, None]


def test_other_types():
    assert norm(["04", "04", "07"], ["001234567", "ABC-1234567890", "ab 123456"]) == [
        ("04", "001234567", True), ("04", "ABC1234567890", False), ("07", "AB123456", True)]


def test_venezuelan_cedula():
    assert norm(["24", "24", "24", None], ["V-41.728.563", "V41728563", "41.728.563", "V-41.728.563"]) == [
        ("24", DNI, True)] * 4


def test_untyped_and_unknown_types_are_not_validated():
    assert norm([None, "99", None, "01"], [DNI, DNI, None, None]) == [
        (None, DNI, None), (None, DNI, None), (None, None, None), ("01", None, None)]


def test_looks_like_dni():
    assert documents.looks_like_dni(pa.array(["12.345.678", "1234", None])).to_pylist() == [True, False, None]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["01", "1", "04", "06", "07", "24", "99", ""]), st.text(max_size=3)),
                          st.one_of(st.none(), st.text(max_size=15), st.from_regex(r"[VE]?-?\d{5,11}[A-K]?", fullmatch=True))),
                max_size=20),
       st.booleans())
def test_never_crashes_and_keeps_length(pairs, restore):
    types = pa.array([p[0] for p in pairs], pa.string())
    numbers = pa.array([p[1] for p in pairs], pa.string())
    t = documents.normalise_documents(types, numbers, restore)
    assert t.num_rows == len(pairs)
    for r in t.to_pylist():
        if r["document_valid"] is not None:
            assert r["document_type"] is not None and r["document_number"] is not None
        if r["document_valid"] and r["document_type"] == "01":
            assert len(r["document_number"]) == 8 and r["document_number"].isdigit()
