"""A gateway in front of the lax legacy app (lax_app.py), both on loopback."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from rest_support import ServerFactory
from safety.lax_app import LAX_MAPPING, LaxApp, lax_settings
from support import TOKEN, digest

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.guard import GuardStore
from gateway.http.views import RECORDER
from gateway.operation import Operation

BASE = "/apps/lax/scim/v2"
ADMIN_TOKEN = "admin-token-0123456789abcdef"

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]
Gateway = Callable[..., Awaitable[Client]]


class Audit:
    """A recorder keeping the operations as the audit trail receives them."""

    def __init__(self) -> None:
        self.opens: list[Operation] = []
        self.closes: list[Operation] = []

    async def opened(self, op: Operation) -> None:
        self.opens.append(op)

    async def closed(self, op: Operation) -> None:
        self.closes.append(op)


@pytest.fixture
def audit() -> Audit:
    return Audit()


@pytest.fixture
def lax() -> LaxApp:
    return LaxApp()


@pytest.fixture
async def lax_server(aiohttp_server: ServerFactory, lax: LaxApp) -> TestServer:
    return await aiohttp_server(lax.app())


@pytest.fixture
def gateway(aiohttp_client: ClientFactory, lax_server: TestServer, audit: Audit) -> Gateway:
    """Builds a gateway for the lax app; keyword arguments are app settings (guard, ...)."""

    async def build(guard_store: GuardStore | None = None, **app: Any) -> Client:
        settings = parse_settings(
            {
                "apps": {
                    "lax": {
                        "adapter": "rest",
                        "mapping": str(LAX_MAPPING),
                        "settings": lax_settings(str(lax_server.make_url(""))),
                        "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                        **app,
                    }
                },
                "admin": {"tokens": [{"name": "ops", "sha256": digest(ADMIN_TOKEN)}]},
            }
        )
        app = create_app(settings, guard_store=guard_store)
        app[RECORDER] = audit
        return await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})

    return build
