"""The IdP flows through the REST adapter, checked in the legacy app itself.

``app`` runs each test twice: against Acme HR (the demo legacy app, a fresh one per
test, served on loopback) and against the session's real Redmine (marked e2e). Either
way a gateway app ``crm`` on the REST adapter sits in front, configured exactly as
``mappings/<app>/rest.yaml`` says, with ``mappings/<app>`` as its mapping.
``app.scim`` sends requests the way each IdP does (tests/idp/helpers.py);
``app.legacy`` reads what the app now holds through the app's own API
(tests/idp_rest/legacy.py). ``acme`` is the Acme HR case alone, for what only its
mapping carries (the manager).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from e2e.redmine import Redmine
from idp.helpers import Scim, Wire
from idp_rest.helpers import App
from idp_rest.legacy import AcmeHrApi, RedmineApi
from support import TOKEN, digest

from gateway.app import create_app
from gateway.config import parse_settings
from gateway.demo.legacy_app import create_legacy_app
from gateway.mapping.engine import MAPPINGS_DIR

ACME_HR_KEY = "acme-idp-rest-key-0042"

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


async def gateway(aiohttp_client: ClientFactory, mapping: str) -> TestClient[Any, Any]:
    """A gateway serving ``crm`` on the REST adapter; ${env:...} are set by the caller."""
    rest = yaml.safe_load((MAPPINGS_DIR / mapping / "rest.yaml").read_text("utf-8"))
    settings = parse_settings(
        {
            "apps": {
                "crm": {
                    "adapter": "rest",
                    "mapping": mapping,
                    "settings": rest,
                    "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                }
            }
        }
    )
    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def acme_app(
    aiohttp_client: ClientFactory,
    aiohttp_server: ServerFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[App]:
    server = await aiohttp_server(create_legacy_app(":memory:", ACME_HR_KEY))
    api_url = str(server.make_url("/api/v1"))
    monkeypatch.setenv("ACME_HR_URL", api_url)
    monkeypatch.setenv("ACME_HR_API_KEY", ACME_HR_KEY)
    anon = await gateway(aiohttp_client, "acme-hr")
    async with aiohttp.ClientSession(headers={"X-Api-Key": ACME_HR_KEY}) as session:
        yield App(
            "acme-hr",
            Scim(anon),
            Wire(anon.server.host, anon.server.port),
            AcmeHrApi(session, api_url),
        )


@pytest.fixture
async def redmine_app(
    aiohttp_client: ClientFactory, redmine: Redmine, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[App]:
    for name, value in redmine.env.items():
        monkeypatch.setenv(name, value)
    anon = await gateway(aiohttp_client, "redmine")
    async with redmine.client() as rm:
        yield App("redmine", Scim(anon), Wire(anon.server.host, anon.server.port), RedmineApi(rm))


@pytest.fixture(params=["acme-hr", pytest.param("redmine", marks=pytest.mark.e2e)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def app(backend: str, request: pytest.FixtureRequest) -> App:
    found: App = request.getfixturevalue("acme_app" if backend == "acme-hr" else "redmine_app")
    return found


@pytest.fixture
def acme(acme_app: App) -> App:
    return acme_app
