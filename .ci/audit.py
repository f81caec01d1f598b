#!/usr/bin/env python3
"""Vulnerability audit of every pin in constraints.txt (what the venv and the Dataflow image install).

1. pip-audit against PyPI's vulnerability data (per-version JSON API), no dependency resolution
   (every pin is exact).
2. Pins pip-audit could not look up (mirrors and private indexes serve versions PyPI's per-version
   API does not know) are checked against the project's JSON, whose ``vulnerabilities`` describe
   the latest release: a pin that is the latest release is audited that way.

Exit 1 on any known vulnerability, and when the vulnerability service cannot be reached (fail
closed; set CONCILIA_AUDIT_OFFLINE=1 to skip with a warning on a machine without network).
Pins neither step could audit are listed loudly; CONCILIA_AUDIT_STRICT=1 makes them fail too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
INDEX = os.environ.get("CONCILIA_AUDIT_INDEX", "https://pypi.org/pypi")


def pins() -> dict[str, str]:
    out = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            out[re.sub(r"[-_.]+", "-", name).lower()] = version.strip()
    return out


def run_pip_audit() -> dict | None:
    exe = Path(sys.executable).with_name("pip-audit")
    proc = subprocess.run([str(exe), "-r", str(CONSTRAINTS), "--no-deps", "--disable-pip", "--vulnerability-service",
                           "pypi", "--progress-spinner", "off", "-f", "json"], capture_output=True, text=True)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:  # pip-audit failed before reporting: usually no network
        sys.stderr.write(proc.stderr[-2000:])
        return None


def project_vulns(name: str, version: str) -> tuple[str, list[dict] | None]:
    """('audited', vulns) when the pin is the project's latest release, else ('unknown', None)."""
    try:
        with urllib.request.urlopen(f"{INDEX}/{name}/json", timeout=30) as resp:
            doc = json.load(resp)
    except urllib.error.HTTPError:
        return "unknown", None
    except (urllib.error.URLError, TimeoutError, OSError):
        return "unreachable", None
    if doc.get("info", {}).get("version") != version:
        return "unknown", None
    return "audited", [v for v in doc.get("vulnerabilities") or [] if not v.get("withdrawn")]


def main() -> int:
    offline_ok = os.environ.get("CONCILIA_AUDIT_OFFLINE") == "1"
    strict = os.environ.get("CONCILIA_AUDIT_STRICT") == "1"
    pinned = pins()
    report = run_pip_audit()
    if report is None:
        if offline_ok:
            print("AUDIT SKIPPED: pip-audit could not run (CONCILIA_AUDIT_OFFLINE=1)", file=sys.stderr)
            return 0
        print("audit: pip-audit could not reach the vulnerability service; failing closed "
              "(CONCILIA_AUDIT_OFFLINE=1 skips)", file=sys.stderr)
        return 1
    vulnerable: list[str] = []
    skipped: list[str] = []
    audited = 0
    for dep in report.get("dependencies", []):
        if "skip_reason" in dep:
            skipped.append(dep["name"])
            continue
        audited += 1
        vulnerable += [f"{dep['name']}=={dep['version']}: {v['id']} (fixed in {', '.join(v.get('fix_versions') or []) or '?'})"
                       for v in dep.get("vulns", [])]
    with ThreadPoolExecutor(max_workers=8) as pool:
        fallback = dict(zip(skipped, pool.map(lambda n: project_vulns(n, pinned.get(n, "")), skipped)))
    unknown = []
    for name, (status, vulns) in sorted(fallback.items()):
        if status == "audited":
            audited += 1
            vulnerable += [f"{name}=={pinned[name]}: {v.get('id')} (fixed in {', '.join(v.get('fixed_in') or []) or '?'})"
                           for v in vulns]
        else:
            unknown.append(name)
    if fallback and all(status == "unreachable" for status, _ in fallback.values()) and not offline_ok:
        print("audit: the package index is unreachable; failing closed (CONCILIA_AUDIT_OFFLINE=1 skips)",
              file=sys.stderr)
        return 1
    print(f"audit: {audited} of {len(pinned)} pins audited, {len(vulnerable)} known vulnerabilities")
    for line in vulnerable:
        print(f"  VULNERABLE {line}")
    if unknown:
        print(f"  WARNING: {len(unknown)} pins could not be audited (version unknown to the vulnerability "
              f"service): {', '.join(unknown)}", file=sys.stderr)
    if vulnerable or (strict and unknown):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
