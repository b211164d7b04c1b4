"""Helpers for the IdP-rule suite: requests sent the way an IdP puts them on the wire.

``scim`` wraps the test clients: every request goes out with the exact
headers a test names and a path that is sent as written (``+`` stays ``+``,
a trailing ``&`` stays), and every JSON answer is checked for a ``password``
before the test sees it (IdP rule 11: ``password`` is never returned).
``wire`` writes a raw HTTP/1.1 request on a socket, for what aiohttp's client
cannot send (a trailing ``?``, no ``Accept`` header at all).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from support import BASE, TOKEN
from yarl import URL

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_URN = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


def plus(text: str) -> str:
    """A query value encoded the way Entra sends it: spaces as ``+``, quotes as ``%22``."""
    return quote_plus(text, safe="")


def eq(attr: str, value: str) -> str:
    """``attr eq "value"``, encoded with ``+`` for spaces, ready for ``?filter=``."""
    return plus(f'{attr} eq "{value}"')


def pct(text: str) -> str:
    """A query value with spaces as ``%20`` (Okta's encoding)."""
    return quote(text, safe="")


def patch_body(*ops: Mapping[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_URN], "Operations": list(ops)}


def assert_no_password(value: Any, where: str = "response") -> None:
    """IdP rule 11: ``password`` is write-only; no answer may carry it, at any depth."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            assert str(key).lower() != "password", f"{where} returned a password"
            assert_no_password(item, where)
    elif isinstance(value, list):
        for item in value:
            assert_no_password(item, where)


def assert_scim_error(body: Mapping[str, Any], status: int, scim_type: str | None = None) -> None:
    """IdP rule 18: every error is SCIM Error JSON with ``status`` as a string."""
    assert body["schemas"] == [ERROR_URN], body
    assert body["status"] == str(status), body
    assert isinstance(body["status"], str)
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body


def members_of(group: Mapping[str, Any]) -> list[str]:
    return sorted(m["value"] for m in group.get("members", []))


@dataclass
class Answer:
    """A response, read once: status, headers, content type and the JSON body (or None)."""

    status: int
    headers: Mapping[str, str]
    content_type: str
    body: Any
    text: str = field(repr=False, default="")

    def json(self) -> Any:
        assert self.body is not None, f"no JSON body (status {self.status}): {self.text!r}"
        return self.body


def _parse(text: str) -> Any:
    if not text.strip():
        return None
    body = json.loads(text)
    assert_no_password(body)
    return body


class Scim:
    """Requests against app ``crm`` with exactly the headers given.

    ``auth`` is the Authorization header value; by default ``Bearer <token>``.
    Paths are relative to BASE unless they start with ``/apps``, and are sent
    already encoded, as written.
    """

    def __init__(self, anon: Any) -> None:
        self.anon = anon

    @staticmethod
    def url(path: str) -> URL:
        target = path if path.startswith("/apps") else f"{BASE}{path}"
        return URL(target, encoded=True)

    async def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        auth: str | None = f"Bearer {TOKEN}",
        accept: str | None = "*/*",
    ) -> Answer:
        sent: dict[str, str] = {}
        skip: list[str] = []
        if auth is not None:
            sent["Authorization"] = auth
        if accept is None:
            skip.append("Accept")
        else:
            sent["Accept"] = accept
        sent.update(headers or {})
        data = None
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent.setdefault("Content-Type", "application/scim+json; charset=utf-8")
        resp = await self.anon.request(
            method, self.url(path), headers=sent, data=data, skip_auto_headers=skip
        )
        text = await resp.text()
        return Answer(resp.status, resp.headers, resp.content_type, _parse(text), text)

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> Answer:
        return await self.request("POST", path, json_body=body, **kw)

    async def put(self, path: str, body: Any, **kw: Any) -> Answer:
        return await self.request("PUT", path, json_body=body, **kw)

    async def patch(self, path: str, body: Any, **kw: Any) -> Answer:
        return await self.request("PATCH", path, json_body=body, **kw)

    async def delete(self, path: str, **kw: Any) -> Answer:
        return await self.request("DELETE", path, **kw)

    # -- state checks through the SCIM API --------------------------------------------

    async def read(self, path: str) -> dict[str, Any]:
        """GET a resource that must exist; the state a test asserts on."""
        answer = await self.get(path)
        assert answer.status == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def find(self, resource: str, filter_text: str) -> list[dict[str, Any]]:
        answer = await self.get(f"/{resource}?filter={plus(filter_text)}")
        assert answer.status == 200, answer.text
        found: list[dict[str, Any]] = answer.json()["Resources"]
        return found

    async def user(self, user_name: str, **extra: Any) -> dict[str, Any]:
        answer = await self.post("/Users", {"schemas": [USER_URN], "userName": user_name, **extra})
        assert answer.status == 201, answer.text
        body: dict[str, Any] = answer.json()
        return body

    async def group(
        self, display_name: str, members: Sequence[str] = (), **extra: Any
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [GROUP_URN], "displayName": display_name, **extra}
        if members:
            body["members"] = [{"value": m} for m in members]
        answer = await self.post("/Groups", body)
        assert answer.status == 201, answer.text
        created: dict[str, Any] = answer.json()
        return created


@dataclass
class WireAnswer:
    status: int
    headers: dict[str, str]
    body: Any


class Wire:
    """Raw HTTP/1.1 on a socket: the request line and headers go out byte for byte."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    async def send(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: Any = None,
    ) -> WireAnswer:
        payload = b"" if body is None else json.dumps(body).encode()
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        lines += [f"Content-Length: {len(payload)}", "Connection: close", "", ""]
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write("\r\n".join(lines).encode("latin-1") + payload)
            await writer.drain()
            raw = await asyncio.wait_for(reader.read(), timeout=10)
        finally:
            writer.close()
            await writer.wait_closed()
        head, _, rest = raw.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        got = {}
        for line in header_lines:
            key, _, value = line.partition(":")
            got[key.strip().lower()] = value.strip()
        assert "chunked" not in got.get("transfer-encoding", ""), "unexpected chunked answer"
        return WireAnswer(status, got, _parse(rest.decode("utf-8")))
