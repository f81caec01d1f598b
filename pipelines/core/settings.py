"""Typed settings: what a run is asked to do, as one object instead of loose keyword dicts."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunSettings:
    """The settings of a run: ``concilia run``'s options, ``concilia watch``'s (for every run it starts)
    and the Dataflow Flex Template's parameters (``pipelines.options.RUN_SETTINGS`` declares them)."""

    public_threshold: int = 5  # public tables show counts under it as "<N"
    mse_method: str | None = None  # None: schemas/mse/settings.yaml's
    decisions: str | None = None  # the stewards' decisions store; None: OUT/steward/decisions
    data_docs: bool = False  # also Great Expectations Data Docs under reports/data_docs/
    allow_missing: tuple[str, ...] = ()  # required feeds that may be missing ("*": any)
    linkage_models: dict[str, dict] | None = None  # pinned models per role; None: trained by the run

    def run_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``pipelines.pipeline.run``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
