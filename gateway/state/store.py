"""The state store: a migrated database and this process's lease in it.

Every gateway process holds a lease row (instance id, host, pid, expiry) that
it renews while it runs and deletes when it stops. Work a process left
unfinished (an audit event still pending) belongs to a dead process once its
lease has expired, or, on SQLite (one host by construction), as soon as its
pid is gone. Other features find the live instances here too.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from datetime import UTC, datetime

from gateway.state.db import Database, Tx, open_database
from gateway.state.migrations import migrate

log = logging.getLogger("gateway.state")

_SECOND: list[tuple[int, str]] = [(-1, "")]  # the last second formatted (events come in bursts)


def iso(timestamp: float) -> str:
    """UTC, fixed width, so text order is time order (both backends store it as text)."""
    second = int(timestamp // 1)
    last, text = _SECOND[0]
    if second != last:
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _SECOND[0] = (second, text)
    return f"{text}.{int((timestamp - second) * 1e6):06d}Z"  # truncated: never 1000000


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class StateStore:
    def __init__(self, url: str, *, lease_seconds: float = 30.0) -> None:
        self.db: Database = open_database(url)
        self.lease_seconds = lease_seconds
        self.instance_id = uuid.uuid4().hex
        self.schema_version = 0
        self._host = socket.gethostname()
        #: time.monotonic() of the last renewal of the lease.
        self.renewed = 0.0

    async def open(self, *, lease: bool = True) -> None:
        """Connect and migrate; with ``lease``, also register this process (a server)."""
        await self.db.connect()
        try:
            self.schema_version = await migrate(self.db)
            if lease:
                await self._register()
        except BaseException:
            await self.db.close()
            raise

    async def close(self) -> None:
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM instance_lease WHERE instance_id = ?", self.instance_id)
        await self.db.close()

    async def _register(self) -> None:
        async with self.db.transaction() as tx:
            await self._insert_lease(tx)
        self.renewed = time.monotonic()

    async def _insert_lease(self, tx: Tx) -> None:
        now = time.time()
        await tx.execute(
            "INSERT INTO instance_lease (instance_id, host, pid, started, expires) "
            "VALUES (?, ?, ?, ?, ?)",
            self.instance_id,
            self._host,
            os.getpid(),
            iso(now),
            now + self.lease_seconds,
        )

    async def renew(self, tx: Tx) -> bool:
        """Extend this process's lease, or take a new one if it was lost; False if lost.

        A lease is lost when the process could not renew it in time (paused, cut off
        from the store): a replica then deleted it and finalized this process's pending
        events as "unknown". Writing on without a lease would let that happen again.
        """
        changed = await tx.execute(
            "UPDATE instance_lease SET expires = ? WHERE instance_id = ?",
            time.time() + self.lease_seconds,
            self.instance_id,
        )
        self.renewed = time.monotonic()
        if changed:
            return True
        log.warning(
            "state: this instance's lease (%s) was lost, probably after a pause longer than "
            "lease_seconds (%s s); taking a new one",
            self.instance_id,
            self.lease_seconds,
        )
        await self._insert_lease(tx)
        return False

    def lease_stale(self) -> bool:
        """True when the lease may have expired since it was last renewed."""
        held = self.renewed > 0  # a tool's store (open(lease=False)) holds none
        return held and time.monotonic() - self.renewed > self.lease_seconds / 2

    async def live_instances(self, tx: Tx) -> set[str]:
        """Instance ids whose lease holds (this one included); expired leases are deleted."""
        now = time.time()
        live: set[str] = {self.instance_id}
        dead: list[str] = []
        for row in await tx.fetch("SELECT instance_id, host, pid, expires FROM instance_lease"):
            gone = row["expires"] < now or (
                self.db.single_host and row["host"] == self._host and not _pid_alive(row["pid"])
            )
            if row["instance_id"] == self.instance_id:
                continue
            if gone:
                dead.append(row["instance_id"])
            else:
                live.add(row["instance_id"])
        for instance_id in dead:
            await tx.execute("DELETE FROM instance_lease WHERE instance_id = ?", instance_id)
        return live
