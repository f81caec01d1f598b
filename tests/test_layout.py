"""The house's layout (.importlinter): core imports no stage, no stage imports another's internals,
no import cycle between the modules and packages of pipelines, and the linkage maths without Beam."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def test_import_contracts_are_kept():
    proc = subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / ".importlinter"), "--no-cache"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_the_core_contract_names_every_other_module():
    """A module added to pipelines/ is one core must not import: the contract lists it or fails here."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    forbidden = set(config["importlinter:contract:core"]["forbidden_modules"].split())
    top = {f"pipelines.{p.stem}" for p in (ROOT / "pipelines").glob("*.py") if p.stem not in ("__init__", "__main__")}
    top |= {f"pipelines.{p.parent.name}" for p in (ROOT / "pipelines").glob("*/__init__.py")}
    assert forbidden == top - {"pipelines.core"}


def test_the_linkage_maths_imports_without_beam():
    """What grimp cannot see: a package's __init__ runs on import too (pipelines.link, pipelines.harmonise)."""
    modules = sorted(f"pipelines.link.{p.stem}" for p in (ROOT / "pipelines" / "link").glob("*.py")
                     if p.stem not in ("__init__", "transform"))
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('apache_beam' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"
