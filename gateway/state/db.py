"""The two database backends of the state store, behind one small interface.

Everything above this module writes SQL once, with ``?`` placeholders, and
runs it inside :meth:`Database.transaction`, or, where speed matters, as a
transaction *body* (:data:`Body`: a generator of statements) given to
:meth:`Database.run`, which SQLite runs whole on its thread. SQLite (stdlib ``sqlite3``) runs
on one thread of its own so the event loop never blocks, one transaction at a
time, each opened with ``BEGIN IMMEDIATE`` (so writers in several processes
queue on the file lock instead of failing half-way). PostgreSQL runs through
an asyncpg pool; ``?`` becomes ``$n``.

The URL is a secret (it may carry a password): it is never logged, and
errors name the backend, not the URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import mmap
import os
import re
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from gateway.errors import StoreUnavailable

Row = dict[str, Any]
T = TypeVar("T")
log = logging.getLogger("gateway.state")

#: Driver errors that mean "the store cannot be used now" (down, full, unreachable,
#: locked, its tables gone): they become :class:`StoreUnavailable`, a 503 with
#: Retry-After. Not a refused value (integrity, data): that is the row's fault.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    sqlite3.OperationalError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InsufficientResourcesError,
    asyncpg.CannotConnectNowError,
    asyncpg.OperatorInterventionError,
    asyncpg.UndefinedTableError,
    asyncpg.UndefinedColumnError,
    asyncpg.ReadOnlySQLTransactionError,
)


class StateError(Exception):
    """The state store cannot be used (bad URL, unreachable server, failed migration)."""


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a transaction body: ``kind`` is execute, executemany or fetch."""

    kind: Literal["execute", "executemany", "fetch"]
    sql: str
    args: Sequence[Any] = ()


#: A transaction written once for both backends: a generator that yields statements,
#: is sent each one's result (rows changed, None, or the rows fetched), and returns a value.
Body = Generator[Statement, Any, T]


def execute(sql: str, *args: Any) -> Statement:
    return Statement("execute", sql, args)


def executemany(sql: str, rows: Sequence[Sequence[Any]]) -> Statement:
    return Statement("executemany", sql, rows)


def fetch(sql: str, *args: Any) -> Statement:
    return Statement("fetch", sql, args)


class Tx(ABC):
    """One open transaction: statements with ``?`` placeholders."""

    async def run(self, body: Body[T]) -> T:
        """Drive a transaction body inside this transaction."""
        result: Any = None
        while True:
            try:
                statement = body.send(result)
            except StopIteration as done:
                value: T = done.value
                return value
            if statement.kind == "execute":
                result = await self.execute(statement.sql, *statement.args)
            elif statement.kind == "executemany":
                await self.executemany(statement.sql, statement.args)
                result = None
            else:
                result = await self.fetch(statement.sql, *statement.args)

    @abstractmethod
    async def execute(self, sql: str, *args: Any) -> int:
        """Run one statement; the number of rows it changed."""

    @abstractmethod
    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    async def fetch(self, sql: str, *args: Any) -> list[Row]: ...

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None


class Database(ABC):
    #: "sqlite" or "postgresql": migrations are written per dialect.
    dialect: str
    #: True when every process sharing the store runs on this host (SQLite).
    single_host: bool
    #: True from a failure that made the store unavailable to the next success.
    down: bool = False

    def unavailable(self, exc: BaseException) -> StoreUnavailable:
        """``exc`` as a 503; the first of an episode is logged (the type only: a driver's
        message may quote values), the rest are not."""
        if not self.down:
            self.down = True
            log.error(
                "state: the %s store is unavailable (%s); answering 503 until it is back",
                self.dialect,
                type(exc).__name__,
            )
        return StoreUnavailable()

    def available(self) -> None:
        if self.down:
            self.down = False
            log.warning("state: the %s store is available again", self.dialect)

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    def transaction(self) -> AbstractAsyncContextManager[Tx]: ...

    async def run(self, body: Body[T]) -> T:
        """Run a transaction body in a transaction of its own."""
        async with self.transaction() as tx:
            return await tx.run(body)

    @abstractmethod
    async def read(self, sql: str, *args: Any) -> list[Row]:
        """One query outside any transaction: no write lock, one round trip (hot reads)."""

    @property
    def reads_in_place(self) -> bool:
        """Whether :meth:`read` answers in the event loop's thread, without a round trip
        (so batching reads saves nothing)."""
        return False

    def counter(self, name: str) -> ChangeCounter | None:
        """A change counter every process on this host that opens the store shares
        (:class:`ChangeCounter`), or None where there is none (PostgreSQL, or no file)."""
        return None

    @abstractmethod
    async def lock_migrations(self, tx: Tx) -> None:
        """Keep other processes out of the migrations until ``tx`` ends."""


