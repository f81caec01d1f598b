"""The field reference is generated from schemas/: the committed copy must match it."""

from pipelines.docs import contracts_markdown, model_markdown
from tests.conftest import ROOT


def test_generated_docs_are_current():
    assert (ROOT / "docs" / "model.md").read_text(encoding="utf-8") == model_markdown(), "run `concilia docs`"
    assert (ROOT / "docs" / "feed-contracts.md").read_text(encoding="utf-8") == contracts_markdown(), \
        "run `concilia docs`"
