"""Leases: exclusive ownership of a ledger (one watcher) or of an output root (one run).

A lease is a folder of small numbered JSON objects, ``<folder>/<generation>.json``, each created
with "create only if absent" (mode ``xb``: ``O_EXCL`` on a local disk, ``ifGenerationMatch=0`` on
GCS through gcsfs). The highest generation says who holds the lease: its owner, host, process,
heartbeat and expiry. Taking a lease, renewing it (the heartbeat) and releasing it each create the
next generation, so of two processes racing for the same generation exactly one succeeds, and a
holder that finds its next generation taken knows it lost the lease. A lease is alive until its
expiry, and on the same host only while its process exists (a killed process frees it at once).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import posixpath
import socket
import threading
import uuid

import fsspec

log = logging.getLogger(__name__)

TTL = 120.0  # seconds a heartbeat keeps a lease alive
KEEP = 3  # generations kept; older ones are pruned by the holder


class LeaseHeld(RuntimeError):
    """Another live process holds the lease. The message names its owner, host and process id."""


class LeaseLost(RuntimeError):
    """The lease was taken over (this process missed its heartbeats): it must not publish."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def alive(entry: dict | None, at: dt.datetime | None = None) -> bool:
    """Whether a lease entry still holds: not released, not expired, and on this host its process lives."""
    if not entry or entry.get("released"):
        return False
    if dt.datetime.fromisoformat(entry["expires"]) <= (at or _now()):
        return False
    return entry.get("host") != socket.gethostname() or _pid_exists(int(entry.get("pid", 0)))


class Lease:
    def __init__(self, folder: str, owner: str, ttl: float = TTL, **info):
        self.folder = folder.rstrip("/")
        self.fs, self._path = fsspec.core.url_to_fs(self.folder)
        self._path = self._path.rstrip("/")
        self.owner, self.ttl, self.info = owner, ttl, info
        self.token = uuid.uuid4().hex
        self.generation = 0
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # reading ---------------------------------------------------------------------------------
    def _generations(self) -> list[int]:
        try:
            names = self.fs.ls(self._path, detail=False)
        except FileNotFoundError:
            return []
        return sorted(int(n) for n in (posixpath.basename(p)[:-5] for p in names if p.endswith(".json")) if n.isdigit())

    def _read(self, generation: int) -> dict | None:
        try:
            with self.fs.open(f"{self._path}/{generation:012d}.json", "r", encoding="utf-8") as fh:
                return json.load(fh)
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def current(self) -> dict | None:
        """The entry of the highest generation (None: never taken)."""
        generations = self._generations()
        return self._read(generations[-1]) if generations else None

    # writing ---------------------------------------------------------------------------------
    def _create(self, generation: int, released: bool = False) -> bool:
        now = _now()
        entry = {"owner": self.owner, "host": socket.gethostname(), "pid": os.getpid(), "token": self.token,
                 "generation": generation, "heartbeat": now.isoformat(),
                 "expires": (now + dt.timedelta(seconds=self.ttl)).isoformat(), "released": released, **self.info}
        self.fs.makedirs(self._path, exist_ok=True)
        try:
            with self.fs.open(f"{self._path}/{generation:012d}.json", "xb") as fh:  # create only if absent
                fh.write(json.dumps(entry, indent=1).encode("utf-8"))
        except FileExistsError:
            return False
        self.generation = generation
        for old in self._generations()[:-KEEP]:
            self.fs.rm(f"{self._path}/{old:012d}.json")
        return True

    def acquire(self) -> "Lease":
        generations = self._generations()
        top = generations[-1] if generations else 0
        holder = self._read(top) if generations else None
        if alive(holder) and holder.get("token") != self.token:
            raise LeaseHeld(describe(holder, self.folder))
        if not self._create(top + 1):
            raise LeaseHeld(describe(self.current(), self.folder))
        log.info("lease %s taken by %s (generation %d)", self.folder, self.owner, self.generation)
        return self

    def renew(self) -> None:
        """The heartbeat: the next generation, or LeaseLost if someone else wrote it first."""
        if not self._create(self.generation + 1):
            self.lost = True
            raise LeaseLost(f"lease {self.folder} was taken over: {describe(self.current(), self.folder)}")

    def check(self) -> None:
        """Raise LeaseLost unless this process still holds the lease (call before publishing)."""
        top = self.current()
        if self.lost or not top or top.get("token") != self.token:
            raise LeaseLost(f"lease {self.folder} is no longer held by this process")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not self.lost and (self.current() or {}).get("token") == self.token:
            self._create(self.generation + 1, released=True)

    # heartbeat -------------------------------------------------------------------------------
    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except LeaseLost as exc:
                log.error("%s", exc)
                return
            except OSError:  # storage briefly unreachable: try again at the next beat
                log.warning("lease %s: heartbeat failed; retrying", self.folder, exc_info=True)

    def __enter__(self) -> "Lease":
        self.acquire()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{self.owner}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def describe(entry: dict | None, folder: str) -> str:
    if not entry:
        return f"lease {folder} is held by another process"
    return (f"lease {folder} is held by {entry.get('owner')} (host {entry.get('host')}, pid {entry.get('pid')}, "
            f"heartbeat {entry.get('heartbeat')}, expires {entry.get('expires')})")


def holder(folder: str) -> dict | None:
    """The live holder of the lease at ``folder``, or None."""
    entry = Lease(folder, "reader").current()
    return entry if alive(entry) else None
