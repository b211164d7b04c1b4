"""Creates of unknown outcome in the state store: what one replica could not confirm,
every replica looks up first (gateway/dedupe.py).

Keys are :func:`gateway.dedupe.name_key` digests, never names. Each row lives
``ttl`` seconds of wall-clock time (replicas share no monotonic clock); a
``remember`` deletes the expired rows (an index on the expiry makes that
cheap) and keeps at most ``max_entries``, the oldest going first, as the
memory store does. The look-up on every create is one primary-key read outside
any transaction (:meth:`~gateway.state.db.Database.read`): no write lock.
"""

from __future__ import annotations

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
        rows = await self._store.db.read("SELECT until FROM unknown_create WHERE key = ?", key)
        if not rows:
            return False
        if rows[0]["until"] <= self._clock():
            await self.forget(key)
            return False
        return True

    async def forget(self, key: str) -> None:
        async with self._store.db.transaction() as tx:
            await tx.execute("DELETE FROM unknown_create WHERE key = ?", key)
