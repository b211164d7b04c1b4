"""The audit trail: one event per SCIM operation, hash-chained in the order events finish.

An event is written twice for a write: *pending* before the legacy call (so a
crash leaves a trace) and *finalized* with its outcome. Only finalized events
are in the chain: finalizing gives an event the next ``seq``, the previous
event's hash as ``prev_hash``, and ``hash = sha256(canonical fields + prev_hash)``.
``audit_head`` holds the last seq and hash; finalizers lock it, so replicas
append one at a time. Pending events of dead processes are finalized as
"unknown" by :meth:`AuditLog.recover`.

Retention deletes a prefix of the chain and leaves a checkpoint (the last
deleted seq and hash, HMAC-signed with ``checkpoint_key``) to verify from.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.operation import Operation
from gateway.state.db import Body, Row, Statement, execute, executemany, fetch
from gateway.state.migrations import GENESIS
from gateway.state.store import StateStore, iso

#: The fields an event is hashed over, besides prev_hash (instance_id is bookkeeping).
CHAINED = (
    "event_id",
    "seq",
    "time",
    "app",
    "client",
    "user_agent",
    "remote",
    "method",
    "path",
    "operation",
    "resource_type",
    "scim_id",
    "legacy_id",
    "name",
    "changed",
    "outcome",
    "status",
    "scim_type",
    "duration_ms",
    "trace_id",
    "failed_step",
    "bulk_id",
    "extra",
    "change_values",
)
_WRITTEN = tuple(f for f in CHAINED if f != "seq")
_FINAL = (*_WRITTEN, "seq", "prev_hash", "hash")
#: Where ``outcome`` is in an inserted row's values (after instance_id).
_OUTCOME_AT = 1 + _FINAL.index("outcome")
#: What readers see of an event, in this order (CSV columns).
PUBLIC = ("id", *CHAINED, "prev_hash", "hash")
#: The same, as readers get them (``change_values`` is shown as ``values``).
PUBLIC_NAMES = tuple("values" if name == "change_values" else name for name in PUBLIC)


_INSERT_SQL = (
    f"INSERT INTO audit_event (instance_id, {', '.join(_FINAL)}) "
    f"VALUES ({', '.join('?' * (1 + len(_FINAL)))})"
)


def event_row(op: Operation, event_id: str) -> Row:
    """The stored form of an operation: names and ids only, never values or secrets.

    Storable whatever the request held (see :func:`storable`).
    """
    return storable(_fields(op, event_id))


def _fields(op: Operation, event_id: str) -> Row:
    return {
        "event_id": event_id,
        "time": iso(op.started),
        "app": op.app,
        "client": op.client,
        "user_agent": op.user_agent,
        "remote": op.remote,
        "method": op.method,
        "path": op.path,
        "operation": op.action,
        "resource_type": op.resource_type,
        "scim_id": op.scim_id,
        "legacy_id": op.legacy_id,
        "name": op.name,
        "changed": _json(list(op.changed)) if op.changed else "[]",
        "outcome": op.outcome,
        "status": op.status,
        "scim_type": op.scim_type,
        "duration_ms": None if op.duration_ms is None else round(op.duration_ms, 3),
        "trace_id": op.trace_id,
        "failed_step": op.failed_step,
        "bulk_id": op.bulk_id,
        "extra": _json(op.extra) if op.extra else "{}",
        "change_values": None,  # the recorder fills it in, masked, when values are on
    }


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
    except TypeError:  # a lone surrogate (an undecodable header byte) somewhere inside
        return orjson.dumps(_clean_json(value), option=orjson.OPT_SORT_KEYS, default=str).decode()


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean_json(v) for v in value]
    return value


# -- making a row storable ---------------------------------------------------------------
# Whatever a client sends (bytes that are not UTF-8 in a header, NUL in a JSON string, a
# megabyte of User-Agent) must not make an event unstorable: SQLite's driver and orjson
# refuse lone surrogates, PostgreSQL refuses NUL, and one such row used to fail the whole
# group commit it was in. So every text is cleaned and bounded before it is queued.

#: The longest text a column keeps (characters); longer ones are cut, marked with "…".
MAX_TEXT = 1024
TEXT_LIMITS = {"path": 2048, "user_agent": 512, "name": 512}
#: JSON columns longer than this are replaced by a marker (cutting JSON would break it).
MAX_JSON = 65_536
_JSON_COLUMNS = ("changed", "extra", "change_values")
#: What replaces NUL and undecodable bytes.
REPLACEMENT = "\ufffd"


#: NUL and lone surrogates (aiohttp keeps an undecodable header byte as U+DC80..U+DCFF).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def clean_text(value: str) -> str:
    """``value`` without lone surrogates (undecodable bytes) or NUL: each becomes U+FFFD."""
    if value.isascii():
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    return _UNSTORABLE.sub(REPLACEMENT, value)


def bounded(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


#: No column keeps less than this (characters): texts shorter in all pass uncut.
_SHORTEST_LIMIT = min(MAX_TEXT, *TEXT_LIMITS.values())


def storable(row: Row) -> Row:
    """``row`` with every text cleaned (:func:`clean_text`) and bounded in length."""
    # The usual row, found in one pass: ASCII texts without NUL, all of them together no
    # longer than the shortest column limit, so none needs cleaning or cutting.
    joined = "\x01".join([value for value in row.values() if isinstance(value, str)])
    if len(joined) <= _SHORTEST_LIMIT and joined.isascii() and "\x00" not in joined:
        return row
    for name, value in row.items():
        if not isinstance(value, str):
            continue
        if name in _JSON_COLUMNS:
            if len(value) > MAX_JSON:
                row[name] = "[]" if name == "changed" else _json({"truncated": len(value)})
            continue  # made by _json: already clean
        row[name] = bounded(clean_text(value), TEXT_LIMITS.get(name, MAX_TEXT))
    return row


#: Columns a bare row keeps: generated ids, config names and the outcome, nothing a
#: client wrote. A row that fails even when cleaned is stored bare rather than lost.
_BARE = frozenset(
    {"event_id", "time", "app", "client", "method", "operation", "resource_type", "outcome"}
    | {"status", "scim_type", "duration_ms", "trace_id", "instance_id", "seq", "prev_hash"}
    | {"hash", "changed", "extra", "change_values"}
)


def bare(row: Row) -> Row:
    """The row with every client-written text dropped (``path`` kept as ``-``)."""
    out: Row = {k: (v if k in _BARE else None) for k, v in row.items()}
    out.update(path="-", changed="[]", change_values=None, extra=_json({"stored": "bare"}))
    return out


#: What a masked value reads as; ``password`` is always masked.
MASK = "****"
ALWAYS_MASKED = frozenset({"password"})


def masked_values(values: Mapping[str, Any], sensitive: frozenset[str]) -> str:
    """``values`` as stored: JSON, with every attribute named in ``sensitive`` (lower case,
    at any depth, so a sub-attribute too) replaced by :data:`MASK`."""

    def walk(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {k: MASK if k.lower() in sensitive else walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return _json(walk(values))


def chain_hash(row: Row, prev_hash: str) -> str:
    """sha256 of the canonical encoding: compact JSON, keys sorted, UTF-8, prev_hash inside."""
    payload = {name: row[name] for name in CHAINED}
    payload["prev_hash"] = prev_hash
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def public(row: Row) -> dict[str, Any]:
    out = {name: row.get(name) for name in PUBLIC}
    out["changed"] = orjson.loads(row["changed"])
    out["extra"] = orjson.loads(row["extra"])
    values = out.pop("change_values")
    out["values"] = None if values is None else orjson.loads(values)
    return out


@dataclass(frozen=True, slots=True)
class Filters:
    app: str | None = None
    #: userName / displayName or SCIM id.
    user: str | None = None
    operation: str | None = None
    outcome: str | None = None
    #: ISO times as stored (see :func:`gateway.state.store.iso`); until is exclusive.
    since: str | None = None
    until: str | None = None

    def where(self) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for column, value in (
            ("app", self.app),
            ("operation", self.operation),
            ("outcome", self.outcome),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if self.user is not None:
            clauses.append("(name = ? OR scim_id = ?)")
            args += [self.user, self.user]
        if self.since is not None:
            clauses.append("time >= ?")
            args.append(self.since)
        if self.until is not None:
            clauses.append("time < ?")
            args.append(self.until)
        return clauses, args


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    hash: str
    time: str
    signature: str


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    checked: int
    #: seq and event_id of the first event that breaks the chain, if one does.
    seq: int | None = None
    event_id: str | None = None
    problem: str | None = None

    def describe(self) -> str:
        if self.ok:
            return f"OK: {self.checked} event(s), the chain is intact"
        where = f"event seq {self.seq} (id {self.event_id}): " if self.seq is not None else ""
        return f"BROKEN after {self.checked} good event(s): {where}{self.problem}"


class AuditLog:
    def __init__(self, store: StateStore, checkpoint_key: bytes | None = None) -> None:
        self.store = store
        self.db = store.db
        self._key = checkpoint_key

    # -- writing ------------------------------------------------------------------------

    async def write(self, opens: list[Row], closes: list[Row], opened: set[str]) -> None:
        """One transaction: insert pending events, then finalize (chain) closed ones.

        ``opened``: event ids among ``closes`` that have a pending row to finalize.
        """
        await self.db.run(self._write(opens, closes, opened))

    def _write(self, opens: list[Row], closes: list[Row], opened: set[str]) -> Body[None]:
        if opens:
            yield self._insert(opens, outcome="pending")
        if closes:
            yield from self._chain(closes, opened, late=True)

    async def write_queued(self, queue: list[Row]) -> int:
        """Insert as pending the events in ``queue`` once the transaction has begun; how many.

        ``queue`` is still being appended to (by the event loop) while the transaction
        waits for the write lock: on SQLite that can be another process's commit, a
        whole fsync. Taking the rows only when the lock is held puts the events queued
        meanwhile in this commit rather than the next, so processes that take turns on
        one file still share their fsyncs.
        """
        return await self.db.run(self._write_queued(queue))

    def _write_queued(self, queue: list[Row]) -> Body[int]:
        # On SQLite this runs on the writer's thread after BEGIN IMMEDIATE: the copy is one
        # step under the GIL, and rows are whole before the loop appends them.
        rows = queue[:]
        yield self._insert(rows, outcome="pending")
        return len(rows)

    def _insert(self, rows: list[Row], *, outcome: str | None = None) -> Statement:
        """Insert new rows (pending ones have no seq, prev_hash or hash yet); ``outcome``,
        when given, is stored in place of each row's own (the rows are not changed)."""
        me = self.store.instance_id
        # map() over dict.get: the values of a row without a Python frame per column (this
        # runs on the writer's thread, under the GIL, for every event).
        values = [[me, *map(r.get, _FINAL)] for r in rows]
        if outcome is not None:
            for value in values:
                value[_OUTCOME_AT] = outcome
        return executemany(_INSERT_SQL, values)

    def _head(self) -> Body[tuple[int, str]]:
        """The chain's last seq and hash, locked until the transaction ends."""
        lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
        rows = yield fetch(f"SELECT seq, hash FROM audit_head WHERE id = 1{lock}")
        assert rows, "audit_head is created by migration 1"
        return int(rows[0]["seq"]), str(rows[0]["hash"])

    def _chain(self, rows: Iterable[Row], pending: set[str], *, late: bool = False) -> Body[int]:
        """Append ``rows`` to the chain; how many.

        A pending row finalized meanwhile (as "unknown", by a replica that took this
        process for dead while it was paused or cut off) is skipped, or with ``late``
        (a close that knows the real outcome) appended as a new event that names it.
        """
        rows = list(rows)
        # The head first: once it is locked no one else finalizes, so what is still pending
        # now stays so until this transaction ends. Then statements per batch, not per event.
        seq, prev = yield from self._head()
        start = seq
        opened = [r["event_id"] for r in rows if r["event_id"] in pending]
        still = yield from self._still_pending(opened)
        updates: list[list[Any]] = []
        fresh: list[Row] = []
        for row in rows:
            if row["event_id"] in pending and row["event_id"] not in still:
                if not late:
                    continue
                row = _late(row)
            linked = {**row, "seq": seq + 1, "prev_hash": prev}
            linked["hash"] = chain_hash(linked, prev)
            if row["event_id"] in still:
                updates.append([*map(linked.__getitem__, _FINAL), row["event_id"]])
            else:
                fresh.append(linked)
            seq, prev = seq + 1, linked["hash"]
        if updates:
            assignments = ", ".join(f"{c} = ?" for c in _FINAL)
            yield executemany(
                f"UPDATE audit_event SET {assignments} WHERE event_id = ? AND seq IS NULL", updates
            )
        if fresh:
            yield self._insert(fresh)
        yield execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", seq, prev)
        return seq - start

    def _still_pending(self, event_ids: list[str]) -> Body[set[str]]:
        found: set[str] = set()
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = yield fetch(
                f"SELECT event_id FROM audit_event WHERE seq IS NULL AND event_id IN ({marks})",
                *chunk,
            )
            found.update(r["event_id"] for r in rows)
        return found

    async def recover(self) -> int:
        """Finalize as "unknown" the pending events of processes that are gone; how many."""
        async with self.db.transaction() as tx:
            await self.store.renew(tx)
            live = await self.store.live_instances(tx)
            rows = await tx.fetch("SELECT * FROM audit_event WHERE seq IS NULL ORDER BY id")
            orphans = [r for r in rows if r["instance_id"] not in live]
            if not orphans:
                return 0
            for row in orphans:
                row["outcome"] = "unknown"
            return await tx.run(self._chain(orphans, {r["event_id"] for r in orphans}))

    # -- reading ------------------------------------------------------------------------

    async def list(
        self, filters: Filters, *, after: int = 0, limit: int = 100
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Events in the order they were recorded, after id ``after``; and the next cursor."""
        clauses, args = filters.where()
        where = " AND ".join(["id > ?", *clauses])
        sql = f"SELECT * FROM audit_event WHERE {where} ORDER BY id LIMIT ?"
        async with self.db.transaction() as tx:
            rows = await tx.fetch(sql, after, *args, limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return [public(r) for r in rows], (int(rows[-1]["id"]) if more else None)

    async def iterate(self, filters: Filters, page: int = 500) -> AsyncIterator[dict[str, Any]]:
        after: int | None = 0
        while after is not None:
            events, after = await self.list(filters, after=after, limit=page)
            for event in events:
                yield event

    # -- verifying and retention --------------------------------------------------------

    def sign(self, seq: int, hash_: str, at: str) -> str:
        assert self._key is not None
        return hmac.new(self._key, f"{seq}:{hash_}:{at}".encode(), hashlib.sha256).hexdigest()

    async def checkpoint(self) -> Checkpoint | None:
        async with self.db.transaction() as tx:
            row = await tx.fetchrow("SELECT * FROM audit_checkpoint ORDER BY seq DESC LIMIT 1")
        return None if row is None else Checkpoint(**row)

    async def verify(self, page: int = 1000) -> Verdict:
        """Walk the chain from the latest checkpoint (or the start) to the head."""
        start = await self.checkpoint()
        seq, prev = 0, GENESIS
        if start is not None:
            if self._key is None:
                return Verdict(False, 0, problem="a checkpoint exists but no checkpoint_key is set")
            expected = self.sign(start.seq, start.hash, start.time)
            if not hmac.compare_digest(start.signature, expected):
                return Verdict(False, 0, problem=f"the checkpoint at seq {start.seq} is forged")
            seq, prev = start.seq, start.hash
        checked = 0
        while True:
            async with self.db.transaction() as tx:
                rows = await tx.fetch(
                    "SELECT * FROM audit_event WHERE seq > ? ORDER BY seq LIMIT ?", seq, page
                )
                head = await tx.run(self._head()) if not rows else None
            for row in rows:
                problem = _link_problem(row, seq, prev)
                if problem:
                    return Verdict(False, checked, row["seq"], row["event_id"], problem)
                seq, prev, checked = row["seq"], row["hash"], checked + 1
            if head is not None:
                if head != (seq, prev):
                    return Verdict(
                        False,
                        checked,
                        problem=f"the chain ends at seq {seq} but the head is at seq {head[0]}: "
                        "the last events were deleted",
                    )
                return Verdict(True, checked)

    async def prune(self, older_than_days: float) -> Checkpoint | None:
        """Delete chained events older than the cut-off, up to the first newer one; sign a
        checkpoint at the last deleted event. None when nothing was old enough."""
        if self._key is None:
            raise ValueError("pruning needs state.audit.checkpoint_key to sign the checkpoint")
        cutoff = iso(time.time() - older_than_days * 86400)
        async with self.db.transaction() as tx:
            head_seq, _ = await tx.run(self._head())  # no finalizing meanwhile
            newer = await tx.fetchrow(
                "SELECT MIN(seq) AS s FROM audit_event WHERE seq IS NOT NULL AND time >= ?", cutoff
            )
            last = head_seq if newer is None or newer["s"] is None else int(newer["s"]) - 1
            row = await tx.fetchrow("SELECT hash FROM audit_event WHERE seq = ?", last)
            if row is None:
                return None  # nothing chained before the first newer event
            at = iso(time.time())
            point = Checkpoint(last, row["hash"], at, self.sign(last, row["hash"], at))
            await tx.execute(
                "INSERT INTO audit_checkpoint (seq, hash, time, signature) VALUES (?, ?, ?, ?)",
                point.seq,
                point.hash,
                point.time,
                point.signature,
            )
            await tx.execute("DELETE FROM audit_event WHERE seq IS NOT NULL AND seq <= ?", last)
            return point


def _late(row: Row) -> Row:
    """The close of an event already finalized as "unknown": a new event naming it."""
    extra = orjson.loads(row["extra"])
    extra["finalizes"] = row["event_id"]
    return {**row, "event_id": f"{row['event_id']}-late", "extra": _json(extra)}


def _link_problem(row: Row, seq: int, prev: str) -> str | None:
    if row["seq"] != seq + 1:
        return f"the events between seq {seq} and {row['seq']} are missing (deleted)"
    if row["prev_hash"] != prev:
        return "does not link to the event before it (an event was inserted or deleted)"
    if row["hash"] != chain_hash(row, prev):
        return "its content does not match its hash (edited)"
    return None
