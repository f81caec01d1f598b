"""``Harmonise``, the stage's PTransform: each feed's raw tables through ``engine.harmonise``."""

from __future__ import annotations

from typing import Iterator

import apache_beam as beam

from pipelines.contracts import Contract

TAG_VICTIM = "victim"
TAG_OFFENDER = "offender"
TAG_QUARANTINE = "quarantine"
TAG_UNMAPPED = "unmapped"


class HarmoniseFn(beam.DoFn):
    def __init__(self, contracts: dict[str, Contract]):
        self._contracts = contracts

    def process(self, element) -> Iterator:
        from pipelines.harmonise.engine import harmonise  # heavy imports stay on the worker

        feed_id, raw = element
        contract = self._contracts[feed_id]
        result = harmonise(contract, raw)
        if result.records.num_rows:
            yield beam.pvalue.TaggedOutput(contract.role, result.records)
        if result.quarantined.num_rows:
            yield beam.pvalue.TaggedOutput(TAG_QUARANTINE, result.quarantined)
        for field_name, values in sorted(result.unmapped_values.items()):
            for value, count in sorted(values.items()):
                yield beam.pvalue.TaggedOutput(
                    TAG_UNMAPPED, {"feed_id": feed_id, "field": field_name, "value": value, "count": count}
                )
        # rows kept although a field required with ``warn`` failed: counted beside the unmapped values
        for (field_name, reason), count in sorted(result.warnings.items()):
            yield beam.pvalue.TaggedOutput(
                TAG_UNMAPPED, {"feed_id": feed_id, "field": field_name, "warning": reason, "count": count})


class Harmonise(beam.PTransform):
    """(feed_id, raw table) -> tagged outputs: victim, offender, quarantine tables and unmapped codes."""

    def __init__(self, contracts: list[Contract]):
        super().__init__()
        self._contracts = {c.feed: c for c in contracts}

    def expand(self, raw_tables):
        return raw_tables | "HarmoniseRows" >> beam.ParDo(HarmoniseFn(self._contracts)).with_outputs(
            TAG_VICTIM, TAG_OFFENDER, TAG_QUARANTINE, TAG_UNMAPPED
        )
