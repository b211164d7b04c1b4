"""The account ledger and reconcile runs on both state backends (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from state.conftest import CHECKPOINT_KEY
from support import TOKEN, digest

from gateway.app import STORE, create_app
from gateway.config import parse_settings
from gateway.http.views import SERVICES
from gateway.operation import NULL_RECORDER
from gateway.ops_cli import sweep_app
from gateway.reconcile import Reconciler
from gateway.state.ledger import deactivated_before

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
BASE = "/apps/crm/scim/v2"
Client = TestClient[web.Request, web.Application]


async def gateway(aiohttp_client: Any, state_url: str) -> Client:
    """The state_url fixture must come first in a test's arguments: its schema is dropped
    after the gateway stops."""
    raw = {
        "apps": {
            "crm": {
                "adapter": "memory",
                "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                "deprovision": {"mode": "deactivate", "delete_after_days": 1},
            }
        },
        "state": {"url": state_url, "audit": {"checkpoint_key": CHECKPOINT_KEY}},
    }
    client: Client = await aiohttp_client(
        create_app(parse_settings(raw)), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    return client


async def create(client: Client, name: str) -> str:
    resp = await client.post(f"{BASE}/Users", json={"schemas": [USER_URN], "userName": name})
    assert resp.status == 201
    return str((await resp.json())["id"])


async def test_writes_are_noted_and_reconcile_finds_an_orphan_and_drift(
    state_url: str, aiohttp_client: Any
) -> None:
    client = await gateway(aiohttp_client, state_url)
    ann, bob = await create(client, "ann"), await create(client, "bob")
    assert (await client.delete(f"{BASE}/Users/{bob}")).status == 204  # deactivated
    service = client.app[SERVICES]["crm"].service
    assert service.ledger is not None
    await service.ledger.flush()
    store = client.app[STORE]
    async with store.db.transaction() as tx:
        rows = await tx.fetch("SELECT name, state, provisioned_by FROM account ORDER BY name")
    assert [(r["name"], r["state"], r["provisioned_by"]) for r in rows] == [
        ("ann", "active", "idp"),
        ("bob", "deactivated", "idp"),
    ]
    # Behind the gateway's back: a new account, and a change to ann.
    await service.adapter.create("User", {"userName": "rogue"})
    await service.adapter.update("User", ann, {"title": "Boss"})
    result = await Reconciler(service, store, page=1).run()
    found = [(f.kind, f.name) async for f in Reconciler(service, store).findings(result.run_id)]
    assert found == [("drift", "ann"), ("orphan", "rogue")]


async def test_sweep_deletes_what_the_policy_deactivated_days_ago(
    state_url: str, aiohttp_client: Any
) -> None:
    client = await gateway(aiohttp_client, state_url)
    gone = await create(client, "gone")
    assert (await client.delete(f"{BASE}/Users/{gone}")).status == 204
    service = client.app[SERVICES]["crm"].service
    assert service.ledger is not None
    await service.ledger.flush()
    store = client.app[STORE]
    assert await deactivated_before(store, "crm", 1) == []
    async with store.db.transaction() as tx:
        await tx.execute("UPDATE account SET deactivated_at = deactivated_at - 200000")
    assert await sweep_app(service, store, NULL_RECORDER, 1) == (1, 0)
    assert (await client.get(f"{BASE}/Users/{gone}")).status == 404
