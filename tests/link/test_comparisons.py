"""Every comparison level, on pairs written the way Peruvian agencies write people."""

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.link import comparisons
from pipelines.link.settings import Comparison
from tests.link.conftest import pair

D = dt.date


def level(kind, left, right, **spec):
    a, b = pair(left, right)
    return int(comparisons.COMPARISONS[kind](a, b, Comparison(name=kind, type=kind, **spec))[0])


@pytest.mark.parametrize("change,expected", [
    ({}, 6),
    ({"paternal_surname": "Quispe", "maternal_surname": "de la Cruz"}, 6),  # case and accents fold
    ({"paternal_surname": "QISPE", "maternal_surname": "DE LA CRUS"}, 5),  # the same sounds, spelled otherwise
    ({"paternal_surname": "KISPE", "maternal_surname": "CRUZ"}, 5),  # Quechua spelling, particle dropped
    ({"paternal_surname": "DE LA CRUZ", "maternal_surname": "QUISPE"}, 5),  # swapped order
    ({"maternal_surname": None}, 4),  # missing maternal surname
    ({"paternal_surname": "DE LA CRUZ", "maternal_surname": None}, 4),  # only the maternal surname kept
    ({"given_names": "QUISPE", "paternal_surname": "MARÍA ELENA"}, 4),  # given names and surname swapped between fields
    ({"paternal_surname": "QUISPER", "maternal_surname": "DE LA CRIZ"}, 3),  # a typo in each
    ({"maternal_surname": "MAMANI"}, 2),  # paternal exact, maternal different
    ({"paternal_surname": "HUAMAN", "maternal_surname": "FLORES"}, 0),
    ({"paternal_surname": None, "maternal_surname": None}, -1),
])
def test_surnames(person, change, expected):
    assert level("surnames", person, {**person, **change}) == expected


@pytest.mark.parametrize("change,expected", [
    ({}, 6),
    ({"given_names": "MARIA HELENA"}, 5),  # a silent h: the same sounds
    ({"given_names": "ELENA MARÍA"}, 5),  # order of the given names
    ({"given_names": "MARIA"}, 4), ({"given_names": "ELENA"}, 4),  # compound given name shortened
    ({"given_names": "MARIE ELENA"}, 3), ({"given_names": "MARÍA ELEMA"}, 3),  # typos
    ({"given_names": "MAIRA"}, 2), ({"given_names": "ELENA MARIA ROSA"}, 4),  # shortened with a typo; order-free
    ({"given_names": "ELEAN MRAIA"}, 2),  # a typo in each word, the order changed
    ({"given_names": "MARÍA LUISA"}, 1),  # the first name alike, the other different: a sister
    ({"given_names": "ROSA"}, 0), ({"given_names": "LUISA"}, 0), ({"given_names": None}, -1),
])
def test_given_names(person, change, expected):
    assert level("given_names", person, {**person, **change}) == expected


@pytest.mark.parametrize("one,other,expected", [
    ("ANA", "AFA", 3), ("ANA", "AA", 3),  # one keystroke off, even where the sounds are two apart
    ("SONIA", "SONAI JESSICA", 2), ("ROAS", "KARINA ROSA", 2), ("LZ", "ANA LUZ", 2),  # shortened, with a typo
    ("MARIA ELENA", "MARIA LUISA", 1), ("ANA", "ROSA", 0), ("LUZ", "ANA ROSA", 0),  # sisters
])
def test_given_names_typos_against_siblings(person, one, other, expected):
    assert level("given_names", {**person, "given_names": one}, {**person, "given_names": other}) == expected


@pytest.mark.parametrize("one,other", [("JUAN", "JUANA"), ("JUAN MIGUEL", "JUANA"), ("MARIO", "MARIA"), ("ERIK", "ERIKA")])
def test_a_gendered_ending_is_a_brother_and_a_sister_unless_the_sex_agrees(person, one, other):
    brother, sister = {**person, "given_names": one, "sex": "MALE"}, {**person, "given_names": other}
    assert level("given_names", brother, sister) == 1  # the first names alike: refused as siblings
    assert level("given_names", {**brother, "sex": "FEMALE"}, sister) in (2, 3)  # ERIKA keyed ERIK: a typo
    assert level("given_names", {**person, "given_names": "MARI"}, {**person, "given_names": "MARIA"}) == 3


