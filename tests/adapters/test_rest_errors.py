"""What the legacy app's failures become: SCIM errors with safe, secret-free details."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from rest_support import (
    API_KEY,
    Opener,
    Recorder,
    ServerFactory,
    closed_port,
    json_response,
    make_adapter,
    opened_fixture,  # noqa: F401 - the `opened` fixture
)

from adapters.rest import RestAdapter
from adapters.rest.errors import parse_retry_after
from gateway.sdk import (
    Conflict,
    InvalidValue,
    NotFound,
    Query,
    ScimError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

TAKEN = {"errors": ["Login has already been taken"]}


def answer(status: int, body: Any = None, raw: bytes | None = None, **headers: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        if raw is not None:
            return web.Response(status=status, body=raw, content_type="application/json")
        if body is None:
            return web.Response(status=status, headers=headers)
        return json_response(body, status, **headers)

    return handler


async def failing_app(
    aiohttp_server: ServerFactory,
    opened: Opener,
    handler: Any,
    recorder: Recorder | None = None,
    **settings: Any,
) -> RestAdapter:
    app = web.Application(middlewares=[recorder.middleware] if recorder else [])
    for method in ("GET", "POST", "PATCH", "DELETE"):
        app.router.add_route(method, "/api/items", handler)
        app.router.add_route(method, "/api/items/{id}", handler)
    server = await aiohttp_server(app)
    return await opened(make_adapter(str(server.make_url("/api")), **settings))


def _no_secret(error: ScimError) -> None:
    text = f"{error.detail} {error.to_json()} {error!r}"
    assert API_KEY not in text


async def test_an_unknown_id_is_not_found(aiohttp_server: ServerFactory, opened: Opener) -> None:
    adapter = await failing_app(aiohttp_server, opened, answer(404))
    with pytest.raises(NotFound) as caught:
        await adapter.get("User", "42")
    _no_secret(caught.value)


async def test_a_404_from_a_list_is_an_upstream_error_not_an_empty_result(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    adapter = await failing_app(aiohttp_server, opened, answer(404, {"error": "no route"}))
    with pytest.raises(UpstreamError) as caught:
        await adapter.search(Query("User"))
    assert caught.value.status == 502


async def test_a_409_is_a_uniqueness_conflict(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    body = {"error": "duplicate", "field": "login"}
    adapter = await failing_app(aiohttp_server, opened, answer(409, body))
    with pytest.raises(Conflict) as caught:
        await adapter.create("User", {"login": "bjensen"})
    assert caught.value.to_json()["scimType"] == "uniqueness"
    assert "field login" in caught.value.detail


async def test_a_422_matching_the_duplicate_pattern_is_a_conflict(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    adapter = await failing_app(
        aiohttp_server,
        opened,
        answer(422, TAKEN),
        duplicate={"statuses": [422], "body_pattern": "has already been taken"},
    )
    with pytest.raises(Conflict) as caught:
        await adapter.create("User", {"login": "bjensen"})
    assert caught.value.status == 409


async def test_a_422_without_the_pattern_is_a_400_with_the_apps_message(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    body = {"errors": ["Firstname cannot be blank"]}
    adapter = await failing_app(
        aiohttp_server, opened, answer(422, body), duplicate={"body_pattern": "already been taken"}
    )
    with pytest.raises(InvalidValue) as caught:
        await adapter.create("User", {"login": "bjensen"})
    assert caught.value.status == 400
    assert "Firstname cannot be blank" in caught.value.detail
    assert "POST /items" in caught.value.detail


async def test_a_429_is_a_503_with_the_apps_retry_after(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    adapter = await failing_app(
        aiohttp_server, opened, answer(429, {"error": "slow down"}, **{"Retry-After": "7"})
    )
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.get("User", "1")
    assert (caught.value.status, caught.value.headers) == (503, {"Retry-After": "7"})


async def test_a_503_without_retry_after_gets_the_configured_one(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    adapter = await failing_app(aiohttp_server, opened, answer(503), retry_after=12)
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.get("User", "1")
    assert caught.value.headers == {"Retry-After": "12"}


def test_retry_after_may_be_an_http_date() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 30) == 1  # in the past
    assert parse_retry_after("soon", 30) == 30
    assert parse_retry_after("120", 30) == 120


async def test_a_slow_app_is_a_504(aiohttp_server: ServerFactory, opened: Opener) -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return json_response({"id": "1"})

    adapter = await failing_app(aiohttp_server, opened, slow, timeout={"connect": 1, "total": 0.2})
    with pytest.raises(UpstreamTimeout) as caught:
        await adapter.get("User", "1")
    assert caught.value.status == 504
    assert "GET /items/{id}" in caught.value.detail


@pytest.mark.parametrize(
    "handler,what",
    [
        (answer(200, raw=b"{not json"), "not JSON"),
        (answer(200, {"something": "else"}), "has no id"),
        (answer(200, ["a", "list"]), "not a JSON object"),
        (answer(500, {"error": "boom"}), "HTTP 500"),
        (answer(418, {"error": "teapot"}), "HTTP 418"),
    ],
)
async def test_a_malformed_or_failed_answer_is_a_502(
    aiohttp_server: ServerFactory, opened: Opener, handler: Any, what: str
) -> None:
    adapter = await failing_app(aiohttp_server, opened, handler)
    with pytest.raises(UpstreamError) as caught:
        await adapter.get("User", "1")
    assert caught.value.status == 502
    assert what in caught.value.detail


async def test_an_unreachable_app_is_a_503_that_says_where_and_why(opened: Opener) -> None:
    port = closed_port()
    adapter = await opened(make_adapter(f"http://127.0.0.1:{port}/api"))
    with pytest.raises(UpstreamUnavailable) as caught:
        await adapter.get("User", "1")
    assert caught.value.status == 503
    assert caught.value.detail == f"cannot reach the app at 127.0.0.1:{port}: connection refused"
    assert isinstance(caught.value.__cause__, OSError)
    _no_secret(caught.value)


async def test_a_redirect_is_not_followed(aiohttp_server: ServerFactory, opened: Opener) -> None:
    recorder = Recorder()

    async def moved(request: web.Request) -> web.Response:
        if request.path.startswith("/elsewhere"):
            return json_response({"id": "1"})
        raise web.HTTPFound("/elsewhere/items/1")

    app = web.Application(middlewares=[recorder.middleware])
    app.router.add_get("/api/items/{id}", moved)
    app.router.add_get("/elsewhere/items/{id}", moved)
    server = await aiohttp_server(app)
    adapter = await opened(make_adapter(str(server.make_url("/api"))))
    with pytest.raises(UpstreamError, match="redirected"):
        await adapter.get("User", "1")
    assert recorder.paths() == ["/api/items/1"]


async def test_an_answer_larger_than_the_limit_is_a_502(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    big = {"id": "1", "blob": "x" * 5000}
    adapter = await failing_app(aiohttp_server, opened, answer(200, big), max_response_size=2048)
    with pytest.raises(UpstreamError, match="max_response_size"):
        await adapter.get("User", "1")


async def test_no_error_detail_carries_a_secret_the_app_echoes(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    async def echo(request: web.Request) -> web.Response:
        key = request.headers.get("X-Api-Key", "")
        token = request.query.get("token", "")
        return json_response({"errors": [f"key {key} and token {token} may not do that"]}, 422)

    adapter = await failing_app(
        aiohttp_server,
        opened,
        echo,
        users={
            "get": {"path": "/items/{id}", "query": {"token": "${env:REST_TEST_TOKEN}"}},
            "list": {"path": "/items", "paging": {"style": "none"}},
            "create": {"path": "/items"},
            "update": {"path": "/items/{id}"},
            "delete": {"path": "/items/{id}"},
        },
    )
    with pytest.raises(InvalidValue) as caught:
        await adapter.get("User", "1")
    assert "may not do that" in caught.value.detail
    assert "q-s3cret-token" not in caught.value.detail
    _no_secret(caught.value)


@pytest.fixture(autouse=True)
def _query_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REST_TEST_TOKEN", "q-s3cret-token")
