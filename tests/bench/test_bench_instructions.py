"""The instructions suite, briefly: two real gateways under callgrind, a few requests each."""

from __future__ import annotations

import shutil

import pytest

from bench.__main__ import parser
from bench.instructions import (
    InstructionOptions,
    format_instruction_report,
    run_instruction_bench,
)

pytestmark = [
    pytest.mark.bench,
    pytest.mark.skipif(
        shutil.which("valgrind") is None or shutil.which("callgrind_control") is None,
        reason="valgrind is not installed (./dev test installs it with apt-get when it can)",
    ),
]


def test_tracing_off_and_no_otel_are_counted_request_by_request() -> None:
    messages: list[str] = []
    options = InstructionOptions(requests=20, warmup=5, users=10, scenarios=("get", "post"))

    report = run_instruction_bench(options, log=messages.append)

    assert [row.scenario.key for row in report.rows] == ["get", "post"]
    assert report.problems() == []
    for row in report.rows:
        # A request through the gateway runs well over 100,000 instructions, a POST more.
        assert set(row.per_request) == {"no otel", "off"}
        assert all(count > 100_000 for count in row.per_request.values())
        # The same code on both sides but for the span helpers' checks: within 5 %.
        assert 0.95 < row.ratio("no otel", "off") < 1.05
    get, post = report.rows
    assert post.per_request["off"] > get.per_request["off"]
    text = format_instruction_report(report)
    assert "off/no-otel" in text and "valgrind" in text and "PROBLEMS" not in text


def test_the_suite_is_on_the_command_line() -> None:
    args = parser().parse_args(["instructions", "--requests", "50", "--scenarios", "get"])
    assert (args.suite, args.requests, args.scenarios) == ("instructions", 50, ("get",))
