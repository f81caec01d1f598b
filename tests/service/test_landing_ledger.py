"""Landing-zone delivery rule, ledger idempotency, schedule and notification mapping (no pipeline)."""

from __future__ import annotations

import hashlib
import time
import uuid

import fsspec
import pytest

from pipelines.contracts import load_contracts
from pipelines.service import landing
from pipelines.service.ledger import Ledger, input_hash
from pipelines.service.schedule import Schedule
from pipelines.service.watch import Service, required_feeds
from tests.conftest import SAMPLE_FEEDS

CONTRACTS = {c.feed: c for c in load_contracts()}
PJ = CONTRACTS["pj_convictions"]
PJ_FILE = SAMPLE_FEEDS / "pj" / "sentencias_2018.csv"


def _put(url: str, data: bytes) -> None:
    with fsspec.open(url, "wb") as fh:
        fh.write(data)


@pytest.fixture
def zone():
    root = f"memory://landing-{uuid.uuid4().hex}"
    yield root
    fs, path = fsspec.core.url_to_fs(root)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def test_required_feeds_come_from_the_contracts():
    required = required_feeds(load_contracts())
    assert required == {c.feed for c in CONTRACTS.values() if (c.raw.get("delivery") or {}).get("required")}
    assert {"pnp_victims", "mp_victims"} <= required and "pj_convictions" not in required


def test_a_folder_is_a_delivery_only_once_ready(zone):
    folder = f"{zone}/pj/pj_convictions/2018"
    data = PJ_FILE.read_bytes()
    _put(f"{folder}/sentencias_2018.csv", data)
    deliveries, pending = landing.scan(zone, [PJ])
    assert deliveries == [] and "no _READY" in pending[0].reason
    _put(f"{folder}/_READY", b"")
    deliveries, pending = landing.scan(zone, [PJ])
    assert pending == [] and len(deliveries) == 1
    d = deliveries[0]
    assert (d.feed, d.period, d.agency) == ("pj_convictions", "2018", "PJ")
    assert d.files[0].sha256 == hashlib.sha256(data).hexdigest() and d.files[0].bytes == len(data)


