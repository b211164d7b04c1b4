"""Shared fixtures: a gateway app on the memory adapter, its client, and sample payloads.

``redmine`` (a real Redmine on loopback, session-scoped; see ``e2e.redmine``) is registered
here, once, so the folders that provision into it (e2e, idp_rest) share the same one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from e2e.redmine import redmine
from support import PAYLOADS, TOKEN, make_settings

from gateway.app import create_app
from gateway.config import Settings

__all__ = ["redmine"]


@pytest.fixture
def payload() -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((PAYLOADS / name).read_text("utf-8"))

    return load


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings) -> web.Application:
    return create_app(settings)


ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def client(
    aiohttp_client: ClientFactory, app: web.Application
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
async def anon(
    aiohttp_client: ClientFactory, app: web.Application
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(app)
