"""OneLogin through the REST adapter, checked in the app.

Its admin-written templates send the odd core URN, `"true"` as a string, PUT to a URL
ending in `?`, and DELETE.
"""

from __future__ import annotations

from typing import Any

from idp.helpers import USER_URN
from idp_rest.helpers import App, work_email
from support import BASE, TOKEN

JSON = "application/json"


async def onelogin_user(app: App, payload: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """onelogin-create-user.json under a fresh userName and mail: (what was sent, the user)."""
    body = payload("onelogin-create-user.json")
    body["userName"] = app.unique("jdoe")
    body["emails"] = work_email(f"{body['userName']}@example.com")
    answer = await app.scim.request(
        "POST", "/Users", json_body=body, accept=JSON, headers={"Content-Type": JSON}
    )
    assert answer.status == 201, answer.text
    created: dict[str, Any] = answer.json()
    return body, created


async def test_onelogin_creates_with_the_odd_urn_and_the_string_true_an_enabled_account(
    app: App, payload: Any
) -> None:
    """Rules 2, 10, 18: `urn:scim:schemas:core:2.0` is ignored; `"true"` is a boolean."""
    body, user = await onelogin_user(app, payload)
    assert user["schemas"] == [USER_URN]
    assert user["active"] is True
    account = await app.legacy.user(user["id"])
    assert account is not None
    assert (account.login, account.given, account.family) == (body["userName"], "John", "Doe")
    assert account.status == app.legacy.ENABLED


async def test_onelogin_put_to_a_url_ending_in_a_question_mark_changes_the_account(
    app: App, payload: Any
) -> None:
    """Rules 10, 12: `PUT /Users/{id}?` (the `?` really sent) with the odd URN."""
    body, user = await onelogin_user(app, payload)
    body["name"] = {"givenName": "Johnny", "familyName": "Doe-Smith"}
    body["active"] = "false"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": JSON, "Accept": JSON}
    answer = await app.wire.send("PUT", f"{BASE}/Users/{user['id']}?", headers, body)
    assert answer.status == 200, answer.body
    assert answer.body["active"] is False

    account = await app.legacy.user(user["id"])
    assert account is not None
    assert (account.given, account.family) == ("Johnny", "Doe-Smith")
    assert account.status == app.legacy.DISABLED


async def test_onelogin_delete_removes_the_account_from_the_app(app: App, payload: Any) -> None:
    """Rule 18: DELETE answers 204; the app has no such account; a second DELETE is 404."""
    _, user = await onelogin_user(app, payload)
    assert (await app.scim.delete(f"/Users/{user['id']}")).status == 204
    assert await app.legacy.user(user["id"]) is None
    assert (await app.scim.delete(f"/Users/{user['id']}")).status == 404
