"""JumpCloud through the REST adapter, checked in the app.

Its test connection creates then deletes a user and a group; it repeats member adds;
it takes existing groups over by name.
"""

from __future__ import annotations

from typing import Any

from idp.helpers import GROUP_URN, USER_URN, patch_body
from idp_rest.helpers import App, people, team, work_email


async def test_jumpcloud_test_connection_creates_then_deletes_a_user_and_a_group_in_the_app(
    app: App,
) -> None:
    """Rule 18: both POSTs give 201 and make records in the app; both DELETEs remove them."""
    user_name = app.unique("jc-test-connection")
    user = await app.scim.post(
        "/Users",
        {
            "schemas": [USER_URN],
            "userName": user_name,
            "emails": work_email(f"{user_name}@jumpcloud.local"),
            "active": True,
        },
    )
    assert user.status == 201, user.text
    group = await app.scim.post(
        "/Groups", {"schemas": [GROUP_URN], "displayName": app.unique("jc-test-connection")}
    )
    assert group.status == 201, group.text
    user_id, group_id = user.json()["id"], group.json()["id"]
    assert await app.legacy.user(user_id) is not None
    assert await app.legacy.group_name(group_id) == group.json()["displayName"]

    assert (await app.scim.delete(f"/Groups/{group_id}")).status == 204
    assert (await app.scim.delete(f"/Users/{user_id}")).status == 204
    assert await app.legacy.user(user_id) is None
    assert await app.legacy.group_name(group_id) is None


async def test_jumpcloud_repeated_member_adds_leave_each_member_in_the_app_once(
    app: App, payload: Any
) -> None:
    """Rules 7, 19: one member added twice in one PATCH, and the PATCH sent twice."""
    a, b = await people(app, 2)
    group = await team(app)
    body = payload("jumpcloud-repeated-member-add.json")
    body["Operations"][0]["value"] = [{"value": a}]
    body["Operations"][1]["value"] = [{"value": a}, {"value": b}]
    for _ in range(2):
        answer = await app.scim.patch(f"/Groups/{group}", body)
        assert answer.status == 204, answer.text

    assert await app.legacy.members(group) == {a, b}
    stored = await app.scim.read(f"/Groups/{group}")
    assert sorted(m["value"] for m in stored["members"]) == sorted([a, b])


async def test_jumpcloud_takes_over_a_group_by_name_and_an_add_keeps_its_old_members(
    app: App,
) -> None:
    """Rules 7, 13: `displayName eq` (any case) finds the group; adding keeps the old one."""
    old, new = await people(app, 2)
    name = app.unique("Engineering")
    created = await app.scim.group(name, [old])
    for spelled in (name, name.upper()):
        found = await app.scim.find("Groups", f'displayName eq "{spelled}"')
        assert [g["id"] for g in found] == [created["id"]], spelled

    add = patch_body({"op": "add", "path": "members", "value": [{"value": new}]})
    assert (await app.scim.patch(f"/Groups/{created['id']}", add)).status == 204
    assert await app.legacy.members(created["id"]) == {old, new}
    assert await app.legacy.group_name(created["id"]) == name
