"""``concilia review``: the steward's side of the loop.

    concilia review --out OUT [--run RUN] [--decisions URL]            what is open
    concilia review export --out OUT [--run RUN] [--to STEM]           the open queue as CSV and XLSX
    concilia review apply FILE --out OUT [--who NAME] [--decisions URL] validate and store judgements

The export shows both records side by side (names, documents, birth dates): it is restricted and
goes beside OUT (``OUT/steward/exports/``) unless ``--to`` says otherwise. Printed lines carry
record ids and counts only.
"""

from __future__ import annotations

import argparse
import posixpath
import sys
from collections import Counter

from pipelines import i18n
from pipelines.i18n import _
from pipelines.steward import decisions as store

EXIT_OK, EXIT_USAGE, EXIT_INPUT = 0, 2, 3


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output root of the runs (local path or fsspec URL)")
    p.add_argument("--decisions", default=None, metavar="URL",
                   help="decisions store (default OUT/steward/decisions; restricted zone)")
    i18n.add_argument(p)  # the language is made active by pipelines.cli.main


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="concilia review", description=__doc__.split("\n\n")[0])
    _common(parser)
    parser.add_argument("--run", default=None, help="run id (default: the current published run)")
    return parser


def _open_queue(out: str, run: str | None, location: str | None):
    run_dir = store.run_dir_of(out, run)
    queue = store.review_queue(run_dir)
    return posixpath.basename(run_dir.rstrip("/")), queue, store.open_pairs(
        queue, store.read_decisions(location or store.default_location(out)))


def _list(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    run_id, queue, open_ = _open_queue(args.out, args.run, args.decisions)
    print(_("run %(run_id)s: %(open)s of %(total)s review pair(s) open") % {
        "run_id": run_id, "open": open_.num_rows, "total": queue.num_rows})
    if open_.num_rows:
        by = Counter(zip(open_.column("role").to_pylist(), open_.column("reason").to_pylist()))
        for (role, reason), n in sorted(by.items()):
            print(f"  {role:9} {reason:40} {n}")
        print(_("export them with: concilia review export --out OUT"))
    return EXIT_OK


def _export(argv: list[str]) -> int:
    parser = _parser()
    parser.prog = "concilia review export"
    parser.add_argument("--to", default=None, metavar="STEM",
                        help="where to write STEM.csv and STEM.xlsx (default OUT/steward/exports/review-RUN)")
    args = parser.parse_args(argv)
    run_id, _queue, open_ = _open_queue(args.out, args.run, args.decisions)
    stem = args.to or posixpath.join(args.out.rstrip("/"), "steward", "exports", f"review-{run_id}")
    for path in store.write_sheets(store.sheet_rows(open_, run_id), stem):
        print(path)
    print(_("%(n)s open pair(s); fill in decision (same, different, unsure), who and reason, then: concilia "
            "review apply FILE --out OUT  (the files are restricted: they show names)") % {"n": open_.num_rows})
    return EXIT_OK


def _apply(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="concilia review apply", description="validate and store judgements")
    parser.add_argument("file", help="a filled-in export (.csv or .xlsx)")
    _common(parser)
    parser.add_argument("--who", default=None, help="the steward, for lines whose 'who' is empty")
    args = parser.parse_args(argv)
    rows = store.read_sheet(args.file)
    judged = [r for r in rows if r.get("decision")]
    records, evidence = {}, {}
    for run in sorted({r.get("run_id") for r in judged if r.get("run_id")}):
        mine = [r for r in judged if r.get("run_id") == run and r.get("left_uid") and r.get("right_uid")]
        run_dir = store.run_dir_of(args.out, run)
        records[run] = store.run_records(run_dir, {r[f"{side}_uid"] for r in mine for side in store.SIDES})
        evidence[run] = store.run_evidence(run_dir, {(r.get("role"), *store.pair_key(r["left_uid"], r["right_uid"]))
                                                     for r in mine})
    judgements = store.judgements_from_sheet(rows, records, who=args.who, evidence=evidence)
    if not judgements:
        print(_("no judged line (the decision column is empty everywhere): nothing stored"))
        return EXIT_OK
    path = store.append(args.decisions or store.default_location(args.out), judgements)
    counts = Counter(j["decision"] for j in judgements)
    print(_("stored %(n)s judgement(s) (%(decisions)s) in %(path)s; the next run applies them") % {
        "n": len(judgements), "decisions": ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), "path": path})
    return EXIT_OK


def review_main(argv: list[str]) -> int:
    commands = {"export": _export, "apply": _apply}
    command = commands.get(argv[0]) if argv else None
    try:
        return command(argv[1:]) if command else _list(argv)
    except store.DecisionError as exc:
        print(f"concilia review: {exc}", file=sys.stderr)
        return EXIT_INPUT
