"""The benchmark end to end, briefly: real gateway and baseline subprocesses, real load.

Both suites: ``memory`` (gateway vs. fixed answers) and ``rest`` (gateway on the
REST adapter vs. the hand-written proxy, both in front of Acme HR).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from bench import SCENARIO_KEYS, BenchOptions, format_report, run_bench
from bench.__main__ import parser
from bench.load import PythonLoader, Target, find_wrk
from bench.proxy import account_to_user, user_to_account
from bench.report import format_rest_report, suspect
from bench.rest import (
    REST_SCENARIO_KEYS,
    RestOptions,
    first_difference,
    run_rest_bench,
    seed_account,
)
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


@pytest.mark.skipif(not _loader_available(), reason="neither wrk nor the Python loader can run")
def test_rest_bench_runs_every_scenario_with_equal_answers() -> None:
    messages: list[str] = []
    options = RestOptions(duration=1, connections=2, threads=1, warmup=0, users=50)

    report = run_rest_bench(options, log=messages.append)

    assert report.check.passed, report.check.differences
    assert report.check.counts["GET /Users/{id}"] == 50
    assert report.check.counts["POST /Users"] == 2
    assert any(m.startswith("equality check: EQUAL") for m in messages)
    assert [row.scenario.key for row in report.rows] == list(REST_SCENARIO_KEYS)
    for row in report.rows:
        for name, target in (("gateway", row.gateway), ("baseline", row.baseline)):
            assert target.requests > 0, row.scenario.label
            assert target.percentile(50) > 0, row.scenario.label
            assert target.unexpected == 0, row.problems()
            assert target.socket_errors == 0, row.problems()
            assert report.cpu_of(row, name).requests == target.requests
    assert report.problems() == []
    assert report.accounts_after > report.accounts_seeded  # the POSTs really created accounts
    text = format_rest_report(report)
    assert "ERRORS" not in text
    assert "check:    EQUAL" in text
    assert "closing note: gateway (rest adapter)/proxy throughput ratio" in text
    assert all(row.scenario.label in text for row in report.rows)
    # The memory adapter's row: the gateway's own work, next to the same proxy.
    assert [row.scenario.key for row in report.memory_rows] == list(REST_SCENARIO_KEYS)
    for row in report.memory_rows:
        assert row.gateway.requests > 0 and row.gateway.unexpected == 0, row.problems()
        assert report.cpu_of(row, "gateway").requests == row.gateway.requests
    assert "gateway (memory adapter)/proxy" in text


def test_proxy_translation_round_trips_a_seeded_account() -> None:
    account = {"account_id": "acc_000009", **seed_account(8), "status": "enabled"}
    user = account_to_user(account, "http://h/apps/bench/scim/v2")
    assert user["meta"]["location"] == "http://h/apps/bench/scim/v2/Users/acc_000009"
    assert user_to_account(user) == {k: v for k, v in account.items() if k != "account_id"}


def test_proxy_reads_a_mail_without_kind_as_work_and_an_unset_status_as_no_active() -> None:
    account = {"account_id": "acc_000025", **seed_account(24)}
    assert account["status"] is None
    assert "active" not in account_to_user(account, "http://h")
    seeded = {"account_id": "acc_000004", **seed_account(3), "status": "enabled"}
    sparse = account_to_user(seeded, "http://h")
    assert sparse["emails"] == [{"value": "seed000003@example.com", "type": "work"}]
    assert sparse["active"] is True


def test_first_difference_names_the_place() -> None:
    assert first_difference({"a": [1, {"b": True}]}, {"a": [1, {"b": True}]}) is None
    assert first_difference({"a": [1, {"b": True}]}, {"a": [1, {"b": 1}]}) == (
        ".a[1].b: gateway True vs. proxy 1"
    )
    assert first_difference({"a": 1}, {}) == ".a: only the gateway has it"


def test_cli_picks_the_suite() -> None:
    assert parser().parse_args([]).suite == "memory"
    args = parser().parse_args(["rest", "--duration", "2", "--scenarios", "get,post"])
    assert (args.suite, args.duration, args.scenarios) == ("rest", 2, ("get", "post"))
    with pytest.raises(SystemExit):
        parser().parse_args(["rest", "--scenarios", "nope"])


def test_a_report_with_problems_says_its_numbers_are_suspect_and_names_each() -> None:
    assert suspect([]) == []
    lines = suspect(["gateway: 3 unexpected statuses", "baseline: 1 socket error"])
    assert "!!! ERRORS DURING THE BENCHMARK - THE NUMBERS ABOVE ARE SUSPECT" in lines
    assert "!!! gateway: 3 unexpected statuses" in lines
    assert "!!! baseline: 1 socket error" in lines
