"""Dates: strict, vectorised parsing against the formats a contract declares.

Arrow's strptime is lenient (it rolls 31/02/2018 over to 3 March), which would silently move
an event or a birth date. So each parse is checked against the day and month digits actually
written, and the whole value must match the format. Unparsable non-empty values are reported
as problems ("invalid_date"), never guessed; empty values are simply unknown.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core import vector

INVALID_DATE = "invalid_date"

# A trailing time of day (spreadsheet exports add " 00:00:00"; ISO adds "T00:00:00Z").
_TRAILING_TIME = r"[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"

_DIRECTIVES = {
    "d": r"(?P<d>\d{1,2})",
    "m": r"(?P<m>\d{1,2})",
    "Y": r"(?P<Y>\d{4})",
    "y": r"\d{2}",
    "H": r"\d{1,2}",
    "M": r"\d{1,2}",
    "S": r"\d{1,2}",
    "%": "%",
}


@lru_cache(maxsize=64)
def _format_regex(fmt: str) -> str | None:
    """An anchored RE2 pattern for a strptime format, or None if it uses unsupported directives."""
    out, i = [], 0
    while i < len(fmt):
        ch = fmt[i]
        if ch == "%" and i + 1 < len(fmt):
            piece = _DIRECTIVES.get(fmt[i + 1])
            if piece is None:
                return None
            out.append(piece)
            i += 2
        else:
            out.append(re.escape(ch))
            i += 1
    return "^" + "".join(out) + "$"


def _has_time(fmt: str) -> bool:
    return any(d in fmt for d in ("%H", "%M", "%S"))


def _parse_one(s: pa.Array, fmt: str) -> pa.Array:
    """date32 for values that match ``fmt`` exactly and name a real calendar day, else null."""
    if not _has_time(fmt):
        s = pc.replace_substring_regex(s, _TRAILING_TIME, "")
    ts = pc.strptime(s, format=fmt, unit="s", error_is_null=True)
    ok = pc.is_valid(ts)
    pattern = _format_regex(fmt)
    if pattern is not None:
        ok = pc.and_(ok, pc.fill_null(pc.match_substring_regex(s, pattern), False))
        names = re.findall(r"\?P<(\w)>", pattern)
        if names:
            parts = pc.extract_regex(s, pattern)
            for name, getter in (("d", pc.day), ("m", pc.month), ("Y", pc.year)):
                if name in names:
                    written = pc.struct_field(parts, name)
                    written = pc.if_else(pc.equal(written, ""), pa.scalar(None, pa.string()), written)
                    same = pc.equal(pc.cast(written, pa.int64()), getter(ts))
                    ok = pc.and_(ok, pc.fill_null(same, False))
    date = pc.cast(ts, pa.date32())
    return pc.if_else(ok, date, pa.scalar(None, pa.date32()))


def parse_dates(arr: pa.Array | pa.ChunkedArray, formats: Sequence[str]) -> tuple[pa.Array, pa.Array]:
    """Parse with the first format that fits: (date32 array, problems: "invalid_date" or null).

    Already-typed date or timestamp columns (JSONL, Parquet) pass through unchanged.
    """
    raw = vector.as_array(arr)
    if pa.types.is_date(raw.type) or pa.types.is_timestamp(raw.type):
        dates = raw.cast(pa.date32())
        return dates, pa.nulls(len(dates), pa.string())
    if not formats:
        raise ValueError("parse_dates needs at least one format")
    s = vector.clean(raw)

    def parse_unique(u: pa.Array) -> pa.Array:
        parsed = [_parse_one(u, f) for f in formats]
        return pc.coalesce(*parsed) if len(parsed) > 1 else parsed[0]

    dates = vector.map_unique_arrow(s, parse_unique)
    bad = pc.and_(pc.is_valid(s), pc.is_null(dates))
    return dates, vector.problems_where(bad, INVALID_DATE)


def age_in_years(birth: pa.Array | pa.ChunkedArray, at: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Completed years from ``birth`` to ``at`` (int32); null if either is null.

    Someone born on 29 February completes a year on 1 March in common years. A birth after
    ``at`` always gives a negative number (at most -1), which the caller flags as an invalid
    birth date.
    """
    birth = vector.as_array(birth).cast(pa.date32())
    at = vector.as_array(at).cast(pa.date32())
    years = pc.subtract(pc.year(at), pc.year(birth))
    md_at = pc.add(pc.multiply(pc.month(at), 100), pc.day(at))
    md_birth = pc.add(pc.multiply(pc.month(birth), 100), pc.day(birth))
    before_birthday = pc.less(md_at, md_birth)
    years = pc.subtract(years, pc.cast(before_birthday, pa.int64()))
    return years.cast(pa.int32())


def year(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Calendar year (int32) of a date column; null stays null."""
    arr = vector.as_array(arr)
    if pa.types.is_null(arr.type):
        return pa.nulls(len(arr), pa.int32())
    return pc.year(arr).cast(pa.int32())
