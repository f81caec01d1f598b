"""The landing zone: where agencies drop files, and the rule that says a delivery is complete.

Layout (any fsspec URL: a local folder, ``memory://``, ``gs://``)::

    LANDING/<agency>/<feed>/<period>/<data files...>
    LANDING/<agency>/<feed>/<period>/_READY

``<agency>`` is the contract's agency in lower case, ``<feed>`` its feed id, ``<period>`` the
reporting period (``2018``, ``2018-06``...). A folder is a *delivery* only once ``_READY`` exists,
and the agency writes ``_READY`` last. ``_READY`` may be empty, or list the files with their
SHA-256 in ``sha256sum`` format (``<hex>  <name>`` per line); when it lists them, the delivery is
taken only if exactly those files are present with exactly those digests, so a file still being
uploaded (or replaced) is never read. Names starting with ``_`` or ``.`` are not data.

Every path is resolved against the landing root first: a folder or file that leads outside it (a
symbolic link, a ``..`` segment) is *refused*, never read or staged. Folders no contract claims
(an unknown agency or feed) are *unclaimed*. Both are reported as ``Pending`` with their kind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import posixpath
import re
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatch

import fsspec

from pipelines.contracts import Contract

log = logging.getLogger(__name__)

MARKER = "_READY"
PERIOD_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,31}$")
_SHA_LINE = re.compile(r"^([0-9a-fA-F]{64})\s+\*?(.+)$")


@dataclass(frozen=True)
class LandedFile:
    name: str
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Delivery:
    """One complete delivery of one feed for one period (a content-addressed set of files)."""

    agency: str
    feed: str
    period: str
    files: tuple[LandedFile, ...]
    folder: str  # URL of the landing folder
    seen: str = ""  # when the ledger first recorded it (ISO 8601, UTC)

    @property
    def set_hash(self) -> str:
        return set_hash(self.files)

    def to_json(self) -> dict:
        d = asdict(self)
        d["files"] = [asdict(f) for f in self.files]
        d["set_hash"] = self.set_hash
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Delivery":
        return cls(agency=d["agency"], feed=d["feed"], period=d["period"], folder=d["folder"], seen=d.get("seen", ""),
                   files=tuple(LandedFile(**f) for f in d["files"]))


@dataclass
class Pending:
    """A landing folder that is not (yet) a delivery, and why: shown by ``concilia status``.
    ``kind``: pending (not complete yet), refused (leads outside the landing zone), unclaimed
    (no contract claims the folder)."""

    feed: str
    period: str
    folder: str
    reason: str
    files: list[str] = field(default_factory=list)
    kind: str = "pending"


def _is_local(fs) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return protocol in ("file", "local")


def contained(fs, root: str, path: str) -> bool:
    """Whether ``path`` lies inside ``root`` once resolved: no ``..`` segment, and on a local disk
    no symbolic link leading out (object stores have no links; their names are taken literally)."""
    root = root.rstrip("/")
    if ".." in path.split("/") or not (path == root or path.startswith(root + "/")):
        return False
    if not _is_local(fs):
        return True
    real_root = os.path.realpath(root)
    return os.path.commonpath([os.path.realpath(path), real_root]) == real_root


def set_hash(files) -> str:
    payload = json.dumps(sorted((f.name, f.sha256) for f in files))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def sha256_of(fs, path: str) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with fs.open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def _url(fs, path: str) -> str:
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    return path if _is_local(fs) else f"{protocol}://{path}"


def feed_folder(contract: Contract) -> str:
    """The folder of a feed in the landing zone, relative to its root."""
    return f"{contract.agency.lower()}/{contract.feed}"


def staged_name(contract: Contract, name: str) -> str | None:
    """Where a landed file goes under a feeds root laid out as the contract expects (None: it
    does not match the contract's ``source.files`` pattern)."""
    relative = posixpath.join(posixpath.dirname(contract.files), name)
    return relative if fnmatch(relative, contract.files) else None


def parse_marker(text: str) -> dict[str, str]:
    """``sha256sum`` lines -> {name: hex}; an empty marker gives {}. Raises ValueError on junk."""
    listed = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        m = _SHA_LINE.match(line.strip())
        if not m:
            raise ValueError("the _READY marker has a line that is not '<sha256>  <name>'")
        listed[m.group(2).strip()] = m.group(1).lower()
    return listed


def scan(landing: str, contracts: list[Contract], periods: set[str] | None = None,
         digests: dict | None = None) -> tuple[list[Delivery], list[Pending]]:
    """Every complete delivery under ``landing`` (optionally only for ``periods``), and the
    folders that are not complete yet with the reason. ``digests`` caches SHA-256s across scans,
    keyed by path, size and modification stamp, so a poll does not re-read unchanged files."""
    fs, root = fsspec.core.url_to_fs(landing)
    root = root.rstrip("/")
    deliveries: list[Delivery] = []
    pending: list[Pending] = [] if periods is not None else unclaimed(fs, root, contracts)
    for contract in contracts:
        base = f"{root}/{feed_folder(contract)}"
        if not fs.isdir(base):
            continue
        if not contained(fs, root, base):
            pending.append(Pending(contract.feed, "", _url(fs, base), OUTSIDE, kind="refused"))
            continue
        for folder in sorted(p for p in fs.ls(base, detail=False) if fs.isdir(p)):
            period = posixpath.basename(folder.rstrip("/"))
            if periods is not None and period not in periods:
                continue
            if not PERIOD_RE.match(period):
                pending.append(Pending(contract.feed, period, _url(fs, folder), "period folder name not allowed"))
                continue
            if not contained(fs, root, folder) or any(not contained(fs, root, p) for p in fs.ls(folder, detail=False)):
                pending.append(Pending(contract.feed, period, _url(fs, folder), OUTSIDE, kind="refused"))
                continue
            delivery, why = _read_folder(fs, folder, contract, period, {} if digests is None else digests)
            if delivery is not None:
                deliveries.append(delivery)
            else:
                names = sorted(posixpath.basename(p) for p in fs.ls(folder, detail=False))
                pending.append(Pending(contract.feed, period, _url(fs, folder), why,
                                       [n for n in names if not n.startswith((".", "_"))]))
    return deliveries, pending


OUTSIDE = "refused: the folder or a file in it leads outside the landing zone (a link or '..'); not read"


def unclaimed(fs, root: str, contracts: list[Contract]) -> list[Pending]:
    """Agency and feed folders under the landing root that no contract claims."""
    claimed = {feed_folder(c) for c in contracts}
    agencies = {f.split("/")[0] for f in claimed}
    found: list[Pending] = []
    if not fs.isdir(root):
        return found
    for agency in sorted(p for p in fs.ls(root, detail=False) if fs.isdir(p)):
        name = posixpath.basename(agency.rstrip("/"))
        if name.startswith((".", "_")):
            continue
        if name not in agencies:
            found.append(Pending("", "", _url(fs, agency), "no feed contract claims this agency folder", kind="unclaimed"))
            continue
        for feed in sorted(p for p in fs.ls(agency, detail=False) if fs.isdir(p)):
            if f"{name}/{posixpath.basename(feed.rstrip('/'))}" not in claimed:
                found.append(Pending("", "", _url(fs, feed), "no feed contract claims this feed folder", kind="unclaimed"))
    return found


def _stamp(entry: dict):
    """What changes when an object is rewritten: mtime locally, generation/etag on object stores."""
    for key in ("generation", "etag", "ETag", "mtime", "updated", "LastModified", "created"):
        if entry.get(key) is not None:
            return str(entry[key])
    return None


def _read_folder(fs, folder: str, contract: Contract, period: str, digests: dict) -> tuple[Delivery | None, str]:
    entries = fs.ls(folder, detail=True)
    names = {posixpath.basename(e["name"].rstrip("/")): e for e in entries if e.get("type") != "directory"}
    if MARKER not in names:
        return None, "no _READY marker yet (upload in progress or not started)"
    data = sorted(n for n in names if not n.startswith((".", "_")))
    if not data:
        return None, "_READY marker but no data file"
    unmatched = [n for n in data if staged_name(contract, n) is None]
    if unmatched:
        return None, f"{len(unmatched)} file(s) do not match the contract's pattern {posixpath.basename(contract.files)!r}"
    try:
        with fs.open(f"{folder}/{MARKER}", "r", encoding="utf-8") as fh:
            listed = parse_marker(fh.read())
    except (ValueError, UnicodeDecodeError) as exc:
        return None, str(exc) if isinstance(exc, ValueError) else "the _READY marker is not text"
    if listed and set(listed) != set(data):
        return None, "the files present differ from those _READY lists"
    files = []
    for name in data:
        entry, path = names[name], f"{folder}/{name}"
        stamp = _stamp(entry)
        cache_key = (path, entry.get("size"), stamp)
        if stamp is None or cache_key not in digests:
            digests[cache_key] = sha256_of(fs, path)
        digest, size = digests[cache_key]
        if listed and listed[name] != digest:
            return None, f"{name}: SHA-256 differs from _READY (upload incomplete or replaced)"
        files.append(LandedFile(name=name, sha256=digest, bytes=size))
    return Delivery(agency=contract.agency, feed=contract.feed, period=period, files=tuple(files),
                    folder=_url(fs, folder)), ""


def locate(landing: str, url: str, contracts: list[Contract]) -> tuple[str, str] | None:
    """(feed, period) of an object URL under the landing zone (a storage notification), or None."""
    fs, root = fsspec.core.url_to_fs(landing)
    path = fsspec.core.url_to_fs(url)[1]
    root = root.rstrip("/")
    if not path.startswith(root + "/"):
        return None
    parts = path[len(root) + 1:].split("/")
    if len(parts) < 4:
        return None
    for contract in contracts:
        if parts[:2] == feed_folder(contract).split("/"):
            return contract.feed, parts[2]
    return None


def stage(delivery: Delivery, contract: Contract, feeds_root: str) -> list[str]:
    """Copy a delivery's files into ``feeds_root`` laid out as the contract expects, checking each
    file's SHA-256 on the way (a file replaced since the scan aborts the run). Returns the paths."""
    src_fs, src_root = fsspec.core.url_to_fs(delivery.folder)
    dst_fs, dst_root = fsspec.core.url_to_fs(feeds_root)
    written = []
    for f in delivery.files:
        target = f"{dst_root.rstrip('/')}/{staged_name(contract, f.name)}"
        dst_fs.makedirs(posixpath.dirname(target), exist_ok=True)
        h = hashlib.sha256()
        with src_fs.open(f"{src_root.rstrip('/')}/{f.name}", "rb") as src, dst_fs.open(target, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                h.update(block)
                dst.write(block)
        if h.hexdigest() != f.sha256:
            raise ChangedSinceScan(f"{delivery.feed}/{delivery.period}/{f.name} changed since it was scanned")
        written.append(target)
    return written


class ChangedSinceScan(RuntimeError):
    """A landed file's content differs from what the ledger recorded: rescan before running."""
