"""JumpCloud, as its SCIM integration sends requests (IDP-RULES.md, "JumpCloud").

Its test connection creates then deletes a user and a group; member adds are
repeated, so they must be idempotent; existing groups are taken over by name.
"""

from __future__ import annotations

from typing import Any

from idp.helpers import (
    GROUP_URN,
    USER_URN,
    Scim,
    assert_scim_error,
    eq,
    members_of,
    patch_body,
    plus,
)

HEADERS = {"Content-Type": "application/scim+json"}


async def test_jumpcloud_test_connection_creates_then_deletes_a_user_and_a_group(
    scim: Scim,
) -> None:
    """Rule 18: both POSTs give 201 with `id` and `meta`; both DELETEs 204; then 404."""
    user = await scim.post(
        "/Users",
        {"schemas": [USER_URN], "userName": "jc-test-connection", "active": True},
        headers=HEADERS,
    )
    assert user.status == 201, user.text
    user_id = user.json()["id"]
    assert user.json()["meta"]["resourceType"] == "User"
    group = await scim.post(
        "/Groups", {"schemas": [GROUP_URN], "displayName": "jc-test-connection"}, headers=HEADERS
    )
    assert group.status == 201, group.text
    group_id = group.json()["id"]
    assert group.json()["meta"]["resourceType"] == "Group"

    assert (await scim.delete(f"/Groups/{group_id}")).status == 204
    assert (await scim.delete(f"/Users/{user_id}")).status == 204
    for path in (f"/Users/{user_id}", f"/Groups/{group_id}"):
        answer = await scim.get(path)
        assert answer.status == 404, path
        assert_scim_error(answer.json(), 404)
    for resource in ("Users", "Groups"):
        listed = (await scim.get(f"/{resource}")).json()
        assert (listed["totalResults"], listed["Resources"]) == (0, [])


async def test_jumpcloud_repeated_member_adds_are_idempotent(scim: Scim, payload: Any) -> None:
    """Rules 1, 7, 19: the same member added twice in one PATCH, and the PATCH sent twice."""
    a = await scim.user("alice@jumpcloud.local")
    b = await scim.user("bob@jumpcloud.local")
    group = await scim.group("Designers")
    body = payload("jumpcloud-repeated-member-add.json")
    body["Operations"][0]["value"] = [{"value": a["id"]}]
    body["Operations"][1]["value"] = [{"value": a["id"]}, {"value": b["id"]}]
    for _ in range(2):
        answer = await scim.patch(f"/Groups/{group['id']}", body, headers=HEADERS)
        assert answer.status == 204, answer.text

    stored = await scim.read(f"/Groups/{group['id']}")
    values = [m["value"] for m in stored["members"]]
    assert sorted(values) == sorted([a["id"], b["id"]])  # each exactly once
    alice = await scim.read(f"/Users/{a['id']}")
    assert [g["value"] for g in alice["groups"]] == [group["id"]]


async def test_jumpcloud_takes_over_an_existing_group_by_name_and_keeps_its_members(
    scim: Scim,
) -> None:
    """Rules 7, 13: `displayName eq` finds the group (any case); adding keeps old members."""
    old = await scim.user("carol@jumpcloud.local")
    new = await scim.user("dave@jumpcloud.local")
    existing = await scim.group("Engineering", [old["id"]])
    for name in ("Engineering", "engineering"):
        answer = await scim.get(f"/Groups?filter={eq('displayName', name)}")
        assert answer.status == 200, answer.text
        assert [g["id"] for g in answer.json()["Resources"]] == [existing["id"]], name

    add = patch_body({"op": "add", "path": "members", "value": [{"value": new["id"]}]})
    answer = await scim.patch(f"/Groups/{existing['id']}", add, headers=HEADERS)
    assert answer.status == 204, answer.text
    stored = await scim.read(f"/Groups/{existing['id']}")
    assert members_of(stored) == sorted([old["id"], new["id"]])
    assert stored["displayName"] == "Engineering"


async def test_jumpcloud_group_names_with_keywords_and_brackets_are_looked_up_exactly(
    scim: Scim,
) -> None:
    """Rules 13, 14: quoted names holding `and`, `or`, parentheses and brackets match whole."""
    names = ["R and D", "Sales (EMEA)", "Ops [night] or day", 'Quote "Club"']
    created = {name: (await scim.group(name))["id"] for name in names}
    await scim.group("R")
    for name in names:
        escaped = name.replace('"', '\\"')
        filter_text = plus(f'displayName eq "{escaped}"')
        answer = await scim.get(f"/Groups?filter={filter_text}")
        assert answer.status == 200, (name, answer.text)
        assert [g["id"] for g in answer.json()["Resources"]] == [created[name]], name
    none = await scim.get(f"/Groups?filter={eq('displayName', 'R and')}")
    assert (none.status, none.json()["Resources"]) == (200, [])


async def test_jumpcloud_re_adding_a_member_with_other_display_and_ref_keeps_one_entry(
    scim: Scim,
) -> None:
    """Rule 7: the same member sent again with `display` and `$ref` is not added twice."""
    a = await scim.user("erin@jumpcloud.local")
    group = await scim.group("Support", [a["id"]])
    again = patch_body(
        {
            "op": "add",
            "path": "members",
            "value": [
                {"value": a["id"], "display": "Erin", "$ref": f"https://x/Users/{a['id']}"},
                {"value": a["id"], "type": "User"},
            ],
        }
    )
    assert (await scim.patch(f"/Groups/{group['id']}", again, headers=HEADERS)).status == 204
    stored = await scim.read(f"/Groups/{group['id']}")
    assert [m["value"] for m in stored["members"]] == [a["id"]]
