"""Hostile requests and a store outage interleaved with creates (issue 13, items 1-3, 10).

M creates, N hostile requests and a window in which every write to the store
fails, all at once, on a real gateway over a real store (SQLite file and
PostgreSQL schema). Creates whose pending event could not be stored are refused
with 503 and Retry-After before any legacy call; every other one is answered
201. Afterwards every create has exactly one closed event with the status it
was answered, nothing is left pending, and the chain verifies.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from hostile_bytes import json_body, raw_request, request_head
from rest_support import ServerFactory
from state.conftest import SettingsFactory
from support import TOKEN

from gateway.app import create_app
from gateway.errors import StoreUnavailable
from gateway.http.admin import AUDIT_LOG
from gateway.http.views import RECORDER
from gateway.state import AuditRecorder, Filters

USERS = "/apps/crm/scim/v2/Users"
AUTH = b"Authorization: Bearer " + TOKEN.encode()
JSON = b"Content-Type: application/scim+json"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
M, N = 60, 30


class Outage:
    """Every audit write fails while ``down``: a store double around the real one."""

    def __init__(self, write: Any) -> None:
        self.down = False
        self.failed = 0
        self._write = write

    async def write(self, opens: list[Any], closes: list[Any], opened: set[str]) -> None:
        if self.down:
            self.failed += 1
            raise StoreUnavailable()
        await self._write(opens, closes, opened)


def hostile(i: int) -> tuple[bytes, bytes]:
    if i % 3 == 0:
        return request_head("GET", USERS, b"User-Agent: \xff\xfe"), b""
    if i % 3 == 1:
        return request_head("GET", USERS, b"Authorization: \xff"), b""
    body = json_body({"schemas": [SCHEMA], "userName": f"x\u0000{i}"})
    return request_head("POST", USERS, AUTH, JSON, b"User-Agent: \xff"), body


async def test_creates_hostile_requests_and_an_outage_leave_every_create_closed_once(
    settings_with: SettingsFactory,
    aiohttp_server: ServerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server: TestServer = await aiohttp_server(create_app(settings_with()))
    recorder = server.app[RECORDER]
    assert isinstance(recorder, AuditRecorder)
    outage = Outage(recorder.log.write)
    monkeypatch.setattr(recorder.log, "write", outage.write)

    async def create(i: int) -> tuple[str, int]:
        await asyncio.sleep(i * 0.004)  # spread over the outage window
        body = json_body({"schemas": [SCHEMA], "userName": f"legit{i}@example.com"})
        status, headers, _ = await raw_request(
            server, request_head("POST", USERS, AUTH, JSON), body
        )
        if status == 503:
            assert headers["Retry-After"].isdigit()
        return f"legit{i}@example.com", status

    async def attack(i: int) -> None:
        await asyncio.sleep(i * 0.008)
        await raw_request(server, *hostile(i))

    async def outage_window() -> None:
        await asyncio.sleep(0.06)
        outage.down = True
        await asyncio.sleep(0.12)
        outage.down = False

    calls: list[Any] = [create(i) for i in range(M)] + [attack(i) for i in range(N)]
    random.Random(13).shuffle(calls)
    results = await asyncio.gather(outage_window(), *calls)
    answered = dict(r for r in results if isinstance(r, tuple))
    assert set(answered.values()) <= {201, 503}
    assert outage.failed > 0, "the outage hit no write: widen the window"

    await recorder.flush()
    log = server.app[AUDIT_LOG]
    events, _ = await log.list(Filters(), limit=10_000)
    assert [e for e in events if e["seq"] is None] == []
    for name, status in answered.items():
        mine = [e for e in events if e["name"] == name]
        assert [(e["operation"], e["status"]) for e in mine] == [("create", status)], name
    assert (await log.verify()).ok
