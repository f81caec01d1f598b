"""A corruption library for the robustness suite, written for it (independent of pipelines/sample).

Each corruption class is a function ``(record, rng) -> record | None`` on one record (a dict of
harmonised fields); it returns None when the class cannot apply to that record (a name with no
particle cannot lose one). ``corrupt`` applies a list of classes, each to a share of the records.
Benchmark data generation only: nothing here runs in the product.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import unicodedata
from typing import Callable

PARTICLES = ("DE LA", "DE LOS", "DEL", "DE")

# Spelling variants a clerk writes for the same sound: Spanish (b/v, s/z/c, ll/y, silent h, j/g,
# qu/k, n/ñ) and Quechua/Aymara spellings (q/k/c, hua/gua/wa, cc/c, vowels i/e and u/o).
SPELLINGS = [
    ("V", "B"), ("B", "V"), ("Z", "S"), ("S", "Z"), ("CE", "SE"), ("CI", "SI"), ("LL", "Y"), ("Y", "LL"),
    ("^H", ""), ("JE", "GE"), ("GE", "JE"), ("JI", "GI"), ("GI", "JI"), ("QU", "K"), ("K", "QU"),
    ("Ñ", "N"), ("Q", "K"), ("CC", "C"), ("C", "CC"), ("HUA", "WA"), ("WA", "HUA"), ("GUA", "HUA"),
    ("HUA", "GUA"), ("CA", "KA"), ("CO", "KO"), ("I", "E"), ("E", "I"), ("U", "O"), ("O", "U"),
]
LETTERS = "ABCDEFGHIJLMNOPQRSTUVYZ"


def _tokens(value: str | None) -> list[str]:
    return value.split() if value else []


def _pick_name_field(record: dict, rng: random.Random) -> str | None:
    fields = [f for f in ("given_names", "paternal_surname", "maternal_surname") if record.get(f)]
    return rng.choice(fields) if fields else None


def swap_given_surnames(record: dict, rng: random.Random) -> dict | None:
    """Given names and surnames entered in each other's fields."""
    if not record.get("given_names") or not record.get("paternal_surname"):
        return None
    surnames = " ".join(_tokens(record["paternal_surname"]) + _tokens(record.get("maternal_surname")))
    given = _tokens(record["given_names"])
    return record | {"given_names": surnames, "paternal_surname": given[0],
                     "maternal_surname": " ".join(given[1:]) or None}


def swap_surnames(record: dict, rng: random.Random) -> dict | None:
    """Paternal and maternal surnames in each other's place."""
    if not record.get("maternal_surname") or not record.get("paternal_surname"):
        return None
    return record | {"paternal_surname": record["maternal_surname"], "maternal_surname": record["paternal_surname"]}


def missing_surname(record: dict, rng: random.Random) -> dict | None:
    """One surname not recorded (usually the maternal one; sometimes only the maternal is kept)."""
    if not record.get("maternal_surname"):
        return None
    if rng.random() < 0.75:
        return record | {"maternal_surname": None}
    return record | {"paternal_surname": record["maternal_surname"], "maternal_surname": None}


def typo(record: dict, rng: random.Random) -> dict | None:
    """One keying error in one name token: a letter replaced, dropped, doubled or two swapped."""
    field = _pick_name_field(record, rng)
    if field is None:
        return None
    tokens = _tokens(record[field])
    t = rng.randrange(len(tokens))
    word = tokens[t]
    if len(word) < 3:
        return None
    i = rng.randrange(1, len(word))  # keying errors rarely hit the first letter
    kind = rng.choice(["replace", "drop", "double", "transpose"])
    if kind == "replace":
        word = word[:i] + rng.choice([c for c in LETTERS if c != word[i]]) + word[i + 1:]
    elif kind == "drop":
        word = word[:i] + word[i + 1:]
    elif kind == "double":
        word = word[:i] + word[i] + word[i:]
    elif i < len(word) - 1:
        word = word[:i] + word[i + 1] + word[i] + word[i + 2:]
    else:
        word = word[:i - 1] + word[i] + word[i - 1]
    tokens[t] = word
    return record | {field: " ".join(tokens)}


def phonetic(record: dict, rng: random.Random) -> dict | None:
    """One spelling variant of the same sound in one name token (Spanish, Quechua, Aymara)."""
    options = []
    for field in ("given_names", "paternal_surname", "maternal_surname"):
        plain = _strip(record.get(field) or "")
        for pattern, replacement in SPELLINGS:
            for m in re.finditer(pattern, plain):
                options.append((field, m.start(), m.end(), replacement))
    if not options:
        return None
    field, start, end, replacement = rng.choice(options)
    plain = _strip(record[field])
    return record | {field: plain[:start] + replacement + plain[end:]}


def compound_shortened(record: dict, rng: random.Random) -> dict | None:
    """A compound given name written as one of its names (MARÍA DEL CARMEN -> CARMEN or MARÍA)."""
    given = record.get("given_names") or ""
    words = [w for w in _tokens(_drop_particles(given))]
    if len(words) < 2:
        return None
    return record | {"given_names": words[0] if rng.random() < 0.5 else words[-1]}


def _drop_particles(value: str) -> str:
    out = value
    for p in PARTICLES:
        out = re.sub(rf"(^|\s){p}\s", " ", out)
    return " ".join(out.split())


