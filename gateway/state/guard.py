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

import getpass
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from gateway.config import Settings
from gateway.guard import MAX_KEYS, Guard, GuardState, Verdict
from gateway.guard_control import StoreGuardControl
from gateway.operation import Operation
from gateway.state.audit import AuditLog, event_row
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


class AuditedGuardControl:
    """The CLI's guard control on the store: a release is an audit event
    (``admin.guard-release``, client ``cli:<login>``) committed before the release
    takes effect and closed after, like a release through the admin endpoint."""

    def __init__(self, inner: StoreGuardControl, log: AuditLog | None, who: str) -> None:
        self._inner = inner
        self._log = log
        self._who = who

    async def status(self, app: str) -> GuardState:
        return await self._inner.status(app)

    async def release(self, app: str, minutes: float | None = None) -> GuardState:
        if self._log is None:  # the audit is off (state.audit.enabled: false)
            return await self._inner.release(app, minutes)
        await self._inner.status(app)  # GuardError for an app without a guard, first
        op = Operation(app, "CLI", "scim-gateway guard release", client=self._who)
        op.describe("admin.guard-release")
        if minutes is not None:
            op.extra["minutes"] = f"{minutes:g}"
        event_id = f"{self._log.store.instance_id}-cli"
        await self._log.write([event_row(op, event_id)], [], set())  # on record first
        try:
            state = await self._inner.release(app, minutes)
        except BaseException:
            op.finish(500)
            await self._log.write([], [event_row(op, event_id)], {event_id})
            raise
        op.finish(200)
        await self._log.write([], [event_row(op, event_id)], {event_id})
        return state


@asynccontextmanager
async def store_guard_control(url: str, settings: Settings) -> AsyncIterator[AuditedGuardControl]:
    """The guards of ``settings`` straight on the state store at ``url``: no running gateway
    needed (``scim-gateway guard -c gateway.yaml``). Opened without a lease: a tool."""
    store = StateStore(url, lease_seconds=settings.state.lease_seconds)
    await store.open(lease=False)
    try:
        control = StoreGuardControl(guards_of(settings, StateGuardStore(store)))
        log = AuditLog(store) if settings.state.audit.enabled else None
        yield AuditedGuardControl(control, log, f"cli:{_login()}")
    finally:
        await store.close()


def _login() -> str:
    """Who runs the command, as the OS knows them (the audit's client for a CLI release)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's numeric user)
        return f"uid {os.getuid()}"
