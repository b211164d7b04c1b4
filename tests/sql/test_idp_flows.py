"""The IdP flows that change state, through a gateway on the SQL adapter, checked in the rows.

A gateway app ``crm`` on the ``sql`` adapter (the shipped payroll settings, in
each mode, and the payroll mapping) receives the requests the way each IdP
sends them (tests/idp/helpers.py, payloads from tests/payloads); the
assertions read ``emp_master``, ``org_unit`` and ``org_unit_member`` straight
from the database.
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

from .conftest import FLAVOURS, Payroll, mode_of

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
WRITE = {"Content-Type": "application/scim+json; charset=utf-8"}


@pytest.fixture(params=FLAVOURS)
async def scim(
    request: pytest.FixtureRequest, payroll: Payroll, aiohttp_client: ClientFactory
) -> Scim:
    settings = parse_settings(
        {
            "apps": {
                "crm": {
                    "adapter": "sql",
                    "mapping": "payroll",
                    "settings": payroll.settings(mode_of(request.param)),
                    "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                }
            }
        }
    )
    return Scim(await aiohttp_client(create_app(settings)))


async def entra_user(scim: Scim, payload: Any, user_name: str = "Test_User_1") -> dict[str, Any]:
    body = payload("entra-create-user.json")
    body["userName"] = user_name
    body["emails"][0]["value"] = f"{user_name}@contoso.com"
    answer = await scim.post("/Users", body, headers=WRITE)
    assert answer.status == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def group_with(scim: Scim, name: str, members: list[str]) -> str:
    return str((await scim.group(name, members))["id"])


async def test_entra_create_writes_one_employee_row_with_the_names_and_mail(
    scim: Scim, payroll: Payroll, payload: Any
) -> None:
    lookup = await scim.get(f"/Users?filter={eq('userName', 'Test_User_1')}")
    assert (lookup.status, lookup.json()["totalResults"]) == (200, 0)
    user = await entra_user(scim, payload)
    row = await payroll.employee(user["id"])
    assert row is not None
    assert (row["logon_name"], row["first_nm"], row["last_nm"]) == (
        "Test_User_1",
        "givenName",
        "familyName",
    )
    assert (row["email_addr"], row["email_typ"], row["email_prim"]) == (
        "Test_User_1@contoso.com",
        "work",
        True,
    )
    assert (row["emp_status"], row["ext_ref"]) == ("A", "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef")
    assert row["job_title"] is None  # "title": null is "not provided"
    assert user["meta"]["created"] and user["meta"]["lastModified"]
    found = await scim.find("Users", 'userName eq "test_user_1"')
    assert [u["id"] for u in found] == [user["id"]]


async def test_entra_deactivate_with_the_string_false_terminates_and_true_reactivates(
    scim: Scim, payroll: Payroll, payload: Any
) -> None:
    user = await entra_user(scim, payload)
    answer = await scim.patch(
        f"/Users/{user['id']}", payload("entra-deactivate.json"), headers=WRITE
    )
    assert answer.status == 200, answer.text
    assert answer.json()["active"] is False
    row = await payroll.employee(user["id"])
    assert row is not None and row["emp_status"] == "T" and row["logon_name"] == "Test_User_1"
    found = await scim.find("Users", 'userName eq "Test_User_1" and active eq false')
    assert [(u["id"], u["active"]) for u in found] == [(user["id"], False)]

    answer = await scim.patch(
        f"/Users/{user['id']}", payload("entra-reactivate.json"), headers=WRITE
    )
    assert answer.status == 200, answer.text
    row = await payroll.employee(user["id"])
    assert row is not None and row["emp_status"] == "A"


async def test_okta_pathless_replace_of_active_false_terminates(
    scim: Scim, payroll: Payroll, payload: Any
) -> None:
    user = await scim.user("okta.person@example.com", active=True)
    answer = await scim.patch(f"/Users/{user['id']}", payload("okta-deactivate.json"))
    assert answer.status == 200, answer.text
    row = await payroll.employee(user["id"])
    assert row is not None and row["emp_status"] == "T"


async def test_okta_put_replaces_the_row_and_clears_what_it_leaves_out(
    scim: Scim, payroll: Payroll, payload: Any
) -> None:
    created = await scim.user("test.user@okta.local", title="Clerk", displayName="Test User")
    body = payload("okta-replace-user.json")
    body["id"] = created["id"]
    answer = await scim.put(f"/Users/{created['id']}", body)
    assert answer.status == 200, answer.text
    row = await payroll.employee(created["id"])
    assert row is not None
    assert (row["first_nm"], row["last_nm"], row["display_nm"]) == (
        "Another",
        "User",
        "Another User",
    )
    assert (row["email_addr"], row["ext_ref"]) == ("test.user@okta.local", "00ujl29u0le5T6Aj10h7")
    assert row["job_title"] is None  # not in the PUT: cleared
    assert row["emp_status"] == "A"


async def test_a_repeated_member_add_keeps_one_membership_row(
    scim: Scim, payroll: Payroll, payload: Any
) -> None:
    one = (await scim.user("one@example.com"))["id"]
    two = (await scim.user("two@example.com"))["id"]
    group = await group_with(scim, "JumpCloud Team", [])
    body = payload("jumpcloud-repeated-member-add.json")
    body["Operations"][0]["value"] = [{"value": one}]
    body["Operations"][1]["value"] = [{"value": one}, {"value": two}]
    for _ in range(2):
        answer = await scim.patch(f"/Groups/{group}", body, headers=WRITE)
        assert answer.status == 204, answer.text
    rows = await payroll.rows(
        "SELECT emp_no FROM org_unit_member WHERE unit_id = $1 ORDER BY emp_no", int(group)
    )
    assert [str(r["emp_no"]) for r in rows] == sorted([one, two], key=int)


async def test_entra_remove_by_value_list_deletes_only_that_membership_row(
    scim: Scim, payroll: Payroll, payload: Any
) -> None:
    ids = [(await scim.user(f"member{n}@example.com"))["id"] for n in range(3)]
    group = await group_with(scim, "Entra Group", ids)
    body = payload("entra-remove-members.json")
    body["Operations"][0]["value"] = [{"value": ids[0]}]
    answer = await scim.patch(f"/Groups/{group}", body, headers=WRITE)
    assert answer.status == 204, answer.text
    assert await payroll.members(group) == set(ids[1:])
    assert await payroll.employee(ids[0]) is not None  # left the unit, still employed
    assert members_of(await scim.read(f"/Groups/{group}")) == sorted(ids[1:])


async def test_remove_by_a_members_value_filter_deletes_only_that_membership_row(
    scim: Scim, payroll: Payroll, payload: Any
) -> None:
    ids = [(await scim.user(f"m{n}@example.com"))["id"] for n in range(2)]
    group = await group_with(scim, "RFC Group", ids)
    body = payload("rfc7644-3.5.2.2-remove-one-member.json")
    body["Operations"][0]["path"] = f'members[value eq "{ids[1]}"]'
    answer = await scim.patch(f"/Groups/{group}", body)
    assert answer.status == 204, answer.text
    assert await payroll.members(group) == {ids[0]}


async def test_okta_group_rename_changes_the_unit_name_and_keeps_its_members(
    scim: Scim, payroll: Payroll, payload: Any
) -> None:
    member = (await scim.user("kept@example.com"))["id"]
    group = await group_with(scim, "Old Name", [member])
    body = payload("okta-group-rename.json")
    body["Operations"][0]["value"]["id"] = group
    answer = await scim.patch(f"/Groups/{group}", body)
    assert answer.status == 204, answer.text
    unit = await payroll.row("SELECT unit_nm FROM org_unit WHERE unit_id = $1", int(group))
    assert unit is not None and unit["unit_nm"] == "Test SCIMv2"
    assert await payroll.members(group) == {member}


async def test_deleting_a_user_removes_the_row_and_its_memberships(
    scim: Scim, payroll: Payroll
) -> None:
    user = (await scim.user("leaver@example.com"))["id"]
    group = await group_with(scim, "Leavers", [user])
    assert (await scim.delete(f"/Users/{user}")).status == 204
    assert await payroll.employee(user) is None
    assert await payroll.members(group) == set()
    assert (await scim.get(f"/Users/{user}")).status == 404


async def test_a_user_name_taken_in_another_case_is_409_uniqueness(scim: Scim) -> None:
    await scim.user("BJensen@example.com")
    answer = await scim.post(
        "/Users",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "bjensen@EXAMPLE.com",
        },
    )
    assert answer.status == 409
    assert_scim_error(answer.json(), 409, "uniqueness")


async def test_a_hostile_filter_value_finds_only_what_it_spells(scim: Scim) -> None:
    await scim.user("bjensen")
    hostile = await scim.user("x' OR 1=1 --")
    assert await scim.find("Users", 'userName eq "bjensen\' OR 1=1 --"') == []
    found = await scim.find("Users", 'userName eq "x\' OR 1=1 --"')
    assert [u["id"] for u in found] == [hostile["id"]]
    assert [u["userName"] for u in await scim.find("Users", 'userName co "%"')] == []


async def test_long_filters_through_search_find_the_rows_and_beyond_the_limit_are_400(
    scim: Scim,
) -> None:
    ids = {(await scim.user(f"user{n}"))["id"] for n in (3, 150)}
    search = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
    text = " or ".join(f'userName eq "user{n}"' for n in range(160))
    assert 3500 < len(text) <= 4096
    answer = await scim.post("/Users/.search", {"schemas": [search], "filter": text})
    assert answer.status == 200, answer.text
    assert {u["id"] for u in answer.json()["Resources"]} == ids
    longer = " or ".join(f'userName eq "user{n}"' for n in range(300))
    answer = await scim.post("/Users/.search", {"schemas": [search], "filter": longer})
    assert answer.status == 400
    assert_scim_error(answer.json(), 400, "invalidFilter")


async def test_a_filter_only_on_an_attribute_without_a_column_is_400_invalid_filter(
    scim: Scim,
) -> None:
    answer = await scim.get("/Users?filter=" + plus('nickName eq "bj"'))
    assert answer.status == 400
    assert_scim_error(answer.json(), 400, "invalidFilter")


async def test_sorting_and_paging_through_the_gateway(scim: Scim) -> None:
    for name in ("carol", "alice", "Bob", "dave"):
        await scim.user(name)
    answer = await scim.get("/Users?sortBy=userName&sortOrder=descending&startIndex=2&count=2")
    body = answer.json()
    assert [u["userName"] for u in body["Resources"]] == ["carol", "Bob"]
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (4, 2, 2)
