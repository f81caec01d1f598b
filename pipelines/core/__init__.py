"""What every stage may import and that imports no stage: data zones (``zones``), vectorised Arrow
helpers (``vector``), deterministic ids and buckets (``ids``), typed settings (``settings``), small
JSON files, leases, progress lines, and what Beam would re-derive per DoFn (``beam_memo``). The
layout is checked by import-linter (``.importlinter``, tests/test_layout.py): core imports nothing
else of ``pipelines``, and no two packages import each other.
"""
