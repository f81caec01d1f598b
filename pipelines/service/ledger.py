"""The service's ledger: which deliveries were seen and which runs were started, published or
failed. Embedded, no server: small JSON objects under a folder at any fsspec URL.

    STATE/ledger/deliveries/<feed>/<period>/<set_hash>.json   one per distinct delivery content
    STATE/ledger/arrivals/<feed>/<period>/<time>-<set_hash>.json  each time the landed content changed
    STATE/ledger/runs/<run_id>/<state>.json                    started | submitted | published | failed
    STATE/ledger/notices/<kind>/<hash>.json                    landing folders refused or unclaimed

Every entry is a new object whose name is derived from what it records; nothing is ever appended
to or rewritten. That keeps it sound on object stores (``gs://`` has no append and no rename, but
an object upload is atomic and listing is strongly consistent): a delivery seen twice maps to the
same name and is a no-op; a run's states are separate objects, so a crash between two of them
leaves the earlier state readable. On a local disk each object is written to a temporary name and
renamed into place. One watcher writes a given ledger: it holds the ledger's lease
(``pipelines.core.lease``, docs/service.md).

Corrections go by arrival, not by content: the active delivery of a feed and period is the one
that arrived last, so delivering A, then B, then A again makes A active again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass, field

import fsspec

from pipelines.core.files import read_json, write_json_atomic
from pipelines.service.landing import Delivery

log = logging.getLogger(__name__)

RUN_STATES = ("started", "submitted", "published", "failed")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")


def input_hash(inputs: dict[str, Delivery] | dict[str, str]) -> str:
    """Identity of a run's inputs: the content (set hash) of every delivery it reads, per feed."""
    hashes = {f: (d.set_hash if isinstance(d, Delivery) else d) for f, d in inputs.items()}
    return hashlib.sha256(json.dumps(sorted(hashes.items())).encode()).hexdigest()[:16]


@dataclass
class RunRecord:
    run_id: str
    period: str
    input_hash: str
    inputs: dict[str, str]  # feed -> delivery set_hash
    states: dict[str, dict] = field(default_factory=dict)  # state -> its entry

    @property
    def state(self) -> str:
        for s in ("published", "failed", "submitted", "started"):
            if s in self.states:
                return s
        return "unknown"

    @property
    def started(self) -> str:
        return (self.states.get("started") or next(iter(self.states.values()), {})).get("time", "")


