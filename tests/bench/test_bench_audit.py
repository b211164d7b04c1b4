"""The audit suite, briefly: real gateways with the audit off, in SQLite and in PostgreSQL."""

from __future__ import annotations

import pytest

from bench import BenchOptions
from bench.audit import format_audit_report, run_audit_bench

pytestmark = pytest.mark.bench


def test_audit_on_and_off_are_measured_alike_in_each_store() -> None:
    messages: list[str] = []
    options = BenchOptions(
        duration=1, connections=2, warmup=0, users=20, scenarios=("get", "post"), loader="python"
    )

    report = run_audit_bench(options, log=messages.append)

    stores = {store for store, _ in report.rows}
    assert "sqlite" in stores
    assert "postgresql" in stores or report.notes  # left out only when the server is gone
    assert {row.scenario.key for _, row in report.rows} == {"get", "post"}
    for _, row in report.rows:
        for side in (row.gateway, row.baseline):
            assert side.requests > 0 and side.unexpected == 0 and side.socket_errors == 0
    assert report.problems() == []
    text = format_audit_report(report)
    assert "ERRORS" not in text and all(store in text for store in stores)
