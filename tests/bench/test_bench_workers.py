"""The workers suite, briefly: one worker and two on one port, their audit trails checked."""

from __future__ import annotations

import pytest

from bench import BenchOptions
from bench.workers import format_workers_report, run_workers_bench

pytestmark = pytest.mark.bench


def test_one_and_two_workers_are_measured_and_every_request_has_one_audit_event() -> None:
    messages: list[str] = []
    options = BenchOptions(
        duration=1, connections=4, warmup=0, users=20, scenarios=("get", "post"), loader="python"
    )

    report = run_workers_bench(options, log=messages.append)

    assert [row.scenario.key for row in report.rows] == ["get", "post"]
    for row in report.rows:
        for side in (row.gateway, row.baseline):
            assert side.requests > 0 and side.unexpected == 0 and side.socket_errors == 0
    assert set(report.trails) == {"1 worker", "2 workers"}
    for trail in report.trails.values():
        assert trail.events > 0 and trail.events == trail.access_lines
        assert trail.pending == 0 and trail.verified
    assert report.trails["2 workers"].writers == 2
    assert report.problems() == []
    assert "ERRORS" not in format_workers_report(report)
