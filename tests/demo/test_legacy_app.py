"""Acme HR, the demo legacy app: every endpoint and every error of the contract in its docstring."""

from __future__ import annotations

import hmac
import io
import json
import re
import sqlite3
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.demo import legacy_app
from gateway.demo.legacy_app import create_legacy_app

KEY = "test-key-0123456789"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
ACCOUNT_KEYS = [
    "account_id",
    "login",
    "given",
    "family",
    "display",
    "mail",
    "mail_kind",
    "mail_label",
    "mail_primary",
    "phone",
    "phone_kind",
    "phone_label",
    "phone_primary",
    "title",
    "dept",
    "employee_no",
    "manager_id",
    "ext_ref",
    "status",
    "created_at",
    "updated_at",
]

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 12, 0, 0, 999_999, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int = 1) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def client(aiohttp_client: ClientFactory, clock: FakeClock) -> Client:
    app = create_legacy_app(api_key=KEY, clock=clock)
    return await aiohttp_client(app, headers={"X-Api-Key": KEY})


async def call(
    client: Client, method: str, path: str, status: int, body: Any = None, **kwargs: Any
) -> Any:
    """One request; asserts the status, and that any body is JSON, and returns it."""
    if body is not None:
        kwargs["json"] = body
    async with client.request(method, path, **kwargs) as resp:
        text = await resp.text()
        assert resp.status == status, text
        if resp.status == 204:
            assert text == ""
            return None
        assert resp.content_type == "application/json"
        return await resp.json()


async def new_account(client: Client, login: str, **fields: Any) -> dict[str, Any]:
    body = await call(
        client, "POST", "/api/v1/accounts", 201, {"account": {"login": login, **fields}}
    )
    account: dict[str, Any] = body["account"]
    return account


async def new_team(client: Client, name: str, **fields: Any) -> dict[str, Any]:
    body = await call(client, "POST", "/api/v1/teams", 201, {"team": {"name": name, **fields}})
    team: dict[str, Any] = body["team"]
    return team


async def member_ids(client: Client, team_id: str) -> list[str]:
    body = await call(client, "GET", f"/api/v1/teams/{team_id}", 200)
    ids: list[str] = body["team"]["member_ids"]
    return ids


async def account_total(client: Client) -> int:
    total: int = (await call(client, "GET", "/api/v1/accounts", 200))["total"]
    return total


# -- health and auth ----------------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/v1/accounts"),
    ("POST", "/api/v1/accounts"),
    ("GET", "/api/v1/accounts/acc_000001"),
    ("PATCH", "/api/v1/accounts/acc_000001"),
    ("DELETE", "/api/v1/accounts/acc_000001"),
    ("GET", "/api/v1/teams"),
    ("POST", "/api/v1/teams"),
    ("GET", "/api/v1/teams/team_0001"),
    ("PUT", "/api/v1/teams/team_0001"),
    ("DELETE", "/api/v1/teams/team_0001"),
    ("PUT", "/api/v1/teams/team_0001/members/acc_000001"),
    ("DELETE", "/api/v1/teams/team_0001/members/acc_000001"),
    ("GET", "/api/v1/nothing-here"),
    ("GET", "/api"),
]


async def test_healthz_answers_without_a_key(aiohttp_client: ClientFactory) -> None:
    anon = await aiohttp_client(create_legacy_app(api_key=KEY))
    assert await call(anon, "GET", "/healthz", 200) == {"status": "ok"}


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_api_route_without_a_key_is_unauthorized(
    aiohttp_client: ClientFactory, method: str, path: str
) -> None:
    anon = await aiohttp_client(create_legacy_app(api_key=KEY))
    body = await call(anon, method, path, 401, {"account": {"login": "x"}, "team": {"name": "x"}})
    assert body == {"error": "unauthorized"}


@pytest.mark.parametrize("wrong", ["", "test-key", KEY + "0", KEY.upper(), "Bearer " + KEY])
async def test_a_wrong_key_is_unauthorized_and_changes_nothing(client: Client, wrong: str) -> None:
    body = {"account": {"login": "mallory"}}
    answer = await call(client, "POST", "/api/v1/accounts", 401, body, headers={"X-Api-Key": wrong})
    assert answer == {"error": "unauthorized"}
    assert await account_total(client) == 0


async def test_the_key_is_compared_in_constant_time(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bytes, bytes]] = []

    def spy(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return a == b

    monkeypatch.setattr(hmac, "compare_digest", spy)
    await call(client, "GET", "/api/v1/accounts", 200)
    await call(client, "GET", "/api/v1/accounts", 401, headers={"X-Api-Key": "short"})
    assert len(seen) == 2
    assert all(len(a) == len(b) == 32 for a, b in seen)


def test_an_empty_api_key_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="api_key"):
        create_legacy_app(api_key="")


async def test_the_default_api_key_is_the_documented_demo_key(
    aiohttp_client: ClientFactory,
) -> None:
    demo = await aiohttp_client(create_legacy_app(), headers={"X-Api-Key": "acme-demo-key"})
    assert (await call(demo, "GET", "/api/v1/accounts", 200))["total"] == 0


