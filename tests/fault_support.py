"""Helpers for the resilience tests: the gateway in front of Acme HR with faults, on loopback.

A test holds the :class:`Faults` (what the next legacy calls get), the
:class:`Trail` (the operations the gateway recorded), Acme HR's store (the
real legacy state), the waits the retries asked for (no real sleeping, so no
timing in any assert) and the breaker's clock (moved by hand).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.breaker import CircuitBreaker
from gateway.demo.faults import Faults, Trail
from gateway.demo.legacy_app import Store

BASE = "/apps/acme/scim/v2"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]

#: Short timeouts so a held answer times out soon; quick retries; a breaker that opens at 3.
REST = {
    "timeout": {"connect": 2, "total": 0.5},
    "retry": {"attempts": 3, "base": 0.05, "cap": 0.5, "budget": 10},
}
APP = {"breaker": {"failures": 3, "cooldown": 30}}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    scim: Client
    faults: Faults
    trail: Trail
    store: Store
    clock: Clock
    breaker: CircuitBreaker
    #: The waits the retries asked for, in seconds (taken at once).
    waits: list[float] = field(default_factory=list)

    def accounts(self) -> list[dict[str, Any]]:
        items, _ = self.store.list_accounts(0, 200, {})
        return items

    async def create(self, login: str = "bjensen") -> Any:
        body = {"schemas": [USER], "userName": login, "name": {"givenName": "Barbara"}}
        return await self.scim.post(f"{BASE}/Users", json=body)

    async def created(self, login: str = "bjensen") -> str:
        resp = await self.create(login)
        assert resp.status == 201, await resp.text()
        id: str = (await resp.json())["id"]
        return id

    async def set_title(self, id: str, title: str) -> Any:
        body = {
            "schemas": [PATCH],
            "Operations": [{"op": "replace", "path": "title", "value": title}],
        }
        return await self.scim.patch(f"{BASE}/Users/{id}", json=body)


RigFactory = Callable[..., Awaitable[Rig]]
