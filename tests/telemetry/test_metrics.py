"""``GET /metrics``: scraped after real requests, its series parsed and checked."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families
from rest_support import closed_port
from support import BASE, TOKEN, make_settings
from telemetry_support import BASE as ACME
from telemetry_support import HEADERS as ACME_HEADERS
from telemetry_support import acme_stack, new_user

from gateway.app import create_app

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, keyed by name and sorted labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


async def scrape(
    client: TestClient[Any, Any],
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    return samples(await resp.text())


async def test_requests_are_counted_and_timed_by_app_operation_and_status() -> None:
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(make_settings())))
    await client.start_server()
    try:
        user = {"userName": "bjensen"}
        for _ in range(2):
            await client.post(f"{BASE}/Users", json=user, headers=HEADERS)
        await client.get(f"{BASE}/Users", params={"filter": 'userName eq "x"'}, headers=HEADERS)
        await client.get("/apps/nope/scim/v2/Users", headers=HEADERS)
        await client.get("/healthz")
        got = await scrape(client)
    finally:
        await client.close()

    created = labels(app="crm", operation="create", status="201")
    refused = labels(app="crm", operation="create", status="409")
    assert got[("scim_gateway_requests_total", created)] == 1
    assert got[("scim_gateway_requests_total", refused)] == 1
    assert (
        got[("scim_gateway_requests_total", labels(app="crm", operation="list", status="200"))] == 1
    )
    assert got[("scim_gateway_requests_total", labels(app="", operation="none", status="404"))] == 1
    assert (
        sum(v for (n, _), v in got.items() if n == "scim_gateway_requests_total") == 4
    )  # no probes
    assert got[("scim_gateway_request_duration_seconds_count", created)] == 1
    inf = labels(app="crm", operation="create", status="201", le="+Inf")
    assert got[("scim_gateway_request_duration_seconds_bucket", inf)] == 1
    first = labels(app="crm", operation="create", status="201", le="0.005")
    assert ("scim_gateway_request_duration_seconds_bucket", first) in got  # our buckets
    assert got[("scim_gateway_request_duration_seconds_sum", created)] > 0
    assert got[("scim_gateway_requests_in_flight", ())] == 0
    create_calls = labels(app="crm", call="create")
    assert got[("scim_gateway_adapter_call_duration_seconds_count", create_calls)] == 2
    assert not [k for k in got if k[0] == "scim_gateway_adapter_errors_total"]  # a 409 is no error


async def test_a_legacy_app_that_is_down_counts_as_adapter_errors_by_type() -> None:
    async with acme_stack(legacy_url=f"http://127.0.0.1:{closed_port()}/api/v1") as stack:
        for _ in range(3):
            resp = await stack.client.post(f"{ACME}/Users", json=new_user(), headers=ACME_HEADERS)
            assert resp.status == 503
        got = await scrape(stack.client)
    errors = {k: v for k, v in got.items() if k[0] == "scim_gateway_adapter_errors_total"}
    assert errors, "no adapter error series"
    assert {dict(k[1])["app"] for k in errors} == {"acme"}
    assert {dict(k[1])["error"] for k in errors} == {"UpstreamUnavailable"}
    assert sum(errors.values()) == 3  # each create stopped at its first call
    failed = labels(app="acme", operation="create", status="503")
    assert got[("scim_gateway_requests_total", failed)] == 3


async def test_the_breaker_state_of_each_app_is_a_gauge() -> None:
    async with acme_stack(legacy_url=f"http://127.0.0.1:{closed_port()}/api/v1") as stack:
        before = await scrape(stack.client)
        statuses = []
        for _ in range(6):  # breaker.failures defaults to 5 consecutive failed calls
            resp = await stack.client.post(f"{ACME}/Users", json=new_user(), headers=ACME_HEADERS)
            statuses.append(resp.status)
        after = await scrape(stack.client)
        ready = await (await stack.client.get("/readyz")).json()
    gauge = ("scim_gateway_breaker_state", labels(app="acme"))
    assert (before[gauge], after[gauge]) == (0, 2)  # closed, then open
    assert statuses == [503] * 6  # the sixth refused at once: the app got no call
    assert ready["breakers"] == {"acme": "open"}
