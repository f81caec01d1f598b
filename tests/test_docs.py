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
