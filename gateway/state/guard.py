"""The deprovisioning guard's holds and releases in the state store, shared by replicas.

:class:`StateGuardStore` is the :class:`~gateway.guard.GuardStore` of a gateway
with a state store (``state.url``, or the default SQLite file next to the
config): every replica, and ``scim-gateway guard`` on an operator's bastion,
sees the same deprovisionings, holds and releases, and a restart keeps them.

:meth:`StateGuardStore.admit` counts, compares and records in one
transaction that first locks the app's ``guard_app`` row (PostgreSQL:
``SELECT ... FOR UPDATE``; SQLite: the file's write lock, taken by ``BEGIN
IMMEDIATE``), so replicas deciding at once for one app queue and the 51st
delete is held by whichever comes last. Apps do not wait for each other.
The tables are bounded like the memory store: passed deprovisionings
leave with the window, held and released keys beyond ``max_keys`` go oldest
first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from gateway.config import Settings
from gateway.guard import MAX_KEYS, Guard, GuardState, Verdict
from gateway.guard_control import StoreGuardControl
from gateway.state.db import Body, execute, fetch
from gateway.state.store import StateStore


class StateGuardStore:
    """A :class:`~gateway.guard.GuardStore` in the tables of migration 2."""

    def __init__(self, store: StateStore, *, max_keys: int = MAX_KEYS) -> None:
        self._store = store
        self._max_keys = max_keys

    @property
    def _lock(self) -> str:
        # SQLite has no FOR UPDATE and needs none: BEGIN IMMEDIATE serializes writers.
        return " FOR UPDATE" if self._store.db.dialect == "postgresql" else ""

    def _locked_app(self, app: str) -> Body[float | None]:
        """Lock the app's row (made on first use); its open release, if still open."""
        select = f"SELECT open_until FROM guard_app WHERE app = ?{self._lock}"
        rows = yield fetch(select, app)
        if not rows:
            yield execute("INSERT INTO guard_app (app) VALUES (?) ON CONFLICT DO NOTHING", app)
            rows = yield fetch(select, app)
        open_until: float | None = rows[0]["open_until"]
        return open_until

    def _bound(self, table: str, app: str) -> Body[None]:
        """Keep the newest ``max_keys`` rows of ``app`` in ``table``."""
        yield execute(
            f"DELETE FROM {table} WHERE app = ? AND id <= "
            f"(SELECT id FROM {table} WHERE app = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
            app,
            app,
            self._max_keys,
        )

    def _hold(self, app: str, key: str, now: float) -> Body[None]:
        # Deleted and inserted, not updated: a key held again becomes the newest.
        yield execute("DELETE FROM guard_held WHERE app = ? AND key = ?", app, key)
        yield execute("INSERT INTO guard_held (app, key, at) VALUES (?, ?, ?)", app, key, now)
        yield from self._bound("guard_held", app)

    def _admit(self, app: str, key: str, now: float, window: float, limit: int) -> Body[Verdict]:
        open_until = yield from self._locked_app(app)
        yield execute("DELETE FROM guard_passed WHERE app = ? AND at <= ?", app, now - window)
        released = open_until is not None and open_until > now
        if not released:  # else the key stays released, as in the memory store
            used = yield execute("DELETE FROM guard_released WHERE app = ? AND key = ?", app, key)
            released = used > 0
        if not released:
            rows = yield fetch("SELECT COUNT(*) AS n FROM guard_passed WHERE app = ?", app)
            if rows[0]["n"] >= limit:
                yield from self._hold(app, key, now)
                return "held"
        yield execute("INSERT INTO guard_passed (app, at) VALUES (?, ?)", app, now)
        return "released" if released else "passed"

    async def admit(self, app: str, key: str, *, now: float, window: float, limit: int) -> Verdict:
        return await self._store.db.run(self._admit(app, key, now, window, limit))

    def _release(self, app: str, until: float | None) -> Body[None]:
        yield from self._locked_app(app)
        # A key released again moves to the end, as in the memory store.
        yield execute(
            "DELETE FROM guard_released WHERE app = ? "
            "AND key IN (SELECT key FROM guard_held WHERE app = ?)",
            app,
            app,
        )
        yield execute(
            "INSERT INTO guard_released (app, key, at) "
            "SELECT app, key, at FROM guard_held WHERE app = ? ORDER BY id",
            app,
        )
        yield execute("DELETE FROM guard_held WHERE app = ?", app)
        yield from self._bound("guard_released", app)
        if until is not None:
            yield execute("UPDATE guard_app SET open_until = ? WHERE app = ?", until, app)

    async def release(self, app: str, *, until: float | None) -> None:
        await self._store.db.run(self._release(app, until))

    def _state(self, app: str, now: float, window: float) -> Body[GuardState]:
        recent = yield fetch(
            "SELECT COUNT(*) AS n FROM guard_passed WHERE app = ? AND at > ?", app, now - window
        )
        held = yield fetch("SELECT key FROM guard_held WHERE app = ? ORDER BY id", app)
        released = yield fetch("SELECT key FROM guard_released WHERE app = ? ORDER BY id", app)
        row = yield fetch("SELECT open_until FROM guard_app WHERE app = ?", app)
        open_until = row[0]["open_until"] if row else None
        return GuardState(
            app,
            int(recent[0]["n"]),
            tuple(r["key"] for r in held),
            tuple(r["key"] for r in released),
            open_until if open_until is not None and open_until > now else None,
        )

    async def state(self, app: str, *, now: float, window: float) -> GuardState:
        return await self._store.db.run(self._state(app, now, window))


def guards_of(settings: Settings, store: StateGuardStore) -> Mapping[str, Guard]:
    """The guard of every app that has one, over ``store``."""
    return {
        name: Guard(name, app.guard, store)
        for name, app in settings.apps.items()
        if app.guard is not None
    }


@asynccontextmanager
async def store_guard_control(url: str, settings: Settings) -> AsyncIterator[StoreGuardControl]:
    """The guards of ``settings`` straight on the state store at ``url``: no running gateway
    needed (``scim-gateway guard -c gateway.yaml``). Opened without a lease: a tool."""
    store = StateStore(url, lease_seconds=settings.state.lease_seconds)
    await store.open(lease=False)
    try:
        yield StoreGuardControl(guards_of(settings, StateGuardStore(store)))
    finally:
        await store.close()
