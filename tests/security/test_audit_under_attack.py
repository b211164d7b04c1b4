"""Hostile requests cannot erase other requests' audit events (issue 13, items 1 and 2).

The recorder group-commits; one row the store refused (a ``User-Agent`` byte
0xFF, a NUL in a userName on PostgreSQL) used to fail its whole batch, leaving
legitimate creates ``pending`` or answering them 500. Here N hostile requests
run interleaved with M creates on a real gateway over a real store (SQLite file
and PostgreSQL schema): every create is answered 201 and closed once in a chain
that verifies.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from aiohttp.test_utils import TestServer
from hostile_bytes import json_body, raw_request, request_head
from security.conftest import ServerFactory
from state.conftest import SettingsFactory
from support import TOKEN

from gateway.app import create_app
from gateway.http.admin import AUDIT_LOG
from gateway.http.views import RECORDER
from gateway.state import AuditRecorder, Filters

USERS = "/apps/crm/scim/v2/Users"
AUTH = b"Authorization: Bearer " + TOKEN.encode()
JSON = b"Content-Type: application/scim+json"
SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
M, N = 60, 40


def hostile(i: int) -> tuple[bytes, bytes, int]:
    """The i-th hostile request: head, body and the status it must get."""
    kind = i % 5
    if kind == 0:  # no credentials, an undecodable User-Agent: refused, still recorded
        return request_head("GET", USERS, b"User-Agent: \xff"), b"", 401
    if kind == 1:  # an Authorization that is not ASCII
        return request_head("GET", USERS, b"Authorization: Bearer \xff\xfe"), b"", 401
    if kind == 2:  # a valid read with a hostile User-Agent
        return request_head("GET", USERS, AUTH, b"User-Agent: \xc3\x28 \xff"), b"", 200
    if kind == 3:  # NUL and a lone surrogate escape in the userName (PostgreSQL refuses NUL)
        body = json_body({"schemas": [SCHEMA], "userName": f"nul\u0000{i}"})
        return request_head("POST", USERS, AUTH, JSON), body, 201
    long = {"schemas": [SCHEMA], "userName": f"long{i}-" + "x" * 20_000}
    return (
        request_head("POST", USERS, AUTH, JSON, b"User-Agent: " + b"\xff" * 5000),
        json_body(long),
        201,
    )


async def test_hostile_requests_interleaved_with_creates_leave_every_create_closed(
    settings_with: SettingsFactory, aiohttp_server: ServerFactory
) -> None:
    server: TestServer = await aiohttp_server(create_app(settings_with()))

    async def create(i: int) -> int:
        body = json_body({"schemas": [SCHEMA], "userName": f"legit{i}@example.com"})
        status, _, _ = await raw_request(server, request_head("POST", USERS, AUTH, JSON), body)
        return status

    async def attack(i: int) -> tuple[int, int]:
        head, body, expected = hostile(i)
        status, _, _ = await raw_request(server, head, body)
        return status, expected

    calls: list[Any] = [create(i) for i in range(M)] + [attack(i) for i in range(N)]
    random.Random(13).shuffle(calls)
    results = await asyncio.gather(*calls)
    creates = [r for r in results if isinstance(r, int)]
    attacks = [r for r in results if isinstance(r, tuple)]
    assert creates == [201] * M
    assert [got for got, _ in attacks] == [want for _, want in attacks]

    recorder = server.app[RECORDER]
    assert isinstance(recorder, AuditRecorder)
    await recorder.flush()
    log = server.app[AUDIT_LOG]
    events, _ = await log.list(Filters(), limit=10_000)
    assert len(events) == M + N
    assert all(e["seq"] is not None and e["outcome"] != "pending" for e in events)
    for i in range(M):
        mine = [e for e in events if e["name"] == f"legit{i}@example.com"]
        assert [(e["operation"], e["outcome"], e["status"]) for e in mine] == [
            ("create", "success", 201)
        ]
    stored_names = [e["name"] or "" for e in events]
    assert not any("\x00" in name for name in stored_names)
    assert max(len(name) for name in stored_names) <= 512
    assert max(len(e["user_agent"] or "") for e in events) <= 512
    assert (await log.verify()).ok
