"""A legacy REST app that enforces no uniqueness and can be told to misbehave, on loopback.

Users live at ``/items`` (the shape of ``rest_support.user_section``), with
``?login=`` as their only filter and ``POST /items/{id}/disable`` and
``/enable`` as a separate deactivation endpoint (the field is ``active``);
groups at ``/groups`` with ``PUT``/``DELETE /groups/{id}/members/{member}``.
Nothing stops two users with one login: that is what the gateway must guard
against.

Faults, set on :attr:`LaxApp.faults` (each used once unless said otherwise):

* ``hang_create``: store the user, then never answer (until the test ends);
* ``drop_create``: store the user, then close the connection without an answer;
* ``garbage_create``: store the user, then answer 201 with a body that is not JSON;
* ``hang_delete``: delete the user, then never answer;
* ``fail_disable``: answer 500 to the deactivation call;
* ``fail_member_add``: answer 500 to the member add call.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from aiohttp import web
from rest_support import API_KEY, Recorder, json_response

#: The mapping directory (user.yaml, group.yaml) for this app.
LAX_MAPPING = Path(__file__).parent / "lax-mapping"


def lax_settings(base_url: str) -> dict[str, Any]:
    """The REST adapter's ``settings:`` section for a :class:`LaxApp` at ``base_url``."""
    users: dict[str, Any] = {
        "id_field": "id",
        "read_only": ["id"],
        "get": {"path": "/items/{id}", "record": "item"},
        "list": {
            "path": "/items",
            "items": "items",
            "total": "total",
            "paging": {"style": "offset"},
        },
        "filters": {"login": {"eq": {"param": "login"}}},
        "create": {"path": "/items", "body_root": "item", "record": "item"},
        "update": {"path": "/items/{id}", "body_root": "item", "record": "item"},
        "delete": {"path": "/items/{id}"},
        "deactivation": {
            "field": "active",
            "inactive": False,
            "deactivate": {"method": "POST", "path": "/items/{id}/disable"},
            "activate": {"method": "POST", "path": "/items/{id}/enable"},
        },
    }
    groups: dict[str, Any] = {
        "id_field": "id",
        "read_only": ["id", "member_ids"],
        "get": {"path": "/groups/{id}", "record": "group"},
        "list": {"path": "/groups", "items": "groups", "paging": {"style": "none"}},
        "filters": {"name": {"eq": {"param": "name"}}},
        "create": {"path": "/groups", "body_root": "group", "record": "group"},
        "update": {"method": "PUT", "path": "/groups/{id}", "body_root": "group"},
        "delete": {"path": "/groups/{id}"},
        "members": {
            "read": {"field": "member_ids"},
            "add": {"method": "PUT", "path": "/groups/{id}/members/{member}"},
            "remove": {"method": "DELETE", "path": "/groups/{id}/members/{member}"},
        },
    }
    return {
        "base_url": base_url,
        "auth": {"type": "api_key", "header": "X-Api-Key", "key": API_KEY},
        "users": users,
        "groups": groups,
    }


