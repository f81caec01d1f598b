"""The service end to end (the issue's acceptance test): files dropped into a landing folder while
``concilia watch`` runs; a complete period is processed once; the same file again changes
nothing; a corrected file, with the watcher killed mid-publish, leaves ``current`` on the previous
version; the next cycle recovers and publishes the new version, which ``concilia diff`` explains."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import fsspec
import pytest

from pipelines import publish
from pipelines.contracts import load_contracts
from pipelines.service.landing import MARKER, feed_folder
from pipelines.service.ledger import Ledger
from tests.conftest import ROOT, SAMPLE_FEEDS, TEST_RUNNER

pytestmark = pytest.mark.pipeline  # every test here runs the pipeline

PERIOD = "2018"
TIMEOUT = 420


def drop(landing: Path, feeds: list[str], marker: str = "") -> None:
    """Copy the sample files of ``feeds`` into the landing zone, the marker last (the delivery rule)."""
    for c in load_contracts():
        if c.feed not in feeds:
            continue
        folder = landing / feed_folder(c) / PERIOD
        folder.mkdir(parents=True, exist_ok=True)
        for f in sorted(SAMPLE_FEEDS.glob(c.files)):
            shutil.copyfile(f, folder / f.name)
        (folder / MARKER).write_text(marker)


def watch(landing: Path, out: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "pipelines", "watch", "--landing", str(landing), "--out", str(out),
           "--interval", "0.3", "--demo-key", f"--runner={TEST_RUNNER}", "-v", "--log-json", *extra]
    return subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=open(out.parent / f"watch-{time.monotonic_ns()}.log", "w"), text=True)


def wait_for(predicate, what: str, proc: subprocess.Popen | None = None, timeout: float = TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"watch exited ({proc.returncode}) before {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def pointer(path: Path) -> str | None:
    return json.loads(path.read_text())["run_id"] if path.exists() else None


def cycles_logged(log_dir: Path) -> int:
    return sum(1 for f in log_dir.glob("watch-*.log") for line in f.read_text().splitlines()
               if '"message": "cycle ' in line)


def test_watch_runs_once_ignores_repeats_and_recovers_from_a_kill_mid_publish(tmp_path):
    landing, out = tmp_path / "landing", tmp_path / "out"
    contracts = {c.feed: c for c in load_contracts()}
    required = sorted(f for f, c in contracts.items() if (c.raw.get("delivery") or {}).get("required"))
    optional = sorted(set(contracts) - set(required))
    landing.mkdir()
    ledger = Ledger(str(out / "_service"))

    proc = watch(landing, out)
    try:
        # an incomplete period waits: no run
        drop(landing, required[:-1] + optional)
        wait_for(lambda: len(ledger.deliveries()) == len(required) - 1 + len(optional), "the first deliveries", proc)
        wait_for(lambda: cycles_logged(tmp_path) >= 3, "a few cycles", proc)
        assert not (out / "current.json").exists() and not (out / "runs").exists()

        # the last required feed completes the period: exactly one run publishes
        drop(landing, required[-1:])
        wait_for(lambda: (out / "current.json").exists(), "the first publish", proc)
        first = pointer(out / "current.json")
        assert pointer(out / "periods" / PERIOD / "current.json") == first

        # the same file dropped again changes nothing
        seen = cycles_logged(tmp_path)
        drop(landing, required[-1:])
        wait_for(lambda: cycles_logged(tmp_path) >= seen + 3, "cycles after the repeat", proc)
        assert [p.name for p in (out / "runs").iterdir()] == [first]
        assert len(ledger.deliveries()) == len(contracts)
        assert [r.state for r in ledger.runs()] == ["published"]
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    assert proc.returncode == 0  # SIGTERM ends the loop cleanly

    # a corrected PJ file (one conviction withdrawn), announced with a checksum marker
    pj = landing / feed_folder(contracts["pj_convictions"]) / PERIOD
    (data_file,) = [p for p in pj.iterdir() if p.name != MARKER]
    lines = data_file.read_bytes().splitlines(keepends=True)
    corrected = b"".join(lines[:-1])
    data_file.write_bytes(corrected)
    (pj / MARKER).write_text(f"{hashlib.sha256(corrected).hexdigest()}  {data_file.name}\n")

    # the watcher is killed mid-publish: manifest written, pointers not yet switched
    flag = tmp_path / "paused"
    proc = watch(landing, out, env={publish.CRASH_ENV: "after_manifest", publish.CRASH_FILE_ENV: str(flag)})
    try:
        wait_for(flag.exists, "the pause mid-publish", proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert pointer(out / "current.json") == first
    assert pointer(out / "periods" / PERIOD / "current.json") == first
    killed = [r for r in ledger.runs() if r.state == "started"]
    assert len(killed) == 1 and (out / "runs" / killed[0].run_id / "manifest.json").exists()

    # the next cycle recovers: the partial run is dropped and the corrected period publishes once
    done = subprocess.run([sys.executable, "-m", "pipelines", "watch", "--landing", str(landing), "--out", str(out),
                           "--once", "--demo-key", f"--runner={TEST_RUNNER}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    second = pointer(out / "current.json")
    assert second not in (first, killed[0].run_id)
    assert pointer(out / "periods" / PERIOD / "current.json") == second
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted([first, second])
    fs = fsspec.filesystem("file")
    assert publish.verify_run(fs, str(out / "runs" / first)) == []  # the earlier version stays readable
    assert publish.verify_run(fs, str(out / "runs" / second)) == []
    assert sorted(p.stem for p in (out / "periods" / PERIOD / "versions").iterdir()) == sorted([first, second])
    states = {r.run_id: (r.state, (r.states.get("failed") or {}).get("reason")) for r in ledger.runs()}
    assert states == {first: ("published", None), killed[0].run_id: ("failed", "interrupted"),
                      second: ("published", None)}

    # a second --once finds nothing to do
    again = subprocess.run([sys.executable, "-m", "pipelines", "watch", "--landing", str(landing), "--out", str(out),
                            "--once", "--demo-key", f"--runner={TEST_RUNNER}"], cwd=ROOT, capture_output=True,
                           text=True, timeout=TIMEOUT)
    assert again.returncode == 0 and pointer(out / "current.json") == second
    assert len(list((out / "runs").iterdir())) == 2

    # concilia diff explains the new version
    diff = subprocess.run([sys.executable, "-m", "pipelines", "diff", first, second, "--out", str(out), "--json"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert diff.returncode == 0, diff.stderr
    d = json.loads(diff.stdout)
    assert d["changed_input_files"] == [f"pj/{data_file.name}"]
    pj_change = {c["category"]: c["change"] for c in d["counts"] if c["agency"] == "PJ"}
    assert pj_change["offenders"] == -1
    assert d["persons"]["offenders"]["records_removed"] == 1 and d["persons"]["offenders"]["records_added"] == 0
    offenders = d["persons"]["offenders"]
    assert len(offenders["removed"]) + offenders["changed"] == 1  # the convicted person lost that record
    assert d["persons"]["victims"]["records_removed"] == 0 and not d["persons"]["victims"]["added"]
    text = subprocess.run([sys.executable, "-m", "pipelines", "diff", first, second, "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120).stdout
    assert "PJ" in text and "offenders" in text

    # concilia status says what is current
    status = subprocess.run([sys.executable, "-m", "pipelines", "status", "--out", str(out), "--landing",
                             str(landing), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    s = json.loads(status.stdout)
    assert s["current"]["run_id"] == second and s["periods"][PERIOD]["current"] == second
    assert {r["run_id"]: r["state"] for r in s["runs"]} == {second: "current", first: "published"}
    assert s["deliveries_not_published"] == []
    assert s["landing_pending"] == []
