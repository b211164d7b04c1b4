"""Operators' HTTP calls under ``/admin/``: the deprovisioning guard's status and release.

They take the ``admin`` tokens of the config, never an app's: the guard is
there for when the IdP itself misbehaves, so the IdP must not release it.
Without an ``admin`` section the calls answer 403.

    GET  /admin/guard/{app}            {"app", "recent", "held", "released", "open_until"}
    POST /admin/guard/{app}/release    body {} or {"minutes": 30}; answers the new state
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from gateway.auth import Authenticator, Principal
from gateway.config import AdminConfig, AuthConfig
from gateway.errors import Forbidden, InvalidSyntax, InvalidValue, NotFound
from gateway.guard_control import GuardError, StoreGuardControl
from gateway.http.views import AppRuntime

ADMIN_AUTH: web.AppKey[Authenticator | None] = web.AppKey("admin_auth", Authenticator)
GUARDS: web.AppKey[StoreGuardControl] = web.AppKey("guards", StoreGuardControl)


def add_admin_routes(
    app: web.Application, config: AdminConfig | None, runtimes: Mapping[str, AppRuntime]
) -> None:
    auth = None if config is None else Authenticator("admin", AuthConfig(tokens=config.tokens))
    app[ADMIN_AUTH] = auth
    app[GUARDS] = StoreGuardControl(
        {name: rt.service.guard for name, rt in runtimes.items() if rt.service.guard is not None}
    )
    app.router.add_get("/admin/guard/{app}", guard_status)
    app.router.add_post("/admin/guard/{app}/release", guard_release)


async def _admin(request: web.Request) -> Principal:
    auth = request.app[ADMIN_AUTH]
    if auth is None:
        raise Forbidden("no admin tokens are configured (the admin: section)")
    return await auth.authenticate(request.headers.get("Authorization"))


async def guard_status(request: web.Request) -> web.Response:
    await _admin(request)
    try:
        state = await request.app[GUARDS].status(request.match_info["app"])
    except GuardError as exc:
        raise NotFound(str(exc)) from None
    return web.json_response(state.to_json())


async def guard_release(request: web.Request) -> web.Response:
    await _admin(request)
    minutes = _minutes(await request.read())
    try:
        state = await request.app[GUARDS].release(request.match_info["app"], minutes)
    except GuardError as exc:
        raise NotFound(str(exc)) from None
    return web.json_response(state.to_json())


def _minutes(raw: bytes) -> float | None:
    if not raw.strip():
        return None
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidSyntax("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidSyntax("the request body must be a JSON object")
    minutes = body.get("minutes")
    if minutes is None:
        return None
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0:
        raise InvalidValue("minutes must be a positive number")
    return float(minutes)
