"""The inbound rate limit: a burst over it gets 429 + Retry-After and never reaches the legacy app.

The gateway runs in front of Acme HR (the demo legacy REST app, on loopback)
through the REST adapter; a middleware in Acme HR records every request it
receives. The bucket's clock is a fake one the test moves: no sleeping, no
timing asserts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rest_support import Recorder
from support import OTHER_TOKEN, TOKEN, digest

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.demo.legacy_app import create_legacy_app
from gateway.errors import TooManyRequests
from gateway.http.views import SERVICES
from gateway.mapping.engine import MAPPINGS_DIR
from gateway.ratelimit import RateLimiter

ACME_KEY = "acme-rate-limit-key-0042"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
BASE = "/apps/acme/scim/v2"
ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


# -- the bucket ---------------------------------------------------------------------------


def test_a_bucket_allows_the_burst_then_one_per_refill() -> None:
    clock = Clock()
    bucket = RateLimiter(2.0, 3, clock=clock)
    for _ in range(3):
        bucket.take("idp")
    with pytest.raises(TooManyRequests) as err:
        bucket.take("idp")
    assert err.value.headers == {"Retry-After": "1"}
    clock.now += 0.5  # one token at 2 per second
    bucket.take("idp")
    with pytest.raises(TooManyRequests):
        bucket.take("idp")


def test_a_bucket_refills_no_higher_than_the_burst() -> None:
    clock = Clock()
    bucket = RateLimiter(1.0, 2, clock=clock)
    clock.now += 3600
    bucket.take("idp")
    bucket.take("idp")
    with pytest.raises(TooManyRequests):
        bucket.take("idp")


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    clock = Clock()
    slow = RateLimiter(0.1, 1, clock=clock)
    slow.take("idp")
    with pytest.raises(TooManyRequests) as err:
        slow.take("idp")
    assert err.value.headers["Retry-After"] == "10"
    fast = RateLimiter(1000.0, 1, clock=clock)
    fast.take("idp")
    with pytest.raises(TooManyRequests) as err:
        fast.take("idp")
    assert err.value.headers["Retry-After"] == "1"


def test_each_client_has_its_own_bucket() -> None:
    bucket = RateLimiter(1.0, 1, clock=Clock())
    bucket.take("entra")
    bucket.take("okta")
    with pytest.raises(TooManyRequests):
        bucket.take("entra")


def test_the_config_takes_rate_and_burst() -> None:
    crm = {
        "adapter": "memory",
        "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
        "rate_limit": {"rate": 5, "burst": 20},
    }
    limit = parse_settings({"apps": {"crm": crm}}).apps["crm"].rate_limit
    assert limit is not None and (limit.rate, limit.burst) == (5.0, 20)


# -- through the gateway to Acme HR --------------------------------------------------------


@pytest.fixture
async def acme(
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[TestClient[Any, Any], Recorder, Clock]:
    received = Recorder()
    legacy = create_legacy_app(":memory:", ACME_KEY)
    legacy.middlewares.insert(0, received.middleware)  # outermost: sees every request
    server = await aiohttp_server(legacy)
    monkeypatch.setenv("ACME_HR_URL", str(server.make_url("/api/v1")))
    monkeypatch.setenv("ACME_HR_API_KEY", ACME_KEY)
    rest = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    tokens = [
        {"name": "entra", "sha256": digest(TOKEN)},
        {"name": "okta", "sha256": digest(OTHER_TOKEN)},
    ]
    settings = parse_settings(
        {
            "apps": {
                "acme": {
                    "adapter": "rest",
                    "mapping": "acme-hr",
                    "settings": rest,
                    "auth": {"tokens": tokens},
                    "rate_limit": {"rate": 0.5, "burst": 5},
                }
            }
        }
    )
    app = create_app(settings)
    clock = Clock()
    runtime = app[SERVICES]["acme"]
    assert runtime.rate_limit is not None
    runtime.rate_limit = RateLimiter(runtime.rate_limit.rate, runtime.rate_limit.burst, clock=clock)
    return await aiohttp_client(app), received, clock


def _create(client: TestClient[Any, Any], name: str, token: str = TOKEN) -> Any:
    body = {"schemas": [USER], "userName": name, "name": {"givenName": "A", "familyName": "B"}}
    return client.post(f"{BASE}/Users", json=body, headers={"Authorization": f"Bearer {token}"})


def _mentions(received: Recorder, name: str) -> bool:
    return any(
        name in call.raw_path or name in str(call.query) or name in orjson.dumps(call.body).decode()
        for call in received.calls
    )


async def test_a_burst_over_the_limit_gets_429_and_nothing_past_it_reaches_acme_hr(
    acme: tuple[TestClient[Any, Any], Recorder, Clock],
) -> None:
    client, received, clock = acme
    names = [f"burst-user-{i:02d}" for i in range(12)]
    responses = await asyncio.gather(*(_create(client, name) for name in names))
    by_status: dict[int, list[str]] = {}
    for name, resp in zip(names, responses, strict=True):
        by_status.setdefault(resp.status, []).append(name)
    assert sorted(by_status) == [201, 429]
    assert len(by_status[201]) == 5  # the burst
    for resp in responses:
        if resp.status == 429:
            assert resp.headers["Retry-After"] == "2"  # one token at 0.5 per second
            error = await resp.json(content_type=None)
            assert error["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
            assert error["status"] == "429"
    # Acme HR saw the accepted creates and nothing of the refused ones.
    created = [c.body["account"]["login"] for c in received.calls if c.method == "POST"]
    assert sorted(created) == sorted(by_status[201])
    assert not [name for name in by_status[429] if _mentions(received, name)]

    clock.now += 2  # the Retry-After the gateway named
    assert (await _create(client, "after-the-wait")).status == 201
    assert (await _create(client, "too-soon-again")).status == 429
    assert not _mentions(received, "too-soon-again")


async def test_the_limit_is_per_client(
    acme: tuple[TestClient[Any, Any], Recorder, Clock],
) -> None:
    client, _, _ = acme
    for i in range(5):
        assert (await _create(client, f"entra-{i}")).status == 201
    assert (await _create(client, "entra-5")).status == 429
    assert (await _create(client, "okta-0", OTHER_TOKEN)).status == 201


async def test_each_bulk_operation_pays_its_own_token(
    acme: tuple[TestClient[Any, Any], Recorder, Clock],
) -> None:
    """One Bulk request cannot carry a burst past the limit: the request pays for its
    first operation, every further one for itself; the refused ones answer 429 in
    their own results and never reach Acme HR."""
    client, received, _ = acme
    names = [f"bulk-user-{i}" for i in range(8)]
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": name,
                "data": {"schemas": [USER], "userName": name, "name": {"givenName": "A"}},
            }
            for name in names
        ],
    }
    resp = await client.post(
        f"{BASE}/Bulk", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert resp.status == 200
    results = (await resp.json(content_type=None))["Operations"]
    assert [r["status"] for r in results] == ["201"] * 5 + ["429"] * 3  # the burst is 5
    for result in results[5:]:
        assert result["response"]["status"] == "429"
    created = [c.body["account"]["login"] for c in received.calls if c.method == "POST"]
    assert created == names[:5]
    assert not [name for name in names[5:] if _mentions(received, name)]
    # The bucket is empty now for this client's next request too.
    assert (await _create(client, "after-the-bulk")).status == 429
