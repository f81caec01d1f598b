"""Nationality text -> ISO 3166-1 alpha-3.

Agencies write Spanish demonyms ("VENEZOLANA", "Brasileña"), Spanish or English country names,
or ISO codes. The ``nationalities`` code list maps the demonyms; pycountry supplies the ISO
alpha-2/alpha-3 codes, English names and (through its bundled translations) Spanish names.
Placeholders ("SIN DATO", "NO PRECISA"; also "NA", "NO", "SD", which are ISO codes of
Namibia, Norway and Sudan) mean unknown: null, and not reported as unmapped.
"""

from __future__ import annotations

import gettext
from functools import lru_cache

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import codelists
from pipelines.core import vector


def _spanish_names() -> dict[str, str]:
    """alpha-3 -> Spanish name from pycountry's iso-codes translations (empty if not bundled)."""
    import pycountry

    try:
        es = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["es"])
    except OSError:
        return {}
    return {c.alpha_3: es.gettext(c.name) for c in pycountry.countries}


@lru_cache(maxsize=1)
def _table() -> tuple[pa.Array, pa.Array, pa.Array]:
    """(folded keys, alpha-3 values, folded unknown placeholders). Later sources never override earlier ones."""
    import pycountry

    nat = codelists.load("nationalities")
    unknown = set(vector.fold_keys(str(v) for v in nat.meta.get("unknown_values", [])))
    pairs: list[tuple[str, str]] = []
    for e in nat.entries:  # the curated aliases win
        pairs += [(str(a), e["code"]) for a in e.get("aliases", [])] + [(e["code"], e["code"])]
    for c in pycountry.countries:
        pairs.append((c.alpha_3, c.alpha_3))
        pairs.append((c.alpha_2, c.alpha_3))
        for attr in ("name", "common_name", "official_name"):
            if getattr(c, attr, None):
                pairs.append((getattr(c, attr), c.alpha_3))
    pairs += [(name, a3) for a3, name in _spanish_names().items()]
    folded = vector.fold_keys(k for k, _ in pairs)
    mapping: dict[str, str] = {}
    for key, (_, a3) in zip(folded, pairs):
        if key and key not in unknown and key not in mapping:
            mapping[key] = a3
    keys = sorted(mapping)
    return (
        pa.array(keys, pa.string()),
        pa.array([mapping[k] for k in keys], pa.string()),
        pa.array(sorted(k for k in unknown if k), pa.string()),
    )


def _folded(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    cleaned = vector.clean(arr)
    return cleaned, vector.map_unique_arrow(cleaned, vector.fold)


def to_iso3(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """ISO 3166-1 alpha-3 for each value; unknown, placeholder or empty -> null."""
    keys, values, _ = _table()
    _, folded = _folded(arr)
    return vector.lookup(folded, keys, values)


def unmapped_values(arr: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    """{value as delivered (trimmed): count} for non-empty values that are neither a country nor a placeholder."""
    keys, _, unknown = _table()
    cleaned, folded = _folded(arr)
    known = pc.or_(pc.is_in(folded, value_set=keys), pc.is_in(folded, value_set=unknown))
    miss = pc.and_(pc.is_valid(cleaned), pc.invert(known))
    return vector.value_counts(cleaned.filter(miss))
