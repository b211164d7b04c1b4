"""Admin endpoints under ``/admin/``, behind their own credential (``admin.tokens``).

``GET /admin/audit``: audit events as JSON, a page at a time (``limit``, and the
``cursor`` of the previous page's ``next_cursor``), filtered by ``app``, ``user``,
``operation``, ``outcome``, ``since`` and ``until``.
``GET /admin/audit/export?format=jsonl|csv``: every matching event, streamed.

More admin routes join :func:`add_admin_routes`; each calls :func:`_authorize`.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from gateway.auth import TokenAuthenticator
from gateway.errors import InvalidValue, NotFound
from gateway.state import AuditLog, Filters
from gateway.state.export import EXPORT_FORMATS, export_lines, filters_from

ADMIN_AUTH: web.AppKey[TokenAuthenticator] = web.AppKey("admin_auth", TokenAuthenticator)
AUDIT_LOG: web.AppKey[AuditLog] = web.AppKey("audit_log", AuditLog)

MAX_LIMIT = 1000


def _authorize(request: web.Request) -> None:
    request.app[ADMIN_AUTH].authenticate(request.headers.get("Authorization"))


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
    _authorize(request)
    log = _audit_log(request)
    limit = _int(request, "limit", 100, 1, MAX_LIMIT)
    cursor = _int(request, "cursor", 0, 0, 2**62)
    events, next_cursor = await log.list(_filters(request), after=cursor, limit=limit)
    body = {"events": events, "next_cursor": next_cursor}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def audit_export(request: web.Request) -> web.StreamResponse:
    _authorize(request)
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


def add_admin_routes(app: web.Application, auth: TokenAuthenticator) -> None:
    """Mount the admin routes (before the SCIM catch-all route)."""
    app[ADMIN_AUTH] = auth
    app.router.add_get("/admin/audit", audit_page)
    app.router.add_get("/admin/audit/export", audit_export)
