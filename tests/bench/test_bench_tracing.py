"""The tracing suite, briefly: real gateways (on, off, no OTel), an OTLP receiver, real load."""

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

    report = run_tracing_bench(options, log=messages.append, sampling=1.0)

    assert [row.scenario.key for row in report.rows] == ["get", "patch"]
    assert [row.scenario.key for row in report.bare_rows] == ["get", "patch"]
    for row in (*report.rows, *report.bare_rows):
        for side in (row.gateway, row.baseline):
            assert side.requests > 0 and side.unexpected == 0 and side.socket_errors == 0
    assert report.problems() == []
    # Every answered request left at least its server, operation and adapter spans.
    assert report.spans_received >= 3 * report.requests_on
    text = format_tracing_report(report)
    assert "on/off" in text and "off/no-otel" in text and "ERRORS" not in text
    assert all(row.scenario.label in text for row in report.rows)


def test_a_ratio_sampler_traces_a_share_of_the_requests() -> None:
    options = BenchOptions(
        duration=2, connections=4, warmup=0, users=20, scenarios=("get",), loader="python"
    )

    report = run_tracing_bench(options, log=lambda line: None, sampling=0.1)

    assert report.problems() == []
    # About a tenth of the requests send their spans (3+ each); far fewer than all.
    assert 0 < report.spans_received < report.requests_on
