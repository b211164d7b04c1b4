"""The hash chain, retention, recovery and migrations, on both backends, with direct edits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from state.conftest import CHECKPOINT_KEY

from gateway.operation import Operation
from gateway.state import AuditLog, AuditRecorder, Filters, StateError, StateStore
from gateway.state.audit import chain_hash, event_row
from gateway.state.migrations import MIGRATIONS

Opener = Callable[..., Awaitable[AuditLog]]


@pytest.fixture
async def open_log(state_url: str) -> AsyncIterator[Opener]:
    opened: list[AuditLog] = []

    async def open_one(key: str | None = CHECKPOINT_KEY, lease: bool = True) -> AuditLog:
        log = AuditLog(StateStore(state_url, lease_seconds=2), key.encode() if key else None)
        await log.store.open(lease=lease)
        opened.append(log)
        return log

    yield open_one
    for log in reversed(opened):
        await log.store.close()


def op(name: str, *, age_days: float = 0.0) -> Operation:
    o = Operation(app="crm", method="POST", path="/apps/crm/scim/v2/Users", client="idp")
    o.describe("create", "User", f"id-{name}")
    o.name = name
    o.started = time.time() - age_days * 86400
    o.finish(201)
    return o


async def record(log: AuditLog, *names: str, age_days: float = 0.0) -> None:
    rows = [event_row(op(n, age_days=age_days), f"ev-{n}") for n in names]
    await log.write([], rows, set())


async def sql(log: AuditLog, statement: str, *args: Any) -> None:
    async with log.db.transaction() as tx:
        await tx.execute(statement, *args)


async def expire(log: AuditLog) -> None:
    """The process behind ``log`` stopped renewing its lease (it was killed) and it ran out."""
    lease = "UPDATE instance_lease SET expires = 0 WHERE instance_id = ?"
    await sql(log, lease, log.store.instance_id)


async def test_an_untouched_chain_verifies(open_log: Opener) -> None:
    log = await open_log()
    await record(log, *"abcde")
    verdict = await log.verify()
    assert verdict.ok and verdict.checked == 5
    assert "intact" in verdict.describe()


async def test_verify_names_an_edited_event(open_log: Opener) -> None:
    log = await open_log()
    await record(log, *"abcde")
    await sql(log, "UPDATE audit_event SET outcome = 'failed' WHERE seq = 3")
    verdict = await log.verify()
    assert not verdict.ok
    assert (verdict.seq, verdict.event_id, verdict.checked) == (3, "ev-c", 2)
    assert "edited" in verdict.describe()


async def test_verify_names_the_event_after_a_deleted_one(open_log: Opener) -> None:
    log = await open_log()
    await record(log, *"abcde")
    await sql(log, "DELETE FROM audit_event WHERE seq = 3")
    verdict = await log.verify()
    assert (verdict.ok, verdict.seq, verdict.event_id) == (False, 4, "ev-d")
    assert "missing" in verdict.describe()


async def test_verify_notices_the_last_events_deleted(open_log: Opener) -> None:
    log = await open_log()
    await record(log, *"abcde")
    await sql(log, "DELETE FROM audit_event WHERE seq >= 4")
    verdict = await log.verify()
    assert not verdict.ok and verdict.checked == 3
    assert "the last events were deleted" in verdict.describe()


async def test_verify_catches_an_inserted_event_even_with_a_well_formed_hash(
    open_log: Opener,
) -> None:
    """The forger renumbers the later events and hashes the fake correctly onto seq 2."""
    log = await open_log()
    await record(log, *"abcde")
    await sql(log, "UPDATE audit_event SET seq = seq + 1000 WHERE seq >= 3")
    await sql(log, "UPDATE audit_event SET seq = seq - 999 WHERE seq >= 1000")
    async with log.db.transaction() as tx:
        second = await tx.fetchrow("SELECT hash FROM audit_event WHERE seq = 2")
    assert second is not None
    fake = {**event_row(op("mallory"), "ev-fake"), "seq": 3, "prev_hash": second["hash"]}
    fake["hash"] = chain_hash(fake, second["hash"])
    columns = ", ".join(["instance_id", *fake])
    marks = ", ".join("?" * (len(fake) + 1))
    await sql(
        log, f"INSERT INTO audit_event ({columns}) VALUES ({marks})", "forger", *fake.values()
    )
    verdict = await log.verify()
    assert (verdict.ok, verdict.seq, verdict.event_id) == (False, 4, "ev-c")
    assert "inserted or deleted" in verdict.describe()


async def test_verify_catches_a_naively_inserted_event_itself(open_log: Opener) -> None:
    log = await open_log()
    await record(log, *"ab")
    fake = {**event_row(op("mallory"), "ev-fake"), "seq": 3, "prev_hash": "0" * 64}
    fake["hash"] = "f" * 64
    columns = ", ".join(["instance_id", *fake])
    marks = ", ".join("?" * (len(fake) + 1))
    await sql(
        log, f"INSERT INTO audit_event ({columns}) VALUES ({marks})", "forger", *fake.values()
    )
    verdict = await log.verify()
    assert (verdict.ok, verdict.seq, verdict.event_id) == (False, 3, "ev-fake")


async def test_pruning_leaves_a_signed_checkpoint_that_verify_starts_from(
    open_log: Opener,
) -> None:
    log = await open_log()
    await record(log, "old1", "old2", "old3", age_days=40)
    await record(log, "new1", "new2")
    point = await log.prune(older_than_days=30)
    assert point is not None and point.seq == 3
    remaining, _ = await log.list(Filters())
    assert [e["name"] for e in remaining] == ["new1", "new2"]
    verdict = await log.verify()
    assert verdict.ok and verdict.checked == 2
    assert await log.prune(older_than_days=30) is None  # nothing older left
    await record(log, "new3")
    assert (await log.verify()).ok  # the chain goes on from the head


async def test_a_forged_checkpoint_is_caught(open_log: Opener) -> None:
    log = await open_log()
    await record(log, *"abc", age_days=40)
    await record(log, *"de")
    await log.prune(older_than_days=30)
    await sql(log, "UPDATE audit_checkpoint SET hash = ?", "a" * 64)
    verdict = await log.verify()
    assert not verdict.ok and "forged" in verdict.describe()


async def test_a_checkpoint_signed_with_another_key_is_caught(open_log: Opener) -> None:
    log = await open_log()
    await record(log, *"abc", age_days=40)
    await log.prune(older_than_days=30)
    other = await open_log(key="some-other-key")
    assert "forged" in (await other.verify()).describe()
    keyless = await open_log(key=None)
    assert "no checkpoint_key" in (await keyless.verify()).describe()


async def test_a_deleted_checkpoint_is_caught(open_log: Opener) -> None:
    log = await open_log()
    await record(log, *"abc", age_days=40)
    await record(log, "d")
    await log.prune(older_than_days=30)
    await sql(log, "DELETE FROM audit_checkpoint")
    verdict = await log.verify()
    assert (verdict.ok, verdict.seq) == (False, 4)


async def test_pruning_needs_the_checkpoint_key(open_log: Opener) -> None:
    log = await open_log(key=None)
    with pytest.raises(ValueError, match="checkpoint_key"):
        await log.prune(older_than_days=1)


async def test_pending_events_of_a_dead_process_become_unknown_and_chained(
    open_log: Opener,
) -> None:
    dead, alive, restarted = await open_log(), await open_log(), await open_log()
    await dead.write([event_row(op("lost"), "ev-lost")], [], set())
    await alive.write([event_row(op("busy"), "ev-busy")], [], set())
    await record(dead, "done")
    await expire(dead)

    assert await restarted.recover() == 1
    found = {e["name"]: e for e in (await restarted.list(Filters()))[0]}
    assert (found["lost"]["outcome"], found["lost"]["seq"]) == ("unknown", 2)
    assert (found["busy"]["outcome"], found["busy"]["seq"]) == ("pending", None)
    assert (await restarted.verify()).ok
    assert await restarted.recover() == 0

    # The late close of an event already recovered does not break the chain.
    late = {**event_row(op("lost"), "ev-lost")}
    await dead.write([], [late], {"ev-lost"})
    assert (await restarted.verify()).ok


async def test_replicas_starting_together_apply_each_migration_once(
    open_log: Opener,
) -> None:
    logs = await asyncio.gather(*(open_log() for _ in range(4)))
    async with logs[0].db.transaction() as tx:
        rows = await tx.fetch("SELECT version FROM schema_version ORDER BY version")
    expected = [m.version for m in MIGRATIONS[logs[0].db.dialect]]
    assert [r["version"] for r in rows] == expected


async def test_a_newer_schema_is_refused(open_log: Opener, state_url: str) -> None:
    log = await open_log()
    await sql(log, "INSERT INTO schema_version (version, name, applied) VALUES (999, 'x', 'now')")
    with pytest.raises(StateError, match="newer than this gateway"):
        await StateStore(state_url).open()


def test_a_bad_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(StateError) as caught:
        StateStore("mysql://user:hunter2@db/x")
    assert "hunter2" not in str(caught.value)


async def test_an_unreachable_postgresql_is_reported_without_the_password() -> None:
    store = StateStore("postgresql://u:hunter2@127.0.0.1:1/x")
    with pytest.raises(StateError) as caught:
        await store.open()
    assert "hunter2" not in str(caught.value)


async def test_two_replicas_recovering_at_once_chain_each_orphan_once(open_log: Opener) -> None:
    dead = await open_log()
    await dead.write([event_row(op(f"lost{i}"), f"ev-lost{i}") for i in range(5)], [], set())
    await expire(dead)
    first, second = await open_log(), await open_log()
    counts = await asyncio.gather(first.recover(), second.recover())
    assert sorted(counts) == [0, 5]
    verdict = await first.verify()
    assert verdict.ok and verdict.checked == 5


async def test_a_running_gateway_applies_retention_days(open_log: Opener) -> None:
    log = await open_log()
    await record(log, "ancient", age_days=400)
    await record(log, "recent")
    recorder = AuditRecorder(log, retention_days=365)
    await recorder.start()
    try:
        for _ in range(100):  # the maintenance task runs every lease_seconds / 3
            if await log.checkpoint() is not None:
                break
            await asyncio.sleep(0.1)
    finally:
        await recorder.aclose()
    point = await log.checkpoint()
    assert point is not None and point.seq == 1
    assert [e["name"] for e in (await log.list(Filters()))[0]] == ["recent"]
    assert (await log.verify()).ok
