"""The REST suite's baseline: a minimal aiohttp pass-through proxy to Acme HR, hand-written.

It answers the three benchmarked SCIM requests by translating them to Acme
HR's API (``gateway/demo/legacy_app.py``) in plain Python: no mapping
engine, no Jinja, no SCIM library, no adapter layer, no middlewares::

    GET  {base}/Users/{id}                        -> GET  /accounts/{id}
    GET  {base}/Users?filter=userName eq "x"      -> GET  /accounts?login=x&offset=0&limit=100
    POST {base}/Users                             -> POST /accounts {"account": {...}}

Each account is reshaped into the SCIM User that ``mappings/acme-hr/user.yaml``
gives (the same keys, values and key order), and each POSTed user into the
account its ``to_legacy`` section gives. The bench checks at start that
both answer the same (``bench.rest.check_equal``), so the comparison measures
the gateway's machinery, not a different translation.

What it shares with the gateway: keep-alive connections to the legacy app
(here one aiohttp ``ClientSession``, no cookie jar, the same timeouts; the
gateway's REST adapter has its own pool, ``adapters/rest/wire.py``), the
inbound bearer token checked as a SHA-256 digest with a constant-time compare,
orjson bodies, ``web.run_app`` with no access log.
What it leaves out, on purpose: everything else (other filters, PATCH/PUT,
attribute projection, schema validation, the concurrency limiter, SCIM error
detail beyond status and a short message).

Run as ``python -m bench.proxy --port N --token-sha256 HEX`` with
``ACME_HR_URL`` and ``ACME_HR_API_KEY`` in the environment (as the gateway).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import os
import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import web

SCIM_JSON = "application/scim+json"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"
MAX_PAGE = 200  #: Acme HR's cap on ``limit`` (rest.yaml's max_page)

_USER_NAME_EQ = re.compile(r'^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)

SESSION = web.AppKey("session", aiohttp.ClientSession)


class Failure(Exception):
    """An answer other than success, as a SCIM error."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


# -- the translation, by hand --------------------------------------------------------------


def account_to_user(account: dict[str, Any], base_url: str) -> dict[str, Any]:
    """An Acme HR account as the SCIM User the acme-hr mapping's from_legacy gives."""
    account_id = account["account_id"]
    user: dict[str, Any] = {"schemas": [USER_URN], "id": account_id}
    if login := account.get("login"):
        user["userName"] = login
    name = {}
    if given := account.get("given"):
        name["givenName"] = given
    if family := account.get("family"):
        name["familyName"] = family
    if name:
        user["name"] = name
    if display := account.get("display"):
        user["displayName"] = display
    if mail := account.get("mail"):
        user["emails"] = [_element(account, mail, "mail")]
    if phone := account.get("phone"):
        user["phoneNumbers"] = [_element(account, phone, "phone")]
    if title := account.get("title"):
        user["title"] = title
    if status := account.get("status"):  # no `active` while the status is not set
        user["active"] = status == "enabled"
    enterprise: dict[str, Any] = {}
    if dept := account.get("dept"):
        enterprise["department"] = dept
    if employee_no := account.get("employee_no"):
        enterprise["employeeNumber"] = employee_no
    if manager_id := account.get("manager_id"):
        enterprise["manager"] = {"value": manager_id}
    if enterprise:
        user[ENTERPRISE_URN] = enterprise
        user["schemas"].append(ENTERPRISE_URN)
    meta = {"resourceType": "User", "location": f"{base_url}/Users/{account_id}"}
    # Acme HR's timestamps are ISO 8601 UTC with a Z already: SCIM's format, copied as they are.
    if created := account.get("created_at"):
        meta["created"] = created
    if modified := account.get("updated_at"):
        meta["lastModified"] = modified
    user["meta"] = meta
    return user


def _element(account: dict[str, Any], value: str, prefix: str) -> dict[str, Any]:
    """The mail or phone as a one-element multi-value: no kind reads as ``work``."""
    element: dict[str, Any] = {"value": value, "type": account.get(f"{prefix}_kind") or "work"}
    if label := account.get(f"{prefix}_label"):
        element["display"] = label
    if (flag := account.get(f"{prefix}_primary")) in _FLAGS:
        element["primary"] = _FLAGS[flag]
    return element


