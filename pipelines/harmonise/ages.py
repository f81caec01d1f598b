"""Ages: reported ages as whole years, and the age groupings the standards publish.

Agencies type ages as "17", "17 años", "17.0" (Excel) or "8 meses" for infants. Anything else
non-empty, or outside 0..110, is a problem ("invalid_age") rather than a guess. The groupings
(article 153 penalty tiers, UNODC child/adult, CTDC ageBroad) read their bounds from the code lists.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import codelists
from pipelines.core import vector

INVALID_AGE = "invalid_age"
MIN_AGE, MAX_AGE = 0, 110

# After folding (upper, no accents, punctuation -> space): "17", "17 ANOS", "17 0", "17 A", "8 MESES".
_YEARS = r"^(?P<n>\d{1,3})(?: 0+)?(?: ?(?:ANOS?|A|YEARS?|YRS?))?$"
_MONTHS = r"^(?P<n>\d{1,3})(?: 0+)? ?(?:MESES|MES)$"


def _parse_unique(u: pa.Array) -> pa.Array:
    # "17.0" and "17,0" fold to "17 0"; fold keeps hyphens, so "-3" never matches
    f = vector.fold(u)
    years = pc.struct_field(pc.extract_regex(f, _YEARS), "n")
    months = pc.struct_field(pc.extract_regex(f, _MONTHS), "n")
    y = pc.cast(years, pa.int32())
    m = pc.divide(pc.cast(months, pa.int32()), 12)  # integer division: completed years
    return pc.coalesce(y, m.cast(pa.int32()))


def parse_ages(arr: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Reported ages -> (int32 years, problems: "invalid_age" or null). Empty stays null, no problem."""
    raw = vector.as_array(arr)
    if pa.types.is_integer(raw.type):
        ages = raw.cast(pa.int64())
        s_valid = pc.is_valid(raw)
    else:
        s = vector.clean(raw)
        ages = vector.map_unique_arrow(s, _parse_unique).cast(pa.int64())
        s_valid = pc.is_valid(s)
    in_range = pc.and_(pc.greater_equal(ages, MIN_AGE), pc.less_equal(ages, MAX_AGE))
    ok = pc.fill_null(in_range, False)
    ages = pc.if_else(ok, ages, pa.scalar(None, pa.int64())).cast(pa.int32())
    bad = pc.and_(s_valid, pc.invert(ok))
    return ages, vector.problems_where(bad, INVALID_AGE)


def _bands(ages: pa.Array | pa.ChunkedArray, list_name: str) -> pa.Array:
    """Band code for each age, from the code list's min_age/max_age (inclusive; null max = open)."""
    ages = vector.as_array(ages)
    if pa.types.is_null(ages.type):
        return pa.nulls(len(ages), pa.string())
    ages = ages.cast(pa.int64())
    out = pa.nulls(len(ages), pa.string())
    for e in codelists.load(list_name).entries:
        lo, hi = e.get("min_age"), e.get("max_age")
        inside = pc.greater_equal(ages, lo if lo is not None else 0)
        if hi is not None:
            inside = pc.and_(inside, pc.less_equal(ages, hi))
        out = pc.if_else(pc.fill_null(inside, False), pa.scalar(e["code"], pa.string()), out)
    return out


def age_groups(ages: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Article 153 penalty tiers: UNDER_14, 14_17, 18_PLUS (null age -> null)."""
    return _bands(ages, "age_groups")


def child_adult(ages: pa.Array | pa.ChunkedArray) -> pa.Array:
    """UNODC CHILD (under 18) or ADULT (null age -> null)."""
    return _bands(ages, "child_adult")


def age_broad(ages: pa.Array | pa.ChunkedArray) -> pa.Array:
    """CTDC ageBroad band (0-8 ... 48+; null age -> null)."""
    return _bands(ages, "ctdc_age_broad")
