"""Okta, as its SCIM 2.0 client sends requests (IDP-RULES.md, "Okta").

Okta's header-token mode sends the token bare, without ``Bearer``; every
request carries ``User-Agent: Okta SCIM Client 1.0.0`` and SCIM JSON as
Accept and Content-Type. Payloads come from the Okta developer docs
("SCIM 2.0 protocol reference").
"""

from __future__ import annotations

from typing import Any

from idp.helpers import (
    GROUP_URN,
    LIST_URN,
    USER_URN,
    Answer,
    Scim,
    assert_scim_error,
    members_of,
    patch_body,
    pct,
)
from support import TOKEN

SCIM_JSON = "application/scim+json"
OKTA_HEADERS = {"User-Agent": "Okta SCIM Client 1.0.0", "Content-Type": SCIM_JSON}


class Okta:
    """Sends every request the way Okta does: bare token, Okta user agent, SCIM JSON."""

    def __init__(self, scim: Scim) -> None:
        self.scim = scim

    async def get(self, path: str) -> Answer:
        return await self.scim.get(path, auth=TOKEN, accept=SCIM_JSON, headers=OKTA_HEADERS)

    async def post(self, path: str, body: Any) -> Answer:
        return await self.scim.post(path, body, auth=TOKEN, accept=SCIM_JSON, headers=OKTA_HEADERS)

    async def put(self, path: str, body: Any) -> Answer:
        return await self.scim.put(path, body, auth=TOKEN, accept=SCIM_JSON, headers=OKTA_HEADERS)

    async def patch(self, path: str, body: Any) -> Answer:
        return await self.scim.patch(path, body, auth=TOKEN, accept=SCIM_JSON, headers=OKTA_HEADERS)

    async def lookup(self, resource: str, attr: str, value: str) -> dict[str, Any]:
        """Okta's lookup: `filter=<attr> eq "<value>"&startIndex=1&count=100`, `%20` spaces."""
        filter_text = pct(f'{attr} eq "{value}"')
        answer = await self.get(f"/{resource}?filter={filter_text}&startIndex=1&count=100")
        assert answer.status == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def create_user(self, payload: Any, user_name: str | None = None) -> dict[str, Any]:
        body = payload("okta-create-user.json")
        if user_name is not None:
            body["userName"] = user_name
            body["emails"][0]["value"] = user_name
        answer = await self.post("/Users", body)
        assert answer.status == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created


def okta(scim: Scim) -> Okta:
    return Okta(scim)


# -- connection and auth -------------------------------------------------------------------


async def test_okta_test_connection_reads_two_users_with_start_index_1_and_count_2(
    scim: Scim,
) -> None:
    """Rules 15, 16, 17: `GET /Users?startIndex=1&count=2` with a bare token."""
    for n in range(3):
        await scim.user(f"conn{n}@okta.local")
    answer = await okta(scim).get("/Users?startIndex=1&count=2")
    assert answer.status == 200, answer.text
    assert answer.content_type == SCIM_JSON
    body = answer.json()
    assert body["schemas"] == [LIST_URN]
    assert body["totalResults"] == 3 and isinstance(body["totalResults"], int)
    assert body["startIndex"] == 1 and isinstance(body["startIndex"], int)
    assert body["itemsPerPage"] == 2 and len(body["Resources"]) == 2

    groups = await okta(scim).get("/Groups?startIndex=1&count=100")
    assert groups.status == 200, groups.text
    assert (groups.json()["totalResults"], groups.json()["Resources"]) == (0, [])


async def test_okta_header_token_mode_sends_the_token_without_bearer(scim: Scim) -> None:
    """Rule 16: `Authorization: <token>` is accepted; a wrong bare token is a SCIM 401."""
    ok = await scim.get("/Users?startIndex=1&count=2", auth=TOKEN, headers=OKTA_HEADERS)
    assert ok.status == 200, ok.text
    wrong = await scim.get(
        "/Users?startIndex=1&count=2", auth="not-the-token", headers=OKTA_HEADERS
    )
    assert wrong.status == 401
    assert_scim_error(wrong.json(), 401)
    bearer = await scim.get("/Users", auth=f"Bearer {TOKEN}", headers=OKTA_HEADERS)
    assert bearer.status == 200, bearer.text