# -- unknown routes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/users"),
        ("GET", "/api/v2/accounts"),
        ("GET", "/api/v1/accounts/"),
        ("GET", "/api/v1/accounts/acc_000001/teams"),
        ("PUT", "/api/v1/accounts/acc_000001"),
        ("POST", "/api/v1/teams/team_0001"),
        ("PATCH", "/api/v1/teams/team_0001"),
        ("GET", "/api/v1/teams/team_0001/members/acc_000001"),
        ("GET", "/api"),
    ],
)
async def test_any_other_path_or_method_under_api_is_a_json_not_found(
    client: Client, method: str, path: str
) -> None:
    assert await call(client, method, path, 404) == {"error": "not_found"}


async def test_paths_outside_api_answer_json_errors_too(client: Client) -> None:
    assert await call(client, "GET", "/nothing", 404) == {"error": "not_found"}
    assert await call(client, "POST", "/healthz", 405) == {"error": "method_not_allowed"}


# -- accounts: create ---------------------------------------------------------------------------


async def test_a_created_account_has_every_field_an_app_id_and_a_location(
    client: Client,
) -> None:
    fields = {
        "login": "Alice.Smith",
        "given": "Alice",
        "family": "Smith",
        "display": "Alice Smith",
        "mail": "Alice@Example.com",
        "mail_kind": "work",
        "mail_label": "Office",
        "mail_primary": "y",
        "phone": "+1 555 0100",
        "phone_kind": "mobile",
        "phone_label": "Cell",
        "phone_primary": "n",
        "title": "Engineer",
        "dept": "R&D",
        "employee_no": "E-0042",
        "manager_id": "acc_999999",
    }
    async with client.post("/api/v1/accounts", json={"account": fields}) as resp:
        assert resp.status == 201
        assert resp.content_type == "application/json"
        account = (await resp.json())["account"]
        location = resp.headers["Location"]
    assert list(account) == ACCOUNT_KEYS
    assert account["account_id"] == "acc_000001"
    assert {k: account[k] for k in fields} == fields
    assert account["status"] == "enabled"
    assert account["created_at"] == account["updated_at"] == "2024-05-01T12:00:00Z"
    assert location == str(client.make_url("/api/v1/accounts/acc_000001"))


async def test_a_created_account_can_be_read_back(client: Client) -> None:
    created = await new_account(client, "bob", given="Bob", status="suspended")
    body = await call(client, "GET", f"/api/v1/accounts/{created['account_id']}", 200)
    assert body == {"account": created}
    assert body["account"]["status"] == "suspended"


async def test_account_ids_come_from_a_counter_and_are_never_reused(client: Client) -> None:
    first = await new_account(client, "one")
    second = await new_account(client, "two")
    await call(client, "DELETE", f"/api/v1/accounts/{second['account_id']}", 204)
    third = await new_account(client, "three")
    assert [first["account_id"], second["account_id"], third["account_id"]] == [
        "acc_000001",
        "acc_000002",
        "acc_000003",
    ]


async def test_a_refused_create_does_not_use_up_an_id(client: Client) -> None:
    await new_account(client, "taken")
    await call(client, "POST", "/api/v1/accounts", 409, {"account": {"login": "TAKEN"}})
    await call(client, "POST", "/api/v1/accounts", 422, {"account": {"login": ""}})
    assert (await new_account(client, "next"))["account_id"] == "acc_000002"


async def test_empty_optional_strings_are_stored_as_null(client: Client) -> None:
    account = await new_account(
        client, "blank", mail="", phone="", given=None, mail_kind="", phone_primary=""
    )
    assert account["mail"] is account["phone"] is account["given"] is None
    assert account["mail_kind"] is account["phone_primary"] is None


async def test_a_status_can_be_left_unset_but_defaults_to_enabled(
    client: Client, clock: FakeClock
) -> None:
    assert (await new_account(client, "default"))["status"] == "enabled"
    unset = await new_account(client, "undecided", status=None)
    assert unset["status"] is None
    path = f"/api/v1/accounts/{unset['account_id']}"
    assert (await call(client, "GET", path, 200))["account"] == unset
    # Neither status filter finds it.
    for status in ("enabled", "suspended"):
        found = await call(client, "GET", f"/api/v1/accounts?status={status}&login=undecided", 200)
        assert found["total"] == 0
    clock.advance(5)
    enabled = await call(client, "PATCH", path, 200, {"account": {"status": "enabled"}})
    assert enabled["account"]["status"] == "enabled"
    cleared = await call(client, "PATCH", path, 200, {"account": {"status": None}})
    assert cleared["account"]["status"] is None
    assert cleared["account"]["updated_at"] == "2024-05-01T12:00:05Z"


