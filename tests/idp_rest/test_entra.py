"""Microsoft Entra ID's provisioning flows through the REST adapter, checked in the app.

The requests are tests/idp's (payloads from Microsoft Learn: capitalised ops, the
strings "False"/"True", filter spaces as ``+``); the assertions read the legacy app's
own API: Acme HR's account and team, Redmine's user and group.
"""

from __future__ import annotations

from typing import Any

from idp.helpers import ENTERPRISE_URN, eq, members_of, patch_body
from idp_rest.helpers import App, people, person, team

WRITE = {"Content-Type": "application/scim+json; charset=utf-8"}


async def entra_user(app: App, payload: Any) -> dict[str, Any]:
    """POST entra-create-user.json under a fresh userName and mail, as Entra does."""
    body = payload("entra-create-user.json")
    body["userName"] = app.unique("Test_User")
    body["emails"][0]["value"] = f"{body['userName']}@contoso.com"
    answer = await app.scim.post("/Users", body, headers=WRITE)
    assert answer.status == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def test_entra_create_flow_makes_an_enabled_account_with_the_names_and_mail(
    app: App, payload: Any
) -> None:
    """Rules 11, 14, 18: the lookup finds nothing, the POST (with nulls, `roles: []`) creates."""
    body = payload("entra-create-user.json")
    body["userName"] = app.unique("Test_User")
    body["emails"][0]["value"] = f"{body['userName']}@contoso.com"
    lookup = await app.scim.get(f"/Users?filter={eq('userName', body['userName'])}")
    assert (lookup.status, lookup.json()["totalResults"]) == (200, 0)

    answer = await app.scim.post("/Users", body, headers=WRITE)
    assert answer.status == 201, answer.text
    created = answer.json()
    assert created["meta"]["created"] and created["meta"]["lastModified"]

    account = await app.legacy.user(created["id"])
    assert account is not None
    assert (account.login, account.given, account.family) == (
        body["userName"],
        "givenName",
        "familyName",
    )
    assert account.mail == body["emails"][0]["value"]
    assert account.status == app.legacy.ENABLED
    found = await app.scim.find("Users", f'userName eq "{body["userName"]}"')
    assert [u["id"] for u in found] == [created["id"]]


async def test_entra_deactivate_with_the_string_false_disables_the_account_and_true_enables_it(
    app: App, payload: Any
) -> None:
    """Rules 1, 2, 20: `Replace` `active` `"False"`: the app disables the account, which
    stays readable and findable; `"True"` enables it again."""
    user = await entra_user(app, payload)
    answer = await app.scim.patch(
        f"/Users/{user['id']}", payload("entra-deactivate.json"), headers=WRITE
    )
    assert answer.status == 200, answer.text
    assert answer.json()["active"] is False
    account = await app.legacy.user(user["id"])
    assert account is not None and account.status == app.legacy.DISABLED
    assert account.login == user["userName"]

    assert (await app.scim.read(f"/Users/{user['id']}"))["active"] is False
    found = await app.scim.find("Users", f'userName eq "{user["userName"]}" and active eq false')
    assert [(u["id"], u["active"]) for u in found] == [(user["id"], False)]

    answer = await app.scim.patch(
        f"/Users/{user['id']}", payload("entra-reactivate.json"), headers=WRITE
    )
    assert answer.status == 200, answer.text
    account = await app.legacy.user(user["id"])
    assert account is not None and account.status == app.legacy.ENABLED
    assert (await app.scim.read(f"/Users/{user['id']}"))["active"] is True


async def test_entra_deactivate_with_add_and_a_lowercase_false_disables_the_account(
    app: App, payload: Any
) -> None:
    """Rules 1, 2: `{"op":"Add","path":"active","value":"false"}` disables too."""
    user = await entra_user(app, payload)
    answer = await app.scim.patch(
        f"/Users/{user['id']}", payload("entra-deactivate-with-add.json"), headers=WRITE
    )
    assert answer.status == 200, answer.text
    account = await app.legacy.user(user["id"])
    assert account is not None and account.status == app.legacy.DISABLED


async def test_entra_replace_ops_change_the_family_name_and_the_work_mail_in_the_app(
    app: App, payload: Any
) -> None:
    """Rules 1, 5: `Replace` `name.familyName` and `emails[type eq "work"].value`."""
    user = await entra_user(app, payload)
    mail = f"{app.unique('jane.doe')}@contoso.com"
    family = payload("entra-replace-family-name.json")
    work = payload("entra-replace-work-email.json")
    work["Operations"][0]["value"] = mail
    for body in (family, work):
        answer = await app.scim.patch(f"/Users/{user['id']}", body, headers=WRITE)
        assert answer.status == 200, answer.text

    account = await app.legacy.user(user["id"])
    assert account is not None
    assert (account.given, account.family, account.mail) == ("givenName", "Smith", mail)
    assert account.status == app.legacy.ENABLED
    found = await app.scim.find("Users", f'emails[type eq "work"].value eq "{mail}"')
    assert [u["id"] for u in found] == [user["id"]]


