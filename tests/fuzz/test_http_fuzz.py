"""Hostile requests through the real HTTP app: a SCIM error or a success, never a 500 or a hang.

The gateway (memory adapter) is served by pytest-aiohttp's test server on loopback, on
the test's event loop; Hypothesis runs in a worker thread and hands each example to that
loop, where the request is bounded by ``asyncio.timeout``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from fuzz.checks import assert_scim_error_body
from fuzz.strategies import (
    USER_URN,
    attribute,
    filter_text,
    json_scalar,
    json_value,
    patch_body,
    user_body,
)
from hypothesis import given
from hypothesis import strategies as st
from support import BASE, TOKEN, make_settings

from gateway.app import create_app

Client = TestClient[web.Request, web.Application]
Send = Callable[..., Any]
#: Seconds one request may take before the example counts as a hang.
HANG = 10.0


@pytest.fixture
async def send(aiohttp_client: Callable[..., Awaitable[Client]]) -> Send:
    """``send(method, path, ...)`` from any thread: the checked status, run on the test loop."""
    client = await aiohttp_client(
        create_app(make_settings(max_patch_operations=3, bulk={"max_operations": 3})),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    loop = asyncio.get_running_loop()
    resp = await client.post(f"{BASE}/Users", json={"schemas": [USER_URN], "userName": "seed"})
    seed_id = (await resp.json(content_type=None))["id"]

    async def one(method: str, path: str, **kwargs: Any) -> int:
        async with asyncio.timeout(HANG):
            resp = await client.request(method, path.replace("{seed}", seed_id), **kwargs)
            raw = await resp.read()
        if resp.status >= 400:
            assert_scim_error_body(resp.status, resp.content_type, orjson.loads(raw))
        elif raw:
            orjson.loads(raw)  # a success is JSON too
        return resp.status

    def run(method: str, path: str, **kwargs: Any) -> int:
        future = asyncio.run_coroutine_threadsafe(one(method, path, **kwargs), loop)
        return future.result(timeout=HANG + 5)

    return run


def body(value: Any) -> dict[str, Any]:
    # The standard encoder: orjson refuses integers beyond 64 bits, which clients may send.
    return {
        "data": json.dumps(value).encode(),
        "headers": {"Content-Type": "application/scim+json"},
    }


async def test_any_user_body_is_created_or_refused(send: Send) -> None:
    @given(user_body())
    def check(value: Any) -> None:
        send("POST", f"{BASE}/Users", **body(value))

    await asyncio.to_thread(check)


async def test_any_bytes_as_a_body_are_refused_cleanly(send: Send) -> None:
    @given(
        st.binary(max_size=200) | st.text(max_size=100).map(str.encode),
        st.sampled_from(["POST /Users", "PUT /Users/{seed}", "PATCH /Users/{seed}", "POST /Bulk"]),
        st.sampled_from(["application/scim+json", "application/json", "text/plain", ""]),
    )
    def check(raw: bytes, target: str, content_type: str) -> None:
        method, path = target.split(" ")
        headers = {"Content-Type": content_type} if content_type else {}
        send(method, f"{BASE}{path}", data=raw, headers=headers)

    await asyncio.to_thread(check)


async def test_any_patch_body_applies_or_is_refused(send: Send) -> None:
    @given(patch_body(), st.sampled_from(["Users/{seed}"] * 4 + ["Users/nope", "Groups/nope"]))
    def check(value: Any, target: str) -> None:
        send("PATCH", f"{BASE}/{target}", **body(value))

    await asyncio.to_thread(check)


async def test_any_put_body_replaces_or_is_refused(send: Send) -> None:
    @given(user_body())
    def check(value: Any) -> None:
        status = send("PUT", f"{BASE}/Users/{{seed}}", **body(value))
        if status == 200:  # keep the seed for the next example
            send("PUT", f"{BASE}/Users/{{seed}}", json={"schemas": [USER_URN], "userName": "seed"})

    await asyncio.to_thread(check)


async def test_any_query_is_answered_or_refused(send: Send) -> None:
    texts = st.text(max_size=20) | st.integers(-(10**30), 10**30).map(str)
    names = ["filter", "count", "startIndex", "sortBy", "sortOrder", "attributes", "COUNT"]

    @given(filter_text, st.dictionaries(st.sampled_from(names), texts, max_size=4))
    def check(text: str, params: dict[str, str]) -> None:
        send("GET", f"{BASE}/Users", params={"filter": text, **params})

    await asyncio.to_thread(check)


async def test_any_search_and_bulk_body_is_answered_or_refused(send: Send) -> None:
    search = st.fixed_dictionaries(
        {"schemas": st.just(["urn:ietf:params:scim:api:messages:2.0:SearchRequest"])},
        optional={
            "filter": filter_text | json_scalar,
            "count": json_scalar,
            "startIndex": json_scalar,
            "attributes": json_value,
            "sortBy": attribute | json_scalar,
        },
    )
    operation = st.fixed_dictionaries(
        {},
        optional={
            "method": st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET", "post"]),
            "path": st.sampled_from(["/Users", "/Users/{seed}", "/Groups", "/Users/x/y", ""])
            | json_scalar,
            "bulkId": st.text(max_size=5) | json_scalar,
            "data": user_body() | patch_body() | json_value,
            "version": json_scalar,
        },
    )
    bulk = st.fixed_dictionaries(
        {
            "schemas": st.just(["urn:ietf:params:scim:api:messages:2.0:BulkRequest"]),
            "Operations": st.lists(operation, max_size=4),
        },
        optional={"failOnErrors": json_scalar},
    )

    @given(st.sampled_from(["Users/.search", ".search"]), search, bulk)
    def check(where: str, query: Any, request: Any) -> None:
        send("POST", f"{BASE}/{where}", **body(query))
        send("POST", f"{BASE}/Bulk", **body(request))

    await asyncio.to_thread(check)
