"""One SCIM write operation is one transaction on the SQL adapter (issue 4), checked in the rows.

A PUT or PATCH that changes a group's fields and its members makes up to three
adapter calls (update, remove_members, add_members) and a read-back; the
gateway makes them inside ``adapter.transaction()``, so they commit together
or not at all. The gateway app ``crm`` runs on the shipped payroll settings in
each mode; the assertions read ``org_unit`` and ``org_unit_member`` straight
from the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from idp.helpers import GROUP_URN, Scim, assert_scim_error, members_of, patch_body
from support import TOKEN, digest

from adapters.sql import SqlAdapter
from gateway.app import create_app
from gateway.config import parse_settings
from gateway.errors import InvalidValue, UpstreamError

from .conftest import Payroll, open_adapter

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
MODES = ["table", "statements"]


async def gateway(
    aiohttp_client: ClientFactory,
    payroll: Payroll,
    mode: str,
    *,
    app: dict[str, Any] | None = None,
    **settings: Any,
) -> Scim:
    config = parse_settings(
        {
            "apps": {
                "crm": {
                    "adapter": "sql",
                    "mapping": "payroll",
                    "settings": payroll.settings(mode, **settings),
                    "auth": {"tokens": [{"name": "idp", "sha256": digest(TOKEN)}]},
                    **(app or {}),
                }
            }
        }
    )
    return Scim(await aiohttp_client(create_app(config)))


async def unit_name(payroll: Payroll, group: str) -> str:
    row = await payroll.row("SELECT unit_nm FROM org_unit WHERE unit_id = $1", int(group))
    assert row is not None
    return str(row["unit_nm"])


def rename_and_add(name: str, *members: str) -> dict[str, Any]:
    return patch_body(
        {"op": "replace", "path": "displayName", "value": name},
        {"op": "add", "path": "members", "value": [{"value": m} for m in members]},
    )


@pytest.mark.parametrize("mode", MODES)
async def test_a_patch_whose_member_add_fails_leaves_the_renamed_column_unchanged(
    mode: str, payroll: Payroll, aiohttp_client: ClientFactory
) -> None:
    scim = await gateway(aiohttp_client, payroll, mode)
    kept = (await scim.user("kept@example.com"))["id"]
    group = (await scim.group("Before", [kept]))["id"]
    answer = await scim.patch(f"/Groups/{group}", rename_and_add("After", "999999"))
    assert answer.status == 400, answer.text
    assert_scim_error(answer.json(), 400, "invalidValue")
    assert "999999" in answer.json()["detail"]
    assert await unit_name(payroll, group) == "Before"  # the update was rolled back
    assert await payroll.members(group) == {kept}


@pytest.mark.parametrize("mode", MODES)
async def test_a_put_changing_the_name_and_the_members_commits_both(
    mode: str, payroll: Payroll, aiohttp_client: ClientFactory
) -> None:
    scim = await gateway(aiohttp_client, payroll, mode)
    one, two, three = [(await scim.user(f"m{n}@example.com"))["id"] for n in range(3)]
    group = (await scim.group("Before", [one, two]))["id"]
    body = {
        "schemas": [GROUP_URN],
        "displayName": "After",
        "members": [{"value": two}, {"value": three}],
    }
    answer = await scim.put(f"/Groups/{group}", body)
    assert answer.status == 200, answer.text
    assert answer.json()["displayName"] == "After"
    assert members_of(answer.json()) == sorted([two, three])  # read back in the transaction
    assert await unit_name(payroll, group) == "After"
    assert await payroll.members(group) == {two, three}


@pytest.mark.parametrize("mode", MODES)
async def test_mixed_patches_complete_with_one_slot_and_one_pooled_connection(
    mode: str, payroll: Payroll, aiohttp_client: ClientFactory
) -> None:
    """The transaction holds the app's only slot and only connection; its calls need neither."""
    scim = await gateway(
        aiohttp_client,
        payroll,
        mode,
        app={"max_concurrency": 1, "call_timeout": 10},
        pool={"min_size": 1, "max_size": 1, "acquire_timeout": 3},
    )
    users = [(await scim.user(f"u{n}@example.com"))["id"] for n in range(3)]
    group = (await scim.group("Before"))["id"]

    async def patch(n: int) -> int:
        answer = await scim.patch(f"/Groups/{group}", rename_and_add(f"After {n}", users[n]))
        return answer.status

    statuses = await asyncio.wait_for(asyncio.gather(*(patch(n) for n in range(3))), timeout=20)
    assert statuses == [204, 204, 204]
    assert await payroll.members(group) == set(users)
    assert (await unit_name(payroll, group)).startswith("After ")


async def test_writes_of_the_adapter_inside_a_transaction_that_raises_are_rolled_back(
    sql_adapter: SqlAdapter, payroll: Payroll
) -> None:
    user = await sql_adapter.create("User", {"logon_name": "member"})
    group = await sql_adapter.create("Group", {"unit_nm": "Before"})
    with pytest.raises(InvalidValue):
        async with sql_adapter.transaction():
            await sql_adapter.update("Group", group.id, {"unit_nm": "After"})
            await sql_adapter.add_members(group.id, [user.id])
            inside = await sql_adapter.get("Group", group.id)  # sees its own writes
            assert inside.data["unit_nm"] == "After"
            assert [m.value for m in inside.members or ()] == [user.id]
            await sql_adapter.add_members(group.id, ["999999"])
    assert await unit_name(payroll, group.id) == "Before"
    assert await payroll.members(group.id) == set()


async def test_a_failed_call_caught_inside_a_transaction_still_rolls_it_back(
    table_adapter: SqlAdapter, payroll: Payroll
) -> None:
    group = await table_adapter.create("Group", {"unit_nm": "Before"})
    with pytest.raises(UpstreamError) as caught:
        async with table_adapter.transaction():
            await table_adapter.update("Group", group.id, {"unit_nm": "After"})
            with pytest.raises(InvalidValue):
                await table_adapter.add_members(group.id, ["999999"])
    assert "rolled back" in caught.value.detail
    assert await unit_name(payroll, group.id) == "Before"


async def test_the_calls_of_a_transaction_share_one_connection_of_a_pool_of_one(
    payroll: Payroll,
) -> None:
    adapter = await open_adapter(
        payroll.settings("table", pool={"min_size": 1, "max_size": 1, "acquire_timeout": 2})
    )
    try:
        user = await adapter.create("User", {"logon_name": "solo"})
        group = await adapter.create("Group", {"unit_nm": "Before"})

        async def operation() -> None:
            async with adapter.transaction(), adapter.transaction():  # nested: joins
                await adapter.update("Group", group.id, {"unit_nm": "After"})
                await adapter.add_members(group.id, [user.id])
                await adapter.get("Group", group.id)

        await asyncio.wait_for(operation(), timeout=10)
    finally:
        await adapter.aclose()
    assert await unit_name(payroll, group.id) == "After"
    assert await payroll.members(group.id) == {user.id}


async def test_a_transaction_without_calls_takes_no_connection(payroll: Payroll) -> None:
    adapter = await open_adapter(
        payroll.settings("table", pool={"min_size": 1, "max_size": 1, "acquire_timeout": 2})
    )
    try:
        assert adapter.capabilities.transactions
        async with adapter.transaction():
            assert adapter._pool is not None and adapter._pool.get_idle_size() == 1
    finally:
        await adapter.aclose()
