"""A Redmine-like API in memory, with the quirks /work/shared/legacy-apps/redmine.md lists.

* users: offset/limit paging (limit capped at 100), ``name=`` a case-insensitive substring
  match on login, mail, firstname or lastname; 422 ``["Login has already been taken"]``;
  PUT answers 204 with no body; ``include=groups`` lists a user's groups;
* groups: one answer with every group (no paging, no filter); ``include=users``;
* ``POST /groups/{id}/users.json {"user_ids": [...]}`` answers 422 ``User is invalid`` when a
  user is already a member (not idempotent); ``DELETE /groups/{id}/users/{uid}.json`` 204.

:func:`redmine_settings` reads mappings/redmine/rest.yaml, the settings written for the real
Redmine, so the fake and the real one are configured alike.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from rest_support import API_KEY, json_response

REDMINE_YAML = Path(__file__).parents[1] / "mappings" / "redmine" / "rest.yaml"


def redmine_settings(base_url: str, api_key: str = API_KEY) -> dict[str, Any]:
    """mappings/redmine/rest.yaml, for the Redmine at ``base_url``."""
    raw: dict[str, Any] = yaml.safe_load(REDMINE_YAML.read_text("utf-8"))
    raw["base_url"] = base_url
    raw["auth"] = {**raw["auth"], "key": api_key}
    return raw


class RedmineLike:
    def __init__(self) -> None:
        self.users: dict[int, dict[str, Any]] = {}
        self.groups: dict[int, dict[str, Any]] = {}
        self.members: dict[int, set[int]] = {}
        self._ids = itertools.count(5)  # users and groups share one sequence, like Redmine

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth])
        r = app.router
        r.add_get("/users.json", self.list_users)
        r.add_post("/users.json", self.create_user)
        r.add_get("/users/{id}.json", self.get_user)
        r.add_put("/users/{id}.json", self.update_user)
        r.add_delete("/users/{id}.json", self.delete_user)
        r.add_get("/groups.json", self.list_groups)
        r.add_post("/groups.json", self.create_group)
        r.add_get("/groups/{id}.json", self.get_group)
        r.add_put("/groups/{id}.json", self.update_group)
        r.add_delete("/groups/{id}.json", self.delete_group)
        r.add_post("/groups/{id}/users.json", self.add_users)
        r.add_delete("/groups/{id}/users/{uid}.json", self.remove_user)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("X-Redmine-API-Key") != API_KEY:
            return web.Response(status=401)
        result: web.StreamResponse = await handler(request)
        return result

    @staticmethod
    def _id(request: web.Request, key: str = "id") -> int:
        raw = request.match_info[key]
        if not raw.isdigit():
            raise web.HTTPNotFound()
        return int(raw)

    def _user(self, request: web.Request) -> dict[str, Any]:
        user = self.users.get(self._id(request))
        if user is None:
            raise web.HTTPNotFound()
        return user

    def _group(self, request: web.Request) -> dict[str, Any]:
        group = self.groups.get(self._id(request))
        if group is None:
            raise web.HTTPNotFound()
        return group

    def _taken(self, field: str, value: Any, own: int | None) -> bool:
        return any(
            str(u.get(field, "")).lower() == str(value).lower() and i != own
            for i, u in self.users.items()
        )

    def _validate(self, user: dict[str, Any], own: int | None) -> None:
        errors = []
        if not user.get("login"):
            errors.append("Login cannot be blank")
        elif self._taken("login", user["login"], own):
            errors.append("Login has already been taken")
        if user.get("mail") and self._taken("mail", user["mail"], own):
            errors.append("Email has already been taken")
        if errors:
            raise web.HTTPUnprocessableEntity(
                text=json_response({"errors": errors}).text, content_type="application/json"
            )

    async def list_users(self, request: web.Request) -> web.Response:
        offset = int(request.query.get("offset", 0))
        limit = min(int(request.query.get("limit", 25)), 100)
        found = sorted(self.users.values(), key=lambda u: u["login"])
        name = request.query.get("name", "").lower()
        if name:
            keys = ("login", "mail", "firstname", "lastname")
            found = [u for u in found if any(name in str(u.get(k, "")).lower() for k in keys)]
        page = [{k: v for k, v in u.items() if k != "status"} for u in found]  # as in 5.0.4
        body = {"users": page[offset : offset + limit], "total_count": len(found)}
        return json_response({**body, "offset": offset, "limit": limit})

    async def create_user(self, request: web.Request) -> web.Response:
        data = dict((await request.json())["user"])
        self._validate(data, None)
        user = {"id": next(self._ids), "status": 1, **data}
        self.users[user["id"]] = user
        return json_response({"user": user}, 201)

    async def get_user(self, request: web.Request) -> web.Response:
        user = dict(self._user(request))
        if "groups" in request.query.get("include", ""):
            user["groups"] = [
                {"id": gid, "name": self.groups[gid]["name"]}
                for gid in sorted(self.members)
                if user["id"] in self.members[gid]
            ]
        return json_response({"user": user})

    async def update_user(self, request: web.Request) -> web.Response:
        user = self._user(request)
        changes = (await request.json())["user"]
        self._validate({**user, **changes}, user["id"])
        user.update(changes)
        return web.Response(status=204)

    async def delete_user(self, request: web.Request) -> web.Response:
        user = self._user(request)
        del self.users[user["id"]]
        for members in self.members.values():
            members.discard(user["id"])
        return web.Response(status=204)

    async def list_groups(self, request: web.Request) -> web.Response:
        return json_response({"groups": [dict(g) for g in self.groups.values()]})

    async def create_group(self, request: web.Request) -> web.Response:
        data = (await request.json())["group"]
        names = {g["name"].lower() for g in self.groups.values()}
        if str(data.get("name", "")).lower() in names:
            return json_response({"errors": ["Name has already been taken"]}, 422)
        group = {"id": next(self._ids), "name": data["name"]}
        self.groups[group["id"]] = group
        self.members[group["id"]] = set()
        return json_response({"group": group}, 201)

    async def get_group(self, request: web.Request) -> web.Response:
        group = dict(self._group(request))
        if "users" in request.query.get("include", ""):
            group["users"] = [
                {"id": uid, "name": self.users[uid].get("firstname", "")}
                for uid in sorted(self.members[group["id"]])
            ]
        return json_response({"group": group})

    async def update_group(self, request: web.Request) -> web.Response:
        group = self._group(request)
        data = (await request.json())["group"]
        if "name" in data:
            group["name"] = data["name"]
        if "user_ids" in data:
            self.members[group["id"]] = {int(u) for u in data["user_ids"]}
        return web.Response(status=204)

    async def delete_group(self, request: web.Request) -> web.Response:
        group = self._group(request)
        del self.groups[group["id"]]
        del self.members[group["id"]]
        return web.Response(status=204)

    async def add_users(self, request: web.Request) -> web.Response:
        group = self._group(request)
        ids = (await request.json())["user_ids"]
        current = self.members[group["id"]]
        if any(not isinstance(u, int) or u not in self.users or u in current for u in ids):
            return json_response({"errors": ["User is invalid"]}, 422)
        current.update(ids)
        return web.Response(status=204)

    async def remove_user(self, request: web.Request) -> web.Response:
        group = self._group(request)
        uid = self._id(request, "uid")
        if uid not in self.users:
            return json_response({"status": 404, "error": "Not Found"}, 404)
        self.members[group["id"]].discard(uid)
        return web.Response(status=204)
