"""The benchmark end to end, briefly: real gateway and baseline subprocesses, real load."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bench import SCENARIO_KEYS, BenchOptions, format_report, run_bench
from bench.load import PythonLoader, Target, find_wrk
from bench.scenarios import build_scenarios
from bench.servers import auth_headers, start_baseline

pytestmark = pytest.mark.bench


def _loader_available() -> bool:
    # The Python fallback needs only aiohttp, which the gateway itself depends on.
    return find_wrk() is not None or importlib.util.find_spec("aiohttp") is not None


@pytest.mark.skipif(not _loader_available(), reason="neither wrk nor the Python loader can run")
def test_bench_runs_every_scenario_without_errors() -> None:
    messages: list[str] = []
    options = BenchOptions(duration=1, connections=2, threads=1, warmup=0, users=50)

    report = run_bench(options, log=messages.append)

    assert [row.scenario.key for row in report.rows] == list(SCENARIO_KEYS)
    for row in report.rows:
        for target in (row.gateway, row.baseline):
            assert target.requests > 0, row.scenario.label
            assert target.rps > 0, row.scenario.label
            assert target.percentile(50) > 0, row.scenario.label
            assert target.unexpected == 0, row.problems()
            assert target.socket_errors == 0, row.problems()
    assert report.problems() == []
    assert report.users_after > report.users_seeded  # the POSTs really created users
    table = format_report(report)
    assert "ERRORS" not in table
    assert all(row.scenario.label in table for row in report.rows)


def test_python_fallback_loader_drives_a_server(tmp_path: Path) -> None:
    """The fallback must work even where wrk is installed, so it is tested on its own."""
    scenarios = {s.key: s for s in build_scenarios("some-id", "seed000001")}
    answer = {"status": 200, "headers": {}, "body": {"id": "some-id"}}
    bodies = {key: {**answer, "status": s.status} for key, s in scenarios.items()}
    server = start_baseline(tmp_path, bodies, cpus=None)
    try:
        loader = PythonLoader(connections=2, cpus=None, workdir=tmp_path)
        target = Target("baseline", server.origin, auth_headers("t"), ["some-id"])
        for key in ("get", "post"):
            result = loader.run(scenarios[key], target, 1, "t")
            assert result.requests > 0
            assert result.unexpected == 0
            assert result.socket_errors == 0
    finally:
        server.stop()