def _levels(kind, rows):
    """Each pair (row 2i, row 2i+1)'s level on plain arrays and on dictionary-encoded ones as the
    linker compares them (one dictionary shared by both sides)."""
    import pyarrow as pa

    from pipelines.link.prepare import comparison_table
    from tests.link.conftest import records

    plain = comparison_table(records(rows))
    sides = [pa.array(range(side, len(rows), 2)) for side in (0, 1)]
    return [comparisons.COMPARISONS[kind](*(table.take(side) for side in sides), {"type": kind}).tolist()
            for table in (plain, comparisons.encode_strings(plain))]


def test_the_same_word_in_two_different_names_is_not_a_gendered_ending(person):
    # MARIA of MARIA ELENA and of MARIA ROSA ELNA is one word, whatever the two names' codes: with
    # the sex unknown on one side, this is a compound name shortened with a typo, not siblings
    one, other = {**person, "sex": None}, {**person, "given_names": "MARIA ROSA ELNA"}
    brother = {**person, "given_names": "MARIO ELNA ROSA", "sex": "MALE"}
    plain, encoded = _levels("given_names", [one, other, person, brother])
    assert plain == encoded == [2, 1]


NAMES = ["MARIA ELENA", "MARIA ROSA ELNA", "ANA CARMEN RSOA", "ANA ROSA", "MARIO", "JUAN", "JUANA", "ANA LUZ", "LZ",
         "ROSA", "ROAS ANA", "ERIK", "ERIKA MARIA", "SONIA", "SONAI JESSICA", "M. ELENA", "ELENA MARIA", None]


@given(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(NAMES),
                          st.sampled_from(["FEMALE", "MALE", None]), st.sampled_from(["FEMALE", "MALE", None])),
                min_size=30, max_size=60))  # many pairs an example: one table per example is the cost
@settings(max_examples=15, deadline=None)
def test_levels_do_not_depend_on_the_encoding(pairs):
    rows = [{"record_uid": f"pnp:{i}", "agency": "PNP", "feed_id": "pnp_victims", "given_names": name,
             "paternal_surname": "QUISPE", "sex": sex}
            for i, (a, b, sa, sb) in enumerate(pairs) for name, sex in ((a, sa), (b, sb))]
    plain, encoded = _levels("given_names", rows)
    assert plain == encoded


SETTINGS_COMPARISONS = [
    Comparison(name="surnames", type="surnames"), Comparison(name="given_names", type="given_names"),
    Comparison(name="place", type="ubigeo", column="ubigeo", implied_by="case_reference"),
    Comparison(name="case_reference", type="any_exact", columns=("police_report_ref", "prosecutor_case_ref")),
]


@pytest.mark.parametrize("change", [
    {"given_names": "QUISPE DE LA CRUZ", "paternal_surname": "MARÍA", "maternal_surname": "ELENA"},
    {"given_names": "DE LA CRUZ QUISPE", "paternal_surname": "MARIA", "maternal_surname": "ELENA"},  # and swapped
    {"given_names": "QUISPE", "paternal_surname": "MARIA", "maternal_surname": None},  # and one surname missing
    {"given_names": "QIUSPE DE LA CRUZ", "paternal_surname": "MARÍA", "maternal_surname": "ELENA"},  # and a typo
])
def test_given_names_and_surnames_entered_in_each_others_fields_are_compared_in_place(person, change):
    a, b = pair(person, {**person, **change})
    levels = comparisons.compare(a, b, SETTINGS_COMPARISONS)
    assert levels["given_names"][0] >= 3 and levels["surnames"][0] >= 3


