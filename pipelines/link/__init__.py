"""Link stage: harmonised records -> the same person across and within agencies.

``LinkPersons`` (``transform``) is the stage's PTransform: a Fellegi-Sunter model over the
comparisons in ``comparisons``, candidate pairs from the blocking rules in ``blocking``, trained
in ``fellegi_sunter``, clustered without chaining strangers in ``cluster``. Settings are data:
``schemas/linkage/settings.yaml``.
"""

from pipelines.link.transform import LinkPersons

__all__ = ["LinkPersons"]
