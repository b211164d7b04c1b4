"""Backoff with full jitter, and the attempts of one call within its budget and deadline."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from adapters.rest.errors import parse_retry_after, retry_after_seconds
from gateway.retry import Attempts, Backoff, Pacing, reset_deadline, set_deadline


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def pacing(clock: Clock, seed: int = 7) -> Pacing:
    return Pacing(clock=clock, sleep=clock.sleep, rng=random.Random(seed))


def test_each_wait_is_drawn_from_zero_to_the_doubled_bound_capped() -> None:
    backoff = Backoff(attempts=10, base=0.5, cap=3.0, budget=60)
    rng = random.Random(1)
    for retry, bound in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (8, 3.0)]:
        waits = [backoff.delay(retry, rng) for _ in range(500)]
        assert all(0 <= w <= bound for w in waits)
        assert max(waits) > bound * 0.9 and min(waits) < bound * 0.1  # the whole range: jitter


async def test_attempts_stop_at_the_limit() -> None:
    clock = Clock()
    attempts = Attempts(Backoff(attempts=3, base=0.1, cap=1, budget=60), pacing(clock))
    assert await attempts.again() and await attempts.again()
    assert not await attempts.again()
    assert attempts.made == 3 and len(clock.slept) == 2


async def test_a_wait_the_budget_cannot_hold_is_not_taken() -> None:
    clock = Clock()
    attempts = Attempts(Backoff(attempts=5, base=0.1, cap=1, budget=10), pacing(clock))
    assert await attempts.again(retry_after=6)
    assert not await attempts.again(retry_after=5)  # 4 s are left
    assert clock.slept == [6]


async def test_the_calls_deadline_shortens_the_budget() -> None:
    clock = Clock()
    token = set_deadline(clock.now + 3)
    try:
        attempts = Attempts(Backoff(attempts=5, base=0.1, cap=1, budget=60), pacing(clock))
    finally:
        reset_deadline(token)
    assert attempts.time_left() == 3
    assert not await attempts.again(retry_after=5)
    assert clock.slept == []


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now=lambda: now) == 7
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:41 GMT", now=lambda: now) == 41
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now=lambda: now) == 1
    assert retry_after_seconds("later", now=lambda: now) is None
    assert retry_after_seconds(None) is None
    assert parse_retry_after(None, 30) == 30
