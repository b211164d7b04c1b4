"""The guard's holds and the unknown creates in the state store, on both backends.

Two :class:`StateStore` instances on one database stand for two replicas: each
has its own connection (SQLite) or pool (PostgreSQL), as separate processes do.
"""

from __future__ import annotations

import asyncio
import stat
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from gateway.dedupe import name_key
from gateway.errors import StoreUnavailable
from gateway.state import StateStore, unknown
from gateway.state.db import ChangeCounter
from gateway.state.guard import StateGuardStore
from gateway.state.migrations import MIGRATIONS
from gateway.state.unknown import StateUnknownCreates

NOW = 1_000_000.0
WINDOW = 60.0


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[StateStore]:
    store = StateStore(url)
    await store.open(lease=False)
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def store(state_url: str) -> AsyncIterator[StateStore]:
    async with opened(state_url) as store:
        yield store


async def admit_all(
    guard: StateGuardStore, ids: range, *, now: float = NOW, limit: int = 3
) -> list[str]:
    return [
        await guard.admit("crm", f"delete User/{i}", now=now, window=WINDOW, limit=limit)
        for i in ids
    ]


async def test_the_threshold_passes_and_the_rest_is_held_in_order(store: StateStore) -> None:
    guard = StateGuardStore(store)
    assert await admit_all(guard, range(5)) == ["passed"] * 3 + ["held"] * 2
    state = await guard.state("crm", now=NOW, window=WINDOW)
    assert (state.recent, state.held, state.released) == (3, ("delete User/3", "delete User/4"), ())
    other = await guard.state("hr", now=NOW, window=WINDOW)
    assert (other.recent, other.held, other.open_until) == (0, (), None)  # apps are apart


async def test_the_window_slides_with_the_callers_time(store: StateStore) -> None:
    guard = StateGuardStore(store)
    assert await admit_all(guard, range(3), limit=2) == ["passed", "passed", "held"]
    later = NOW + WINDOW + 1
    assert await admit_all(guard, range(3, 5), now=later, limit=2) == ["passed", "passed"]
    assert (await guard.state("crm", now=later, window=WINDOW)).recent == 2


async def test_a_release_lets_each_held_key_pass_once(store: StateStore) -> None:
    guard = StateGuardStore(store)
    await admit_all(guard, range(3), limit=1)  # 0 passes, 1 and 2 held
    await guard.release("crm", until=None)
    state = await guard.state("crm", now=NOW, window=WINDOW)
    assert (state.held, state.released) == ((), ("delete User/1", "delete User/2"))
    assert await admit_all(guard, range(1, 3), limit=1) == ["released", "released"]
    assert await admit_all(guard, range(1, 3), limit=1) == ["held", "held"]  # used up
    state = await guard.state("crm", now=NOW, window=WINDOW)
    assert (state.recent, state.released) == (3, ())  # released ones count toward the window


async def test_a_release_with_a_time_opens_the_app_until_then(store: StateStore) -> None:
    guard = StateGuardStore(store)
    await admit_all(guard, range(2), limit=1)
    await guard.release("crm", until=NOW + 600)
    assert (await guard.state("crm", now=NOW, window=WINDOW)).open_until == NOW + 600
    assert await admit_all(guard, range(10, 15), limit=1) == ["released"] * 5
    after = NOW + 601
    assert await admit_all(guard, range(20, 22), now=after, limit=1) == ["passed", "held"]
    assert (await guard.state("crm", now=after, window=WINDOW)).open_until is None


async def test_held_and_released_keys_are_bounded_oldest_first(store: StateStore) -> None:
    guard = StateGuardStore(store, max_keys=4)
    await admit_all(guard, range(8), limit=1)  # 0 passes, 1..7 held
    await admit_all(guard, range(4, 5), limit=1)  # held again: now the newest
    held = (await guard.state("crm", now=NOW, window=WINDOW)).held
    assert held == ("delete User/5", "delete User/6", "delete User/7", "delete User/4")
    await guard.release("crm", until=None)
    await admit_all(guard, range(30, 33), limit=1)
    await guard.release("crm", until=None)
    released = (await guard.state("crm", now=NOW, window=WINDOW)).released
    assert released == ("delete User/4", "delete User/30", "delete User/31", "delete User/32")


async def test_concurrent_admits_on_two_replicas_pass_exactly_the_limit(state_url: str) -> None:
    async with opened(state_url) as one, opened(state_url) as two:
        replicas = [StateGuardStore(one), StateGuardStore(two)]
        verdicts = await asyncio.gather(
            *(
                replicas[i % 2].admit("crm", f"delete User/{i}", now=NOW, window=WINDOW, limit=7)
                for i in range(24)
            )
        )
        assert verdicts.count("passed") == 7
        assert verdicts.count("held") == 17
        state = await replicas[1].state("crm", now=NOW, window=WINDOW)
        assert (state.recent, len(state.held)) == (7, 17)