# -- users ---------------------------------------------------------------------------------


async def test_okta_create_looks_up_the_user_then_posts_with_password_and_empty_groups(
    scim: Scim, payload: Any
) -> None:
    """Rules 11, 12, 14, 18: lookup with `%20` spaces, then POST with `password`, `groups: []`."""
    body = payload("okta-create-user.json")
    before = await okta(scim).lookup("Users", "userName", body["userName"])
    assert (before["totalResults"], before["Resources"], before["startIndex"]) == (0, [], 1)

    answer = await okta(scim).post("/Users", body)
    assert answer.status == 201, answer.text
    created = answer.json()  # the helper has checked: no password in the answer
    assert created["id"]
    assert created["meta"]["resourceType"] == "User"
    assert created["userName"] == body["userName"]
    assert created["externalId"] == body["externalId"]
    assert not created.get("groups")

    stored = await scim.read(f"/Users/{created['id']}")
    assert stored["name"] == {"givenName": "Test", "familyName": "User"}
    assert stored["locale"] == "en-US"
    assert stored["active"] is True
    after = await okta(scim).lookup("Users", "userName", body["userName"])
    assert [u["id"] for u in after["Resources"]] == [created["id"]]


async def test_okta_duplicate_create_gets_409_uniqueness_with_status_as_a_string(
    scim: Scim, payload: Any
) -> None:
    """Rule 18: a second POST of the same userName is 409 `uniqueness`; one user remains."""
    first = await okta(scim).create_user(payload)
    again = await okta(scim).post("/Users", payload("okta-create-user.json"))
    assert again.status == 409, again.text
    assert_scim_error(again.json(), 409, "uniqueness")
    found = await okta(scim).lookup("Users", "userName", first["userName"])
    assert [u["id"] for u in found["Resources"]] == [first["id"]]


async def test_okta_update_is_a_get_then_a_full_put_carrying_id_meta_and_groups(
    scim: Scim, payload: Any
) -> None:
    """Rules 11, 18: PUT with read-only `id`, `meta` and `groups`: they are ignored."""
    user = await okta(scim).create_user(payload)
    team = await scim.group("Team", [user["id"]])
    read = await okta(scim).get(f"/Users/{user['id']}")
    assert read.status == 200, read.text

    body = payload("okta-replace-user.json")  # groups names a group that does not exist here
    body["id"] = user["id"]
    answer = await okta(scim).put(f"/Users/{user['id']}", body)
    assert answer.status == 200, answer.text
    assert answer.json()["id"] == user["id"]

    stored = await scim.read(f"/Users/{user['id']}")
    assert stored["name"] == {"givenName": "Another", "familyName": "User"}
    assert stored["displayName"] == "Another User"
    assert stored["meta"]["created"] == user["meta"]["created"]  # not the client's meta
    assert [g["value"] for g in stored["groups"]] == [team["id"]]  # groups is read-only
    assert members_of(await scim.read(f"/Groups/{team['id']}")) == [user["id"]]


async def test_okta_deactivates_with_a_pathless_replace_and_the_user_stays_readable(
    scim: Scim, payload: Any
) -> None:
    """Rules 3, 19, 20: `{"op":"replace","value":{"active":false}}` gives 200 (or 204)."""
    user = await okta(scim).create_user(payload)
    answer = await okta(scim).patch(f"/Users/{user['id']}", payload("okta-deactivate.json"))
    assert answer.status in (200, 204), answer.text
    if answer.status == 200:
        assert answer.json()["active"] is False

    stored = await okta(scim).get(f"/Users/{user['id']}")
    assert stored.status == 200
    assert stored.json()["active"] is False
    found = await okta(scim).lookup("Users", "userName", user["userName"])
    assert [(u["id"], u["active"]) for u in found["Resources"]] == [(user["id"], False)]

    activate = patch_body({"op": "replace", "value": {"active": True}})
    assert (await okta(scim).patch(f"/Users/{user['id']}", activate)).status in (200, 204)
    assert (await scim.read(f"/Users/{user['id']}"))["active"] is True


