"""What every stage may import and that imports no stage: data zones (``zones``), vectorised Arrow
helpers (``vector``), deterministic ids and buckets (``ids``), typed settings (``settings``), small
JSON files, leases, progress lines, what Beam would re-derive per DoFn (``beam_memo``), tables
handed between stages through files (``handoff``) and the in-process runner's pool of local
processes (``local_pool``; its workers' side, without Beam: ``pool_worker``). The
layout is checked by import-linter (``.importlinter``, tests/test_layout.py): core imports nothing
else of ``pipelines``, and no two packages import each other.
"""
