"""The event-driven service around the pipeline: landing zone, ledger, watch loop, schedule,
status and diff. See docs/service.md.

Nothing here knows an agency: the landing layout is derived from the feed contracts, and which
feeds a period needs before it runs is each contract's ``delivery: {required: ...}``.
"""