def particles_dropped(record: dict, rng: random.Random) -> dict | None:
    """DE, DEL, DE LA left out (DE LA CRUZ -> CRUZ, MARÍA DEL PILAR -> MARÍA PILAR)."""
    changed = {f: _drop_particles(record[f]) for f in ("given_names", "paternal_surname", "maternal_surname")
               if record.get(f) and _drop_particles(record[f]) != record[f]}
    return record | changed if changed else None


def _strip(value: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", value) if not unicodedata.combining(c))


def accents(record: dict, rng: random.Random) -> dict | None:
    """Accents lost, or the UTF-8 bytes read as Latin-1 (mojibake: JOSÉ -> JOSÃ‰)."""
    field = _pick_name_field(record, rng)
    if field is None:
        return None
    value = record[field]
    if value == _strip(value):  # nothing to lose: write it in lower case as some forms do
        return record | {field: value.title()}
    if rng.random() < 0.5:
        return record | {field: _strip(value)}
    return record | {field: value.encode("utf-8").decode("latin-1")}


def age_only(record: dict, rng: random.Random) -> dict | None:
    """No birth date: only the age at the event (as the victim or the clerk stated it)."""
    if record.get("birth_date") is None:
        return None
    birth, event = record["birth_date"], record["event_date"]
    age = event.year - birth.year - ((event.month, event.day) < (birth.month, birth.day))
    return record | {"birth_date": None, "age_at_event": age + (rng.choice([-1, 1]) if rng.random() < 0.1 else 0)}


def no_document(record: dict, rng: random.Random) -> dict | None:
    if not record.get("document_number"):
        return None
    return record | {"document_type": None, "document_number": None, "document_valid": None}


def other_document(record: dict, rng: random.Random) -> dict | None:
    """The agency recorded another document of the person (a passport or foreigner's card)."""
    if not record.get("document_number"):
        return None
    number = "".join(rng.choice("0123456789") for _ in range(9))
    return record | {"document_type": rng.choice(["07", "04"]), "document_number": number, "document_valid": True}


# What agency records carry beyond the classes above (forms and systems written by others).


def name_in_one_field(record: dict, rng: random.Random) -> dict | None:
    """The whole name in one field, as a form with a single "nombre completo" box has it: surnames
    first ("APELLIDOS NOMBRES", the Peruvian registry order) or given names first; the surname
    fields empty (the contract maps the one field to the given names)."""
    surnames = _tokens(record.get("paternal_surname")) + _tokens(record.get("maternal_surname"))
    given = _tokens(record.get("given_names"))
    if not surnames or not given:
        return None
    words = surnames + given if rng.random() < 0.6 else given + surnames
    return record | {"given_names": " ".join(words), "paternal_surname": None, "maternal_surname": None}


def initials(record: dict, rng: random.Random) -> dict | None:
    """A second given name written as its initial, with or without a dot (MARÍA E., M. ELENA)."""
    words = _tokens(_drop_particles(record.get("given_names") or ""))
    if len(words) < 2:
        return None
    k = rng.randrange(len(words))
    words[k] = words[k][0] + ("." if rng.random() < 0.5 else "")
    return record | {"given_names": " ".join(words)}


def spacing(record: dict, rng: random.Random) -> dict | None:
    """A compound name's words joined by hyphens or double spaces (DEL-ÁGUILA, MARÍA  ELENA)."""
    options = [f for f in ("given_names", "paternal_surname", "maternal_surname") if len(_tokens(record.get(f))) > 1]
    if not options:
        return None
    field = rng.choice(options)
    return record | {field: rng.choice(["-", "  "]).join(_tokens(record[field]))}


def day_month_swapped(record: dict, rng: random.Random) -> dict | None:
    """The birth date with day and month transposed (a form read as MM/DD, or DD/MM keyed as MM/DD)."""
    birth = record.get("birth_date")
    if birth is None or birth.day > 12 or birth.day == birth.month:
        return None
    return record | {"birth_date": birth.replace(month=birth.day, day=birth.month)}


def birth_year_only(record: dict, rng: random.Random) -> dict | None:
    """Only the birth year known, recorded as 1 January of it (the usual placeholder)."""
    birth = record.get("birth_date")
    if birth is None or (birth.month, birth.day) == (1, 1):
        return None
    return record | {"birth_date": birth.replace(month=1, day=1)}


AGENCY_CLASSES = ("name_in_one_field", "initials", "spacing", "day_month_swapped", "birth_year_only")
CLASSES: dict[str, Callable[[dict, random.Random], dict | None]] = {
    "swap_given_surnames": swap_given_surnames, "swap_surnames": swap_surnames, "missing_surname": missing_surname,
    "typo": typo, "phonetic": phonetic, "compound_shortened": compound_shortened,
    "particles_dropped": particles_dropped, "accents": accents, "age_only": age_only,
    "no_document": no_document, "other_document": other_document,
    "name_in_one_field": name_in_one_field, "initials": initials, "spacing": spacing,
    "day_month_swapped": day_month_swapped, "birth_year_only": birth_year_only,
}


def corrupt(records: list[dict], rates: dict[str, float], seed: int) -> tuple[list[dict], dict[str, int]]:
    """Each class applied to its share of the records (drawn independently per class, in a fixed
    order); returns the records and how many each class changed."""
    rng = random.Random(seed)
    changed = {name: 0 for name in rates}
    out = []
    for record in records:
        for name, rate in rates.items():
            if rng.random() < rate:
                new = CLASSES[name](record, rng)
                if new is not None:
                    record = new
                    changed[name] += 1
        out.append(record)
    return out, changed


def age_at(birth: dt.date, event: dt.date) -> int:
    return event.year - birth.year - ((event.month, event.day) < (birth.month, birth.day))