async def test_the_mail_and_phone_keep_their_kind_label_and_primary_flag(client: Client) -> None:
    created = await new_account(
        client, "alice", mail="a@x.org", mail_kind="home", mail_label="Home", mail_primary="n"
    )
    path = f"/api/v1/accounts/{created['account_id']}"
    change = {"phone": "1", "phone_kind": "fax", "phone_label": "Fax", "phone_primary": "y"}
    body = await call(client, "PATCH", path, 200, {"account": {**change, "mail_primary": None}})
    account = body["account"]
    assert (account["mail_kind"], account["mail_label"], account["mail_primary"]) == (
        "home",
        "Home",
        None,
    )
    assert {k: account[k] for k in change} == change
    assert (await call(client, "GET", path, 200)) == body


@pytest.mark.parametrize(
    ("account", "errors"),
    [
        ({}, ["login is required"]),
        ({"login": None}, ["login is required"]),
        ({"login": ""}, ["login is required"]),
        ({"login": "   "}, ["login is required"]),
        ({"login": 42}, ["login must be a string"]),
        ({"login": "x" * 65}, ["login must be at most 64 characters"]),
        ({"login": "a", "status": "active"}, ["status must be one of: enabled, suspended, null"]),
        ({"login": "a", "status": ""}, ["status must be one of: enabled, suspended, null"]),
        ({"login": "a", "status": True}, ["status must be one of: enabled, suspended, null"]),
        ({"login": "a", "mail_primary": True}, ['mail_primary must be "y", "n" or null']),
        ({"login": "a", "phone_primary": "yes"}, ['phone_primary must be "y", "n" or null']),
        ({"login": "a", "mail_kind": 1}, ["mail_kind must be a string or null"]),
        ({"login": "a", "phone_label": {}}, ["phone_label must be a string or null"]),
        ({"login": "a", "mail": ["a@x.org"]}, ["mail must be a string or null"]),
        ({"login": "a", "manager_id": 7}, ["manager_id must be a string or null"]),
        ({"login": "a", "email": "a@x.org"}, ["unknown field: email"]),
        ({"login": "a", "account_id": "acc_000009"}, ["account_id is read-only"]),
        ({"login": "a", "created_at": "2024-01-01T00:00:00Z"}, ["created_at is read-only"]),
        (
            {"userName": "a", "updated_at": "x", "phone": 5},
            [
                "unknown field: userName",
                "updated_at is read-only",
                "login is required",
                "phone must be a string or null",
            ],
        ),
    ],
)
async def test_an_invalid_account_is_unprocessable_with_every_problem_listed(
    client: Client, account: dict[str, Any], errors: list[str]
) -> None:
    body = await call(client, "POST", "/api/v1/accounts", 422, {"account": account})
    assert body == {"errors": errors}
    assert await account_total(client) == 0


async def test_a_login_of_64_characters_is_accepted(client: Client) -> None:
    assert (await new_account(client, "x" * 64))["login"] == "x" * 64


async def test_a_duplicate_login_is_a_conflict_whatever_its_case(client: Client) -> None:
    await new_account(client, "Alice")
    body = await call(client, "POST", "/api/v1/accounts", 409, {"account": {"login": "aLICE"}})
    assert body == {"error": "duplicate", "field": "login"}
    assert await account_total(client) == 1


async def test_a_duplicate_mail_is_a_conflict_whatever_its_case(client: Client) -> None:
    await new_account(client, "alice", mail="alice@example.com")
    answer = await call(
        client,
        "POST",
        "/api/v1/accounts",
        409,
        {"account": {"login": "al", "mail": "ALICE@example.COM"}},
    )
    assert answer == {"error": "duplicate", "field": "mail"}
    assert await account_total(client) == 1


async def test_accounts_without_mail_do_not_conflict(client: Client) -> None:
    await new_account(client, "one")
    await new_account(client, "two", mail=None)
    assert await account_total(client) == 2


async def test_login_is_reported_first_when_login_and_mail_are_both_taken(client: Client) -> None:
    await new_account(client, "alice", mail="a@x.org")
    body = {"account": {"login": "ALICE", "mail": "A@x.org"}}
    assert (await call(client, "POST", "/api/v1/accounts", 409, body))["field"] == "login"


async def test_values_are_bound_not_spliced_into_sql(client: Client) -> None:
    login = "o'brien\"; DROP TABLE accounts; --"
    account = await new_account(client, login)
    found = await call(client, "GET", "/api/v1/accounts", 200, params={"login": login.upper()})
    assert found["items"] == [account]


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "not valid JSON"),
        (b"{login: 'x'}", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"login": "x"}', '"account"'),
        (b'{"account": "x"}', '"account"'),
        (b'{"account": null}', '"account"'),
        (b'[{"account": {"login": "x"}}]', '"account"'),
    ],
)
async def test_a_body_that_is_not_json_or_lacks_the_root_is_a_bad_request(
    client: Client, data: bytes, detail: str
) -> None:
    headers = {"Content-Type": "application/json"}
    body = await call(client, "POST", "/api/v1/accounts", 400, data=data, headers=headers)
    assert body["error"] == "bad_request"
    assert detail in body["detail"]


async def test_a_body_over_one_mebibyte_is_refused(client: Client) -> None:
    huge = json.dumps({"account": {"login": "big", "title": "x" * (1024 * 1024)}}).encode()
    body = await call(client, "POST", "/api/v1/accounts", 413, data=io.BytesIO(huge))
    assert body == {"error": "payload_too_large"}
    assert await account_total(client) == 0