def open_database(url: str) -> Database:
    """The backend for ``url``: ``sqlite:///path`` or ``postgresql://...``."""
    if url.startswith("sqlite:///"):
        return SqliteDatabase(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDatabase(url)
    raise StateError("state.url must start with sqlite:/// or postgresql://")


# -- SQLite -------------------------------------------------------------------------------


def _sqlite_fetch(conn: sqlite3.Connection, sql: str, args: Sequence[Any]) -> list[Row]:
    cursor = conn.execute(sql, args)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


#: Seconds a writer waits for its turn (and SQLite's busy_timeout, the fallback), as before.
BUSY_SECONDS = 30.0
#: How often a waiting writer tries the turn again.
_TURN_POLL = 0.0002


class WriterTurn:
    """Processes that write one SQLite file take turns through an ``flock`` on a file
    beside it (``serve --workers``, replicas on one host, a CLI command beside a server).

    Without it they meet at ``BEGIN IMMEDIATE``, and SQLite's busy handler makes the
    loser sleep 1, 2, 5, 10, 15... ms between tries: a commit that takes a millisecond
    leaves the other writer asleep for several more, and group commit cannot keep up.
    The turn is tried every 0.2 ms instead. It is held from ``BEGIN IMMEDIATE`` to
    ``COMMIT``/``ROLLBACK`` on the writer's thread; the kernel drops it with a process
    that dies. A writer that cannot get it within :data:`BUSY_SECONDS` (its holder is
    stopped, say) fails as SQLite's busy timeout would: "database is locked".
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.held = False

    def take(self, seconds: float = BUSY_SECONDS) -> None:
        if self.held:
            return
        deadline = None
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                now = time.monotonic()
                if deadline is None:
                    deadline = now + seconds
                elif now >= deadline:
                    raise sqlite3.OperationalError("database is locked") from None
                time.sleep(_TURN_POLL)
                continue
            self.held = True
            return

    def give(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self.give()
        os.close(self._fd)


class ChangeCounter:
    """A number in a small file beside the SQLite file, mapped into the memory of every
    process that opens it: a writer of some table adds one after each commit that
    changes it, and a reader that keeps a copy of the table in memory re-reads it when
    the number moved. Reading it is a memory load (no system call, no GIL hand-off),
    which is the point: it stands in for a query on a request's path.

    Adding is a read-modify-write under an ``flock`` of the file, so two processes
    adding together both count. The count only has to *differ* after a change, so a
    wrap-around or a torn read costs a reader one needless re-read at worst.
    """

    SIZE = 8

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            # Under the flock, as add() is: a process that comes second keeps the count.
            # Zeros written, not a hole made by ftruncate: a store to a hole through the map
            # would need a block, and on a full disk that is SIGBUS, not an OSError here.
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.fstat(fd).st_size < self.SIZE:
                    os.pwrite(fd, bytes(self.SIZE), 0)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(fd, self.SIZE)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def value(self) -> int:
        return int.from_bytes(self._map[: self.SIZE], "little")

    def add(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            number = (self.value() + 1) % 2 ** (8 * self.SIZE)
            self._map[: self.SIZE] = number.to_bytes(self.SIZE, "little")
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)


def _begin(conn: sqlite3.Connection, turn: WriterTurn | None) -> None:
    if turn is not None:
        turn.take()
    try:
        conn.execute("BEGIN IMMEDIATE")
    except BaseException:
        if turn is not None:
            turn.give()
        raise


def _end(conn: sqlite3.Connection, turn: WriterTurn | None, how: str) -> None:
    """COMMIT or ROLLBACK, then the next writer's turn (also when the statement fails)."""
    try:
        if how == "COMMIT":
            conn.execute("COMMIT")
        else:
            _rollback(conn)
    finally:
        # After a failed COMMIT the caller rolls back, which gives the turn then.
        if turn is not None and (how != "COMMIT" or not conn.in_transaction):
            turn.give()


def _sqlite_body(conn: sqlite3.Connection, body: Body[T], turn: WriterTurn | None = None) -> T:
    """A whole transaction body on the SQLite thread: one hop instead of one per statement."""
    _begin(conn, turn)
    try:
        result: Any = None
        while True:
            try:
                statement = body.send(result)
            except StopIteration as done:
                _end(conn, turn, "COMMIT")
                value: T = done.value
                return value
            if statement.kind == "execute":
                result = conn.execute(statement.sql, statement.args).rowcount
            elif statement.kind == "executemany":
                conn.executemany(statement.sql, statement.args)
                result = None
            else:
                result = _sqlite_fetch(conn, statement.sql, statement.args)
    except BaseException:
        _end(conn, turn, "ROLLBACK")
        raise


class _SqliteTx(Tx):
    """``BEGIN IMMEDIATE`` goes with the first statement: a thread hop costs more than a
    small statement, so a transaction takes as few as it can."""

    def __init__(self, db: SqliteDatabase) -> None:
        self._db = db
        self.begun = False

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self.begun:
            return await self._db.call(fn)
        self.begun = True

        turn = self._db.turn

        def begin_then(c: sqlite3.Connection) -> T:
            _begin(c, turn)
            return fn(c)

        return await self._db.call(begin_then)

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._call(lambda c: c.execute(sql, args).rowcount)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._call(lambda c: c.executemany(sql, rows))

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return await self._call(lambda c: _sqlite_fetch(c, sql, args))


class SqliteDatabase(Database):
    dialect = "sqlite"
    single_host = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._lock = asyncio.Lock()
        # Hot reads (the look-up before every create) run in the event loop's own thread on
        # a connection that never waits for a lock (busy_timeout 0, read-only): WAL lets a
        # reader see the last commit while a write transaction (an audit batch and its
        # fsync) runs, so such a primary-key read of a small table is ~10 µs, where a trip
        # to a thread and back cost ~100 µs of CPU (the hand-off of the GIL both ways).
        # When SQLite does answer "busy" (a WAL being recovered or reset), the read goes
        # to the reader connection and thread below, which wait as writers do.
        self._inline: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._read_thread: ThreadPoolExecutor | None = None
        #: Writers of this file take turns (WriterTurn); None where no lock file can be made.
        self.turn: WriterTurn | None = None
        self._counters: dict[str, ChangeCounter | None] = {}

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._thread is not None and self._conn is not None, "not connected"
        conn = self._conn
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, conn)

    async def connect(self) -> None:
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="state-sqlite")

        def open_file() -> sqlite3.Connection:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            _wal(conn)
            # FULL: a commit is on disk when it returns (the audit's open-before-write promise).
            conn.execute("PRAGMA synchronous = FULL")
            with contextlib.suppress(OSError):  # no lock file: SQLite's busy handler alone
                self.turn = WriterTurn(self.path.with_name(self.path.name + "-lock"))
            return conn

        loop = asyncio.get_running_loop()
        try:
            self._conn = await loop.run_in_executor(self._thread, open_file)
        except (OSError, sqlite3.Error) as exc:
            self._thread.shutdown()
            raise StateError(f"cannot open the SQLite state file {self.path}: {exc}") from None
        self._read_thread = ThreadPoolExecutor(1, thread_name_prefix="state-sqlite-read")

        def open_reader() -> sqlite3.Connection:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            return conn

        try:
            self._reader = await loop.run_in_executor(self._read_thread, open_reader)
            self._inline = sqlite3.connect(self.path, isolation_level=None)
            self._inline.execute("PRAGMA busy_timeout = 0")
            self._inline.execute("PRAGMA query_only = 1")
        except (OSError, sqlite3.Error) as exc:
            await self.close()
            raise StateError(f"cannot open the SQLite state file {self.path}: {exc}") from None

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        counters, self._counters = self._counters, {}
        for counter in counters.values():
            if counter is not None:
                counter.close()
        if self._inline is not None:
            self._inline.close()
            self._inline = None
        if self._reader is not None and self._read_thread is not None:
            await loop.run_in_executor(self._read_thread, self._reader.close)
            self._reader = None
        if self._read_thread is not None:
            self._read_thread.shutdown()
            self._read_thread = None
        if self._conn is not None:
            await self.call(lambda c: c.close())
            self._conn = None
        if self.turn is not None:
            self.turn.close()
            self.turn = None
        if self._thread is not None:
            self._thread.shutdown()
            self._thread = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._lock:
            tx = _SqliteTx(self)
            try:
                yield tx
                if tx.begun:
                    await self.call(lambda c: _end(c, self.turn, "COMMIT"))
            except UNAVAILABLE as exc:
                await self._rollback(tx)
                raise self.unavailable(exc) from exc
            except BaseException:
                await self._rollback(tx)
                raise
        self.available()

    async def _rollback(self, tx: _SqliteTx) -> None:
        if tx.begun:
            with contextlib.suppress(*UNAVAILABLE):
                await self.call(lambda c: _end(c, self.turn, "ROLLBACK"))

    async def run(self, body: Body[T]) -> T:
        async with self._lock:
            try:
                result = await self.call(lambda c: _sqlite_body(c, body, self.turn))
            except UNAVAILABLE as exc:
                raise self.unavailable(exc) from exc
        self.available()
        return result

    @property
    def reads_in_place(self) -> bool:
        return self._inline is not None

    def counter(self, name: str) -> ChangeCounter | None:
        """The counter in the file ``<state file>-<name>``, mapped on first use; None
        while not connected or where the file cannot be made (then readers query)."""
        if self._inline is None:
            return None
        if name not in self._counters:
            path = self.path.with_name(f"{self.path.name}-{name}")
            try:
                self._counters[name] = ChangeCounter(path)
            except OSError as exc:
                log.warning(
                    "state: no %s change counter (%s); reading each time",
                    name,
                    type(exc).__name__,
                )
                self._counters[name] = None
        return self._counters[name]

    async def read(self, sql: str, *args: Any) -> list[Row]:
        assert self._read_thread is not None and self._reader is not None, "not connected"
        if self._inline is not None:
            try:
                return _sqlite_fetch(self._inline, sql, args)
            except sqlite3.OperationalError:
                pass  # busy, or the file is unwell: the reader waits, or raises for good
        reader = self._reader
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._read_thread, _sqlite_fetch, reader, sql, args
            )
        except UNAVAILABLE as exc:
            raise self.unavailable(exc) from exc

    async def lock_migrations(self, tx: Tx) -> None:
        """Nothing to add: ``BEGIN IMMEDIATE`` already holds the file's write lock."""


