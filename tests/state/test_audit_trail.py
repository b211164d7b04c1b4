"""The audit trail through a real gateway: one event per operation, on both backends."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from state.conftest import ADMIN_TOKEN, SettingsFactory
from support import TOKEN

from gateway.app import create_app
from gateway.http.admin import AUDIT_LOG
from gateway.http.views import RECORDER
from gateway.operation import Operation
from gateway.state import AuditLog, AuditRecorder, Filters, StateStore
from gateway.state.audit import event_row

BASE = "/apps/crm/scim/v2"
USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "ada@example.com",
    "password": "S3cret-Passw0rd!",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
}

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def gateway(settings_with: SettingsFactory, aiohttp_client: Any) -> AsyncIterator[Client]:
    client: Client = await aiohttp_client(
        create_app(settings_with()), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    yield client


def audit_log(client: Client) -> AuditLog:
    return client.app[AUDIT_LOG]


async def events(client: Client, **filters: Any) -> list[dict[str, Any]]:
    recorder = client.app[RECORDER]
    assert isinstance(recorder, AuditRecorder)
    await recorder.flush()
    found, _ = await audit_log(client).list(Filters(**filters), limit=1000)
    return found


async def test_a_create_a_read_and_a_refusal_are_three_chained_events(gateway: Client) -> None:
    created = await gateway.post(f"{BASE}/Users", json=USER)
    assert created.status == 201
    user_id = (await created.json())["id"]
    assert (await gateway.get(f"{BASE}/Users/{user_id}")).status == 200
    refused = await gateway.get(f"{BASE}/Users", headers={"Authorization": "Bearer wrong-token"})
    assert refused.status == 401

    found = await events(gateway)
    summary = [(e["operation"], e["outcome"], e["status"], e["client"]) for e in found]
    assert summary == [
        ("create", "success", 201, "idp"),
        ("get", "success", 200, "idp"),
        ("request", "refused", 401, None),
    ]
    create = found[0]
    assert create["resource_type"] == "User"
    assert create["scim_id"] == user_id
    assert create["name"] == "ada@example.com"
    assert "password" in create["changed"] and "userName" in create["changed"]
    assert create["remote"] == "127.0.0.1"
    assert [e["seq"] for e in found] == [1, 2, 3]
    assert found[1]["prev_hash"] == found[0]["hash"]
    assert (await audit_log(gateway).verify()).ok


async def test_no_secret_reaches_the_trail(gateway: Client) -> None:
    await gateway.post(f"{BASE}/Users", json=USER)
    await gateway.get(f"{BASE}/Users", headers={"Authorization": "Bearer leaked-token-value"})
    text = json.dumps(await events(gateway))
    for secret in (USER["password"], TOKEN, "leaked-token-value"):
        assert secret not in text


async def test_filters_pick_by_user_operation_outcome_and_time(gateway: Client) -> None:
    created = await (await gateway.post(f"{BASE}/Users", json=USER)).json()
    await gateway.delete(f"{BASE}/Users/{created['id']}")
    await gateway.delete(f"{BASE}/Users/{created['id']}")  # 404: refused

    by_user = await events(gateway, user="ada@example.com")
    assert [e["operation"] for e in by_user] == ["create", "delete"]  # the 404 names no one
    by_id = await events(gateway, user=created["id"])
    assert [e["operation"] for e in by_id] == ["create", "delete", "delete"]
    refused = await events(gateway, operation="delete", outcome="refused")
    assert [e["status"] for e in refused] == [404]
    assert await events(gateway, since="2999-01-01T00:00:00.000000Z") == []
    assert len(await events(gateway, until="2999-01-01T00:00:00.000000Z")) == 3


async def test_a_write_is_pending_on_record_before_the_legacy_call(
    settings_with: SettingsFactory, state_url: str
) -> None:
    """``opened`` is durable when it returns: another connection sees the pending event."""
    app = create_app(settings_with())
    recorder = app[RECORDER]
    assert isinstance(recorder, AuditRecorder)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        op = Operation(app="crm", method="POST", path=f"{BASE}/Users", client="idp")
        op.describe("create", "User")
        op.recorder = recorder
        await op.open()
        seen = await read_elsewhere(state_url)
        assert [(e["operation"], e["outcome"], e["seq"]) for e in seen] == [
            ("create", "pending", None)
        ]
        await op.close(201)
    finally:
        await runner.cleanup()
    assert (await read_elsewhere(state_url))[0]["outcome"] == "success"


async def read_elsewhere(state_url: str) -> list[dict[str, Any]]:
    """The events as another process would see them, through a connection of its own."""
    log = AuditLog(StateStore(state_url))
    await log.store.open(lease=False)
    try:
        return (await log.list(Filters()))[0]
    finally:
        await log.store.close()


async def test_concurrent_opens_share_commits_and_all_finish_chained(gateway: Client) -> None:
    async def create(i: int) -> int:
        body = {**USER, "userName": f"user{i}@example.com"}
        return (await gateway.post(f"{BASE}/Users", json=body)).status

    assert await asyncio.gather(*(create(i) for i in range(40))) == [201] * 40
    found = await events(gateway)
    assert sorted(e["seq"] for e in found) == list(range(1, 41))
    assert {e["outcome"] for e in found} == {"success"}
    assert (await audit_log(gateway).verify()).ok


async def test_event_row_carries_names_only() -> None:
    op = Operation(app="crm", method="PATCH", path=f"{BASE}/Users/42", client="idp")
    op.set_changed(["password", "active"])
    row = event_row(op, "e1")
    assert row["changed"] == '["active","password"]'
    assert row["client"] == "idp"


async def test_admin_endpoint_needs_its_own_credential(gateway: Client) -> None:
    assert (await gateway.get("/admin/audit")).status == 401  # the SCIM token is not enough
    no = await gateway.get("/admin/audit", headers={"Authorization": "Bearer nope"})
    assert no.status == 401
    assert (await no.json())["status"] == "401"


async def test_admin_endpoint_pages_with_a_cursor_and_exports(gateway: Client) -> None:
    for i in range(5):
        await gateway.post(f"{BASE}/Users", json={**USER, "userName": f"u{i}@example.com"})
    await events(gateway)  # flushed
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    seen: list[str] = []
    cursor: int | None = 0
    while cursor is not None:
        resp = await gateway.get(f"/admin/audit?limit=2&cursor={cursor}&app=crm", headers=admin)
        assert resp.status == 200
        page = await resp.json()
        assert len(page["events"]) <= 2
        seen += [e["name"] for e in page["events"]]
        cursor = page["next_cursor"]
    assert seen == [f"u{i}@example.com" for i in range(5)]

    bad = await gateway.get("/admin/audit?limit=0", headers=admin)
    assert bad.status == 400 and (await bad.json())["scimType"] == "invalidValue"
    bad_time = await gateway.get("/admin/audit?since=yesterday", headers=admin)
    assert bad_time.status == 400

    jsonl = await gateway.get("/admin/audit/export?format=jsonl&operation=create", headers=admin)
    lines = (await jsonl.text()).splitlines()
    assert [json.loads(line)["name"] for line in lines] == seen
    csv = await gateway.get("/admin/audit/export?format=csv&app=crm", headers=admin)
    assert csv.headers["Content-Type"].startswith("text/csv")
    rows = (await csv.text()).splitlines()
    assert rows[0].startswith("id,event_id,seq,time,app,")
    assert len(rows) == 1 + 5


async def test_a_write_is_refused_when_its_pending_event_cannot_be_stored(
    gateway: Client,
) -> None:
    """No record, no legacy call: the open-before-write promise holds when the store fails."""
    async with audit_log(gateway).db.transaction() as tx:
        await tx.execute("DROP TABLE audit_event")
    created = await gateway.post(f"{BASE}/Users", json=USER)
    assert created.status == 503  # IdPs retry a 503 with Retry-After; a 500 fails the account
    assert created.headers["Retry-After"].isdigit()
    assert (await created.json())["status"] == "503"
    listed = await (await gateway.get(f"{BASE}/Users")).json()
    assert listed["totalResults"] == 0


async def test_a_request_cancelled_while_its_open_commits_still_ends_finalized(
    state_url: str,
) -> None:
    log = AuditLog(StateStore(state_url))
    await log.store.open()
    recorder = AuditRecorder(log)
    await recorder.start()
    try:
        op = Operation(app="crm", method="POST", path=f"{BASE}/Users", recorder=recorder)
        op.describe("create", "User")
        opening = asyncio.create_task(op.open())
        await asyncio.sleep(0)  # the open is queued, its commit not yet done
        opening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await opening
        await op.close(500)  # what dispatch does when the handler is cancelled
        await recorder.flush()
    finally:
        await recorder.aclose()
    found, _ = await log.list(Filters())
    await log.store.close()
    assert [(e["operation"], e["outcome"], e["seq"]) for e in found] == [("create", "failed", 1)]
