"""Hot reads of the SQLite state file run in the event loop's thread (SqliteDatabase.read).

They must see the last commit while another connection holds a write
transaction open (WAL), never wait for a lock in the loop's thread, and when
SQLite refuses such a read (busy, interrupted), still return the right rows from the
reader's thread, which waits.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from gateway.state.db import SqliteDatabase


async def _opened(path: Path) -> SqliteDatabase:
    db = SqliteDatabase(path)
    await db.connect()

    def schema(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE t (key TEXT PRIMARY KEY, until REAL)")
        conn.execute("INSERT INTO t VALUES ('committed', 1.0)")

    await db.call(schema)
    return db


async def test_a_read_sees_the_last_commit_and_needs_no_thread(tmp_path: Path) -> None:
    db = await _opened(tmp_path / "state.db")
    writer = sqlite3.connect(tmp_path / "state.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES ('uncommitted', 2.0)")
    # The reader's thread is kept busy: a read that needed it could not finish.
    release = threading.Event()
    assert db._read_thread is not None
    blocked = db._read_thread.submit(release.wait, 5)
    try:
        rows = await asyncio.wait_for(db.read("SELECT key, until FROM t ORDER BY key"), 1)
        assert rows == [{"key": "committed", "until": 1.0}]
    finally:
        release.set()
        blocked.result()
        writer.execute("ROLLBACK")
        writer.close()
        await db.close()


async def test_a_read_sqlite_refuses_inline_is_made_by_the_reader(tmp_path: Path) -> None:
    db = await _opened(tmp_path / "state.db")
    # SQLite aborts every statement of the inline connection ("interrupted"), as it
    # would answer "database is locked" while a WAL is recovered: the reader answers.
    assert db._inline is not None
    db._inline.set_progress_handler(lambda: 1, 1)
    try:
        db._inline.execute("SELECT 1").fetchall()
        raise AssertionError("the progress handler should abort the statement")
    except sqlite3.OperationalError:
        pass
    rows = await asyncio.wait_for(db.read("SELECT key FROM t WHERE key = ?", "committed"), 10)
    assert rows == [{"key": "committed"}]
    await db.close()
