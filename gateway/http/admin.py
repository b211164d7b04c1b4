"""Operators' HTTP calls under ``/admin/``, behind their own credential (``admin:``).

They take the ``admin`` credentials of the config, never an app's: the guard is
there for when the IdP itself misbehaves, so the IdP must not release it, and
the audit trail is for the people who watch the IdP. Without an ``admin``
section the calls answer 403.

    GET  /admin/audit                  audit events as JSON, a page at a time (``limit``,
                                       and the ``cursor`` of the previous page's
                                       ``next_cursor``), filtered by ``app``, ``user``,
                                       ``operation``, ``outcome``, ``since``, ``until``
    GET  /admin/audit/export           every matching event, streamed (``format=jsonl|csv``)
    GET  /admin/guard/{app}            {"app", "recent", "held", "released", "open_until"}
    POST /admin/guard/{app}/release    body {} or {"minutes": 30}; answers the new state
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from aiohttp import web

from gateway.auth import Authenticator, Principal
from gateway.config import AuthConfig
from gateway.errors import Forbidden, InvalidSyntax, InvalidValue, NotFound, ScimError
from gateway.guard import GuardState
from gateway.guard_control import GuardError, StoreGuardControl
from gateway.http.views import RECORDER, SERVICES, AppRuntime
from gateway.operation import NULL_RECORDER, Operation
from gateway.state import AuditLog, Filters
from gateway.state.export import EXPORT_FORMATS, export_lines, filters_from

ADMIN_AUTH: web.AppKey[Authenticator | None] = web.AppKey("admin_auth", Authenticator)
GUARDS: web.AppKey[StoreGuardControl] = web.AppKey("guards", StoreGuardControl)
AUDIT_LOG: web.AppKey[AuditLog] = web.AppKey("audit_log", AuditLog)

MAX_LIMIT = 1000


def add_admin_routes(
    app: web.Application, config: AuthConfig | None, runtimes: Mapping[str, AppRuntime]
) -> None:
    """Mount the admin routes (before the SCIM catch-all route)."""
    app[ADMIN_AUTH] = None if config is None else Authenticator("admin", config)
    app[GUARDS] = StoreGuardControl(
        {name: rt.service.guard for name, rt in runtimes.items() if rt.service.guard is not None}
    )
    app.router.add_get("/admin/audit", audit_page)
    app.router.add_get("/admin/audit/export", audit_export)
    app.router.add_get("/admin/guard/{app}", guard_status)
    app.router.add_post("/admin/guard/{app}/release", guard_release)


#: The ``app`` of an admin event that concerns no app (reading the audit trail).
ADMIN_APP = "admin"


@asynccontextmanager
async def admin_event(
    request: web.Request, action: str, *, app: str | None = None
) -> AsyncIterator[Operation]:
    """Record an operator's action in the audit trail, as one event named ``admin.<action>``.

    For every admin surface (these routes, a console): the caller sets ``op.client``
    to the admin credential's name once known, and awaits ``op.open()`` before a
    change (the open-before-write promise). The event is closed with the status of
    the answer: 200, or the error's (a refused attempt is recorded too).
    """
    op = Operation(
        app=app or ADMIN_APP,
        method=request.method,
        path=request.path,
        remote=request.remote,
        user_agent=request.headers.get("User-Agent"),
        recorder=request.app.get(RECORDER, NULL_RECORDER),
    )
    op.describe(f"admin.{action}")
    try:
        yield op
    except ScimError as exc:
        await op.close(exc.status, exc.scim_type)
        raise
    except BaseException:
        await op.close(500)
        raise
    await op.close(200)


async def _admin(request: web.Request, op: Operation | None = None) -> Principal:
    auth = request.app[ADMIN_AUTH]
    if auth is None:
        raise Forbidden("no admin credentials are configured (the admin: section)")
    principal = await auth.authenticate(request.headers.get("Authorization"))
    if op is not None:
        op.client = principal.name
    if principal.read_only and request.method not in ("GET", "HEAD"):
        raise Forbidden(f"the credential {principal.name!r} is read-only")
    return principal


# -- the audit trail --------------------------------------------------------------------


def _audit_log(request: web.Request) -> AuditLog:
    log = request.app.get(AUDIT_LOG)
    if log is None:
        raise NotFound("the audit trail is off (state.audit.enabled)")
    return log


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise InvalidValue(f"{name} must be a whole number from {low} to {high}")
    return int(text)


def _filters(request: web.Request) -> Filters:
    try:
        return filters_from(request.query)
    except ValueError as exc:
        raise InvalidValue(str(exc)) from None


async def audit_page(request: web.Request) -> web.Response:
    async with admin_event(request, "audit-read") as op:
        await _admin(request, op)
        log = _audit_log(request)
        limit = _int(request, "limit", 100, 1, MAX_LIMIT)
        cursor = _int(request, "cursor", 0, 0, 2**62)
        events, next_cursor = await log.list(_filters(request), after=cursor, limit=limit)
        body = {"events": events, "next_cursor": next_cursor}
        return web.Response(body=orjson.dumps(body), content_type="application/json")


async def audit_export(request: web.Request) -> web.StreamResponse:
    async with admin_event(request, "audit-export") as op:
        await _admin(request, op)
        log = _audit_log(request)
        form = request.query.get("format", "jsonl")
        if form not in EXPORT_FORMATS:
            raise InvalidValue(f"format must be one of {', '.join(EXPORT_FORMATS)}")
        filters = _filters(request)
        response = web.StreamResponse(headers={"Content-Type": EXPORT_FORMATS[form]})
        await response.prepare(request)
        async for line in export_lines(log, filters, form):
            await response.write(line.encode())
        await response.write_eof()
        return response


# -- the deprovisioning guard ------------------------------------------------------------


async def guard_status(request: web.Request) -> web.Response:
    await _admin(request)  # a read of the guard's counters: not an event of its own
    try:
        state = await request.app[GUARDS].status(request.match_info["app"])
    except GuardError as exc:
        raise NotFound(str(exc)) from None
    return web.json_response(state.to_json())


async def guard_release(request: web.Request) -> web.Response:
    app = request.match_info["app"]
    # Only a configured app names the event (others are refused with 404 below).
    known = app if app in request.app[SERVICES] else None
    async with admin_event(request, "guard-release", app=known) as op:
        who = await _admin(request, op)
        minutes = _minutes(await request.read())
        try:
            state = await release_guard(request.app, who, app, minutes, op=op)
        except GuardError as exc:
            raise NotFound(str(exc)) from None
        return web.json_response(state.to_json())


async def release_guard(
    app: web.Application,
    who: Principal,
    target: str,
    minutes: float | None,
    *,
    op: Operation | None = None,
) -> GuardState:
    """The one way an operator releases a guard (this endpoint and the console): recorded
    in the audit trail as ``admin.guard-release`` with the operator's name, before the
    release takes effect. ``op``: the event :func:`admin_event` opened for the request
    (it closes it); without one, an event of its own."""
    guards = app[GUARDS]
    await guards.status(target)  # GuardError for an app without a guard, before recording
    own = op is None
    if op is None:
        op = Operation(
            target,
            "POST",
            f"/admin/guard/{target}/release",
            recorder=app.get(RECORDER, NULL_RECORDER),
        )
        op.describe("admin.guard-release")
    op.client = who.name
    if minutes is not None:
        op.extra["minutes"] = f"{minutes:g}"
    await op.open()  # durable first: a release no one can trace must not happen
    try:
        state = await guards.release(target, minutes)
    except BaseException:
        if own:
            await op.close(500)
        raise
    if own:
        await op.close(200)
    return state


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