async def test_holds_and_releases_survive_a_restart(state_url: str) -> None:
    async with opened(state_url) as before:
        guard = StateGuardStore(before)
        await admit_all(guard, range(4), limit=2)
        await guard.release("crm", until=NOW + 60)
        await admit_all(guard, range(4, 5), limit=2)  # passes: the app is open
    async with opened(state_url) as after:
        state = await StateGuardStore(after).state("crm", now=NOW, window=WINDOW)
    assert (state.recent, state.released, state.open_until) == (
        3,
        ("delete User/2", "delete User/3"),
        NOW + 60,
    )


async def test_a_store_of_schema_version_1_is_migrated(state_url: str, store: StateStore) -> None:
    assert store.schema_version == 3
    dialect = store.db.dialect
    assert [m.version for m in MIGRATIONS[dialect]] == [1, 2, 3]
    async with store.db.transaction() as tx:  # as the previous gateway left it
        for table in ("guard_app", "guard_passed", "guard_held", "guard_released"):
            await tx.execute(f"DROP TABLE {table}")
        await tx.execute("DROP TABLE unknown_create")
        for table in ("account", "reconcile_run", "reconcile_seen", "reconcile_finding"):
            await tx.execute(f"DROP TABLE {table}")
        await tx.execute("DELETE FROM schema_version WHERE version >= 2")
    async with opened(state_url) as upgraded:
        assert upgraded.schema_version == 3
        guard = StateGuardStore(upgraded)
        assert await admit_all(guard, range(1)) == ["passed"]


# -- creates of unknown outcome ------------------------------------------------------------


@contextmanager
def counting_reads(store: StateStore) -> Iterator[list[str]]:
    """The statements of ``store.db.read`` while in the block."""
    reads: list[str] = []
    read = store.db.read

    async def counted(sql: str, *args: object) -> list[dict[str, object]]:
        reads.append(sql)
        return await read(sql, *args)

    store.db.read = counted  # type: ignore[method-assign]
    try:
        yield reads
    finally:
        store.db.read = read  # type: ignore[method-assign]


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


async def test_an_unknown_create_remembered_by_one_replica_is_known_to_the_other(
    state_url: str,
) -> None:
    key = name_key("crm", "User", "bjensen")
    async with opened(state_url) as one, opened(state_url) as two:
        first, second = StateUnknownCreates(one), StateUnknownCreates(two)
        assert not await second.is_unknown(key)
        await first.remember(key)
        assert await second.is_unknown(key)
        assert await second.is_unknown(name_key("crm", "User", "BJensen"))  # same digest
        assert not await second.is_unknown(name_key("crm", "Group", "bjensen"))
        await second.forget(key)
        assert not await first.is_unknown(key)


async def count_rows(store: StateStore) -> int:
    async with store.db.transaction() as tx:
        row = await tx.fetchrow("SELECT COUNT(*) AS n FROM unknown_create")
    assert row is not None
    return int(row["n"])


async def test_unknown_creates_expire_are_pruned_and_bounded(store: StateStore) -> None:
    clock = Clock()
    creates = StateUnknownCreates(store, max_entries=2, ttl=60.0, clock=clock)
    keys = [name_key("crm", "User", name) for name in ("a", "b", "c")]
    for key in keys:
        await creates.remember(key)
    assert [await creates.is_unknown(k) for k in keys] == [False, True, True]  # oldest went
    await creates.remember(keys[1])  # again: now the newest
    await creates.remember(keys[0])
    assert [await creates.is_unknown(k) for k in keys] == [True, True, False]
    clock.now += 61
    assert await creates.is_unknown(keys[0]) is False  # expired, and deleted when seen
    assert await count_rows(store) == 1
    await creates.remember(name_key("crm", "User", "d"))
    assert await count_rows(store) == 1  # the expired row went with the next remember


async def test_look_ups_asked_together_share_one_read_and_each_gets_its_answer(
    store: StateStore,
) -> None:
    clock = Clock()
    creates = StateUnknownCreates(store, ttl=60.0, clock=clock)
    known = [name_key("crm", "User", f"known{i}") for i in range(3)]
    for key in known:
        await creates.remember(key)
    expired = name_key("crm", "User", "expired")
    clock.now -= 120  # remembered two minutes ago: past its 60 s
    await creates.remember(expired)
    clock.now += 120
    fresh = [name_key("crm", "User", f"fresh{i}") for i in range(3)]
    with counting_reads(store) as reads:
        asked = [*known, expired, *fresh, known[0]]  # a key asked twice too
        answers = await asyncio.gather(*(creates.is_unknown(k) for k in asked))
    assert answers == [True, True, True, False, False, False, False, True]
    if store.db.reads_in_place:  # SQLite: answered from the process's copy of the table
        # Read once into the copy, which answers the seven others (the expired key's
        # deletion, a write, lets them run before it ends: the copy still holds).
        assert len(reads) == 1 and "LIMIT" in reads[0]
    else:
        assert len(reads) == 1 and "IN (" in reads[0]  # eight look-ups, one round trip
    assert await count_rows(store) == 3  # the expired row was deleted when seen


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state.db'}"


