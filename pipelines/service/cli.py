"""The service's commands: ``concilia watch``, ``concilia status``, ``concilia diff``.

    concilia watch --landing URL --out URL [--interval S] [--schedule CRON] [--once | --max-cycles N]
                   [--http-port P] [--runner R] [--key-file F | --demo-key] [-- beam options...]
    concilia status --out URL [--landing URL] [--json]
    concilia diff RUN_A RUN_B --out URL [--json]
    concilia finalise --out URL --run-id ID      # after a Dataflow Flex Template job (deploy/README.md)
"""

from __future__ import annotations

import argparse
import contextvars
import json
import logging
import signal
import sys

from pipelines import i18n
from pipelines.i18n import _
from pipelines.options import (EXIT_BUSY, EXIT_FAILED, EXIT_INPUT, EXIT_OK, EXIT_OUTPUT, EXIT_USAGE, add_key_options,
                               add_run_settings, check_beam_options, report_unpublished, resolve_runner, run_settings,
                               split_beam_options)

log = logging.getLogger(__name__)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state", default=None, metavar="URL",
                   help="ledger and staging folder (default OUT/_service; restricted: holds staged raw files)")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="more log lines: -v Concilia's own, -vv also third-party libraries'")
    p.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    i18n.add_argument(p)  # the language is made active by pipelines.cli.main


def watch_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="concilia watch", usage="concilia watch --landing URL --out URL [options] "
                                "[-- beam options]", description=(
        "Watch a landing zone; record deliveries; run and publish a period when its required feeds are "
        "complete (or on --schedule). Apache Beam options go after --."))
    p.add_argument("--landing", required=True, help="landing zone root (<agency>/<feed>/<period>/ + _READY)")
    p.add_argument("--out", required=True, help="output root (runs/, periods/, current.json)")
    p.add_argument("--interval", type=float, default=60.0, help="seconds between polls (default 60)")
    p.add_argument("--schedule", default=None, metavar="CRON",
                   help="cron expression (UTC; 5 fields, or 6 with seconds): on a tick, periods run even if incomplete")
    p.add_argument("--once", action="store_true", help="one cycle, then exit")
    p.add_argument("--max-cycles", type=int, default=None, metavar="N", help="stop after N cycles")
    p.add_argument("--http-port", type=int, default=None, metavar="PORT",
                   help="instead of polling, serve Pub/Sub push notifications (GCS object finalised, "
                        "Cloud Scheduler ticks) on this port")
    p.add_argument("--runner", default="DirectRunner", help="Beam runner for the runs (default: in-process)")
    add_key_options(p)
    add_run_settings(p)  # every run the service starts runs with these, as concilia run would
    _common(p)
    return p


def status_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="concilia status", description="What is current, recent runs, pending deliveries.")
    p.add_argument("--out", required=True, help="output root")
    p.add_argument("--landing", default=None, help="landing zone root: also list folders not yet ready")
    p.add_argument("--contracts", action="append", default=[], metavar="DIR", help="extra feed contracts folder")
    p.add_argument("--limit", type=int, default=10, help="runs to list (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON")
    _common(p)
    return p


def diff_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="concilia diff", description="What changed between two runs: counts per "
                                "agency and category; persons added, removed, merged, split.")
    p.add_argument("run_a")
    p.add_argument("run_b")
    p.add_argument("--out", required=True, help="output root holding runs/<run_id>/")
    p.add_argument("--json", action="store_true", help="print JSON (with every person id)")
    _common(p)
    return p


