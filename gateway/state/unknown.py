"""Creates of unknown outcome in the state store: what one replica could not confirm,
every replica looks up first (gateway/dedupe.py).

Keys are :func:`gateway.dedupe.name_key` digests, never names. Each row lives
``ttl`` seconds of wall-clock time (replicas share no monotonic clock); a
``remember`` deletes the expired rows (an index on the expiry makes that
cheap) and keeps at most ``max_entries``, the oldest going first, as the
memory store does. The look-up on every create is a primary-key read outside
any transaction (:meth:`~gateway.state.db.Database.read`): no write lock; from
SQLite it is made in the event loop's thread (about 10 µs, never waiting for a
lock), one key at a time. From PostgreSQL, where each read is a round trip, the
look-ups asked in one event-loop turn share one read (``key IN (...)``): under
load several creates arrive together.
"""

from __future__ import annotations

import asyncio
import time

from gateway.dedupe import Clock
from gateway.state.db import Body, execute
from gateway.state.store import StateStore


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
        await self._store.db.run(self._remember(key, self._clock()))

    async def is_unknown(self, key: str) -> bool:
        if self._store.db.reads_in_place:  # SQLite: no round trip to share
            rows = await self._store.db.read("SELECT until FROM unknown_create WHERE key = ?", key)
            until = float(rows[0]["until"]) if rows else None
        else:
            until = await self._until(key)
        if until is None:
            return False
        if until <= self._clock():
            await self.forget(key)
            return False
        return True

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
        async with self._store.db.transaction() as tx:
            await tx.execute("DELETE FROM unknown_create WHERE key = ?", key)
