"""Fixtures of the security tests.

Credentials: two apps, ``crm`` and ``hr``, each with a bearer token, a Basic
login and a JWT credential. Both trust the same JWT issuer (on loopback) but
each wants its own audience, so a token minted for ``hr`` is a well-signed
token that ``crm`` must refuse.

Hostile input: Acme HR on loopback recording every request, a gateway in
front. Acme HR (gateway/demo/legacy_app.py) is a real legacy REST app with
SQLite storage; its recorder sees each request's raw path before Acme HR's own
routing and auth, so a test can say exactly which legacy URLs a SCIM request
reached. The PostgreSQL fixtures of tests/sql (a server, a per-session payroll
schema) are shared for the SQL adapter's cases.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jwt_issuer import Issuer, jwt_credential
from rest_support import Recorder
from security.hostile import ACME_KEY, Client, ClientFactory, acme_settings
from security.sinks import Sinks, log_texts
from sql.conftest import payroll, payroll_schema, pg_dsn  # noqa: F401 - PostgreSQL fixtures
from state.conftest import settings_with, state_pg_dsn, state_url  # noqa: F401 - state stores
from support import OTHER_TOKEN, TOKEN, digest

from gateway.app import create_app
from gateway.config import Settings, parse_settings
from gateway.demo.legacy_app import create_legacy_app
from gateway.http.views import RECORDER
from gateway.operation import Operation

READER_TOKEN = "reader-token-5555-aaaa"
CRM_PASSWORD = "crm-Basic-pa55word-0001"
HR_PASSWORD = "hr-Basic-pa55word-0002"

AppClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(username: str, password: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


def app_settings(issuer: Issuer, **crm_overrides: Any) -> Settings:
    crm = {
        "adapter": "memory",
        "auth": {
            "tokens": [
                {"name": "crm-token", "sha256": digest(TOKEN)},
                {"name": "crm-reader", "secret": READER_TOKEN, "read_only": True},
            ],
            "basic": [
                {
                    "name": "crm-basic",
                    "username": "crm-user",
                    "password_sha256": digest(CRM_PASSWORD),
                }
            ],
            "jwt": [jwt_credential(issuer, "crm-jwt", "crm")],
        },
        **crm_overrides,
    }
    hr = {
        "adapter": "memory",
        "auth": {
            "tokens": [{"name": "hr-token", "sha256": digest(OTHER_TOKEN)}],
            "basic": [{"name": "hr-basic", "username": "hr-user", "password": HR_PASSWORD}],
            "jwt": [jwt_credential(issuer, "hr-jwt", "hr")],
        },
    }
    return parse_settings({"apps": {"crm": crm, "hr": hr}})


@pytest.fixture
async def issuer(aiohttp_server: ServerFactory) -> Issuer:
    found = Issuer()
    found.add_key("k1")
    server = await aiohttp_server(found.app())
    found.url = str(server.make_url("/keys"))
    return found


class Journal:
    """A recorder that keeps every closed operation (client, remote, status)."""

    def __init__(self) -> None:
        self.closed_ops: list[Operation] = []

    @property
    def clients(self) -> list[str | None]:
        return [op.client for op in self.closed_ops]

    async def opened(self, op: Operation) -> None:
        return None

    async def closed(self, op: Operation) -> None:
        self.closed_ops.append(op)


@pytest.fixture
def journal() -> Journal:
    return Journal()


@pytest.fixture
async def gateway(
    aiohttp_client: AppClientFactory, issuer: Issuer, journal: Journal
) -> TestClient[web.Request, web.Application]:
    app = create_app(app_settings(issuer))
    app[RECORDER] = journal
    return await aiohttp_client(app)


@pytest.fixture
def legacy_calls() -> Recorder:
    return Recorder()


@pytest.fixture
async def acme_server(aiohttp_server: ServerFactory, legacy_calls: Recorder) -> TestServer:
    app = create_legacy_app(":memory:", ACME_KEY)
    app.middlewares.insert(0, legacy_calls.middleware)
    return await aiohttp_server(app)


@pytest.fixture
async def scim(
    aiohttp_client: ClientFactory, acme_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> Client:
    app = create_app(acme_settings(acme_server, monkeypatch))
    return await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def sinks(caplog: pytest.LogCaptureFixture) -> Sinks:
    """Where secrets must never appear; logs of every logger at DEBUG are collected."""
    caplog.set_level(logging.DEBUG)
    found = Sinks()
    found.add("logs", log_texts(caplog))
    return found
