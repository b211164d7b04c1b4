"""Okta's provisioning flows through the REST adapter, checked in the app.

Okta sends its token bare, `application/scim+json` both ways, `%20` for spaces; it
updates a user with a full PUT, (de)activates with a path-less replace, renames a group
with a path-less replace carrying its id, and changes members by value filter.
"""

from __future__ import annotations

from typing import Any

from idp.helpers import GROUP_URN, Answer, members_of, patch_body, pct
from idp_rest.helpers import App, people, team, work_email
from support import TOKEN

SCIM_JSON = "application/scim+json"
HEADERS = {"User-Agent": "Okta SCIM Client 1.0.0", "Content-Type": SCIM_JSON}


async def okta(app: App, method: str, path: str, body: Any = None) -> Answer:
    return await app.scim.request(
        method, path, json_body=body, auth=TOKEN, accept=SCIM_JSON, headers=HEADERS
    )


async def okta_user(app: App, payload: Any) -> dict[str, Any]:
    """okta-create-user.json under a fresh userName and mail."""
    body = payload("okta-create-user.json")
    body["userName"] = app.unique("okta.user")
    body["emails"] = work_email(f"{body['userName']}@okta.local")
    answer = await okta(app, "POST", "/Users", body)
    assert answer.status == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def test_okta_create_looks_the_user_up_then_posts_an_enabled_account(
    app: App, payload: Any
) -> None:
    """Rules 11, 12, 14, 18: lookup with `%20` spaces finds nothing; the POST carries
    `password`, `groups: []` and `externalId`; the app holds the account."""
    body = payload("okta-create-user.json")
    body["userName"] = app.unique("okta.user")
    body["emails"] = work_email(f"{body['userName']}@okta.local")
    filter_text = pct(f'userName eq "{body["userName"]}"')
    before = await okta(app, "GET", f"/Users?filter={filter_text}&startIndex=1&count=100")
    assert (before.status, before.json()["totalResults"], before.json()["Resources"]) == (
        200,
        0,
        [],
    )
    answer = await okta(app, "POST", "/Users", body)
    assert answer.status == 201, answer.text
    created = answer.json()
    assert not created.get("groups")

    account = await app.legacy.user(created["id"])
    assert account is not None
    assert (account.login, account.given, account.family) == (body["userName"], "Test", "User")
    assert account.mail == body["emails"][0]["value"]
    assert account.status == app.legacy.ENABLED
    after = await okta(app, "GET", f"/Users?filter={filter_text}&startIndex=1&count=100")
    assert [u["id"] for u in after.json()["Resources"]] == [created["id"]]


async def test_okta_full_put_with_id_meta_and_groups_changes_the_account_names(
    app: App, payload: Any
) -> None:
    """Rules 11, 18: GET, then a PUT of the whole user with its read-only `id`, `meta`
    and `groups`: the app gets the new given name; the membership is untouched."""
    user = await okta_user(app, payload)
    group = await team(app, [user["id"]])
    read = await okta(app, "GET", f"/Users/{user['id']}")
    assert read.status == 200, read.text

    body = payload("okta-replace-user.json")
    body.update(id=user["id"], userName=user["userName"], emails=user["emails"])
    answer = await okta(app, "PUT", f"/Users/{user['id']}", body)
    assert answer.status == 200, answer.text

    account = await app.legacy.user(user["id"])
    assert account is not None
    assert (account.login, account.given, account.family) == (user["userName"], "Another", "User")
    assert account.status == app.legacy.ENABLED
    assert await app.legacy.members(group) == {user["id"]}


async def test_okta_pathless_replace_deactivates_the_account_and_another_reactivates_it(
    app: App, payload: Any
) -> None:
    """Rules 3, 19, 20: `{"op":"replace","value":{"active":false}}`, no path: the app
    disables the account; the user stays readable and is found by its userName."""
    user = await okta_user(app, payload)
    answer = await okta(app, "PATCH", f"/Users/{user['id']}", payload("okta-deactivate.json"))
    assert answer.status in (200, 204), answer.text
    account = await app.legacy.user(user["id"])
    assert account is not None and account.status == app.legacy.DISABLED

    filter_text = pct(f'userName eq "{user["userName"]}"')
    found = await okta(app, "GET", f"/Users?filter={filter_text}&startIndex=1&count=100")
    assert [(u["id"], u["active"]) for u in found.json()["Resources"]] == [(user["id"], False)]

    activate = patch_body({"op": "replace", "value": {"active": True}})
    assert (await okta(app, "PATCH", f"/Users/{user['id']}", activate)).status in (200, 204)
    account = await app.legacy.user(user["id"])
    assert account is not None and account.status == app.legacy.ENABLED


async def test_okta_renames_a_group_with_a_pathless_replace_and_its_members_stay(
    app: App, payload: Any
) -> None:
    """Rules 3, 19: the value's read-only `id` is ignored; the app's group gets the new
    name and keeps its member."""
    (member,) = await people(app, 1)
    name = app.unique("Okta Group")
    created = await okta(
        app,
        "POST",
        "/Groups",
        {"schemas": [GROUP_URN], "displayName": name, "members": [{"value": member}]},
    )
    assert created.status == 201, created.text
    group = created.json()
    assert await app.legacy.members(group["id"]) == {member}

    rename = payload("okta-group-rename.json")
    new_name = app.unique("Test SCIMv2")
    rename["Operations"][0]["value"].update(id=group["id"], displayName=new_name)
    answer = await okta(app, "PATCH", f"/Groups/{group['id']}", rename)
    assert answer.status == 204, answer.text

    assert await app.legacy.group_name(group["id"]) == new_name
    assert await app.legacy.members(group["id"]) == {member}
    by_name = pct(f'displayName eq "{new_name}"')
    found = await okta(app, "GET", f"/Groups?filter={by_name}")
    assert [g["id"] for g in found.json()["Resources"]] == [group["id"]]


async def test_okta_removes_one_member_by_value_filter_and_adds_another_in_one_request(
    app: App, payload: Any
) -> None:
    """Rules 6, 7, 19: `remove` `members[value eq "a"]`, then `add` `[{value, display}]`:
    in the app, a is out, b is in, c stays."""
    a, b, c = await people(app, 3)
    group = await team(app, [a, c])
    body = payload("okta-group-members.json")
    body["Operations"][0]["path"] = f'members[value eq "{a}"]'
    body["Operations"][1]["value"] = [{"value": b, "display": "B"}]
    answer = await okta(app, "PATCH", f"/Groups/{group}", body)
    assert answer.status == 204, answer.text

    assert await app.legacy.members(group) == {b, c}
    assert await app.legacy.user(a) is not None
    assert members_of(await app.scim.read(f"/Groups/{group}")) == sorted([b, c])


async def test_okta_replaces_the_whole_member_list(app: App) -> None:
    """Rules 6, 19: `replace` on `members` leaves exactly the listed members in the app."""
    a, b, c = await people(app, 3)
    group = await team(app, [a, b])
    body = patch_body({"op": "replace", "path": "members", "value": [{"value": b}, {"value": c}]})
    answer = await okta(app, "PATCH", f"/Groups/{group}", body)
    assert answer.status == 204, answer.text
    assert await app.legacy.members(group) == {b, c}
