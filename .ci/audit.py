#!/usr/bin/env python3
"""Vulnerability audit of every pin in constraints.txt (what the venv and the Dataflow image install).

1. pip-audit against PyPI's vulnerability data (per-version JSON API), no dependency resolution
   (every pin is exact).
2. Pins pip-audit skipped or left out of its report (mirrors and private indexes serve versions
   PyPI's per-version API does not know) go to pip-audit again with the OSV service, which is
   queried by package and version and so knows any published version.
3. Pins still unaudited are checked against the project's JSON, whose ``vulnerabilities``
   describe the latest release: a pin that is the latest release is audited that way.

Every pin ends audited or listed with the reason it was not (pip-audit's skip reason, OSV's, the
index's). Exit 1 on any known vulnerability, and when the vulnerability service cannot be reached
(fail closed; set CONCILIA_AUDIT_OFFLINE=1 to skip with a warning on a machine without network).
CONCILIA_AUDIT_STRICT=1 makes unaudited pins fail too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
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


def run_pip_audit(requirements: Path, service: str = "pypi") -> dict | None:
    exe = Path(sys.executable).with_name("pip-audit")
    proc = subprocess.run([str(exe), "-r", str(requirements), "--no-deps", "--disable-pip", "--vulnerability-service",
                           service, "--progress-spinner", "off", "-f", "json"], capture_output=True, text=True)
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:  # pip-audit failed before reporting: usually no network
        sys.stderr.write(proc.stderr[-2000:])
        return None


def read_report(report: dict | None, pinned: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """({pin: [vulnerabilities]} for the pins the report audited, {pin: why not} for the rest of
    ``pinned``, including pins the report does not mention at all)."""
    audited: dict[str, list[str]] = {}
    skipped: dict[str, str] = {}
    for dep in (report or {}).get("dependencies", []):
        name = re.sub(r"[-_.]+", "-", dep["name"]).lower()
        if "skip_reason" in dep:
            skipped[name] = dep["skip_reason"]
            continue
        audited[name] = [f"{v['id']} (fixed in {', '.join(v.get('fix_versions') or []) or '?'})"
                         for v in dep.get("vulns", [])]
    for name in pinned:
        if name not in audited and name not in skipped:
            skipped[name] = "not in the vulnerability service's report" if report else "the service could not be reached"
    return audited, skipped


def project_vulns(name: str, version: str) -> tuple[str, list[dict] | str]:
    """('audited', vulns) when the pin is the project's latest release, else (status, why not)."""
    try:
        with urllib.request.urlopen(f"{INDEX}/{name}/json", timeout=30) as resp:
            doc = json.load(resp)
    except urllib.error.HTTPError as exc:
        return "unknown", f"the index answered {exc.code} for the project"
    except (urllib.error.URLError, TimeoutError, OSError):
        return "unreachable", "the index could not be reached"
    latest = doc.get("info", {}).get("version")
    if latest != version:
        return "unknown", f"not the latest release ({latest}), whose data is all the index gives"
    return "audited", [v for v in doc.get("vulnerabilities") or [] if not v.get("withdrawn")]


def audit_with_osv(skipped: dict[str, str], pinned: dict[str, str]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """pip-audit with the OSV service over the pins the first pass skipped."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as fh:
        fh.writelines(f"{name}=={pinned[name]}\n" for name in sorted(skipped))
    try:
        audited, still = read_report(run_pip_audit(Path(fh.name), "osv"), {n: pinned[n] for n in skipped})
    finally:
        os.unlink(fh.name)
    return audited, {name: f"{skipped[name]}; OSV: {why}" for name, why in still.items()}


def main() -> int:
    offline_ok = os.environ.get("CONCILIA_AUDIT_OFFLINE") == "1"
    strict = os.environ.get("CONCILIA_AUDIT_STRICT") == "1"
    pinned = pins()
    report = run_pip_audit(CONSTRAINTS)
    if report is None:
        if offline_ok:
            print("AUDIT SKIPPED: pip-audit could not run (CONCILIA_AUDIT_OFFLINE=1)", file=sys.stderr)
            return 0
        print("audit: pip-audit could not reach the vulnerability service; failing closed "
              "(CONCILIA_AUDIT_OFFLINE=1 skips)", file=sys.stderr)
        return 1
    audited, skipped = read_report(report, pinned)
    if skipped:
        more, skipped = audit_with_osv(skipped, pinned)
        audited.update(more)
    with ThreadPoolExecutor(max_workers=8) as pool:
        fallback = dict(zip(skipped, pool.map(lambda n: project_vulns(n, pinned[n]), skipped)))
    unknown: dict[str, str] = {}
    for name, (status, result) in sorted(fallback.items()):
        if status == "audited":
            audited[name] = [f"{v.get('id')} (fixed in {', '.join(v.get('fixed_in') or []) or '?'})" for v in result]
        else:
            unknown[name] = f"{skipped[name]}; index: {result}"
    if fallback and all(status == "unreachable" for status, _ in fallback.values()) and not offline_ok:
        print("audit: the package index is unreachable; failing closed (CONCILIA_AUDIT_OFFLINE=1 skips)",
              file=sys.stderr)
        return 1
    vulnerable = [f"{name}=={pinned.get(name, '?')}: {v}" for name, vulns in sorted(audited.items()) for v in vulns]
    print(f"audit: {len(set(audited) & set(pinned))} of {len(pinned)} pins audited, "
          f"{len(vulnerable)} known vulnerabilities")
    for line in vulnerable:
        print(f"  VULNERABLE {line}")
    if unknown:
        print(f"  WARNING: {len(unknown)} pins could not be audited:", file=sys.stderr)
        for name, why in unknown.items():
            print(f"    {name}=={pinned[name]}: {why}", file=sys.stderr)
    if vulnerable or (strict and unknown):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
