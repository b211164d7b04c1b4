from collections.abc import AsyncIterator
from typing import Any

import pytest
from support import BASE, TOKEN, make_settings

from adapters.memory import MemoryAdapter
from gateway.app import create_app
from gateway.testing import AdapterContract


class TestMemoryAdapter(AdapterContract):
    @pytest.fixture
    async def adapter(self) -> AsyncIterator[MemoryAdapter]:
        adapter = MemoryAdapter(app="test")
        await adapter.open()
        yield adapter
        await adapter.aclose()


# -- group names through the gateway (Entra ID expects 409 uniqueness) ------------------

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


async def _post_group(client: Any, name: str) -> tuple[int, dict[str, Any]]:
    resp = await client.post(f"{BASE}/Groups", json={"schemas": [GROUP], "displayName": name})
    body: dict[str, Any] = await resp.json()
    return resp.status, body


async def test_a_taken_group_display_name_is_409_uniqueness_through_the_gateway(
    client: Any,
) -> None:
    assert (await _post_group(client, "Sales"))[0] == 201
    status, body = await _post_group(client, "sales")
    assert (status, body["status"], body["scimType"]) == (409, "409", "uniqueness")
    found = await (
        await client.get(f"{BASE}/Groups", params={"filter": 'displayName eq "Sales"'})
    ).json()
    assert found["totalResults"] == 1


async def test_an_app_that_allows_duplicate_group_names_gets_them(
    aiohttp_client: Any,
) -> None:
    app = create_app(make_settings(unique_group_names=False))
    client = await aiohttp_client(app, headers={"Authorization": f"Bearer {TOKEN}"})
    assert (await _post_group(client, "Sales"))[0] == 201
    assert (await _post_group(client, "Sales"))[0] == 201


def test_unique_group_names_is_on_by_default() -> None:
    assert make_settings().apps["crm"].unique_group_names is True
