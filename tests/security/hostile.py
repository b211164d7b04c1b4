"""Shared by the hostile-input tests: Acme HR's key, the gateway's settings in front of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from support import TOKEN, digest

from gateway.config import Settings, parse_settings
from gateway.mapping.engine import MAPPINGS_DIR

ACME = "/apps/acme/scim/v2"
#: Acme HR's own API key: the gateway's credential toward the legacy app.
ACME_KEY = "acme-LEGACY-api-key-5f0c2e91"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]


def acme_settings(acme_server: TestServer, monkeypatch: pytest.MonkeyPatch, **app: Any) -> Settings:
    """Gateway settings for app ``acme``: the REST adapter, rest.yaml and the acme-hr mapping."""
    monkeypatch.setenv("ACME_HR_URL", str(acme_server.make_url("/api/v1")))
    monkeypatch.setenv("ACME_HR_API_KEY", ACME_KEY)
    rest = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    acme = {
        "adapter": "rest",
        "mapping": "acme-hr",
        "settings": rest,
        "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
        **app,
    }
    return parse_settings({"apps": {"acme": acme}})
