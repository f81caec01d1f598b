"""``Harmonise`` (pipelines/harmonise/transform.py): the same records inline and in the local pool;
files in the work folder only when a worker hands its records back."""

from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from pipelines.contracts import load_contracts
from pipelines.harmonise.engine import harmonise
from pipelines.harmonise.transform import Harmonise
from pipelines.read import read_delivery

FEED = Path(__file__).parents[2] / "sample_feeds" / "pnp" / "victimas_2018.csv"


@pytest.mark.pipeline
@pytest.mark.parametrize("processes", [1, 2])
def test_records_are_the_engine_s_and_files_are_written_only_for_workers(tmp_path, processes):
    contract = next(c for c in load_contracts() if c.feed == "pnp_victims")
    raw = read_delivery(contract, FEED.read_bytes(), "pnp/victimas_2018.csv").chunks[0]
    expected = harmonise(contract, raw).records.num_rows
    assert expected > 0
    work = tmp_path / "harmonised"
    with beam.Pipeline("FnApiRunner") as p:
        out = (p | beam.Create([(contract.feed, raw)])
               | Harmonise([contract], str(work), processes))
        assert_that(out.victim | beam.Map(lambda t: t.num_rows) | beam.CombineGlobally(sum), equal_to([expected]))
    assert work.exists() == (processes > 1)
