"""Link stage: harmonised records -> the same person across and within agencies.

``LinkPersons`` is the stage's PTransform. Today it applies the deterministic baseline rules in
``baseline``; the probabilistic linker replaces the rules, not the plumbing: pairs come from
blocking keys partitioned across workers, and edges are clustered into persons on one worker.
"""

from pipelines.link.baseline import LinkPersons

__all__ = ["LinkPersons"]
