"""Rules of IDP-RULES.md that no single IdP owns: several send them, or all of them do."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from idp.helpers import ENTERPRISE_URN, GROUP_URN, USER_URN, Scim, Wire, members_of, patch_body
from support import BASE, TOKEN, make_settings

from adapters.memory import MemoryAdapter
from gateway import registry
from gateway.app import create_app
from gateway.sdk import Page, Query, Record


async def test_schema_urns_and_attribute_names_match_without_regard_to_case(scim: Scim) -> None:
    """Rule 1: an upper-case core URN and oddly cased attribute names are read canonically."""
    body = {
        "schemas": [USER_URN.upper(), ENTERPRISE_URN.upper()],
        "UserName": "casey",
        "NAME": {"GivenName": "Casey", "FAMILYNAME": "Jones"},
        "Emails": [{"Value": "casey@example.com", "TYPE": "work"}],
        ENTERPRISE_URN.upper(): {"EmployeeNumber": "42"},
    }
    answer = await scim.post("/Users", body)
    assert answer.status == 201, answer.text
    stored = await scim.read(f"/Users/{answer.json()['id']}")
    assert stored["userName"] == "casey"
    assert stored["name"] == {"givenName": "Casey", "familyName": "Jones"}
    assert stored["emails"] == [{"value": "casey@example.com", "type": "work"}]
    assert stored[ENTERPRISE_URN] == {"employeeNumber": "42"}
    patch = {
        "SCHEMAS": ["URN:IETF:PARAMS:SCIM:API:MESSAGES:2.0:PATCHOP"],
        "operations": [{"OP": "REPLACE", "PATH": "NAME.GIVENNAME", "VALUE": "Case"}],
    }
    assert (await scim.patch(f"/Users/{stored['id']}", patch)).status == 200
    assert (await scim.read(f"/Users/{stored['id']}"))["name"]["givenName"] == "Case"


async def test_boolean_strings_are_read_as_booleans_in_bodies(scim: Scim) -> None:
    """Rule 2: `"True"`/`"False"` for `active` and for a sub-attribute such as `primary`."""
    user = await scim.user(
        "boole", active="False", emails=[{"value": "b@example.com", "primary": "True"}]
    )
    stored = await scim.read(f"/Users/{user['id']}")
    assert stored["active"] is False
    assert stored["emails"][0]["primary"] is True
    patch = patch_body({"op": "Replace", "path": "active", "value": "true"})
    assert (await scim.patch(f"/Users/{user['id']}", patch)).status == 200
    assert (await scim.read(f"/Users/{user['id']}"))["active"] is True


async def test_manager_as_an_object_or_a_list_of_ref_and_value_is_returned_as_an_object(
    scim: Scim,
) -> None:
    """Rule 8: manager input as `{"value"}` or `[{"$ref", "value"}]`; output `{"value": ...}`."""
    boss = await scim.user("boss")
    as_object = await scim.user("one", **{ENTERPRISE_URN: {"manager": {"value": boss["id"]}}})
    as_list = await scim.user(
        "two", **{ENTERPRISE_URN: {"manager": [{"$ref": None, "value": boss["id"]}]}}
    )
    for user in (as_object, as_list):
        manager = (await scim.read(f"/Users/{user['id']}"))[ENTERPRISE_URN]["manager"]
        assert isinstance(manager, dict) and manager["value"] == boss["id"]

    other = await scim.user("other-boss")
    patch = patch_body(
        {
            "op": "replace",
            "path": f"{ENTERPRISE_URN}:manager",
            "value": [{"$ref": None, "value": other["id"]}],
        }
    )
    assert (await scim.patch(f"/Users/{as_object['id']}", patch)).status == 200
    manager = (await scim.read(f"/Users/{as_object['id']}"))[ENTERPRISE_URN]["manager"]
    assert isinstance(manager, dict) and manager["value"] == other["id"]


async def test_empty_strings_mean_not_provided(scim: Scim) -> None:
    """Rule 11: `""` and `null` in a POST are "not provided": nothing is stored for them."""
    user = await scim.user(
        "blanks", title="", nickName=None, name={"givenName": "", "familyName": "B"}
    )
    stored = await scim.read(f"/Users/{user['id']}")
    assert "title" not in stored and "nickName" not in stored
    assert stored["name"] == {"familyName": "B"}


async def test_a_trailing_question_mark_on_a_list_url_is_ignored(scim: Scim, wire: Wire) -> None:
    """Rule 12: `GET /Users?` with the `?` on the wire lists users."""
    await scim.user("question")
    headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/scim+json"}
    answer = await wire.send("GET", f"{BASE}/Users?", headers)
    assert answer.status == 200
    assert [u["userName"] for u in answer.body["Resources"]] == ["question"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/scim+json"),
        ("*/*", "application/scim+json"),
        ("application/scim+json", "application/scim+json"),
        ("application/scim+json; charset=utf-8", "application/scim+json"),
        ("application/json, application/scim+json", "application/scim+json"),
        ("text/html", "application/scim+json"),
        ("application/json", "application/json"),
        ("application/json;charset=UTF-8", "application/json"),
    ],
)
async def test_accept_headers_never_give_406(
    scim: Scim, wire: Wire, accept: str | None, expected: str
) -> None:
    """Rule 15: every Accept header (or none) gets 200, JSON only when that is all accepted."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if accept is not None:
        headers["Accept"] = accept
    answer = await wire.send("GET", f"{BASE}/Users", headers)
    assert answer.status == 200
    assert answer.headers["content-type"].split(";")[0] == expected