def watch_main(argv: list[str]) -> int:
    from pipelines.contracts import ContractError
    from pipelines.link.fellegi_sunter import LinkageModelError
    from pipelines.privacy import KeyUnavailable, resolve_key
    from pipelines.core.lease import LeaseHeld
    from pipelines.service.schedule import Schedule
    from pipelines.service.watch import Service

    own, beam_args = split_beam_options(argv)
    args = watch_parser().parse_args(own)
    try:
        schedule = Schedule(args.schedule) if args.schedule else None
        runner = resolve_runner(args.runner)
        check_beam_options(beam_args)
        settings = run_settings(args)
    except (FileNotFoundError, LinkageModelError) as exc:  # a pinned linkage model that cannot be read
        print(f"concilia watch: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except ValueError as exc:  # a bad schedule, runner, Beam option or setting (UsageError is a ValueError)
        print(f"concilia watch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        key = resolve_key(key_file=args.key_file, demo=args.demo_key)
        service = Service(args.landing, args.out, args.state, [f"--runner={runner}", *beam_args], args.contracts,
                          run_kwargs={"key": key, **settings.run_kwargs()})
    except (KeyUnavailable, ContractError, FileNotFoundError) as exc:
        print(f"concilia watch: {exc}", file=sys.stderr)
        return EXIT_INPUT

    stopping = []
    # SIGTERM (Cloud Run, systemd, docker stop) ends the loop after the current cycle
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        with service.lease():  # one watcher per ledger: a second one refuses to start
            if args.http_port is not None:
                return _serve_http(service, args.http_port, lambda: bool(stopping))
            cycles = 1 if args.once else args.max_cycles
            failures = service.serve(args.interval, schedule, cycles, should_stop=lambda: bool(stopping))
    except LeaseHeld as exc:
        print(f"concilia watch: {exc}", file=sys.stderr)
        return EXIT_BUSY
    # a bounded run reports failures in its exit code (a run that failed, or a cycle that could not finish)
    return EXIT_FAILED if failures and cycles is not None else EXIT_OK


def _serve_http(service, port: int, should_stop) -> int:
    """Pub/Sub push endpoint: POST / queues the notification and acknowledges at once; one worker
    thread runs the cycles one after another (a run can outlast Pub/Sub's ack deadline). A lost
    queue (instance replaced) is caught up by the next Cloud Scheduler tick; repeats are no-ops."""
    import queue
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    inbox: queue.Queue = queue.Queue()

    def worker():
        while True:
            body = inbox.get()
            try:
                report = service.handle_notification(body)
                log.info("notification: %s", "ignored" if report is None else
                         f"published {report.published or '-'}, failed {report.failed or '-'}")
            except Exception:
                log.exception("notification handling failed")

    # the thread runs in a copy of this context: the runs' reports keep the language of --lang
    threading.Thread(target=contextvars.copy_context().run, args=(worker,), name="concilia-cycles", daemon=True).start()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def do_POST(self):  # noqa: N802
            try:
                inbox.put(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"))
                self.send_response(204)
            except ValueError:
                self.send_response(400)  # not JSON: Pub/Sub would redeliver it forever otherwise
            self.end_headers()

        def log_message(self, *args):  # requests are logged above, as structured lines
            pass

    server = HTTPServer(("0.0.0.0", port), Handler)  # one request at a time: one cycle at a time
    server.timeout = 1
    log.info("serving Pub/Sub push notifications on port %d", port)
    while not should_stop():
        server.handle_request()
    return EXIT_OK


def status_main(argv: list[str]) -> int:
    from pipelines.service.status import render, status

    import fsspec

    args = status_parser().parse_args(argv)
    fs, root = fsspec.core.url_to_fs(args.out)
    if not fs.isdir(root):
        print(f"concilia status: no output root at {args.out}", file=sys.stderr)
        return EXIT_INPUT
    s = status(args.out, args.landing, args.state, args.limit, args.contracts)
    print(json.dumps(s, indent=2, default=str) if args.json else render(s))
    run = s["current_run"]
    if run is None:  # nothing published yet: nothing for a reader to read
        print("concilia status: no current run (nothing published yet)", file=sys.stderr)
        return EXIT_FAILED
    if not run["verifies"]:
        print(f"concilia status: the current run {run['run_id']} does not verify: {run['problems'][0]}", file=sys.stderr)
        return EXIT_OUTPUT
    return EXIT_OK


def diff_main(argv: list[str]) -> int:
    from pipelines.service.diff import UnknownRun, diff_runs, render

    args = diff_parser().parse_args(argv)
    try:
        d = diff_runs(args.out, args.run_a, args.run_b)
    except UnknownRun as exc:
        print(f"concilia diff: {exc}", file=sys.stderr)
        return EXIT_INPUT
    print(json.dumps(d, indent=2) if args.json else render(d))
    return EXIT_OK


def finalise_main(argv: list[str]) -> int:
    from pipelines.privacy import KeyUnavailable
    from pipelines.publish import AccountingError, IncompleteOutput
    from pipelines.service.flex import finalise
    from pipelines.core.lease import LeaseHeld

    p = argparse.ArgumentParser(prog="concilia finalise", description=(
        "Finalise a run whose Beam job was launched by the Dataflow Flex Template: validation summary, "
        "checks, manifest, then the pointers."))
    p.add_argument("--out", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--key-file", default=None, metavar="PATH")
    _common(p)
    args = p.parse_args(argv)
    try:
        manifest = finalise(args.out, args.run_id, args.state, args.key_file)
    except (FileNotFoundError, KeyUnavailable) as exc:
        print(f"concilia finalise: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except (AccountingError, IncompleteOutput) as exc:
        return report_unpublished("concilia finalise", exc)
    except LeaseHeld as exc:
        print(f"concilia finalise: {exc}", file=sys.stderr)
        return EXIT_BUSY
    print(json.dumps({"run_id": manifest["run_id"], "period": manifest.get("period"), "status": manifest.get("status")}))
    return EXIT_OK


COMMANDS = {"watch": watch_main, "status": status_main, "diff": diff_main, "finalise": finalise_main}
