"""End to end: the committed sample feeds through the whole pipeline on the pinned runner."""

from __future__ import annotations

import csv
import json

import pyarrow.compute as pc
import pyarrow.dataset as ds
import pytest

from pipelines import model
from tests.conftest import SAMPLE_FEEDS

TRUTH = SAMPLE_FEEDS / "_truth"


@pytest.fixture(scope="module")
def published(sample_run):
    from pathlib import Path

    return Path(sample_run.run_dir).parents[1], sample_run


def dataset(run_dir, folder):
    return ds.dataset(f"{run_dir}/{folder}", format="parquet").to_table()


def records(run_dir, role, feed_id):
    table = dataset(run_dir, f"harmonised/{role}")
    return table.filter(pc.equal(table.column("feed_id"), feed_id))


def count(table, column, value):
    return pc.sum(pc.equal(table.column(column), value)).as_py() or 0


def test_row_accounting_holds_for_every_feed(published):
    _, result = published
    feeds = result.manifest["feeds"]
    assert set(feeds) >= {"pnp_victims", "pnp_detainees", "mp_victims", "mp_investigated",
                          "mimp_child_victims", "sunafil_findings", "pj_convictions"}
    for feed_id, f in feeds.items():
        assert isinstance(f["rows_read"], int) and f["rows_read"] > 0, feed_id
        assert f["rows_read"] == f["rows_harmonised"] + f["rows_quarantined"], feed_id


def test_seed_report_figures_are_reproduced(published):
    _, result = published
    run_dir = result.run_dir
    pnp = records(run_dir, "victims", "pnp_victims")
    assert pnp.num_rows == 1600
    assert count(pnp, "child_adult", "CHILD") == 287 and count(pnp, "child_adult", "ADULT") == 1313
    mp = records(run_dir, "victims", "mp_victims")
    assert mp.num_rows == 882
    assert count(mp, "sex", "FEMALE") == 738 and count(mp, "sex", "MALE") == 144
    assert count(mp, "child_adult", "CHILD") >= 374
    mimp = records(run_dir, "victims", "mimp_child_victims")
    assert mimp.num_rows == 128 and count(mimp, "child_adult", "CHILD") == 128
    assert count(mimp, "sex", "FEMALE") == 112 and count(mimp, "sex", "MALE") == 16
    sunafil = records(run_dir, "victims", "sunafil_findings")
    assert sunafil.num_rows == 8 and count(sunafil, "exploitation_type", "DOMESTIC_SERVITUDE") == 8
    assert records(run_dir, "offenders", "pnp_detainees").num_rows == 423
    mp_inv = records(run_dir, "offenders", "mp_investigated")
    assert mp_inv.num_rows == 800 and (pc.sum(mp_inv.column("detained")).as_py()) == 142
    assert records(run_dir, "offenders", "pj_convictions").num_rows == 46


def test_every_planted_invalid_row_is_quarantined_with_its_reason(published):
    _, result = published
    q = dataset(result.run_dir, "quarantine")
    got = {(r["feed_id"], r["source_file"], r["source_row"]): r["reason_code"] for r in q.to_pylist()}
    with open(TRUTH / "records.csv", newline="", encoding="utf-8") as fh:
        planted = [r for r in csv.DictReader(fh) if r["planted_invalid_reason"]]
    assert planted
    for r in planted:
        key = (r["feed_id"], r["source_file"], int(r["source_row"]))
        assert got.get(key) == r["planted_invalid_reason"], key
    assert len(got) == len(planted)


def test_outputs_carry_declared_schemas_and_no_restricted_fields(published):
    _, result = published
    victims = dataset(result.run_dir, "harmonised/victims")
    assert victims.schema.names == model.table("victim").schema(include_restricted=False).names
    for restricted in ("given_names", "paternal_surname", "maternal_surname", "birth_date", "document_number"):
        assert restricted not in victims.schema.names
    assert victims.column("source_row").null_count == 0 and victims.column("source_file").null_count == 0
    persons = dataset(result.run_dir, "persons")
    assert persons.schema.names == model.table("person").schema().names
    assert 0 < persons.num_rows < victims.num_rows + dataset(result.run_dir, "harmonised/offenders").num_rows