def test_a_checksum_marker_holds_back_a_partial_upload(zone):
    folder = f"{zone}/pj/pj_convictions/2019"
    data = PJ_FILE.read_bytes()
    _put(f"{folder}/_READY", f"{hashlib.sha256(data).hexdigest()}  sentencias_2019.csv\n".encode())
    _put(f"{folder}/sentencias_2019.csv", data[: len(data) // 2])  # upload still in progress
    deliveries, pending = landing.scan(zone, [PJ])
    assert deliveries == [] and "SHA-256 differs" in pending[0].reason
    _put(f"{folder}/sentencias_2019.csv", data)
    deliveries, _ = landing.scan(zone, [PJ])
    assert len(deliveries) == 1


def test_files_the_contract_would_not_read_keep_the_folder_pending(zone):
    folder = f"{zone}/pj/pj_convictions/2018"
    _put(f"{folder}/otra_cosa.csv", b"x")
    _put(f"{folder}/_READY", b"")
    deliveries, pending = landing.scan(zone, [PJ])
    assert deliveries == [] and "pattern" in pending[0].reason


def test_staging_lays_files_out_as_the_contract_expects(zone):
    folder = f"{zone}/pj/pj_convictions/2018"
    _put(f"{folder}/sentencias_2018.csv", PJ_FILE.read_bytes())
    _put(f"{folder}/_READY", b"")
    (d,), _ = landing.scan(zone, [PJ])
    feeds_root = f"{zone}-staged"
    landing.stage(d, PJ, feeds_root)
    from pipelines.read import discover_deliveries

    assert [(f, rel) for f, _, rel in discover_deliveries(feeds_root, [PJ])] == [("pj_convictions", "pj/sentencias_2018.csv")]
    _put(f"{folder}/sentencias_2018.csv", b"changed after the scan")
    with pytest.raises(landing.ChangedSinceScan):
        landing.stage(d, PJ, f"{zone}-staged2")


def test_the_ledger_records_a_delivery_once(zone):
    folder = f"{zone}/pj/pj_convictions/2018"
    _put(f"{folder}/sentencias_2018.csv", PJ_FILE.read_bytes())
    _put(f"{folder}/_READY", b"")
    ledger = Ledger(f"{zone}-state")
    (d,), _ = landing.scan(zone, [PJ])
    first, new = ledger.record_delivery(d)
    again, new_again = ledger.record_delivery(landing.scan(zone, [PJ])[0][0])
    assert new and not new_again and again.seen == first.seen
    assert len(ledger.deliveries()) == 1
    _put(f"{folder}/_READY", b"")  # the marker written again: same content, same delivery
    assert not ledger.record_delivery(landing.scan(zone, [PJ])[0][0])[1]
    _put(f"{folder}/sentencias_2018.csv", PJ_FILE.read_bytes().replace(b"\n", b"\r\n"))  # a correction
    corrected, new = ledger.record_delivery(landing.scan(zone, [PJ])[0][0])
    assert new and ledger.latest("2018")["pj_convictions"].set_hash == corrected.set_hash


def test_ledger_run_states_and_input_identity(tmp_path):
    ledger = Ledger(str(tmp_path / "state"))
    ledger.record_run("r1", "started", "2018", {"pj_convictions": "abc"})
    assert ledger.runs()[0].state == "started"
    ledger.record_run("r1", "published", "2018", {"pj_convictions": "abc"})
    (rec,) = ledger.runs()
    assert rec.state == "published" and rec.input_hash == input_hash({"pj_convictions": "abc"})
    assert not list((tmp_path / "state").rglob("*.tmp"))  # written via a rename, nothing left behind


def test_schedule_ticks_are_in_the_future():
    now = time.time()
    tick = Schedule("*/5 * * * *").next_after(now)
    assert now < tick <= now + 300
    with pytest.raises(ValueError):
        Schedule("every tuesday")


def test_a_storage_notification_maps_to_its_feed_and_period(tmp_path):
    contracts = load_contracts()
    assert landing.locate("gs://bucket/landing", "gs://bucket/landing/pnp/pnp_victims/2018/_READY",
                          contracts) == ("pnp_victims", "2018")
    assert landing.locate("gs://bucket/landing", "gs://bucket/other/pnp/pnp_victims/2018/x.csv", contracts) is None
    service = Service(str(tmp_path / "landing"), str(tmp_path / "out"))
    ignored = service.handle_notification({"message": {"attributes": {
        "bucketId": "b", "objectId": "x/y.csv", "eventType": "OBJECT_FINALIZE"}}})
    assert ignored is None


def test_a_pubsub_notification_runs_a_cycle_for_its_period(tmp_path):
    landing_dir, out = tmp_path / "landing", tmp_path / "out"
    folder = landing_dir / "pj" / "pj_convictions" / "2018"
    folder.mkdir(parents=True)
    (folder / "sentencias_2018.csv").write_bytes(PJ_FILE.read_bytes())
    (folder / "_READY").write_text("")
    service = Service(str(landing_dir), str(out))
    message = {"message": {"attributes": {"bucketId": "", "objectId": str(folder / "_READY"),
                                          "eventType": "OBJECT_FINALIZE"}, "data": ""}}
    report = service.handle_notification(message)
    # the delivery is recorded; PJ alone does not complete the period, so nothing runs
    assert report.new_deliveries == [f"pj_convictions/2018/{service.ledger.deliveries()[0].set_hash}"]
    assert report.published == [] and set(report.waiting["2018"]) == required_feeds(service.contracts)
    assert service.handle_notification(message).new_deliveries == []  # redelivered: a no-op
    assert not out.joinpath("runs").exists()


def test_person_memberships_compare_as_added_removed_merged_split_changed():
    from pipelines.service.diff import compare_persons

    a = {"p1": frozenset({"r1", "r2"}), "p2": frozenset({"r3"}), "p3": frozenset({"r4"}),
         "p4": frozenset({"r5", "r6"}), "p5": frozenset({"r7"}), "p6": frozenset({"r8", "r9"})}
    b = {"q1": frozenset({"r1", "r2"}),          # unchanged
         "q2": frozenset({"r3", "r4"}),          # p2 + p3 merged
         "q3": frozenset({"r5"}), "q4": frozenset({"r6"}),  # p4 split
         "q5": frozenset({"r10"}),               # added; p5 (r7) removed
         "q6": frozenset({"r8"})}                # p6 lost a record
    d = compare_persons(a, b)
    assert d["added"] == ["q5"] and d["removed"] == ["p5"]
    assert d["merged"] == {"q2": ["p2", "p3"]} and d["split"] == {"p4": ["q3", "q4"]}
    assert d["unchanged"] == 1 and d["changed"] == 1
    assert d["records_added"] == 1 and d["records_removed"] == 2
