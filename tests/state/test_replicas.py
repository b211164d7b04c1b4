"""Two gateway replicas (two ``create_app``) on one state store, in front of a real legacy
app on loopback: the guard's holds and the unknown creates are theirs to share, an
operator releases with ``scim-gateway guard release -c`` (no gateway asked), and a
restart forgets nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rest_support import ServerFactory
from safety.lax_app import LAX_MAPPING, LaxApp, lax_settings
from support import TOKEN, digest

from gateway.app import create_app
from gateway.cli import main
from gateway.config import load_settings, parse_settings
from gateway.dedupe import MemoryUnknownCreates
from gateway.guard import MemoryGuardStore
from gateway.http.views import SERVICES
from gateway.state import AuditLog, Filters, StateStore
from gateway.state.guard import StateGuardStore
from gateway.state.unknown import StateUnknownCreates

BASE = "/apps/lax/scim/v2"
ADMIN = {"Authorization": "Bearer admin-token-0123456789abcdef"}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"

Client = TestClient[web.Request, web.Application]
Replica = Callable[[], Awaitable[Client]]


@pytest.fixture
def lax() -> LaxApp:
    return LaxApp()


@pytest.fixture
async def lax_server(aiohttp_server: ServerFactory, lax: LaxApp) -> TestServer:
    return await aiohttp_server(lax.app())


def write_config(folder: Path, state_url: str, legacy_url: str, *, audit: bool = True) -> Path:
    config = {
        "apps": {
            "lax": {
                "adapter": "rest",
                "mapping": str(LAX_MAPPING),
                "settings": lax_settings(legacy_url),
                "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                "guard": {"max_deprovisions": 3, "window_seconds": 3600},
            }
        },
        "admin": {"tokens": [{"name": "ops", "sha256": digest(ADMIN["Authorization"][7:])}]},
        "state": {"url": state_url, "audit": {"enabled": audit}},
    }
    path = folder / "gateway.yaml"
    path.write_text(json.dumps(config), "utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path, state_url: str, lax_server: TestServer) -> Path:
    return write_config(tmp_path, state_url, str(lax_server.make_url("")))


@pytest.fixture
def replica(config: Path, aiohttp_client: Any) -> Replica:
    """A new gateway process on the one config (and so the one state store); the
    clients close before the store's schema is dropped (fixtures end in reverse)."""

    async def start() -> Client:
        app = create_app(load_settings(str(config)), source=str(config))
        client: Client = await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})
        return client

    return start


def seed(lax: LaxApp, count: int) -> list[str]:
    for i in range(count):
        lax.users[str(100 + i)] = {"id": str(100 + i), "login": f"u{i}", "active": True}
    return [str(100 + i) for i in range(count)]


async def delete_all(scim: Client, ids: list[str]) -> list[int]:
    return [(await scim.delete(f"{BASE}/Users/{id}")).status for id in ids]


def state_url_of(config: Path) -> str:
    url: str = json.loads(config.read_text("utf-8"))["state"]["url"]
    return url


