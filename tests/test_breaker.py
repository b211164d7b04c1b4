"""CircuitBreaker's states on a hand-moved clock, and GuardedAdapter reporting calls to it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from adapters.memory import MemoryAdapter
from gateway.breaker import BreakerOpen, CircuitBreaker
from gateway.config import BreakerConfig
from gateway.errors import InvalidValue, UpstreamError, UpstreamUnavailable
from gateway.limits import GuardedAdapter, Limiter, QueueFull
from gateway.operation import Operation, bound


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breaker(clock: Clock, **config: Any) -> CircuitBreaker:
    return CircuitBreaker("crm", BreakerConfig(**config), clock=clock)


def fail(b: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        b.failed(b.admit())


def succeed(b: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        b.succeeded(b.admit())


def test_consecutive_failures_open_it_and_a_success_between_resets_the_count() -> None:
    b = breaker(Clock(), failures=3)
    fail(b, 2)
    succeed(b)
    fail(b, 2)
    assert b.state == "closed"
    fail(b)
    assert b.state == "open"
    with pytest.raises(BreakerOpen) as refused:
        b.admit()
    assert refused.value.status == 503 and refused.value.retry_after == 30


def test_an_error_rate_over_the_window_opens_it_once_enough_calls_were_made() -> None:
    clock = Clock()
    b = breaker(clock, failures=100, error_rate=0.5, window=10, min_calls=10)
    for _ in range(4):
        fail(b)
        succeed(b)
    assert b.state == "closed"  # 4 of 8: too few calls to judge
    fail(b)
    assert b.state == "closed"  # 5 of 9
    fail(b)
    assert b.state == "open"  # 6 of 10


def test_failures_older_than_the_window_are_forgotten() -> None:
    clock = Clock()
    b = breaker(clock, failures=100, error_rate=0.5, window=10, min_calls=4)
    fail(b, 3)
    clock.now += 11
    succeed(b, 2)
    fail(b)
    assert b.state == "closed"  # 1 of 3 in the window


def test_after_the_cooldown_only_one_probe_passes_at_a_time() -> None:
    clock = Clock()
    b = breaker(clock, failures=1, cooldown=30, probes=2)
    fail(b)
    clock.now += 29.5
    with pytest.raises(BreakerOpen) as early:
        b.admit()
    assert early.value.retry_after == 1
    clock.now += 0.5
    assert b.state == "half_open"
    probe = b.admit()
    assert probe is True
    with pytest.raises(BreakerOpen):
        b.admit()  # the probe is still out
    b.succeeded(probe)
    assert b.state == "half_open"  # one of two probes
    b.succeeded(b.admit())
    assert b.state == "closed"


def test_a_failed_probe_opens_it_again_and_an_abandoned_one_frees_the_probe() -> None:
    clock = Clock()
    b = breaker(clock, failures=1, cooldown=30)
    fail(b)
    clock.now += 30
    b.abandoned(b.admit())  # cancelled: tells nothing
    b.failed(b.admit())
    assert b.state == "open"
    clock.now += 10
    with pytest.raises(BreakerOpen) as refused:
        b.admit()
    assert refused.value.retry_after == 20


def test_calls_that_end_after_it_opened_change_nothing() -> None:
    clock = Clock()
    b = breaker(clock, failures=2, cooldown=30)
    late = [b.admit(), b.admit(), b.admit()]
    b.failed(late[0])
    b.failed(late[1])
    assert b.state == "open"
    clock.now += 5
    b.failed(late[2])
    with pytest.raises(BreakerOpen) as refused:
        b.admit()
    assert refused.value.retry_after == 25  # not pushed back by the late failure


class Failing(MemoryAdapter):
    """The memory adapter whose reads raise what the test puts in ``error``."""

    error: Exception | None = None
    gate: asyncio.Event | None = None

    async def get(self, resource_type: str, id: str) -> Any:
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return await super().get(resource_type, id)


async def test_only_the_apps_own_failures_count_and_a_refusal_is_noted_on_the_operation() -> None:
    clock = Clock()
    inner = Failing()
    b = breaker(clock, failures=2)
    adapter = GuardedAdapter(inner, Limiter(4, 4, 5), b)
    user = await adapter.create("User", {"userName": "one"})
    inner.error = InvalidValue("the app refused a value")
    for _ in range(3):
        with pytest.raises(InvalidValue):
            await adapter.get("User", user.id)
    assert b.state == "closed"
    inner.error = UpstreamError("the app failed")
    for _ in range(2):
        with pytest.raises(UpstreamError):
            await adapter.get("User", user.id)
    op = Operation(app="crm", method="GET", path="/Users/x")
    with bound(op), pytest.raises(BreakerOpen):
        await adapter.get("User", user.id)
    assert op.extra == {"breaker": "open"}


async def test_a_full_queue_is_not_held_against_the_app() -> None:
    inner = Failing()
    inner.gate = asyncio.Event()
    b = breaker(Clock(), failures=1)
    adapter = GuardedAdapter(inner, Limiter(1, 0, 5), b)
    user = await adapter.create("User", {"userName": "one"})
    held = asyncio.ensure_future(adapter.get("User", user.id))
    await asyncio.sleep(0)
    with pytest.raises(QueueFull) as busy:
        await adapter.get("User", user.id)
    assert isinstance(busy.value, UpstreamUnavailable) and busy.value.retry_after == 1
    assert b.state == "closed"
    inner.gate.set()
    await held
