"""Retrying a call to a legacy app: how long to wait, and whether a wait still fits.

A retry waits with exponential backoff and full jitter: before the n-th retry
it sleeps a uniform random time in ``[0, min(cap, base * 2**(n-1))]``, so
callers that failed together do not come back together. When the app said
how long to wait (``Retry-After`` on a 429 or 503), that wait is used instead.

Two limits bound the retries of one call: the attempts and a time budget of
their own, and the deadline of the adapter call they belong to
(``call_timeout``, which :class:`gateway.limits.Limiter` publishes through
:func:`set_deadline`). A wait that would end past either is not taken; the caller
answers with the failure at once instead of waiting for nothing.

Time and randomness come from a :class:`Pacing`, so tests replace them and
assert on the waits asked for, never on the time taken.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: When (in event-loop time) the adapter call the current task runs for must end.
_DEADLINE: ContextVar[float | None] = ContextVar("scim_gateway_call_deadline", default=None)


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


def set_deadline(when: float) -> Token[float | None]:
    """Publish the end of the current adapter call (event-loop time) to the retries inside;
    give the token back to :func:`reset_deadline` when the call ends."""
    return _DEADLINE.set(when)


def reset_deadline(token: Token[float | None]) -> None:
    _DEADLINE.reset(token)


@dataclass(frozen=True, slots=True)
class Pacing:
    """Where retries take the time, their sleep and their randomness from."""

    clock: Clock = _loop_time
    sleep: Sleep = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)


@dataclass(frozen=True, slots=True)
class Backoff:
    #: Attempts at most, the first included (1: never retry).
    attempts: int
    #: Seconds: the first retry waits up to ``base``, each next one up to twice as long...
    base: float
    #: ...but never more than ``cap``.
    cap: float
    #: Seconds all attempts and waits of one call may take together.
    budget: float

    def delay(self, retry: int, rng: random.Random) -> float:
        """Full jitter before the ``retry``-th retry (1-based)."""
        return rng.uniform(0.0, min(self.cap, self.base * 2 ** (retry - 1)))


class Attempts:
    """The attempts of one call: counts them and decides whether one more may be made."""

    def __init__(self, backoff: Backoff, pacing: Pacing) -> None:
        self.backoff = backoff
        self.pacing = pacing
        self.made = 1
        self._end = pacing.clock() + backoff.budget
        call_end = _DEADLINE.get()
        if call_end is not None:
            self._end = min(self._end, call_end)

    def time_left(self) -> float:
        """Seconds left for this call's attempts and waits (may be negative)."""
        return self._end - self.pacing.clock()

    async def again(self, retry_after: float | None = None) -> bool:
        """Wait before one more attempt and say True, or say False at once when none fits.

        ``retry_after``: the wait the app asked for; otherwise backoff with jitter.
        """
        if self.made >= self.backoff.attempts:
            return False
        pause = retry_after
        if pause is None:
            pause = self.backoff.delay(self.made, self.pacing.rng)
        if pause >= self.time_left():
            return False
        await self.pacing.sleep(pause)
        self.made += 1
        return True
