"""The account ledger: what the gateway last wrote to each app, per account.

After every successful create, update or delete the service notes the account:
its SCIM id and name, its state (``active``, ``inactive``, ``deactivated`` by the
deprovision policy, ``deleted``), who wrote it (the credential's name) and when,
and a fingerprint of the resource as the app answered the write. ``reconcile``
compares the app with these rows, the access review reads them, and ``sweep``
finds the accounts the deprovision policy deactivated.

Notes are only queued on the request path; a writer task upserts them in one
transaction per batch, like the audit's closes. A note lost in a crash makes a
later reconcile report that account (drift or orphan): it errs towards showing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.state.db import Body, Row, executemany
from gateway.state.store import StateStore, iso

log = logging.getLogger("gateway.ledger")

#: SCIM attributes a fingerprint leaves out: the app maintains ``meta``; memberships change
#: through the groups and are compared as groups, not as drift of an account.
UNPRINTED = frozenset({"meta", "groups", "members", "schemas"})
#: Seconds notes wait to share a commit.
LINGER = 0.05

_UPSERT = (
    "INSERT INTO account (app, resource_type, scim_id, name, state, fingerprint, "
    "provisioned_by, created, changed, changed_by, deactivated_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (app, resource_type, scim_id) DO UPDATE SET "
    "name = COALESCE(excluded.name, account.name), state = excluded.state, "
    "fingerprint = COALESCE(excluded.fingerprint, account.fingerprint), "
    "changed = excluded.changed, changed_by = excluded.changed_by, "
    "deactivated_at = CASE WHEN excluded.state = 'deactivated' "
    "THEN COALESCE(account.deactivated_at, excluded.deactivated_at) ELSE NULL END"
)


def fingerprint(resource: Mapping[str, Any]) -> str:
    """sha256 of the resource's canonical JSON, without what the app or memberships change."""
    kept = {k: v for k, v in resource.items() if k not in UNPRINTED}
    return hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


def state_of(resource: Mapping[str, Any]) -> str:
    return "inactive" if resource.get("active") is False else "active"


@dataclass(frozen=True, slots=True)
class Note:
    app: str
    resource_type: str
    scim_id: str
    name: str | None
    state: str
    #: None: the write's result was not read back; the previous fingerprint stays.
    fingerprint: str | None
    client: str | None
    at: float

    def row(self) -> tuple[Any, ...]:
        when = iso(self.at)
        deactivated = self.at if self.state == "deactivated" else None
        return (
            self.app,
            self.resource_type,
            self.scim_id,
            self.name,
            self.state,
            self.fingerprint,
            self.client,
            when,
            when,
            self.client,
            deactivated,
        )


class Ledger:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._queue: list[Note] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def note(self, note: Note) -> None:
        """Queue a note (no I/O here: this runs on the request path)."""
        self._queue.append(note)
        self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="ledger-writer")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(LINGER)
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            batch, self._queue = self._queue, []
            if not batch:
                return
            try:
                await self.write(batch)
            except Exception:
                await self._one_by_one(batch)

    async def _one_by_one(self, batch: list[Note]) -> None:
        """After a failed batch: each note alone, so one unstorable note loses only itself."""
        for note in batch:
            try:
                await self.write([note])
            except Exception as exc:
                # The type only: a driver message may quote the values.
                log.error("ledger: a note of app %s was lost: %s", note.app, type(exc).__name__)

    async def write(self, notes: list[Note]) -> None:
        # One transaction body: on SQLite one trip to the store's thread, not one each for
        # BEGIN, the upserts and COMMIT.
        await self.store.db.run(_upsert([n.row() for n in notes]))


def _upsert(rows: list[tuple[Any, ...]]) -> Body[None]:
    yield executemany(_UPSERT, rows)


# -- reading -------------------------------------------------------------------------------


async def accounts(
    store: StateStore, app: str, resource_type: str, scim_ids: list[str]
) -> dict[str, Row]:
    """The ledger rows of these accounts, by SCIM id (chunked: SQLite's parameter limit)."""
    found: dict[str, Row] = {}
    async with store.db.transaction() as tx:
        for start in range(0, len(scim_ids), 500):
            chunk = scim_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = await tx.fetch(
                "SELECT * FROM account WHERE app = ? AND resource_type = ? "
                f"AND scim_id IN ({marks})",
                app,
                resource_type,
                *chunk,
            )
            found.update((r["scim_id"], r) for r in rows)
    return found


async def deactivated_before(store: StateStore, app: str, days: float) -> list[Row]:
    """Accounts the deprovision policy deactivated more than ``days`` ago."""
    cutoff = time.time() - days * 86400
    async with store.db.transaction() as tx:
        return await tx.fetch(
            "SELECT * FROM account WHERE app = ? AND state = 'deactivated' "
            "AND deactivated_at < ? ORDER BY scim_id",
            app,
            cutoff,
        )
