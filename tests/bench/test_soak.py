"""The soak run, briefly: mixed load through the gateway into Acme HR failing 10 % of calls."""

from __future__ import annotations

import pytest

from bench.soak import SoakOptions, format_soak, run_soak, slope

pytestmark = pytest.mark.bench


async def test_a_short_soak_loses_nothing_duplicates_nothing_and_leaks_no_task() -> None:
    report = await run_soak(SoakOptions(duration=8, users=20, workers=4, sample_every=1))
    text = format_soak(report)
    assert report.duplicates == [], text
    assert report.tally.problems == [], text
    assert report.tasks_after == report.tasks_before and report.tasks_left == [], text
    assert sum(report.injected.values()) > 0 and report.tally.requests, text
    assert len(report.rss_kib) >= 2 and text.endswith("OK")


def test_the_slope_is_a_least_squares_fit() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == 2
    assert slope([(0, 4), (1, 4)]) == 0
