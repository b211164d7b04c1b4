"""A create whose outcome is unknown ends as one account, never two."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from safety.conftest import BASE, Audit, Client, Gateway
from safety.lax_app import LAX_MAPPING, LaxApp, lax_settings
from support import TOKEN, digest

from gateway.app import build_runtimes
from gateway.config import ConfigError, parse_settings
from gateway.dedupe import MemoryUnknownCreates, name_key

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def _user(login: str = "bjensen") -> dict[str, Any]:
    return {"schemas": [USER], "userName": login, "name": {"givenName": "Barbara"}}


async def _post(scim: Client, body: dict[str, Any], endpoint: str = "Users") -> tuple[int, Any]:
    resp = await scim.post(f"{BASE}/{endpoint}", json=body)
    return resp.status, await resp.json()


async def _idp_lookup(scim: Client, login: str) -> list[str]:
    """What an IdP does after a 409: find the account by filter."""
    resp = await scim.get(f"{BASE}/Users", params={"filter": f'userName eq "{login}"'})
    assert resp.status == 200
    return [r["id"] for r in (await resp.json())["Resources"]]


async def test_a_create_that_times_out_is_found_on_retry_not_made_twice(
    gateway: Gateway, lax: LaxApp, audit: Audit
) -> None:
    scim = await gateway(call_timeout=0.5)
    lax.faults.add("hang_create")
    status, body = await _post(scim, _user())
    assert status == 504
    assert body["status"] == "504"
    assert "the User may exist" in body["detail"]
    assert "bjensen" not in body["detail"]  # ids and names of steps only, never values
    assert audit.closes[-1].outcome == "unknown"
    assert lax.logins() == ["bjensen"]  # the app stored it before it hung

    status, body = await _post(scim, _user("BJensen"))  # the IdP's retry (case differs)
    assert (status, body["scimType"]) == (409, "uniqueness")
    assert lax.logins() == ["bjensen"]
    assert len(lax.seen.paths("POST")) == 1  # the retry never reached the app's create
    assert await _idp_lookup(scim, "bjensen") == [next(iter(lax.users))]


async def test_a_create_answered_with_garbage_is_unknown_and_found_on_retry(
    gateway: Gateway, lax: LaxApp, audit: Audit
) -> None:
    scim = await gateway()
    lax.faults.add("garbage_create")
    status, body = await _post(scim, _user())
    assert status == 502
    assert "outcome of the create is unknown" in body["detail"]
    assert audit.closes[-1].outcome == "unknown"
    status, body = await _post(scim, _user())  # the app itself would take a duplicate
    assert (status, body["scimType"]) == (409, "uniqueness")
    assert lax.logins() == ["bjensen"]
    assert len(lax.seen.paths("POST")) == 1


async def test_a_create_whose_connection_drops_is_found_on_retry(
    gateway: Gateway, lax: LaxApp, audit: Audit
) -> None:
    scim = await gateway()
    lax.faults.add("drop_create")
    status, body = await _post(scim, _user())
    assert status == 502
    assert "outcome of the create is unknown" in body["detail"]
    assert audit.closes[-1].outcome == "unknown"
    status, _ = await _post(scim, _user())
    assert status == 409
    assert lax.logins() == ["bjensen"]


async def test_a_retry_creates_the_account_when_the_app_had_not_stored_it(
    gateway: Gateway, lax: LaxApp
) -> None:
    scim = await gateway()
    lax.faults.add("drop_create")
    assert (await _post(scim, _user()))[0] == 502
    lax.users.clear()  # as if the app had lost it before storing
    assert (await _post(scim, _user()))[0] == 201
    assert lax.logins() == ["bjensen"]
    # Resolved: the next create is no longer looked up first.
    lax.seen.clear()
    await _post(scim, _user("other"))
    assert lax.seen.paths("GET") == []


async def test_an_app_without_uniqueness_gets_a_look_up_before_every_create(
    gateway: Gateway, lax: LaxApp
) -> None:
    scim = await gateway(check_unique_before_create=True)
    assert (await _post(scim, _user()))[0] == 201
    status, body = await _post(scim, _user())
    assert (status, body["scimType"]) == (409, "uniqueness")
    assert f"(id {next(iter(lax.users))})" in body["detail"]
    group = {"schemas": [GROUP], "displayName": "Staff"}
    assert (await _post(scim, group, "Groups"))[0] == 201
    assert (await _post(scim, group, "Groups"))[0] == 409
    assert lax.logins() == ["bjensen"] and len(lax.groups) == 1


async def test_without_the_look_up_the_lax_app_would_make_two(
    gateway: Gateway, lax: LaxApp
) -> None:
    scim = await gateway()
    assert [(await _post(scim, _user()))[0] for _ in range(2)] == [201, 201]
    assert lax.logins() == ["bjensen", "bjensen"]


async def test_unknown_creates_are_bounded_and_forgotten_after_their_time() -> None:
    now = [0.0]
    store = MemoryUnknownCreates(max_entries=2, ttl=60.0, clock=lambda: now[0])
    keys = [name_key("crm", "User", n) for n in ("a", "b", "c")]
    for key in keys:
        await store.remember(key)
    assert [await store.is_unknown(k) for k in keys] == [False, True, True]
    now[0] = 61.0
    assert [await store.is_unknown(k) for k in keys] == [False, False, False]


def test_a_name_key_holds_no_name_and_ignores_case() -> None:
    key = name_key("crm", "User", "BJensen@example.com")
    assert "jensen" not in key.lower()
    assert key == name_key("crm", "User", "bjensen@EXAMPLE.com")


def test_the_look_up_before_every_create_needs_a_filter_on_the_unique_name(
    lax_server: TestServer,
) -> None:
    rest = lax_settings(str(lax_server.make_url("")))
    del rest["users"]["filters"]
    settings = parse_settings(
        {
            "apps": {
                "lax": {
                    "adapter": "rest",
                    "mapping": str(LAX_MAPPING),
                    "settings": rest,
                    "check_unique_before_create": True,
                    "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                }
            }
        }
    )
    with pytest.raises(
        ConfigError, match=r"apps\.lax\.check_unique_before_create: .*Users by userName"
    ):
        build_runtimes(settings)
