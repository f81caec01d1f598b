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
