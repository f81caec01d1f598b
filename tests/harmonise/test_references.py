import pyarrow as pa
from hypothesis import given, settings, strategies as st

from pipelines.harmonise.references import normalise_reference


def test_agencies_copies_match_the_police_number():
    police = "045-2019-DIRNTPTIM"
    copies = ["Atestado N° 45-2019 DIRNTPTIM", "nro 045/2019/dirntptim", "N° 045_2019_DIRNTPTIM",
              "Nº. 045 - 2019 - DIRNTPTIM", "ATESTADO POLICIAL NRO. 045-2019-DIRNTPTIM", police]
    out = normalise_reference(pa.array(copies)).to_pylist()
    assert set(out) == {"45-2019-DIRNTPTIM"}


def test_empty_and_prefix_only_become_null():
    assert normalise_reference(pa.array(["", "  ", "-", None, "N°"])).to_pylist() == [None] * 5


def test_carpeta_fiscal():
    out = normalise_reference(pa.array(["Carpeta Fiscal 506014500-2019-123-0", "506014500 2019 123 0"])).to_pylist()
    assert out == ["506014500-2019-123-0"] * 2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text()), max_size=20))
def test_never_crashes_and_is_idempotent(values):
    once = normalise_reference(pa.array(values, pa.string()))
    assert len(once) == len(values)
    assert normalise_reference(once).to_pylist() == once.to_pylist()


def test_contract_patterns_give_one_key_per_case():
    from pipelines.harmonise.references import normalise_reference
    formats = ["AT-{number}-{year}", "CF {number}-{year}", "{year}-{number}"]
    got = normalise_reference(pa.array(["AT-0042-2018", "at 42/2018", "CF 123-2018", "2018-000123", "Atestado N° 045-2019-DIRNTPTIM",
                                        None]), formats).to_pylist()
    assert got == ["42-2018", "42-2018", "123-2018", "123-2018", "45-2019-DIRNTPTIM", None]
    regex = [r"(?P<unit>[A-Z]+)-(?P<number>\d+)-(?P<year>\d{4})"]
    assert normalise_reference(pa.array(["DEPTRATA-0042-2018"]), regex).to_pylist() == ["42-2018-DEPTRATA"]


def test_an_unknown_placeholder_in_a_format_is_refused():
    import pytest

    from pipelines.contracts import compile_patterns
    with pytest.raises(ValueError, match="placeholder"):
        compile_patterns(("{numero}-{year}",))
