"""Issue 14 against PeopleHub (tests/peoplehub.py), a REST app the project had never seen:
a delete that needs a suspend first, nested fields, the app's error codes, unusable
answers to creates, POST calls safe to repeat, and group names kept unique by the gateway."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from peoplehub import MAPPING, PeopleHub, peoplehub_settings
from rest_support import API_KEY, ServerFactory, closed_port
from support import TOKEN, digest

from adapters.rest import RestAdapter, RestSettings
from adapters.rest.errors import Refused
from gateway.app import build_runtimes, create_app
from gateway.config import ConfigError, parse_settings
from gateway.mapping.engine import load_mapping
from gateway.sdk import UpstreamUnavailable
from gateway.testing import AdapterContract

BASE = "/apps/hub/scim/v2"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]


@pytest.fixture
def hub() -> PeopleHub:
    return PeopleHub()


@pytest.fixture
async def hub_server(aiohttp_server: ServerFactory, hub: PeopleHub) -> TestServer:
    return await aiohttp_server(hub.app())


async def _gateway(aiohttp_client: ClientFactory, server: TestServer, **app: Any) -> Client:
    config = {
        "adapter": "rest",
        "mapping": "tests/peoplehub_mapping",
        "settings": peoplehub_settings(str(server.make_url(""))),
        "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
        **app,
    }
    settings = parse_settings({"apps": {"hub": config}})
    return await aiohttp_client(create_app(settings), headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
async def scim(aiohttp_client: ClientFactory, hub_server: TestServer) -> Client:
    return await _gateway(aiohttp_client, hub_server)


async def _create(scim: Client, login: str = "bjensen", **extra: Any) -> dict[str, Any]:
    body = {
        "schemas": [USER],
        "userName": login,
        "emails": [{"value": f"{login}@example.com", "type": "work", "primary": True}],
        **extra,
    }
    resp = await scim.post(f"{BASE}/Users", json=body)
    assert resp.status == 201, await resp.text()
    created: dict[str, Any] = await resp.json()
    return created


def _patch(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH], "Operations": list(ops)}


# -- delete with a pre-step ----------------------------------------------------------


async def test_a_delete_suspends_the_employee_first_then_deletes_it(
    scim: Client, hub: PeopleHub
) -> None:
    created = await _create(scim)
    hub.calls.clear()
    resp = await scim.delete(f"{BASE}/Users/{created['id']}")
    assert resp.status == 204, await resp.text()
    assert hub.calls == ["POST /employees/{id}/suspend", "DELETE /employees/{id}"]
    assert hub.employees == {}


async def test_a_409_to_a_delete_is_a_409_without_uniqueness_that_names_the_apps_code(
    hub_server: TestServer, hub: PeopleHub
) -> None:
    raw = peoplehub_settings(str(hub_server.make_url("")))
    raw["users"]["delete"] = {"path": "/employees/{id}"}  # no pre-step declared
    adapter = RestAdapter(RestSettings.model_validate(raw), app="hub")
    hub.employees["emp9"] = {"id": "emp9", "login": "x", "status": "active"}
    await adapter.open()
    try:
        with pytest.raises(Refused) as caught:
            await adapter.delete("User", "emp9")
    finally:
        await adapter.aclose()
    body = caught.value.to_json()
    assert (body["status"], "scimType" in body) == ("409", False)
    assert "NOT_SUSPENDED" in body["detail"]
    assert "emp9" in hub.employees


async def test_a_dry_run_of_a_delete_shows_the_pre_step(
    hub_server: TestServer,
) -> None:
    raw = peoplehub_settings(str(hub_server.make_url("")))
    adapter = RestAdapter(RestSettings.model_validate(raw), app="hub")
    calls = adapter.describe_delete("User", "emp1")
    assert [(c.method, c.url.rsplit("/", 2)[-2:]) for c in calls] == [
        ("POST", ["emp1", "suspend"]),
        ("DELETE", ["employees", "emp1"]),
    ]


# -- the app's own error reason --------------------------------------------------------


async def test_the_apps_error_code_reaches_the_detail_and_the_log_but_not_the_value(
    scim: Client, hub: PeopleHub, caplog: pytest.LogCaptureFixture
) -> None:
    value = "REF-TOO-LONG-4711"
    with caplog.at_level(logging.WARNING, logger="adapters.rest"):
        resp = await scim.post(
            f"{BASE}/Users", json={"schemas": [USER], "userName": "bj", "externalId": value}
        )
    body = await resp.json()
    assert (resp.status, body["status"], body["scimType"]) == (400, "400", "invalidValue")
    assert "TOO_LONG (field employee_ref)" in body["detail"]
    assert "POST /employees" in body["detail"]
    logged = [r.getMessage() for r in caplog.records if r.name == "adapters.rest"]
    assert "the app answered POST /employees with 422: TOO_LONG (field employee_ref)" in logged
    for text in (body["detail"], *logged):
        assert value not in text and API_KEY not in text
    assert hub.employees == {}


async def test_a_code_that_is_not_a_short_token_is_left_out(
    hub_server: TestServer, hub: PeopleHub
) -> None:
    from adapters.rest.errors import app_codes

    assert app_codes({"errors": [{"code": "TOO_LONG", "field": "employee_ref"}]}) == [
        "TOO_LONG (field employee_ref)"
    ]
    assert app_codes({"error": {"code": "a value with spaces", "field": "login"}}) == [
        "field login"
    ]
    assert app_codes({"code": "NOT_SUSPENDED"}) == ["NOT_SUSPENDED"]
    assert app_codes(["plain text"]) == []


# -- nested legacy fields --------------------------------------------------------------


async def test_a_nested_field_is_written_as_an_object_and_read_back(
    scim: Client, hub: PeopleHub
) -> None:
    created = await _create(scim)
    (employee,) = hub.employees.values()
    assert employee["contact"] == {"email": "bjensen@example.com"}
    assert created["emails"] == [{"value": "bjensen@example.com", "type": "work"}]


async def test_a_filter_on_a_nested_field_is_pushed_down(scim: Client, hub: PeopleHub) -> None:
    created = await _create(scim)
    await _create(scim, "other")
    hub.calls.clear()
    resp = await scim.get(
        f"{BASE}/Users", params={"filter": 'emails.value eq "BJENSEN@example.com"'}
    )
    body = await resp.json()
    assert resp.status == 200, body
    assert [r["id"] for r in body["Resources"]] == [created["id"]]
    assert hub.calls == ["GET /employees"]  # answered by ?email=, not by a scan


async def test_changing_a_nested_field_keeps_the_objects_other_fields(
    scim: Client, hub: PeopleHub
) -> None:
    created = await _create(scim)
    hub.employees[created["id"]]["contact"]["phone"] = "+1 555 0100"
    op = {"op": "replace", "path": 'emails[type eq "work"].value', "value": "new@example.com"}
    resp = await scim.patch(f"{BASE}/Users/{created['id']}", json=_patch(op))
    assert resp.status == 200, await resp.text()
    contact = hub.employees[created["id"]]["contact"]
    assert contact == {"email": "new@example.com", "phone": "+1 555 0100"}


# -- unusable answers to creates ---------------------------------------------------------


async def test_an_unusable_answer_to_a_create_is_unknown_and_the_retry_looks_up_first(
    scim: Client, hub: PeopleHub
) -> None:
    hub.garbage_creates = True
    resp = await scim.post(f"{BASE}/Users", json={"schemas": [USER], "userName": "bjensen"})
    body = await resp.json()
    assert resp.status == 502, body
    assert "unknown" in body["detail"]
    assert len(hub.employees) == 1  # the app stored it
    hub.garbage_creates = False
    hub.calls.clear()
    resp = await scim.post(f"{BASE}/Users", json={"schemas": [USER], "userName": "bjensen"})
    body = await resp.json()
    assert (resp.status, body["scimType"]) == (409, "uniqueness")
    assert hub.calls == ["GET /employees"]  # looked up, not sent again
    assert len(hub.employees) == 1


# -- POST calls declared safe to repeat --------------------------------------------------


async def test_a_post_declared_safe_to_repeat_is_retried(scim: Client, hub: PeopleHub) -> None:
    created = await _create(scim)
    hub.busy["/employees/{id}/suspend"] = 1
    hub.calls.clear()
    op = {"op": "replace", "path": "active", "value": False}
    resp = await scim.patch(f"{BASE}/Users/{created['id']}", json=_patch(op))
    assert resp.status == 200, await resp.text()
    assert hub.calls.count("POST /employees/{id}/suspend") == 2
    assert hub.employees[created["id"]]["status"] == "suspended"


async def test_a_create_is_not_retried_after_a_503(scim: Client, hub: PeopleHub) -> None:
    hub.busy["/employees"] = 1
    resp = await scim.post(f"{BASE}/Users", json={"schemas": [USER], "userName": "bj"})
    assert resp.status == 503
    assert hub.calls.count("POST /employees") == 1


# -- group names -------------------------------------------------------------------------


async def _group(scim: Client, name: str) -> Any:
    return await scim.post(f"{BASE}/Groups", json={"schemas": [GROUP], "displayName": name})


async def test_a_taken_group_name_is_409_uniqueness_though_the_app_allows_it(
    scim: Client, hub: PeopleHub
) -> None:
    assert (await _group(scim, "Engineering")).status == 201
    resp = await _group(scim, "ENGINEERING")
    body = await resp.json()
    assert (resp.status, body["scimType"]) == (409, "uniqueness")
    assert len(hub.groups) == 1


async def test_renaming_a_group_to_a_taken_name_is_409_and_changes_nothing(
    scim: Client, hub: PeopleHub
) -> None:
    await _group(scim, "Engineering")
    sales = await (await _group(scim, "Sales")).json()
    op = {"op": "replace", "path": "displayName", "value": "engineering"}
    resp = await scim.patch(f"{BASE}/Groups/{sales['id']}", json=_patch(op))
    assert (resp.status, (await resp.json())["scimType"]) == (409, "uniqueness")
    assert hub.groups[sales["id"]]["name"] == "Sales"
    keep = {"op": "replace", "path": "displayName", "value": "Sales"}  # its own name: fine
    assert (await scim.patch(f"{BASE}/Groups/{sales['id']}", json=_patch(keep))).status == 204


async def test_an_app_may_allow_groups_of_the_same_name(
    aiohttp_client: ClientFactory, hub_server: TestServer, hub: PeopleHub
) -> None:
    scim = await _gateway(aiohttp_client, hub_server, unique_group_names=False)
    assert (await _group(scim, "Engineering")).status == 201
    assert (await _group(scim, "Engineering")).status == 201
    assert len(hub.groups) == 2


class TestRestAdapterOnPeopleHub(AdapterContract):
    """PeopleHub keeps no group name unique: the adapter does (unique_group_names)."""

    @pytest.fixture
    async def adapter(self, hub_server: TestServer) -> AsyncIterator[RestAdapter]:
        raw = peoplehub_settings(str(hub_server.make_url("")))
        adapter = RestAdapter(
            RestSettings.model_validate(raw), app="hub", mapping=load_mapping(MAPPING)
        )
        await adapter.open()
        yield adapter
        await adapter.aclose()

    user_name_field = "login"
    group_name_field = "name"

    def user_data(self, n: int) -> dict[str, Any]:
        return {"login": f"contract.user{n}@example.com", "employee_ref": f"r{n}"}

    def group_data(self, n: int) -> dict[str, Any]:
        return {"name": f"Contract Group {n}"}


async def test_a_call_that_cannot_reach_the_app_is_logged_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = closed_port()
    raw = peoplehub_settings(f"http://127.0.0.1:{port}")
    raw["retry"] = {"attempts": 1}
    adapter = RestAdapter(RestSettings.model_validate(raw), app="hub")
    await adapter.open()
    try:
        with (
            caplog.at_level(logging.WARNING, logger="adapters.rest"),
            pytest.raises(UpstreamUnavailable),
        ):
            await adapter.get("User", "emp1")
    finally:
        await adapter.aclose()
    logged = [r.getMessage() for r in caplog.records if r.name == "adapters.rest"]
    assert logged == [
        f"the call GET /employees/{{id}} failed: cannot reach the app at 127.0.0.1:{port}: "
        "connection refused"
    ]


async def test_a_delete_that_fails_after_its_pre_step_says_what_was_done(
    hub_server: TestServer, hub: PeopleHub
) -> None:
    raw = peoplehub_settings(str(hub_server.make_url("")))
    adapter = RestAdapter(RestSettings.model_validate(raw), app="hub")
    hub.employees["emp9"] = {"id": "emp9", "login": "x", "status": "active"}
    hub.busy["/employees/{id}"] = 10  # the DELETE keeps failing; the suspend is served
    await adapter.open()
    try:
        with pytest.raises(UpstreamUnavailable) as caught:
            await adapter.delete("User", "emp9")
    finally:
        await adapter.aclose()
    assert caught.value.detail.startswith(
        "User emp9: POST /employees/{id}/suspend done, then delete failed: the app is busy"
    )
    assert (caught.value.steps_done, caught.value.failed_step) == (
        ("POST /employees/{id}/suspend",),
        "delete",
    )
    assert hub.employees["emp9"]["status"] == "suspended"


def test_an_app_whose_groups_cannot_be_found_by_name_fails_its_check(
    hub_server: TestServer,
) -> None:
    settings = peoplehub_settings(str(hub_server.make_url("")))
    del settings["groups"]["filters"]
    app = {
        "adapter": "rest",
        "mapping": "tests/peoplehub_mapping",
        "settings": settings,
        "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
    }
    with pytest.raises(ConfigError, match=r"apps\.hub\.unique_group_names: the adapter cannot"):
        build_runtimes(parse_settings({"apps": {"hub": app}}))
    # Allowing duplicate names, it starts.
    assert "hub" in build_runtimes(
        parse_settings({"apps": {"hub": {**app, "unique_group_names": False}}})
    )