class Ledger:
    def __init__(self, root: str):
        self.root = root.rstrip("/")
        self.fs, self._path = fsspec.core.url_to_fs(self.root)
        self._path = self._path.rstrip("/")

    # deliveries ------------------------------------------------------------------------------
    def _delivery_path(self, d: Delivery) -> str:
        return f"{self._path}/ledger/deliveries/{d.feed}/{d.period}/{d.set_hash}.json"

    def record_delivery(self, delivery: Delivery) -> tuple[Delivery, bool]:
        """Record a delivery's arrival; (the recorded delivery, True) if it differs from the
        feed's last arrival in its period, (the recorded delivery, False) if it is the same (a
        repeat: a no-op). Content seen before but not last (A, B, A) arrives again."""
        path = self._delivery_path(delivery)
        existing = read_json(self.fs, path)
        entry = Delivery.from_json(existing) if existing is not None else Delivery(**{**delivery.__dict__, "seen": now()})
        if existing is None:
            write_json_atomic(self.fs, path, entry.to_json())
        last = self.arrivals(delivery.period).get(delivery.feed, [])
        if existing is not None and last and last[-1][1] == entry.set_hash:
            return entry, False
        arrived = entry.seen if existing is None else now()
        stamp = dt.datetime.fromisoformat(arrived).strftime("%Y%m%dT%H%M%S%fZ")
        write_json_atomic(self.fs, f"{self._path}/ledger/arrivals/{delivery.feed}/{delivery.period}/"
                                   f"{stamp}-{entry.set_hash}.json", {"arrived": arrived, "set_hash": entry.set_hash})
        return entry, True

    def arrivals(self, period: str) -> dict[str, list[tuple[str, str]]]:
        """Per feed, [(arrival time, set_hash)] in order of arrival. A delivery recorded before
        arrivals were kept counts as arriving when it was first seen."""
        found: dict[str, set[tuple[str, str]]] = {}
        for path in self.fs.glob(f"{self._path}/ledger/arrivals/*/{period}/*.json"):
            entry = read_json(self.fs, path)
            if entry is not None:
                found.setdefault(path.split("/")[-3], set()).add((entry["arrived"], entry["set_hash"]))
        before: dict[str, set[tuple[str, str]]] = {}
        for d in self.deliveries(period):
            before.setdefault(d.feed, set()).add((d.seen, d.set_hash))
        return {feed: sorted(found.get(feed) or seen) for feed, seen in before.items()}

    def deliveries(self, period: str | None = None) -> list[Delivery]:
        pattern = f"{self._path}/ledger/deliveries/*/{period or '*'}/*.json"
        found = []
        for path in sorted(self.fs.glob(pattern)):
            entry = read_json(self.fs, path)
            if entry is not None:
                found.append(Delivery.from_json(entry))
        return found

    def latest(self, period: str) -> dict[str, Delivery]:
        """Per feed, the delivery of a period that arrived last: a correction supersedes, and a
        delivery sent again after it supersedes the correction."""
        by_hash = {(d.feed, d.set_hash): d for d in self.deliveries(period)}
        chosen: dict[str, Delivery] = {}
        for feed, arrivals in self.arrivals(period).items():
            arrived, set_hash = arrivals[-1]
            if (feed, set_hash) in by_hash:
                chosen[feed] = Delivery(**{**by_hash[(feed, set_hash)].__dict__, "seen": arrived})
        return chosen

    # notices: landing folders the service refused or no contract claims ---------------------------
    def record_notice(self, kind: str, folder: str, reason: str, feed: str = "", period: str = "") -> bool:
        """Record a refused or unclaimed landing folder once (True when new)."""
        key = hashlib.sha256(json.dumps([kind, folder, reason, feed, period]).encode()).hexdigest()[:16]
        path = f"{self._path}/ledger/notices/{kind}/{key}.json"
        if self.fs.exists(path):
            return False
        write_json_atomic(self.fs, path, {"kind": kind, "folder": folder, "reason": reason, "feed": feed,
                                          "period": period, "seen": now()})
        return True

    def notices(self) -> list[dict]:
        return sorted((e for e in (read_json(self.fs, p) for p in self.fs.glob(f"{self._path}/ledger/notices/*/*.json"))
                       if e is not None), key=lambda e: e["seen"])

    def periods(self) -> list[str]:
        return sorted({d.period for d in self.deliveries()})

    # runs ------------------------------------------------------------------------------------
    def record_run(self, run_id: str, state: str, period: str, inputs: dict[str, Delivery] | dict[str, str],
                   **info) -> None:
        if state not in RUN_STATES:
            raise ValueError(f"unknown run state {state!r}")
        hashes = {f: (d.set_hash if isinstance(d, Delivery) else d) for f, d in inputs.items()}
        entry = {"run_id": run_id, "state": state, "time": now(), "period": period,
                 "input_hash": input_hash(hashes), "inputs": hashes, **info}
        write_json_atomic(self.fs, f"{self._path}/ledger/runs/{run_id}/{state}.json", entry)

    def runs(self, period: str | None = None) -> list[RunRecord]:
        records: dict[str, RunRecord] = {}
        for path in sorted(self.fs.glob(f"{self._path}/ledger/runs/*/*.json")):
            entry = read_json(self.fs, path)
            if entry is None or (period and entry.get("period") != period):
                continue
            rec = records.setdefault(entry["run_id"], RunRecord(entry["run_id"], entry["period"], entry["input_hash"],
                                                                entry["inputs"]))
            rec.states[entry["state"]] = entry
        return sorted(records.values(), key=lambda r: (r.started, r.run_id))