async def test_okta_password_change_is_accepted_and_the_password_never_comes_back(
    scim: Scim, payload: Any
) -> None:
    """Rules 3, 11: a path-less replace of `password`; no answer ever carries it."""
    user = await okta(scim).create_user(payload)
    change = patch_body({"op": "replace", "value": {"password": "n3w-Secret!"}})
    answer = await okta(scim).patch(f"/Users/{user['id']}", change)
    assert answer.status in (200, 204), answer.text
    stored = await okta(scim).get(f"/Users/{user['id']}?attributes=password,userName")
    assert stored.status == 200
    assert stored.json()["userName"] == user["userName"]
    listed = await okta(scim).get("/Users?startIndex=1&count=100")
    assert listed.status == 200 and listed.json()["totalResults"] == 1
    assert "n3w-Secret!" not in listed.text and "1mz050nq" not in listed.text


async def test_okta_unknown_ids_get_a_scim_404(scim: Scim) -> None:
    """Rule 18: GET, PUT and PATCH of an unknown id answer 404 as SCIM Error JSON."""
    path = "/Users/00u-does-not-exist"
    answers = [
        await okta(scim).get(path),
        await okta(scim).put(path, {"schemas": [USER_URN], "userName": "ghost"}),
        await okta(scim).patch(path, patch_body({"op": "replace", "value": {"active": False}})),
        await okta(scim).get("/Groups/00g-does-not-exist"),
    ]
    for answer in answers:
        assert answer.status == 404, answer.text
        assert_scim_error(answer.json(), 404)


# -- groups --------------------------------------------------------------------------------


async def test_okta_renames_a_group_with_a_pathless_replace_carrying_its_id(
    scim: Scim, payload: Any
) -> None:
    """Rules 3, 19: the value's read-only `id` is ignored; the name changes, members stay."""
    member = await okta(scim).create_user(payload)
    created = await okta(scim).post(
        "/Groups",
        {"schemas": [GROUP_URN], "displayName": "Okta Group", "members": [{"value": member["id"]}]},
    )
    assert created.status == 201, created.text
    group = created.json()
    found = await okta(scim).lookup("Groups", "displayName", "Okta Group")
    assert [g["id"] for g in found["Resources"]] == [group["id"]]

    rename = payload("okta-group-rename.json")
    rename["Operations"][0]["value"]["id"] = group["id"]
    answer = await okta(scim).patch(f"/Groups/{group['id']}", rename)
    assert answer.status == 204, answer.text

    stored = await scim.read(f"/Groups/{group['id']}")
    assert stored["displayName"] == "Test SCIMv2"
    assert stored["id"] == group["id"]
    assert members_of(stored) == [member["id"]]
    renamed = await okta(scim).lookup("Groups", "displayName", "Test SCIMv2")
    assert [g["id"] for g in renamed["Resources"]] == [group["id"]]
    assert (await okta(scim).lookup("Groups", "displayName", "Okta Group"))["totalResults"] == 0


async def test_okta_removes_one_member_and_adds_another_in_one_request(
    scim: Scim, payload: Any
) -> None:
    """Rules 6, 7, 19: `remove` `members[value eq "a"]` then `add` `[{value, display}]`."""
    a, b, c = [await scim.user(f"{n}@okta.local") for n in "abc"]
    group = await scim.group("Engineering", [a["id"], c["id"]])
    body = payload("okta-group-members.json")
    body["Operations"][0]["path"] = f'members[value eq "{a["id"]}"]'
    body["Operations"][1]["value"] = [{"value": b["id"], "display": b["userName"]}]
    answer = await okta(scim).patch(f"/Groups/{group['id']}", body)
    assert answer.status == 204, answer.text

    stored = await scim.read(f"/Groups/{group['id']}")
    assert members_of(stored) == sorted([b["id"], c["id"]])
    assert "groups" not in await scim.read(f"/Users/{a['id']}")
    assert [g["value"] for g in (await scim.read(f"/Users/{b['id']}"))["groups"]] == [group["id"]]


