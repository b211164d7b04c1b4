"""The audit trail as the gateway's :class:`gateway.operation.Recorder`.

Two writer tasks group-commit: every open (or close) queued while the previous
transaction of its lane ran goes into the next one. ``opened`` waits for the
commit that holds its pending row (the open-before-write promise), and opens
commit at once; ``closed`` only queues, so reads and refusals cost a queue
append, and closes linger up to ``CLOSE_LINGER`` to share a commit. The lanes
do not wait for each other (on PostgreSQL they commit side by side). A close
lost in a crash leaves its pending row behind, which :meth:`AuditLog.recover`
turns into "unknown": a write is never unaccounted for.

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

from gateway.errors import StoreUnavailable
from gateway.operation import Operation
from gateway.state.audit import ALWAYS_MASKED, AuditLog, bare, event_row, masked_values
from gateway.state.db import Row
from gateway.telemetry import span

log = logging.getLogger("gateway.audit")


class _Episode:
    """Write failures are logged once per episode (the first), and the recovery once:
    a store that is down for an hour must not write a line per request."""

    def __init__(self) -> None:
        self.failing = False
        self.held = 0

    def failed(self, count: int, exc: BaseException) -> None:
        if not self.failing:
            # The type only: a driver message may quote the statement's values.
            log.error(
                "audit: a write of %d event(s) failed: %s; closes are kept and retried",
                count,
                type(exc.__cause__ or exc).__name__,
            )
        self.failing = True

    def landed(self) -> None:
        if self.failing:
            log.warning("audit: the store takes writes again; the events held back are stored")
        self.failing = False


#: Seconds between retention runs, when retention_days is set.
PRUNE_EVERY = 3600.0
#: Closes alone wait this long (or for CLOSE_BATCH of them, or an open) to share a commit.
CLOSE_LINGER = 0.05
CLOSE_BATCH = 512
#: Closes that could not be stored are retried after this many seconds, doubling to
#: RETRY_MAX while the store keeps failing.
RETRY_FIRST = 0.1
RETRY_MAX = 5.0
#: Attempts of the last flush when the process stops (what is left pending becomes
#: "unknown" at the next start; closes of reads are lost).
STOP_ATTEMPTS = 3
#: The operations that only read (``audit.reads`` decides which successful ones are kept).
READS = frozenset({"get", "list", "search", "discovery"})


_UNWRITABLE = "the audit trail cannot be written right now"


class AuditUnavailable(StoreUnavailable):
    """The pending event could not be stored, so the write must not go ahead (503)."""


@dataclass
class _Opens:
    rows: list[Row] = field(default_factory=list)
    waiting: list[asyncio.Future[None]] = field(default_factory=list)


@dataclass
class _Closes:
    rows: list[Row] = field(default_factory=list)
    #: Event ids among ``rows`` that have a pending row to finalize.
    opened: set[str] = field(default_factory=set)
    #: Opens still being committed (a request cancelled while its open was in flight).
    after: dict[str, asyncio.Future[None]] = field(default_factory=dict)


class AuditRecorder:
    def __init__(
        self,
        log: AuditLog,
        *,
        retention_days: float | None = None,
        values: bool = False,
        sensitive: Iterable[str] = (),
        reads: str = "all",
        reads_sample_every: int = 1,
    ) -> None:
        self.log = log
        # "all" keeps every read; otherwise successful reads are kept one in ``_read_every``
        # (0: none). Refused and failed reads are always kept.
        self._read_every = {"all": 1, "none": 0}.get(reads, reads_sample_every)
        self._reads_seen = itertools.count()
        self._retention_days = retention_days
        #: Read by :meth:`Operation.set_changed`: keep the values written (masked here).
        self.wants_values = values
        self._sensitive = ALWAYS_MASKED | {name.lower() for name in sensitive}
        self._pending: dict[Operation, tuple[str, asyncio.Future[None]]] = {}
        # Event ids: this process's random instance id and a counter (no syscall per event).
        self._numbers = itertools.count(1)
        # Two lanes: opens commit at once, closes linger; neither waits for the other's
        # commit (on PostgreSQL they run side by side; SQLite takes them in turn).
        self._opens, self._closes = _Opens(), _Closes()
        self._open_wake, self._close_wake = asyncio.Event(), asyncio.Event()
        #: Set when closes must not linger: too many queued, or stopping.
        self._urgent = asyncio.Event()
        self._open_lock, self._close_lock = asyncio.Lock(), asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._episode = _Episode()
        self._retry_delay = 0.0
        self._stop = asyncio.Event()

    async def start(self) -> None:
        recovered = await self.log.recover()
        if recovered:
            log.warning("audit: %d event(s) of stopped processes marked unknown", recovered)
        self._tasks = [
            asyncio.create_task(self._open_loop(), name="audit-opens"),
            asyncio.create_task(self._close_loop(), name="audit-closes"),
            asyncio.create_task(self._maintain(), name="audit-maintenance"),
        ]

    async def aclose(self) -> None:
        """Stop maintenance, let the writers commit what is queued, then stop them."""
        tasks, self._tasks = self._tasks, []
        for task in tasks[2:]:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._closing = True
        self._stop.set()
        self._open_wake.set()
        self._close_wake.set()
        self._urgent.set()
        for task in tasks[:2]:
            await task
        for attempt in range(STOP_ATTEMPTS):
            await self.flush()
            if not self._closes.rows:
                return
            await asyncio.sleep(RETRY_FIRST * 2**attempt)
        log.error(
            "audit: stopping with %d close(s) not stored; their pending events become "
            "unknown at the next start",
            len(self._closes.rows),
        )

    # -- the Recorder protocol -------------------------------------------------------------

    async def opened(self, op: Operation) -> None:
        event_id = self._new_id()
        done = asyncio.get_running_loop().create_future()
        self._opens.rows.append(self._row(op, event_id))
        self._opens.waiting.append(done)
        self._pending[op] = (event_id, done)
        self._open_wake.set()
        try:
            # The span covers the wait for the pending event's commit (group-committed).
            with span("audit.write", **{"scim.app": op.app, "audit.phase": "open"}):
                # Shielded: a cancelled request leaves the commit (and its future) to finish.
                await asyncio.shield(done)
        except AuditUnavailable:
            del self._pending[op]  # no pending row: the close records the refusal afresh
            raise

    async def closed(self, op: Operation) -> None:
        # Only queued here (no span: it takes microseconds); the close writer commits it.
        if self._read_every != 1 and self._skips_read(op):
            return
        event_id, done = self._pending.pop(op, (None, None))
        self._closes.rows.append(self._row(op, event_id or self._new_id()))
        if event_id is not None and done is not None:
            self._closes.opened.add(event_id)
            if not done.done():
                self._closes.after[event_id] = done
        self._close_wake.set()
        if len(self._closes.rows) >= CLOSE_BATCH:
            self._urgent.set()

    def _skips_read(self, op: Operation) -> bool:
        if op.outcome != "success" or op.action not in READS:
            return False  # writes, and refused or failed reads, are always kept
        return not self._read_every or next(self._reads_seen) % self._read_every != 0

    def _row(self, op: Operation, event_id: str) -> Row:
        row = event_row(op, event_id)
        if self.wants_values and op.values is not None:
            row["change_values"] = masked_values(op.values, self._sensitive)
        return row

    def _new_id(self) -> str:
        return f"{self.log.store.instance_id}-{next(self._numbers)}"

    # -- background ------------------------------------------------------------------------

    async def _open_loop(self) -> None:
        while not self._closing:
            await self._open_wake.wait()
            self._open_wake.clear()
            await self._flush_opens()

    async def _close_loop(self) -> None:
        while not self._closing:
            await self._close_wake.wait()
            self._close_wake.clear()
            if self._retry_delay:  # the store failed: give it time, keep queueing
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self._retry_delay)
            elif not self._urgent.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._urgent.wait(), CLOSE_LINGER)
            if not self._closing:
                self._urgent.clear()
            await self._flush_closes()

    async def flush(self) -> None:
        """Commit everything queued so far (the writers do this on their own; tests wait)."""
        await self._flush_opens()
        await self._flush_closes()

    async def _lease(self) -> None:
        if self.log.store.lease_stale():  # after a pause: a lease before any write
            async with self.log.db.transaction() as tx:
                await self.log.store.renew(tx)

    async def _write(self, opens: list[Row], closes: list[Row], opened: set[str]) -> None:
        await self._lease()
        await self.log.write(opens, closes, opened)

    async def _flush_opens(self) -> None:
        async with self._open_lock:  # one transaction at a time; the next takes all queued
            if not self._opens.rows:
                return
            try:
                await self._lease()
                # The transaction takes what is queued once it holds the write lock, and
                # opened() keeps appending to the same list until then.
                count = await self.log.write_queued(self._opens.rows)
            except Exception as exc:
                batch = self._take_opens(len(self._opens.rows))
                self._episode.failed(len(batch.rows), exc)
                await self._opens_alone(batch)
                return
            batch = self._take_opens(count)
            self._episode.landed()
            for done in batch.waiting:
                if not done.done():
                    done.set_result(None)

    def _take_opens(self, count: int) -> _Opens:
        """The first ``count`` queued opens, off the queue (here, on the event loop, where
        opened() appends a row and its future together)."""
        queue = self._opens
        self._opens = _Opens(queue.rows[count:], queue.waiting[count:])
        return _Opens(queue.rows[:count], queue.waiting[:count])

    async def _opens_alone(self, batch: _Opens) -> None:
        """After a failed batch, each open alone: one bad row fails no other request."""
        alone = len(batch.rows) > 1  # one row alone already failed
        for row, done in zip(batch.rows, batch.waiting, strict=True):
            try:
                if not alone:
                    raise AuditUnavailable(_UNWRITABLE)
                await self._write([row], [], set())
            except Exception:
                if not done.done():
                    done.set_exception(AuditUnavailable(_UNWRITABLE))
                continue
            if not done.done():
                done.set_result(None)

    async def _flush_closes(self) -> None:
        async with self._close_lock:
            batch, self._closes = self._closes, _Closes()
            if not batch.rows:
                return
            if batch.after:
                await asyncio.wait(batch.after.values())
                for event_id, done in batch.after.items():
                    if done.exception() is not None:
                        batch.opened.discard(event_id)  # no pending row: record it afresh
            try:
                await self._write([], batch.rows, batch.opened)
            except Exception as exc:
                self._episode.failed(len(batch.rows), exc)
                if not await self._closes_alone(batch):
                    self._hold(batch)
                    return
            self._episode.landed()
            self._retry_delay = 0.0

    async def _closes_alone(self, batch: _Closes) -> bool:
        """Each close alone, bare if it fails even so; False (and the rest kept in
        ``batch``) when a bare row fails too: then it is the store, not a row."""
        while batch.rows:
            row = batch.rows[0]
            opened = {row["event_id"]} & batch.opened
            try:
                await self._write([], [row], opened)
            except Exception:
                try:
                    await self._write([], [bare(row)], opened)
                except Exception:
                    return False
                log.error("audit: event %s could only be stored bare", row["event_id"])
            batch.rows.pop(0)
        return True

    def _hold(self, batch: _Closes) -> None:
        """Queue a failed batch again, before what came meanwhile, and retry later."""
        self._closes.rows[:0] = batch.rows
        self._closes.opened |= batch.opened
        self._retry_delay = min(RETRY_MAX, max(RETRY_FIRST, self._retry_delay * 2))
        self._close_wake.set()

    async def _maintain(self) -> None:
        period = max(0.5, self.log.store.lease_seconds / 3)
        next_prune = 0.0  # at the first round, then every PRUNE_EVERY
        while True:
            await asyncio.sleep(period)
            try:
                recovered = await self.log.recover()  # renews (or re-takes) the lease
                if recovered:
                    log.warning("audit: %d event(s) of stopped processes marked unknown", recovered)
                if self._retention_days and time.monotonic() >= next_prune:
                    next_prune = time.monotonic() + PRUNE_EVERY
                    await self.log.prune(self._retention_days)
            except Exception as exc:
                log.error("audit: maintenance failed: %s", type(exc).__name__)
