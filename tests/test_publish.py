"""Atomic publishing and crash safety: a run folder publishes only when it holds exactly what its
manifest lists; a process killed at any step leaves ``current`` where it was; the service's
recovery completes a run that was published and drops one that was not."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import delta, publish
from pipelines.service.ledger import Ledger
from pipelines.service.watch import CycleReport, Service
from tests.conftest import ROOT, SAMPLE_FEEDS, TEST_RUNNER

FS = fsspec.filesystem("file")


def _run_folder(tmp_path):
    run = tmp_path / "runs" / "r1"
    (run / "persons").mkdir(parents=True)
    pq.write_table(pa.table({"person_id": ["a", "b"]}), run / "persons" / "part-00000-of-00001.parquet")
    outputs = {"persons": {"zone": "pseudonymised", "rows": 2, "files": [
        {"path": "persons/part-00000-of-00001.parquet", "bytes": (run / "persons" / "part-00000-of-00001.parquet").stat().st_size,
         "sha256": "x"}]}}
    return run, outputs


def test_a_beam_temp_leftover_blocks_the_publish(tmp_path):
    run, outputs = _run_folder(tmp_path)
    temp = run / "persons" / "beam-temp-part-0f3c" / "0f3c.parquet"
    temp.parent.mkdir()
    temp.write_bytes(b"PAR1")
    assert publish.complete_listing(FS, str(run), outputs) == ["persons/beam-temp-part-0f3c/0f3c.parquet"]


def test_files_under_a_declared_folder_are_listed_and_strays_block(tmp_path):
    run, outputs = _run_folder(tmp_path)
    (run / "persons" / "README.txt").write_text("about the persons table")
    (run / "stray.bin").write_bytes(b"?")
    assert publish.complete_listing(FS, str(run), outputs) == ["stray.bin"]
    assert [f["path"] for f in outputs["persons"]["files"]][-1] == "persons/README.txt"


def test_files_cut_short_after_the_job_break_the_accounting(tmp_path):
    """The finaliser reads no table, but the footers' row counts of what was written must be what
    the job counted (a lost row, a lost shard: exit 4, nothing published)."""
    from pipelines.aggregates import RunSummary

    run, outputs = _run_folder(tmp_path)
    outputs = {**publish.list_outputs(FS, str(run))}
    whole = RunSummary(persons={"victim": {"persons": 2}}, quarantine={"total": 0})
    publish.check_written(whole, outputs)
    with pytest.raises(publish.AccountingError, match="persons holds 2 rows, the job counted 3"):
        publish.check_written(RunSummary(persons={"victim": {"persons": 3}}), outputs)
    with pytest.raises(publish.AccountingError, match="harmonised/victims holds 0 rows, the job counted 5"):
        publish.check_written(RunSummary(records={"victim": {"feeds": {"f": 5}}}, persons={"victim": {"persons": 2}}),
                              outputs)


def test_verify_run_checks_both_directions(tmp_path):
    run, outputs = _run_folder(tmp_path)
    assert publish.verify_run(FS, str(run)) == ["no complete manifest.json"]
    (run / "manifest.json").write_text(json.dumps({"outputs": outputs}))
    assert publish.verify_run(FS, str(run)) == []
    (run / "persons" / "extra.parquet").write_bytes(b"PAR1")
    assert publish.verify_run(FS, str(run)) == ["unlisted file persons/extra.parquet"]
    (run / "persons" / "extra.parquet").unlink()
    (run / "persons" / "part-00000-of-00001.parquet").unlink()
    assert publish.verify_run(FS, str(run)) == ["listed output persons/part-00000-of-00001.parquet is missing"]


RUN_SNIPPET = """
import sys
from pipelines import privacy
from pipelines.pipeline import run
run(sys.argv[1], sys.argv[2], ["--runner={runner}"], key=privacy.demo_key(), period="2018", allow_missing=["*"])
"""


def _killed_run(feeds, out, step, tmp_path) -> None:
    """Start a run in a child process, let it reach ``step``, then SIGKILL it."""
    flag = tmp_path / f"paused-{step}"
    env = {**os.environ, publish.CRASH_ENV: step, publish.CRASH_FILE_ENV: str(flag)}
    proc = subprocess.Popen([sys.executable, "-c", RUN_SNIPPET.format(runner=TEST_RUNNER), str(feeds), str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time

        deadline = time.monotonic() + 420
        while not flag.exists():
            assert proc.poll() is None, f"the run exited ({proc.returncode}) before reaching {step}"
            assert time.monotonic() < deadline, f"timed out waiting for {step}"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)


def _pointer(path):
    return json.loads(path.read_text())["run_id"] if path.exists() else None


@pytest.fixture(scope="module")
def small_feeds(tmp_path_factory):
    feeds = tmp_path_factory.mktemp("feeds")
    for agency in ("sunafil", "pj"):
        (feeds / agency).mkdir()
        for f in (SAMPLE_FEEDS / agency).iterdir():
            (feeds / agency / f.name).write_bytes(f.read_bytes())
    return feeds


@pytest.mark.pipeline
def test_kills_before_and_during_publish_leave_the_previous_version(small_feeds, tmp_path):
    from pipelines import privacy
    from pipelines.pipeline import run

    out = tmp_path / "out"
    first = run(str(small_feeds), str(out), [f"--runner={TEST_RUNNER}"], key=privacy.demo_key(), period="2018",
                allow_missing=["*"]).run_id

    # killed after the Beam pipeline wrote its outputs, before anything was published
    _killed_run(small_feeds, out, "before_finalise", tmp_path)
    assert _pointer(out / "current.json") == first
    assert _pointer(out / "periods" / "2018" / "current.json") == first
    orphans = [p.name for p in (out / "runs").iterdir() if p.name != first]
    assert len(orphans) == 1 and publish.verify_run(FS, str(out / "runs" / orphans[0]))  # not publishable
    assert publish.verify_run(FS, str(out / "runs" / first)) == []

    # killed between the period pointer and current.json (mid-publish)
    _killed_run(small_feeds, out, "after_period_pointer", tmp_path)
    assert _pointer(out / "current.json") == first
    switched = _pointer(out / "periods" / "2018" / "current.json")
    assert switched != first and publish.verify_run(FS, str(out / "runs" / switched)) == []

    # killed between its Delta commits and the pointers: not published, so its commits are retracted
    _killed_run(small_feeds, out, "after_tables", tmp_path)
    uncommitted = next(p.name for p in (out / "runs").iterdir() if p.name not in (first, switched, orphans[0]))
    assert delta.committed_run(str(out / "tables" / "persons")) == uncommitted

    # the service's recovery settles them: the published one is completed (no rerun), the others dropped
    ledger = Ledger(str(out / "_service"))
    for run_id in (orphans[0], switched, uncommitted):
        ledger.record_run(run_id, "started", "2018", {"pj_convictions": run_id})
    report = CycleReport()
    Service(str(tmp_path / "landing"), str(out)).recover(report)
    assert sorted(report.recovered) == sorted([orphans[0], switched, uncommitted])
    assert _pointer(out / "current.json") == switched
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted([first, switched])
    states = {r.run_id: r.state for r in ledger.runs()}
    assert states == {orphans[0]: "failed", switched: "published", uncommitted: "failed"}
    from deltalake import DeltaTable

    persons = DeltaTable(str(out / "tables" / "persons"))
    assert persons.history(1)[0][delta.RUN_ID_KEY] == f"retracted {uncommitted}"
    assert set(persons.to_pyarrow_table(columns=["run_id"]).column("run_id").to_pylist()) == {switched}
