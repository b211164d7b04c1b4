"""GuardedAdapter and transactions: one slot for a whole transaction, a slot per call otherwise."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest

from adapters.memory import MemoryAdapter
from gateway.errors import UpstreamTimeout
from gateway.limits import GuardedAdapter, Limiter, request_deadline
from gateway.operation import Operation, bound


class Counting(MemoryAdapter):
    """The memory adapter, counting the calls in flight and the transactions entered."""

    def __init__(self, *, transactions: bool) -> None:
        super().__init__()
        self.capabilities = replace(self.capabilities, transactions=transactions)
        self.in_flight = self.peak = self.transactions = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.transactions += 1
        yield

    async def get(self, resource_type: str, id: str) -> Any:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            return await super().get(resource_type, id)
        finally:
            self.in_flight -= 1


def bounded(inner: Counting, *, call_timeout: float = 5) -> GuardedAdapter:
    return GuardedAdapter(
        inner, Limiter(max_concurrency=1, max_queue=10, call_timeout=call_timeout)
    )


async def test_calls_inside_a_transaction_take_no_slot_of_their_own() -> None:
    inner = Counting(transactions=True)
    adapter = bounded(inner)
    user = await adapter.create("User", {"userName": "one"})

    async def operation() -> None:
        async with adapter.transaction():
            await adapter.update("User", user.id, {"userName": "two"})
            await adapter.get("User", user.id)

    await asyncio.wait_for(operation(), timeout=5)  # with one slot: no self-deadlock
    assert inner.transactions == 1
    assert (await adapter.get("User", user.id)).data["userName"] == "two"


async def test_a_transaction_holds_its_one_slot_until_it_ends() -> None:
    inner = Counting(transactions=True)
    adapter = bounded(inner)
    user = await adapter.create("User", {"userName": "one"})
    entered, release = asyncio.Event(), asyncio.Event()

    async def holder() -> None:
        async with adapter.transaction():
            entered.set()
            await release.wait()
            await adapter.get("User", user.id)

    task = asyncio.ensure_future(holder())
    await entered.wait()
    other = asyncio.ensure_future(adapter.get("User", user.id))
    await asyncio.sleep(0.05)
    assert not other.done()  # another task waits for the slot
    release.set()
    await asyncio.wait_for(asyncio.gather(task, other), timeout=5)
    assert inner.peak == 1


async def test_nested_transactions_of_one_task_share_the_slot() -> None:
    inner = Counting(transactions=True)
    adapter = bounded(inner)
    user = await adapter.create("User", {"userName": "one"})

    async def operation() -> None:
        async with adapter.transaction(), adapter.transaction():
            await adapter.get("User", user.id)

    await asyncio.wait_for(operation(), timeout=5)
    assert inner.transactions == 2  # forwarded each time; the adapter joins


async def test_a_transaction_gets_one_call_timeout_for_all_its_calls() -> None:
    adapter = bounded(Counting(transactions=True), call_timeout=0.1)
    user = await adapter.create("User", {"userName": "one"})
    with pytest.raises(UpstreamTimeout) as caught:
        async with adapter.transaction():
            for _ in range(30):  # 10 ms each: 300 ms in all
                await adapter.get("User", user.id)
    assert "a write" in caught.value.detail


async def test_without_transactions_each_call_inside_still_takes_its_own_slot() -> None:
    adapter = bounded(Counting(transactions=False), call_timeout=0.1)
    user = await adapter.create("User", {"userName": "one"})
    async with adapter.transaction():
        for _ in range(30):  # 300 ms in all, each call well within its own 100 ms
            await adapter.get("User", user.id)


async def test_the_deadline_answers_504_and_marks_a_begun_write_unknown() -> None:
    op = Operation("crm", "PATCH", "/Users/1")
    await op.open()
    with pytest.raises(UpstreamTimeout) as caught:
        async with request_deadline(0.05, op):
            await asyncio.Event().wait()
    assert "the outcome of its writes is unknown" in caught.value.detail
    assert op.outcome == "unknown"


async def test_a_timeout_raised_inside_is_not_taken_for_the_request_deadline() -> None:
    op = Operation("crm", "GET", "/Users")
    with pytest.raises(TimeoutError):
        async with request_deadline(30, op):
            raise TimeoutError("some library's own timeout")
    assert op.outcome == "pending"


async def test_a_write_abandoned_at_call_timeout_is_unknown_and_a_read_is_not() -> None:
    adapter = bounded(Counting(transactions=True), call_timeout=0.005)
    user = await adapter.create("User", {"userName": "one"})
    write = Operation(app="crm", method="PATCH", path="/Users/x")
    with bound(write), pytest.raises(UpstreamTimeout):
        async with adapter.transaction():
            await adapter.get("User", user.id)  # 10 ms
    assert write.outcome == "unknown"
    read = Operation(app="crm", method="GET", path="/Users/x")
    with bound(read), pytest.raises(UpstreamTimeout):
        await adapter.get("User", user.id)
    assert read.outcome == "pending"
