"""Where Concilia's declarative resources (schemas, expectations) live.

Code never hard-codes paths: it asks here, so a deployment (or a test) can point the whole
service at another tree with the CONCILIA_HOME environment variable. An installed wheel carries
schemas/ and expectations/ inside the package; a checkout (or editable install) has them at its root.
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


def _data_dir(name: str) -> Path:
    """$CONCILIA_HOME/<name> if set; else the copy a wheel ships inside the package
    (``pipelines/<name>``, see setup.py); else the checkout's ``<name>/``."""
    if os.environ.get(ENV_HOME):
        return project_root() / name
    packaged = Path(__file__).resolve().parent / name
    return packaged if packaged.is_dir() else project_root() / name


def schemas_dir() -> Path:
    """Folder holding model.yaml, feeds/ and codelists/."""
    return _data_dir("schemas")


def expectations_dir() -> Path:
    """Folder holding the Great Expectations suites."""
    return _data_dir("expectations")
