"""The IdP flows that change state, through a gateway on the LDAP adapter, checked in slapd.

A gateway app ``crm`` on the ``ldap`` adapter (the shipped ldap-inetorgperson settings
and mapping, in this test's subtree) receives the requests the way each IdP sends them
(tests/idp/helpers.py, payloads from tests/payloads); the assertions read the entries
straight from the directory, as its root DN.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from idp.helpers import Scim, assert_scim_error, eq, members_of, plus
from support import TOKEN, digest

from gateway.app import create_app
from gateway.config import parse_settings

from .conftest import Directory

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
WRITE = {"Content-Type": "application/scim+json; charset=utf-8"}


async def gateway(directory: Directory, aiohttp_client: ClientFactory, **overrides: Any) -> Scim:
    app = {
        "adapter": "ldap",
        "mapping": "ldap-inetorgperson",
        "settings": directory.settings(**overrides),
        "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
    }
    return Scim(await aiohttp_client(create_app(parse_settings({"apps": {"crm": app}}))))


@pytest.fixture
async def scim(directory: Directory, aiohttp_client: ClientFactory) -> Scim:
    return await gateway(directory, aiohttp_client)


def people(directory: Directory) -> str:
    return f"ou=people,{directory.base}"


def groups(directory: Directory) -> str:
    return f"ou=groups,{directory.base}"


async def entra_user(scim: Scim, payload: Any, user_name: str = "Test_User_1") -> dict[str, Any]:
    body = payload("entra-create-user.json")
    body["userName"] = user_name
    body["emails"][0]["value"] = f"{user_name}@contoso.com"
    answer = await scim.post("/Users", body, headers=WRITE)
    assert answer.status == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def test_entra_create_adds_one_inet_org_person_named_by_its_uid(
    scim: Scim, directory: Directory, payload: Any
) -> None:
    lookup = await scim.get(f"/Users?filter={eq('userName', 'Test_User_1')}")
    assert (lookup.status, lookup.json()["totalResults"]) == (200, 0)
    user = await entra_user(scim, payload)
    entry = directory.entry(
        f"uid=Test_User_1,{people(directory)}",
        ["uid", "sn", "givenName", "mail", "objectClass", "entryUUID", "employeeType"],
    )
    assert entry is not None
    assert entry["entryUUID"] == [user["id"]]
    assert (entry["sn"], entry["givenName"], entry["mail"]) == (
        ["familyName"],
        ["givenName"],
        ["Test_User_1@contoso.com"],
    )
    assert "inetOrgPerson" in entry["objectClass"]
    assert entry["employeeType"] == ["active"]


async def test_entra_replace_of_the_work_email_changes_mail(
    scim: Scim, directory: Directory, payload: Any
) -> None:
    user = await entra_user(scim, payload)
    answer = await scim.patch(
        f"/Users/{user['id']}", payload("entra-replace-work-email.json"), headers=WRITE
    )
    assert answer.status == 200, answer.text
    assert [e["value"] for e in answer.json()["emails"]] == ["jane.doe@contoso.com"]
    entry = directory.entry(f"uid=Test_User_1,{people(directory)}", ["mail"])
    assert entry == {"mail": ["jane.doe@contoso.com"]}


async def test_entra_deactivate_with_the_string_false_flags_the_entry_and_true_clears_it(
    scim: Scim, directory: Directory, payload: Any
) -> None:
    user = await entra_user(scim, payload)
    dn = f"uid=Test_User_1,{people(directory)}"
    off = await scim.patch(f"/Users/{user['id']}", payload("entra-deactivate.json"), headers=WRITE)
    assert (off.status, off.json()["active"]) == (200, False)
    assert directory.entry(dn, ["employeeType"]) == {"employeeType": ["disabled"]}
    # Disabled users stay readable, and a filter finds them.
    assert (await scim.read(f"/Users/{user['id']}"))["active"] is False
    on = await scim.patch(f"/Users/{user['id']}", payload("entra-reactivate.json"), headers=WRITE)
    assert (on.status, on.json()["active"]) == (200, True)
    assert directory.entry(dn, ["employeeType"]) == {"employeeType": ["active"]}


async def test_deactivation_by_ou_moves_the_entry_and_its_memberships_follow(
    directory: Directory, aiohttp_client: ClientFactory, payload: Any
) -> None:
    settings = directory.settings()
    settings["users"]["deactivation"] = {"by": "ou", "ou": f"ou=disabled,{people(directory)}"}
    scim = await gateway(directory, aiohttp_client, users=settings["users"])
    user = await entra_user(scim, payload)
    group = await scim.group("Sales", [user["id"]])
    off = await scim.patch(f"/Users/{user['id']}", payload("okta-deactivate.json"))
    assert (off.status, off.json()["active"]) == (200, False)
    moved = f"uid=Test_User_1,ou=disabled,{people(directory)}"
    assert directory.dns(f"ou=disabled,{people(directory)}") == [moved]
    sales = directory.entry(f"cn=Sales,{groups(directory)}", ["member"])
    assert sales == {"member": [moved]}
    assert members_of(await scim.read(f"/Groups/{group['id']}")) == [user["id"]]
    on = await scim.patch(f"/Users/{user['id']}", payload("entra-reactivate.json"), headers=WRITE)
    assert (on.status, on.json()["active"]) == (200, True)
    assert directory.dns(f"ou=disabled,{people(directory)}") == []
    back = f"uid=Test_User_1,{people(directory)}"
    assert directory.entry(f"cn=Sales,{groups(directory)}", ["member"]) == {"member": [back]}


async def test_a_user_name_change_renames_the_entry_and_its_groups_follow(
    scim: Scim, directory: Directory
) -> None:
    user = await scim.user("bjensen")
    await scim.group("Staff", [user["id"]])
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "path": "userName", "value": "barbara.jensen"}],
    }
    answer = await scim.patch(f"/Users/{user['id']}", body)
    assert (answer.status, answer.json()["id"]) == (200, user["id"])
    renamed = f"uid=barbara.jensen,{people(directory)}"
    assert directory.dns(people(directory), "(uid=*)") == [renamed]
    assert directory.entry(f"cn=Staff,{groups(directory)}", ["member"]) == {"member": [renamed]}


async def test_member_adds_and_removes_are_deltas_of_the_member_attribute(
    scim: Scim, directory: Directory, payload: Any
) -> None:
    a, b, c = [await scim.user(name) for name in ("ann", "bob", "cy")]
    group = await scim.group("Ops", [a["id"], b["id"]])
    dn = f"cn=Ops,{groups(directory)}"
    body = payload("jumpcloud-repeated-member-add.json")
    body["Operations"][0]["value"] = [{"value": b["id"]}]
    body["Operations"][1]["value"] = [{"value": b["id"]}, {"value": c["id"]}]
    for _ in range(2):  # repeated adds: idempotent
        assert (await scim.patch(f"/Groups/{group['id']}", body)).status in (200, 204)
    assert sorted((directory.entry(dn, ["member"]) or {})["member"]) == [
        f"uid={n},{people(directory)}" for n in ("ann", "bob", "cy")
    ]
    remove = payload("entra-remove-members.json")
    remove["Operations"][0]["value"] = [{"value": b["id"]}]
    assert (await scim.patch(f"/Groups/{group['id']}", remove, headers=WRITE)).status in (200, 204)
    assert sorted((directory.entry(dn, ["member"]) or {})["member"]) == [
        f"uid={n},{people(directory)}" for n in ("ann", "cy")
    ]


async def test_an_emptied_group_of_names_keeps_the_placeholder_which_is_never_a_member(
    scim: Scim, directory: Directory
) -> None:
    user = await scim.user("solo")
    group = await scim.group("Tiny", [user["id"]])
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "remove", "path": f'members[value eq "{user["id"]}"]'}],
    }
    assert (await scim.patch(f"/Groups/{group['id']}", body)).status in (200, 204)
    placeholder = f"cn=nobody,{directory.base}"
    assert directory.entry(f"cn=Tiny,{groups(directory)}", ["member"]) == {"member": [placeholder]}
    assert members_of(await scim.read(f"/Groups/{group['id']}")) == []


async def test_okta_group_rename_renames_the_entry_and_keeps_its_members(
    scim: Scim, directory: Directory, payload: Any
) -> None:
    user = await scim.user("okta.user")
    group = await scim.group("Old Name", [user["id"]])
    body = payload("okta-group-rename.json")
    body["Operations"][0]["value"]["id"] = group["id"]
    answer = await scim.patch(f"/Groups/{group['id']}", body)
    assert answer.status in (200, 204), answer.text
    assert directory.dns(groups(directory)) == [f"cn=Test SCIMv2,{groups(directory)}"]
    assert members_of(await scim.read(f"/Groups/{group['id']}")) == [user["id"]]


async def test_deleting_a_user_removes_the_entry_and_its_memberships(
    scim: Scim, directory: Directory
) -> None:
    keep, gone = await scim.user("keep"), await scim.user("gone")
    group = await scim.group("Both", [keep["id"], gone["id"]])
    assert (await scim.delete(f"/Users/{gone['id']}")).status == 204
    assert directory.dns(people(directory), "(uid=*)") == [f"uid=keep,{people(directory)}"]
    assert members_of(await scim.read(f"/Groups/{group['id']}")) == [keep["id"]]


async def test_a_user_name_taken_in_another_case_is_409_uniqueness(scim: Scim) -> None:
    await scim.user("Alice")
    answer = await scim.post(
        "/Users", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ALICE"}
    )
    assert_scim_error(answer.json(), 409, "uniqueness")


async def test_a_hostile_filter_value_finds_only_what_it_spells(scim: Scim) -> None:
    await scim.user("plain")
    await scim.user("st*r(x)")
    for hostile in ("*", "*)(uid=*", "plain)(|(uid=*", "pl*"):
        assert await scim.find("Users", f'userName eq "{hostile}"') == []
    found = await scim.find("Users", 'userName eq "st*r(x)"')
    assert [u["userName"] for u in found] == ["st*r(x)"]
    found = await scim.find("Users", 'userName sw "st*"')
    assert [u["userName"] for u in found] == ["st*r(x)"]


async def test_a_filter_on_an_attribute_the_directory_does_not_keep_is_400(scim: Scim) -> None:
    answer = await scim.get("/Users?filter=" + plus('nickName eq "x"'))
    assert_scim_error(answer.json(), 400, "invalidFilter")


async def test_paging_through_the_gateway_counts_every_match_in_a_stable_order(
    directory: Directory, aiohttp_client: ClientFactory
) -> None:
    scim = await gateway(directory, aiohttp_client, page_size=3)  # several LDAP pages
    names = [f"user{n:02d}" for n in range(11)]
    for name in names:
        await scim.user(name)
    seen: list[str] = []
    for start in (1, 5, 9):
        page = (await scim.get(f"/Users?startIndex={start}&count=4")).json()
        assert (page["totalResults"], page["startIndex"]) == (11, start)
        seen += [u["userName"] for u in page["Resources"]]
    assert sorted(seen) == names and len(set(seen)) == 11
    again = (await scim.get("/Users?startIndex=1&count=11")).json()["Resources"]
    assert [u["userName"] for u in again] == seen
