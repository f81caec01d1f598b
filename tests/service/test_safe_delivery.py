"""Safe delivery (issue 13): leases (one watcher per ledger, one run per OUT), landing-zone
containment, unclaimed folders, corrections by arrival (A, B, A), and what `status` calls a run.
No real pipeline runs here: the service is given a recording runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

import fsspec
import pytest

from pipelines import publish
from pipelines.cli import main
from pipelines.options import EXIT_BUSY
from pipelines.contracts import load_contracts
from pipelines.pipeline import run_lease, sweep_stale_runs
from pipelines.service import landing
from pipelines.core.lease import Lease, LeaseHeld, LeaseLost, alive, holder
from pipelines.service.ledger import Ledger
from pipelines.service.status import render, status
from pipelines.service.watch import CycleReport, Service, required_feeds
from tests.conftest import ROOT, SAMPLE_FEEDS

FS = fsspec.filesystem("file")
CONTRACTS = {c.feed: c for c in load_contracts()}
PERIOD = "2018"


# --- leases ------------------------------------------------------------------------------------

def test_a_lease_is_exclusive_and_a_race_for_one_generation_has_one_winner(tmp_path):
    folder = str(tmp_path / "lease")
    first = Lease(folder, "first").acquire()
    with pytest.raises(LeaseHeld, match="held by first"):
        Lease(folder, "second").acquire()
    # two contenders for the same next generation: create-only-if-absent lets exactly one through
    a, b = Lease(folder, "a"), Lease(folder, "b")
    assert [a._create(first.generation + 1), b._create(first.generation + 1)] == [True, False]
    with pytest.raises(LeaseLost):  # the first holder's next heartbeat finds its generation taken
        first.renew()
    with pytest.raises(LeaseLost):
        first.check()


def test_a_released_expired_or_dead_holder_frees_the_lease(tmp_path):
    folder = str(tmp_path / "lease")
    with Lease(folder, "w1"):
        assert holder(folder)["owner"] == "w1"
    assert holder(folder) is None  # released
    Lease(folder, "short", ttl=0.05).acquire()
    time.sleep(0.1)
    assert holder(folder) is None and Lease(folder, "next").acquire().generation > 1  # expired
    elsewhere = {"owner": "w", "host": "another-host", "pid": 1, "expires": "2999-01-01T00:00:00+00:00"}
    assert alive(elsewhere) and not alive({**elsewhere, "host": os.uname().nodename, "pid": 2 ** 22 + 7})
    # a holder killed with SIGKILL on this host frees it at once, whatever its expiry
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom pipelines.core.lease import Lease\n"
                             "Lease(sys.argv[1], 'victim', ttl=3600).acquire(); print('held', flush=True); "
                             "time.sleep(600)", folder + "2"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    assert holder(folder + "2")["owner"] == "victim"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert holder(folder + "2") is None


def test_a_second_run_on_the_same_out_refuses_with_exit_7(tmp_path, capsys):
    out = tmp_path / "out"
    with Lease(run_lease(str(out)), "concilia run X", run_id="X"):
        code = main(["run", "--feeds", str(SAMPLE_FEEDS), "--out", str(out), "--demo-key", "--runner=FnApiRunner"])
    assert code == EXIT_BUSY == 7
    assert "held by concilia run X" in capsys.readouterr().err
    assert not (out / "current.json").exists() and not (out / "runs").exists()


def test_a_second_watcher_on_the_same_ledger_refuses_to_start(tmp_path):
    landing_dir, out = tmp_path / "landing", tmp_path / "out"
    landing_dir.mkdir()
    cmd = [sys.executable, "-m", "pipelines", "watch", "--landing", str(landing_dir), "--out", str(out),
           "--interval", "0.2", "--demo-key"]
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while holder(str(out / "_service" / "leases" / "watcher")) is None:
            assert first.poll() is None and time.monotonic() < deadline, "the first watcher did not take its lease"
            time.sleep(0.2)
        second = subprocess.run([*cmd, "--once"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert second.returncode == EXIT_BUSY, second.stderr
        assert "held by concilia watch" in second.stderr
        assert first.poll() is None  # the first watcher is untouched
        assert status(str(out))["leases"]["watcher"]["pid"] == first.pid
    finally:
        first.terminate()
        first.wait(timeout=60)
    assert first.returncode == 0 and holder(str(out / "_service" / "leases" / "watcher")) is None


# --- the service with a recording runner ---------------------------------------------------------

@dataclass
class Result:
    run_id: str


class Recorder:
    """Stands in for pipeline.run: records the staged files' contents and publishes an empty run."""

    def __init__(self):
        self.inputs: list[dict[str, bytes]] = []

    def __call__(self, feeds_root, out, beam_args, extra, period=None, run_id=None, **kw):
        staged = {p[len(feeds_root) + 1:]: FS.cat_file(p) for p in FS.find(feeds_root)}
        self.inputs.append(staged)
        fs, out_path = fsspec.core.url_to_fs(out)
        run_path = f"{out_path}/runs/{run_id}"
        fs.makedirs(run_path, exist_ok=True)
        (fs.open(f"{run_path}/manifest.json", "w")).write(json.dumps({"outputs": {}, "status": "published"}))
        publish.point_current(fs, out_path, run_id, period)
        return Result(run_id)


def deliver(landing_dir, feed: str, name: str, data: bytes) -> None:
    folder = landing_dir / landing.feed_folder(CONTRACTS[feed]) / PERIOD
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    (folder / name).write_bytes(data)
    (folder / landing.MARKER).write_text("")


