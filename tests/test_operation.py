"""The operation record every request leaves for the audit, traces and logs."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from support import BASE, TOKEN, make_settings

from adapters.memory import MemoryAdapter
from gateway.app import create_app
from gateway.http.views import RECORDER, SERVICES
from gateway.operation import Operation
from gateway.wrapping import unwrap


class Journal:
    """A recorder that notes each call and what the legacy app held at that moment."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Operation, int]] = []
        self.store: Any = None

    def _users(self) -> int:
        return len(self.store._store["User"]) if self.store is not None else -1

    async def opened(self, op: Operation) -> None:
        self.calls.append(("opened", op, self._users()))

    async def closed(self, op: Operation) -> None:
        self.calls.append(("closed", op, self._users()))


async def _client(journal: Journal) -> TestClient[Any, Any]:
    app = create_app(make_settings())
    app[RECORDER] = journal
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    journal.store = unwrap(app[SERVICES]["crm"].service.adapter, MemoryAdapter)
    return client


HEADERS = {"Authorization": f"Bearer {TOKEN}", "User-Agent": "probe/1"}


async def test_a_create_is_opened_before_the_legacy_write_and_closed_after() -> None:
    journal = Journal()
    client = await _client(journal)
    try:
        body = {"userName": "bjensen", "displayName": "Babs", "password": "s3cret-Pa55"}
        resp = await client.post(f"{BASE}/Users", json=body, headers=HEADERS)
        assert resp.status == 201
        created = await resp.json()
    finally:
        await client.close()
    assert [(kind, users) for kind, _, users in journal.calls] == [("opened", 0), ("closed", 1)]
    op = journal.calls[-1][1]
    assert (op.app, op.client, op.user_agent, op.action) == ("crm", "idp", "probe/1", "create")
    assert (op.resource_type, op.name, op.scim_id) == ("User", "bjensen", created["id"])
    assert op.changed == ("displayName", "password", "userName")
    assert (op.outcome, op.status, op.scim_type) == ("success", 201, None)
    assert op.duration_ms is not None and op.duration_ms >= 0


async def test_a_refused_request_is_closed_without_being_opened() -> None:
    journal = Journal()
    client = await _client(journal)
    try:
        resp = await client.get(f"{BASE}/Users", headers={"Authorization": "Bearer wrong"})
        assert resp.status == 401
        resp = await client.post(f"{BASE}/Users", json={"displayName": "x"}, headers=HEADERS)
        assert resp.status == 400
    finally:
        await client.close()
    kinds = [(kind, op.client, op.outcome, op.status) for kind, op, _ in journal.calls]
    assert kinds == [("closed", None, "refused", 401), ("closed", "idp", "refused", 400)]
    assert journal.calls[1][1].scim_type == "invalidValue"


async def test_a_patch_names_only_the_attributes_that_change() -> None:
    journal = Journal()
    client = await _client(journal)
    try:
        resp = await client.post(
            f"{BASE}/Users",
            json={"userName": "ann", "title": "Dr", "name": {"givenName": "Ann"}},
            headers=HEADERS,
        )
        uid = (await resp.json())["id"]
        journal.calls.clear()
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "replace", "path": "title", "value": "Dr"},
                {"op": "replace", "path": "active", "value": False},
            ],
        }
        resp = await client.patch(f"{BASE}/Users/{uid}", json=patch, headers=HEADERS)
        assert resp.status == 200
    finally:
        await client.close()
    op = journal.calls[-1][1]
    assert [kind for kind, _, _ in journal.calls] == ["opened", "closed"]
    assert (op.action, op.scim_id, op.name, op.changed) == ("patch", uid, "ann", ("active",))


async def test_each_bulk_operation_is_its_own_record() -> None:
    journal = Journal()
    client = await _client(journal)
    try:
        bulk = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": [
                {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"userName": "u1"}},
                {"method": "DELETE", "path": "/Users/nope"},
            ],
        }
        resp = await client.post(f"{BASE}/Bulk", json=bulk, headers=HEADERS)
        assert resp.status == 200
    finally:
        await client.close()
    closed = [op for kind, op, _ in journal.calls if kind == "closed"]
    assert [(op.action, op.bulk_id, op.outcome, op.status) for op in closed] == [
        ("create", "a", "success", 201),
        ("delete", None, "refused", 404),
        ("bulk", None, "success", 200),
    ]
    assert closed[0].parent is closed[2] and closed[0].client == "idp"
