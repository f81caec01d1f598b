"""Case references (atestado, carpeta fiscal numbers) normalised so agencies' copies match.

The police write "045-2019-DIRNTPTIM"; the prosecutor copies it as "Atestado N° 45-2019 DIRNTPTIM"
and MIMP as "nro 045/2019/dirntptim". These are the join keys between agencies, so the form is
reduced to: upper case, no accents, no "N°"/"NRO" prefix or document-kind word, one hyphen
between segments, and no leading zeros at the start of a segment ("045" == "45").
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.harmonise import vector

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
    return pc.if_else(pc.equal(s, ""), pa.scalar(None, pa.string()), s)


def normalise_reference(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Reference numbers in one comparable form (see the module docstring); empty -> null."""
    return vector.map_unique_arrow(vector.clean(arr), _normalise_unique)
