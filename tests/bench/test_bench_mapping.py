"""The mapping suite, briefly: every shipped mapping, both directions, Jinja vs. compiled."""

from __future__ import annotations

import pytest

from bench.__main__ import parser
from bench.mapping import MappingOptions, format_mapping_report, run_mapping_bench
from gateway.mapping import sandbox
from gateway.mapping.engine import MAPPINGS_DIR

pytestmark = pytest.mark.bench


def test_every_shipped_mapping_is_timed_both_ways_with_equal_results() -> None:
    lines: list[str] = []

    report = run_mapping_bench(MappingOptions(rounds=2, batch=0.002), log=lines.append)

    mappings = {p.name for p in MAPPINGS_DIR.iterdir() if p.is_dir()}
    assert {row.mapping for row in report.rows} == mappings
    assert {row.direction for row in report.rows} == {"from_legacy", "to_legacy"}
    assert report.problems() == []
    for row in report.rows:
        assert len(row.jinja_us) == len(row.compiled_us) == 2
        assert row.jinja > 0 and row.compiled > 0
        assert row.compiled_fields == row.fields > 0  # every shipped template is compiled
    assert sandbox._COMPILE_EXPRESSIONS  # the switch is back on
    text = format_mapping_report(report)
    assert "acme-hr" in text and "ratio" in text and "ERRORS" not in text
    assert parser().parse_args(["mapping"]).suite == "mapping"
