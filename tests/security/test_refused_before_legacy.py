"""Requests over a limit are refused with a SCIM error before anything reaches the legacy app,
and a request over its deadline gets 504 with the legacy call in flight cancelled."""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.test_utils import TestServer
from rest_support import Recorder, ServerFactory, json_response, user_section
from security.hostile import ACME, ERROR, PATCH, USER, Client, ClientFactory
from support import TOKEN, digest

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.http.views import RECORDER
from gateway.operation import Operation

BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


async def refused(resp: Any, status: int, scim_type: str | None = None) -> None:
    assert resp.status == status, await resp.text()
    body = await resp.json(content_type=None)
    assert (body["schemas"], body["status"], body.get("scimType")) == (
        [ERROR],
        str(status),
        scim_type,
    )


def deep(levels: int) -> bytes:
    """A JSON array nested ``levels`` deep (built as text: encoders stop far earlier)."""
    return b"[" * levels + b'"x"' + b"]" * levels


async def test_oversized_and_deeply_nested_bodies_never_reach_acme(
    scim: Client, legacy_calls: Recorder
) -> None:
    resp = await scim.post(f"{ACME}/Users", json={"schemas": [USER], "userName": "seed"})
    uid = (await resp.json())["id"]
    legacy_calls.clear()

    huge = orjson.dumps({"schemas": [USER], "userName": "big", "title": "x" * (3 << 20)})
    headers = {"Content-Type": "application/scim+json"}
    await refused(await scim.post(f"{ACME}/Users", data=io.BytesIO(huge), headers=headers), 413)
    chunked = scim.put(f"{ACME}/Users/{uid}", data=_chunks(huge), headers=headers)
    await refused(await chunked, 413)

    for levels in (17, 200, 5000):
        body = b'{"schemas":["%s"],"userName":"deep","title":%s}' % (USER.encode(), deep(levels))
        resp = await scim.post(f"{ACME}/Users", data=body, headers=headers)
        await refused(resp, 400, "invalidSyntax")
        body = b'{"schemas":["%s"],"Operations":[{"op":"add","path":"title","value":%s}]}' % (
            PATCH.encode(),
            deep(levels),
        )
        resp = await scim.patch(f"{ACME}/Users/{uid}", data=body, headers=headers)
        await refused(resp, 400, "invalidSyntax")

    ops = [{"op": "replace", "path": "title", "value": "t"}] * 1001
    resp = await scim.patch(f"{ACME}/Users/{uid}", json={"schemas": [PATCH], "Operations": ops})
    await refused(resp, 413)
    bulk_ops = [{"method": "DELETE", "path": f"/Users/{uid}"}] * 1001
    await refused(
        await scim.post(f"{ACME}/Bulk", json={"schemas": [BULK], "Operations": bulk_ops}), 413
    )
    inner = 'value co "x" or not (value co "y")'
    nested = f'userName eq "a" and (title eq "b" or emails[type eq "work" and ({inner})])'
    nested = f"not ({nested}) and not (not ({nested}))"  # 9 levels; the default allows 8
    await refused(await scim.get(f"{ACME}/Users", params={"filter": nested}), 400, "invalidFilter")
    await refused(
        await scim.get(f"{ACME}/Users", params={"filter": "a" * 5000}), 400, "invalidFilter"
    )

    assert legacy_calls.calls == [], legacy_calls.paths()


async def _chunks(data: bytes) -> Any:
    for start in range(0, len(data), 1 << 16):
        yield data[start : start + (1 << 16)]


# -- the request deadline ----------------------------------------------------------------


@dataclass
class SlowApp:
    """A legacy API whose reads take ``read_delay`` s and whose updates never answer."""

    read_delay: float
    update_started: asyncio.Event = field(default_factory=asyncio.Event)
    update_cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/items/{id}", self.get)
        app.router.add_patch("/items/{id}", self.update)
        return app

    async def get(self, request: web.Request) -> web.Response:
        await asyncio.sleep(self.read_delay)
        return json_response({"id": request.match_info["id"], "userName": "slow"})

    async def update(self, request: web.Request) -> web.Response:
        self.update_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.update_cancelled.set()
            raise
        raise AssertionError("unreachable")


class Operations:
    def __init__(self) -> None:
        self.done: list[Operation] = []

    async def opened(self, op: Operation) -> None:
        return None

    async def closed(self, op: Operation) -> None:
        self.done.append(op)


async def test_a_request_over_its_deadline_gets_504_and_the_legacy_call_is_cancelled(
    aiohttp_server: ServerFactory, aiohttp_client: ClientFactory
) -> None:
    slow = SlowApp(read_delay=0.6)
    server: TestServer = await aiohttp_server(slow.app())  # test servers cancel handlers
    rest = {"base_url": str(server.make_url("")), "users": user_section()}
    settings = parse_settings(
        {
            "apps": {
                "slow": {
                    "adapter": "rest",
                    "settings": rest,
                    "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                    # Each call alone is within call_timeout; the read and the write together
                    # are not within request_timeout.
                    "call_timeout": 1.0,
                    "request_timeout": 1.0,
                }
            }
        }
    )
    app = create_app(settings)
    ops = Operations()
    app[RECORDER] = ops
    scim = await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})
    patch = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "userName", "value": "x"}],
    }
    resp = await scim.patch("/apps/slow/scim/v2/Users/42", json=patch)
    await refused(resp, 504)
    assert (
        "did not finish within 1 s; the outcome of its writes is unknown"
        in (await resp.json(content_type=None))["detail"]
    )
    assert slow.update_started.is_set()
    await asyncio.wait_for(slow.update_cancelled.wait(), timeout=10)
    (op,) = ops.done
    assert (op.action, op.status, op.outcome) == ("patch", 504, "unknown")
