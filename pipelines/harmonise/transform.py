"""``Harmonise``, the stage's PTransform: each feed's raw tables through ``engine.harmonise``."""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from pipelines.contracts import Contract
from pipelines.core.handoff import Handoff
from pipelines.core.local_pool import PooledDoFn

TAG_VICTIM = "victim"
TAG_OFFENDER = "offender"
TAG_QUARANTINE = "quarantine"
TAG_UNMAPPED = "unmapped"


def harmonise_handed_off(contract: Contract, raw, handoff: Handoff):
    """``engine.harmonise`` with the records handed off: a local process sends back a file name,
    and the runner's process reads the records from the file (Arrow's own memory) rather than
    from the pipe."""
    from pipelines.harmonise.engine import harmonise  # heavy imports stay on the worker

    result = harmonise(contract, raw)
    return dataclasses.replace(result, records=handoff.store(result.records, contract.feed))


class HarmoniseFn(PooledDoFn):
    def __init__(self, contracts: dict[str, Contract], handoff: Handoff, processes: int = 1):
        super().__init__(processes)
        self._contracts = contracts
        self._handoff = handoff

    def process(self, element, window=beam.DoFn.WindowParam, timestamp=beam.DoFn.TimestampParam):
        feed_id, raw = element
        yield from self.run(harmonise_handed_off, (self._contracts[feed_id], raw, self._handoff), window, timestamp,
                            element=feed_id)

    def outputs(self, result, feed_id: str):
        contract = self._contracts[feed_id]
        records = Handoff.load(result.records)
        if records.num_rows:
            yield beam.pvalue.TaggedOutput(contract.role, records)
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
    """(feed_id, raw table) -> tagged outputs: victim, offender, quarantine tables and unmapped codes.

    With a ``work`` folder, the tables are harmonised in ``processes`` processes of this machine at
    once (``pipelines.core.local_pool``), each handing its records back through a file."""

    def __init__(self, contracts: list[Contract], work: str | None = None, processes: int = 1):
        super().__init__()
        self._contracts = {c.feed: c for c in contracts}
        pooled = processes > 1 and work is not None
        self._processes = processes if pooled else 1
        self._handoff = Handoff(work if pooled else None)  # a file only to come back from a worker

    def expand(self, raw_tables):
        return raw_tables | "HarmoniseRows" >> beam.ParDo(
            HarmoniseFn(self._contracts, self._handoff, self._processes)).with_outputs(
            TAG_VICTIM, TAG_OFFENDER, TAG_QUARANTINE, TAG_UNMAPPED
        )