async def test_other_root_keys_are_ignored(client: Client) -> None:
    body = await call(client, "POST", "/api/v1/accounts", 201, {"account": {"login": "a"}, "x": 1})
    assert body["account"]["login"] == "a"


# -- accounts: read -----------------------------------------------------------------------------


@pytest.mark.parametrize("wrong_id", ["acc_000002", "ACC_000001", "acc_1", "000001", "acc_000001 "])
async def test_reading_an_unknown_or_inexact_account_id_is_not_found(
    client: Client, wrong_id: str
) -> None:
    await new_account(client, "alice")
    body = await call(client, "GET", f"/api/v1/accounts/{wrong_id}", 404)
    assert body == {"error": "not_found"}


async def test_the_account_list_pages_by_offset_and_limit_in_account_id_order(
    client: Client,
) -> None:
    # Created in reverse alphabetical order, so an order by login would show.
    logins = ["eve", "dan", "carol", "bob", "alice"]
    for login in logins:
        await new_account(client, login)
    everything = await call(client, "GET", "/api/v1/accounts", 200)
    assert [a["login"] for a in everything["items"]] == logins
    assert (everything["total"], everything["offset"], everything["limit"]) == (5, 0, 50)
    page = await call(client, "GET", "/api/v1/accounts?offset=1&limit=2", 200)
    assert [a["account_id"] for a in page["items"]] == ["acc_000002", "acc_000003"]
    assert (page["total"], page["offset"], page["limit"]) == (5, 1, 2)
    past = await call(client, "GET", "/api/v1/accounts?offset=10&limit=2", 200)
    assert (past["items"], past["total"]) == ([], 5)


async def test_a_limit_of_zero_gives_only_the_total(client: Client) -> None:
    await new_account(client, "alice")
    body = await call(client, "GET", "/api/v1/accounts?limit=0", 200)
    assert body == {"items": [], "total": 1, "offset": 0, "limit": 0}


async def test_a_limit_above_200_is_capped_at_200(client: Client) -> None:
    for n in range(201):
        await new_account(client, f"user{n}")
    body = await call(client, "GET", "/api/v1/accounts?limit=1000", 200)
    assert (len(body["items"]), body["limit"], body["total"]) == (200, 200, 201)


@pytest.mark.parametrize(
    "query",
    [
        "offset=abc",
        "offset=-1",
        "offset=1.5",
        "offset=",
        "offset=%201",
        "offset=99999999999999999999999",
        "limit=ten",
        "limit=-5",
        "limit=1e3",
        "limit=%D9%A1",
        "status=active",
        "status=",
        "status=ENABLED",
    ],
)
async def test_a_bad_offset_limit_or_status_is_a_bad_request(client: Client, query: str) -> None:
    body = await call(client, "GET", f"/api/v1/accounts?{query}", 400)
    assert body["error"] == "bad_request"
    assert body["detail"]


async def test_the_account_list_filters_on_exact_login_and_mail_ignoring_case(
    client: Client,
) -> None:
    alice = await new_account(client, "Alice", mail="alice@example.com")
    await new_account(client, "alice2", mail="alice@example.org")
    by_login = await call(client, "GET", "/api/v1/accounts?login=ALICE", 200)
    assert (by_login["items"], by_login["total"]) == ([alice], 1)
    by_mail = await call(client, "GET", "/api/v1/accounts?mail=Alice@Example.COM", 200)
    assert by_mail["items"] == [alice]
    partial = await call(client, "GET", "/api/v1/accounts?login=ali", 200)
    assert (partial["items"], partial["total"]) == ([], 0)


async def test_the_account_list_filters_on_status_and_combines_filters(client: Client) -> None:
    await new_account(client, "on")
    off = await new_account(client, "off", status="suspended", mail="off@x.org")
    suspended = await call(client, "GET", "/api/v1/accounts?status=suspended", 200)
    assert (suspended["items"], suspended["total"]) == ([off], 1)
    enabled = await call(client, "GET", "/api/v1/accounts?status=enabled", 200)
    assert [a["login"] for a in enabled["items"]] == ["on"]
    both = "/api/v1/accounts?status=enabled&mail=off@x.org"
    assert (await call(client, "GET", both, 200))["total"] == 0
    both = "/api/v1/accounts?status=suspended&login=OFF&mail=OFF@x.org"
    assert (await call(client, "GET", both, 200))["items"] == [off]


# -- accounts: update ---------------------------------------------------------------------------


async def test_patch_changes_only_the_given_fields_and_moves_updated_at(
    client: Client, clock: FakeClock
) -> None:
    created = await new_account(client, "alice", given="Alice", title="Engineer")
    clock.advance(5)
    body = await call(
        client,
        "PATCH",
        f"/api/v1/accounts/{created['account_id']}",
        200,
        {"account": {"title": "Manager", "status": "suspended"}},
    )
    expected = {
        **created,
        "title": "Manager",
        "status": "suspended",
        "updated_at": "2024-05-01T12:00:05Z",
    }
    assert body == {"account": expected}
    assert await call(client, "GET", f"/api/v1/accounts/{created['account_id']}", 200) == body