class LaxApp:
    def __init__(self) -> None:
        self.users: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self.faults: set[str] = set()
        self.seen = Recorder()
        self._ids = itertools.count(1)
        self._hung: list[asyncio.Event] = []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.seen.middleware, self._auth])
        r = app.router
        r.add_get("/items", self.list_users)
        r.add_post("/items", self.create_user)
        r.add_get("/items/{id}", self.get_user)
        r.add_patch("/items/{id}", self.update_user)
        r.add_delete("/items/{id}", self.delete_user)
        r.add_post("/items/{id}/disable", self.disable)
        r.add_post("/items/{id}/enable", self.enable)
        r.add_get("/groups", self.list_groups)
        r.add_post("/groups", self.create_group)
        r.add_get("/groups/{id}", self.get_group)
        r.add_put("/groups/{id}", self.update_group)
        r.add_delete("/groups/{id}", self.delete_group)
        r.add_put("/groups/{id}/members/{member}", self.add_member)
        r.add_delete("/groups/{id}/members/{member}", self.remove_member)
        app.on_shutdown.append(self._wake)
        return app

    def logins(self) -> list[str]:
        return sorted(u["login"] for u in self.users.values())

    def _fault(self, name: str) -> bool:
        if name in self.faults:
            self.faults.discard(name)
            return True
        return False

    async def _hang(self) -> None:
        event = asyncio.Event()
        self._hung.append(event)
        await event.wait()

    async def _wake(self, app: web.Application) -> None:
        for event in self._hung:
            event.set()

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.Response(status=401)
        result: web.StreamResponse = await handler(request)
        return result

    def _user(self, request: web.Request) -> dict[str, Any]:
        user = self.users.get(request.match_info["id"])
        if user is None:
            raise web.HTTPNotFound()
        return user

    def _group(self, request: web.Request) -> dict[str, Any]:
        group = self.groups.get(request.match_info["id"])
        if group is None:
            raise web.HTTPNotFound()
        return group

    async def list_users(self, request: web.Request) -> web.Response:
        found = list(self.users.values())
        login = request.query.get("login")
        if login is not None:
            found = [u for u in found if u["login"].lower() == login.lower()]
        offset = int(request.query.get("offset", 0))
        limit = int(request.query.get("limit", 100))
        return json_response({"items": found[offset : offset + limit], "total": len(found)})

    async def create_user(self, request: web.Request) -> web.StreamResponse:
        data = (await request.json())["item"]
        user = {"active": True, **data, "id": str(next(self._ids))}
        self.users[user["id"]] = user
        if self._fault("hang_create"):
            await self._hang()
        if self._fault("drop_create"):
            assert request.transport is not None
            request.transport.close()
            raise asyncio.CancelledError  # the handler ends with no answer on the wire
        if self._fault("garbage_create"):
            return web.Response(status=201, text="<html>saved</html>", content_type="text/html")
        return json_response({"item": user}, 201)

    async def get_user(self, request: web.Request) -> web.Response:
        return json_response({"item": self._user(request)})

    async def update_user(self, request: web.Request) -> web.Response:
        user = self._user(request)
        user.update((await request.json())["item"])
        return json_response({"item": user})

    async def delete_user(self, request: web.Request) -> web.Response:
        user = self._user(request)
        del self.users[user["id"]]
        for group in self.groups.values():
            group["member_ids"] = [m for m in group["member_ids"] if m != user["id"]]
        if self._fault("hang_delete"):
            await self._hang()
        return web.Response(status=204)

    async def disable(self, request: web.Request) -> web.Response:
        user = self._user(request)
        if self._fault("fail_disable"):
            return json_response({"error": "directory unavailable"}, 500)
        user["active"] = False
        return web.Response(status=204)

    async def enable(self, request: web.Request) -> web.Response:
        self._user(request)["active"] = True
        return web.Response(status=204)

    async def list_groups(self, request: web.Request) -> web.Response:
        found = list(self.groups.values())
        name = request.query.get("name")
        if name is not None:
            found = [g for g in found if g["name"].lower() == name.lower()]
        return json_response({"groups": found})

    async def create_group(self, request: web.Request) -> web.Response:
        data = (await request.json())["group"]
        group = {**data, "id": f"g{next(self._ids)}", "member_ids": []}
        self.groups[group["id"]] = group
        return json_response({"group": group}, 201)

    async def get_group(self, request: web.Request) -> web.Response:
        return json_response({"group": self._group(request)})

    async def update_group(self, request: web.Request) -> web.Response:
        group = self._group(request)
        group.update((await request.json())["group"])
        return web.Response(status=204)

    async def delete_group(self, request: web.Request) -> web.Response:
        del self.groups[self._group(request)["id"]]
        return web.Response(status=204)

    async def add_member(self, request: web.Request) -> web.Response:
        group = self._group(request)
        member = request.match_info["member"]
        if member not in self.users:
            raise web.HTTPNotFound()
        if self._fault("fail_member_add"):
            return json_response({"error": "membership service down"}, 500)
        if member not in group["member_ids"]:
            group["member_ids"].append(member)
        return web.Response(status=204)

    async def remove_member(self, request: web.Request) -> web.Response:
        group = self._group(request)
        member = request.match_info["member"]
        group["member_ids"] = [m for m in group["member_ids"] if m != member]
        return web.Response(status=204)
