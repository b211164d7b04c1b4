"""The audit trail as the gateway's :class:`gateway.operation.Recorder`.

One writer task group-commits: every open and close queued while the previous
transaction ran goes into the next one. ``opened`` waits for the commit that
holds its pending row (the open-before-write promise) and is committed at
once; ``closed`` only queues, so reads and refusals cost a queue append, and
closes alone linger up to ``CLOSE_LINGER`` to share a commit. A close lost in a crash leaves its
pending row behind, which :meth:`AuditLog.recover` turns into "unknown":
a write is never unaccounted for.

A maintenance task renews this process's lease, recovers the events of dead
processes, and applies ``retention_days``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.operation import Operation
from gateway.state.audit import ALWAYS_MASKED, AuditLog, event_row, masked_values
from gateway.state.db import Row

log = logging.getLogger("gateway.audit")

#: Seconds between retention runs, when retention_days is set.
PRUNE_EVERY = 3600.0
#: Closes alone wait this long (or for CLOSE_BATCH of them, or an open) to share a commit.
CLOSE_LINGER = 0.05
CLOSE_BATCH = 512


class AuditUnavailable(RuntimeError):
    """The pending event could not be stored, so the write must not go ahead."""


@dataclass
class _Batch:
    opens: list[Row] = field(default_factory=list)
    waiting: list[asyncio.Future[None]] = field(default_factory=list)
    closes: list[Row] = field(default_factory=list)
    opened: set[str] = field(default_factory=set)


class AuditRecorder:
    def __init__(
        self,
        log: AuditLog,
        *,
        retention_days: float | None = None,
        values: bool = False,
        sensitive: Iterable[str] = (),
    ) -> None:
        self.log = log
        self._retention_days = retention_days
        #: Read by :meth:`Operation.set_changed`: keep the values written (masked here).
        self.wants_values = values
        self._sensitive = ALWAYS_MASKED | {name.lower() for name in sensitive}
        self._pending: dict[Operation, str] = {}
        # Event ids: this process's random instance id and a counter (no syscall per event).
        self._numbers = itertools.count(1)
        self._batch = _Batch()
        self._wake = asyncio.Event()
        #: Set when the next commit must not wait: an open is waiting, or closes piled up.
        self._urgent = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._writing = asyncio.Lock()

    async def start(self) -> None:
        recovered = await self.log.recover()
        if recovered:
            log.warning("audit: %d event(s) of stopped processes marked unknown", recovered)
        self._tasks = [
            asyncio.create_task(self._write_loop(), name="audit-writer"),
            asyncio.create_task(self._maintain(), name="audit-maintenance"),
        ]

    async def aclose(self) -> None:
        """Stop maintenance, let the writer commit what is queued, then stop it."""
        writer, maintenance = self._tasks or (None, None)
        self._tasks = []
        if maintenance is not None:
            maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await maintenance
        self._closing = True
        self._wake.set()
        self._urgent.set()
        if writer is not None:
            await writer
        await self.flush()

    # -- the Recorder protocol -------------------------------------------------------------

    async def opened(self, op: Operation) -> None:
        event_id = self._new_id()
        done = asyncio.get_running_loop().create_future()
        self._batch.opens.append(self._row(op, event_id))
        self._batch.waiting.append(done)
        self._pending[op] = event_id
        self._wake.set()
        self._urgent.set()
        try:
            await done
        except AuditUnavailable:
            del self._pending[op]  # no pending row: the close records the refusal afresh
            raise

    async def closed(self, op: Operation) -> None:
        event_id = self._pending.pop(op, None)
        self._batch.closes.append(self._row(op, event_id or self._new_id()))
        if event_id is not None:
            self._batch.opened.add(event_id)
        self._wake.set()
        if len(self._batch.closes) >= CLOSE_BATCH:
            self._urgent.set()

    def _row(self, op: Operation, event_id: str) -> Row:
        row = event_row(op, event_id)
        if self.wants_values and op.values is not None:
            row["change_values"] = masked_values(op.values, self._sensitive)
        return row

    def _new_id(self) -> str:
        return f"{self.log.store.instance_id}-{next(self._numbers)}"

    # -- background ------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), CLOSE_LINGER)
            self._urgent.clear()
            await self.flush()
            if self._closing:
                return

    async def flush(self) -> None:
        """Commit everything queued so far (the writer does this on its own; tests wait on it)."""
        async with self._writing:  # one transaction at a time; the next takes all that queued
            await self._write(self._swap())

    def _swap(self) -> _Batch:
        batch, self._batch = self._batch, _Batch()
        return batch

    async def _write(self, batch: _Batch) -> None:
        if not (batch.opens or batch.closes):
            return
        try:
            await self.log.write(batch.opens, batch.closes, batch.opened)
        except Exception as exc:
            # The type only: a driver message may quote the statement's values.
            count = len(batch.closes) + len(batch.opens)
            log.error("audit: a write of %d event(s) failed: %s", count, type(exc).__name__)
            for done in batch.waiting:
                if not done.done():
                    done.set_exception(AuditUnavailable("the audit trail is unavailable"))
            return
        for done in batch.waiting:
            if not done.done():
                done.set_result(None)

    async def _maintain(self) -> None:
        period = max(0.5, self.log.store.lease_seconds / 3)
        next_prune = 0.0  # at the first round, then every PRUNE_EVERY
        while True:
            await asyncio.sleep(period)
            try:
                recovered = await self.log.recover()
                if recovered:
                    log.warning("audit: %d event(s) of stopped processes marked unknown", recovered)
                if self._retention_days and time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_EVERY
                    await self.log.prune(self._retention_days)
            except Exception as exc:
                log.error("audit: maintenance failed: %s", type(exc).__name__)
