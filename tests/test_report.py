"""The steward's report: built as the last step of a run, from whatever the run holds, without PII."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import unicodedata
import xml.etree.ElementTree as ET
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.report import REPORT_PATH, build_report, charts, report_context
from pipelines.report.screen import MASK, Screen
from pipelines.summary import render
from tests.conftest import SAMPLE_FEEDS

TRUTH = SAMPLE_FEEDS / "_truth"


@pytest.fixture(scope="module")
def published(sample_run):
    return sample_run


@pytest.fixture(scope="module")
def population():
    with open(TRUTH / "population.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _fold(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", s.upper()) if not unicodedata.combining(c))


def pii_hits(text: str, population: list[dict]) -> list[str]:
    """Every name part (4+ letters), full name field, document number and birth date of the truth found in text."""
    folded = _fold(text)
    words = set(re.findall(r"[A-Z]+", folded))
    hits = set()
    for p in population:
        for field in ("given_names", "paternal_surname", "maternal_surname"):
            value = _fold(p[field])
            if not value:
                continue
            if value in folded and re.search(rf"\b{re.escape(value)}\b", folded):  # the regex only where it can match
                hits.add(f"{field} of {p['person_key']}")
            hits.update(f"{field} part of {p['person_key']}" for t in value.split() if len(t) >= 4 and t in words)
        if p["document_number"] and p["document_number"] in text:
            hits.add(f"document of {p['person_key']}")
        y, m, d = p["birth_date"].split("-") if p["birth_date"] else ("", "", "")
        if y and any(s in text for s in (p["birth_date"], f"{d}/{m}/{y}", f"{d}-{m}-{y}")):
            hits.add(f"birth date of {p['person_key']}")
    return sorted(hits)


def copy_run(result, tmp_path: Path, name: str) -> Path:
    target = tmp_path / "runs" / name
    shutil.copytree(result.run_dir, target)
    return target


def write_manifest(run_dir: Path, manifest: dict) -> None:
    (run_dir / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")


# ------------------------------------------------------------------ the real run

def test_run_builds_the_report_and_records_it_in_the_manifest(published):
    report = Path(published.run_dir) / REPORT_PATH
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "</html>" in html
    files = published.manifest["outputs"]["reports"]["files"]
    entry = next(f for f in files if f["path"] == REPORT_PATH)
    assert entry["sha256"] == hashlib.sha256(report.read_bytes()).hexdigest()
    on_disk = json.loads((Path(published.run_dir) / "manifest.json").read_text())
    assert REPORT_PATH in [f["path"] for f in on_disk["outputs"]["reports"]["files"]]
    current = json.loads((Path(published.run_dir).parents[1] / "current.json").read_text())
    assert current["run_id"] == published.run_id


def test_report_is_self_contained_with_no_script_and_no_external_reference(published):
    html = (Path(published.run_dir) / REPORT_PATH).read_text(encoding="utf-8")
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, re.I)
    assert "@import" not in html and "url(" not in html
    assert html.count("<svg") >= 4 and 'role="img"' in html


def test_report_is_free_of_names_documents_and_birth_dates(published, population):
    # the Data Docs beside it are scanned by tests/test_pii_scan.py with every other output
    html = (Path(published.run_dir) / REPORT_PATH).read_text(encoding="utf-8")
    assert pii_hits(html, population) == []
    assert pii_hits("JOSÉ CÉSAR ARIAS 40202253 16/06/1996", population)  # the scan itself finds them


def test_headline_figures_come_from_the_run(published):
    ctx = report_context(published.run_dir)
    victims = next(r for r in ctx["headline"]["roles"] if r["role"] == "victims")
    per_agency = published.manifest["figures"]["per_agency"]
    assert {r["agency"]: r["records"] for r in victims["rows"]} == {
        a: f["victims"] for a, f in per_agency.items() if f.get("victims")}
    assert victims["unique"] == published.manifest["figures"]["reconciled_unique"]["victims"]["persons"]
    assert [r["agency"] for r in victims["rows"]][:2] == ["PNP", "MP"]  # code-list order
    child = next(d for d in ctx["headline"]["dimensions"] if d["column"] == "child_adult")
    row = next(r for r in child["rows"] if r["code"] == "CHILD")
    assert row["agencies"][child["agencies"].index("PNP")] == 287
    assert row["agencies"][child["agencies"].index("MIMP")] == 128
    exploitation = next(d for d in ctx["headline"]["dimensions"] if d["column"] == "exploitation_type")
    assert exploitation["available"] and exploitation["persons_available"]
    # the overlap's exact combinations add up to the unique persons, and agree with the manifest
    overlap = {r["role"]: r for r in ctx["overlap"]["roles"]}
    assert overlap["victims"]["total"] == victims["unique"]
    combos = published.manifest["figures"]["reconciled_unique"]["victims"]["by_agency_combination"]
    assert sum(i["persons"] for i in overlap["victims"]["intersections"]) == sum(combos.values())
    assert ctx["overlap"]["source"] == "overlap/"


def test_overlap_from_persons_agrees_with_the_overlap_output(published):
    import dataclasses

    from pipelines.aggregates import RunSummary
    from pipelines.report.sections import overlap

    summary = RunSummary.read(fsspec.filesystem("file"), str(Path(published.run_dir) / "summary"))
    from_output, from_persons = overlap(summary), overlap(dataclasses.replace(summary, overlap=None))
    assert (from_output["source"], from_persons["source"]) == ("overlap/", "persons/")
    for a, b in zip(from_output["roles"], from_persons["roles"], strict=True):
        assert (a["role"], a["total"], a["sets"], a["intersections"]) == (b["role"], b["total"], b["sets"], b["intersections"])


def test_the_jobs_summary_is_what_the_run_folder_holds(published):
    """The report of a run reads the job's RunSummary; a report built by hand summarises the run's
    tables with the same functions: both give the same figures (and the same report)."""
    from pipelines.aggregates import RunSummary
    from pipelines.report import actions, sections
    from pipelines.report.data import RunFolder, summary_of

    job = RunSummary.read(fsspec.filesystem("file"), str(Path(published.run_dir) / "summary"))
    assert job.name_words == []  # words of names stay in the restricted zone
    folder = summary_of(RunFolder(published.run_dir), sections.review_column_allowed, actions.UNKNOWN)
    a, b = json.loads(job.to_json()), json.loads(folder.to_json())
    assert {k: v for k, v in a.items() if k != "checks"} == {k: v for k, v in b.items() if k != "checks"}
    assert a["records"]["victim"]["agencies"]["PNP"]["records"] == 1600 and a["review"] and a["conflict_rows"]
    hand, run = (json.dumps({k: v for k, v in ctx.items() if k != "generated"}, default=str)
                 for ctx in (report_context(published.run_dir), report_context(published.run_dir, summary=job)))
    assert re.sub(r"chart\d+", "chart", hand) == re.sub(r"chart\d+", "chart", run)  # charts are numbered per page


def test_first_run_has_no_previous_run_to_compare(published):
    ctx = report_context(published.run_dir, None)
    assert ctx["changes"] == {"available": False, "reason": "no run was published before this one"}


def test_absent_inputs_are_said_to_be_unavailable(published, tmp_path):
    bare = copy_run(published, tmp_path, "bare")
    manifest = {k: v for k, v in published.manifest.items() if k not in ("validation", "mse")}
    for folder in ("review_queue", "conflicts", "overlap", "links", "checks"):
        shutil.rmtree(bare / folder, ignore_errors=True)
    html = Path(build_report(str(bare), None, manifest)).read_text(encoding="utf-8")
    notes = re.findall(r'<div class="na" role="note"><strong>Not available in this run</strong>([^<]*)</div>', html)
    assert any("no validation results" in n for n in notes)
    assert any("no multiple systems estimate" in n for n in notes)
    assert any("review_queue/ is not in this run" in n for n in notes)
    assert any("conflicts/" in n for n in notes)
    assert any("no run was published before this one" in n for n in notes)
    assert "Persons whose records disagree" in html  # partial conflicts figure from persons.has_conflict


# ------------------------------------------------------------------ outputs as the other stages land

def _synthetic_outputs(run_dir: Path, population: list[dict]) -> dict:
    """overlap/, conflicts/, review_queue/, Data Docs and manifest entries in the agreed shapes."""
    for folder in ("overlap", "conflicts", "review_queue", "reports/data_docs"):
        shutil.rmtree(run_dir / folder, ignore_errors=True)
    (run_dir / "overlap").mkdir()
    pq.write_table(pa.table({
        "role": ["victim", "victim", "victim", "victim", "offender"],
        "event_year": pa.array([2018, 2018, 2019, 2018, 2018], pa.int32()),
        "agencies": ["PNP", "MP+PNP", "MP+PNP", "MIMP+MP+PNP", "PJ"],
        "n_agencies": pa.array([1, 2, 2, 3, 1], pa.int32()),
        "persons": pa.array([1000, 400, 30, 20, 9], pa.int64()),
    }), run_dir / "overlap" / "part-0.parquet")
    (run_dir / "conflicts").mkdir()
    pq.write_table(pa.table({
        "person_id": ["Pa1", "Pa1", "Pb2"],
        "role": ["victim", "victim", "victim"],
        "attribute": ["exploitation_type", "sex", "exploitation_type"],
        "values": [["MIMP=SEXUAL_EXPLOITATION", "PNP=FORCED_LABOUR"], ["MP=FEMALE", "PNP=MALE"],
                   ["MP=SEXUAL_EXPLOITATION", "PNP=UNKNOWN"]],
        "n_records": pa.array([2, 2, 3], pa.int32()),
    }), run_dir / "conflicts" / "part-0.parquet")
    victim = population[0]
    (run_dir / "review_queue" / "victims").mkdir(parents=True)
    pq.write_table(pa.table({
        "left_uid": ["pnp_victims:RETA-V-2018-000001", "mp_victims:SISTRA-2018-000002"],
        "right_uid": ["mp_victims:SISTRA-2018-000010", "mimp_child_victims:UPE-2018-000003"],
        "match_probability": [0.71, 0.45], "match_weight": [1.3, -0.2],
        "w_surnames": [5.3, -2.3], "w_document": [0.0, 0.0], "w_birth_date": [-4.3, 3.6], "w_sex": [0.85, 0.85],
        "gamma_surnames": pa.array([3, 0], pa.int8()), "gamma_document": pa.array([-1, -1], pa.int8()),
        "reason": ["uncertain", "incompatible_birth_dates"],
        # the queue is restricted: both records side by side; none of this may reach the report
        "left_given_names": [victim["given_names"], victim["given_names"]],
        "left_document_number": [victim["document_number"], victim["document_number"]],
        "right_paternal_surname": [victim["paternal_surname"], victim["paternal_surname"]],
    }), run_dir / "review_queue" / "victims" / "part-0.parquet")
    docs = run_dir / "reports" / "data_docs" / "validations"
    docs.mkdir(parents=True)
    (docs / "pnp_victims.html").write_text("<html><body>docs</body></html>")
    (run_dir / "reports" / "data_docs" / "index.html").write_text("<html><body>index</body></html>")
    return {
        "validation": {
            "suites": {
                "pnp_victims": {"target": "pnp_victims", "success": False, "evaluated": 14, "failed_blocking": 0,
                                "failed_warning": 1, "data_docs": "reports/data_docs/validations/pnp_victims.html",
                                "results": [{"expectation": "expect_column_values_to_be_between", "column": "age",
                                             "severity": "warning", "success": False, "unexpected_count": 3,
                                             "partial_unexpected_list": [victim["birth_date"]]}]},
                "mp_victims": {"target": "mp_victims", "success": True, "evaluated": 12, "failed_blocking": 0,
                               "failed_warning": 0, "data_docs": None, "results": []},
            },
            "checks": [
                {"name": "pnp_control_total", "severity": "blocking", "status": "passed", "observed": 1600,
                 "expected": 1600, "detail": "victims received against TOTAL_VICTIMAS"},
                {"name": "classification_conflict", "severity": "warning", "status": "failed", "observed": 2,
                 "expected": 0, "detail": f"e.g. person {victim['document_number']} {victim['paternal_surname']}"},
            ],
            "blocking_failed": False,
        },
        "mse": {"victims": {"estimate": 4120.5, "lower": 3500.0, "upper": 5200.0, "method": "loglinear",
                            "model": "[PNP][MP][MIMP][PNP:MP]", "observed": 2063,
                            "linkage_lower": 3900.0, "linkage_upper": 4120.5, "uncertain_pairs": 12,
                            "comparison_method": "latent_class", "comparison_estimate": 6100.0,
                            "comparison_lower": 5300.0, "comparison_upper": 7400.0, "methods_disagree": True,
                            "stratified": {"stratum": "sum:sex", "estimate": 4400.0, "lower": 3700.0,
                                           "upper": 5600.0, "components": ["sex=FEMALE: 3,000 [2,500, 3,900]",
                                                                           "sex=MALE: 1,400 [1,100, 1,900]"]}},
                "offenders": {"refused": "the lists do not overlap enough"}},
    }


def test_new_outputs_are_picked_up_when_they_land(published, population, tmp_path):
    full = copy_run(published, tmp_path, "full")
    manifest = {**published.manifest, **_synthetic_outputs(full, population)}
    write_manifest(full, manifest)
    ctx = report_context(str(full))
    assert ctx["overlap"]["source"] == "overlap/"
    victims = next(r for r in ctx["overlap"]["roles"] if r["role"] == "victims")
    assert victims["total"] == 1450 and victims["multi"] == 450 and victims["years"] == [(2018, 1420), (2019, 30)]
    assert dict(victims["sets"]) == {"PNP": 1450, "MP": 450, "MIMP": 20}

    assert ctx["conflicts"]["available"] and ctx["conflicts"]["total"] == 3 and ctx["conflicts"]["persons"] == 2
    first = ctx["conflicts"]["rows"][0]
    assert first["attribute"] == "exploitation_type" and first["agency_values"] == "MIMP=SEXUAL_EXPLOITATION, PNP=FORCED_LABOUR"

    review = ctx["review"]
    assert review["total"] == 2 and review["id_columns"] == ["left_uid", "right_uid"]
    assert review["by_role"] == [("victim", 2)] and dict(review["by_reason"])["incompatible_birth_dates"] == 1
    top = review["rows"][0]
    assert top["probability"] == 0.71 and top["agree"] == ["sex", "surnames"] and top["role"] == "victim"
    assert top["disagree"] == ["birth_date"] and top["unknown"] == ["document"]

    validation = ctx["validation"]
    assert not validation["blocking_failed"] and validation["checks_failed"] == 1
    pnp = next(f for f in ctx["feeds"] if f["feed_id"] == "pnp_victims")
    assert [s["status"] for s in pnp["suites"]] == ["warn"]
    assert pnp["suites"][0]["data_docs"]["href"] == "data_docs/validations/pnp_victims.html"
    assert validation["data_docs_index"]["href"] == "data_docs/index.html"

    mse = {r["role"]: r for r in ctx["mse"]["roles"]}
    assert mse["victims"]["estimate"] == 4120.5 and mse["victims"]["seen_any"] == 2063
    assert dict(mse["victims"]["seen_by"])["PNP"] == 1450
    assert mse["offenders"]["refused"] == "the lists do not overlap enough"

    html = Path(build_report(str(full))).read_text(encoding="utf-8")
    assert 'href="data_docs/validations/pnp_victims.html"' in html
    assert "4,120" in html and "3,500 – 5,200" in html and "the lists do not overlap enough" in html
    assert "Stratified by sex<" in html and "4,400 (interval 3,700 – 5,600)" in html and "sex=MALE: 1,400" in html
    assert "Linkage band" in html and "3,900 – 4,120" in html and "disagree beyond their intervals" in html
    assert "pnp_victims:RETA-V-2018-000001" in html and "✗ birth_date" in html
    assert "<td>MIMP: Sexual exploitation; PNP: Forced labour</td>" in html  # code labels, not raw codes
    split = ctx["conflict_split"]
    assert (split["contradictions"]["total"], split["gaps"]["total"], split["gaps"]["persons"]) == (2, 1, 1)
    assert "built-in method" not in html and "object at 0x" not in html
    assert "Not available in this run" not in html.split('id="changes"')[0]
    assert pii_hits(html, population) == []
    assert MASK in html  # the check's detail named a person: masked, not dropped silently


def test_changes_since_the_previous_run(published, tmp_path):
    previous = copy_run(published, tmp_path, "20180101T000000000000Z-previous")
    before = json.loads(json.dumps(published.manifest))
    before["run_id"] = previous.name
    before["feeds"]["pnp_victims"]["rows_read"] -= 100
    before["feeds"]["pnp_victims"]["rows_harmonised"] -= 100
    before["feeds"]["pnp_victims"]["files"][0]["sha256"] = "0" * 64
    before["figures"]["per_agency"]["PNP"]["victims"] -= 100
    before["figures"]["reconciled_unique"]["victims"]["persons"] -= 90
    write_manifest(previous, before)
    current = copy_run(published, tmp_path, published.run_id)
    ctx = report_context(str(current), str(previous))
    changes = ctx["changes"]
    assert changes["available"] and changes["previous_run_id"] == previous.name
    assert changes["files"] == [{"feed_id": "pnp_victims", "file": before["feeds"]["pnp_victims"]["files"][0]["source_file"],
                                 "change": "changed"}]
    figures = {r["what"]: r for r in changes["figures"]}
    assert figures["PNP victims (records)"]["delta"] == 100
    assert figures["unique victims (persons)"]["delta"] == 90
    assert figures["MP victims (records)"]["delta"] == 0
    assert {r["what"] for r in changes["feeds"]} == {"pnp_victims read", "pnp_victims harmonised"}
    html = Path(build_report(str(current), str(previous))).read_text(encoding="utf-8")
    assert '<span class="delta-up">+100</span>' in html and '<span class="delta-up">+90</span>' in html


def test_summary_prints_the_report_path(published):
    text = render(published.manifest, published.run_dir, 1.0)
    assert text.rstrip().endswith(f"{published.run_dir}/{REPORT_PATH}")


# ------------------------------------------------------------------ charts and screen

def test_upset_chart_is_well_formed_svg_with_one_column_per_combination():
    svg = charts.upset([("PNP", 1505), ("MP", 455), ("MIMP", 25)],
                       [(("PNP",), 1000), (("MP", "PNP"), 430), (("MIMP", "MP", "PNP"), 20), (("MIMP",), 5)],
                       "Victims: overlap", "four combinations")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.get("role") == "img" and root.find(f"{ns}title").text == "Victims: overlap"
    assert len(root.findall(f"{ns}circle")) == 3 * 4
    assert len([c for c in root.findall(f"{ns}circle") if c.get("fill") == charts.INK]) == 1 + 2 + 3 + 1
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert {"1,000", "430", "20", "5", "1,505", "PNP", "MIMP"} <= set(texts)
    assert charts.upset([], [], "t", "d") == ""


def test_bar_chart_draws_values_and_interval():
    svg = charts.bar_chart([charts.Bar("PNP", 1600, 1589), charts.Bar("Estimated total", 4120.5, low=3500, high=5200,
                                                                      emphasis=True)], "t", "d", legend=("a", "b"))
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert {"1,600", "1,589", "4,120.5", "Estimated total"} <= set(texts)
    assert root.find("{http://www.w3.org/2000/svg}path") is not None  # the interval whisker


def test_screen_masks_restricted_values_but_keeps_codes_and_counts():
    table = pa.table({"given_names": ["MARÍA ELENA"], "paternal_surname": ["QUISPE"], "maternal_surname": ["ÑAÑEZ-PÉREZ"],
                      "document_number": ["40202253"], "birth_date": pa.array([None], pa.date32())})
    screen = Screen.from_restricted([table])
    assert screen.text("person Quispe, doc 40202253, born 16/06/1996") == f"person {MASK}, doc {MASK}, born {MASK}"
    assert screen.text("Maria: 3 of 1600 rows, SEXUAL_EXPLOITATION") == f"{MASK}: 3 of 1600 rows, SEXUAL_EXPLOITATION"
    assert screen.ident("pnp_victims:RETA-V-2018-000001") == "pnp_victims:RETA-V-2018-000001"
    assert screen.ident("pnp_victims:40202253") == MASK
    assert screen.text("Nañez and perez-nañez") == f"{MASK} and {MASK}"


def test_a_blocked_run_says_so_at_the_top(published, tmp_path):
    blocked = copy_run(published, tmp_path, "blocked")
    manifest = {**published.manifest, "status": "blocked"}
    html = Path(build_report(str(blocked), None, manifest)).read_text(encoding="utf-8")
    assert html.index("This run was not published") < html.index('id="glance-h"')


def test_the_previous_run_is_the_one_current_json_names(published, tmp_path):
    from pipelines import publish

    out = tmp_path / "out"
    assert publish.current_run_dir(str(out)) is None
    (out / "runs").mkdir(parents=True)
    shutil.copytree(published.run_dir, out / "runs" / published.run_id)
    (out / "current.json").write_text(json.dumps({"run_id": published.run_id, "path": f"runs/{published.run_id}"}))
    previous = publish.current_run_dir(str(out))
    assert previous == f"{out}/runs/{published.run_id}"
    ctx = report_context(published.run_dir, previous)
    assert ctx["changes"]["available"] and ctx["changes"]["n_changed"] == 0  # the same run: nothing moved


def test_required_field_warnings_are_shown_per_feed_without_values(published, tmp_path):
    # the sample PJ feed types 00000000 for "no DNI", and its contract says required: warn
    warned = {feed: f["required_warnings"] for feed, f in published.manifest["feeds"].items() if f.get("required_warnings")}
    assert warned.get("pj_convictions", {}).get("document", {}).get("placeholder_document", 0) > 0
    rows = {f["feed_id"]: f["required_warnings"] for f in report_context(published.run_dir)["feeds"]}
    assert [(w["field"], w["code"], w["count"]) for w in rows["pj_convictions"]] == [
        (field, code, n) for field, reasons in sorted(warned["pj_convictions"].items()) for code, n in sorted(reasons.items())]
    html = (Path(published.run_dir) / REPORT_PATH).read_text(encoding="utf-8")
    section = html[html.index("Required fields that failed, rows kept"):html.index("Expectation suites")]
    n = warned["pj_convictions"]["document"]["placeholder_document"]
    assert "pj_convictions" in section and "(placeholder_document)" in section and f">{n:,}<" in section
    assert "00000000" not in section
    spanish = copy_run(published, tmp_path, "es")
    text = Path(build_report(str(spanish), None, published.manifest, lang="es")).read_text(encoding="utf-8")
    assert "Campos obligatorios" in text and "(placeholder_document)" in text