async def test_patch_with_null_clears_an_optional_field(client: Client) -> None:
    created = await new_account(client, "alice", mail="a@x.org", phone="123")
    path = f"/api/v1/accounts/{created['account_id']}"
    body = await call(client, "PATCH", path, 200, {"account": {"mail": None, "phone": ""}})
    assert body["account"]["mail"] is body["account"]["phone"] is None
    # The freed mail can be used again.
    await new_account(client, "bob", mail="A@X.org")


async def test_patch_without_a_change_leaves_updated_at_alone(
    client: Client, clock: FakeClock
) -> None:
    created = await new_account(client, "alice", given="Alice")
    clock.advance(5)
    path = f"/api/v1/accounts/{created['account_id']}"
    assert (await call(client, "PATCH", path, 200, {"account": {}}))["account"] == created
    same = await call(client, "PATCH", path, 200, {"account": {"given": "Alice"}})
    assert same["account"] == created


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"login": None}, ["login is required"]),
        ({"login": ""}, ["login is required"]),
        ({"status": "disabled"}, ["status must be one of: enabled, suspended, null"]),
        ({"mail_primary": "Y"}, ['mail_primary must be "y", "n" or null']),
        ({"nickname": "al"}, ["unknown field: nickname"]),
        ({"updated_at": "2030-01-01T00:00:00Z"}, ["updated_at is read-only"]),
        (
            {"dept": 3, "login": "y" * 65},
            ["login must be at most 64 characters", "dept must be a string or null"],
        ),
    ],
)
async def test_an_invalid_patch_is_unprocessable_and_changes_nothing(
    client: Client, change: dict[str, Any], errors: list[str]
) -> None:
    created = await new_account(client, "alice", dept="R&D")
    path = f"/api/v1/accounts/{created['account_id']}"
    assert await call(client, "PATCH", path, 422, {"account": change}) == {"errors": errors}
    assert (await call(client, "GET", path, 200))["account"] == created


async def test_patch_to_a_taken_login_or_mail_is_a_conflict_and_changes_nothing(
    client: Client,
) -> None:
    await new_account(client, "alice", mail="alice@x.org")
    bob = await new_account(client, "bob", mail="bob@x.org")
    path = f"/api/v1/accounts/{bob['account_id']}"
    taken_login = await call(client, "PATCH", path, 409, {"account": {"login": "ALICE"}})
    assert taken_login == {"error": "duplicate", "field": "login"}
    taken_mail = await call(client, "PATCH", path, 409, {"account": {"mail": "Alice@X.org"}})
    assert taken_mail == {"error": "duplicate", "field": "mail"}
    assert (await call(client, "GET", path, 200))["account"] == bob


async def test_patch_may_change_the_case_of_its_own_login_and_mail(client: Client) -> None:
    alice = await new_account(client, "alice", mail="alice@x.org")
    path = f"/api/v1/accounts/{alice['account_id']}"
    body = await call(
        client, "PATCH", path, 200, {"account": {"login": "Alice", "mail": "ALICE@x.org"}}
    )
    assert (body["account"]["login"], body["account"]["mail"]) == ("Alice", "ALICE@x.org")


async def test_patching_an_unknown_account_is_not_found(client: Client) -> None:
    body = {"account": {"title": "x"}}
    assert await call(client, "PATCH", "/api/v1/accounts/acc_000404", 404, body) == {
        "error": "not_found"
    }


async def test_a_patch_body_without_the_root_is_a_bad_request(client: Client) -> None:
    alice = await new_account(client, "alice")
    path = f"/api/v1/accounts/{alice['account_id']}"
    assert (await call(client, "PATCH", path, 400, {"title": "x"}))["error"] == "bad_request"
    assert (await call(client, "PATCH", path, 400, data=b"nope"))["error"] == "bad_request"


# -- accounts: delete ---------------------------------------------------------------------------


async def test_a_deleted_account_is_gone_and_a_second_delete_is_not_found(client: Client) -> None:
    alice = await new_account(client, "alice")
    path = f"/api/v1/accounts/{alice['account_id']}"
    await call(client, "DELETE", path, 204)
    assert await call(client, "GET", path, 404) == {"error": "not_found"}
    assert await call(client, "DELETE", path, 404) == {"error": "not_found"}
    assert await account_total(client) == 0
    # Its login is free again.
    await new_account(client, "ALICE")


async def test_deleting_an_account_removes_its_team_memberships(client: Client) -> None:
    alice = await new_account(client, "alice")
    bob = await new_account(client, "bob")
    team = await new_team(client, "Eng")
    for account in (alice, bob):
        await call(
            client, "PUT", f"/api/v1/teams/{team['team_id']}/members/{account['account_id']}", 204
        )
    await call(client, "DELETE", f"/api/v1/accounts/{alice['account_id']}", 204)
    assert await member_ids(client, team["team_id"]) == [bob["account_id"]]


# -- teams --------------------------------------------------------------------------------------


