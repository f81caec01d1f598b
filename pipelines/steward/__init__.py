"""The steward's loop: judgements that stick (``decisions``, applied by the clustering as
``pipelines.link.constraints``), person ids that last across runs and periods (``registry``), and
the ``concilia review`` commands (``cli``).

State lives beside the runs under OUT (restricted zone): the decisions log
(``OUT/steward/decisions.jsonl``, or ``--decisions URL``) and, inside every run, the person registry
(``restricted/registry/``) that the next run starts from.
"""
