"""Helpers for the REST adapter's tests: small legacy APIs on loopback, settings, a mapping."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from adapters.rest import RestAdapter, RestSettings

API_KEY = "k3y-Sup3r-S3cret-0042"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass
class Seen:
    method: str
    raw_path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class Recorder:
    """Every request a test app received, as it arrived (raw path, headers, JSON body)."""

    calls: list[Seen] = field(default_factory=list)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        self.calls.append(
            Seen(
                request.method,
                request.raw_path.split("?", 1)[0],
                dict(request.query),
                dict(request.headers),
                body,
            )
        )
        return await handler(request)

    def paths(self, method: str | None = None) -> list[str]:
        return [c.raw_path for c in self.calls if method is None or c.method == method]

    def clear(self) -> None:
        self.calls.clear()


def json_response(body: Any, status: int = 200, **headers: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )


class FieldMapping:
    """A mapping where each listed SCIM attribute is a plain copy of one legacy field."""

    def __init__(self, fields: Mapping[str, Mapping[str, str]]) -> None:
        self.fields = {t: dict(f) for t, f in fields.items()}

    def to_legacy(self, resource_type: str, resource: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for path, legacy in self.fields.get(resource_type, {}).items():
            value = _get(resource, path)
            if value is not None:
                out[legacy] = value
        return out

    def from_legacy(self, resource_type: str, record: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for path, legacy in self.fields.get(resource_type, {}).items():
            if record.get(legacy) is not None:
                _put(out, path, record[legacy])
        return out

    def legacy_field(self, resource_type: str, path: str) -> str | None:
        for scim, legacy in self.fields.get(resource_type, {}).items():
            if scim.lower() == path:
                return legacy
        return None

    def attributes(self, resource_type: str) -> frozenset[str] | None:
        return None

    def required(self, resource_type: str) -> frozenset[str]:
        return frozenset()


def _get(resource: Mapping[str, Any], path: str) -> Any:
    head, _, sub = path.partition(".")
    value = resource.get(head)
    if sub and isinstance(value, list):
        value = value[0] if value else None
    if sub:
        return value.get(sub) if isinstance(value, Mapping) else None
    return value


def _put(out: dict[str, Any], path: str, value: Any) -> None:
    head, _, sub = path.partition(".")
    if not sub:
        out[head] = value
    elif head == "emails":
        out[head] = [{sub: value}]
    else:
        out.setdefault(head, {})[sub] = value


#: userName, name.givenName, emails.value as login, given, mail; Group displayName as name.
MAPPING = FieldMapping(
    {
        "User": {"userName": "login", "name.givenName": "given", "emails.value": "mail"},
        "Group": {"displayName": "name"},
    }
)


def user_section(**overrides: Any) -> dict[str, Any]:
    """A users section for an API at /items (ids under ``id``, list under ``items``)."""
    section: dict[str, Any] = {
        "id_field": "id",
        "get": {"path": "/items/{id}"},
        "list": {
            "path": "/items",
            "items": "items",
            "total": "total",
            "paging": {"style": "offset"},
        },
        "create": {"path": "/items"},
        "update": {"path": "/items/{id}"},
        "delete": {"path": "/items/{id}"},
    }
    section.update(overrides)
    return section


def make_settings(base_url: str, **overrides: Any) -> RestSettings:
    raw: dict[str, Any] = {
        "base_url": base_url,
        "auth": {"type": "api_key", "header": "X-Api-Key", "key": API_KEY},
        "users": user_section(),
    }
    raw.update(overrides)
    return RestSettings.model_validate(raw)


def make_adapter(base_url: str, mapping: Any = MAPPING, **overrides: Any) -> RestAdapter:
    return RestAdapter(make_settings(base_url, **overrides), app="test", mapping=mapping)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


Opener = Callable[[RestAdapter], Awaitable[RestAdapter]]


@pytest.fixture(name="opened")
async def opened_fixture() -> AsyncIterator[Opener]:
    """Opens adapters for a test and closes them after it, also when it fails."""
    adapters: list[RestAdapter] = []

    async def open_adapter(adapter: RestAdapter) -> RestAdapter:
        await adapter.open()
        adapters.append(adapter)
        return adapter

    yield open_adapter
    for adapter in adapters:
        await adapter.aclose()