async def test_sqlite_look_ups_come_from_a_copy_read_again_when_a_replica_changes_it(
    sqlite_url: str,
) -> None:
    key = name_key("crm", "User", "bjensen")
    async with opened(sqlite_url) as one, opened(sqlite_url) as two:
        first, second = StateUnknownCreates(one), StateUnknownCreates(two)
        with counting_reads(two) as reads:
            assert [await second.is_unknown(key) for _ in range(5)] == [False] * 5
            assert len(reads) == 1  # one read of the (empty) table, four from the copy
            await first.remember(key)  # the other process: it moves the shared counter
            assert [await second.is_unknown(key) for _ in range(5)] == [True] * 5
            assert len(reads) == 2
            await first.forget(key)
            assert await second.is_unknown(key) is False
            assert len(reads) == 3


async def test_sqlite_a_change_nobody_counted_is_seen_within_cache_seconds(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unknown, "CACHE_SECONDS", 0.05)
    key = name_key("crm", "User", "bjensen")
    async with opened(sqlite_url) as store:
        creates = StateUnknownCreates(store)
        assert await creates.is_unknown(key) is False  # the copy: empty
        async with store.db.transaction() as tx:  # a tool that does not count
            await tx.execute(
                "INSERT INTO unknown_create (key, until) VALUES (?, ?)", key, time.time() + 60
            )
        assert await creates.is_unknown(key) is False  # the copy, still fresh
        await asyncio.sleep(0.06)
        assert await creates.is_unknown(key) is True  # read again: its time was up


async def test_sqlite_a_table_larger_than_the_copy_is_read_key_by_key(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(unknown, "CACHE_KEYS", 2)
    keys = [name_key("crm", "User", name) for name in ("a", "b", "c")]
    async with opened(sqlite_url) as store:
        creates = StateUnknownCreates(store)
        for key in keys:
            await creates.remember(key)
        other = name_key("crm", "User", "d")
        with counting_reads(store) as reads:
            answers = [await creates.is_unknown(k) for k in [*keys, other]]
        assert answers == [True] * 3 + [False]
        # Each look-up tries the copy (3 rows: too many) and then reads its key.
        assert len(reads) == 8 and sum("key = ?" in sql for sql in reads) == 4


def test_change_counters_on_one_file_see_and_count_each_others_adds(tmp_path: Path) -> None:
    path = tmp_path / "state.db-unknown"
    one, two = ChangeCounter(path), ChangeCounter(path)
    try:
        assert (one.value(), two.value()) == (0, 0)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        one.add()
        assert two.value() == 1

        def adds(counter: ChangeCounter) -> None:
            for _ in range(500):
                counter.add()

        threads = [threading.Thread(target=adds, args=(c,)) for c in (one, two)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert one.value() == two.value() == 1001  # no add lost (each under the flock)
    finally:
        one.close()
        two.close()
    again = ChangeCounter(path)  # a file already there keeps its count
    try:
        assert again.value() == 1001
    finally:
        again.close()


async def test_a_failed_shared_read_fails_each_asker_on_its_own(store: StateStore) -> None:
    creates = StateUnknownCreates(store)
    read = store.db.read
    calls = 0

    async def failing_once(sql: str, *args: object) -> list[dict[str, object]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise StoreUnavailable("the state store is unavailable")
        return await read(sql, *args)

    store.db.read = failing_once  # type: ignore[method-assign]
    try:
        keys = [name_key("crm", "User", n) for n in ("x", "y")]
        answers = await asyncio.gather(
            *(creates.is_unknown(k) for k in keys), return_exceptions=True
        )
        if store.db.reads_in_place:
            # Each asker reads alone from the start: the first read failed, only its asker.
            assert isinstance(answers[0], StoreUnavailable) and answers[1] is False
            assert calls == 2
        else:
            # The shared read failed; each asker then read alone, and got its answer.
            assert answers == [False, False]
            assert calls == 3
    finally:
        store.db.read = read  # type: ignore[method-assign]


def test_look_ups_a_closed_loop_left_waiting_do_not_hold_up_the_next_loops() -> None:
    reads: list[tuple[object, ...]] = []

    async def read(sql: str, *args: object) -> list[dict[str, object]]:
        reads.append(args)
        return []

    db = SimpleNamespace(read=read, reads_in_place=False)  # a store read by round trips
    creates = StateUnknownCreates(SimpleNamespace(db=db))  # type: ignore[arg-type]
    closed = asyncio.new_event_loop()
    # As a loop that closed before its turn came leaves them: a key asked, its read due.
    creates._asked = {"left": [closed.create_future()]}
    creates._scheduled = closed
    closed.close()
    assert asyncio.run(creates.is_unknown("asked")) is False
    assert reads == [("asked",)]  # read at once on the new loop, without the orphan
