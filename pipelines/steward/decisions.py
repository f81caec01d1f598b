"""The decisions store: every judgement a steward made on a pair of records, append-only.

A judgement says two records are the ``same`` person, ``different`` persons, or that the steward is
``unsure``; it names both records (agency, feed, record id, and the record_uid the pipeline uses),
who judged, when, why (free text), and the run whose review queue showed the pair. The store is a
folder of JSON Lines files, one per ``concilia review apply``: files are only ever added, so it
works on any fsspec store (gs:// has no append) and nothing a steward wrote is ever rewritten. The
latest judgement of a pair is the one in force.

Restricted zone: a free-text reason may name a person. Errors and logs quote line numbers and
columns, never a value.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import posixpath

import fsspec
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.publish import current_run_dir, read_output

DECISIONS_FOLDER = "steward/decisions"
JUDGEMENTS = ("same", "different", "unsure")
ROLES = {"victims": "victim", "offenders": "offender"}
SIDES = ("left", "right")
# the store's columns, one row per judgement
FIELDS = ("role", "left_uid", "right_uid", "left_agency", "left_feed", "left_record_id", "right_agency",
          "right_feed", "right_record_id", "decision", "who", "when", "reason", "run_id",
          "match_probability", "evidence_when_judged")
SCHEMA = pa.schema([(f, pa.float64() if f == "match_probability" else pa.string()) for f in FIELDS])
# the spreadsheet a steward fills in: the pair, why it is asked, both records, then the judgement
SHEET_DECISION_COLUMNS = ("decision", "who", "reason")
SHEET_FIRST_COLUMNS = ("role", "run_id", "left_uid", "right_uid", "queued_because", "match_probability")


class DecisionError(ValueError):
    """A judgements file that cannot be applied; the message cites rows and columns, never values."""


def default_location(out: str) -> str:
    return posixpath.join(out.rstrip("/"), DECISIONS_FOLDER)


def pair_key(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a <= b else (b, a)


EMPTY = SCHEMA.empty_table()  # no judgement yet


def read_decisions(location: str) -> pa.Table:
    """Every judgement in the store, oldest first (file names start with the time they were applied)."""
    fs, root = fsspec.core.url_to_fs(location)
    rows = []
    for path in sorted(fs.glob(f"{root.rstrip('/')}/*.jsonl")):
        with fs.open(path, "r", encoding="utf-8") as fh:
            rows.extend(json.loads(line) for line in fh if line.strip())
    return pa.Table.from_pylist([{f: r.get(f) for f in FIELDS} for r in rows], schema=SCHEMA)


def in_force(decisions: pa.Table, role: str | None = None) -> dict[tuple[str, str], dict]:
    """(record_uid, record_uid) in sorted order -> the latest judgement of the pair (a store row), for one role."""
    latest: dict[tuple[str, str], dict] = {}
    for row in decisions.to_pylist():
        if role is None or row["role"] == role:
            latest[pair_key(row["left_uid"], row["right_uid"])] = row
    return latest


def append(location: str, rows: list[dict]) -> str:
    """Add one file holding ``rows``; returns its path. Never touches earlier files."""
    fs, root = fsspec.core.url_to_fs(location)
    body = "".join(json.dumps({f: r.get(f) for f in FIELDS}, ensure_ascii=False, sort_keys=False) + "\n" for r in rows)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = f"{root.rstrip('/')}/{stamp}-{hashlib.sha256(body.encode()).hexdigest()[:8]}.jsonl"
    fs.makedirs(root, exist_ok=True)
    with fs.open(path, "w", encoding="utf-8") as fh:
        fh.write(body)
    return path


def run_dir_of(out: str, run_id: str | None) -> str:
    if run_id:
        return posixpath.join(out.rstrip("/"), "runs", run_id)
    current = current_run_dir(out)
    if current is None:
        raise DecisionError(f"no published run under {out}: name one with --run")
    return current


def review_queue(run_dir: str) -> pa.Table:
    """The run's review queue, both roles, with a ``role`` column (restricted: names side by side)."""
    fs, path = fsspec.core.url_to_fs(run_dir)
    parts = []
    for folder, role in ROLES.items():
        t = read_output(fs, f"{path.rstrip('/')}/review_queue/{folder}")
        if t.num_rows:
            parts.append(t.append_column("role", pa.array([role] * t.num_rows, pa.string())))
    if not parts:
        return pa.table({"role": pa.array([], pa.string()), "left_uid": pa.array([], pa.string()),
                         "right_uid": pa.array([], pa.string())})
    return pa.concat_tables(parts, promote_options="permissive")


