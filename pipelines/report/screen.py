"""A last screen for free text that goes into the steward's report.

The report renders counts, codes and pseudonymous ids. A few values come from other stages as
free text (check details, quarantine details, conflict values, unmapped code values); those pass
through ``Screen`` before rendering, which masks any word that is a name part, a document number
or a date of the run's restricted zone, and any long digit run or date-like token. The restricted
values are read into memory only and never leave this object.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.core.vector import fold

MASK = "▒▒▒"
_NAME_COLUMNS = ("given_names", "paternal_surname", "maternal_surname")
_WORD = re.compile(r"[\w]+(?:[-/.][\w]+)*", re.UNICODE)
# a document-like digit run, or a date in the formats agencies deliver
_SUSPECT = re.compile(r"\d{6,}|\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")


@lru_cache(maxsize=65536)
def _fold_word(word: str) -> str:
    """The same key as ``core.vector.fold`` for one short string, in plain Python (a per-word
    Arrow call costs milliseconds)."""
    s = re.sub(r"[°º]", " ", word)
    s = re.sub(r"['’´`]", "", s)
    s = "".join(c for c in unicodedata.normalize("NFKD", s) if not unicodedata.combining(c)).upper()
    return " ".join(re.sub(r"[^\w\s-]|_", " ", s).split())


class Screen:
    """Masks restricted-looking words in text; ``clean`` says whether a value needed no mask."""

    def __init__(self, name_tokens: set[str] | None = None, documents: set[str] | None = None,
                 dates: set[str] | None = None):
        parts = {p for t in (name_tokens or ()) for p in (t, *t.split("-"))}  # ÑAÑEZ-PÉREZ: each half too
        self._names = {t for t in parts if len(t) >= 3}
        self._exact = set(documents or ()) | set(dates or ())

    @classmethod
    def from_restricted(cls, tables: list[pa.Table]) -> "Screen":
        names: set[str] = set()
        documents: set[str] = set()
        dates: set[str] = set()
        for table in tables:
            for column in _NAME_COLUMNS:
                if column in table.column_names:
                    # folded once per distinct value (a name recurs across records and agencies)
                    for value in pc.unique(fold(pc.unique(table.column(column).combine_chunks()))).to_pylist():
                        if value:
                            names.update(value.split())
            if "document_number" in table.column_names:
                documents.update(v for v in pc.unique(table.column("document_number")).to_pylist() if v)
            if "aliases" in table.column_names:  # other names an offender goes by
                aliases = pc.unique(pc.list_flatten(table.column("aliases").combine_chunks()))
                for value in pc.unique(fold(aliases)).to_pylist():
                    if value:
                        names.update(value.split())
            if "documents" in table.column_names:  # every document of a record, as TYPE:NUMBER
                flat = pc.list_flatten(table.column("documents").combine_chunks())
                documents.update(v.split(":", 1)[-1] for v in pc.unique(flat).to_pylist() if v)
            if "birth_date" in table.column_names:
                for d in pc.unique(table.column("birth_date")).to_pylist():
                    if d is not None:
                        dates.update({d.isoformat(), d.strftime("%d/%m/%Y"), d.strftime("%d-%m-%Y")})
        return cls(names, documents, dates)

    @classmethod
    def for_values(cls, values: set[str], restricted: Iterable[pa.Table]) -> "Screen":
        """The screen of ``values`` only: the name words, documents and dates of the restricted
        ``restricted`` batches that occur in them. It masks these values exactly as the screen of
        the whole zone would, and its memory is the values', not the records' (batches stream)."""
        words = {w for v in values for w in _WORD.findall(v)}
        exact = set(values) | words | {run for v in values for run in re.findall(r"\d+", v)}
        parts = {p for w in words for part in _fold_word(w).split() for p in (part, *part.split("-"))}
        names: set[str] = set()
        found: set[str] = set()
        for table in restricted:
            batch = cls.from_restricted([table])
            names |= batch._names & parts
            found |= batch._exact & exact
        return cls(names, found)

    def _bad(self, word: str) -> bool:
        if word in self._exact or _SUSPECT.fullmatch(word) or _SUSPECT.search(word):
            return True
        if not self._names:
            return False
        folded = _fold_word(word).split()
        return any(p in self._names for part in folded for p in (part, *part.split("-")))

    def text(self, value) -> str | None:
        """Free text with every suspect word masked (None stays None)."""
        if value is None:
            return None
        s = str(value)
        return _WORD.sub(lambda m: MASK if self._bad(m.group(0)) else m.group(0), s)

    def ident(self, value) -> str | None:
        """A pseudonymous id or record id: shown whole unless it embeds a restricted value."""
        if value is None:
            return None
        s = str(value)
        if s in self._exact or any(run in self._exact for run in re.findall(r"\d+", s)):
            return MASK
        return s

    def clean(self, value) -> bool:
        return value is None or self.text(value) == str(value)


class RecordingScreen(Screen):
    """Masks as a screen without restricted values would, and remembers every value it was shown:
    the report's first pass, which finds what the real screen must look for (``Screen.for_values``)."""

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def text(self, value) -> str | None:
        if value is not None:
            self.seen.add(str(value))
        return super().text(value)

    def ident(self, value) -> str | None:
        if value is not None:
            self.seen.add(str(value))
        return super().ident(value)
