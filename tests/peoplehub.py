"""PeopleHub: a REST app the project had never seen, on loopback, as issue 14 met it.

* its own header auth (``X-PH-Token``); bodies wrapped (``{"employee": {...}}`` in,
  ``{"data": ...}`` out); the mail nested (``contact.email``), filterable as ``?email=``;
* ``POST /employees/{id}/suspend`` and ``/reactivate``; a DELETE only of a suspended
  employee (409 ``NOT_SUSPENDED`` otherwise);
* 422 with codes: ``{"errors": [{"code": "TOO_LONG", "field": "employee_ref"}]}``;
  409 ``{"errors": [{"code": "TAKEN", "field": "login"}]}``;
* groups whose names the app does not keep unique (the gateway must);
* faults a test switches on: ``garbage_creates`` (the employee is stored, the answer is
  not JSON) and ``busy`` (path -> how many 503s come before the call is served).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from rest_support import API_KEY, Handler, json_response

MAPPING = Path(__file__).parent / "peoplehub_mapping"
REF_LIMIT = 8


def peoplehub_settings(base_url: str) -> dict[str, Any]:
    """The rest.yaml written for PeopleHub, pointed at ``base_url``."""
    raw: dict[str, Any] = yaml.safe_load((MAPPING / "rest.yaml").read_text("utf-8"))
    raw["base_url"] = base_url
    raw["auth"]["key"] = API_KEY
    return raw


def _error(status: int, *errors: dict[str, str]) -> web.Response:
    return json_response({"errors": list(errors)}, status)


class PeopleHub:
    def __init__(self) -> None:
        self.employees: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)
        self.garbage_creates = False
        self.busy: dict[str, int] = {}
        self.calls: list[str] = []

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._gate])
        r = app.router
        r.add_get("/employees", self.list_employees)
        r.add_post("/employees", self.create_employee)
        r.add_get("/employees/{id}", self.get_employee)
        r.add_patch("/employees/{id}", self.update_employee)
        r.add_delete("/employees/{id}", self.delete_employee)
        r.add_post("/employees/{id}/suspend", self.suspend)
        r.add_post("/employees/{id}/reactivate", self.reactivate)
        r.add_get("/groups", self.list_groups)
        r.add_post("/groups", self.create_group)
        r.add_get("/groups/{id}", self.get_group)
        r.add_patch("/groups/{id}", self.update_group)
        r.add_delete("/groups/{id}", self.delete_group)
        r.add_post("/groups/{id}/members", self.add_member)
        r.add_delete("/groups/{id}/members/{member}", self.remove_member)
        return app

    @web.middleware
    async def _gate(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get("X-PH-Token") != API_KEY:
            return _error(401, {"code": "UNAUTHORIZED"})
        route = request.match_info.route.resource
        template = route.canonical if route is not None else request.path
        self.calls.append(f"{request.method} {template}")
        left = self.busy.get(template, 0)
        if left:
            self.busy[template] = left - 1
            return _error(503, {"code": "BUSY"})
        return await handler(request)

    # -- employees -------------------------------------------------------------------

    def _employee(self, request: web.Request) -> dict[str, Any]:
        found = self.employees.get(request.match_info["id"])
        if found is None:
            raise web.HTTPNotFound(text='{"errors": [{"code": "NOT_FOUND"}]}')
        return found

    def _problems(self, data: dict[str, Any], own: str | None) -> web.Response | None:
        login = data.get("login")
        if not isinstance(login, str) or not login:
            return _error(422, {"code": "REQUIRED", "field": "login"})
        if any(e["login"].lower() == login.lower() for i, e in self.employees.items() if i != own):
            return _error(409, {"code": "TAKEN", "field": "login"})
        if len(str(data.get("employee_ref") or "")) > REF_LIMIT:
            # The message echoes the value, as real apps do: it must not reach the IdP's log.
            message = f"employee_ref {data['employee_ref']!r} is too long"
            return _error(422, {"code": "TOO_LONG", "field": "employee_ref", "message": message})
        return None

    async def list_employees(self, request: web.Request) -> web.Response:
        found = sorted(self.employees.values(), key=lambda e: e["id"])
        if "login" in request.query:
            found = [e for e in found if e["login"].lower() == request.query["login"].lower()]
        if "email" in request.query:
            wanted = request.query["email"].lower()
            found = [
                e for e in found if (e.get("contact") or {}).get("email", "").lower() == wanted
            ]
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 50))
        return json_response(
            {"data": found[offset : offset + limit], "meta": {"total": len(found)}}
        )

    async def create_employee(self, request: web.Request) -> web.StreamResponse:
        data = dict((await request.json())["employee"])
        problem = self._problems(data, None)
        if problem is not None:
            return problem
        employee = {"status": "active", **data, "id": f"emp{next(self._ids)}"}
        self.employees[employee["id"]] = employee
        if self.garbage_creates:
            return web.Response(status=201, text="<html>saved</html>", content_type="text/html")
        return json_response({"data": employee}, 201)

    async def get_employee(self, request: web.Request) -> web.Response:
        return json_response({"data": self._employee(request)})

    async def update_employee(self, request: web.Request) -> web.Response:
        employee = self._employee(request)
        changes = (await request.json())["employee"]
        merged = _merge(employee, changes)
        problem = self._problems(merged, employee["id"])
        if problem is not None:
            return problem
        employee.clear()
        employee.update(merged)
        return json_response({"data": employee})

    async def delete_employee(self, request: web.Request) -> web.StreamResponse:
        employee = self._employee(request)
        if employee["status"] != "suspended":
            return _error(409, {"code": "NOT_SUSPENDED"})
        del self.employees[employee["id"]]
        for group in self.groups.values():
            group["member_ids"] = [m for m in group["member_ids"] if m != employee["id"]]
        return web.Response(status=204)

    async def suspend(self, request: web.Request) -> web.Response:
        employee = self._employee(request)
        employee["status"] = "suspended"
        return json_response({"data": employee})

    async def reactivate(self, request: web.Request) -> web.Response:
        employee = self._employee(request)
        employee["status"] = "active"
        return json_response({"data": employee})

    # -- groups ----------------------------------------------------------------------

    def _group(self, request: web.Request) -> dict[str, Any]:
        found = self.groups.get(request.match_info["id"])
        if found is None:
            raise web.HTTPNotFound(text='{"errors": [{"code": "NOT_FOUND"}]}')
        return found

    async def list_groups(self, request: web.Request) -> web.Response:
        found = sorted(self.groups.values(), key=lambda g: g["id"])
        if "name" in request.query:
            found = [g for g in found if g["name"].lower() == request.query["name"].lower()]
        offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 50))
        return json_response(
            {"data": found[offset : offset + limit], "meta": {"total": len(found)}}
        )

    async def create_group(self, request: web.Request) -> web.Response:
        data = (await request.json())["group"]
        group = {"id": f"grp{next(self._ids)}", "name": data["name"], "member_ids": []}
        self.groups[group["id"]] = group
        return json_response({"data": group}, 201)

    async def get_group(self, request: web.Request) -> web.Response:
        return json_response({"data": self._group(request)})

    async def update_group(self, request: web.Request) -> web.Response:
        group = self._group(request)
        data = (await request.json())["group"]
        if "name" in data:
            group["name"] = data["name"]
        return json_response({"data": group})

    async def delete_group(self, request: web.Request) -> web.StreamResponse:
        del self.groups[self._group(request)["id"]]
        return web.Response(status=204)

    async def add_member(self, request: web.Request) -> web.StreamResponse:
        group = self._group(request)
        member = (await request.json())["member_id"]
        if member not in self.employees:
            return _error(422, {"code": "UNKNOWN_MEMBER", "field": "member_id"})
        if member not in group["member_ids"]:
            group["member_ids"].append(member)
        return web.Response(status=204)

    async def remove_member(self, request: web.Request) -> web.StreamResponse:
        group = self._group(request)
        group["member_ids"] = [m for m in group["member_ids"] if m != request.match_info["member"]]
        return web.Response(status=204)


def _merge(record: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch (RFC 7396): objects merge, null removes."""
    out = dict(record)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
