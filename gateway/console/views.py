"""The console's pages (see gateway/console/__init__.py for the login and the rules)."""

from __future__ import annotations

import asyncio
import logging
from importlib.resources import files
from typing import Any

from aiohttp import web

from gateway.app import STORE
from gateway.auth import Principal
from gateway.console import (
    CONSOLE,
    HEADERS,
    WHO,
    basic_header,
    check_credentials,
    login_token,
    redirect,
    render,
    safe_next,
    same,
)
from gateway.console.data import app_views, event_detail, last_errors
from gateway.console.session import COOKIE, LOGIN_COOKIE
from gateway.errors import InvalidValue, NotFound
from gateway.guard_control import GuardError
from gateway.http.admin import AUDIT_LOG, GUARDS, release_guard
from gateway.http.views import SERVICES
from gateway.reconcile import REVIEW_FIELDS, Reconciler, csv_line, json_line, review
from gateway.state import AuditLog
from gateway.state.export import filters_from

log = logging.getLogger("gateway.console")

PAGE_SIZE = 50
#: Reconcile runs started from the console, kept so they are not garbage collected.
_RUNS: set[asyncio.Task[Any]] = set()


# -- login ------------------------------------------------------------------------------------


async def to_index(request: web.Request) -> web.StreamResponse:
    return redirect("/console/")


async def stylesheet(request: web.Request) -> web.StreamResponse:
    css = files("gateway.console").joinpath("templates/console.css").read_text("utf-8")
    return web.Response(text=css, content_type="text/css", headers=HEADERS)


def _login_page(request: web.Request, status: int = 200, error: str | None = None) -> web.Response:
    token, new = login_token(request)
    target = safe_next(request.query.get("next"))
    response = render(request, "login.html", status, csrf=token, next=target, error=error)
    if new:
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            httponly=True,
            samesite="Strict",
            secure=request.secure,
            path="/console/",
        )
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    return _login_page(request)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not same(fields.get("csrf"), request.cookies.get(LOGIN_COOKIE)):
        return _login_page(request, 403, "the form expired; please sign in again")
    token = fields.get("token", "").strip()
    if token:
        header = f"Bearer {token}"
    else:
        header = basic_header(fields.get("username", ""), fields.get("password", ""))
    principal = await check_credentials(request.app, header)
    if principal is None:
        log.warning("console: a sign-in failed")  # never the name tried: it may be a password
        return _login_page(request, 401, "wrong user name, password or token")
    cookie, _ = request.app[CONSOLE].sessions.start(*principal)
    log.info("console: %s signed in", principal[0])
    response = redirect(safe_next(fields.get("next")))
    response.set_cookie(
        COOKIE, cookie, httponly=True, samesite="Strict", secure=request.secure, path="/console/"
    )
    response.del_cookie(LOGIN_COOKIE, path="/console/")
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    request.app[CONSOLE].sessions.end(request.cookies.get(COOKIE))
    response = redirect("/console/login")
    response.del_cookie(COOKIE, path="/console/")
    return response


# -- apps and guards ----------------------------------------------------------------------------


async def apps(request: web.Request) -> web.StreamResponse:
    settings = request.app[CONSOLE].settings
    views = app_views(request.app, settings, await last_errors(request.app))
    return render(request, "apps.html", apps=views)


async def guards(request: web.Request) -> web.StreamResponse:
    control = request.app[GUARDS]
    states = []
    for name, runtime in request.app[SERVICES].items():
        if runtime.service.guard is not None:
            states.append(await control.status(name))
    released = request.query.get("released")
    return render(request, "guard.html", states=states, released=released)


async def guard_release(request: web.Request) -> web.StreamResponse:
    who = request[WHO]
    form = await request.post()
    minutes = _minutes(form.get("minutes"))
    target = request.match_info["app"]
    try:
        await release_guard(request.app, Principal("admin", who.name), target, minutes)
    except GuardError as exc:
        raise NotFound(str(exc)) from None
    return redirect(f"/console/guard?released={target}")


def _minutes(value: Any) -> float | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        minutes = float(value)
    except ValueError:
        raise InvalidValue("minutes must be a number") from None
    if not 0 < minutes <= 7 * 24 * 60:
        raise InvalidValue("minutes must be more than 0 and at most a week")
    return minutes


# -- the audit trail ----------------------------------------------------------------------------

FILTER_FIELDS = ("app", "user", "operation", "outcome", "since", "until")


def _log(request: web.Request) -> AuditLog:
    audit = request.app.get(AUDIT_LOG)
    if audit is None:
        raise NotFound("the audit trail is off (state.audit.enabled)")
    return audit


