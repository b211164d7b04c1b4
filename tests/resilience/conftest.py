"""The fixtures of the fault-injection suite (helpers in tests/fault_support.py)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from fault_support import APP, REST, ClientFactory, Clock, Rig, RigFactory
from rest_support import API_KEY, ServerFactory
from state.conftest import settings_with, state_pg_dsn, state_url  # noqa: F401 - state stores
from support import TOKEN

from adapters.rest import RestAdapter
from gateway.app import BREAKERS, create_app
from gateway.demo.faults import Faults, Trail, acme_settings
from gateway.demo.legacy_app import STORE, create_legacy_app
from gateway.http.views import RECORDER, SERVICES
from gateway.retry import Pacing
from gateway.wrapping import unwrap


@pytest.fixture
def make_rig(aiohttp_server: ServerFactory, aiohttp_client: ClientFactory) -> RigFactory:
    async def make(rest: dict[str, Any] | None = None) -> Rig:
        faults = Faults()
        legacy: TestServer = await aiohttp_server(
            create_legacy_app(":memory:", API_KEY, faults=faults)
        )
        settings = acme_settings(
            str(legacy.make_url("/api/v1")), API_KEY, TOKEN, rest={**REST, **(rest or {})}, app=APP
        )
        app = create_app(settings)
        trail = Trail()
        app[RECORDER] = trail
        clock = Clock()
        breaker = app[BREAKERS]["acme"]
        breaker.clock = clock
        scim = await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})
        rig = Rig(scim, faults, trail, legacy.app[STORE], clock, breaker)

        async def wait(seconds: float) -> None:
            rig.waits.append(seconds)

        adapter = unwrap(app[SERVICES]["acme"].service.adapter, RestAdapter)
        assert adapter is not None
        adapter.client.pacing = Pacing(sleep=wait)
        return rig

    return make


@pytest.fixture
async def rig(make_rig: RigFactory) -> Rig:
    return await make_rig()
