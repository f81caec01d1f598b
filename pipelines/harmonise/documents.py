"""Identity documents: SUNAT type code + number, normalised and validated.

The document number is the strongest linkage key between agencies, so it is normalised the same
way everywhere (upper case, no spaces, dots or hyphens; DNI as 8 digits without its check
character) and validated against the rule of its type from the ``document_types`` code list
(format pattern; DNI and RUC check digits via python-stdnum).

Decisions:
- ``document_valid`` is null when there is nothing to validate against: no number, or no (known)
  document type. A number without a type is kept (compacted) but never given an invented type,
  because an 8-digit number may as well be a carné de extranjería or a passport. The one
  exception is a Venezuelan cédula written with its "V-"/"E-" prefix ("V-12.345.678"), which is
  unambiguous and gets type 24.
- A DNI with a wrong check character keeps its 8 digits with ``document_valid`` false: either the
  digits or the check character is wrong, and the steward needs to see which record it was.
- Placeholders (numbers made of a single repeated digit, "00000000", and the code list's
  ``placeholder_numbers``, "12345678") are never valid and are flagged ``document_placeholder``:
  they must never act as an identifier.
- ``restore_leading_zeros`` (spreadsheet feeds) re-pads numeric numbers of each fixed-length type
  the contract names (``pad_to`` in the code list: DNI 8, CE/PTP/CPP 9; from ``pad_min_digits``
  up, shorter ones are too damaged to guess) and one-digit type codes ("1" -> "01").
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from stdnum.pe import cui, ruc

from pipelines import codelists
from pipelines.core import vector

DNI, CE, RUC, PASSPORT, FOREIGN_ID = "01", "04", "06", "07", "24"

_SEP = "\x1f"
_SEPARATORS = re.compile(r"[\s.\-/_,]+")
_EXCEL_FLOAT = re.compile(r"^(\d+)\.0+$")
_VENEZUELAN = re.compile(r"^[VE]\s*-?\s*(?:\d{1,3}(?:\.\d{3}){1,2}|\d{6,9})$")
_VE_PREFIX = re.compile(r"^[VE](\d{5,9})$")
_REPEATED = re.compile(r"^(\d)\1+$")

_OUT = {"document_type": pa.string(), "document_number": pa.string(), "document_valid": pa.bool_(),
        "document_placeholder": pa.bool_()}


@lru_cache(maxsize=1)
def _rules() -> dict[str, dict[str, Any]]:
    out = {}
    for e in codelists.load("document_types").entries:
        out[e["code"]] = {
            "pattern": re.compile(e["pattern"]) if e.get("pattern") else None,
            "check": e.get("check_digit"),
            "pad_to": e.get("pad_to"),
            "pad_min": e.get("pad_min_digits"),
        }
    return out


@lru_cache(maxsize=1)
def placeholder_numbers() -> frozenset[str]:
    return frozenset(str(n) for n in codelists.load("document_types").meta.get("placeholder_numbers", ()))


def is_placeholder(number: str) -> bool:
    """A number typed for "unknown": one repeated digit, or one of the code list's placeholders."""
    return bool(_REPEATED.match(number)) or number in placeholder_numbers()


def fixed_length_types() -> tuple[str, ...]:
    """Document types with a fixed length (``pad_to``): the ones whose lost zeros can be restored."""
    return tuple(code for code, rule in _rules().items() if rule["pad_to"])


def compact(number: str) -> str:
    """Upper case, spreadsheet float suffix and separators (spaces, dots, hyphens, slashes) removed."""
    number = number.strip().upper()
    number = _EXCEL_FLOAT.sub(r"\1", number)
    return _SEPARATORS.sub("", number)


def _normalise_type(code: str | None, restore: bool) -> str | None:
    if code is None:
        return None
    code = code.strip().upper()
    if not code:
        return None
    if restore and code.isdigit() and len(code) == 1:
        code = code.zfill(2)
    return code


def _validate(doc_type: str, number: str, restore: frozenset[str]) -> tuple[str, bool]:
    rule = _rules()[doc_type]
    if (doc_type in restore and number.isdigit() and rule["pad_to"] and rule["pad_min"]
            and rule["pad_min"] <= len(number) < rule["pad_to"]):
        number = number.zfill(rule["pad_to"])
    if doc_type == DNI and len(number) == 9 and number[:8].isdigit():
        # 8 digits + check character (a digit or a letter K..A)
        return number[:8], cui.is_valid(number) and not is_placeholder(number[:8])
    if doc_type == FOREIGN_ID:
        m = _VE_PREFIX.match(number)
        if m:
            number = m.group(1)
    ok = bool(rule["pattern"].match(number)) if rule["pattern"] else True
    if ok and rule["check"] == "stdnum.pe.ruc":
        ok = ruc.is_valid(number)
    return number, ok and not is_placeholder(number)


def _normalise_pair(key: str, restore: frozenset[str]) -> tuple[str | None, str | None, bool | None, bool | None]:
    raw_type, _, raw_number = key.partition(_SEP)
    doc_type = _normalise_type(raw_type or None, bool(restore))
    if not raw_number.strip():
        return (doc_type if doc_type in _rules() else None), None, None, None
    if doc_type is None and _VENEZUELAN.match(raw_number.strip().upper()):
        doc_type = FOREIGN_ID
    number = compact(raw_number)
    if not number:
        return (doc_type if doc_type in _rules() else None), None, None, None
    if doc_type not in _rules():
        return None, number, None, is_placeholder(number)
    number, ok = _validate(doc_type, number, restore)
    return doc_type, number, ok, is_placeholder(number)


def restore_set(declared: bool | list[str] | None) -> frozenset[str]:
    """A contract's ``restore_leading_zeros``: true (every fixed-length type), a list of types, or off."""
    if declared is True:
        return frozenset(fixed_length_types())
    return frozenset(declared or ())


def normalise_documents(
    type_codes: pa.Array | pa.ChunkedArray, numbers: pa.Array | pa.ChunkedArray,
    restore_leading_zeros: bool | list[str] = False,
) -> pa.Table:
    """(SUNAT type codes, numbers) -> table[document_type, document_number, document_valid, document_placeholder].

    See the module docstring for the rules and the null/false decisions. Validation runs once
    per distinct (type, number) pair.
    """
    types = vector.clean(type_codes)
    nums = vector.clean(numbers)
    if len(types) != len(nums):
        raise ValueError("type_codes and numbers must have the same length")
    key = pc.binary_join_element_wise(pc.fill_null(types, ""), pc.fill_null(nums, ""), _SEP)
    both_null = pc.and_(pc.is_null(types), pc.is_null(nums))
    key = pc.if_else(both_null, pa.scalar(None, pa.string()), key)
    restore = restore_set(restore_leading_zeros)
    return vector.map_unique_many(key, lambda k: _normalise_pair(k, restore), _OUT)


def _personal_ruc_dni(value: str) -> str | None:
    number = compact(value)
    if len(number) == 11 and number.startswith("10") and ruc.is_valid(number):
        return number[2:10]
    return None


def dni_from_personal_ruc(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The DNI inside a valid personal RUC ("10" + DNI + check digit), else null; for linkage."""
    return vector.map_unique(vector.clean(arr), _personal_ruc_dni, pa.string())


def looks_like_dni(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    """True where a (compacted) number is 8 digits: a hint for linkage on untyped numbers, not a validation."""
    s = vector.clean(arr)
    s = pc.replace_substring_regex(pc.utf8_upper(s), r"[\s.\-/_,]+", "")
    return pc.match_substring_regex(s, r"^\d{8}$")
