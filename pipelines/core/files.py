"""Small JSON objects on any fsspec filesystem: pointers, leases' neighbours, the ledger, launch records."""

from __future__ import annotations

import json
import posixpath
import uuid


def write_json_atomic(fs, path: str, obj: dict) -> None:
    """Write a JSON object so that readers see all of it or nothing."""
    fs.makedirs(posixpath.dirname(path), exist_ok=True)
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    if protocol in ("file", "local"):
        tmp = f"{posixpath.dirname(path)}/.{posixpath.basename(path)}.{uuid.uuid4().hex}.tmp"
        with fs.open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1, sort_keys=True)
        fs.mv(tmp, path)  # a rename: atomic on POSIX
    else:
        with fs.open(path, "w", encoding="utf-8") as fh:  # one object upload: atomic on object stores
            json.dump(obj, fh, indent=1, sort_keys=True)


def read_json(fs, path: str) -> dict | None:
    try:
        with fs.open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, json.JSONDecodeError):
        return None
