"""``concilia watch --http-port``: the Pub/Sub push endpoint used on Cloud Run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from pipelines.service.ledger import Ledger
from tests.conftest import ROOT, SAMPLE_FEEDS


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_push_notifications_are_acknowledged_and_recorded(tmp_path):
    landing, out = tmp_path / "landing", tmp_path / "out"
    folder = landing / "pj" / "pj_convictions" / "2018"
    folder.mkdir(parents=True)
    (folder / "sentencias_2018.csv").write_bytes((SAMPLE_FEEDS / "pj" / "sentencias_2018.csv").read_bytes())
    (folder / "_READY").write_text("")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pipelines", "watch", "--landing", str(landing), "--out", str(out),
                             "--http-port", str(port), "--demo-key"], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                assert urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "the service did not come up"
                time.sleep(0.3)
        envelope = {"message": {"attributes": {"bucketId": "", "objectId": str(folder / "_READY"),
                                               "eventType": "OBJECT_FINALIZE"}, "data": ""},
                    "subscription": "projects/p/subscriptions/s"}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", data=json.dumps(envelope).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        assert urllib.request.urlopen(request, timeout=10).status == 204  # acknowledged at once
        bad = urllib.request.Request(f"http://127.0.0.1:{port}/", data=b"not json", method="POST")
        try:
            urllib.request.urlopen(bad, timeout=10)
            raise AssertionError("a malformed push was accepted")
        except urllib.error.HTTPError as exc:
            assert exc.code == 400
        ledger = Ledger(str(out / "_service"))
        while not ledger.deliveries():
            assert time.monotonic() < deadline, "the notified delivery was not recorded"
            time.sleep(0.3)
        assert [d.feed for d in ledger.deliveries()] == ["pj_convictions"]
        assert not (out / "runs").exists()  # PJ alone does not complete the period
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert proc.returncode == 0