def test_a_crossed_record_is_put_back_whichever_side_it_is(person):
    # one record entered crossed with a surname lost, the other with a typo in a surname: in either
    # order both names agree (the sibling guard must not read the surnames as different given names)
    crossed = {**person, "given_names": "DE LA CRUZ", "paternal_surname": "MARÍA", "maternal_surname": "ELENA"}
    for typo in ({**person, "paternal_surname": "RAMIREZ", "maternal_surname": "DE LA CRIZ"},
                 {**person, "paternal_surname": "QUIPSE"}):
        for left, right in ((crossed, typo), (typo, crossed)):
            levels = comparisons.compare(*pair(left, right), SETTINGS_COMPARISONS)
            assert levels["given_names"][0] >= 2 and levels["surnames"][0] >= 1


def test_a_brother_entered_crossed_is_not_read_as_his_sister(person):
    # KEVIN DANIEL QUISPE DE LA CRUZ entered crossed against his sister: no reading agrees on both
    brother = {**person, "given_names": "QUISPE DE LA CRUZ", "paternal_surname": "KEVIN", "maternal_surname": "DANIEL",
               "sex": "MALE"}
    levels = comparisons.compare(*pair(person, brother), SETTINGS_COMPARISONS)
    assert levels["given_names"][0] <= 1


def test_a_crossed_record_with_a_typo_in_the_name_it_shares_is_found(person):
    crossed = {**person, "given_names": "QUISPE DE LA CRUZ", "paternal_surname": "MRAIA", "maternal_surname": "ELENA"}
    levels = comparisons.compare(*pair(person, crossed), SETTINGS_COMPARISONS)
    assert levels["given_names"][0] >= 2 and levels["surnames"][0] >= 4


@pytest.mark.parametrize("written", ["MARÍA E.", "M. ELENA", "M ELENA", "MARIA-ELENA", "QUISPE DE LA CRUZ MARÍA ELENA"])
def test_initials_hyphens_and_a_whole_name_in_one_field(person, written):
    one_field = {"paternal_surname": None, "maternal_surname": None} if "QUISPE" in written else {}
    assert level("given_names", person, {**person, "given_names": written, **one_field}) >= 2


def test_a_hyphen_joins_the_words_of_a_compound_name(person):
    from pipelines.link.prepare import comparison_table
    from tests.link.conftest import records

    table = comparison_table(records([{**person, "maternal_surname": "DE-LA-CRUZ", "given_names": "MARÍA  ELENA"}]))
    assert table.column("maternal").to_pylist() == ["DE LA CRUZ"] and table.column("given").to_pylist() == ["MARIA ELENA"]
    assert table.column("name_tokens").to_pylist() == [["ILINA", "KISPI", "KRUS", "MARIA"]]


def test_place_says_nothing_where_the_case_reference_agrees(person):
    a, b = pair(person, {**person, "ubigeo": "170101"})
    assert comparisons.compare(a, b, SETTINGS_COMPARISONS)["place"][0] == -1
    a, b = pair(person, {**person, "ubigeo": "170101", "police_report_ref": "AT-2018-99"})
    assert comparisons.compare(a, b, SETTINGS_COMPARISONS)["place"][0] == 2


@pytest.mark.parametrize("change,expected", [
    ({}, 3),
    ({"document_type": "06", "document_number": "10101174102"}, 3),  # the DNI inside a personal RUC
    ({"document_number": "10117401"}, 2),  # transposition
    ({"document_number": "10117419"}, 2),  # one digit wrong
    ({"document_number": "44556677"}, 0),
    ({"document_number": None, "document_type": None}, -1),
])
def test_document(person, change, expected):
    assert level("document", person, {**person, **change}) == expected


@pytest.mark.parametrize("change,expected", [
    ({}, 4),
    ({"birth_date": D(2001, 5, 4)}, 3),  # day and month swapped
    ({"birth_date": D(2002, 4, 5)}, 2),  # year off by one
    ({"birth_date": D(2001, 1, 1)}, 2),  # the birth year only, recorded as 1 January
    ({"birth_date": None, "age_at_event": 17}, 1),  # age only, consistent with the birth date
    ({"birth_date": None, "age_at_event": 30}, 0),
    ({"birth_date": D(1980, 1, 1)}, 0),
    ({"birth_date": None, "age_at_event": None}, -1),
])
def test_birth_date(person, change, expected):
    assert level("birth_date", person, {**person, **change}) == expected


