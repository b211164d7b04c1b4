"""Two apps, ``crm`` and ``hr``, each with a bearer token, a Basic login and a JWT credential.

Both trust the same JWT issuer (on loopback) but each wants its own audience,
so a token minted for ``hr`` is a well-signed token that ``crm`` must refuse.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from jwt_issuer import Issuer, jwt_credential
from support import OTHER_TOKEN, TOKEN, digest

from gateway.app import create_app
from gateway.config import Settings, parse_settings
from gateway.http.views import RECORDER
from gateway.operation import Operation

READER_TOKEN = "reader-token-5555-aaaa"
CRM_PASSWORD = "crm-Basic-pa55word-0001"
HR_PASSWORD = "hr-Basic-pa55word-0002"

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
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
    aiohttp_client: ClientFactory, issuer: Issuer, journal: Journal
) -> TestClient[web.Request, web.Application]:
    app = create_app(app_settings(issuer))
    app[RECORDER] = journal
    return await aiohttp_client(app)