def test_manifest_and_current_pointer(published):
    out, result = published
    current = json.loads((out / "current.json").read_text())
    assert current["run_id"] == result.run_id
    manifest = json.loads((out / current["path"] / "manifest.json").read_text())
    for f in manifest["feeds"].values():
        assert all(len(x["sha256"]) == 64 for x in f["files"])
        assert f["contract"]["version"]
    for folder, entry in manifest["outputs"].items():
        for file in entry["files"]:
            assert (out / current["path"] / file["path"]).exists(), folder
    figures = manifest["figures"]
    assert figures["per_agency"]["PNP"]["victims"] == 1600
    unique = figures["reconciled_unique"]["victims"]["persons"]
    assert unique < 1600 + 882 + 128 + 8
    assert not (out / current["path"] / "_work").exists()


def truth_pairs(uids):
    import itertools

    with open(TRUTH / "records.csv", newline="", encoding="utf-8") as fh:
        person_of = {f"{r['feed_id']}:{r['source_record_id']}": r["person_key"] for r in csv.DictReader(fh)
                     if not r["planted_invalid_reason"]}
    groups = {}
    for uid in uids:
        groups.setdefault(person_of[uid], []).append(uid)
    return {tuple(sorted(p)) for g in groups.values() for p in itertools.combinations(g, 2)}


@pytest.mark.parametrize("role", ["victims", "offenders"])
def test_linkage_finds_the_same_people_as_the_ground_truth(published, role):
    import itertools

    _, result = published
    table = dataset(result.run_dir, f"harmonised/{role}")
    truth = truth_pairs(table.column("record_uid").to_pylist())
    groups = {}
    for uid, pid in zip(table.column("record_uid").to_pylist(), table.column("person_id").to_pylist()):
        groups.setdefault(pid, []).append(uid)
    found = {tuple(sorted(p)) for g in groups.values() for p in itertools.combinations(g, 2)}
    precision = len(found & truth) / len(found)
    recall = len(found & truth) / len(truth)
    assert 2 * precision * recall / (precision + recall) >= 0.97


def test_linkage_outputs_are_published(published):
    _, result = published
    run_dir = result.run_dir
    links = dataset(run_dir, "links/victims")
    assert links.num_rows and {"match_weight", "match_probability", "w_surnames", "gamma_document"} <= set(links.column_names)
    for leak in ("tf_surnames", "left_document_core", "left_birth_date"):
        assert leak not in links.column_names
    model_json = json.loads(open(f"{run_dir}/linkage/model_victims.json", encoding="utf-8").read())
    assert model_json["comparisons"] and 0 < model_json["prior_match_probability"] < 1
    overlap = dataset(run_dir, "overlap").to_pylist()
    victims_pnp_mp = sum(r["persons"] for r in overlap if r["role"] == "victim" and r["agencies"] == "MP+PNP")
    assert victims_pnp_mp > 0
    unique = sum(r["persons"] for r in overlap if r["role"] == "victim")
    assert unique == result.manifest["figures"]["reconciled_unique"]["victims"]["persons"]
    funnel = {(r["from_stage"], r["to_stage"]): r["persons"] for r in dataset(run_dir, "funnel").to_pylist()}
    assert funnel[("CONVICTED", None)] <= 46 and funnel[("ARRESTED", None)] <= 423
    assert 0 < funnel[("INVESTIGATED", "DETAINED")] <= 142
    assert dataset(run_dir, "conflicts").num_rows >= 0
    assert "review_queue/victims" in result.manifest["outputs"]


def test_data_docs_load_nothing_from_the_network(published):
    import re
    from pathlib import Path

    _, result = published
    pages = list((Path(result.run_dir) / "reports" / "data_docs").rglob("*.html"))
    assert pages
    remote = re.compile(r"<(?:script|link)\b[^>]*(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not remote.search(text), page.name
        assert "Content-Security-Policy" in text
        assert "<script" not in text and "static/images" not in text, page.name  # no CDN-bound scripts, no GX images
    docs = Path(result.run_dir) / "reports" / "data_docs"
    assert not (docs / "static" / "images").exists()
    # a static index, and each suite's page headed by the state word the report and `concilia status` use
    from pipelines import validate

    index = (docs / "index.html").read_text(encoding="utf-8")
    for name, suite in result.manifest["validation"]["suites"].items():
        state = validate.suite_state(suite)
        assert f">{name}</a>: {state}</li>" in index
        page = (Path(result.run_dir) / suite["data_docs"]).read_text(encoding="utf-8")
        assert f"suite {name}: {state}." in page
