"""What mappings/redmine does with Redmine's own rules, seen in Redmine itself.

Redmine requires a mail and both names (each at most 30 characters), has a "registered"
status besides active and locked, hashes passwords, lists users without their status, and
keeps externalId only in custom fields (deploy/redmine/up.sh creates them).
"""

from __future__ import annotations

from typing import Any

import pytest
from e2e.redmine import Redmine
from idp.helpers import USER_URN, assert_scim_error, eq, patch_body
from idp_rest.helpers import App, person, work_email
from idp_rest.legacy import RedmineApi

pytestmark = pytest.mark.e2e


@pytest.fixture
def redmine_api(redmine_app: App) -> RedmineApi:
    assert isinstance(redmine_app.legacy, RedmineApi)
    return redmine_app.legacy


async def test_a_password_sent_by_okta_lets_the_user_log_in_to_redmine_until_locked(
    redmine_app: App, redmine_api: RedmineApi, payload: Any
) -> None:
    body = payload("okta-create-user.json")
    body["userName"] = redmine_app.unique("okta.pw")
    body["emails"] = work_email(f"{body['userName']}@okta.local")
    created = await redmine_app.scim.post("/Users", body)
    assert created.status == 201, created.text
    user = created.json()
    assert await redmine_api.can_log_in(body["userName"], body["password"])

    change = patch_body({"op": "replace", "value": {"password": "n3w-Secret!"}})
    assert (await redmine_app.scim.patch(f"/Users/{user['id']}", change)).status == 200
    assert await redmine_api.can_log_in(body["userName"], "n3w-Secret!")
    assert not await redmine_api.can_log_in(body["userName"], body["password"])

    lock = patch_body({"op": "replace", "path": "active", "value": False})
    assert (await redmine_app.scim.patch(f"/Users/{user['id']}", lock)).status == 200
    assert not await redmine_api.can_log_in(body["userName"], "n3w-Secret!")


async def test_a_user_without_names_gets_the_login_in_redmine_and_no_name_in_scim(
    redmine_app: App,
) -> None:
    user = await person(redmine_app, "nameless")
    assert "name" not in user
    account = await redmine_app.legacy.user(user["id"])
    assert account is not None
    assert (account.given, account.family) == (user["userName"], user["userName"])

    named = patch_body({"op": "add", "path": "name.familyName", "value": "Lovelace"})
    answer = await redmine_app.scim.patch(f"/Users/{user['id']}", named)
    assert answer.status == 200, answer.text
    assert answer.json()["name"] == {"familyName": "Lovelace"}
    account = await redmine_app.legacy.user(user["id"])
    assert account is not None
    assert (account.given, account.family) == (user["userName"], "Lovelace")


async def test_names_longer_than_redmines_30_characters_are_cut_to_30(redmine_app: App) -> None:
    given, family = "Maximiliana-" + "x" * 30, "Vandenberghe-" + "y" * 30
    user = await person(redmine_app, "long", name={"givenName": given, "familyName": family})
    assert user["name"] == {"givenName": given[:30], "familyName": family[:30]}
    account = await redmine_app.legacy.user(user["id"])
    assert account is not None
    assert (account.given, account.family) == (given[:30], family[:30])


async def test_a_user_without_a_mail_is_refused_before_redmine_sees_it(
    redmine_app: App, redmine_api: RedmineApi
) -> None:
    user_name = redmine_app.unique("mailless")
    answer = await redmine_app.scim.post("/Users", {"schemas": [USER_URN], "userName": user_name})
    assert answer.status == 400, answer.text
    assert_scim_error(answer.json(), 400, "invalidValue")
    assert "emails" in answer.json()["detail"]
    assert await redmine_api.client.find_user(user_name) is None

    schema = await redmine_app.scim.read(f"/Schemas/{USER_URN}")
    emails = next(a for a in schema["attributes"] if a["name"] == "emails")
    value = next(s for s in emails["subAttributes"] if s["name"] == "value")
    assert (emails["required"], value["required"]) == (True, True)


async def test_a_registered_redmine_user_reads_as_inactive_and_activating_makes_it_active(
    redmine_app: App, redmine_api: RedmineApi
) -> None:
    login = redmine_app.unique("registered")
    made = await redmine_api.client.create_user(login, status=2)
    found = await redmine_app.scim.find("Users", f'userName eq "{login}"')
    assert [(u["id"], u["active"]) for u in found] == [(str(made["id"]), False)]

    other = patch_body({"op": "replace", "path": "name.givenName", "value": "Reg"})
    assert (await redmine_app.scim.patch(f"/Users/{made['id']}", other)).status == 200
    account = await redmine_app.legacy.user(str(made["id"]))
    assert account is not None and (account.status, account.given) == (2, "Reg")

    activate = patch_body({"op": "replace", "path": "active", "value": "True"})
    assert (await redmine_app.scim.patch(f"/Users/{made['id']}", activate)).status == 200
    account = await redmine_app.legacy.user(str(made["id"]))
    assert account is not None and account.status == redmine_api.ENABLED