async def test_a_created_team_has_an_app_id_no_members_and_a_location(client: Client) -> None:
    async with client.post(
        "/api/v1/teams", json={"team": {"name": "Eng", "description": "Builders"}}
    ) as resp:
        assert resp.status == 201
        assert resp.content_type == "application/json"
        body = await resp.json()
        location = resp.headers["Location"]
    assert body == {
        "team": {
            "team_id": "team_0001",
            "name": "Eng",
            "description": "Builders",
            "ext_ref": None,
            "created_at": "2024-05-01T12:00:00Z",
            "updated_at": "2024-05-01T12:00:00Z",
            "member_ids": [],
        }
    }
    assert location == str(client.make_url("/api/v1/teams/team_0001"))
    assert await call(client, "GET", "/api/v1/teams/team_0001", 200) == body


@pytest.mark.parametrize(
    ("team", "errors"),
    [
        ({}, ["name is required"]),
        ({"name": "  "}, ["name is required"]),
        ({"name": ["Eng"]}, ["name must be a string"]),
        ({"name": "Eng", "description": 1}, ["description must be a string or null"]),
        ({"name": "Eng", "members": []}, ["unknown field: members"]),
        ({"name": "Eng", "member_ids": ["acc_000001"]}, ["member_ids is read-only"]),
        ({"name": "Eng", "team_id": "team_0042"}, ["team_id is read-only"]),
    ],
)
async def test_an_invalid_team_is_unprocessable(
    client: Client, team: dict[str, Any], errors: list[str]
) -> None:
    assert await call(client, "POST", "/api/v1/teams", 422, {"team": team}) == {"errors": errors}
    assert (await call(client, "GET", "/api/v1/teams", 200))["total"] == 0


async def test_a_duplicate_team_name_is_a_conflict_whatever_its_case(client: Client) -> None:
    await new_team(client, "Engineering")
    body = await call(client, "POST", "/api/v1/teams", 409, {"team": {"name": "ENGINEERING"}})
    assert body == {"error": "duplicate", "field": "name"}
    assert (await call(client, "GET", "/api/v1/teams", 200))["total"] == 1


async def test_a_team_body_without_the_root_is_a_bad_request(client: Client) -> None:
    assert (await call(client, "POST", "/api/v1/teams", 400, {"name": "Eng"}))[
        "error"
    ] == "bad_request"
    assert (await call(client, "POST", "/api/v1/teams", 400, data=b"{"))["error"] == "bad_request"


@pytest.mark.parametrize("wrong_id", ["team_0002", "TEAM_0001", "team_1"])
async def test_reading_an_unknown_or_inexact_team_id_is_not_found(
    client: Client, wrong_id: str
) -> None:
    await new_team(client, "Eng")
    assert await call(client, "GET", f"/api/v1/teams/{wrong_id}", 404) == {"error": "not_found"}


async def test_the_team_list_pages_by_page_number_without_members(client: Client) -> None:
    names = ["Zeta", "Eta", "Alpha"]
    for name in names:
        await new_team(client, name)
    await new_account(client, "alice")
    await call(client, "PUT", "/api/v1/teams/team_0001/members/acc_000001", 204)
    everything = await call(client, "GET", "/api/v1/teams", 200)
    assert [t["name"] for t in everything["teams"]] == names
    assert (everything["page"], everything["per_page"], everything["total"]) == (1, 25, 3)
    assert all("member_ids" not in team for team in everything["teams"])
    assert list(everything["teams"][0]) == [
        "team_id",
        "name",
        "description",
        "ext_ref",
        "created_at",
        "updated_at",
    ]
    second = await call(client, "GET", "/api/v1/teams?page=2&per_page=2", 200)
    assert [t["team_id"] for t in second["teams"]] == ["team_0003"]
    assert (second["page"], second["per_page"], second["total"]) == (2, 2, 3)
    past = await call(client, "GET", "/api/v1/teams?page=9&per_page=2", 200)
    assert (past["teams"], past["total"]) == ([], 3)


async def test_per_page_above_100_is_capped_at_100(client: Client) -> None:
    await new_team(client, "Eng")
    body = await call(client, "GET", "/api/v1/teams?per_page=500", 200)
    assert (body["per_page"], body["total"], len(body["teams"])) == (100, 1, 1)


async def test_the_team_list_filters_on_exact_name_ignoring_case(client: Client) -> None:
    eng = await new_team(client, "Engineering")
    await new_team(client, "Engineering Ops")
    body = await call(client, "GET", "/api/v1/teams?name=engineering", 200)
    del eng["member_ids"]
    assert (body["teams"], body["total"]) == ([eng], 1)
    assert (await call(client, "GET", "/api/v1/teams?name=Eng", 200))["total"] == 0


@pytest.mark.parametrize(
    "query",
    ["page=0", "page=-1", "page=x", "per_page=0", "per_page=2.5", "page=", "page=2147483647"],
)
async def test_a_bad_page_or_per_page_is_a_bad_request(client: Client, query: str) -> None:
    body = await call(client, "GET", f"/api/v1/teams?{query}", 400)
    assert body["error"] == "bad_request"


