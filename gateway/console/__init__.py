"""The operators' web console at ``/console/``: server-rendered pages, no script.

Behind the ``admin:`` credentials: a login form (a Basic credential's user name
and password, or a token) starts a server-side session (gateway/console/session.py),
or a request carries the admin token in ``Authorization`` as the admin calls do.
Read-only credentials are operators: they see every page; releasing a guard and
running a reconcile need an admin. Every form carries a CSRF token; templates
autoescape. Pages answer HTML, never SCIM errors.
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from aiohttp import web

from gateway.config import Settings
from gateway.console.session import COOKIE, LOGIN_COOKIE, Session, Sessions
from gateway.errors import ScimError
from gateway.http.admin import ADMIN_AUTH

CONSOLE: web.AppKey[Console] = web.AppKey("console")
#: The signed-in operator of the request being handled.
WHO: web.RequestKey[Session] = web.RequestKey("console_who", Session)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: No script, no frames, no foreign origins; forms post only here.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


@dataclass
class Console:
    settings: Settings
    sessions: Sessions
    templates: jinja2.Environment


def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.console", "templates"),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def add_console_routes(app: web.Application, settings: Settings) -> None:
    from gateway.console import views

    app[CONSOLE] = Console(settings, Sessions(settings.console.session_minutes * 60), _templates())
    app.router.add_get("/console", views.to_index)
    app.router.add_get("/console/login", views.login_form)
    app.router.add_post("/console/login", views.login)
    app.router.add_get("/console/console.css", views.stylesheet)
    for method, path, handler, admin in views.PAGES:
        app.router.add_route(method, path, signed_in(handler, admin=admin))


def render(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    console = request.app[CONSOLE]
    who = request.get(WHO)
    html = console.templates.get_template(name).render(who=who, **context)
    return web.Response(
        text=html, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
    )


def redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={**HEADERS, "Location": location})


def signed_in(handler: Handler, *, admin: bool) -> Handler:
    """The page behind a login: a session cookie or the admin token; CSRF on every POST."""

    async def page(request: web.Request) -> web.StreamResponse:
        who = await _who(request)
        if who is None:
            target = request.path_qs if request.method == "GET" else "/console/"
            return redirect(f"/console/login?next={_quote(target)}")
        request[WHO] = who
        if request.method == "POST":
            form = await request.post()
            token = form.get("csrf")
            if not who.csrf_ok(token if isinstance(token, str) else None):
                return render(request, "error.html", 403, message="the form's CSRF token is wrong")
        if admin and who.read_only:
            return render(request, "error.html", 403, message=f"{who.name} may only read")
        try:
            return await handler(request)
        except ScimError as exc:
            return render(request, "error.html", exc.status, message=exc.detail)

    return page


async def _who(request: web.Request) -> Session | None:
    console = request.app[CONSOLE]
    header = request.headers.get("Authorization")
    if header:
        principal = await check_credentials(request.app, header)
        if principal is None:
            return None
        return Session(principal[0], principal[1], by_header=True)
    return console.sessions.get(request.cookies.get(COOKIE))


async def check_credentials(app: web.Application, header: str) -> tuple[str, bool] | None:
    """(name, read_only) of an admin credential, or None; never says why (no oracle)."""
    auth = app[ADMIN_AUTH]
    if auth is None:
        return None
    try:
        principal = await auth.authenticate(header)
    except ScimError:
        return None
    return principal.name, principal.read_only


def basic_header(username: str, password: str) -> str:
    pair = f"{username}:{password}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def login_token(request: web.Request) -> tuple[str, bool]:
    """The login form's CSRF token: the cookie's when it has one, else a new one."""
    current = request.cookies.get(LOGIN_COOKIE)
    if current and 20 <= len(current) <= 100:
        return current, False
    return secrets.token_urlsafe(32), True


def same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


def _quote(path: str) -> str:
    return quote(path, safe="")


def safe_next(target: str | None) -> str:
    """Only a path of the console itself (no other host, no scheme): no open redirect."""
    if target and target.startswith("/console/") and "//" not in target and "\\" not in target:
        return target
    return "/console/"