_FLAGS = {"y": True, "n": False}
_STATUSES = {True: "enabled", False: "suspended"}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _primary(values: Any) -> dict[str, Any]:
    """The primary element, else the first one (the ``primary`` filter); {} for none."""
    items = [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []
    if not items:
        return {}
    return next((i for i in items if i.get("primary") is True), items[0])


def _of_type(values: Any, kind: str) -> dict[str, Any] | None:
    """The first element of type ``kind``, in any case (the ``of_type`` filter)."""
    for item in values if isinstance(values, list) else ():
        if isinstance(item, dict) and str(item.get("type") or "").lower() == kind:
            return item
    return None


def _fields(element: dict[str, Any], prefix: str) -> dict[str, Any]:
    """One mail or phone element as Acme HR's value, kind, label and "y"/"n" primary flag."""
    primary = element.get("primary")
    return {
        prefix: _text(element.get("value")),
        f"{prefix}_kind": _text(element.get("type")),
        f"{prefix}_label": _text(element.get("display")),
        f"{prefix}_primary": "y" if primary is True else "n" if primary is False else None,
    }


def user_to_account(user: dict[str, Any]) -> dict[str, Any]:
    """A SCIM User as the account fields the acme-hr mapping's to_legacy gives."""
    name = _object(user.get("name"))
    enterprise = _object(user.get(ENTERPRISE_URN))
    manager = _object(enterprise.get("manager"))
    emails, phones = user.get("emails"), user.get("phoneNumbers")
    fields = {
        "login": _text(user.get("userName")),
        "given": _text(name.get("givenName")),
        "family": _text(name.get("familyName")),
        "display": _text(user.get("displayName")),
        # The primary mail (else the first); the work phone, else the primary (else the first).
        **_fields(_primary(emails), "mail"),
        **_fields(_of_type(phones, "work") or _primary(phones), "phone"),
        "title": _text(user.get("title")),
        "dept": _text(enterprise.get("department")),
        "employee_no": _text(enterprise.get("employeeNumber")),
        "manager_id": _text(manager.get("value")),
        # No status without `active`: Acme HR enables a new account then.
        "status": _STATUSES.get(active) if isinstance(active := user.get("active"), bool) else None,
    }
    return {k: v for k, v in fields.items() if v is not None}


# -- HTTP -----------------------------------------------------------------------------------


def _response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, headers=headers, content_type=SCIM_JSON
    )


def _error(failure: Failure) -> web.Response:
    body: dict[str, Any] = {"schemas": [ERROR_URN], "status": str(failure.status)}
    if failure.scim_type:
        body["scimType"] = failure.scim_type
    body["detail"] = failure.detail
    return _response(body, failure.status)


