"""docs/mappings.md documents every filter and every section of a mapping file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.mapping.engine import SECTIONS
from gateway.mapping.filters import FILTERS, NONE_SAFE

DOCS = (Path(__file__).parent.parent.parent / "docs" / "mappings.md").read_text("utf-8")


@pytest.mark.parametrize("name", sorted({*FILTERS, *NONE_SAFE}))
def test_every_filter_is_documented(name: str) -> None:
    assert f"`{name}`" in DOCS


@pytest.mark.parametrize("section", SECTIONS)
def test_every_section_is_documented(section: str) -> None:
    assert f"`{section}`" in DOCS
