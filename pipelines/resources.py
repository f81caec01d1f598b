"""Where Concilia's declarative resources (schemas, expectations) live.

Code never hard-codes paths: it asks here, so a deployment (or a test) can point the whole
service at another tree with the CONCILIA_HOME environment variable.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "CONCILIA_HOME"


def project_root() -> Path:
    """Root of the project tree: $CONCILIA_HOME if set, else the checkout this package sits in."""
    override = os.environ.get(ENV_HOME)
    if override:
        return Path(override).expanduser().resolve()
    return Path(__file__).resolve().parents[1]


def schemas_dir() -> Path:
    """Folder holding model.yaml, feeds/ and codelists/."""
    return project_root() / "schemas"


def expectations_dir() -> Path:
    """Folder holding the Great Expectations suites."""
    return project_root() / "expectations"
