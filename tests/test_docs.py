"""The field reference is generated from schemas/: the committed copy must match it."""

from pipelines.docs import contracts_markdown, model_markdown
from tests.conftest import ROOT


def test_generated_docs_are_current():
    assert (ROOT / "docs" / "model.md").read_text(encoding="utf-8") == model_markdown(), "run `concilia docs`"
    assert (ROOT / "docs" / "feed-contracts.md").read_text(encoding="utf-8") == contracts_markdown(), \
        "run `concilia docs`"


def test_the_feed_contracts_guide_is_kept_above_the_generated_reference():
    from pipelines.docs import GENERATED_MARK
    text = (ROOT / "docs" / "feed-contracts.md").read_text(encoding="utf-8")
    guide = text.split(GENERATED_MARK)[0]
    for heading in ("## The language", "### Columns inside nested records", "### Required fields",
                    "## Onboarding a new feed"):
        assert heading in guide, heading


def test_consumer_wiring_is_current_and_names_every_delta_table():
    import yaml

    from pipelines import delta
    from pipelines.docs import bigquery_ddl, dbt_sources

    assert (ROOT / "docs" / "consumers" / "bigquery.sql").read_text(encoding="utf-8") == bigquery_ddl(), "run `concilia docs`"
    assert (ROOT / "docs" / "consumers" / "dbt_sources.yml").read_text(encoding="utf-8") == dbt_sources(), "run `concilia docs`"
    ddl = bigquery_ddl()
    for name in delta.SOURCES:
        assert f"EXTERNAL TABLE `${{CONCILIA_BQ_DATASET}}.{name}`" in ddl
        assert f"uris = ['${{CONCILIA_OUT}}/tables/{name}']" in ddl
    assert ddl.count("format = 'DELTA_LAKE'") == len(delta.SOURCES)
    (source,) = yaml.safe_load(dbt_sources())["sources"]
    tables = {t["name"]: t for t in source["tables"]}
    assert list(tables) == list(delta.SOURCES)
    for name, table in tables.items():
        assert [c["name"] for c in table["columns"]] == delta.declared_schema(name).names
        assert all(c["description"] for c in table["columns"])
