"""The ``redmine`` fixture against the real REST API, and the quirks the adapter relies on.

Each test makes its own users and groups (unique names): the Redmine is shared by the
whole session and is never emptied.
"""

from __future__ import annotations

import json

import pytest
from e2e.redmine import ACTIVE, LOCKED, Redmine

pytestmark = pytest.mark.e2e


async def test_key_is_required_and_admin_key_works(redmine: Redmine) -> None:
    async with redmine.client() as rm:
        me = await rm.request("GET", "/users/current.json")
        anonymous = await rm.request(
            "GET", "/users.json", headers={"X-Redmine-API-Key": "not-a-key"}
        )
    assert me.status == 200
    assert me.body["user"]["login"] == "admin"
    assert me.body["user"]["admin"] is True
    assert anonymous.status == 401


async def test_create_user_gives_201_with_id(redmine: Redmine) -> None:
    login = redmine.unique("create")
    async with redmine.client() as rm:
        reply = await rm.request(
            "POST",
            "/users.json",
            json={
                "user": {
                    "login": login,
                    "firstname": "Ada",
                    "lastname": "Lovelace",
                    "mail": f"{login}@example.com",
                    "password": "correct-horse-1",
                }
            },
        )
        assert reply.status == 201, reply
        user = reply.body["user"]
        assert isinstance(user["id"], int)
        assert reply.headers["Location"].endswith(f"/users/{user['id']}")
        stored = await rm.get_user(user["id"])
        duplicate = await rm.request("POST", "/users.json", json={"user": {**user, "id": None}})
    assert stored is not None
    assert (stored["login"], stored["firstname"], stored["lastname"]) == (
        login,
        "Ada",
        "Lovelace",
    )
    assert stored["mail"] == f"{login}@example.com"
    assert stored["status"] == ACTIVE
    assert duplicate.status == 422
    assert "Login has already been taken" in duplicate.errors


async def test_name_filter_is_a_case_insensitive_substring_match(redmine: Redmine) -> None:
    base = redmine.unique("sub")
    async with redmine.client() as rm:
        exact = await rm.create_user(base)
        longer = await rm.create_user(f"{base}x", mail=f"other-{base}@example.com")
        hits = await rm.list_users(name=base.upper())
        found = await rm.find_user(base)
    assert {u["id"] for u in hits} == {exact["id"], longer["id"]}
    assert found is not None
    assert found["id"] == exact["id"]


async def test_locked_users_are_hidden_unless_status_is_empty(redmine: Redmine) -> None:
    login = redmine.unique("locked")
    async with redmine.client() as rm:
        user = await rm.create_user(login)
        await rm.set_status(user["id"], LOCKED)
        stored = await rm.get_user(user["id"])
        default_list = await rm.list_users(name=login)
        all_list = await rm.list_users(name=login, status="all")
        locked_list = await rm.list_users(name=login, status=LOCKED)
        await rm.set_status(user["id"], ACTIVE)
        unlocked = await rm.list_users(name=login)
    assert stored is not None
    assert stored["status"] == LOCKED
    assert default_list == []
    assert [u["id"] for u in all_list] == [user["id"]]
    assert "status" not in all_list[0]  # list items carry no status in 5.0.4
    assert [u["id"] for u in locked_list] == [user["id"]]
    assert [u["id"] for u in unlocked] == [user["id"]]


async def test_adding_an_existing_member_gives_422_user_is_invalid(redmine: Redmine) -> None:
    async with redmine.client() as rm:
        user = await rm.create_user(redmine.unique("member"))
        group = await rm.create_group(redmine.unique("Group"), [user["id"]])
        again = await rm.add_members(group["id"], user["id"])
        members = await rm.get_group(group["id"])
    assert again.status == 422
    assert again.errors == ["User is invalid"]
    assert members is not None
    assert [u["id"] for u in members["users"]] == [user["id"]]


