"""Case references (atestado, carpeta fiscal numbers) normalised so agencies' copies match.

The police write "045-2019-DIRNTPTIM"; the prosecutor copies it as "Atestado N° 45-2019 DIRNTPTIM"
and MIMP as "nro 045/2019/dirntptim". These are the join keys between agencies, so the form is
reduced to: upper case, no accents, no "N°"/"NRO" prefix or document-kind word, one hyphen
between segments, and no leading zeros at the start of a segment ("045" == "45").

A contract may declare its agency's forms (``patterns``): a regex with named groups, or a format
with ``{number}``, ``{year}`` and ``{unit}`` placeholders. A reference matching one becomes the
key ``number-year[-unit...]`` (leading zeros dropped), so ``AT-0042-2018``, ``CF 42-2018`` and
``2018-000042`` are the same case; one matching none falls back to the form above.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contracts import compile_patterns
from pipelines.core import vector

# Leading document-kind words, then a number marker, anywhere in that order (upper case input).
_KIND = r"^(?:ATESTADO(?:\s+POLICIAL)?|INFORME\s+POLICIAL|CARPETA(?:\s+FISCAL)?|CASO)\b[\s.:]*"
_NUMBER_MARK = r"^(?:N\s*[°º]|N[ÚU]MERO|NRO|NUM|NO\.|N\.)[\s.:°º]*"


def _normalise_unique(u: pa.Array) -> pa.Array:
    s = pc.utf8_upper(u)
    s = pc.replace_substring_regex(s, _KIND, "")
    s = pc.replace_substring_regex(s, _NUMBER_MARK, "")
    s = vector.fold(s)  # accents off; punctuation (/ _ . , ° etc.) -> space
    s = pc.replace_substring_regex(s, r"[\s_]+", "-")
    s = pc.replace_substring_regex(s, r"-{2,}", "-")
    s = pc.replace_substring_regex(s, r"^-+|-+$", "")
    s = pc.replace_substring_regex(s, r"(^|-)0+(\d)", r"\1\2")
    # what is left may be a "no value" mark once punctuation is gone (":NULL" -> "NULL"): null, so a
    # second pass gives the same key
    return vector.clean(pc.if_else(pc.equal(s, ""), pa.scalar(None, pa.string()), s))


def _key(match: re.Match) -> str:
    parts = match.groupdict()
    ordered = [parts.get("number"), parts.get("year")] + [v for k, v in parts.items() if k not in ("number", "year")]
    return "-".join(re.sub(r"^0+(?=\d)", "", v.upper()) for v in ordered if v)


def _with_patterns(value: str, patterns: tuple[re.Pattern, ...]) -> str | None:
    text = re.sub(_NUMBER_MARK, "", re.sub(_KIND, "", value.strip().upper())).strip()
    for pattern in patterns:
        m = pattern.fullmatch(text) or pattern.fullmatch(value.strip())
        if m:
            return _key(m)
    return None


def normalise_reference(arr: pa.Array | pa.ChunkedArray, patterns: list[str] | None = None) -> pa.Array:
    """Reference numbers in one comparable form (see the module docstring); empty -> null."""
    values = vector.clean(arr)
    generic = vector.map_unique_arrow(values, _normalise_unique)
    if not patterns:
        return generic
    compiled = compile_patterns(tuple(patterns))
    keyed = vector.map_unique(values, lambda v: _with_patterns(v, compiled), pa.string())
    return pc.coalesce(keyed, generic)
