"""Hostile-input fixtures: Acme HR on loopback recording every request, a gateway in front.

Acme HR (gateway/demo/legacy_app.py) is a real legacy REST app with SQLite storage; its
recorder sees each request's raw path before Acme HR's own routing and auth, so a test can
say exactly which legacy URLs a SCIM request reached. The PostgreSQL fixtures of
tests/sql (a server, a per-session payroll schema) are shared for the SQL adapter's cases.
"""

from __future__ import annotations

import logging

import pytest
from aiohttp.test_utils import TestServer
from rest_support import Recorder, ServerFactory
from security.hostile import ACME_KEY, Client, ClientFactory, acme_settings
from security.sinks import Sinks, log_texts
from sql.conftest import payroll, payroll_schema, pg_dsn  # noqa: F401 - PostgreSQL fixtures
from support import TOKEN

from gateway.app import create_app
from gateway.demo.legacy_app import create_legacy_app


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
