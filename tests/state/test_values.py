"""Attribute values in the trail: off by default; when on, passwords and sensitive ones masked."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from state.conftest import SettingsFactory
from support import TOKEN

from gateway.app import create_app
from gateway.http.admin import AUDIT_LOG
from gateway.http.views import RECORDER
from gateway.state import AuditRecorder, Filters

BASE = "/apps/crm/scim/v2"
USER = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "ada@example.com",
    "password": "S3cret-Passw0rd!",
    "title": "Countess",
    "phoneNumbers": [{"value": "+44 20 7946 0000", "type": "work"}],
}

Client = TestClient[web.Request, web.Application]


async def trail(client: Client) -> list[dict[str, Any]]:
    recorder = client.app[RECORDER]
    assert isinstance(recorder, AuditRecorder)
    await recorder.flush()
    return (await client.app[AUDIT_LOG].list(Filters()))[0]


async def start(aiohttp_client: Any, settings_with: SettingsFactory, **audit: Any) -> Client:
    client: Client = await aiohttp_client(
        create_app(settings_with(**audit)), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    return client


async def test_values_are_off_by_default(
    settings_with: SettingsFactory, aiohttp_client: Any
) -> None:
    client = await start(aiohttp_client, settings_with)
    assert (await client.post(f"{BASE}/Users", json=USER)).status == 201
    (event,) = await trail(client)
    assert event["values"] is None
    assert "Countess" not in json.dumps(event)


async def test_values_mask_passwords_and_sensitive_attributes(
    settings_with: SettingsFactory, aiohttp_client: Any
) -> None:
    client = await start(aiohttp_client, settings_with, values=True, sensitive=["PhoneNumbers"])
    created = await (await client.post(f"{BASE}/Users", json=USER)).json()
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "title", "value": "Analyst"},
            {"op": "replace", "path": "password", "value": "N3w-Passw0rd!"},
        ],
    }
    assert (await client.patch(f"{BASE}/Users/{created['id']}", json=patch)).status == 200
    create, update = await trail(client)
    assert create["values"]["userName"] == "ada@example.com"
    assert create["values"]["title"] == "Countess"
    assert create["values"]["password"] == "****"
    assert create["values"]["phoneNumbers"] == "****"
    assert update["values"] == {"password": "****", "title": "Analyst"}
    text = json.dumps([create, update])
    assert "Passw0rd" not in text and "7946" not in text
    assert (await client.app[AUDIT_LOG].verify()).ok
