"""Creates of unknown outcome in the state store: what one replica could not confirm,
every replica looks up first (gateway/dedupe.py).

Keys are :func:`gateway.dedupe.name_key` digests, never names. Each row lives
``ttl`` seconds of wall-clock time (replicas share no monotonic clock); a
``remember`` deletes the expired rows (an index on the expiry makes that
cheap) and keeps at most ``max_entries``, the oldest going first, as the
memory store does.

The look-up comes before every create. On SQLite each process keeps a copy of
the table while it is small (at most ``CACHE_KEYS`` keys; it is usually empty)
and answers from it: a read in the event loop's thread, cheap as it is, measured
~60 µs of CPU per create under load (the GIL going back and forth with the audit
writer's thread). The copy is read again when the shared change counter
(:class:`~gateway.state.db.ChangeCounter`, a file beside the state file that
``remember`` and ``forget`` add to after their commit, in whichever process) has
moved, and at least every ``CACHE_SECONDS`` whatever it says (a process that died
between its commit and its count, or a tool that changed the table without
counting, is seen that late at most). A larger table is read key by key, outside
any transaction (:meth:`~gateway.state.db.Database.read`). From PostgreSQL, where
each read is a round trip, the look-ups asked in one event-loop turn share one
read (``key IN (...)``): under load several creates arrive together.
"""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.dedupe import Clock
from gateway.state.db import Body, Database, execute
from gateway.state.store import StateStore

log = logging.getLogger("gateway.state")

#: The change counter's name (its file: ``<state file>-unknown``).
COUNTER = "unknown"
#: A process keeps a copy of the table while it holds at most this many keys...
CACHE_KEYS = 100
#: ...and reads it again after this many seconds even if the counter did not move.
CACHE_SECONDS = 1.0


class StateUnknownCreates:
    """An :class:`~gateway.dedupe.UnknownCreates` in the ``unknown_create`` table."""

    def __init__(
        self,
        store: StateStore,
        *,
        max_entries: int = 10_000,
        ttl: float = 86_400.0,
        clock: Clock = time.time,
    ) -> None:
        self._store = store
        self._max = max_entries
        self._ttl = ttl
        self._clock = clock
        #: Keys asked in this loop turn, each with its askers' futures (its ``until`` or None).
        self._asked: dict[str, list[asyncio.Future[float | None]]] = {}
        self._reads: set[asyncio.Task[None]] = set()
        #: The loop whose next turn reads the keys asked.
        self._scheduled: asyncio.AbstractEventLoop | None = None
        #: SQLite: the table as last read (key -> until), the counter then, and until when
        #: (monotonic) it may answer; None: read again (or the table was too large).
        self._copy: dict[str, float] | None = None
        self._copy_count = 0
        self._copy_fresh = 0.0

    def _remember(self, key: str, now: float) -> Body[None]:
        yield execute("DELETE FROM unknown_create WHERE until <= ?", now)
        # Deleted and inserted, not updated: a key remembered again becomes the newest.
        yield execute("DELETE FROM unknown_create WHERE key = ?", key)
        yield execute("INSERT INTO unknown_create (key, until) VALUES (?, ?)", key, now + self._ttl)
        yield execute(
            "DELETE FROM unknown_create WHERE id <= "
            "(SELECT id FROM unknown_create ORDER BY id DESC LIMIT 1 OFFSET ?)",
            self._max,
        )

    async def remember(self, key: str) -> None:
        try:
            await self._store.db.run(self._remember(key, self._clock()))
        finally:  # also after a failure: the commit may have happened
            self._changed()

    def _changed(self) -> None:
        """After a change (committed, or maybe): every process's copy is read again."""
        self._copy = None
        counter = self._store.db.counter(COUNTER)
        if counter is not None:
            try:
                counter.add()
            except OSError as exc:  # the others see the change CACHE_SECONDS late at most
                log.warning("unknown creates: the change count failed (%s)", type(exc).__name__)

    async def is_unknown(self, key: str) -> bool:
        db = self._store.db
        if db.reads_in_place:  # SQLite: no round trip to share
            until = await self._local_until(db, key)
        else:
            until = await self._until(key)
        if until is None:
            return False
        if until <= self._clock():
            await self.forget(key)
            return False
        return True

    async def _local_until(self, db: Database, key: str) -> float | None:
        counter = db.counter(COUNTER)
        if counter is not None:
            count = counter.value()  # before the read: a change after it moves the count
            copy = self._copy
            fresh = count == self._copy_count and time.monotonic() < self._copy_fresh
            if copy is not None and fresh:
                return copy.get(key)
            rows = await db.read("SELECT key, until FROM unknown_create LIMIT ?", CACHE_KEYS + 1)
            if len(rows) <= CACHE_KEYS:
                self._copy = {row["key"]: float(row["until"]) for row in rows}
                self._copy_count = count
                self._copy_fresh = time.monotonic() + CACHE_SECONDS
                return self._copy.get(key)
            self._copy = None
        rows = await db.read("SELECT until FROM unknown_create WHERE key = ?", key)
        return float(rows[0]["until"]) if rows else None

    def _until(self, key: str) -> asyncio.Future[float | None]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[float | None] = loop.create_future()
        self._asked.setdefault(key, []).append(future)
        if self._scheduled is not loop:  # at the next turn, with what comes meanwhile
            self._scheduled = loop
            loop.call_soon(self._read_asked)
        return future

    def _read_asked(self) -> None:
        loop = asyncio.get_running_loop()
        asked, self._asked, self._scheduled = self._asked, {}, None
        # Only this loop's askers: one of a loop that closed before its turn is gone.
        mine = {k: [f for f in fs if f.get_loop() is loop] for k, fs in asked.items()}
        mine = {k: fs for k, fs in mine.items() if fs}
        if mine:
            self._track(loop.create_task(self._read(mine)))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._reads.add(task)  # a reference until done
        task.add_done_callback(self._reads.discard)

    async def _read(self, asked: dict[str, list[asyncio.Future[float | None]]]) -> None:
        keys = list(asked)
        found: dict[str, float] = {}
        try:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                rows = await self._store.db.read(
                    f"SELECT key, until FROM unknown_create WHERE key IN ({marks})", *chunk
                )
                found.update((row["key"], float(row["until"])) for row in rows)
        except Exception:
            # Each asker reads alone and gets its own error (one exception raised in many
            # tasks would share one traceback).
            for key, futures in asked.items():
                for future in futures:
                    if not future.done():
                        self._track(
                            asyncio.get_running_loop().create_task(self._alone(future, key))
                        )
            return
        for key, futures in asked.items():
            for future in futures:
                if not future.done():  # an asker cancelled meanwhile
                    future.set_result(found.get(key))

    async def _alone(self, future: asyncio.Future[float | None], key: str) -> None:
        try:
            rows = await self._store.db.read("SELECT until FROM unknown_create WHERE key = ?", key)
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
            return
        if not future.done():
            future.set_result(float(rows[0]["until"]) if rows else None)

    async def forget(self, key: str) -> None:
        try:
            async with self._store.db.transaction() as tx:
                await tx.execute("DELETE FROM unknown_create WHERE key = ?", key)
        finally:
            self._changed()
