"""SCIM requests through the whole gateway into Acme HR: REST adapter, rest.yaml and mapping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rest_support import API_KEY, ServerFactory
from support import TOKEN, digest

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.demo.legacy_app import STORE, create_legacy_app
from gateway.mapping.engine import MAPPINGS_DIR

BASE = "/apps/acme/scim/v2"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
async def acme_server(aiohttp_server: ServerFactory) -> TestServer:
    return await aiohttp_server(create_legacy_app(":memory:", API_KEY))


@pytest.fixture
async def scim(
    aiohttp_client: ClientFactory, acme_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> Client:
    monkeypatch.setenv("ACME_HR_URL", str(acme_server.make_url("/api/v1")))
    monkeypatch.setenv("ACME_HR_API_KEY", API_KEY)
    rest = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    settings = parse_settings(
        {
            "apps": {
                "acme": {
                    "adapter": "rest",
                    "mapping": "acme-hr",
                    "settings": rest,
                    "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                }
            }
        }
    )
    return await aiohttp_client(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"})


def _accounts(server: TestServer) -> list[dict[str, Any]]:
    items, _ = server.app[STORE].list_accounts(0, 100, {})
    return items


async def _create_user(scim: Client, login: str = "bjensen") -> dict[str, Any]:
    body = {
        "schemas": [USER],
        "userName": login,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"value": f"{login}@example.com", "type": "work", "primary": True}],
    }
    resp = await scim.post(f"{BASE}/Users", json=body)
    assert resp.status == 201, await resp.text()
    created: dict[str, Any] = await resp.json()
    return created


async def test_a_scim_user_becomes_an_acme_account(scim: Client, acme_server: TestServer) -> None:
    created = await _create_user(scim)
    assert created["id"] == "acc_000001"
    assert created["active"] is True
    (account,) = _accounts(acme_server)
    assert {k: account[k] for k in ("login", "given", "family", "mail", "status")} == {
        "login": "bjensen",
        "given": "Barbara",
        "family": "Jensen",
        "mail": "bjensen@example.com",
        "status": "enabled",
    }


async def test_a_duplicate_user_name_is_a_scim_uniqueness_error(scim: Client) -> None:
    await _create_user(scim)
    resp = await scim.post(f"{BASE}/Users", json={"schemas": [USER], "userName": "BJensen"})
    assert resp.status == 409
    assert (await resp.json())["scimType"] == "uniqueness"


async def test_user_name_filters_are_answered_by_the_api(scim: Client) -> None:
    created = await _create_user(scim)
    await _create_user(scim, "other")
    resp = await scim.get(f"{BASE}/Users", params={"filter": 'userName eq "BJENSEN"'})
    body = await resp.json()
    assert (body["totalResults"], body["Resources"][0]["id"]) == (1, created["id"])


async def test_a_filter_the_api_cannot_answer_is_refused(scim: Client) -> None:
    resp = await scim.get(f"{BASE}/Users", params={"filter": 'name.familyName eq "Jensen"'})
    assert resp.status == 400
    assert (await resp.json())["scimType"] == "invalidFilter"


async def test_a_narrowed_filter_is_finished_in_the_gateway(scim: Client) -> None:
    await _create_user(scim)
    text = 'userName eq "bjensen" and name.familyName eq "Jensen"'
    found = await (await scim.get(f"{BASE}/Users", params={"filter": text})).json()
    text = 'userName eq "bjensen" and name.familyName eq "Nobody"'
    none = await (await scim.get(f"{BASE}/Users", params={"filter": text})).json()
    assert (found["totalResults"], none["totalResults"]) == (1, 0)


async def test_deactivating_a_user_suspends_the_account(
    scim: Client, acme_server: TestServer
) -> None:
    created = await _create_user(scim)
    patch = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "active", "value": False}],
    }
    resp = await scim.patch(f"{BASE}/Users/{created['id']}", json=patch)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["active"] is False
    assert _accounts(acme_server)[0]["status"] == "suspended"


async def test_group_members_travel_as_deltas(scim: Client) -> None:
    one, two = await _create_user(scim, "one"), await _create_user(scim, "two")
    body = {"schemas": [GROUP], "displayName": "Eng", "members": [{"value": one["id"]}]}
    group = await (await scim.post(f"{BASE}/Groups", json=body)).json()
    assert [m["value"] for m in group["members"]] == [one["id"]]
    ops = [
        {"op": "add", "path": "members", "value": [{"value": two["id"]}, {"value": one["id"]}]},
        {"op": "remove", "path": f'members[value eq "{one["id"]}"]'},
    ]
    resp = await scim.patch(
        f"{BASE}/Groups/{group['id']}", json={"schemas": [PATCH], "Operations": ops}
    )
    assert resp.status == 204, await resp.text()
    fetched = await (await scim.get(f"{BASE}/Groups/{group['id']}")).json()
    assert [m["value"] for m in fetched["members"]] == [two["id"]]


async def test_a_deleted_user_is_gone(scim: Client) -> None:
    created = await _create_user(scim)
    assert (await scim.delete(f"{BASE}/Users/{created['id']}")).status == 204
    assert (await scim.get(f"{BASE}/Users/{created['id']}")).status == 404


async def test_an_app_that_is_down_is_a_503_naming_it(
    scim: Client, acme_server: TestServer
) -> None:
    where = f"{acme_server.host}:{acme_server.port}"
    await acme_server.close()
    resp = await scim.get(f"{BASE}/Users/acc_000001")
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "30"
    body = await resp.json()
    assert body["detail"] == f"cannot reach the app at {where}: connection refused"
    assert API_KEY not in await resp.text()


async def test_an_entra_work_email_lookup_is_narrowed_by_the_mail_parameter(
    scim: Client,
) -> None:
    """`emails[type eq "work"].value eq "x"`: Acme HR filters on `mail=` only; the type is
    then checked in the gateway on what that parameter found."""
    created = await _create_user(scim)
    await _create_user(scim, "other")
    text = 'emails[type eq "work"].value eq "BJENSEN@example.com"'
    found = await (await scim.get(f"{BASE}/Users", params={"filter": text})).json()
    text = 'emails[type eq "home"].value eq "bjensen@example.com"'
    none = await (await scim.get(f"{BASE}/Users", params={"filter": text})).json()
    assert [u["id"] for u in found["Resources"]] == [created["id"]]
    assert (found["totalResults"], none["totalResults"]) == (1, 0)


async def test_meta_carries_the_accounts_own_timestamps(
    scim: Client, acme_server: TestServer
) -> None:
    created = await _create_user(scim)
    (account,) = _accounts(acme_server)
    assert created["meta"]["created"] == account["created_at"]
    assert created["meta"]["lastModified"] == account["updated_at"]