def _wal(conn: sqlite3.Connection, *, seconds: float = 30.0) -> None:
    """Switch to WAL. Replicas opening a new file together race for the switch, and
    SQLite answers the loser "database is locked" without waiting on busy_timeout
    (the file is being converted or recovered), so the switch is retried here."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:  # not when BEGIN itself failed
        conn.execute("ROLLBACK")


# -- PostgreSQL ---------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    count = iter(range(1, 10_000))
    return _PLACEHOLDER.sub(lambda _: f"${next(count)}", sql)


class _PostgresTx(Tx):
    def __init__(self, conn: PoolConnectionProxy[asyncpg.Record]) -> None:
        self._conn = conn

    async def execute(self, sql: str, *args: Any) -> int:
        status: str = await self._conn.execute(_numbered(sql), *args)
        last = status.rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(_numbered(sql), rows)

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return [dict(r) for r in await self._conn.fetch(_numbered(sql), *args)]


class PostgresDatabase(Database):
    """Query parameters of the URL that asyncpg does not know (``?search_path=x``)
    become server settings, which is how tests and operators pick a schema."""

    dialect = "postgresql"
    single_host = False

    def __init__(self, url: str, min_size: int = 1, max_size: int = 4) -> None:
        self._url = url
        self._sizes = (min_size, max_size)
        self._pool: asyncpg.Pool | None = None

    async def connect(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self._url, min_size=self._sizes[0], max_size=self._sizes[1], timeout=10
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            # The message of a connection error does not carry the password; the URL would.
            raise StateError(f"cannot connect to the PostgreSQL state store: {exc}") from None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        assert self._pool is not None, "not connected"
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield _PostgresTx(conn)
        except UNAVAILABLE as exc:
            raise self.unavailable(exc) from exc
        self.available()

    async def read(self, sql: str, *args: Any) -> list[Row]:
        assert self._pool is not None, "not connected"
        try:
            return [dict(r) for r in await self._pool.fetch(_numbered(sql), *args)]
        except UNAVAILABLE as exc:
            raise self.unavailable(exc) from exc

    async def lock_migrations(self, tx: Tx) -> None:
        # Released at commit; replicas starting together apply migrations one at a time.
        await tx.fetch("SELECT pg_advisory_xact_lock(?)", _MIGRATION_LOCK)


#: An arbitrary constant: the advisory lock key of scim-gateway's migrations.
_MIGRATION_LOCK = 0x5C1A_0001