def open_pairs(queue: pa.Table, decisions: pa.Table) -> pa.Table:
    """The queue's pairs no judgement has answered yet (``unsure`` counts as answered)."""
    if not queue.num_rows:
        return queue
    judged = {(role, *pair) for role in ROLES.values() for pair in in_force(decisions, role)}
    keep = [(r, *pair_key(a, b)) not in judged for r, a, b in zip(
        queue.column("role").to_pylist(), queue.column("left_uid").to_pylist(), queue.column("right_uid").to_pylist())]
    return queue.filter(pa.array(keep, pa.bool_()))


def sheet_rows(queue: pa.Table, run_id: str) -> list[dict]:
    """One row per open pair, the columns a steward reads, then empty judgement columns."""
    sides = [c for c in queue.column_names if c.startswith(("left_", "right_")) and c not in ("left_uid", "right_uid")]
    rows = []
    for r in queue.to_pylist():
        row = {"role": r["role"], "run_id": run_id, "left_uid": r["left_uid"], "right_uid": r["right_uid"],
               "queued_because": r.get("reason"), "match_probability": r.get("match_probability")}
        row.update({c: r.get(c) for c in sides})
        row.update({c: None for c in SHEET_DECISION_COLUMNS})
        rows.append(row)
    return rows


def write_sheets(rows: list[dict], out_stem: str) -> list[str]:
    """``OUT_STEM.csv`` and ``OUT_STEM.xlsx`` with the same rows; returns both paths."""
    from openpyxl import Workbook

    columns = list(rows[0]) if rows else list(SHEET_FIRST_COLUMNS) + list(SHEET_DECISION_COLUMNS)
    fs, stem = fsspec.core.url_to_fs(out_stem)
    parent = posixpath.dirname(stem)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns)
    writer.writeheader()
    writer.writerows([{c: _cell(r.get(c)) for c in columns} for r in rows])
    with fs.open(f"{stem}.csv", "w", encoding="utf-8", newline="") as fh:
        fh.write(text.getvalue())
    book = Workbook()
    sheet = book.active
    sheet.title = "review"
    sheet.append(columns)
    for r in rows:
        sheet.append([_cell(r.get(c)) for c in columns])
    sheet.freeze_panes = "A2"
    buffer = io.BytesIO()
    book.save(buffer)
    with fs.open(f"{stem}.xlsx", "wb") as fh:
        fh.write(buffer.getvalue())
    return [f"{stem}.csv", f"{stem}.xlsx"]


def _cell(value):
    """Spreadsheet-safe cell: dates as ISO text, and text that a spreadsheet would run as a formula
    quoted (a name field starting with '=' must stay a name)."""
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def read_sheet(path: str) -> list[dict]:
    """Rows of a filled-in CSV or XLSX export, as dicts of text (empty cells None)."""
    fs, p = fsspec.core.url_to_fs(path)
    if p.lower().endswith(".xlsx"):
        from openpyxl import load_workbook

        with fs.open(p, "rb") as fh:
            book = load_workbook(io.BytesIO(fh.read()), read_only=True, data_only=True)
        values = list(book.worksheets[0].iter_rows(values_only=True))
        if not values:
            return []
        header = [str(h) if h is not None else "" for h in values[0]]
        return [{h: (None if v is None or str(v).strip() == "" else str(v).strip()) for h, v in zip(header, row)}
                for row in values[1:]]
    if p.lower().endswith(".csv"):
        with fs.open(p, "r", encoding="utf-8-sig", newline="") as fh:
            return [{k: (v.strip() or None) if isinstance(v, str) else None for k, v in row.items()}
                    for row in csv.DictReader(fh)]
    raise DecisionError(f"{posixpath.basename(p)}: a judgements file is .csv or .xlsx")


def run_records(run_dir: str, uids: set[str]) -> dict[tuple[str, str], tuple]:
    """(role, record_uid) -> (agency, feed, source record id) of the named records the run holds."""
    fs, path = fsspec.core.url_to_fs(run_dir)
    wanted = pa.array(sorted(uids), pa.string())
    found = {}
    for folder, role in ROLES.items():
        t = read_output(fs, f"{path.rstrip('/')}/harmonised/{folder}",
                        columns=["record_uid", "agency", "feed_id", "source_record_id"])
        if t.num_rows:
            t = t.filter(pc.is_in(t.column("record_uid"), wanted))
            for uid, *fields in zip(*(t.column(c).to_pylist() for c in t.column_names)):
                found[(role, uid)] = tuple(fields)
    return found