def file_name(feed: str) -> str:
    return os.path.basename(CONTRACTS[feed].files).replace("*", PERIOD)


@pytest.fixture
def service(tmp_path):
    landing_dir = tmp_path / "landing"
    for feed in sorted(required_feeds(list(CONTRACTS.values()))):
        deliver(landing_dir, feed, file_name(feed), f"{feed} rows".encode())
    recorder = Recorder()
    return Service(str(landing_dir), str(tmp_path / "out"), runner=recorder), landing_dir, recorder


def test_a_correction_withdrawn_by_sending_the_earlier_file_again_makes_it_current(service):
    service, landing_dir, recorder = service
    pj = file_name("pj_convictions")
    staged = f"pj/{pj}"
    for content in (b"A", b"B", b"A"):
        deliver(landing_dir, "pj_convictions", pj, content)
        report = service.cycle()
        assert len(report.published) == 1 and recorder.inputs[-1][staged] == content
    assert [i[staged] for i in recorder.inputs] == [b"A", b"B", b"A"]
    assert service.cycle().published == []  # nothing new arrived: nothing runs
    s = status(service.out)
    active = s["active_deliveries"][PERIOD]["pj_convictions"]
    assert active["files"] == [pj] and active["set_hash"] == service.ledger.latest(PERIOD)["pj_convictions"].set_hash
    assert s["current"]["run_id"] == service.ledger.runs()[-1].run_id
    assert "active deliveries" in render(s)


def test_links_out_of_the_landing_zone_are_refused_and_reported(service, tmp_path):
    service, landing_dir, recorder = service
    secret = tmp_path / "elsewhere"
    (secret / PERIOD).mkdir(parents=True)
    (secret / PERIOD / file_name("pj_convictions")).write_bytes(b"outside")
    (secret / PERIOD / landing.MARKER).write_text("")
    sunafil_feed = landing_dir / landing.feed_folder(CONTRACTS["sunafil_findings"])
    # a symlinked period folder, a symlinked file in a real folder, and a folder named '..'-wise
    (landing_dir / "pj" / "pj_convictions").mkdir(parents=True)
    (landing_dir / "pj" / "pj_convictions" / PERIOD).symlink_to(secret / PERIOD)
    sunafil_feed.joinpath(PERIOD).mkdir(parents=True)
    sunafil_feed.joinpath(PERIOD, "hallazgos_2018.csv").symlink_to(secret / PERIOD / file_name("pj_convictions"))
    sunafil_feed.joinpath(PERIOD, landing.MARKER).write_text("")
    (landing_dir / "ong").mkdir()  # an agency no contract knows
    (landing_dir / "pnp" / "pnp_extra").mkdir()  # a feed no contract knows

    report = service.cycle()
    assert all(b"outside" not in v for staged in recorder.inputs for v in staged.values())
    refused = sorted((p.feed, p.kind) for p in report.pending if p.kind == "refused")
    assert refused == [("pj_convictions", "refused"), ("sunafil_findings", "refused")]
    s = status(service.out)
    assert sorted(n["folder"] for n in s["refused"]) == ["pj/pj_convictions/2018", "sunafil/sunafil_findings/2018"]
    assert sorted(n["folder"] for n in s["unclaimed"]) == ["ong", "pnp/pnp_extra"]
    text = render(s)
    assert "landing folders refused: 2" in text and "landing folders unclaimed: 2" in text
    # a path with a '..' segment never counts as inside, on any store
    assert not landing.contained(FS, str(landing_dir), f"{landing_dir}/pj/../../elsewhere")


def test_recovery_leaves_a_run_whose_lease_is_alive_and_settles_it_after(service):
    service, _, _ = service
    service.scan(CycleReport())
    plan = service.plan(PERIOD)
    service.ledger.record_run("R1", "started", PERIOD, plan.inputs)
    partial = fsspec.core.url_to_fs(service.out)[1] + "/runs/R1/persons"
    FS.makedirs(partial, exist_ok=True)
    with Lease(run_lease(service.out), "concilia run R1", run_id="R1"):
        report = CycleReport()
        service.recover(report)
        assert report.recovered == [] and FS.exists(partial)
        assert [r["state"] for r in status(service.out)["runs"] if r["run_id"] == "R1"] == ["running"]
    report = CycleReport()
    service.recover(report)
    assert report.recovered == ["R1"] and not FS.exists(partial)


def test_stale_partial_runs_are_swept_and_status_never_calls_a_killed_run_published(tmp_path):
    out = tmp_path / "out"
    for run_id in ("partial", "unswitched", "switched"):
        (out / "runs" / run_id).mkdir(parents=True)
    for run_id in ("unswitched", "switched"):
        (out / "runs" / run_id / "manifest.json").write_text(json.dumps({"outputs": {}, "status": "published"}))
    publish.point_current(FS, str(out), "switched")
    states = {r["run_id"]: r["state"] for r in status(str(out))["runs"]}
    assert states == {"partial": "incomplete", "unswitched": "not published", "switched": "current"}
    publish.point_current(FS, str(out), "unswitched")  # a later run became current: the first stays published
    assert {r["run_id"]: r["state"] for r in status(str(out))["runs"]}["switched"] == "published"
    assert sweep_stale_runs(str(out)) == ["partial"]
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["switched", "unswitched"]
