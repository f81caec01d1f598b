"""Writers: one per file format, plus the planting of invalid rows the pipeline must quarantine.

Output goes through fsspec, so the root may be a local path or any fsspec URL (gs://, memory://, ...).
Files are encoded here (bytes written), so encodings, BOMs and line ends are exactly the contract's.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

import fsspec
import numpy as np

from .feeds import FeedData, FeedSpec

CHUNK = 20000


class Root:
    """An output root (local path or fsspec URL)."""

    def __init__(self, out: str):
        self.fs, self.base = fsspec.core.url_to_fs(out)
        self.base = self.base.rstrip("/")

    def path(self, rel: str) -> str:
        return f"{self.base}/{rel}"

    def open(self, rel: str):
        p = self.path(rel)
        self.fs.makedirs(p.rsplit("/", 1)[0], exist_ok=True)
        return self.fs.open(p, "wb")


@dataclass
class Planted:
    reason: str
    detail: str          # which column is broken (event/birth/abc/150/...)
    position: int        # 0-based data row in the written file
    template: int        # valid row index whose content is copied
    first: int = -1      # for duplicate_record_id: valid row index of the first occurrence


def plan_invalid(spec: FeedSpec, n_valid: int, rng) -> list[Planted]:
    kinds = [("missing_record_id", ""), ("duplicate_record_id", ""), ("invalid_date", "event")]
    if spec.bd_col:
        kinds.append(("invalid_date", "birth"))
    kinds += [("invalid_age", "abc"), ("invalid_age", "150"), ("malformed_row", "")]
    n_total = n_valid + len(kinds)
    positions = np.sort(rng.choice(np.arange(1, n_total), size=len(kinds), replace=False))
    dup_kind = kinds.pop(1)
    kinds = [kinds[i] for i in rng.permutation(len(kinds))] + [dup_kind]  # duplicate goes last
    out = []
    for (reason, detail), pos in zip(kinds, positions.tolist()):
        valid_before = pos - int(np.searchsorted(positions, pos))  # valid rows written before pos
        t = int(rng.integers(0, n_valid))
        p = Planted(reason, detail, pos, t)
        if reason == "duplicate_record_id":
            p.first = int(rng.integers(0, max(valid_before, 1)))
            p.template = p.first
        out.append(p)
    return out


def _bad_date(fmt: str, year: int) -> str:
    return {"%d/%m/%Y": f"31/02/{year}", "%d-%m-%Y": f"31-02-{year}"}.get(fmt, f"{year}-02-31")


def write_feed(root: Root, fd: FeedData, planted: list[Planted], person_keys: list[str], truth_out) -> None:
    """Write one feed file with its planted invalid rows; append its rows to the truth (records.csv)."""
    spec = fd.spec
    cols = [fd.columns[c] if c != spec.id_col else None for c in spec.columns]
    id_i = spec.columns.index(spec.id_col)
    ev_i = spec.columns.index(spec.event_col)
    bd_i = spec.columns.index(spec.bd_col) if spec.bd_col else -1
    age_i = spec.columns.index(spec.age_col)
    n_valid = fd.n
    n_total = n_valid + len(planted)
    by_pos = {p.position: p for p in planted}
    width = max(6, len(str(n_total)))
    ids = [f"{spec.id_prefix}{i + 1:0{width}d}" for i in range(n_total)]
    # valid row index -> written position
    valid_pos = np.setdiff1d(np.arange(n_total), np.array(sorted(by_pos), dtype=np.int64))

    def valid_row(v: int, pos: int) -> list:
        row = [c[v] if c is not None else None for c in cols]
        row[id_i] = ids[pos]
        return row

    is_json = spec.fmt == "jsonl"
    buf = io.StringIO()
    writer = None if is_json else csv.writer(buf, delimiter=spec.delimiter, lineterminator=spec.lineterminator,
                                            quoting=csv.QUOTE_MINIMAL)
    role = spec.role
    fh = root.open(spec.path)
    if not is_json:
        writer.writerow(spec.columns)
    v = 0
    truth_rows = []
    enc = spec.encoding
    later_enc = "utf-8" if enc == "utf-8-sig" else enc  # one BOM, at the start of the file
    for pos in range(n_total):
        p = by_pos.get(pos)
        if p is None:
            row = valid_row(v, pos)
            person = int(fd.persons[v])
            reason = ""
            v += 1
        else:
            row = valid_row(p.template, pos)
            person = int(fd.persons[p.template])
            reason = p.reason
            if p.reason == "missing_record_id":
                row[id_i] = None
            elif p.reason == "duplicate_record_id":
                row[id_i] = ids[int(valid_pos[p.first])]
            elif p.reason == "invalid_date":
                if p.detail == "birth":
                    row[bd_i] = _bad_date(spec.date_fmt, 2001)
                else:
                    row[ev_i] = _bad_date(spec.date_fmt, 2018)
            elif p.reason == "invalid_age":
                if bd_i >= 0:
                    row[bd_i] = None
                row[age_i] = "abc" if p.detail == "abc" else (150 if is_json else "150")
        rid = row[id_i]
        if is_json:
            line = json.dumps(dict(zip(spec.columns, row)), ensure_ascii=False, separators=(", ", ": "))
            if reason == "malformed_row":
                line = line[: max(len(line) - 40, 20)]  # truncated export: not valid JSON
            buf.write(line + "\n")
        elif reason == "malformed_row":
            writer.writerow(row[:-3])  # fields lost: wrong number of fields
        else:
            writer.writerow(row)
        truth_rows.append((spec.feed_id, spec.path, "" if rid is None else rid, pos + 1, person_keys[person],
                           role, reason))
        if buf.tell() > 1 << 20:
            fh.write(buf.getvalue().encode(enc))
            enc = later_enc
            buf.seek(0)
            buf.truncate()
            if len(truth_rows) > CHUNK:
                truth_out.writerows(truth_rows)
                truth_rows = []
    fh.write(buf.getvalue().encode(enc))
    fh.close()
    truth_out.writerows(truth_rows)


def write_text(root: Root, rel: str, text: str, encoding: str = "utf-8") -> None:
    with root.open(rel) as fh:
        fh.write(text.encode(encoding))