async def test_removing_a_non_member_gives_204(redmine: Redmine) -> None:
    async with redmine.client() as rm:
        member = await rm.create_user(redmine.unique("in"))
        outsider = await rm.create_user(redmine.unique("out"))
        group = await rm.create_group(redmine.unique("Group"))
        added = await rm.add_members(group["id"], member["id"])
        removed_outsider = await rm.remove_member(group["id"], outsider["id"])
        after = await rm.member_ids(group["id"])
        removed_member = await rm.remove_member(group["id"], member["id"])
        removed_twice = await rm.remove_member(group["id"], member["id"])
        unknown = await rm.remove_member(group["id"], 999_999)
        empty = await rm.member_ids(group["id"])
    assert added.status == 204
    assert removed_outsider.status == 204
    assert after == {member["id"]}
    assert (removed_member.status, removed_twice.status) == (204, 204)
    assert unknown.status == 404
    assert empty == set()


async def test_up_sh_makes_visible_text_fields_for_external_id_and_writes_down_their_ids(
    redmine: Redmine,
) -> None:
    """mappings/redmine keeps externalId in these; Redmine's API hides invisible ones."""
    written = json.loads((redmine.scratch / "custom_fields.json").read_text("utf-8"))
    assert written == {
        "user": {"id": redmine.user_external_id_field, "name": "SCIM externalId"},
        "group": {"id": redmine.group_external_id_field, "name": "SCIM externalId"},
    }
    async with redmine.client() as rm:
        reply = await rm.request("GET", "/custom_fields.json")
    assert reply.status == 200
    fields = {f["id"]: f for f in reply.body["custom_fields"]}
    for kind, field_id in (
        ("user", redmine.user_external_id_field),
        ("group", redmine.group_external_id_field),
    ):
        field = fields[field_id]
        assert (field["name"], field["customized_type"], field["field_format"]) == (
            "SCIM externalId",
            kind,
            "string",
        )
        assert (field["visible"], field["is_required"], field["multiple"]) == (True, False, False)


async def test_custom_fields_are_written_by_id_and_listed_with_their_names(
    redmine: Redmine,
) -> None:
    """The API facts mappings/redmine relies on, for users and groups alike."""
    field = redmine.user_external_id_field
    async with redmine.client() as rm:
        user = await rm.create_user(
            redmine.unique("cf"), custom_fields=[{"id": field, "value": "ext-1"}]
        )
        assert user["custom_fields"] == [{"id": field, "name": "SCIM externalId", "value": "ext-1"}]
        # No filter on custom fields in /users.json: cf_N= is ignored (every user answers).
        unfiltered = await rm.request("GET", "/users.json", params={"status": "", "limit": 1})
        ignored = await rm.request(
            "GET", "/users.json", params={"status": "", "limit": 1, f"cf_{field}": "ext-1"}
        )
        assert ignored.body["total_count"] == unfiltered.body["total_count"] > 1
        # custom_fields: null is a 500, so the mapping always sends the field (emptied).
        null = await rm.update_user(user["id"], custom_fields=None)
        assert null.status == 500
        emptied = await rm.update_user(user["id"], custom_fields=[{"id": field, "value": ""}])
        assert emptied.status == 204
        found = await rm.get_user(user["id"])
        assert found is not None
        assert found["custom_fields"] == [{"id": field, "name": "SCIM externalId", "value": ""}]

        group_field = redmine.group_external_id_field
        group = await rm.request(
            "POST",
            "/groups.json",
            json={
                "group": {
                    "name": redmine.unique("CF"),
                    "custom_fields": [{"id": group_field, "value": "g-1"}],
                }
            },
        )
        assert group.status == 201
        gid = group.body["group"]["id"]
        changed = await rm.request(
            "PUT",
            f"/groups/{gid}.json",
            json={"group": {"custom_fields": [{"id": group_field, "value": "g-2"}]}},
        )
        assert changed.status == 204
        listed = [g for g in await rm.list_groups() if g["id"] == gid]
        assert [g["custom_fields"] for g in listed] == [
            [{"id": group_field, "name": "SCIM externalId", "value": "g-2"}]
        ]
