import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.memory import MemoryAdapter, MemorySettings
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
    with pytest.raises(ValueError, match="memory adapter seed"):
        await MemoryAdapter(MemorySettings(seed=seed)).open()
