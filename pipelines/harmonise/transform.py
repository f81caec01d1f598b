"""``Harmonise``, the stage's PTransform: each feed's raw tables through ``engine.harmonise``."""

from __future__ import annotations

from typing import Iterator

import apache_beam as beam

from pipelines.contracts import Contract
from pipelines.core.local_pool import PooledDoFn

TAG_VICTIM = "victim"
TAG_OFFENDER = "offender"
TAG_QUARANTINE = "quarantine"
TAG_UNMAPPED = "unmapped"


def harmonise_feed(contract: Contract, raw):
    """(feed, role, ``engine.harmonise``'s result) of one raw table of ``contract``'s feed."""
    from pipelines.harmonise.engine import harmonise  # heavy imports stay on the worker

    return contract.feed, contract.role, harmonise(contract, raw)


class HarmoniseFn(PooledDoFn):
    def __init__(self, contracts: dict[str, Contract], processes: int = 1):
        super().__init__(processes)
        self._contracts = contracts

    def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        feed_id, raw = element
        yield from self.run(harmonise_feed, (self._contracts[feed_id], raw), window, timestamp)

    def outputs(self, harmonised) -> Iterator:
        feed_id, role, result = harmonised
        if result.records.num_rows:
            yield beam.pvalue.TaggedOutput(role, result.records)
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
    """(feed_id, raw table) -> tagged outputs: victim, offender, quarantine tables and unmapped codes;
    tables harmonised in ``processes`` processes of this machine at once (``pipelines.core.local_pool``)."""

    def __init__(self, contracts: list[Contract], processes: int = 1):
        super().__init__()
        self._contracts = {c.feed: c for c in contracts}
        self._processes = processes

    def expand(self, raw_tables):
        return raw_tables | "HarmoniseRows" >> beam.ParDo(HarmoniseFn(self._contracts, self._processes)).with_outputs(
            TAG_VICTIM, TAG_OFFENDER, TAG_QUARANTINE, TAG_UNMAPPED
        )
