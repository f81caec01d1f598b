"""Spanish for the people who use it: catalogs complete and compiled, es-PE formats, and a run with
``--lang es`` whose summary, steward's report and public tables are Spanish, with no English left."""

from __future__ import annotations

import csv
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from pipelines import codelists, i18n
from pipelines.cli import main
from pipelines.public import TABLES
from pipelines.public_es import SUFFIX, UNODC_TERMS
from pipelines.report import REPORT_PATH, report_context
from pipelines.report.build import render
from tests.conftest import ROOT

LOCALE = ROOT / "pipelines" / "locale"
POT, PO, MO = LOCALE / "concilia.pot", LOCALE / "es/LC_MESSAGES/concilia.po", LOCALE / "es/LC_MESSAGES/concilia.mo"
EXTRA_KEYWORDS = {"TableSpec": (4,)}  # the public tables' titles: `make i18n` passes -k TableSpec:4 too
# English words that say a sentence was left in English, whether or not the catalog knows them
ENGLISH = {"the", "of", "and", "by", "with", "from", "to", "is", "are", "was", "were", "this", "that", "in", "on",
           "at", "for", "not", "or", "an", "it", "its", "be", "have", "which", "each", "per", "only", "all", "any"}


def _catalog(path: Path):
    with open(path, "rb") as fh:
        return read_po(fh)


def _ids(messages) -> set:
    return {m.id for m in messages if m.id}


def extracted() -> set:
    """What `make i18n` would extract from the code and the report's template today."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    return {message for _f, _l, message, _c, _ctx in extract_from_dir(
        ROOT, method_map, options_map, keywords={**DEFAULT_KEYWORDS, **EXTRA_KEYWORDS})}


# ------------------------------------------------------------------ the catalogs

def test_every_message_of_the_code_is_in_the_template_and_the_spanish_catalog():
    code = extracted()
    assert len(code) > 300
    assert code == _ids(_catalog(POT)), "run `make i18n`: the template differs from the code"
    assert code == _ids(_catalog(PO)), "run `make i18n`: the Spanish catalog differs from the code"


def test_spanish_catalog_is_complete_and_its_placeholders_match():
    catalog = _catalog(PO)
    untranslated = [m.id for m in catalog if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)))]
    assert untranslated == []
    assert [m.id for m in catalog if m.id and m.fuzzy] == []
    assert [(m.id, errors) for m, errors in catalog.check()] == []  # python-format placeholders agree
    assert catalog.plural_forms == "nplurals=2; plural=(n != 1);"


def test_compiled_catalog_is_the_spanish_catalog():
    with open(MO, "rb") as fh:
        compiled = read_mo(fh)
    po = _catalog(PO)
    def pairs(catalog):
        plain = lambda v: tuple(v) if isinstance(v, (list, tuple)) else v  # noqa: E731 (plural forms)
        return {plain(m.id): plain(m.string) for m in catalog if m.id}

    assert pairs(compiled) == pairs(po), \
        "run `make i18n`: concilia.mo is not compiled from concilia.po"
    with i18n.use("es"):
        assert i18n.gettext("Review queue") == "Cola de revisión"
        assert i18n.ngettext("%(num)s change.", "%(num)s changes.", 2) == "%(num)s cambios."


def test_every_public_dimension_has_a_spanish_heading():
    from pipelines.public import POPULATIONS
    from pipelines.public_es import DIMENSION

    assert {d for p in POPULATIONS.values() for d in p.dims} <= set(DIMENSION)


def test_code_lists_and_unodc_terms_have_spanish_labels():
    for name in ("sex", "child_adult", "exploitation_types", "justice_stages", "agencies", "departments",
                 "quarantine_reasons", "roles", "countries"):
        cl = codelists.load(name)
        assert all(cl.labels_es.get(c) for c in cl.codes), name
    assert codelists.load("countries").labels_es["PER"] == "Perú"
    peers = {e["unodc"] for name in ("exploitation_types", "justice_stages") for e in codelists.load(name).entries}
    assert peers <= set(UNODC_TERMS)
    with i18n.use("es"):
        assert all(i18n.gettext(t) != t for t in UNODC_TERMS)


# ------------------------------------------------------------------ language and formats

@pytest.mark.parametrize("env, expected", [
    ({"LANG": "es_PE.UTF-8"}, "es"), ({"LANG": "en_US.UTF-8"}, "en"), ({"LANG": "C.UTF-8"}, "en"), ({}, "en"),
    ({"LANG": "en_US.UTF-8", "LC_ALL": "es_PE.UTF-8"}, "es"), ({"LANG": "es_PE.UTF-8", "LC_MESSAGES": "en_GB"}, "en"),
])
def test_language_comes_from_the_environment(monkeypatch, env, expected):
    for var in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG", "LC_CTYPE"):
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert i18n.language_from_env() == expected
    assert i18n.resolve("en") == "en" and i18n.resolve(None) == expected


def test_es_pe_numbers_and_dates_follow_peruvian_practice_not_cldr():
    import datetime as dt

    from babel.dates import format_date
    from babel.numbers import format_decimal

    # what CLDR gives for es_PE (US-style grouping, short year) ...
    assert format_decimal(1600, locale="es_PE") == "1,600"
    assert format_date(dt.date(2026, 12, 2), "short", locale="es_PE") == "2/12/26"
    # ... and what Peru's legal system of units and INEI write, which the Spanish outputs use
    with i18n.use("es"):
        assert i18n.number(1600) == "1\u00a0600" and i18n.number(1234567) == "1\u00a0234\u00a0567"
        assert i18n.number(0.634, 3) == "0,634" and i18n.percent(0.06) == "6\u00a0%"
        assert i18n.date(dt.date(2026, 12, 2)) == "02/12/2026"
        assert i18n.timestamp(dt.datetime(2026, 12, 2, 13, 5, 9, tzinfo=dt.timezone.utc)) == "02/12/2026 13:05:09 UTC"
    with i18n.use("en"):
        assert i18n.number(1600) == "1,600" and i18n.date(dt.date(2026, 12, 2)) == "2026-12-02"


def test_an_unknown_language_is_refused():
    with pytest.raises(ValueError):
        i18n.catalog("fr")
    with pytest.raises(SystemExit):
        main(["run", "--feeds", "x", "--out", "y", "--lang", "fr"])


# ------------------------------------------------------------------ a run with --lang es

@pytest.fixture(scope="module")
def spanish_run(spanish_multiprocess_run):
    """The session's Spanish run (tests/conftest.py: ``concilia run --lang es`` of the sample feeds)."""
    run = spanish_multiprocess_run
    run_dir = Path(run.run_dir)
    return {"out": run.out, "run_dir": run_dir, "summary": run.stdout, "manifest": run.manifest,
            "html": (run_dir / REPORT_PATH).read_text(encoding="utf-8")}


