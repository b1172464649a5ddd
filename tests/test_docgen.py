"""docs/reference.md is generated from the schemas; this keeps the committed page in step with them."""

from __future__ import annotations

from pathlib import Path

from asicsim.docgen import render

REFERENCE = Path(__file__).resolve().parents[1] / "docs" / "reference.md"


def test_reference_matches_the_schemas():
    assert REFERENCE.read_text(encoding="utf-8") == render(), (
        "docs/reference.md is stale: regenerate it with `python -m asicsim.docgen > docs/reference.md`")


def test_reference_names_every_block_kind_and_field():
    from asicsim.hardware.spec import ChipSpec, MatmulSpec, SRAMSpec

    page = render()
    for model in (ChipSpec, MatmulSpec, SRAMSpec):
        assert f"### {model.__name__}" in page
        for name in model.model_fields:
            assert f"| `{name}` |" in page
