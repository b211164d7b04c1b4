"""Limits on what one request may hold, each answered with a SCIM error (RFC 7644 3.12)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from support import BASE, TOKEN, make_settings

from gateway.app import create_app
from gateway.config import ConfigError, parse_settings
from gateway.errors import InvalidSyntax
from gateway.scim.body import json_depth, parse_body

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]


async def gateway(aiohttp_client: ClientFactory, **overrides: Any) -> Client:
    app = create_app(make_settings(**overrides))
    return await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})


async def error_of(resp: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = await resp.json(content_type=None)
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    return body


async def total_users(client: Client) -> int:
    resp = await client.get(f"{BASE}/Users")
    total: int = (await resp.json(content_type=None))["totalResults"]
    return total


def nested(levels: int) -> dict[str, Any]:
    """A User whose ``name`` object holds ``levels`` levels of objects in all."""
    inner: dict[str, Any] = {"x": 1}
    for _ in range(levels - 2):
        inner = {"x": inner}
    return {"schemas": [USER], "userName": "deep", "name": inner}


async def test_a_body_over_max_body_size_is_413_and_creates_nothing(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(aiohttp_client)
    big = orjson.dumps({"schemas": [USER], "userName": "big", "displayName": "x" * 2_200_000})
    resp = await client.post(
        f"{BASE}/Users", data=io.BytesIO(big), headers={"Content-Type": "application/json"}
    )
    await error_of(resp, 413)
    assert await total_users(client) == 0


async def test_a_body_nesting_deeper_than_max_json_depth_is_invalid_syntax(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(aiohttp_client, max_json_depth=8)
    resp = await client.post(f"{BASE}/Users", json=nested(9))
    body = await error_of(resp, 400, "invalidSyntax")
    assert "deeper than 8" in body["detail"]
    assert await total_users(client) == 0


async def test_a_body_at_max_json_depth_is_read(aiohttp_client: ClientFactory) -> None:
    client = await gateway(aiohttp_client, max_json_depth=8)
    resp = await client.post(f"{BASE}/Users", json=nested(8))
    assert resp.status == 201, await resp.text()  # read; the nested name is its sub-attributes


async def test_a_body_nesting_past_the_json_parser_limit_is_invalid_syntax(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(aiohttp_client)
    body = b'{"schemas":["' + USER.encode() + b'"],"userName":"a","x":' + b"[" * 5000
    resp = await client.post(
        f"{BASE}/Users",
        data=body + b"]" * 5000 + b"}",
        headers={"Content-Type": "application/json"},
    )
    await error_of(resp, 400, "invalidSyntax")


async def test_a_filter_over_max_filter_length_is_invalid_filter(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(aiohttp_client, max_filter_length=64)
    resp = await client.get(f"{BASE}/Users", params={"filter": f'userName eq "{"a" * 60}"'})
    await error_of(resp, 400, "invalidFilter")


async def test_a_filter_nesting_deeper_than_max_filter_depth_is_invalid_filter(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(aiohttp_client, max_filter_depth=3)
    deep = 'userName eq "a" or (title eq "b" and (title eq "c" or not (title eq "d")))'
    resp = await client.get(f"{BASE}/Users", params={"filter": deep})
    body = await error_of(resp, 400, "invalidFilter")
    assert "deeper than 3" in body["detail"]
    resp = await client.get(f"{BASE}/Users", params={"filter": 'userName eq "a" or title eq "b"'})
    assert resp.status == 200


async def test_a_count_over_max_count_is_clamped_not_refused(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(aiohttp_client, max_count=2)
    for n in range(3):
        resp = await client.post(f"{BASE}/Users", json={"schemas": [USER], "userName": f"u{n}"})
        assert resp.status == 201
    for count in ("3", "1000000", "9" * 40):
        resp = await client.get(f"{BASE}/Users", params={"count": count})
        assert resp.status == 200, count
        body = await resp.json(content_type=None)
        assert (body["totalResults"], body["itemsPerPage"]) == (3, 2)


async def test_service_provider_config_advertises_the_configured_limits(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(
        aiohttp_client, max_count=50, bulk={"max_operations": 7, "max_payload_size": 4096}
    )
    spc = await (await client.get(f"{BASE}/ServiceProviderConfig")).json(content_type=None)
    assert spc["bulk"] == {"supported": True, "maxOperations": 7, "maxPayloadSize": 4096}
    assert spc["filter"] == {"supported": True, "maxResults": 50}


def test_a_bulk_payload_larger_than_any_body_the_server_reads_is_a_config_error() -> None:
    raw = {
        "server": {"max_body_size": 4096},
        "apps": {
            "crm": {
                "adapter": "memory",
                "auth": {"tokens": [{"name": "idp", "sha256": "0" * 64}]},
                "bulk": {"max_payload_size": 8192},
            }
        },
    }
    try:
        parse_settings(raw)
    except ConfigError as exc:
        assert "apps.crm.bulk.max_payload_size (8192) exceeds server.max_body_size" in str(exc)
    else:
        raise AssertionError("accepted a bulk limit the server can never honour")


def test_request_timeout_below_call_timeout_is_a_config_error() -> None:
    try:
        make_settings(call_timeout=30, request_timeout=10)
    except ConfigError as exc:
        assert "request_timeout must be at least call_timeout" in str(exc)
    else:
        raise AssertionError("accepted a request deadline shorter than one call")


async def test_a_patch_over_max_patch_operations_is_413_and_changes_nothing(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(aiohttp_client, max_patch_operations=3)
    resp = await client.post(f"{BASE}/Users", json={"schemas": [USER], "userName": "p"})
    user = await resp.json(content_type=None)
    ops = [{"op": "replace", "path": "title", "value": f"t{n}"} for n in range(4)]
    resp = await client.patch(
        f"{BASE}/Users/{user['id']}", json={"schemas": [PATCH], "Operations": ops}
    )
    body = await error_of(resp, 413)
    assert "at most 3 operations" in body["detail"]
    after = await (await client.get(f"{BASE}/Users/{user['id']}")).json(content_type=None)
    assert "title" not in after
    resp = await client.patch(
        f"{BASE}/Users/{user['id']}", json={"schemas": [PATCH], "Operations": ops[:3]}
    )
    assert resp.status == 200


async def test_a_patch_path_over_max_filter_length_is_invalid_path(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(aiohttp_client, max_filter_length=64)
    resp = await client.post(f"{BASE}/Users", json={"schemas": [USER], "userName": "p"})
    user = await resp.json(content_type=None)
    path = "emails[" + " or ".join(['value eq "a"'] * 5) + "]"
    ops = [{"op": "remove", "path": path}]
    resp = await client.patch(
        f"{BASE}/Users/{user['id']}", json={"schemas": [PATCH], "Operations": ops}
    )
    body = await error_of(resp, 400, "invalidPath")
    assert "longer than 64 characters" in body["detail"]


async def test_attribute_lists_over_max_filter_length_are_invalid_value(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(aiohttp_client, max_filter_length=64)
    names = [f"name.givenName{n}" for n in range(10)]
    search = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"]}
    for key in ("attributes", "excludedAttributes"):
        resp = await client.post(f"{BASE}/Users/.search", json={**search, key: names})
        await error_of(resp, 400, "invalidValue")
        resp = await client.get(f"{BASE}/Users", params={key: ",".join(names)})
        await error_of(resp, 400, "invalidValue")
        resp = await client.post(f"{BASE}/Users/.search", json={**search, key: names[:3]})
        assert resp.status == 200


async def test_a_body_that_never_finishes_gets_504_at_the_request_deadline(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(aiohttp_client, call_timeout=0.5, request_timeout=0.5)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(
            f"POST {BASE}/Users HTTP/1.1\r\nHost: {client.host}\r\n"
            f"Authorization: Bearer {TOKEN}\r\nContent-Type: application/scim+json\r\n"
            'Content-Length: 1000\r\n\r\n{"schemas": ['.encode()
        )
        await writer.drain()  # ...and the rest of the body never comes
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        body = await asyncio.wait_for(reader.readexactly(length), timeout=10)
    finally:
        writer.close()
        await writer.wait_closed()
    assert head.split()[1] == b"504"
    error = orjson.loads(body)
    assert (error["schemas"], error["status"]) == ([ERROR], "504")
    assert await total_users(client) == 0


async def test_a_chunked_bulk_body_over_every_limit_names_the_bulk_limit(
    aiohttp_client: ClientFactory,
) -> None:
    client = await gateway(aiohttp_client)

    async def chunks() -> Any:
        for _ in range(40):  # 40 x 64 KiB: over maxPayloadSize and over max_body_size
            yield b" " * 65536

    resp = await client.post(
        f"{BASE}/Bulk", data=chunks(), headers={"Content-Type": "application/scim+json"}
    )
    body = await error_of(resp, 413)
    assert body["detail"] == "a bulk request may be at most 1048576 bytes"


async def test_a_bulk_body_nested_a_thousand_deep_is_invalid_syntax_not_a_500(
    aiohttp_client: ClientFactory,
) -> None:
    """orjson reads 1000 levels; the bulkId walk would recurse past Python's limit."""
    client = await gateway(aiohttp_client)
    data = b"[" * 1000 + b'"bulkId:x"' + b"]" * 1000
    bulk = b'{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],"Operations":['
    bulk += b'{"method":"POST","path":"/Users","bulkId":"a","data":{"userName":%s}}]}' % data
    resp = await client.post(
        f"{BASE}/Bulk", data=bulk, headers={"Content-Type": "application/scim+json"}
    )
    await error_of(resp, 400, "invalidSyntax")


@pytest.mark.parametrize(
    ("raw", "refused"),
    [
        (b"[" * 8 + b"]" * 8, False),  # as many brackets as the limit: no walk needed
        (b"[" * 9 + b"]" * 9, True),  # one more, nested: refused
        (b'{"a": "' + b"[" * 40 + b'"}', False),  # brackets in a string count, nest nothing
        (b"[" + b"[]," * 30 + b"[]]", False),  # many brackets side by side: depth 2
        (b'{"a": "[[[[[[[[", "b": ' + b"[" * 9 + b"]" * 9 + b"}", True),
    ],
)
def test_the_bracket_count_shortcut_refuses_exactly_what_the_walk_refuses(
    raw: bytes, refused: bool
) -> None:
    value = orjson.loads(raw)
    assert (json_depth(value) > 8) is refused
    if refused:
        with pytest.raises(InvalidSyntax, match="deeper than 8"):
            parse_body(raw, max_depth=8)
    else:
        assert parse_body(raw, max_depth=8) == value
