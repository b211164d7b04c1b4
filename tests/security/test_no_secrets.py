"""A whole provisioning conversation with known secrets: none of them in any log line,
error body, response header or audit record.

Acme HR (the demo legacy REST app) runs on loopback behind the REST adapter; its
API key is a legacy credential the gateway holds. The IdP authenticates with a
bearer token and, in a second pass, with Basic; users are created with a
password. Spans are not covered here: the gateway has no tracing yet.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from security.conftest import Journal, basic, bearer
from support import digest

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.demo.legacy_app import create_legacy_app
from gateway.http.views import RECORDER
from gateway.mapping.engine import MAPPINGS_DIR

IDP_TOKEN = "idp-T0KEN-never-printed-7f3a"
IDP_PASSWORD = "idp-PA55WORD-never-printed-19c2"
LEGACY_KEY = "acme-API-KEY-never-printed-e41b"
USER_PASSWORD = "user-PA55WORD-never-printed-88d0"
SECRETS = (IDP_TOKEN, IDP_PASSWORD, LEGACY_KEY, USER_PASSWORD)

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BASE = "/apps/acme/scim/v2"
ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def acme(
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    journal: Journal,
) -> TestClient[Any, Any]:
    server = await aiohttp_server(create_legacy_app(":memory:", LEGACY_KEY))
    monkeypatch.setenv("ACME_HR_URL", str(server.make_url("/api/v1")))
    monkeypatch.setenv("ACME_HR_API_KEY", LEGACY_KEY)
    monkeypatch.setenv("IDP_PASSWORD", IDP_PASSWORD)
    rest = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    auth = {
        "tokens": [{"name": "entra", "sha256": digest(IDP_TOKEN)}],
        "basic": [{"name": "ping", "username": "ping", "password": "${env:IDP_PASSWORD}"}],
    }
    raw = {
        "apps": {"acme": {"adapter": "rest", "mapping": "acme-hr", "settings": rest, "auth": auth}}
    }
    app = create_app(parse_settings(raw))
    app[RECORDER] = journal
    return await aiohttp_client(app)


async def conversation(
    client: TestClient[Any, Any], headers: dict[str, str], tag: str
) -> list[str]:
    """Provision, change, group, fail in the usual ways, deprovision; every answer's text."""
    seen: list[str] = []

    async def send(method: str, path: str, body: Any = None, **extra: str) -> Any:
        resp = await client.request(
            method, f"{BASE}{path}", json=body, headers={**headers, **extra}
        )
        seen.append(f"{resp.status} {dict(resp.headers)} {await resp.text()}")
        return await resp.json(content_type=None) if resp.status != 204 else None

    user = {
        "schemas": [USER],
        "userName": f"bjensen-{tag}",
        "password": USER_PASSWORD,
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "emails": [{"type": "work", "value": f"bjensen-{tag}@example.com", "primary": True}],
    }
    created = await send("POST", "/Users", user)
    uid = created["id"]
    await send("POST", "/Users", user)  # 409 uniqueness
    await send("GET", f'/Users?filter=userName eq "bjensen-{tag}"')
    await send("GET", "/Users?filter=userName eq")  # 400 invalidFilter
    ops = [{"op": "replace", "path": "password", "value": USER_PASSWORD}]
    await send("PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": ops})
    ops = [{"op": "replace", "value": {"active": False, "displayName": "Babs"}}]
    await send("PATCH", f"/Users/{uid}", {"schemas": [PATCH], "Operations": ops})
    group = await send("POST", "/Groups", {"schemas": [GROUP], "displayName": f"Team {tag}"})
    ops = [{"op": "add", "path": "members", "value": [{"value": uid}]}]
    await send("PATCH", f"/Groups/{group['id']}", {"schemas": [PATCH], "Operations": ops})
    await send("PUT", f"/Users/{uid}", {**user, "password": USER_PASSWORD}, **{"If-Match": 'W/"x"'})
    await send("GET", "/Users/nope-404")
    await send("POST", "/Users", {"schemas": [USER], "password": USER_PASSWORD})  # no userName
    await send("DELETE", f"/Groups/{group['id']}")
    await send("DELETE", f"/Users/{uid}")
    return seen


async def test_no_secret_in_logs_answers_or_the_audit(
    acme: TestClient[Any, Any], journal: Journal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answers = await conversation(acme, bearer(IDP_TOKEN), "token")
    answers += await conversation(acme, basic("ping", IDP_PASSWORD), "basic")
    for wrong in (
        bearer(IDP_TOKEN + "x"),
        basic("ping", IDP_PASSWORD + "x"),
        {"Authorization": LEGACY_KEY},
    ):
        resp = await acme.get(f"{BASE}/Users", headers=wrong)
        assert resp.status == 401
        answers.append(f"{resp.status} {dict(resp.headers)} {await resp.text()}")

    statuses = sorted({int(a.split(" ", 1)[0]) for a in answers})
    assert {200, 201, 204, 400, 401, 404, 409}.issubset(statuses), statuses  # errors were made
    assert {op.client for op in journal.closed_ops} >= {"entra", "ping", None}

    lines = [record.getMessage() for record in caplog.records]
    lines += [str(record.args) for record in caplog.records]
    records = [repr(op) for op in journal.closed_ops]
    for secret in SECRETS:
        assert not [a for a in answers if secret in a], f"{secret} in an answer"
        assert not [line for line in lines if secret in line], f"{secret} in a log line"
        assert not [r for r in records if secret in r], f"{secret} in the audit"