def run_evidence(run_dir: str, pairs: set[tuple[str, str, str]]) -> dict[tuple[str, str, str], tuple]:
    """(role, uid, uid) in sorted order -> (match probability, evidence) the run had for the pair:
    what the steward saw when judging (links/ for the score, the review queue for a guard conflict)."""
    from pipelines.link.linker import load_settings
    from pipelines.link.constraints import classify

    thresholds = load_settings().thresholds
    fs, path = fsspec.core.url_to_fs(run_dir)
    uids = pa.array(sorted({u for _, a, b in pairs for u in (a, b)}), pa.string())
    found = {}
    for folder, role in ROLES.items():
        score, guard = {}, {}
        for sub, columns, into in (("links", ["left_uid", "right_uid", "match_probability"], score),
                                   ("review_queue", ["left_uid", "right_uid", "reason"], guard)):
            t = read_output(fs, f"{path.rstrip('/')}/{sub}/{folder}", columns=columns)
            if t.num_rows:
                t = t.filter(pc.and_(pc.is_in(t.column("left_uid"), uids), pc.is_in(t.column("right_uid"), uids)))
                into.update({pair_key(a, b): v for a, b, v in zip(*(t.column(c).to_pylist() for c in columns))})
        for r, a, b in pairs:
            if r == role:
                p, reason = score.get((a, b)), guard.get((a, b))
                reason = reason if reason and reason != "uncertain" else None
                found[(r, a, b)] = (p, classify(p, reason, thresholds.match_probability, thresholds.review_lower))
    return found


def judgements_from_sheet(rows: list[dict], records: dict[str, dict[tuple[str, str], tuple]],
                          who: str | None = None, now: dt.datetime | None = None,
                          evidence: dict[str, dict] | None = None) -> list[dict]:
    """Validate a filled-in sheet and return the store rows of its judged lines (lines whose decision
    is blank are skipped: not judged yet). ``records`` maps each run_id the sheet names to
    ``run_records`` of that run: both records of a pair must be records of the role in that run (a
    steward may add lines for pairs the queue did not ask about, e.g. two sisters merged into one
    person). ``evidence`` (run_id -> ``run_evidence``) is what the run said about each pair. Raises
    DecisionError naming every bad line by number and column, never by value."""
    when = (now or dt.datetime.now(dt.timezone.utc)).isoformat()
    problems, out = [], []
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        decision = (row.get("decision") or "").lower() or None
        if decision is None:
            continue
        missing = [c for c in ("role", "run_id", "left_uid", "right_uid") if not row.get(c)]
        if missing:
            problems.append(f"line {line}: {', '.join(missing)} empty")
            continue
        if decision not in JUDGEMENTS:
            problems.append(f"line {line}: decision must be one of {', '.join(JUDGEMENTS)}")
            continue
        judge = row.get("who") or who
        if not judge:
            problems.append(f"line {line}: who is empty (fill the column or pass --who)")
            continue
        run, role = row["run_id"], row["role"]
        if row["left_uid"] == row["right_uid"]:
            problems.append(f"line {line}: left_uid and right_uid are the same record")
            continue
        unknown = [side for side in SIDES if (role, row[f"{side}_uid"]) not in records.get(run, {})]
        if unknown:
            problems.append(f"line {line}: {' and '.join(f'{s}_uid' for s in unknown)} not a {role} record of run_id")
            continue
        p, seen = (evidence or {}).get(run, {}).get((role, *pair_key(row["left_uid"], row["right_uid"])), (None, None))
        entry = {"role": role, "left_uid": row["left_uid"], "right_uid": row["right_uid"], "decision": decision,
                 "who": judge, "when": when, "reason": row.get("reason"), "run_id": run,
                 "match_probability": p, "evidence_when_judged": seen}
        for side in SIDES:
            agency, feed, record_id = records[run][(role, row[f"{side}_uid"])]
            entry.update({f"{side}_agency": agency, f"{side}_feed": feed, f"{side}_record_id": record_id})
        out.append(entry)
    if problems:
        raise DecisionError(f"{len(problems)} line(s) cannot be applied: " + "; ".join(problems[:20]))
    return out


def judged_pairs_table(decisions: pa.Table, role: str) -> pa.Table:
    """The judgements in force for one role as a small table (what a run hands to clustering)."""
    from pipelines.link.constraints import as_table

    return as_table([(a, b, row["decision"], row.get("evidence_when_judged"))
                     for (a, b), row in in_force(decisions, role).items()])