class Proxy:
    def __init__(
        self,
        legacy_url: str,
        api_key: str,
        token_digest: bytes,
        base_path: str,
        max_concurrency: int = 0,
    ) -> None:
        self.legacy_url = legacy_url.rstrip("/")
        #: Legacy calls in flight at once (the gateway's max_concurrency); 0: unbounded.
        self.limit = asyncio.Semaphore(max_concurrency) if max_concurrency > 0 else None
        self.legacy_headers = {"Accept": "application/json", "X-Api-Key": api_key}
        self.post_headers = {**self.legacy_headers, "Content-Type": "application/json"}
        self.token_digest = token_digest
        self.base_path = base_path

    def check_token(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        given = hashlib.sha256(token.strip().encode()).digest()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self.token_digest):
            raise Failure(401, "invalid credentials")

    def base_url(self, request: web.Request) -> str:
        return f"{request.scheme}://{request.host}{self.base_path}"

    async def call(
        self, request: web.Request, method: str, path: str, body: Any = None, **params: str
    ) -> tuple[int, Any]:
        if self.limit is None:
            return await self._call(request, method, path, body, params)
        async with self.limit:
            return await self._call(request, method, path, body, params)

    async def _call(
        self, request: web.Request, method: str, path: str, body: Any, params: dict[str, str]
    ) -> tuple[int, Any]:
        session = request.app[SESSION]
        try:
            async with session.request(
                method,
                self.legacy_url + path,
                params=params or None,
                data=None if body is None else orjson.dumps(body),
                headers=self.legacy_headers if body is None else self.post_headers,
                allow_redirects=False,
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Failure(503, f"cannot reach the app: {type(exc).__name__}") from None
        if status == 404:
            raise Failure(404, "not found")
        if status == 409:
            raise Failure(409, "a user with that userName or e-mail exists", "uniqueness")
        if status in (400, 422):
            raise Failure(400, "the app refused the values", "invalidValue")
        if not 200 <= status < 300:
            raise Failure(502, f"the app answered {status}")
        try:
            return status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise Failure(502, "the app's answer is not JSON") from None

    async def get_user(self, request: web.Request) -> web.Response:
        try:
            self.check_token(request)
            account_id = quote(request.match_info["id"], safe="")
            _, data = await self.call(request, "GET", f"/accounts/{account_id}")
            return _response(account_to_user(data["account"], self.base_url(request)))
        except Failure as failure:
            return _error(failure)

    async def list_users(self, request: web.Request) -> web.Response:
        try:
            self.check_token(request)
            params = {}
            text = request.query.get("filter")
            if text is not None:
                match = _USER_NAME_EQ.match(text)
                if match is None:
                    raise Failure(400, "only userName eq is supported", "invalidFilter")
                params["login"] = orjson.loads(f'"{match.group(1)}"')
            start, count = _int(request, "startIndex", 1), _int(request, "count", 100)
            params["offset"] = str(max(start, 1) - 1)
            params["limit"] = str(min(max(count, 1), MAX_PAGE))
            _, data = await self.call(request, "GET", "/accounts", **params)
            base = self.base_url(request)
            resources = [account_to_user(a, base) for a in data["items"]][: max(count, 0)]
            body = {
                "schemas": [LIST_URN],
                "totalResults": data["total"],
                "itemsPerPage": len(resources),
                "startIndex": max(start, 1),
                "Resources": resources,
            }
            return _response(body)
        except Failure as failure:
            return _error(failure)

    async def create_user(self, request: web.Request) -> web.Response:
        try:
            self.check_token(request)
            try:
                user = orjson.loads(await request.read())
            except orjson.JSONDecodeError:
                raise Failure(400, "the request body is not valid JSON", "invalidSyntax") from None
            if not isinstance(user, dict) or not _text(user.get("userName")):
                raise Failure(400, "userName is required", "invalidValue")
            body = {"account": user_to_account(user)}
            _, data = await self.call(request, "POST", "/accounts", body)
            created = account_to_user(data["account"], self.base_url(request))
            return _response(created, 201, {"Location": created["meta"]["location"]})
        except Failure as failure:
            return _error(failure)


def _int(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise Failure(400, f"{name} must be an integer", "invalidValue") from None


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(
    legacy_url: str, api_key: str, token_digest: bytes, base_path: str, max_concurrency: int = 0
) -> web.Application:
    proxy = Proxy(legacy_url, api_key, token_digest, base_path, max_concurrency)
    app = web.Application()

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        # As the REST adapter's client: one pool for all calls, no cookies, same timeouts.
        app[SESSION] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(),
            timeout=aiohttp.ClientTimeout(total=25, connect=5),
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        try:
            yield
        finally:
            await app[SESSION].close()

    app.cleanup_ctx.append(session_ctx)
    app.router.add_get("/healthz", healthz)
    app.router.add_get(f"{base_path}/Users/{{id}}", proxy.get_user)
    app.router.add_get(f"{base_path}/Users", proxy.list_users)
    app.router.add_post(f"{base_path}/Users", proxy.create_user)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.proxy", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token-sha256", required=True, help="hex digest of the bearer token")
    parser.add_argument("--base-path", default="/apps/bench/scim/v2")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=0,
        help="legacy calls in flight at once, as the gateway's app setting (0: unbounded)",
    )
    args = parser.parse_args(argv)
    app = create_app(
        os.environ["ACME_HR_URL"],
        os.environ["ACME_HR_API_KEY"],
        bytes.fromhex(args.token_sha256),
        args.base_path,
        args.max_concurrency,
    )
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
