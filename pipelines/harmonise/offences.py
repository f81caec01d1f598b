"""Statute articles -> canonical offences, with the law in force on the event date.

Agencies write the article freely ("153", "ART. 153-A", "153 A", "ARTICULO 168-B CP", "129-Ñ").
The article is parsed to a normal form ("153-A") and looked up in the ``offences`` code list,
which holds each article's period in force (Ley 31146 renumbered them from 31 March 2021). An
article cited outside its period still maps to its offence (the facts are the same) but is
flagged ``article_out_of_period`` for the steward. When no article number is written, the
offence is read from its Spanish name ("TRATA DE PERSONAS AGRAVADA"), with no article.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import codelists
from pipelines.core import vector

# number, optional degree sign, optional separator, optional single letter (Ñ kept: 129-Ñ != 129-N)
_ARTICLE = re.compile(r"(?<![0-9])(\d{2,3})(?![0-9])\s*[°º]?(?:\s*[-.]?\s*([A-ZÑ])(?![A-ZÑ]))?")


def _upper_keep_enye(text: str) -> str:
    """Upper case without accents, but Ñ kept (129-Ñ and 129-N are different articles)."""
    text = text.upper().replace("Ñ", "\x00")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.replace("\x00", "Ñ")


def parse_article(text: str) -> str | None:
    """The first article number in free text, normalised ("ART. 153 A CP" -> "153-A"), else None."""
    m = _ARTICLE.search(_upper_keep_enye(text))
    if not m:
        return None
    number, letter = m.group(1), m.group(2)
    return f"{number}-{letter}" if letter else number


@lru_cache(maxsize=1)
def _catalogue() -> tuple[dict[str, tuple[str, dt.date | None, dt.date | None]], list[tuple[str, str]]]:
    """(article -> (offence, valid_from, valid_to), [(folded Spanish name, offence)] longest first)."""
    articles: dict[str, tuple[str, dt.date | None, dt.date | None]] = {}
    by_name: list[tuple[str, str]] = []
    for e in codelists.load("offences").entries:
        for a in e.get("articles", []):
            articles[str(a["article"])] = (e["code"], a.get("valid_from"), a.get("valid_to"))
        for name in e.get("names_es", []) or []:
            by_name.append((vector.fold_keys([name])[0], e["code"]))
    by_name.sort(key=lambda p: -len(p[0]))
    return articles, by_name


def _offence_of(text: str) -> tuple[str | None, str | None]:
    article = parse_article(text)
    articles, by_name = _catalogue()
    if article is not None:
        hit = articles.get(article)
        return (hit[0] if hit else None), article
    folded = " " + (vector.fold_keys([text])[0] or "") + " "
    for name, offence in by_name:
        if f" {name} " in folded:
            return offence, None
    # "TRATA DE PERSONAS AGRAVADA": the name of the base offence plus an aggravation word
    if " TRATA " in folded and " AGRAVAD" in folded:
        return "AGGRAVATED_TRAFFICKING", None
    return None, None


@lru_cache(maxsize=1)
def _period_arrays() -> tuple[pa.Array, pa.Array, pa.Array]:
    articles, _ = _catalogue()
    keys = sorted(articles)
    start = [articles[k][1] for k in keys]
    end = [articles[k][2] for k in keys]
    return pa.array(keys, pa.string()), pa.array(start, pa.date32()), pa.array(end, pa.date32())


def canonical_offences(
    articles: pa.Array | pa.ChunkedArray, event_dates: pa.Array | pa.ChunkedArray
) -> pa.Table:
    """Recorded charges -> table[offence, statute_article, article_out_of_period].

    ``article_out_of_period`` is true when the event date falls outside the article's period in
    force, null when the event date or the article is unknown.
    """
    raw = vector.clean(articles)
    dates = vector.as_array(event_dates)
    if pa.types.is_null(dates.type):
        dates = pa.nulls(len(dates), pa.date32())
    dates = dates.cast(pa.date32())
    if len(dates) != len(raw):
        raise ValueError("articles and event_dates must have the same length")
    parsed = vector.map_unique_many(
        raw, _offence_of, {"offence": pa.string(), "statute_article": pa.string()}
    )
    article = parsed.column("statute_article").combine_chunks()
    keys, start, end = _period_arrays()
    idx = pc.index_in(article, value_set=keys)
    valid_from = pc.take(start, idx)
    valid_to = pc.take(end, idx)
    before = pc.fill_null(pc.less(dates, valid_from), False)
    after = pc.fill_null(pc.greater(dates, valid_to), False)
    out = pc.or_(before, after)
    known = pc.and_(pc.is_valid(idx), pc.is_valid(dates))
    out = pc.if_else(known, out, pa.scalar(None, pa.bool_()))
    return pa.table(
        {"offence": parsed.column("offence").combine_chunks(), "statute_article": article, "article_out_of_period": out}
    )