def test_exact_ubigeo_event_date_and_references(person):
    assert level("exact", person, person, column="sex") == 1
    assert level("exact", person, {**person, "sex": "MALE"}, column="sex") == 0
    assert level("exact", person, {**person, "sex": None}, column="sex") == -1
    assert level("ubigeo", person, {**person, "ubigeo": "170102"}, column="ubigeo") == 3
    assert level("ubigeo", person, {**person, "ubigeo": "170101"}, column="ubigeo") == 2
    assert level("ubigeo", person, {**person, "ubigeo": "171001"}, column="ubigeo") == 1
    assert level("ubigeo", person, {**person, "ubigeo": "150101"}, column="ubigeo") == 0
    days = {"column": "event_date", "days": (30, 365)}
    assert level("date_distance", person, {**person, "event_date": D(2018, 6, 1)}, **days) == 2
    assert level("date_distance", person, {**person, "event_date": D(2018, 12, 1)}, **days) == 1
    assert level("date_distance", person, {**person, "event_date": D(2020, 1, 1)}, **days) == 0
    refs = {"columns": ("police_report_ref", "prosecutor_case_ref")}
    assert level("any_exact", person, person, **refs) == 1
    assert level("any_exact", person, {**person, "police_report_ref": "AT-2018-46"}, **refs) == 0
    assert level("any_exact", person, {**person, "police_report_ref": None}, **refs) == -1
    jw = {"column": "paternal", "thresholds": (0.92, 0.8)}
    assert level("jaro_winkler", person, person, **jw) == 3
    assert level("jaro_winkler", person, {**person, "paternal_surname": "QUISPEE"}, **jw) == 2


def test_every_comparison_type_documents_its_levels():
    for kind in comparisons.COMPARISONS:
        assert set(comparisons.LEVELS[kind]) >= {0}, kind


WORDS = ["MARIA ELENA", "JUAN", "ÑUSTA ROSA DEL CARMEN", "A B C D E F", "", None, "E.", "ANA  MARIA", " JUAN",
         "ROSA ", "ANA\tMARIA"]


@pytest.mark.parametrize("values", [WORDS[:7], WORDS])  # spaced as prepared; irregular white space too
def test_the_word_tables_read_the_words_as_one_expression_per_position_does(values):
    import pyarrow as pa
    import pyarrow.compute as pc

    array = pa.array(values, pa.string())
    words, at = comparisons._positions(array)
    for k, positions in enumerate(at):
        read = pc.take(words, pa.array(positions, mask=positions < 0))
        assert read.to_pylist() == comparisons._word(array, k).to_pylist()


def test_first_letters_and_initials_are_read_from_the_bytes():
    import pyarrow as pa

    array = pa.array(WORDS + ["€URO", "😀 X"], pa.string()).slice(1)
    texts = array.to_pylist()
    assert comparisons._initials(array).tolist() == [ord(v[0]) if v else 0 for v in texts]
    assert comparisons._first_letters(array).tolist() == [
        sum({1 << (ord(w[0]) % 63) for w in (v or "").split()}) for v in texts]


def test_results_per_dictionary_are_kept_for_the_same_values_only_within_a_scope():
    import pyarrow as pa

    from pipelines.link import arrays

    calls = []
    def count(values):
        calls.append(len(values))
        return len(values)
    names = pa.array(["ANA", "JUAN"])
    with arrays.kept_per_value():
        assert arrays._per_value(names, "test-count", count) == 2
        with arrays.kept_per_value():
            assert arrays._per_value(names, "test-count", count) == 2  # kept
        assert arrays._per_value(names, "test-count", count) == 2  # kept until the outermost scope ends
        assert arrays._per_value(names.slice(1), "test-count", count) == 1  # other values (a slice): computed
        assert arrays._per_value(pa.array(["ANA", "JUAN"]), "test-count", count) == 2  # equal values elsewhere
    assert arrays._per_value(names, "test-count", count) == 2  # outside any scope: computed, not kept
    assert calls == [2, 1, 2, 2]