@pytest.mark.parametrize(
    "content_type",
    [
        "application/scim+json",
        "application/scim+json; charset=utf-8",
        "application/json",
        "application/json; charset=utf-8",
    ],
)
async def test_writes_in_scim_json_or_json_with_or_without_charset(
    scim: Scim, content_type: str
) -> None:
    """Rule 15: POST and PATCH bodies in either JSON type, with or without a charset."""
    user = await scim.post(
        "/Users", {"schemas": [USER_URN], "userName": "ct"}, headers={"Content-Type": content_type}
    )
    assert user.status == 201, user.text
    patch = patch_body({"op": "replace", "path": "displayName", "value": content_type})
    answer = await scim.patch(
        f"/Users/{user.json()['id']}", patch, headers={"Content-Type": content_type}
    )
    assert answer.status == 200, answer.text
    assert (await scim.read(f"/Users/{user.json()['id']}"))["displayName"] == content_type


async def test_a_group_patch_answers_204_unless_attributes_are_asked_for(scim: Scim) -> None:
    """Rules 5, 19: 204 by default; 200 with the group for `attributes`/`excludedAttributes`."""
    a = await scim.user("ga")
    b = await scim.user("gb")
    group = await scim.group("Answers", [a["id"]])
    add = patch_body({"op": "add", "path": "members", "value": [{"value": b["id"]}]})
    plain = await scim.patch(f"/Groups/{group['id']}", add)
    assert plain.status == 204 and plain.body is None

    rename = patch_body({"op": "replace", "path": "displayName", "value": "Answered"})
    shown = await scim.patch(f"/Groups/{group['id']}?attributes=members", rename)
    assert shown.status == 200, shown.text
    assert members_of(shown.json()) == sorted([a["id"], b["id"]])
    assert "displayName" not in shown.json()
    slim = await scim.patch(f"/Groups/{group['id']}?excludedAttributes=members", rename)
    assert slim.status == 200, slim.text
    assert slim.json()["displayName"] == "Answered" and "members" not in slim.json()

    nothing = patch_body({"op": "remove", "path": 'members[value eq "no-such-member"]'})
    assert (await scim.patch(f"/Groups/{group['id']}", nothing)).status == 204
    assert members_of(await scim.read(f"/Groups/{group['id']}")) == sorted([a["id"], b["id"]])


async def test_a_list_of_a_thousand_users_comes_back_whole_in_one_page(scim: Scim) -> None:
    """Rule 17: `count=1000` over 1000 users returns them all with an integer total.

    How fast lists are is measured by the bench (`./dev bench`), not here.
    """
    for n in range(1000):
        await scim.user(f"bulk{n:04}")
    answer = await scim.get("/Users?startIndex=1&count=1000")
    assert answer.status == 200
    assert answer.json()["totalResults"] == 1000 and len(answer.json()["Resources"]) == 1000


class HangingLegacyApp(MemoryAdapter):
    """A legacy app that never answers a search."""

    async def search(self, query: Query) -> Page:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_a_legacy_call_that_hangs_is_cut_off_with_504(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 21: no request outlives the app's call_timeout; the IdP gets 504, not a hang."""
    monkeypatch.setattr(
        registry,
        "available_adapters",
        lambda: {"hanging": HangingLegacyApp, "memory": MemoryAdapter},
    )
    app = create_app(make_settings(adapter="hanging", call_timeout=0.2))
    client = await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})
    answer = await asyncio.wait_for(client.get(f"{BASE}/Users"), timeout=10)
    assert answer.status == 504
    body = await answer.json(content_type=None)
    assert body["status"] == "504" and "0.2 s" in body["detail"]