async def test_okta_replaces_the_whole_member_list(scim: Scim) -> None:
    """Rules 6, 19: `replace` on `members` leaves exactly the members listed."""
    a, b, c = [await scim.user(f"r{n}@okta.local") for n in "abc"]
    group = await scim.group("Sales", [a["id"], b["id"]])
    body = patch_body(
        {
            "op": "replace",
            "path": "members",
            "value": [{"value": b["id"], "display": b["userName"]}, {"value": c["id"]}],
        }
    )
    answer = await okta(scim).patch(f"/Groups/{group['id']}", body)
    assert answer.status == 204, answer.text
    assert members_of(await scim.read(f"/Groups/{group['id']}")) == sorted([b["id"], c["id"]])


# -- imports ---------------------------------------------------------------------------------


async def read_all(client: Okta, resource: str, step: int = 100) -> tuple[list[str], int]:
    """Okta's import loop: `startIndex += 100` until a short page, checking every page."""
    ids: list[str] = []
    start, total = 1, None
    while True:
        answer = await client.get(f"/{resource}?startIndex={start}&count={step}")
        assert answer.status == 200, answer.text
        page = answer.json()
        for key in ("totalResults", "itemsPerPage", "startIndex"):
            assert isinstance(page[key], int) and not isinstance(page[key], bool), key
        assert page["startIndex"] == start
        assert page["itemsPerPage"] == len(page["Resources"])
        total = page["totalResults"] if total is None else total
        assert page["totalResults"] == total
        ids.extend(r["id"] for r in page["Resources"])
        if len(page["Resources"]) < step:
            return ids, total
        start += step


async def test_okta_user_import_pages_by_100_in_a_stable_order_with_integer_totals(
    scim: Scim,
) -> None:
    """Rule 17: 1-based pages of 100 cover every user once, in the same order every time."""
    created = [(await scim.user(f"import{n:03}@okta.local"))["id"] for n in range(250)]
    first, total = await read_all(okta(scim), "Users")
    assert total == 250
    assert len(first) == 250 and set(first) == set(created)
    second, _ = await read_all(okta(scim), "Users")
    assert second == first

    beyond = await okta(scim).get("/Users?startIndex=301&count=100")
    assert beyond.status == 200
    assert (beyond.json()["totalResults"], beyond.json()["Resources"]) == (250, [])


async def test_okta_group_import_is_paged_in_a_stable_order(scim: Scim) -> None:
    """Rule 17: `/Groups?startIndex=1&count=100` with members, page after page, same order."""
    users = [(await scim.user(f"g{n:03}@okta.local"))["id"] for n in range(50)]
    created = [(await scim.group(f"Group {n:03}", users[n % 10 :]))["id"] for n in range(120)]
    answer = await okta(scim).get("/Groups?startIndex=1&count=100")
    assert answer.status == 200
    assert len(answer.json()["Resources"]) == 100
    ids, total = await read_all(okta(scim), "Groups")
    assert total == 120 and len(ids) == 120 and set(ids) == set(created)
    again, _ = await read_all(okta(scim), "Groups")
    assert again == ids


async def test_okta_put_with_a_password_stores_the_change_but_never_returns_it(
    scim: Scim, payload: Any
) -> None:
    """Rules 11, 18: a PUT carrying `password` answers 200 without it, as does every read."""
    user = await okta(scim).create_user(payload)
    body = payload("okta-replace-user.json")
    body["id"] = user["id"]
    body["password"] = "t3mp-Passw0rd"
    answer = await okta(scim).put(f"/Users/{user['id']}", body)
    assert answer.status == 200, answer.text
    assert "t3mp-Passw0rd" not in answer.text
    read = await okta(scim).get(f"/Users/{user['id']}")
    assert read.status == 200 and "t3mp-Passw0rd" not in read.text
    assert read.json()["displayName"] == "Another User"


async def test_okta_create_ignores_a_client_supplied_id(scim: Scim, payload: Any) -> None:
    """Rules 11, 18: an `id` in the POST body is read-only; the server assigns its own."""
    body = payload("okta-create-user.json")
    body["id"] = "client-chosen-id"
    answer = await okta(scim).post("/Users", body)
    assert answer.status == 201, answer.text
    assert answer.json()["id"] != "client-chosen-id"
    assert (await okta(scim).get("/Users/client-chosen-id")).status == 404
    assert (await scim.read(f"/Users/{answer.json()['id']}"))["userName"] == body["userName"]
