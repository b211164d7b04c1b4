"""Writers of one SQLite state file take turns through a lock file (gateway.state.db.WriterTurn).

Several processes write one file under ``serve --workers``. The turn replaces
SQLite's sleeping busy handler as the way they queue; these tests hold it to
what a lock must do: exclude, give way, fail like SQLite's busy timeout when it
cannot be had, and go with a process that dies holding it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from gateway.errors import StoreUnavailable
from gateway.operation import Operation
from gateway.state import AuditLog, AuditRecorder, StateStore
from gateway.state.db import Body, Row, SqliteDatabase, WriterTurn, execute, fetch

HOLDER = """
import sys, time
from pathlib import Path
from gateway.errors import StoreUnavailable
from gateway.state.db import WriterTurn
turn = WriterTurn(Path(sys.argv[1]))
turn.take()
print("held", flush=True)
time.sleep(60)
"""


def test_a_turn_excludes_another_until_given(tmp_path: Path) -> None:
    first, second = WriterTurn(tmp_path / "db-lock"), WriterTurn(tmp_path / "db-lock")
    try:
        first.take()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            second.take(seconds=0.05)  # as SQLite's busy timeout would answer
        first.give()
        second.take(seconds=0.05)
        assert second.held and not first.held
    finally:
        first.close()
        second.close()


def test_a_waiting_writer_gets_the_turn_as_soon_as_it_is_given(tmp_path: Path) -> None:
    first, second = WriterTurn(tmp_path / "db-lock"), WriterTurn(tmp_path / "db-lock")
    first.take()
    got = threading.Event()

    def wait() -> None:
        second.take(seconds=30)
        got.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        assert not got.wait(0.2)  # still held
        first.give()
        assert got.wait(10)
    finally:
        waiter.join()
        first.close()
        second.close()


def test_the_turn_goes_with_a_process_that_dies_holding_it(tmp_path: Path) -> None:
    lock = tmp_path / "db-lock"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, env=env
    )
    turn = WriterTurn(lock)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        with pytest.raises(sqlite3.OperationalError):
            turn.take(seconds=0.05)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        turn.take(seconds=10)
        assert turn.held
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
        turn.close()


def _bump() -> Body[int]:
    rows = yield fetch("SELECT n FROM counter WHERE id = 1")
    yield execute("UPDATE counter SET n = ? WHERE id = 1", int(rows[0]["n"]) + 1)
    return int(rows[0]["n"]) + 1


async def test_two_stores_on_one_file_write_in_turns_and_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    a, b = SqliteDatabase(path), SqliteDatabase(path)
    await a.connect()
    await b.connect()
    try:
        assert a.turn is not None and b.turn is not None
        assert (tmp_path / "state.db-lock").exists()
        async with a.transaction() as tx:
            await tx.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)")
            await tx.execute("INSERT INTO counter VALUES (1, 0)")
        assert not a.turn.held  # given at COMMIT

        async def bumps(db: SqliteDatabase) -> None:
            for _ in range(50):
                await db.run(_bump())

        await asyncio.gather(bumps(a), bumps(b))
        rows = await a.read("SELECT n FROM counter WHERE id = 1")
        assert rows[0]["n"] == 100  # read-modify-write in turns: no lost update
        assert not a.turn.held and not b.turn.held
    finally:
        await a.close()
        await b.close()


async def test_a_failed_transaction_gives_the_turn(tmp_path: Path) -> None:
    db = SqliteDatabase(tmp_path / "state.db")
    await db.connect()
    try:
        assert db.turn is not None
        with pytest.raises(StoreUnavailable):
            await db.run(_bump())  # no such table: SQLite's OperationalError
        assert not db.turn.held
        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await tx.execute("CREATE TABLE t (x INTEGER)")
                raise RuntimeError("the body failed")
        assert not db.turn.held
        assert await db.read("SELECT name FROM sqlite_master WHERE name = 't'") == []
    finally:
        await db.close()


async def test_opens_queued_while_another_process_commits_join_the_waiting_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit across processes: a transaction takes its rows once it holds the turn.

    Another worker holds the turn (its commit, a whole fsync); the open queued first
    waits for it, and so do the ones queued during that wait: all go in one commit.
    """
    log = AuditLog(StateStore(f"sqlite:///{tmp_path / 'state.db'}"))
    await log.store.open()
    recorder = AuditRecorder(log)
    await recorder.start()
    commits: list[int] = []
    write_queued = log.write_queued

    async def counted(queue: list[Row]) -> int:
        commits.append(await write_queued(queue))
        return commits[-1]

    monkeypatch.setattr(log, "write_queued", counted)
    other = WriterTurn(tmp_path / "state.db-lock")  # the other worker
    try:
        other.take()

        def open_one(i: int) -> asyncio.Task[None]:
            op = Operation(app="crm", method="POST", path="/apps/crm/scim/v2/Users")
            op.describe("create", "User")
            return asyncio.create_task(recorder.opened(op), name=f"open-{i}")

        first = open_one(0)
        await asyncio.sleep(0.1)  # its transaction now waits for the turn
        rest = [open_one(i) for i in range(1, 5)]
        await asyncio.sleep(0.1)
        assert not any(t.done() for t in [first, *rest])
        other.give()
        await asyncio.wait_for(asyncio.gather(first, *rest), 10)
        assert commits == [5]
        rows = await log.db.read("SELECT count(*) AS n FROM audit_event WHERE outcome = 'pending'")
        assert rows[0]["n"] == 5
    finally:
        other.close()
        await recorder.aclose()
        await log.store.close()
