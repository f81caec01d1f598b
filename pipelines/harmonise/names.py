"""Person names: split full-name columns into given names, paternal and maternal surname.

Spanish surnames carry particles ("DE LA CRUZ", "DEL AGUILA", "SAN MARTIN") that belong to the
surname, and many people have no maternal surname on record. Splitting works on *units*: a
particle joins the word after it. "Y" between two surnames is the traditional link between the
paternal and the maternal surname ("ORTEGA Y GASSET" = ORTEGA + GASSET), so it is dropped; the
linkage stage then matches the agency that wrote "ORTEGA GASSET".
Names keep their accents ("MARÍA"): they are for display and for the linkage stage, which does
its own folding. Splitting runs once per distinct name (map_unique), not per row.

Known limit: "MARIA ELENA QUISPE" (given-first, maternal surname missing) cannot be told from a
given name plus two surnames without a register of given names; it splits as MARIA / ELENA /
QUISPE. Only a comma (surnames first) makes the boundary certain.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core import vector

Style = Literal["surnames_comma_given", "given_then_surnames"]
STYLES = ("surnames_comma_given", "given_then_surnames")

# Words that attach to the following word inside a name unit.
PARTICLES = frozenset({"DE", "DEL", "LA", "LAS", "LOS", "SAN", "SANTA", "DA", "DAS", "DO", "DOS", "DI", "VAN", "VON"})
CONJUNCTION = "Y"  # links paternal and maternal surname; dropped

_OUT = {"given_names": pa.string(), "paternal_surname": pa.string(), "maternal_surname": pa.string()}
_EDGE_PUNCT = re.compile(r"^[\s,.;:]+|[\s,.;:]+$")


def _tidy(text: str) -> str:
    return _EDGE_PUNCT.sub("", " ".join(text.upper().split()))


def _plain(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def name_units(text: str) -> list[str]:
    """Words grouped into name units: ["MARIA", "DEL CARMEN", "DE LA CRUZ", "SAN MARTIN"]."""
    words = [w for w in re.split(r"[\s,]+", _tidy(text)) if w]
    units: list[str] = []
    pending: list[str] = []
    for w in words:
        key = _plain(w)
        if key == CONJUNCTION and units and not pending:
            continue  # "ORTEGA Y GASSET": the link between two surnames, not part of either
        if key in PARTICLES:
            pending.append(w)
            continue
        units.append(" ".join(pending + [w]))
        pending = []
    if pending:  # trailing particles ("... DE"): keep them on the last unit rather than lose them
        if units:
            units[-1] = " ".join([units[-1]] + pending)
        else:
            units.append(" ".join(pending))
    return units


def _surnames(units: list[str]) -> tuple[str | None, str | None]:
    if not units:
        return None, None
    return units[0], (" ".join(units[1:]) or None)


def _split_surnames_first(text: str) -> tuple[str | None, str | None, str | None]:
    if "," in text:
        surnames, _, given = text.rpartition(",")
        paternal, maternal = _surnames(name_units(surnames))
        return (" ".join(name_units(given)) or None), paternal, maternal
    units = name_units(text)
    # no comma: assume two surname units, the rest given names (one or two units: surname first)
    if len(units) >= 3:
        return " ".join(units[2:]), units[0], units[1]
    if len(units) == 2:
        return units[1], units[0], None
    if len(units) == 1:
        return None, units[0], None
    return None, None, None


def _split_given_first(text: str) -> tuple[str | None, str | None, str | None]:
    if "," in text:  # "MARIA ELENA, QUISPE MAMANI"
        given, _, surnames = text.partition(",")
        paternal, maternal = _surnames(name_units(surnames))
        return (" ".join(name_units(given)) or None), paternal, maternal
    units = name_units(text)
    if len(units) >= 3:
        return " ".join(units[:-2]), units[-2], units[-1]
    if len(units) == 2:
        return units[0], units[1], None
    if len(units) == 1:
        return units[0], None, None
    return None, None, None


_SPLITTERS = {"surnames_comma_given": _split_surnames_first, "given_then_surnames": _split_given_first}


def split_full_name(arr: pa.Array | pa.ChunkedArray, style: Style) -> pa.Table:
    """One full-name column -> table[given_names, paternal_surname, maternal_surname] (upper, accents kept).

    Styles: "surnames_comma_given" ("QUISPE MAMANI, MARIA ELENA"; without a comma the first two
    units are taken as surnames) and "given_then_surnames" ("MARIA ELENA QUISPE MAMANI").
    """
    try:
        fn = _SPLITTERS[style]
    except KeyError:
        raise ValueError(f"unknown name style {style!r} (expected one of {', '.join(STYLES)})") from None
    return vector.map_unique_many(vector.clean(arr), fn, _OUT)


def split_surnames(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """A column holding both surnames -> (paternal, maternal); maternal null when only one unit."""
    t = vector.map_unique_many(
        vector.clean(arr), lambda s: _surnames(name_units(s)),
        {"paternal_surname": pa.string(), "maternal_surname": pa.string()},
    )
    return t.column(0).combine_chunks(), t.column(1).combine_chunks()


def _normalise_part_unique(u: pa.Array) -> pa.Array:
    s = vector.collapse_spaces(pc.utf8_upper(u))
    s = pc.replace_substring_regex(s, r"^[\s,.;:]+|[\s,.;:]+$", "")
    return pc.if_else(pc.equal(s, ""), pa.scalar(None, pa.string()), s)


def normalise_name_part(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Upper case, trimmed, single spaces, stray edge punctuation removed; accents kept ("MARÍA")."""
    return vector.map_unique_arrow(vector.clean(arr), _normalise_part_unique)