def _idp() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = await asyncio.to_thread(main, list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_a_hold_on_one_replica_is_released_by_the_cli_and_retried_through_another(
    replica: Replica, lax: LaxApp, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = await replica(), await replica()
    ids = seed(lax, 8)
    assert await delete_all(a, ids[:2]) == [204] * 2
    assert await delete_all(b, ids[2:]) == [204] + [503] * 5  # B counts what A passed
    resp = await a.get("/admin/guard/lax", headers=ADMIN)
    assert len((await resp.json())["held"]) == 5  # A sees what B held

    code, out, _ = await cli(capsys, "guard", "status", "--app", "lax", "-c", str(config))
    assert code == 0
    assert "deprovisionings in the window: 3" in out and f"delete User/{ids[7]}" in out
    code, out, _ = await cli(capsys, "guard", "release", "--app", "lax", "-c", str(config))
    assert (code, "held: 0" in out) == (0, True)
    assert "released, waiting for the IdP's retry: 5" in out

    assert await delete_all(a, ids[3:5]) + await delete_all(b, ids[5:]) == [204] * 5
    assert lax.users == {}
    assert len(lax.seen.paths("DELETE")) == 8  # each account deleted once, none while held
    assert await delete_all(b, [seed(lax, 1)[0]]) == [503]  # used up: a new one is held

    # The CLI's release is on record, with who ran it (issue 13: who released the holds).
    store = StateStore(state_url_of(config), lease_seconds=60)
    await store.open(lease=False)
    try:
        events, _ = await AuditLog(store).list(Filters(operation="admin.guard-release"), limit=5)
    finally:
        await store.close()
    assert [(e["app"], e["outcome"], e["status"]) for e in events] == [("lax", "success", 200)]
    assert str(events[0]["client"]).startswith("cli:")


async def test_an_unknown_create_on_one_replica_is_looked_up_by_another(
    replica: Replica, lax: LaxApp
) -> None:
    a, b = await replica(), await replica()
    lax.faults.add("drop_create")
    user = {"schemas": [USER], "userName": "bjensen", "name": {"givenName": "Barbara"}}
    assert (await a.post(f"{BASE}/Users", json=user)).status == 502  # stored, unanswered
    lax.seen.clear()
    resp = await b.post(f"{BASE}/Users", json=user)  # the IdP's retry lands on B
    assert (resp.status, (await resp.json())["scimType"]) == (409, "uniqueness")
    assert lax.seen.paths("POST") == []  # B looked it up instead of creating it again
    assert lax.seen.paths("GET") == ["/items"]
    assert lax.logins() == ["bjensen"]


async def test_a_restart_keeps_the_holds_even_without_the_audit(
    tmp_path: Path,
    state_url: str,
    lax_server: TestServer,
    aiohttp_client: Any,
    lax: LaxApp,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = write_config(tmp_path, state_url, str(lax_server.make_url("")), audit=False)
    settings = load_settings(str(config))
    before = await aiohttp_client(create_app(settings, source=str(config)))
    ids = seed(lax, 5)
    statuses = [(await before.delete(f"{BASE}/Users/{i}", headers=_idp())).status for i in ids]
    assert statuses == [204] * 3 + [503] * 2
    await before.close()  # the process stops; its memory is gone

    after = await aiohttp_client(create_app(settings, source=str(config)))
    resp = await after.get("/admin/guard/lax", headers=ADMIN)
    assert (await resp.json())["held"] == [f"delete User/{ids[3]}", f"delete User/{ids[4]}"]
    assert (await after.delete(f"{BASE}/Users/{ids[3]}", headers=_idp())).status == 503
    code, _, _ = await cli(capsys, "guard", "release", "--app", "lax", "-c", str(config))
    assert code == 0
    assert (await after.delete(f"{BASE}/Users/{ids[3]}", headers=_idp())).status == 204


async def test_the_cli_picks_the_store_or_a_gateway_and_names_what_is_missing(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = await cli(capsys, "guard", "status", "--app", "crm", "-c", str(config))
    assert code == 2
    assert "no app 'crm' with a guard (apps with one: lax)" in err
    monkeypatch.setenv("SCIM_GATEWAY_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("SCIM_GATEWAY_ADMIN_TOKEN", raising=False)
    code, out, _ = await cli(capsys, "guard", "status", "--app", "lax", "-c", str(config))
    assert (code, out.splitlines()[0]) == (0, "app: lax")  # an explicit -c wins
    monkeypatch.setenv("SCIM_GATEWAY_CONFIG", str(config))
    code, _, err = await cli(capsys, "guard", "status", "--app", "lax")
    assert (code, "set SCIM_GATEWAY_ADMIN_TOKEN" in err) == (2, True)  # the URL from the env
    monkeypatch.delenv("SCIM_GATEWAY_URL")
    code, out, _ = await cli(capsys, "guard", "status", "--app", "lax")
    assert (code, out.splitlines()[0]) == (0, "app: lax")  # the config from the env


def test_the_stores_follow_the_settings(state_url: str) -> None:
    """A state store when the settings have one; memory for settings built in code
    without ``state.url``; explicit stores win either way."""
    app = {
        "adapter": "memory",
        "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
        "guard": {},
    }

    def service(settings: dict[str, Any], **stores: Any) -> Any:
        return create_app(parse_settings(settings), **stores)[SERVICES]["crm"].service

    shared = service({"apps": {"crm": app}, "state": {"url": state_url}})
    assert isinstance(shared.guard.store, StateGuardStore)
    assert isinstance(shared.unknown_creates, StateUnknownCreates)
    alone = service({"apps": {"crm": app}})
    assert isinstance(alone.guard.store, MemoryGuardStore)
    assert isinstance(alone.unknown_creates, MemoryUnknownCreates)
    memory = MemoryUnknownCreates()
    mixed = service(
        {"apps": {"crm": app}, "state": {"url": state_url, "audit": {"enabled": False}}},
        unknown_creates=memory,
    )
    assert mixed.unknown_creates is memory
    assert isinstance(mixed.guard.store, StateGuardStore)


async def test_without_its_store_the_guard_refuses_and_sends_nothing(
    replica: Replica, lax: LaxApp, state_url: str
) -> None:
    scim = await replica()
    ids = seed(lax, 1)
    store = StateStore(state_url)
    await store.open(lease=False)
    try:
        async with store.db.transaction() as tx:  # the guard's tables are gone
            await tx.execute("DROP TABLE guard_passed")
    finally:
        await store.close()
    resp = await scim.delete(f"{BASE}/Users/{ids[0]}")
    # The store cannot be used: 503 with Retry-After (IdPs retry it), never a plain 500.
    assert (resp.status, (await resp.json())["status"]) == (503, "503")
    assert resp.headers["Retry-After"].isdigit()
    assert lax.seen.paths("DELETE") == [] and list(lax.users) == ids
