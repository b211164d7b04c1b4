"""The dry run describes exactly the calls the adapter sends, with every secret masked."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from rest_support import (
    API_KEY,
    MAPPING,
    Opener,
    Recorder,
    ServerFactory,
    json_response,
    make_adapter,
    make_settings,
    opened_fixture,  # noqa: F401 - the `opened` fixture
    user_section,
)
from yarl import URL

from adapters.rest import RestAdapter
from gateway.sdk import LegacyCall


class Store:
    """Users under /api/u and groups under /api/g, members per member; records requests."""

    def __init__(self) -> None:
        self.recorder = Recorder()
        self.data: dict[str, dict[str, Any]] = {}

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder.middleware])
        app.router.add_post("/api/{kind}", self.create)
        app.router.add_route("*", "/api/{kind}/{id}", self.item)
        app.router.add_route("*", "/api/g/{id}/m/{member}", self.member)
        return app

    async def create(self, request: web.Request) -> web.Response:
        id = f"{request.match_info['kind']}{len(self.data) + 1}"
        self.data[id] = {"id": id, "members": [], **(await request.json())["rec"]}
        return json_response({"rec": self.data[id]}, 201)

    async def item(self, request: web.Request) -> web.Response:
        record = self.data[request.match_info["id"]]
        if request.method == "PATCH":
            record.update((await request.json())["rec"])
        if request.method == "DELETE":
            return web.Response(status=204)
        return json_response({"rec": record})

    async def member(self, request: web.Request) -> web.Response:
        members = self.data[request.match_info["id"]]["members"]
        if request.method == "PUT":
            members.append(request.match_info["member"])
        else:
            members.remove(request.match_info["member"])
        return web.Response(status=204)


def _section(kind: str, **more: Any) -> dict[str, Any]:
    return {
        "get": {"path": f"/{kind}/{{id}}", "record": "rec"},
        "list": {"path": f"/{kind}", "paging": {"style": "none"}},
        "create": {"path": f"/{kind}", "body_root": "rec", "record": "rec"},
        "update": {"path": f"/{kind}/{{id}}", "body_root": "rec", "record": "rec"},
        "delete": {"path": f"/{kind}/{{id}}"},
        "read_only": ["id", "members"],
        **more,
    }


GROUPS = _section(
    "g",
    members={
        "read": {"field": "members"},
        "add": {"method": "PUT", "path": "/g/{id}/m/{member}"},
        "remove": {"method": "DELETE", "path": "/g/{id}/m/{member}"},
    },
)


def _sent(recorder: Recorder, base: URL) -> list[tuple[str, str, Any, dict[str, str]]]:
    out = []
    for seen in recorder.calls:
        url = str(base.with_path(seen.raw_path, encoded=True).with_query(seen.query or None))
        headers = {k: v for k, v in seen.headers.items() if k in ("X-Api-Key", "Content-Type")}
        out.append((seen.method, url, seen.body, headers))
    return out


def _described(calls: list[LegacyCall]) -> list[tuple[str, str, Any, dict[str, str]]]:
    out = []
    for call in calls:
        headers = {k: v for k, v in call.headers.items() if k in ("X-Api-Key", "Content-Type")}
        headers = {k: API_KEY if v == "****" else v for k, v in headers.items()}
        out.append((call.method, call.url, call.body, headers))
    return out


async def test_each_description_matches_what_is_sent(
    aiohttp_server: ServerFactory, opened: Opener
) -> None:
    store = Store()
    server = await aiohttp_server(store.app())
    base = server.make_url("")
    adapter = await opened(
        make_adapter(str(base.with_path("/api")), users=_section("u"), groups=GROUPS)
    )
    # The look-up of a group's name before its create is not part of a dry run.
    adapter.unique_group_names = False
    user = await adapter.create("User", {"login": "ann"})

    described = adapter.describe_update("User", user.id, {"login": "anna"})
    store.recorder.clear()
    await adapter.update("User", user.id, {"login": "anna"})
    assert _described(described) == _sent(store.recorder, base)[:1]

    described = adapter.describe_create("Group", {"name": "Eng"}, [user.id])
    store.recorder.clear()
    group = await adapter.create("Group", {"name": "Eng"}, members=[user.id])
    sent = _sent(store.recorder, base)
    assert _described(described)[0] == sent[0]
    member_call = _described(described)[1]
    assert member_call[1].replace("{new id}", group.id) == sent[1][1]

    described = adapter.describe_members(group.id, [], [user.id], current=[user.id])
    store.recorder.clear()
    await adapter.remove_members(group.id, [user.id])
    assert _described(described) == _sent(store.recorder, base)[1:]  # after the members read

    described = adapter.describe_delete("User", user.id)
    store.recorder.clear()
    await adapter.delete("User", user.id)
    assert _described(described) == _sent(store.recorder, base)


def test_a_dry_run_needs_no_connection() -> None:
    adapter = make_adapter("http://127.0.0.1:1/api", users=_section("u"), groups=GROUPS)
    calls = adapter.describe_create("User", {"login": "ann"})
    assert calls == [
        LegacyCall(
            "POST",
            "http://127.0.0.1:1/api/u",
            {"Accept": "application/json", "X-Api-Key": "****", "Content-Type": "application/json"},
            {"rec": {"login": "ann"}},
        )
    ]


def test_without_current_members_the_reading_call_comes_first() -> None:
    adapter = make_adapter("http://127.0.0.1:1/api", users=_section("u"), groups=GROUPS)
    calls = adapter.describe_members("g1", ["u1"], ["u2"])
    assert [(c.method, c.url) for c in calls] == [
        ("GET", "http://127.0.0.1:1/api/g/g1"),
        ("DELETE", "http://127.0.0.1:1/api/g/g1/m/u2"),
        ("PUT", "http://127.0.0.1:1/api/g/g1/m/u1"),
    ]


SECRETS = ["b34rer-t0ken", "ba5ic-passw0rd", "cl13nt-s3cret", "h34der-s3cret", "qu3ry-s3cret"]


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "api_key", "header": "X-Api-Key", "key": API_KEY},
        {"type": "bearer", "token": "b34rer-t0ken"},
        {"type": "basic", "username": "gw", "password": "ba5ic-passw0rd"},
        {
            "type": "oauth2",
            "token_url": "http://127.0.0.1:1/token",
            "client_id": "gw",
            "client_secret": "cl13nt-s3cret",
        },
    ],
    ids=lambda a: a["type"],
)
def test_no_secret_shows_in_a_description(
    auth: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADER_SECRET", "h34der-s3cret")
    monkeypatch.setenv("QUERY_SECRET", "qu3ry-s3cret")
    users = user_section(
        create={"path": "/items", "query": {"key": "${env:QUERY_SECRET}", "mode": "fast"}}
    )
    adapter = RestAdapter(
        make_settings(
            "http://127.0.0.1:1/api",
            auth=auth,
            users=users,
            headers={"X-Extra": "${env:HEADER_SECRET}"},
        ),
        mapping=MAPPING,
    )
    calls = adapter.describe_create("User", {"login": "ann"})
    text = repr(calls)
    for secret in [API_KEY, *SECRETS]:
        assert secret not in text
    assert calls[0].url == "http://127.0.0.1:1/api/items?key=****&mode=fast"
    assert calls[0].headers["X-Extra"] == "****"
    masked = [v for k, v in calls[0].headers.items() if k in ("Authorization", "X-Api-Key")]
    assert masked in (["****"], ["Bearer ****"], ["Basic ****"])
