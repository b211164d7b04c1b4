"""What the REST adapter takes from a record besides its fields: timestamps, and whole
records where the list's items are incomplete (``list.read_each``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from rest_support import (
    Opener,
    Recorder,
    ServerFactory,
    json_response,
    make_adapter,
    opened_fixture,  # noqa: F401 - the `opened` fixture
    user_section,
)
from scim2_models.path import ScimFilter

from gateway.mapping.engine import TemplateMapping, load_mapping
from gateway.sdk import Query

USER_YAML = """\
record_fields: [id, login, status, created, changed]
to_legacy:
  login: "{{ userName }}"
  status: "{{ 'off' if active is false else 'on' }}"
from_legacy:
  userName: "{{ record.login }}"
  active: "{{ record.status == 'on' }}"
fields:
  id: id
  userName: login
  meta.created: created
  meta.lastModified: changed
"""

FULL = {
    "1": {"id": 1, "login": "ann", "status": "off", "created": "2024-05-01T12:00:00Z"},
    "2": {"id": 2, "login": "bob", "status": "on", "changed": "2024-05-02T08:30:00"},
    "3": {"id": 3, "login": "cy", "status": "on", "created": "last tuesday"},
}


class Listing:
    """Users whose list items lack ``status`` and timestamps; ``GET /users/{id}`` has all."""

    def __init__(self) -> None:
        self.recorder = Recorder()
        self.gone: set[str] = set()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder.middleware])
        app.router.add_get("/users", self.list)
        app.router.add_get("/users/{id}", self.get)
        return app

    async def list(self, request: web.Request) -> web.Response:
        items = [{"id": r["id"], "login": r["login"]} for r in FULL.values()]
        login = request.query.get("login")
        if login is not None:
            items = [i for i in items if i["login"] == login]
        return json_response({"items": items, "total": len(items)})

    async def get(self, request: web.Request) -> web.Response:
        id = request.match_info["id"]
        if id in self.gone or id not in FULL:
            return json_response({"error": "not_found"}, 404)
        return json_response(FULL[id])


def mapping(tmp_path: Any) -> TemplateMapping:
    (tmp_path / "user.yaml").write_text(USER_YAML)
    return load_mapping(tmp_path)


def users(read_each: bool) -> dict[str, Any]:
    return user_section(
        get={"path": "/users/{id}"},
        list={
            "path": "/users",
            "items": "items",
            "total": "total",
            "paging": {"style": "offset"},
            "read_each": read_each,
        },
        filters={"login": {"eq": "login"}},
    )


async def test_meta_created_and_last_modified_come_from_the_fields_the_mapping_names(
    aiohttp_server: ServerFactory, opened: Opener, tmp_path: Any
) -> None:
    server = await aiohttp_server(Listing().app())
    adapter = await opened(
        make_adapter(str(server.make_url("")), mapping(tmp_path), users=users(False))
    )
    ann, bob, cy = [await adapter.get("User", id) for id in ("1", "2", "3")]
    assert ann.created == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert ann.last_modified is None
    assert bob.last_modified == datetime(2024, 5, 2, 8, 30, tzinfo=UTC)  # naive: UTC
    assert cy.created is None  # not a timestamp: left out rather than guessed


async def test_without_read_each_a_search_gives_the_list_items_as_they_are(
    aiohttp_server: ServerFactory, opened: Opener, tmp_path: Any
) -> None:
    api = Listing()
    server = await aiohttp_server(api.app())
    adapter = await opened(
        make_adapter(str(server.make_url("")), mapping(tmp_path), users=users(False))
    )
    page = await adapter.search(Query("User"))
    assert [r.data.get("status") for r in page.records] == [None, None, None]
    assert api.recorder.paths() == ["/users"]


async def test_with_read_each_every_listed_record_is_read_whole(
    aiohttp_server: ServerFactory, opened: Opener, tmp_path: Any
) -> None:
    api = Listing()
    server = await aiohttp_server(api.app())
    adapter = await opened(
        make_adapter(str(server.make_url("")), mapping(tmp_path), users=users(True))
    )
    page = await adapter.search(Query("User", count=2))
    assert [(r.id, r.data["status"]) for r in page.records] == [("1", "off"), ("2", "on")]
    assert page.records[0].created == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert page.total == 3
    assert api.recorder.paths() == ["/users", "/users/1", "/users/2"]


async def test_with_read_each_a_filter_is_checked_on_whole_records(
    aiohttp_server: ServerFactory, opened: Opener, tmp_path: Any
) -> None:
    """`active` is not in the list items: checked on the record read whole, it is right."""
    api = Listing()
    server = await aiohttp_server(api.app())
    adapter = await opened(
        make_adapter(str(server.make_url("")), mapping(tmp_path), users=users(True))
    )
    for text, found in (
        ('userName eq "ann" and active eq false', ["1"]),
        ('userName eq "ann" and active eq true', []),
    ):
        page = await adapter.search(Query("User", ScimFilter(text).ast))
        assert [r.id for r in page.records] == found, text


async def test_with_read_each_a_record_removed_meanwhile_is_left_out(
    aiohttp_server: ServerFactory, opened: Opener, tmp_path: Any
) -> None:
    api = Listing()
    api.gone.add("2")
    server = await aiohttp_server(api.app())
    adapter = await opened(
        make_adapter(str(server.make_url("")), mapping(tmp_path), users=users(True))
    )
    page = await adapter.search(Query("User"))
    assert [r.id for r in page.records] == ["1", "3"]