async def audit(request: web.Request) -> web.StreamResponse:
    audit_log = _log(request)
    chosen = {k: request.query.get(k, "").strip() for k in FILTER_FIELDS}
    try:
        filters = filters_from(chosen)
    except ValueError as exc:
        raise InvalidValue(str(exc)) from None
    after = request.query.get("after", "0")
    if not after.isdigit() or len(after) > 18:
        raise InvalidValue("after must be an event number")
    events, next_cursor = await audit_log.list(filters, after=int(after), limit=PAGE_SIZE)
    return render(
        request,
        "audit.html",
        events=events,
        chosen=chosen,
        next_cursor=next_cursor,
        apps=sorted(request.app[SERVICES].keys()),
        first=after == "0",
    )


async def event(request: web.Request) -> web.StreamResponse:
    _log(request)
    number = request.match_info["id"]
    if not number.isdigit() or len(number) > 18:
        raise NotFound("no such event")
    try:
        detail, status = await event_detail(request.app[STORE], int(number))
    except LookupError:
        raise NotFound("no such event") from None
    return render(request, "event.html", event=detail, chain=status)


async def verify(request: web.Request) -> web.StreamResponse:
    verdict = await _log(request).verify()
    return render(request, "verify.html", verdict=verdict)


# -- reconcile and the access review -------------------------------------------------------------


def _reconciler(request: web.Request) -> Reconciler:
    store = request.app.get(STORE)
    if store is None:
        raise NotFound("reconcile needs the state store (state.url)")
    runtime = request.app[SERVICES].get(request.match_info["app"])
    if runtime is None:
        raise NotFound("no such app")
    return Reconciler(runtime.service, store)


async def reconcile(request: web.Request) -> web.StreamResponse:
    store = request.app.get(STORE)
    runs: list[Any] = []
    if store is not None:
        async with store.db.transaction() as tx:
            runs = await tx.fetch("SELECT * FROM reconcile_run ORDER BY started DESC LIMIT 20")
    return render(request, "reconcile.html", apps=sorted(request.app[SERVICES].keys()), runs=runs)


async def reconcile_start(request: web.Request) -> web.StreamResponse:
    reconciler = _reconciler(request)
    run_id = await reconciler.start()
    task = asyncio.create_task(_background(reconciler, run_id), name=f"reconcile-{run_id}")
    _RUNS.add(task)
    task.add_done_callback(_RUNS.discard)
    return redirect(f"/console/reconcile/{reconciler.app}/{run_id}")


async def _background(reconciler: Reconciler, run_id: str) -> None:
    try:
        await reconciler.run(run_id=run_id)
    except Exception as exc:  # the run stays unfinished; `reconcile --resume` goes on
        log.error("console: reconcile of %s stopped: %s", reconciler.app, type(exc).__name__)


async def reconcile_run(request: web.Request) -> web.StreamResponse:
    reconciler = _reconciler(request)
    run_id = request.match_info["run"]
    async with reconciler.store.db.transaction() as tx:
        run = await tx.fetchrow(
            "SELECT * FROM reconcile_run WHERE run_id = ? AND app = ?", run_id, reconciler.app
        )
    if run is None:
        raise NotFound("no such reconcile run")
    findings = []
    async for finding in reconciler.findings(run_id):
        findings.append(finding)
        if len(findings) >= 500:
            break
    return render(request, "run.html", run=run, findings=findings, app=reconciler.app)


async def access(request: web.Request) -> web.StreamResponse:
    return render(request, "access.html", apps=sorted(request.app[SERVICES].keys()))


async def access_export(request: web.Request) -> web.StreamResponse:
    name, form = request.match_info["app"], request.match_info["format"]
    runtime = request.app[SERVICES].get(name)
    if runtime is None:
        raise NotFound("no such app")
    kind = "text/csv; charset=utf-8" if form == "csv" else "application/x-ndjson"
    headers = {
        **HEADERS,
        "Content-Type": kind,
        "Content-Disposition": f'attachment; filename="access-review-{name}.{form}"',
    }
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    if form == "csv":
        await response.write(csv_line(["app", *REVIEW_FIELDS]).encode())
    async for row in review(runtime.service, request.app.get(STORE)):
        line = {"app": name, **row}
        text = csv_line(line.values()) if form == "csv" else json_line(line)
        await response.write(text.encode())
    await response.write_eof()
    return response


#: (method, path, handler, admin only)
PAGES = [
    ("GET", "/console/", apps, False),
    ("POST", "/console/logout", logout, False),
    ("GET", "/console/guard", guards, False),
    ("POST", "/console/guard/{app}/release", guard_release, True),
    ("GET", "/console/audit", audit, False),
    ("GET", "/console/audit/event/{id}", event, False),
    ("POST", "/console/audit/verify", verify, False),
    ("GET", "/console/reconcile", reconcile, False),
    ("POST", "/console/reconcile/{app}", reconcile_start, True),
    ("GET", "/console/reconcile/{app}/{run}", reconcile_run, False),
    ("GET", "/console/access", access, False),
    ("GET", r"/console/access/{app}.{format:csv|json}", access_export, False),
]