async def test_users_found_by_a_filter_show_a_user_locked_in_redmine_as_inactive(
    redmine_app: App, redmine_api: RedmineApi
) -> None:
    """Redmine's list items carry no status: each listed user is read whole (read_each)."""
    user = await person(redmine_app, "listed")
    await redmine_api.client.set_status(int(user["id"]), 3)
    for text in (
        f'userName eq "{user["userName"]}"',
        f'emails.value eq "{user["userName"]}@example.com"',
    ):
        found = await redmine_app.scim.find("Users", text)
        assert [(u["id"], u["active"]) for u in found] == [(user["id"], False)], text


def external_id_in_redmine(record: dict[str, Any] | None, field: int) -> Any:
    """The value Redmine itself keeps in custom field ``field`` ("SCIM externalId")."""
    assert record is not None
    found = [f for f in record.get("custom_fields", []) if f["id"] == field]
    assert [f["name"] for f in found] == ["SCIM externalId"], record.get("custom_fields")
    return found[0]["value"]


async def test_a_users_external_id_is_kept_in_redmines_custom_field_and_reads_back(
    redmine_app: App, redmine_api: RedmineApi, redmine: Redmine
) -> None:
    field = redmine.user_external_id_field
    external_id = f"00u{redmine_app.unique('okta')}"
    user = await person(redmine_app, "ext", externalId=external_id)
    assert user["externalId"] == external_id
    uid = int(user["id"])
    assert external_id_in_redmine(await redmine_api.client.get_user(uid), field) == external_id
    assert (await redmine_app.scim.read(f"/Users/{uid}"))["externalId"] == external_id

    changed = patch_body({"op": "replace", "path": "externalId", "value": "00u-changed"})
    answer = await redmine_app.scim.patch(f"/Users/{uid}", changed)
    assert answer.status == 200, answer.text
    assert answer.json()["externalId"] == "00u-changed"
    assert external_id_in_redmine(await redmine_api.client.get_user(uid), field) == "00u-changed"

    # Set in Redmine itself: the gateway reads it from there.
    reply = await redmine_api.client.update_user(
        uid, custom_fields=[{"id": field, "value": "set-in-redmine"}]
    )
    assert reply.status == 204
    assert (await redmine_app.scim.read(f"/Users/{uid}"))["externalId"] == "set-in-redmine"

    removed = patch_body({"op": "remove", "path": "externalId"})
    answer = await redmine_app.scim.patch(f"/Users/{uid}", removed)
    assert answer.status == 200, answer.text
    assert "externalId" not in answer.json()
    assert external_id_in_redmine(await redmine_api.client.get_user(uid), field) == ""


async def test_a_users_external_id_filters_only_beside_a_term_redmine_answers(
    redmine_app: App,
) -> None:
    """/users.json cannot filter on custom fields: alone, the filter is refused."""
    external_id = redmine_app.unique("entra-oid")
    user = await person(redmine_app, "extfilter", externalId=external_id)
    alone = await redmine_app.scim.get(f"/Users?filter={eq('externalId', external_id)}")
    assert alone.status == 400, alone.text
    assert_scim_error(alone.json(), 400, "invalidFilter")

    narrowed = f'userName eq "{user["userName"]}" and externalId eq "{external_id}"'
    assert [u["id"] for u in await redmine_app.scim.find("Users", narrowed)] == [user["id"]]
    other = f'userName eq "{user["userName"]}" and externalId eq "not-{external_id}"'
    assert await redmine_app.scim.find("Users", other) == []


async def test_a_groups_external_id_is_kept_in_redmines_custom_field_and_filters(
    redmine_app: App, redmine_api: RedmineApi, redmine: Redmine
) -> None:
    field = redmine.group_external_id_field
    external_id = redmine_app.unique("group-oid")
    group = await redmine_app.scim.group(redmine_app.unique("Ext"), externalId=external_id)
    assert group["externalId"] == external_id
    gid = int(group["id"])
    in_redmine = await redmine_api.client.get_group(gid)
    assert external_id_in_redmine(in_redmine, field) == external_id

    # /groups.json lists every group with its custom fields: the gateway filters on them.
    found = await redmine_app.scim.find("Groups", f'externalId eq "{external_id}"')
    assert [(g["id"], g["externalId"]) for g in found] == [(str(gid), external_id)]

    replaced = {**group, "externalId": "grp-replaced"}
    replaced.pop("meta", None)
    answer = await redmine_app.scim.put(f"/Groups/{gid}", replaced)
    assert answer.status == 200, answer.text
    assert answer.json()["externalId"] == "grp-replaced"
    in_redmine = await redmine_api.client.get_group(gid)
    assert external_id_in_redmine(in_redmine, field) == "grp-replaced"
    assert await redmine_app.scim.find("Groups", f'externalId eq "{external_id}"') == []
