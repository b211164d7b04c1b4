"""The tracing suite, briefly: two real gateways (tracing on, off), an OTLP receiver, real load."""

from __future__ import annotations

import pytest

from bench import BenchOptions
from bench.tracing import format_tracing_report, run_tracing_bench

pytestmark = pytest.mark.bench


def test_tracing_on_and_off_are_measured_alike_and_spans_reach_the_receiver() -> None:
    messages: list[str] = []
    options = BenchOptions(
        duration=1, connections=2, warmup=0, users=20, scenarios=("get", "patch"), loader="python"
    )

    report = run_tracing_bench(options, log=messages.append)

    assert [row.scenario.key for row in report.rows] == ["get", "patch"]
    for row in report.rows:
        for side in (row.gateway, row.baseline):
            assert side.requests > 0 and side.unexpected == 0 and side.socket_errors == 0
    assert report.problems() == []
    # Every answered request left at least its server, operation and adapter spans.
    assert report.spans_received >= 3 * report.requests_on
    text = format_tracing_report(report)
    assert "on/off" in text and "ERRORS" not in text
    assert all(row.scenario.label in text for row in report.rows)