async def test_a_burst_beyond_the_queue_gets_503_with_retry_after(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rules 21, 22: with the queue full, the IdP is told to come back, at once."""
    monkeypatch.setattr(
        registry,
        "available_adapters",
        lambda: {"hanging": HangingLegacyApp, "memory": MemoryAdapter},
    )
    settings = make_settings(adapter="hanging", call_timeout=5, max_concurrency=1, max_queue=1)
    client = await aiohttp_client(
        create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    waiting = [asyncio.ensure_future(client.get(f"{BASE}/Users")) for _ in range(2)]
    await asyncio.sleep(0.1)  # one call in flight, one queued
    refused = await client.get(f"{BASE}/Users")
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    assert (await refused.json(content_type=None))["status"] == "503"
    for task in waiting:
        task.cancel()


async def test_a_burst_of_requests_is_queued_before_the_legacy_app_not_refused_with_429(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rule 22: a burst is answered in full (no 429), with bounded concurrency on the app.

    The legacy app is the memory adapter made slow; it counts the calls in
    flight at once. Entra and Okta send bursts and do not back off on 429,
    so the gateway must queue: not every request of the burst may reach the
    app at the same time.
    """
    in_flight = peak = 0

    class SlowLegacyApp(MemoryAdapter):
        async def _slowly(self) -> None:
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            try:
                await asyncio.sleep(0.05)
            finally:
                in_flight -= 1

        async def get(self, resource_type: str, id: str) -> Record:
            await self._slowly()
            return await super().get(resource_type, id)

        async def search(self, query: Query) -> Page:
            await self._slowly()
            return await super().search(query)

    adapters = {"memory": MemoryAdapter, "slow-legacy": SlowLegacyApp}
    monkeypatch.setattr(registry, "available_adapters", lambda: adapters)
    app = create_app(make_settings(adapter="slow-legacy"))
    client = await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})

    burst = 80
    responses = await asyncio.gather(
        *(client.get(f"{BASE}/Users?filter=userName+eq+%22u{n}%22") for n in range(burst))
    )
    statuses = [r.status for r in responses]
    assert statuses == [200] * burst, sorted(set(statuses))
    assert peak < burst, f"all {peak} requests of the burst reached the legacy app at once"


async def test_trailing_and_double_slashes_reach_the_same_resources(scim: Scim) -> None:
    """Rule 23: `/apps//crm/scim/v2//Groups/{id}/` is `/apps/crm/scim/v2/Groups/{id}`."""
    group = await scim.group("Slashes")
    for path in (
        f"/apps//crm/scim/v2//Groups/{group['id']}/",
        f"/apps/crm/scim/v2/Groups//{group['id']}",
        f"/apps/crm//scim//v2/Groups/{group['id']}//",
    ):
        answer = await scim.get(path)
        assert answer.status == 200, path
        assert answer.json()["id"] == group["id"]
    rename = patch_body({"op": "replace", "path": "displayName", "value": "Slashed"})
    answer = await scim.patch(f"/apps/crm/scim/v2//Groups/{group['id']}/", rename)
    assert answer.status == 204
    stored = await scim.read(f"/Groups/{group['id']}")
    assert stored["displayName"] == "Slashed"
    assert stored["schemas"] == [GROUP_URN]


async def test_pathless_add_ignores_read_only_keys_and_takes_a_urn_object(scim: Scim) -> None:
    """Rule 3: `id`, `meta`, `schemas` in a path-less value are ignored; the rest applies."""
    user = await scim.user("pathless")
    body = patch_body(
        {
            "op": "add",
            "value": {
                "id": "something-else",
                "meta": {"resourceType": "User", "created": "2001-01-01T00:00:00Z"},
                "schemas": [USER_URN, ENTERPRISE_URN],
                "nickName": "Pat",
                ENTERPRISE_URN: {"department": "Ops"},
                "name.givenName": "Pat",
            },
        }
    )
    answer = await scim.patch(f"/Users/{user['id']}", body)
    assert answer.status == 200, answer.text
    stored = await scim.read(f"/Users/{user['id']}")
    assert stored["id"] == user["id"]
    assert stored["meta"]["created"] == user["meta"]["created"]
    assert stored["nickName"] == "Pat"
    assert stored["name"]["givenName"] == "Pat"
    assert stored[ENTERPRISE_URN] == {"department": "Ops"}
    assert (await scim.get("/Users/something-else")).status == 404