async def test_put_replaces_name_and_description(client: Client, clock: FakeClock) -> None:
    team = await new_team(client, "Eng", description="Builders")
    clock.advance(60)
    body = await call(client, "PUT", "/api/v1/teams/team_0001", 200, {"team": {"name": "Platform"}})
    assert body == {
        "team": {
            **team,
            "name": "Platform",
            "description": None,
            "updated_at": "2024-05-01T12:01:00Z",
        }
    }
    assert await call(client, "GET", "/api/v1/teams/team_0001", 200) == body


async def test_put_answers_the_current_members(client: Client) -> None:
    await new_team(client, "Eng")
    await new_account(client, "alice")
    await call(client, "PUT", "/api/v1/teams/team_0001/members/acc_000001", 204)
    body = await call(client, "PUT", "/api/v1/teams/team_0001", 200, {"team": {"name": "ENG"}})
    assert (body["team"]["name"], body["team"]["member_ids"]) == ("ENG", ["acc_000001"])


async def test_put_to_a_taken_name_is_a_conflict_and_changes_nothing(client: Client) -> None:
    await new_team(client, "Eng")
    ops = await new_team(client, "Ops")
    body = await call(client, "PUT", "/api/v1/teams/team_0002", 409, {"team": {"name": "eng"}})
    assert body == {"error": "duplicate", "field": "name"}
    assert (await call(client, "GET", "/api/v1/teams/team_0002", 200))["team"] == ops


async def test_an_invalid_put_is_unprocessable_and_changes_nothing(client: Client) -> None:
    eng = await new_team(client, "Eng")
    body = await call(client, "PUT", "/api/v1/teams/team_0001", 422, {"team": {"description": "x"}})
    assert body == {"errors": ["name is required"]}
    assert (await call(client, "GET", "/api/v1/teams/team_0001", 200))["team"] == eng
    assert (await call(client, "PUT", "/api/v1/teams/team_0001", 400, data=b"[]"))[
        "error"
    ] == "bad_request"


async def test_put_on_an_unknown_team_is_not_found(client: Client) -> None:
    body = await call(client, "PUT", "/api/v1/teams/team_0404", 404, {"team": {"name": "x"}})
    assert body == {"error": "not_found"}


async def test_a_deleted_team_is_gone_and_its_members_stay(client: Client) -> None:
    await new_team(client, "Eng")
    alice = await new_account(client, "alice")
    await call(client, "PUT", "/api/v1/teams/team_0001/members/acc_000001", 204)
    await call(client, "DELETE", "/api/v1/teams/team_0001", 204)
    assert await call(client, "GET", "/api/v1/teams/team_0001", 404) == {"error": "not_found"}
    assert await call(client, "DELETE", "/api/v1/teams/team_0001", 404) == {"error": "not_found"}
    assert (await call(client, "GET", "/api/v1/accounts/acc_000001", 200))["account"] == alice
    # The name is free again, and the new team starts empty.
    assert (await new_team(client, "eng"))["member_ids"] == []


# -- team membership ----------------------------------------------------------------------------


async def test_adding_a_member_is_idempotent_and_members_are_in_account_id_order(
    client: Client,
) -> None:
    await new_team(client, "Eng")
    for login in ("a", "b", "c"):
        await new_account(client, login, status="suspended" if login == "b" else "enabled")
    for account_id in ("acc_000003", "acc_000001", "acc_000002", "acc_000001"):
        await call(client, "PUT", f"/api/v1/teams/team_0001/members/{account_id}", 204)
    assert await member_ids(client, "team_0001") == ["acc_000001", "acc_000002", "acc_000003"]


async def test_adding_a_member_to_an_unknown_team_or_an_unknown_account_is_not_found(
    client: Client,
) -> None:
    await new_team(client, "Eng")
    await new_account(client, "alice")
    for path in (
        "/api/v1/teams/team_0404/members/acc_000001",
        "/api/v1/teams/team_0001/members/acc_000404",
        "/api/v1/teams/team_0001/members/ACC_000001",
    ):
        assert await call(client, "PUT", path, 404) == {"error": "not_found"}
    assert await member_ids(client, "team_0001") == []


async def test_removing_a_member_answers_204_also_when_not_a_member(client: Client) -> None:
    await new_team(client, "Eng")
    await new_account(client, "alice")
    await new_account(client, "bob")
    await call(client, "PUT", "/api/v1/teams/team_0001/members/acc_000001", 204)
    await call(client, "PUT", "/api/v1/teams/team_0001/members/acc_000002", 204)
    await call(client, "DELETE", "/api/v1/teams/team_0001/members/acc_000001", 204)
    assert await member_ids(client, "team_0001") == ["acc_000002"]
    await call(client, "DELETE", "/api/v1/teams/team_0001/members/acc_000001", 204)
    await call(client, "DELETE", "/api/v1/teams/team_0001/members/acc_000404", 204)
    assert await member_ids(client, "team_0001") == ["acc_000002"]


async def test_removing_a_member_from_an_unknown_team_is_not_found(client: Client) -> None:
    await new_account(client, "alice")
    path = "/api/v1/teams/team_0404/members/acc_000001"
    assert await call(client, "DELETE", path, 404) == {"error": "not_found"}


