"""Run one command and sample the resident memory of its whole process tree.

``getrusage`` reports the largest single child's peak, which under-reports the multi-process
runner (a control process and worker processes at once). This probe sums VmRSS over the command
and all its descendants every ``--interval`` seconds, keeps the stderr lines with their time since
start (the run's phases, and with ``-vv`` the runner's stages), and can stop the command when the
tree passes ``--cap-mb`` (a shared machine: better a stopped benchmark than the kernel's OOM killer
choosing another process). Prints one JSON object: exit code, wall, peak of the tree's sum, the
timeline of samples and the timed stderr lines.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(root: int) -> tuple[int, int]:
    """The sum of VmRSS over ``root`` and its descendants, and how many processes that is."""
    tree, todo, total, count = _children(), [root], 0, 0
    while todo:
        pid = todo.pop()
        total += _rss_kib(pid)
        count += 1
        todo.extend(tree.get(pid, ()))
    return total, count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--cap-mb", type=float, default=0, help="stop the command past this tree RSS (0: never)")
    parser.add_argument("--output", help="write the JSON here as well as to stdout")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    lines: list[tuple[float, str]] = []

    def read_stderr():
        for line in proc.stderr:
            lines.append((round(time.monotonic() - start, 1), line.rstrip("\n")))
            sys.stderr.write(line)

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    samples, peak, capped = [], (0, 0.0, 0), False
    while proc.poll() is None:
        kib, procs = tree_rss_kib(proc.pid)
        now = round(time.monotonic() - start, 1)
        samples.append((now, round(kib / 1024), procs))
        if kib > peak[0]:
            peak = (kib, now, procs)
        if args.cap_mb and kib / 1024 > args.cap_mb:
            capped = True
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(args.interval)
    code = proc.wait()
    reader.join(timeout=5)
    result = {"command": command, "code": code, "wall_s": round(time.monotonic() - start, 1),
              "peak_tree_rss_mb": round(peak[0] / 1024), "peak_at_s": peak[1], "peak_processes": peak[2],
              "capped": capped, "samples": samples, "stderr": lines}
    text = json.dumps(result)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0 if code == 0 and not capped else 1


if __name__ == "__main__":
    sys.exit(main())
