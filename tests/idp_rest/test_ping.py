"""Ping through the REST adapter, checked in the app.

Admins write the filters by hand; older provisioners PUT whole groups with all members.
"""

from __future__ import annotations

from idp.helpers import GROUP_URN, members_of, patch_body, plus
from idp_rest.helpers import App, people, person

JSON = "application/json"


async def test_ping_puts_a_whole_group_and_the_app_holds_exactly_its_members(app: App) -> None:
    """Rules 11, 18: a full PUT with `id`, `meta` and every member replaces the list."""
    a, b, c = await people(app, 3)
    name = app.unique("Ping Group")
    group = await app.scim.group(name, [a, b])
    body = {
        "schemas": [GROUP_URN],
        "id": group["id"],
        "meta": {"resourceType": "Group", "created": "2020-01-01T00:00:00Z"},
        "displayName": name,
        "members": [{"value": b, "type": "User"}, {"value": c, "type": "User"}],
    }
    answer = await app.scim.put(f"/Groups/{group['id']}", body, headers={"Content-Type": JSON})
    assert answer.status == 200, answer.text
    assert members_of(answer.json()) == sorted([b, c])
    assert await app.legacy.members(group["id"]) == {b, c}
    assert await app.legacy.group_name(group["id"]) == name


async def test_ping_deactivates_a_user_an_admin_filter_then_finds_as_inactive(app: App) -> None:
    """Rules 1, 2, 13, 20: a boolean replace disables the account; `username Eq "x"`
    and `active Eq False` with unquoted values find it inactive."""
    user = await person(app, "ping")
    off = patch_body({"op": "replace", "path": "active", "value": False})
    assert (await app.scim.patch(f"/Users/{user['id']}", off)).status == 200
    account = await app.legacy.user(user["id"])
    assert account is not None and account.status == app.legacy.DISABLED

    for text in (
        f'username Eq "{user["userName"]}"',
        f"userName eq {user['userName']} and active Eq False",
    ):
        answer = await app.scim.get(f"/Users?filter={plus(text)}")
        assert answer.status == 200, (text, answer.text)
        found = [(u["id"], u["active"]) for u in answer.json()["Resources"]]
        assert found == [(user["id"], False)], text
