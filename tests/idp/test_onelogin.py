"""OneLogin, as its admin-written SCIM templates send requests (IDP-RULES.md, "OneLogin").

Bearer token; updates are PUT, deletes are DELETE; templates produce odd
schema URNs (``urn:scim:schemas:core:2.0``), a trailing ``&`` on filter URLs,
a trailing ``?`` on PUT URLs and lowercase ``add``; OneLogin asks for
``application/json`` answers.
"""

from __future__ import annotations

from typing import Any

from idp.helpers import ERROR_URN, USER_URN, Answer, Scim, Wire, assert_scim_error, patch_body, pct
from support import BASE, TOKEN

JSON = "application/json"
HEADERS = {"Content-Type": JSON}
ODD_URN = "urn:scim:schemas:core:2.0"


async def send(scim: Scim, method: str, path: str, body: Any = None) -> Answer:
    return await scim.request(method, path, json_body=body, accept=JSON, headers=HEADERS)


async def onelogin_user(scim: Scim, payload: Any) -> dict[str, Any]:
    answer = await send(scim, "POST", "/Users", payload("onelogin-create-user.json"))
    assert answer.status == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def test_onelogin_creates_with_the_odd_core_urn_and_active_as_the_string_true(
    scim: Scim, payload: Any
) -> None:
    """Rules 2, 10, 15, 18: `urn:scim:schemas:core:2.0` is ignored; `"true"` is a boolean."""
    answer = await send(scim, "POST", "/Users", payload("onelogin-create-user.json"))
    assert answer.status == 201, answer.text
    assert answer.content_type == JSON
    created = answer.json()
    assert created["schemas"] == [USER_URN]
    assert created["active"] is True

    stored = await scim.read(f"/Users/{created['id']}")
    assert stored["userName"] == "jdoe@example.com"
    assert stored["name"] == {"givenName": "John", "familyName": "Doe"}
    assert stored["active"] is True
    assert stored["schemas"] == [USER_URN]


async def test_onelogin_updates_with_a_put_whose_url_ends_in_a_question_mark(
    scim: Scim, wire: Wire, payload: Any
) -> None:
    """Rules 10, 12, 15: `PUT /Users/{id}?` (the `?` really sent) with the odd URN."""
    user = await onelogin_user(scim, payload)
    body = payload("onelogin-create-user.json")
    body["displayName"] = "Johnny Doe"
    body["name"]["givenName"] = "Johnny"
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": JSON, "Accept": JSON}
    answer = await wire.send("PUT", f"{BASE}/Users/{user['id']}?", headers, body)
    assert answer.status == 200, answer.body
    assert answer.headers["content-type"].startswith(JSON)
    assert answer.body["displayName"] == "Johnny Doe"

    stored = await scim.read(f"/Users/{user['id']}")
    assert stored["displayName"] == "Johnny Doe"
    assert stored["name"]["givenName"] == "Johnny"
    assert stored["id"] == user["id"]


async def test_onelogin_filter_url_with_a_trailing_ampersand_finds_the_user(
    scim: Scim, payload: Any
) -> None:
    """Rules 12, 13, 14: `?filter=userName eq "x"&` and `...&count=10&` are read normally."""
    user = await onelogin_user(scim, payload)
    filter_text = pct('userName eq "jdoe@example.com"')
    for target in (f"/Users?filter={filter_text}&", f"/Users?filter={filter_text}&count=10&"):
        answer = await send(scim, "GET", target)
        assert answer.status == 200, (target, answer.text)
        assert [u["id"] for u in answer.json()["Resources"]] == [user["id"]]
    missing = pct('userName eq "nobody@example.com"')
    answer = await send(scim, "GET", f"/Users?filter={missing}&")
    assert answer.status == 200
    assert (answer.json()["totalResults"], answer.json()["Resources"]) == (0, [])


async def test_onelogin_lowercase_add_sets_an_attribute(scim: Scim, payload: Any) -> None:
    """Rules 1, 19: a template's lowercase `add` on a user answers 200 with the resource."""
    user = await onelogin_user(scim, payload)
    body = patch_body(
        {"op": "add", "path": "title", "value": "Engineer"},
        {"op": "add", "path": "phoneNumbers", "value": [{"type": "work", "value": "555-0100"}]},
    )
    answer = await send(scim, "PATCH", f"/Users/{user['id']}", body)
    assert answer.status == 200, answer.text
    assert answer.json()["title"] == "Engineer"
    stored = await scim.read(f"/Users/{user['id']}")
    assert stored["title"] == "Engineer"
    assert [(p["type"], p["value"]) for p in stored["phoneNumbers"]] == [("work", "555-0100")]


async def test_onelogin_asking_for_application_json_gets_it_for_answers_and_errors(
    scim: Scim, payload: Any
) -> None:
    """Rules 15, 18: `Accept: application/json` gives `application/json` every time."""
    user = await onelogin_user(scim, payload)
    for accept in (JSON, "application/json; charset=utf-8"):
        ok = await scim.get(f"/Users/{user['id']}", accept=accept)
        assert ok.status == 200 and ok.content_type == JSON, accept
        listed = await scim.get("/Users", accept=accept)
        assert listed.status == 200 and listed.content_type == JSON, accept

    missing = await send(scim, "GET", "/Users/no-such-user")
    assert missing.status == 404 and missing.content_type == JSON
    assert_scim_error(missing.json(), 404)
    duplicate = await send(scim, "POST", "/Users", payload("onelogin-create-user.json"))
    assert duplicate.status == 409 and duplicate.content_type == JSON
    assert duplicate.json()["schemas"] == [ERROR_URN]
    assert_scim_error(duplicate.json(), 409, "uniqueness")


async def test_onelogin_deletes_a_user_with_delete(scim: Scim, payload: Any) -> None:
    """Rule 18: DELETE answers 204; the user is then a SCIM 404 and a second DELETE too."""
    user = await onelogin_user(scim, payload)
    gone = await send(scim, "DELETE", f"/Users/{user['id']}")
    assert gone.status == 204, gone.text
    read = await send(scim, "GET", f"/Users/{user['id']}")
    assert read.status == 404
    assert_scim_error(read.json(), 404)
    again = await send(scim, "DELETE", f"/Users/{user['id']}")
    assert again.status == 404
    assert_scim_error(again.json(), 404)
    listed = await send(scim, "GET", "/Users")
    assert listed.json()["totalResults"] == 0
