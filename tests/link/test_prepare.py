"""The comparison table's name tokens: spelled by sound, order-free, particles out."""

import datetime as dt

import pyarrow as pa
import pytest

from pipelines.link.names import name_tokens, phonetic
from pipelines.link.prepare import comparison_table
from tests.link.conftest import records


@pytest.mark.parametrize("spellings", [
    ["QUISPE", "QISPE", "KISPE", "QUISPI"],  # Quechua spellings and vowels
    ["HUAMAN", "GUAMAN", "WAMAN"],  # hua / gua / wa
    ["CCORI", "CORI", "KORI", "QORI"],  # cc / c / k / q
    ["VILCA", "BILCA", "VILKA"],  # v / b, c / k
    ["LLANOS", "YANOS"],  # ll / y
    ["SANCHEZ", "SANCHES", "ZANCHEZ"],  # s / z
    ["HILARIO", "ILARIO"],  # silent h
    ["GERMAN", "JERMAN"],  # g / j before e, i
    ["MAMANI", "MAMANY"],  # final y
])
def test_one_sound_one_token(spellings):
    assert len(set(phonetic(pa.array(spellings)).to_pylist())) == 1


@pytest.mark.parametrize("different", [["GUILLERMO", "JUILLERMO"], ["CHAVEZ", "CAVEZ"], ["ROSA", "ROSSANA"]])
def test_different_sounds_stay_apart(different):
    assert len(set(phonetic(pa.array(different)).to_pylist())) == 2


def test_name_tokens_are_order_free_without_particles():
    tokens = name_tokens(pa.array(["MARIA DEL CARMEN", "DE LA CRUZ", None]), pa.array(["DE LA CRUZ", "CARMEN", None]),
                         pa.array(["QUISPE", "MARIA QISPE", None])).to_pylist()
    assert tokens[0] == tokens[1] == ["KARMIN", "KISPI", "KRUS", "MARIA"]
    assert tokens[2] == []


def test_mojibake_names_are_read_back_and_age_only_records_get_both_possible_years():
    base = {"record_uid": "a", "given_names": "JOSÉ", "paternal_surname": "NÚÑEZ", "event_date": dt.date(2018, 3, 3)}
    table = comparison_table(records([
        {**base, "birth_date": dt.date(2000, 5, 1)},
        {**base, "record_uid": "b", "given_names": "JOSÃ‰", "paternal_surname": "NÃšÃ‘EZ", "age_at_event": 17},
    ]))
    assert table.column("given").to_pylist() == ["JOSE", "JOSE"]
    assert table.column("paternal").to_pylist() == ["NUNEZ", "NUNEZ"]
    years = table.column("name_token_years").to_pylist()
    assert years[0] == ["JUSI|2000", "NUNIS|2000"]
    assert years[1] == ["JUSI|2000", "JUSI|2001", "NUNIS|2000", "NUNIS|2001"]


def test_given_words_count_the_given_names_without_particles():
    table = comparison_table(records([{"record_uid": str(k), "given_names": g, "paternal_surname": "QUISPE",
                                       "event_date": dt.date(2018, 3, 3)}
                                      for k, g in enumerate(["MARÍA DEL CARMEN", "CARMEN", "ROSA-MARÍA", None])]))
    assert table.column("given_words").to_pylist() == [2, 1, 2, None]
