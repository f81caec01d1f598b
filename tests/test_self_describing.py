"""Every written Parquet file says what it is: field descriptions from schemas/model.yaml, and the
table, zone, model version and run id in its metadata; row groups sized for reading."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from pipelines import model


def test_every_parquet_file_of_a_run_describes_its_fields_and_itself(sample_run):
    run_dir = Path(sample_run.run_dir)
    files = sorted(run_dir.rglob("*.parquet"))
    folders = {str(f.parent.relative_to(run_dir)) for f in files}
    assert {"persons", "links/victims", "review_queue/victims", "checks", "mse/capture_histories"} <= folders
    for path in files:
        schema = pq.read_schema(path)
        meta = {k.decode(): v.decode() for k, v in schema.metadata.items()}
        where = path.relative_to(run_dir)
        assert meta["concilia.run_id"] == sample_run.run_id, where
        assert meta["concilia.model_version"] == model.model_version(), where
        assert meta["concilia.zone"] in ("pseudonymised", "restricted"), where
        for field in schema:
            description = (field.metadata or {}).get(b"description", b"").decode()
            assert description and description == model.field_description(meta["concilia.table"], field.name), (
                where, field.name)
        assert pq.ParquetFile(path).metadata.num_row_groups == 1, where  # every table is below a million rows

    persons = pq.read_schema(run_dir / "persons" / "part-00000-of-00001.parquet")
    assert persons.field("agencies").metadata[b"description"].decode() == model.table("person").field("agencies").description
    assert set(f.suffix for f in (run_dir / "mse").rglob("*") if f.is_file()) == {".parquet"}
