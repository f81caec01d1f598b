"""Several documents per person: any shared valid document agrees, two valid documents of a same type
that differ disagree, documents of different types are a level of their own, placeholders never identify anyone."""

import pytest

from pipelines.link import comparisons, linker
from pipelines.link.settings import Comparison
from tests.link.conftest import pair

DNI_A, DNI_B, PAS = "41728563", "10117410", "AB123456"
DOCUMENTS = [Comparison(name="document", type="document_set")]


def level(left: dict, right: dict) -> int:
    return int(comparisons.compare(*pair(left, right), DOCUMENTS)["document"][0])


def rec(uid, docs, main=None):
    main = main or (docs[0] if docs else None)
    return {"record_uid": uid, "documents": [f"{t}:{n}" for t, n in docs],
            "document_type": main[0] if main else None, "document_number": main[1] if main else None,
            "document_valid": True if main else None}


@pytest.mark.parametrize("left,right,expected", [
    ([("01", DNI_A), ("07", PAS)], [("07", PAS)], 3),               # the passport is shared
    ([("07", PAS), ("01", DNI_A)], [("01", DNI_A)], 3),             # a shared DNI that is not the main document
    ([("01", DNI_A)], [("01", DNI_B)], 0),                          # two valid DNIs: two people
    ([("01", DNI_A), ("07", PAS)], [("01", DNI_B), ("07", PAS)], 3),  # a shared document outweighs
    ([("01", DNI_A)], [("07", PAS)], 1),                            # different types: no contradiction
    ([("01", DNI_A)], [("01", DNI_A[:-2] + DNI_A[-1] + DNI_A[-2])], 2),  # a transposition
    ([], [("01", DNI_A)], -1),
])
def test_document_sets(left, right, expected):
    assert level(rec("a", left), rec("b", right)) == expected


def test_only_documents_kept_for_life_contradict_each_other():
    spec = [Comparison(name="document", type="document_set", for_life_types=("01", "06"))]
    def at(left, right):
        return int(comparisons.compare(*pair(rec("a", left), rec("b", right)), spec)["document"][0])

    assert at([("01", DNI_A)], [("01", DNI_B)]) == 0                  # two DNIs: two people
    assert at([("07", PAS)], [("07", "ZX998877")]) == 1               # a passport renewed under a new number
    assert at([("04", "001234567")], [("04", "009876543")]) == 1      # a foreigner's card issued again
    assert at([("07", PAS), ("01", DNI_A)], [("07", "ZX998877"), ("01", DNI_B)]) == 0  # the DNIs still differ
    assert at([("07", PAS)], [("07", PAS)]) == 3


def test_placeholders_never_agree():
    a = {"record_uid": "a", "document_type": "01", "document_number": "12345678", "document_valid": False}
    b = dict(a, record_uid="b")
    assert level(a, b) == -1


def test_the_shipped_settings_compare_document_sets():
    settings = linker.load_settings()
    assert {c.name: c.type for c in settings.comparisons}["document"] == "document_set"
    assert "documents" in comparisons.columns_for(DOCUMENTS[0])


def test_pairs_with_one_and_with_several_documents_in_one_batch():
    from pipelines.link.prepare import comparison_table
    from tests.link.conftest import records
    left = [rec("a", [("01", DNI_A)]), rec("b", [("01", DNI_A), ("07", PAS)]), rec("c", [("01", DNI_A)])]
    right = [rec("d", [("01", DNI_A)]), rec("e", [("07", PAS)]), rec("f", [("07", PAS), ("01", DNI_B)])]
    table = comparison_table(records(left + right))
    levels = comparisons.compare(table.slice(0, 3), table.slice(3, 3), DOCUMENTS)["document"]
    assert levels.tolist() == [3, 3, 0]
