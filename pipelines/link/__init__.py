"""Link stage: harmonised records -> the same person across and within agencies.

``LinkPersons`` (``transform``) is the stage's PTransform: a Fellegi-Sunter model over the
comparisons in ``comparisons``, candidate pairs from the blocking rules in ``blocking``, trained
in ``fellegi_sunter``, clustered without chaining strangers in ``cluster`` (stewards' judgements
applied by ``constraints``). Settings are data: ``schemas/linkage/settings.yaml``, read into the
typed objects of ``settings`` by ``linker.load_settings``.

Only ``transform`` imports Apache Beam: the linkage maths imports, runs and is tested without it
(``.importlinter``).
"""
