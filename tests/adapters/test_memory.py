import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from scim2_models.path import ScimFilter
from support import BASE, TOKEN, make_settings

from adapters.memory import MemoryAdapter, MemorySettings
from gateway.app import create_app
from gateway.config import ConfigError
from gateway.sdk import Conflict, Query, Record
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


# -- records share nothing with the store ---------------------------------------------------
# The gateway owns a record's data and may change it (gateway.sdk.Record); the adapter keeps
# a JSON snapshot per resource and parses a fresh copy for every read.

ALICE: dict[str, Any] = {
    "userName": "alice",
    "name": {"givenName": "Alice", "familyName": "Smith"},
    "emails": [{"value": "alice@example.com", "type": "work", "primary": True}],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "m1"}},
}


def _scribble(data: dict[str, Any]) -> None:
    """Change a record's data everywhere a careless caller could: top level and nested."""
    data["userName"] = "mallory"
    data["active"] = False
    del data["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]
    data["name"]["givenName"] = "Mallory"
    data["emails"][0]["value"] = "mallory@example.com"
    data["emails"].append({"value": "extra@example.com"})


async def test_changing_a_read_record_changes_nothing_in_the_store() -> None:
    adapter = MemoryAdapter()
    created = await adapter.create("User", json.loads(json.dumps(ALICE)))
    reads = [
        created,
        await adapter.get("User", created.id),
        (await adapter.search(Query("User"))).records[0],
        (await adapter.search(Query("User", ScimFilter('userName eq "alice"').ast))).records[0],
        (await adapter.search(Query("User", sort_by="userName"))).records[0],
    ]
    for record in reads:
        _scribble(record.data)
        assert (await adapter.get("User", created.id)).data == ALICE
        assert (await adapter.search(Query("User"))).records[0].data == ALICE
    # the name index and the filters still see the stored data, not the scribbles
    found = await adapter.search(Query("User", ScimFilter('name.givenName eq "Alice"').ast))
    assert [r.id for r in found.records] == [created.id]
    with pytest.raises(Conflict):
        await adapter.create("User", {"userName": "ALICE"})
    await adapter.create("User", {"userName": "mallory"})


async def test_two_reads_never_share_an_object() -> None:
    adapter = MemoryAdapter()
    created = await adapter.create("User", json.loads(json.dumps(ALICE)))
    first, second = [await adapter.get("User", created.id) for _ in range(2)]
    assert first.data == second.data
    assert first.data is not second.data
    assert first.data["name"] is not second.data["name"]
    assert first.data["emails"][0] is not second.data["emails"][0]


async def test_changing_what_was_written_afterwards_changes_nothing_in_the_store() -> None:
    adapter = MemoryAdapter()
    data = json.loads(json.dumps(ALICE))
    created = await adapter.create("User", data)
    _scribble(data)
    changes: dict[str, Any] = {"name": {"givenName": "Alicia"}, "emails": [{"value": "a@x.org"}]}
    updated = await adapter.update("User", created.id, changes)
    changes["name"]["givenName"] = "Mallory"
    changes["emails"].clear()
    expected = {**ALICE, "name": {"givenName": "Alicia"}, "emails": [{"value": "a@x.org"}]}
    assert updated.data == expected
    assert (await adapter.get("User", created.id)).data == expected
    found = await adapter.search(Query("User", ScimFilter('name.givenName eq "Alicia"').ast))
    assert [r.id for r in found.records] == [created.id]


async def test_a_page_read_before_a_write_keeps_what_it_read() -> None:
    """A page's records parse their data only when it is first read (most lists never read
    it: the gateway reuses the JSON it kept); it is still the data as it was at the search."""
    adapter = MemoryAdapter()
    created = await adapter.create("User", json.loads(json.dumps(ALICE)))
    (record,) = (await adapter.search(Query("User"))).records
    fields = [f.name for f in dataclasses.fields(Record)]  # every one set, as a get sets it
    read = await adapter.get("User", created.id)
    assert [getattr(record, f) for f in fields] == [getattr(read, f) for f in fields]
    await adapter.update("User", created.id, {"userName": "alicia"})
    assert record.data == ALICE and record.version == created.version
    assert dataclasses.replace(record, version="x").data == ALICE  # copied as any record
    record.data = {"userName": "given"}  # the gateway owns the record and may set it
    assert record.data == {"userName": "given"}
    (now,) = (await adapter.search(Query("User"))).records
    assert now.data == {**ALICE, "userName": "alicia"} and now.version != created.version


async def test_a_page_without_filter_or_sort_is_taken_in_creation_order() -> None:
    adapter = MemoryAdapter()
    ids = [(await adapter.create("User", {"userName": f"u{n}"})).id for n in range(7)]
    await adapter.delete("User", ids[2])
    kept = ids[:2] + ids[3:]
    for start, count in ((1, 100), (1, 3), (3, 2), (6, 5), (7, 1), (50, 10)):
        page = await adapter.search(Query("User", start_index=start, count=count))
        assert [r.id for r in page.records] == kept[start - 1 : start - 1 + count]
        assert page.total == len(kept)
