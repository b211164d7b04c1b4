"""Header bytes that are not UTF-8 (issue 13, item 5): a SCIM error, never a 500.

aiohttp keeps such bytes as lone surrogates in the header's text; hashing that
text used to raise, so an ``Authorization`` holding byte 0xFF answered 500 on
app and admin routes. Raw sockets on loopback, because no HTTP client sends them.
"""

from __future__ import annotations

import json
import logging

import pytest
from aiohttp.test_utils import TestServer
from hostile_bytes import raw_request
from jwt_issuer import Issuer
from security.conftest import ServerFactory, app_settings
from support import TOKEN, digest

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.logs import JsonFormatter

ADMIN_TOKEN = "admin-token-for-hostile-headers"


@pytest.fixture
async def server(aiohttp_server: ServerFactory, issuer: Issuer) -> TestServer:
    settings = app_settings(issuer)
    raw = settings.model_dump(mode="json")
    raw["apps"]["crm"]["auth"]["tokens"] = [{"name": "crm-token", "sha256": digest(TOKEN)}]
    raw["apps"]["crm"]["auth"].pop("jwt")
    raw["apps"]["hr"]["auth"].pop("jwt")
    raw["apps"]["hr"]["auth"]["basic"] = []
    raw["apps"]["crm"]["auth"]["basic"] = []
    raw["admin"] = {"tokens": [{"name": "auditor", "sha256": digest(ADMIN_TOKEN)}]}
    return await aiohttp_server(create_app(parse_settings(raw)))


@pytest.mark.parametrize(
    "authorization",
    [b"Bearer \xff", b"\xff\xfe", b"Basic \xff", b"Bearer " + TOKEN.encode() + b"\xff"],
)
@pytest.mark.parametrize("path", [b"/apps/crm/scim/v2/Users", b"/admin/audit"])
async def test_an_authorization_header_with_bytes_that_are_not_utf8_is_a_401(
    server: TestServer, authorization: bytes, path: bytes
) -> None:
    head = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: " + authorization + b"\r\n"
    status, headers, body = await raw_request(server, head)
    assert status == 401
    error = json.loads(body)
    assert error["status"] == "401"
    assert "\\udc" not in body.decode() and "\xff" not in body.decode("latin-1")
    assert headers["WWW-Authenticate"].startswith("Bearer")


async def test_a_user_agent_with_bytes_that_are_not_utf8_is_served(server: TestServer) -> None:
    head = (
        b"GET /apps/crm/scim/v2/Users HTTP/1.1\r\nHost: x\r\nUser-Agent: \xff\xfe bot\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
    )
    status, _, body = await raw_request(server, head)
    assert status == 200
    assert json.loads(body)["totalResults"] == 0


def test_a_log_line_with_undecodable_request_bytes_is_still_one_json_object() -> None:
    record = logging.LogRecord(
        "gateway.http", logging.ERROR, __file__, 1, "on %s", ("/\udcff",), None
    )
    line = JsonFormatter().format(record)
    assert json.loads(line)["message"] == "on /\udcff"
