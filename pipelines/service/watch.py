"""``concilia watch``: notice deliveries, record them, run a period when it is complete.

One *cycle*: recover runs a crash interrupted; scan the landing zone and record each delivery in
the ledger (content-addressed, so a file dropped twice is a no-op); then for every period whose
required feeds have all been delivered (or, on a schedule tick, every period with something new)
run the pipeline over the period's latest delivery of each feed, unless a run over exactly those
inputs was already published. A corrected file is a new delivery, so its period runs again and
publishes a new version. The polling loop (``serve``) and a storage notification
(``handle_notification``: GCS object finalised, via Pub/Sub or Eventarc) drive the same cycle.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import fsspec

from pipelines import delta, publish
from pipelines.contracts import Contract, load_contracts
from pipelines.read import safe_name
from pipelines.service import landing
from pipelines.core.lease import Lease, holder
from pipelines.core.files import read_json
from pipelines.service.ledger import Ledger, RunRecord, input_hash
from pipelines.service.schedule import Schedule

log = logging.getLogger(__name__)

RETRIED = ("interrupted", "LeaseHeld")  # failures the next cycle retries (a kill; another run on OUT)
STATE_DIR = "_service"  # default ledger and staging folder under OUT (restricted: staged raw files)


def required_feeds(contracts: list[Contract]) -> set[str]:
    """Feeds a period needs before it runs on arrival: ``delivery: {required: true}`` in the contract."""
    return {c.feed for c in contracts if c.required_for_period}


@dataclass
class Plan:
    period: str
    inputs: dict[str, landing.Delivery]
    missing: list[str]
    input_hash: str
    arrived: str = ""  # when the last of its inputs arrived: runs started before it do not count

    @property
    def complete(self) -> bool:
        return not self.missing


@dataclass
class CycleReport:
    new_deliveries: list[str] = field(default_factory=list)  # feed/period/set_hash
    repeated_deliveries: list[str] = field(default_factory=list)
    pending: list[landing.Pending] = field(default_factory=list)
    published: list[str] = field(default_factory=list)  # run ids
    failed: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    waiting: dict[str, list[str]] = field(default_factory=dict)  # period -> missing required feeds


class Service:
    def __init__(self, landing_url: str, out: str, state: str | None = None, beam_args: list[str] | None = None,
                 extra_contracts: list[str] | None = None, run_kwargs: dict | None = None,
                 runner: Callable | None = None):
        self.landing = landing_url.rstrip("/")
        self.out = out.rstrip("/")
        self.state = (state or f"{self.out}/{STATE_DIR}").rstrip("/")
        self.beam_args = list(beam_args or [])
        self.extra_contracts = list(extra_contracts or [])
        self.run_kwargs = dict(run_kwargs or {})  # e.g. key=, public_threshold= for pipeline.run
        self.contracts = load_contracts(*self.extra_contracts)
        self.by_feed = {c.feed: c for c in self.contracts}
        self.required = required_feeds(self.contracts)
        self.ledger = Ledger(self.state)
        self._runner = runner  # pipeline.run by default; the signature is the same
        self._digests: dict = {}  # SHA-256s of landed files already read, by path, size and stamp

    def lease(self) -> Lease:
        """The ledger's lease: one watcher at a time (``with service.lease(): service.serve(...)``)."""
        return Lease(f"{self.state}/leases/watcher", "concilia watch", landing=self.landing, out=self.out)

    # planning --------------------------------------------------------------------------------
    def plan(self, period: str) -> Plan:
        latest = self.ledger.latest(period)
        return Plan(period=period, inputs=latest, missing=sorted(self.required - set(latest)),
                    input_hash=input_hash(latest), arrived=max((d.seen for d in latest.values()), default=""))

    def _done(self, plan: Plan, runs: list[RunRecord]) -> bool:
        """Inputs already published, in flight, or failed for a reason a retry would not fix, by a
        run started after they arrived (an earlier delivery sent again must run again: A, B, A)."""
        for r in runs:
            if r.input_hash != plan.input_hash or r.started < plan.arrived:
                continue
            if r.state in ("published", "started", "submitted"):
                return True
            if r.state == "failed" and r.states["failed"].get("reason") not in RETRIED:
                return True
        return False

    # the cycle -------------------------------------------------------------------------------
    def scan(self, report: CycleReport, periods: set[str] | None = None) -> None:
        deliveries, pending = landing.scan(self.landing, self.contracts, periods, self._digests)
        report.pending.extend(pending)
        root = fsspec.core.url_to_fs(self.landing)[1].rstrip("/")
        for p in pending:
            if p.kind != "pending":  # refused or unclaimed: kept in the ledger for `concilia status`
                folder = safe_name(fsspec.core.url_to_fs(p.folder)[1][len(root) + 1:])
                if self.ledger.record_notice(p.kind, folder, p.reason, p.feed, p.period):
                    log.warning("landing folder %s %s: %s", folder, p.kind, p.reason)
        for d in deliveries:
            _, new = self.ledger.record_delivery(d)
            tag = f"{d.feed}/{d.period}/{d.set_hash}"
            (report.new_deliveries if new else report.repeated_deliveries).append(tag)
            if new:
                log.info("delivery %s: %d file(s) recorded", tag, len(d.files))

    def cycle(self, scheduled: bool = False, periods: set[str] | None = None) -> CycleReport:
        report = CycleReport()
        self.recover(report)
        self.scan(report, periods)
        runs = self.ledger.runs()
        for period in sorted(periods if periods is not None else self.ledger.periods()):
            plan = self.plan(period)
            if not plan.inputs or self._done(plan, [r for r in runs if r.period == period]):
                continue
            if not plan.complete and not scheduled:
                report.waiting[period] = plan.missing
                log.info("period %s: waiting for %s", period, ", ".join(plan.missing))
                continue
            self.run_period(plan, report)
        return report

    def run_period(self, plan: Plan, report: CycleReport) -> str:
        from pipelines.pipeline import run as pipeline_run

        run_id = publish.new_run_id([{"source_file": f"{feed}/{f.name}", "sha256": f.sha256}
                                     for feed, d in plan.inputs.items() for f in d.files])
        feeds_root = f"{self.state}/staging/{run_id}"
        self.ledger.record_run(run_id, "started", plan.period, plan.inputs, missing=plan.missing)
        log.info("period %s: run %s over %d deliveries", plan.period, run_id, len(plan.inputs))
        try:
            for feed, delivery in sorted(plan.inputs.items()):
                landing.stage(delivery, self.by_feed[feed], feeds_root)
            runner = self._runner or pipeline_run
            result = runner(feeds_root, self.out, self.beam_args, self.extra_contracts,
                            period=plan.period, run_id=run_id, **self.run_kwargs)
        except Exception as exc:  # recorded and logged; the previous version stays current
            self.ledger.record_run(run_id, "failed", plan.period, plan.inputs, reason=exc.__class__.__name__,
                                   detail=str(exc)[:500])
            log.error("run %s failed (%s): %s", run_id, exc.__class__.__name__, exc)
            report.failed.append(run_id)
            return run_id
        finally:
            _remove(feeds_root)
        self.ledger.record_run(run_id, "published", plan.period, plan.inputs, run_dir=f"runs/{result.run_id}")
        report.published.append(run_id)
        return run_id

    # crash recovery --------------------------------------------------------------------------
    def recover(self, report: CycleReport) -> None:
        """Settle runs the ledger says started but never finished (the process was killed).

        A run whose process still holds OUT's run lease is left alone. If the period pointer
        already names the run and the run verifies, it was published: finish the global pointer
        and record it. Otherwise remove its partial folder and staging and record it as
        interrupted, so the cycle runs the same inputs again."""
        from pipelines.pipeline import run_lease  # here: the pipeline module imports the service's lease

        fs, out_path = fsspec.core.url_to_fs(self.out)
        running = (holder(run_lease(self.out)) or {}).get("run_id")
        for rec in self.ledger.runs():
            if rec.state != "started":
                continue
            if rec.run_id == running:  # its process still holds OUT's run lease: not ours to settle
                log.info("run %s is still running elsewhere (its lease is alive); left alone", rec.run_id)
                continue
            run_path = f"{out_path}/runs/{rec.run_id}"
            pointer = read_json(fs, f"{out_path}/periods/{rec.period}/current.json") or {}
            if pointer.get("run_id") == rec.run_id and not publish.verify_run(fs, run_path):
                current = read_json(fs, f"{out_path}/current.json") or {}
                if current.get("run_id") != rec.run_id and current.get("published", "") < pointer.get("published", ""):
                    publish.point_current(fs, out_path, rec.run_id)
                self.ledger.record_run(rec.run_id, "published", rec.period, rec.inputs, recovered=True,
                                       run_dir=f"runs/{rec.run_id}")
                log.warning("run %s: was published before an interruption; pointers completed", rec.run_id)
            else:
                if fs.exists(run_path):
                    fs.rm(run_path, recursive=True)
                delta.retract(self.out, rec.run_id)  # killed between its Delta commits and the pointers
                _remove(f"{self.state}/staging/{rec.run_id}")
                self.ledger.record_run(rec.run_id, "failed", rec.period, rec.inputs, reason="interrupted",
                                       detail="the process stopped before the run was published")
                log.warning("run %s: interrupted before publishing; partial output removed, will rerun", rec.run_id)
            report.recovered.append(rec.run_id)

    # drivers ---------------------------------------------------------------------------------
    def handle_notification(self, message: dict) -> CycleReport | None:
        """A storage notification -> one cycle for the period it concerns (None: not ours).

        Accepts a Pub/Sub message (``attributes``: bucketId, objectId, eventType; as pushed or
        pulled, data base64) or an Eventarc/CloudEvent ``data`` object (bucket, name). A Cloud
        Scheduler message with attribute ``concilia=schedule`` is a schedule tick, ``concilia=poll`` a
        plain cycle over every period (catches up notifications that were lost)."""
        message = message.get("message", message)  # Pub/Sub push wraps the message
        attrs = message.get("attributes") or {}
        if attrs.get("concilia") in ("schedule", "poll"):  # Cloud Scheduler: a tick, or a catch-up cycle
            return self.cycle(scheduled=attrs["concilia"] == "schedule")
        if "objectId" in attrs:
            if attrs.get("eventType", "OBJECT_FINALIZE") != "OBJECT_FINALIZE":
                return None
            bucket, name = attrs.get("bucketId", ""), attrs["objectId"]
        else:
            data = message.get("data", message)
            if isinstance(data, str):
                data = json.loads(base64.b64decode(data))
            bucket, name = data.get("bucket", ""), data.get("name", "")
        protocol = fsspec.core.url_to_fs(self.landing)[0].protocol
        protocol = protocol if isinstance(protocol, str) else protocol[0]
        url = f"gs://{bucket}/{name}" if bucket else f"{protocol}://{name}"
        where = landing.locate(self.landing, url, self.contracts)
        if where is None:
            return None
        return self.cycle(periods={where[1]})

    def serve(self, interval: float, schedule: Schedule | None = None, max_cycles: int | None = None,
              should_stop: Callable[[], bool] = lambda: False) -> int:
        """Poll every ``interval`` seconds (and tick on ``schedule``). Returns how many cycles or
        runs failed (a ``--once`` caller turns that into its exit code)."""
        cycles = failures = 0
        next_tick = schedule.next_after(time.time()) if schedule else None
        while max_cycles is None or cycles < max_cycles:
            scheduled = next_tick is not None and time.time() >= next_tick
            if scheduled:
                next_tick = schedule.next_after(time.time())
            cycles += 1
            try:
                report = self.cycle(scheduled=scheduled)
            except Exception:  # e.g. storage unreachable: log, keep the service alive, try next poll
                log.exception("cycle %d failed; retrying after %s s", cycles, interval)
                report = None
                failures += 1
            if report is not None:
                log.info("cycle %d%s: %d new, %d repeated, %d pending, published %s, failed %s", cycles,
                         " (scheduled)" if scheduled else "", len(report.new_deliveries),
                         len(report.repeated_deliveries), len(report.pending), report.published or "-",
                         report.failed or "-")
                failures += len(report.failed)
            if should_stop() or (max_cycles is not None and cycles >= max_cycles):
                break
            time.sleep(interval)
        return failures


def _remove(url: str) -> None:
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)
