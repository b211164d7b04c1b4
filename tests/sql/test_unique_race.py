"""A unique column stays unique when a write waits for the advisory lock (both modes).

``_check_unique`` serialises writers of one value on an advisory lock and then
counts the rows holding it. The count must see a row committed by the writer
that held the lock while this one waited: in a REPEATABLE READ transaction
(statement-mode updates, which merge the row they read) a snapshot taken by the
lock statement itself predates that commit, and the duplicate would slip in.

Deterministic: a separate connection holds the lock; writer B (a create of
``rACE``) queues on it first, then writer A (``Race``); PostgreSQL grants the
lock in queue order, so B commits its row while A waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from adapters.sql import SqlAdapter
from adapters.sql.dialect import MYSQL
from gateway.errors import Conflict

from .conftest import Payroll, open_adapter

LOCK = "SELECT pg_advisory_lock(hashtextextended($1, 0))"
UNLOCK = "SELECT pg_advisory_unlock(hashtextextended($1, 0))"
KEY = "scim-gateway:User:logon_name:race"
#: This test's advisory lock only (other sessions on the server take advisory locks too).
ON_KEY = (
    "locktype = 'advisory' AND objsubid = 1 "
    "AND ((classid::bigint << 32) | objid::bigint) = hashtextextended($1, 0)"
)


async def waiting(payroll: Payroll, count: int) -> None:
    """Until ``count`` backends wait for an advisory lock."""
    for _ in range(500):
        row = await payroll.row(
            f"SELECT count(*) AS n FROM pg_locks WHERE {ON_KEY} AND NOT granted", KEY
        )
        assert row is not None
        if row["n"] >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} writers never queued on the advisory lock")


async def outcome(call: Awaitable[object]) -> str:
    try:
        await call
    except Conflict:
        return "conflict"
    return "ok"


async def in_operation(adapter: SqlAdapter, id: str, changes: dict[str, Any]) -> object:
    """The update as the gateway makes it: the first call of an operation's transaction."""
    async with adapter.transaction():
        return await adapter.update("User", id, changes)


@pytest.mark.parametrize("operation", ["update", "update in operation", "create"])
@pytest.mark.parametrize("mode", ["table", "statements"])
async def test_a_login_committed_while_a_writer_waits_for_the_lock_is_a_conflict(
    mode: str, operation: str, payroll: Payroll
) -> None:
    adapter: SqlAdapter = await open_adapter(payroll.settings(mode))
    holder = await payroll.connect()
    try:
        own = (await adapter.create("User", {"logon_name": "someone"})).id
        await holder.execute(LOCK, KEY)
        b = asyncio.create_task(outcome(adapter.create("User", {"logon_name": "rACE"})))
        await waiting(payroll, 1)
        a = asyncio.create_task(
            outcome(
                adapter.create("User", {"logon_name": "Race"})
                if operation == "create"
                else adapter.update("User", own, {"logon_name": "Race"})
                if operation == "update"
                else in_operation(adapter, own, {"logon_name": "Race"})
            )
        )
        await waiting(payroll, 2)
        await holder.execute(UNLOCK, KEY)
        results = await asyncio.wait_for(asyncio.gather(b, a), timeout=10)
    finally:
        await holder.close()
        await adapter.aclose()
    assert results == ["ok", "conflict"]
    rows = await payroll.rows("SELECT logon_name FROM emp_master WHERE lower(logon_name) = 'race'")
    assert [r["logon_name"] for r in rows] == ["rACE"]
    held = await payroll.rows(f"SELECT 1 FROM pg_locks WHERE {ON_KEY}", KEY)
    assert held == []  # the losing writer released the lock it took before its transaction


async def waiting_on_mariadb(payroll: Payroll, count: int) -> None:
    """Until ``count`` sessions wait in GET_LOCK (MariaDB's state "User lock")."""
    for _ in range(500):
        n = await payroll.row(
            "SELECT count(*) AS n FROM information_schema.PROCESSLIST "
            "WHERE STATE = 'User lock' AND DB = $1",
            payroll.schema,
        )
        if n is not None and n["n"] >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} writers never queued on GET_LOCK")


@pytest.mark.parametrize("operation", ["update", "update in operation", "create"])
@pytest.mark.parametrize("flavour", ["mariadb"])
async def test_on_mariadb_a_login_committed_while_a_writer_waits_is_a_conflict(
    flavour: str, operation: str, payroll: Payroll
) -> None:
    assert payroll.mariadb
    adapter: SqlAdapter = await open_adapter(payroll.settings("table"))
    name = MYSQL.lock_name(KEY)
    holder = await payroll.connect()
    try:
        own = (await adapter.create("User", {"logon_name": "someone"})).id
        assert await holder.fetchval("SELECT GET_LOCK($1, 5)", name) == 1
        b = asyncio.create_task(outcome(adapter.create("User", {"logon_name": "rACE"})))
        await waiting_on_mariadb(payroll, 1)
        a = asyncio.create_task(
            outcome(
                adapter.create("User", {"logon_name": "Race"})
                if operation == "create"
                else adapter.update("User", own, {"logon_name": "Race"})
                if operation == "update"
                else in_operation(adapter, own, {"logon_name": "Race"})
            )
        )
        await waiting_on_mariadb(payroll, 2)
        await holder.fetchval("SELECT RELEASE_LOCK($1)", name)
        results = await asyncio.wait_for(asyncio.gather(b, a), timeout=10)
    finally:
        await holder.close()
        await adapter.aclose()
    assert results == ["ok", "conflict"]
    rows = await payroll.rows("SELECT logon_name FROM emp_master WHERE lower(logon_name) = 'race'")
    assert [r["logon_name"] for r in rows] == ["rACE"]
    assert await payroll.row("SELECT IS_USED_LOCK($1) AS holder", name) == {"holder": None}
