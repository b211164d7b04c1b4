"""The calls the REST adapter builds: ids in paths, bodies, (de)activation, reads after writes."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from rest_support import (
    API_KEY,
    Opener,
    Recorder,
    ServerFactory,
    json_response,
    make_adapter,
    opened_fixture,  # noqa: F401 - the `opened` fixture
    user_section,
)

from adapters.rest import RestAdapter
from gateway.sdk import InvalidValue, NotFound, UpstreamError


class Items:
    """A tiny API of records under /api/items, recording every request."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.recorder = Recorder()
        self.matched: list[str] = []  # the ids the router decoded from the paths

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder.middleware])
        app.router.add_route("*", "/api/items", self.collection)
        app.router.add_route("*", "/api/items/{id}", self.item)
        app.router.add_route("*", "/api/items/{id}/{action}", self.action)
        return app

    async def collection(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            body = await request.json()
            id = str(len(self.records) + 1)
            self.records[id] = {"id": id, **body}
            if request.query.get("quiet"):
                return web.Response(status=201, headers={"Location": f"/api/items/{id}"})
            return json_response(self.records[id], 201)
        return json_response({"items": list(self.records.values())})

    async def item(self, request: web.Request) -> web.Response:
        id = request.match_info["id"]
        self.matched.append(id)
        if id not in self.records:
            return json_response({"error": "not_found"}, 404)
        if request.method in ("PATCH", "PUT"):
            body = await request.json()
            if request.method == "PUT":
                self.records[id] = {"id": id}
            self.records[id].update(body)
            return web.Response(status=204)
        if request.method == "DELETE":
            del self.records[id]
            return web.Response(status=204)
        return json_response(self.records[id])

    async def action(self, request: web.Request) -> web.Response:
        self.matched.append(request.match_info["id"])
        record = self.records[request.match_info["id"]]
        record["status"] = "off" if request.match_info["action"] == "disable" else "on"
        return web.Response(status=204)


async def items_adapter(
    aiohttp_server: ServerFactory, opened: Opener, items: Items, **users: Any
) -> RestAdapter:
    server = await aiohttp_server(items.app())
    base = str(server.make_url("/api"))
    return await opened(make_adapter(base, users=user_section(**users)))


@pytest.mark.parametrize(
    "id,raw",
    [
        ("a/b", "a%2Fb"),
        ("..", "%2E%2E"),
        (".", "%2E"),
        ("%2F", "%252F"),
        ("x?y=1", "x%3Fy%3D1"),
        ("x#y", "x%23y"),
        ("../../admin", "..%2F..%2Fadmin"),
        ("ü ber", "%C3%BC%20ber"),
    ],
)
async def test_an_id_stays_inside_one_path_segment(
    aiohttp_server: ServerFactory, opened: Opener, id: str, raw: str
) -> None:
    items = Items()
    adapter = await items_adapter(aiohttp_server, opened, items)
    with pytest.raises(NotFound):
        await adapter.get("User", id)
    with pytest.raises(NotFound):
        await adapter.delete("User", id)
    assert items.recorder.paths() == [f"/api/items/{raw}"] * 2
    assert items.matched == [id, id]


async def test_an_empty_id_is_not_found_without_a_call(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    items = Items()
    adapter = await items_adapter(aiohttp_server, opened, items)
    with pytest.raises(NotFound):
        await adapter.get("User", "")
    assert items.recorder.calls == []


async def test_an_update_without_a_record_in_the_answer_reads_it_back(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    items = Items()
    adapter = await items_adapter(aiohttp_server, opened, items)
    created = await adapter.create("User", {"login": "ann", "title": "x"})
    updated = await adapter.update("User", created.id, {"login": "anna", "title": None})
    assert updated.data == {"id": "1", "login": "anna", "title": None}
    assert [c.method for c in items.recorder.calls] == ["POST", "PATCH", "GET"]
    assert items.recorder.calls[1].body == {"login": "anna", "title": None}


async def test_send_full_sends_the_whole_record_with_the_changes(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    items = Items()
    adapter = await items_adapter(
        aiohttp_server,
        opened,
        items,
        update={"method": "PUT", "path": "/items/{id}", "send": "full"},
        read_only=["created"],
    )
    created = await adapter.create("User", {"login": "ann", "title": "x", "dept": "d"})
    items.records[created.id]["created"] = "2024-01-01"
    await adapter.update("User", created.id, {"title": "y", "dept": None})
    put = next(c for c in items.recorder.calls if c.method == "PUT")
    assert put.body == {"login": "ann", "title": "y"}


async def test_a_create_answered_with_only_a_location_reads_the_record(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    items = Items()
    adapter = await items_adapter(
        aiohttp_server, opened, items, create={"path": "/items", "query": {"quiet": "1"}}
    )
    created = await adapter.create("User", {"login": "ann"})
    assert (created.id, created.data["login"]) == ("1", "ann")
    assert items.recorder.paths() == ["/api/items", "/api/items/1"]


async def test_a_create_answered_with_neither_record_nor_location_is_a_502(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    async def empty(request: web.Request) -> web.Response:
        return web.Response(status=201)

    app = web.Application()
    app.router.add_post("/api/items", empty)
    server = await aiohttp_server(app)
    adapter = await opened(make_adapter(str(server.make_url("/api"))))
    with pytest.raises(UpstreamError, match="neither a record nor a Location"):
        await adapter.create("User", {"login": "ann"})


async def test_deactivation_may_use_endpoints_of_its_own(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    items = Items()
    deactivation = {
        "field": "status",
        "inactive": "off",
        "deactivate": {"method": "POST", "path": "/items/{id}/disable"},
        "activate": {"method": "POST", "path": "/items/{id}/enable"},
    }
    adapter = await items_adapter(aiohttp_server, opened, items, deactivation=deactivation)
    created = await adapter.create("User", {"login": "ann"})
    items.recorder.clear()
    off = await adapter.update("User", created.id, {"status": "off", "title": "gone"})
    assert off.data["status"] == "off"
    assert [(c.method, c.raw_path, c.body) for c in items.recorder.calls] == [
        ("PATCH", "/api/items/1", {"title": "gone"}),
        ("POST", "/api/items/1/disable", None),
        ("GET", "/api/items/1", None),
    ]
    items.recorder.clear()
    on = await adapter.update("User", created.id, {"status": "on"})
    assert on.data["status"] == "on"
    assert items.recorder.paths("POST") == ["/api/items/1/enable"]


async def test_a_fixed_body_is_sent_around_the_record(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    items = Items()
    create = {"path": "/items", "body": {"notify": False}, "body_root": "rec"}
    adapter = await items_adapter(aiohttp_server, opened, items, create=create)
    await adapter.create("User", {"login": "ann"})
    assert items.recorder.calls[0].body == {"notify": False, "rec": {"login": "ann"}}


async def test_read_only_fields_are_never_sent(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    items = Items()
    adapter = await items_adapter(aiohttp_server, opened, items, read_only=["id", "created"])
    await adapter.create("User", {"login": "ann", "id": "99", "created": "now"})
    assert items.recorder.calls[0].body == {"login": "ann"}


async def test_requests_carry_the_configured_headers(
    aiohttp_server: ServerFactory, opened: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TENANT_SECRET", "t3nant-s3cret")
    items = Items()
    server = await aiohttp_server(items.app())
    adapter = await opened(
        make_adapter(
            str(server.make_url("/api")),
            headers={"X-Tenant": "acme", "X-Tenant-Key": "${env:TENANT_SECRET}"},
        )
    )
    await adapter.create("User", {"login": "ann"})
    sent = items.recorder.calls[0].headers
    assert (sent["X-Tenant"], sent["X-Tenant-Key"], sent["X-Api-Key"]) == (
        "acme",
        "t3nant-s3cret",
        API_KEY,
    )
    assert sent["Content-Type"] == "application/json"


# -- groups: members read by a call of their own, created with members ----------------


class Teams:
    def __init__(self) -> None:
        self.teams: dict[str, dict[str, Any]] = {}
        self.members: dict[str, list[str]] = {}
        self.known = {"u1", "u2", "u3"}
        self.recorder = Recorder()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder.middleware])
        app.router.add_post("/api/teams", self.create)
        app.router.add_get("/api/teams/{id}", self.get)
        app.router.add_get("/api/teams/{id}/people", self.people)
        app.router.add_route("*", "/api/teams/{id}/people/{member}", self.person)
        return app

    async def create(self, request: web.Request) -> web.Response:
        id = f"t{len(self.teams) + 1}"
        self.teams[id] = {"key": id, **(await request.json())}
        self.members[id] = []
        return json_response(self.teams[id], 201)

    async def get(self, request: web.Request) -> web.Response:
        id = request.match_info["id"]
        if id not in self.teams:
            return json_response({}, 404)
        return json_response(self.teams[id])

    async def people(self, request: web.Request) -> web.Response:
        id = request.match_info["id"]
        if id not in self.teams:
            return json_response({}, 404)
        page = int(request.query.get("page", "1"))
        chunk = self.members[id][(page - 1) * 2 : page * 2]
        return json_response({"people": [{"uid": m, "nick": m.upper()} for m in chunk]})

    async def person(self, request: web.Request) -> web.Response:
        team, member = request.match_info["id"], request.match_info["member"]
        if member not in self.known:
            return json_response({"error": "no such person"}, 404)
        if request.method == "PUT" and member not in self.members[team]:
            self.members[team].append(member)
        elif request.method == "DELETE" and member in self.members[team]:
            self.members[team].remove(member)
        return web.Response(status=204)


def _teams_section() -> dict[str, Any]:
    return {
        "id_field": "key",
        "get": {"path": "/teams/{id}"},
        "list": {"path": "/teams", "paging": {"style": "none"}},
        "create": {"path": "/teams"},
        "update": {"path": "/teams/{id}"},
        "delete": {"path": "/teams/{id}"},
        "members": {
            "read": {
                "path": "/teams/{id}/people",
                "items": "people",
                "id": "uid",
                "display": "nick",
                "paging": {"style": "page", "size": 2, "per_page": "size"},
            },
            "add": {"method": "PUT", "path": "/teams/{id}/people/{member}"},
            "remove": {"method": "DELETE", "path": "/teams/{id}/people/{member}"},
        },
    }


async def teams_adapter(aiohttp_server: ServerFactory, opened: Opener, teams: Teams) -> RestAdapter:
    server = await aiohttp_server(teams.app())
    adapter = make_adapter(str(server.make_url("/api")), groups=_teams_section())
    adapter.unique_group_names = False  # this API lists no teams: no name look-up
    return await opened(adapter)


async def test_members_may_be_read_by_a_paged_call_of_their_own(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    teams = Teams()
    adapter = await teams_adapter(aiohttp_server, opened, teams)
    team = await adapter.create("Group", {"name": "Eng"}, members=["u1", "u2", "u3"])
    assert [(m.value, m.display) for m in team.members or ()] == [
        ("u1", "U1"),
        ("u2", "U2"),
        ("u3", "U3"),
    ]
    await adapter.remove_members(team.id, ["u2"])
    assert [m.value for m in (await adapter.get("Group", team.id)).members or ()] == ["u1", "u3"]


async def test_a_group_whose_members_cannot_be_added_says_it_was_created(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    teams = Teams()
    adapter = await teams_adapter(aiohttp_server, opened, teams)
    with pytest.raises(InvalidValue) as caught:
        await adapter.create("Group", {"name": "Eng"}, members=["u1", "nobody"])
    assert caught.value.detail.startswith(
        "the group was created (id t1) but its members were not added:"
    )
    assert isinstance(caught.value.__cause__, InvalidValue)
    assert "t1" in teams.teams


async def test_members_of_an_unknown_group_are_not_found(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    adapter = await teams_adapter(aiohttp_server, opened, Teams())
    with pytest.raises(NotFound):
        await adapter.add_members("t404", ["u1"])
