"""The language of the human-readable outputs: gettext catalogs and es-PE number and date formats.

English is the source language. Spanish (``es``, written for Peru) is the catalog
``pipelines/locale/es/LC_MESSAGES/concilia.po``, compiled to ``concilia.mo`` by ``make i18n`` and
committed, so a fresh clone, the wheel and the Dataflow image need no build step
(``tests/test_i18n.py`` fails when the catalog is stale, incomplete or not compiled).

Code marks text with ``_`` (translated now, in the active language) or ``N_`` (a module-level
label, translated where it is shown). The CLI's ``--lang`` or the environment (``LANG=es_PE.UTF-8``)
chooses the language; ``use(lang)`` makes it active for a block. Machine-readable outputs (Parquet,
the manifest's keys, the UNODC export) do not change with the language.
"""

from __future__ import annotations

import datetime as dt
import gettext as _gettext
from contextlib import contextmanager
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from babel.core import default_locale
from babel.dates import format_date, format_time
from babel.numbers import format_decimal

LANGUAGES = ("en", "es")
SOURCE_LANGUAGE = "en"
DOMAIN = "concilia"
LOCALE_DIR = Path(__file__).parent / "locale"
# CLDR locale of each language's formats. es-PE in CLDR groups digits with "," and marks decimals with
# "."; Peru's legal system of units (Ley 23560, SLUMP) and INEI's publications group with a space and
# mark decimals with a comma ("1 600", "12,5"), and official forms write dates dd/mm/yyyy: the report
# follows those (NMP_SYMBOLS, DATE_PATTERNS).
LOCALES = {"en": "en", "es": "es_PE"}
BCP47 = {"en": "en", "es": "es-PE"}  # the page's lang attribute
NMP_SYMBOLS = {"es": str.maketrans({",": "\u00a0", ".": ","})}  # no-break space: a number never wraps
DATE_PATTERNS = {"en": "yyyy-MM-dd", "es": "dd/MM/yyyy"}

_active: ContextVar[str] = ContextVar("concilia_language", default=SOURCE_LANGUAGE)


def N_(message: str) -> str:  # noqa: N802 (gettext's name for a marker)
    """Mark a message for the catalog without translating it yet (module-level labels)."""
    return message


@lru_cache(maxsize=None)
def catalog(lang: str) -> _gettext.NullTranslations:
    """The compiled catalog of ``lang``; a missing one is an error, never a silent fall back to English."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}: one of {', '.join(LANGUAGES)}")
    if lang == SOURCE_LANGUAGE:
        return _gettext.NullTranslations()
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[lang])


def language_from_env() -> str:
    """``es`` when the environment's message locale is Spanish (LANGUAGE, LC_ALL, LC_MESSAGES, LANG), else ``en``."""
    name = default_locale("LC_MESSAGES") or ""
    return "es" if name.split("_")[0].lower() == "es" else SOURCE_LANGUAGE


def resolve(lang: str | None) -> str:
    """An explicit ``--lang`` wins; otherwise the environment's."""
    return lang or language_from_env()


def add_argument(parser) -> None:
    """``--lang`` on a command whose output people read."""
    parser.add_argument("--lang", choices=LANGUAGES, default=None,
                        help="language of the printed summary and the steward's report (default: the "
                             "environment's, e.g. LANG=es_PE.UTF-8 gives es; otherwise en)")


def active() -> str:
    return _active.get()


@contextmanager
def use(lang: str | None) -> Iterator[str]:
    """Make ``lang`` (or the environment's language) the active language inside the block."""
    lang = resolve(lang)
    catalog(lang)  # fail here, not halfway through a page
    token = _active.set(lang)
    try:
        yield lang
    finally:
        _active.reset(token)


def _(message: str) -> str:
    return catalog(_active.get()).gettext(message)


gettext = _


def ngettext(singular: str, plural: str, n: int) -> str:
    return catalog(_active.get()).ngettext(singular, plural, n)


def number(value, decimals: int = 0) -> str:
    """A number in the active language's format: ``1,600`` / ``1 600``; ``decimals`` fraction digits."""
    lang = _active.get()
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    text = format_decimal(value, format=pattern, locale=LOCALES[lang], decimal_quantization=True)
    return text.translate(NMP_SYMBOLS[lang]) if lang in NMP_SYMBOLS else text


def percent(share: float, decimals: int = 0) -> str:
    """A share as a percentage: ``42%`` / ``42 %`` (``decimals`` fraction digits)."""
    return _("%(n)s%%") % {"n": number(100 * share, decimals)}


def date(value: dt.date) -> str:
    return format_date(value, DATE_PATTERNS[_active.get()], locale=LOCALES[_active.get()])


def timestamp(value: dt.datetime) -> str:
    """A UTC instant: ``2026-12-02 08:29:31 UTC`` / ``02/12/2026 08:29:31 UTC``."""
    value = value.astimezone(dt.timezone.utc) if value.tzinfo else value
    return f"{date(value.date())} {format_time(value.time(), 'HH:mm:ss', locale=LOCALES[_active.get()])} UTC"