class PageText(HTMLParser):
    """What a reader sees or hears: text nodes, chart titles and descriptions; not identifiers (class "id",
    <code>), which are codes, feed and field names shown as they are stored."""

    VOID = {"br", "meta", "link", "img", "input", "hr", "wbr"}

    def __init__(self):
        super().__init__()
        self.texts: list[str] = []
        self._skip: list[bool] = []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID:
            return
        a = dict(attrs)
        inherited = bool(self._skip and self._skip[-1])
        self._skip.append(inherited or tag in ("style", "code") or "id" in (a.get("class") or "").split())
        if not self._skip[-1] and a.get("aria-label"):
            self.texts.append(a["aria-label"])

    def handle_endtag(self, tag):
        if tag not in self.VOID and self._skip:
            self._skip.pop()

    def handle_data(self, data):
        if data.strip() and not (self._skip and self._skip[-1]):
            self.texts.append(data.strip())


def page_text(html: str) -> list[str]:
    parser = PageText()
    parser.feed(html)
    return parser.texts


def _words(text: str) -> set[str]:
    """Lower-case words; a token joined by ``_ : / = .`` (pnp_victims, victim:sex, quarantine/) is an identifier."""
    text = re.sub(r"%\(\w+\)s|%%|<[^>]+>", " ", text)
    tokens = (t.strip(".,;:()[]«»\"'") for t in text.split())
    return {w.lower() for t in tokens if not re.search(r"\w[_:/=.]\w|_", t) for w in re.findall(r"[^\W\d_]+", t)}


def english_vocabulary() -> set[str]:
    """Words of the catalog's English messages that none of its Spanish messages uses, and plain English words."""
    en, es = set(), set()
    for m in _catalog(PO):
        if m.id:
            for s in (m.id if isinstance(m.id, tuple) else (m.id,)):
                en |= _words(s)
            for s in (m.string if isinstance(m.string, tuple) else (m.string,)):
                es |= _words(s)
    return (en - es) | ENGLISH