async def test_entra_pathless_replace_with_dotted_and_urn_keys_changes_the_account(
    app: App, payload: Any
) -> None:
    """Rules 3, 4, 12: `?aadOptscim062020`, one path-less `replace` with `name.givenName`,
    a filtered email key, `active` and URN-qualified keys (ignored where not carried)."""
    user = await entra_user(app, payload)
    body = payload("entra-aadoptscim-pathless-replace.json")
    mail = f"{app.unique('jane')}@contoso.com"
    body["Operations"][0]["value"]['emails[type eq "work"].value'] = mail
    answer = await app.scim.patch(f"/Users/{user['id']}?aadOptscim062020", body, headers=WRITE)
    assert answer.status == 200, answer.text

    account = await app.legacy.user(user["id"])
    assert account is not None
    assert (account.given, account.family, account.mail) == ("Jane", "Doe", mail)
    assert account.status == app.legacy.DISABLED
    assert account.login == user["userName"]


async def test_entra_member_add_then_remove_by_value_list_removes_only_that_member(
    app: App, payload: Any
) -> None:
    """Rules 1, 6, 7, 19: `Add` three members with null `$ref`s, then the default `Remove`
    with a value list naming one: the app's group keeps the other two."""
    group_body = payload("entra-create-group.json")
    group_body["displayName"] = app.unique("Entra Group")
    created = await app.scim.post("/Groups", group_body, headers=WRITE)
    assert created.status == 201, created.text
    group = created.json()
    ids = await people(app, 3)
    add = patch_body(
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": i} for i in ids]}
    )
    assert (await app.scim.patch(f"/Groups/{group['id']}", add, headers=WRITE)).status == 204
    assert await app.legacy.members(group["id"]) == set(ids)

    remove = payload("entra-remove-members.json")
    remove["Operations"][0]["value"] = [{"value": ids[0]}]
    answer = await app.scim.patch(f"/Groups/{group['id']}", remove, headers=WRITE)
    assert answer.status == 204, answer.text

    assert await app.legacy.members(group["id"]) == set(ids[1:])
    assert await app.legacy.user(ids[0]) is not None  # removed from the group, not deleted
    assert members_of(await app.scim.read(f"/Groups/{group['id']}")) == sorted(ids[1:])
    assert await app.legacy.group_name(group["id"]) == group_body["displayName"]


async def test_entra_member_remove_naming_a_stranger_removes_just_the_member(app: App) -> None:
    """Rules 5, 6: a value list with one member and one non-member removes the member only."""
    ids = await people(app, 3)
    group = await team(app, ids[:2])
    remove = patch_body({"op": "Remove", "path": "members", "value": [{"value": ids[0]}]})
    remove["Operations"][0]["value"].append({"value": ids[2]})
    answer = await app.scim.patch(f"/Groups/{group}", remove, headers=WRITE)
    assert answer.status == 204, answer.text
    assert await app.legacy.members(group) == {ids[1]}


async def test_entra_sets_the_manager_as_a_string_and_removes_it_by_value_filter(
    acme: App, payload: Any
) -> None:
    """Rules 1, 4, 5, 8: `Add` the URN-qualified manager with a plain string; `Remove`
    `manager[value eq "id"]`, twice. Acme HR's account keeps the manager's id."""
    manager = await person(acme, "manager")
    user = await person(acme, "report", **{ENTERPRISE_URN: {"employeeNumber": "1234"}})
    add = payload("entra-set-manager.json")
    add["Operations"][0]["value"] = manager["id"]
    answer = await acme.scim.patch(f"/Users/{user['id']}", add, headers=WRITE)
    assert answer.status == 200, answer.text
    assert answer.json()[ENTERPRISE_URN]["manager"] == {"value": manager["id"]}
    account = await acme.legacy.user(user["id"])
    assert account is not None
    assert (account.raw["manager_id"], account.raw["employee_no"]) == (manager["id"], "1234")

    remove = payload("entra-remove-manager.json")
    remove["Operations"][0]["path"] = f'manager[value eq "{manager["id"]}"]'
    for _ in range(2):
        answer = await acme.scim.patch(f"/Users/{user['id']}", remove, headers=WRITE)
        assert answer.status == 200, answer.text
        account = await acme.legacy.user(user["id"])
        assert account is not None
        assert (account.raw["manager_id"], account.raw["employee_no"]) == (None, "1234")


async def test_entra_adding_a_member_twice_in_separate_patches_keeps_one_membership(
    app: App,
) -> None:
    """Rule 7: the second identical `Add` changes nothing (Redmine itself would answer 422)."""
    (member,) = await people(app, 1)
    group = await team(app)
    add = patch_body({"op": "Add", "path": "members", "value": [{"value": member}]})
    for _ in range(2):
        answer = await app.scim.patch(f"/Groups/{group}", add, headers=WRITE)
        assert answer.status == 204, answer.text
    assert await app.legacy.members(group) == {member}