# -- storage ------------------------------------------------------------------------------------


async def test_a_database_file_keeps_data_and_counters_across_restarts(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    db = str(tmp_path / "acme.sqlite")
    first = await aiohttp_client(create_legacy_app(db, KEY), headers={"X-Api-Key": KEY})
    alice = await new_account(first, "alice")
    await new_team(first, "Eng")
    await call(first, "PUT", "/api/v1/teams/team_0001/members/acc_000001", 204)
    await first.close()

    second = await aiohttp_client(create_legacy_app(db, KEY), headers={"X-Api-Key": KEY})
    assert (await call(second, "GET", "/api/v1/accounts/acc_000001", 200))["account"] == alice
    assert await member_ids(second, "team_0001") == ["acc_000001"]
    assert (await new_account(second, "bob"))["account_id"] == "acc_000002"


async def test_memory_databases_are_private_to_each_app(aiohttp_client: ClientFactory) -> None:
    one = await aiohttp_client(create_legacy_app(api_key=KEY), headers={"X-Api-Key": KEY})
    two = await aiohttp_client(create_legacy_app(api_key=KEY), headers={"X-Api-Key": KEY})
    await new_account(one, "alice")
    assert await account_total(two) == 0


async def test_the_schema_enforces_uniqueness_and_cascades_by_itself(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    db = str(tmp_path / "acme.sqlite")
    app = await aiohttp_client(create_legacy_app(db, KEY), headers={"X-Api-Key": KEY})
    await new_account(app, "alice", mail="a@x.org")
    await new_team(app, "Eng")
    await call(app, "PUT", "/api/v1/teams/team_0001/members/acc_000001", 204)
    await app.close()
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        for sql in (
            "INSERT INTO accounts (account_id, login, status, created_at, updated_at) "
            "VALUES ('acc_000009', 'ALICE', 'enabled', '', '')",
            "INSERT INTO teams (team_id, name, created_at, updated_at) VALUES ('t', 'ENG', '', '')",
            "INSERT INTO team_members VALUES ('team_0001', 'acc_000404')",
        ):
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(sql)
        conn.execute("DELETE FROM teams")
        assert conn.execute("SELECT count(*) FROM team_members").fetchone() == (0,)
    conn.close()


async def test_a_full_id_space_is_reported_and_creates_nothing(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    db = str(tmp_path / "acme.sqlite")
    app = await aiohttp_client(create_legacy_app(db, KEY), headers={"X-Api-Key": KEY})
    await new_team(app, "Eng")
    await app.close()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE counters SET value = 9999 WHERE name = 'team_'")
    conn.close()

    app = await aiohttp_client(create_legacy_app(db, KEY), headers={"X-Api-Key": KEY})
    body = await call(app, "POST", "/api/v1/teams", 507, {"team": {"name": "Ops"}})
    assert body == {"error": "id_space_exhausted"}
    assert (await call(app, "GET", "/api/v1/teams", 200))["total"] == 1
    await app.close()
    conn = sqlite3.connect(db)
    # The failed request rolled back its counter increment.
    assert conn.execute("SELECT value FROM counters WHERE name = 'team_'").fetchone() == (9999,)
    conn.close()


# -- command line -------------------------------------------------------------------------------


def test_the_command_line_serves_the_given_port_database_and_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served: dict[str, Any] = {}

    def fake_run_app(app: web.Application, **kwargs: Any) -> None:
        served.update(kwargs, app=app)

    monkeypatch.setattr(web, "run_app", fake_run_app)
    made: list[tuple[str, str]] = []
    real = legacy_app.create_legacy_app

    def spy(db_path: str, api_key: str) -> web.Application:
        made.append((db_path, api_key))
        return real(db_path, api_key)

    monkeypatch.setattr(legacy_app, "create_legacy_app", spy)
    monkeypatch.setenv("ACME_HR_API_KEY", "from-env")
    assert legacy_app.main(["--port", "8081", "--db", "acme.sqlite", "--api-key", "KEY"]) == 0
    assert (served["host"], served["port"]) == ("127.0.0.1", 8081)
    assert legacy_app.main([]) == 0
    assert made == [("acme.sqlite", "KEY"), (":memory:", "from-env")]


async def test_an_external_reference_is_kept_and_found_exactly(client: Client) -> None:
    body = {"account": {"login": "ref", "ext_ref": "EXT-1"}}
    created = (await call(client, "POST", "/api/v1/accounts", 201, body))["account"]
    assert created["ext_ref"] == "EXT-1"
    found = await call(client, "GET", "/api/v1/accounts?ext_ref=EXT-1", 200)
    assert [a["account_id"] for a in found["items"]] == [created["account_id"]]
    assert (await call(client, "GET", "/api/v1/accounts?ext_ref=ext-1", 200))["total"] == 0
    team = await call(
        client, "POST", "/api/v1/teams", 201, {"team": {"name": "R", "ext_ref": "T-1"}}
    )
    assert team["team"]["ext_ref"] == "T-1"