@pytest.mark.pipeline
def test_spanish_run_prints_a_spanish_summary_and_records_the_language(spanish_run):
    summary, manifest = spanish_run["summary"], spanish_run["manifest"]
    assert manifest["language"] == "es"
    assert summary.startswith("DEMOSTRACIÓN:") and "Ejecución de Concilia" in summary
    pnp = manifest["figures"]["per_agency"]["PNP"]["victims"]
    with i18n.use("es"):
        assert pnp >= 1000 and i18n.number(pnp) in summary  # 1 600
    assert summary.rstrip().splitlines()[-1].startswith("  informe para la revisión de datos: ")
    leaks = sorted(_words(summary) & english_vocabulary())
    assert leaks == []


@pytest.mark.pipeline
def test_spanish_report_has_no_english_left(spanish_run):
    """Every text node of the Spanish report against the catalog: a word only the English messages use
    (or a plain English word) means a string was not translated, or never marked for the catalog."""
    english = english_vocabulary()
    leaks = sorted({(w, t[:80]) for t in page_text(spanish_run["html"]) for w in _words(t) & english})
    assert leaks == []
    # the check itself finds English: the same page in English is full of it
    with i18n.use("en"):
        english_html = render(report_context(str(spanish_run["run_dir"])))
    assert len({w for t in page_text(english_html) for w in _words(t) & english}) > 100


@pytest.mark.pipeline
def test_spanish_report_is_marked_spanish_with_peruvian_formats(spanish_run):
    html, manifest = spanish_run["html"], spanish_run["manifest"]
    assert '<html lang="es-PE">' in html and 'lang="es"' not in html  # no Spanish glosses on a Spanish page
    assert "<title>Informe para la revisión de datos · ejecución" in html
    assert "1\u00a0600" in html and "1,600" not in html  # PNP's 1 600 victim records
    started = manifest["started"][:10]
    assert f"{started[8:10]}/{started[5:7]}/{started[:4]}" in html  # 02/12/2026
    titles = re.findall(r"<title id=\"chart\d+-t\">([^<]*)</title><desc id=\"chart\d+-d\">([^<]*)</desc>", html)
    assert len(titles) >= 5
    assert all(not (_words(t + " " + d) & english_vocabulary()) for t, d in titles)


@pytest.mark.pipeline
def test_spanish_public_tables_carry_the_english_cells_with_spanish_labels(spanish_run):
    public = spanish_run["run_dir"] / "public"

    def rows(name):
        text = (public / name).read_text(encoding="utf-8")
        assert text.startswith("# DEMO")
        return list(csv.reader(io.StringIO(text.split("\n", 1)[1])))

    meta = json.loads((public / "metadata.es.json").read_text(encoding="utf-8"))
    assert meta["language"] == "es" and set(meta["tables"]) == {s.name for s in TABLES}
    for spec in TABLES:
        en, es = rows(f"{spec.name}.csv"), rows(f"{spec.name}{SUFFIX}")
        n = len(spec.dims)
        assert len(en) == len(es)
        for a, b in zip(en[1:], es[1:]):
            assert b[n * 2:] == a[n:]  # the same published cells, suppression marks included
            assert b[1:n * 2:2] == a[:n]  # the codes, kept in a column
    es = rows(f"victims_by_sex{SUFFIX}")
    assert es[0][:2] == ["Sexo", "Sexo (código)"] and es[0][-1] == "Total"
    assert ["Femenino", "FEMALE"] == es[1][:2]
    assert "Explotación sexual" in {r[0] for r in rows(f"victims_by_exploitation_type{SUFFIX}")}
    assert meta["tables"]["victims_by_sex"]["title"] == "Víctimas conciliadas por sexo y año"


@pytest.mark.pipeline
def test_status_and_diff_speak_spanish(spanish_run, capsys):
    out, run_id = str(spanish_run["out"]), spanish_run["run_dir"].name
    assert main(["status", "--out", out, "--lang", "es"]) == 0
    text = capsys.readouterr().out
    assert "ejecuciones recientes:" in text and run_id in text
    assert main(["diff", run_id, run_id, "--out", out, "--lang", "es"]) == 0
    text = capsys.readouterr().out
    assert "archivos de entrada que cambiaron: 0" in text and "víctimas: personas" in text
    assert main(["status", "--out", out, "--lang", "en"]) == 0
    assert "recent runs:" in capsys.readouterr().out
