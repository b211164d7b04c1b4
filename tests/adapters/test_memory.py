import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import BASE, TOKEN, make_settings

from adapters.memory import MemoryAdapter, MemorySettings
from gateway.app import create_app
from gateway.config import ConfigError
from gateway.sdk import Conflict
from gateway.testing import AdapterContract


class TestMemoryAdapter(AdapterContract):
    @pytest.fixture
    async def adapter(self) -> AsyncIterator[MemoryAdapter]:
        adapter = MemoryAdapter(app="test")
        await adapter.open()
        yield adapter
        await adapter.aclose()


async def test_a_seed_file_gives_every_process_the_same_users_and_groups(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    users = [{"id": f"u{i}", "userName": f"user{i}", "active": True} for i in range(3)]
    group = {"id": "g1", "displayName": "Staff", "members": [{"value": "u0"}, {"value": "u2"}]}
    seed.write_text(json.dumps({"Users": users, "Groups": [group]}), "utf-8")
    first, second = (MemoryAdapter(MemorySettings(seed=seed)) for _ in range(2))
    for adapter in (first, second):
        await adapter.open()
    for adapter in (first, second):
        assert (await adapter.get("User", "u1")).data["userName"] == "user1"
        staff = await adapter.get("Group", "g1")
        assert [m.value for m in staff.members] == ["u0", "u2"]
        assert [g.value for g in (await adapter.get("User", "u2")).groups] == ["g1"]
        with pytest.raises(Conflict):  # the seeded userName is indexed
            await adapter.create("User", {"userName": "USER0"})


@pytest.mark.parametrize("content", ["not json", "[]", '{"Users": [{"userName": "no-id"}]}'])
async def test_an_unusable_seed_file_stops_the_adapter_from_opening(
    tmp_path: Path, content: str
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(content, "utf-8")
    with pytest.raises(ConfigError, match="memory adapter seed"):
        await MemoryAdapter(MemorySettings(seed=seed)).open()


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
