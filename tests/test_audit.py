"""The dependency audit (.ci/audit.py) accounts for every pin: audited, or listed with the reason."""

from __future__ import annotations

import importlib.util

import pytest

from tests.conftest import ROOT


@pytest.fixture
def audit(monkeypatch):
    spec = importlib.util.spec_from_file_location("ci_audit", ROOT / ".ci" / "audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "pins", lambda: {"numpy": "2.4.6", "pyarrow": "24.0.0", "pillow": "12.0.0",
                                                 "protobuf": "6.0.0", "rich": "14.0.0"})
    return module


def test_pins_missing_from_the_report_are_not_silently_counted(audit):
    report = {"dependencies": [{"name": "rich", "version": "14.0.0", "vulns": []},
                               {"name": "Pillow", "version": "12.0.0", "skip_reason": "Dependency not found on PyPI"}]}
    audited, skipped = audit.read_report(report, audit.pins())
    assert audited == {"rich": []}
    assert skipped == {"pillow": "Dependency not found on PyPI", "numpy": "not in the vulnerability service's report",
                       "pyarrow": "not in the vulnerability service's report",
                       "protobuf": "not in the vulnerability service's report"}


def test_every_pin_ends_audited_or_listed_with_why(audit, monkeypatch, capsys):
    def fake_pip_audit(requirements, service="pypi"):
        if service == "pypi":
            return {"dependencies": [{"name": "rich", "version": "14.0.0", "vulns": []}]}
        names = [line.split("==")[0] for line in requirements.read_text().split()]
        assert sorted(names) == ["numpy", "pillow", "protobuf", "pyarrow"]
        return {"dependencies": [{"name": "numpy", "version": "2.4.6", "vulns": []},
                                 {"name": "pyarrow", "version": "24.0.0",
                                  "vulns": [{"id": "GHSA-xxxx", "fix_versions": ["24.0.1"]}]},
                                 {"name": "pillow", "version": "12.0.0", "skip_reason": "unknown version"}]}

    monkeypatch.setattr(audit, "run_pip_audit", fake_pip_audit)
    monkeypatch.setattr(audit, "project_vulns", lambda name, version: (
        ("audited", []) if name == "protobuf" else ("unknown", "not the latest release (12.1.0)")))
    assert audit.main() == 1  # a known vulnerability fails the run
    out, err = capsys.readouterr()
    assert "4 of 5 pins audited, 1 known vulnerabilities" in out and "pyarrow==24.0.0: GHSA-xxxx" in out
    assert "pillow==12.0.0: not in the vulnerability service's report; OSV: unknown version; " \
           "index: not the latest release (12.1.0)" in err
