import datetime as dt

import pyarrow as pa
from hypothesis import given, settings, strategies as st

from pipelines.harmonise import offences

BEFORE = dt.date(2019, 6, 1)
AFTER = dt.date(2022, 6, 1)


def run(articles, dates):
    t = offences.canonical_offences(pa.array(articles, pa.string()), pa.array(dates, pa.date32()))
    return [(r["offence"], r["statute_article"], r["article_out_of_period"]) for r in t.to_pylist()]


def test_article_spellings():
    spellings = ["153", "ART. 153-A", "Art. 153-A", "153 A", "153A", "ARTICULO 168-B CP", "art 153° A", "153 CP"]
    assert [offences.parse_article(s) for s in spellings] == ["153", "153-A", "153-A", "153-A", "153-A", "168-B", "153-A", "153"]
    assert offences.parse_article("129-ñ") == "129-Ñ"
    assert offences.parse_article("DL 1323") is None


def test_crosswalk_in_period():
    assert run(["153", "153-A", "153-B", "153-C", "168-B"], [BEFORE] * 5) == [
        ("TRAFFICKING", "153", False), ("AGGRAVATED_TRAFFICKING", "153-A", False),
        ("SEXUAL_EXPLOITATION", "153-B", False), ("SLAVERY_AND_OTHER_EXPLOITATION", "153-C", False),
        ("FORCED_LABOUR", "168-B", False)]
    assert run(["129-A", "129-B", "129-C", "129-D", "129-L", "129-Ñ", "129-O"], [AFTER] * 7) == [
        ("TRAFFICKING", "129-A", False), ("AGGRAVATED_TRAFFICKING", "129-B", False),
        ("SEXUAL_EXPLOITATION", "129-C", False), ("RELATED_SEXUAL_EXPLOITATION", "129-D", False),
        ("RELATED_SEXUAL_EXPLOITATION", "129-L", False), ("SLAVERY_AND_OTHER_EXPLOITATION", "129-Ñ", False),
        ("FORCED_LABOUR", "129-O", False)]


def test_renumbering_boundary_and_out_of_period():
    last_old, first_new = dt.date(2021, 3, 30), dt.date(2021, 3, 31)
    assert run(["153", "153", "129-A", "129-A"], [last_old, first_new, last_old, first_new]) == [
        ("TRAFFICKING", "153", False), ("TRAFFICKING", "153", True),
        ("TRAFFICKING", "129-A", True), ("TRAFFICKING", "129-A", False)]
    # 153-B was created by DL 1323 in January 2017
    assert run(["153-B"], [dt.date(2016, 12, 31)]) == [("SEXUAL_EXPLOITATION", "153-B", True)]


def test_unknown_and_missing():
    assert run(["999", "129-N", None, "", "robo"], [BEFORE] * 5) == [
        (None, "999", None), (None, "129-N", None), (None, None, None), (None, None, None), (None, None, None)]
    assert run(["153"], [None]) == [("TRAFFICKING", "153", None)]


def test_offence_names_without_article():
    assert run(["TRATA DE PERSONAS AGRAVADA", "Trata de personas", "trabajo forzoso", "Explotación sexual"], [BEFORE] * 4) == [
        ("AGGRAVATED_TRAFFICKING", None, None), ("TRAFFICKING", None, None),
        ("FORCED_LABOUR", None, None), ("SEXUAL_EXPLOITATION", None, None)]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.text(max_size=20), st.from_regex(r"(ART\. ?)?1[2-6][0-9][- ]?[A-OÑ]?", fullmatch=True)),
                          st.one_of(st.none(), st.dates())), max_size=20))
def test_never_crashes_and_keeps_length(rows):
    t = offences.canonical_offences(pa.array([r[0] for r in rows], pa.string()), pa.array([r[1] for r in rows], pa.date32()))
    assert t.num_rows == len(rows)


def test_the_articles_trafficking_cases_are_charged_under_all_map_with_an_iccs_code():
    from pipelines import codelists
    entries = codelists.load("offences").entries
    assert all(e.get("iccs") for e in entries), [e["code"] for e in entries if not e.get("iccs")]
    articles = {str(a["article"]) for e in entries for a in e["articles"]}
    wanted = {"153", "153-A", "153-B", "153-C", "153-D", "168-B", "179", "179-A", "180", "181", "181-A", "182-A",
              "183-A", "183-B", "317"} | {f"129-{x}" for x in "ABCDEFGHIJKLÑO"}
    assert wanted <= articles, wanted - articles
    got = run(["ART. 179 CP", "317", "183-A", "Favorecimiento a la prostitución"], [BEFORE] * 4)
    assert [g[0] for g in got] == ["PROMOTING_PROSTITUTION", "CRIMINAL_ORGANISATION", "CHILD_PORNOGRAPHY",
                                   "PROMOTING_PROSTITUTION"]
