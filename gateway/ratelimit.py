"""Inbound rate limit: a token bucket per app and client, answered with 429 and Retry-After.

The client is the credential's name, so the buckets are bounded by the
configuration, not by what callers send. IdPs may not back off on 429 (IdP
rule 22); the limit is there to cap a runaway or hostile caller, and the
queue in gateway/limits.py still protects the legacy app from bursts within
it. Nothing here awaits, so one event loop needs no lock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from gateway.errors import TooManyRequests


class RateLimiter:
    """``rate`` requests per second on average, up to ``burst`` at once, per client."""

    def __init__(
        self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def take(self, client: str) -> None:
        """Spend one token of ``client``'s bucket, or raise TooManyRequests."""
        now = self._clock()
        tokens, then = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            wait = max(1, math.ceil((1 - tokens) / self.rate))
            raise TooManyRequests(
                f"more than {self.rate:g} requests per second; try again in {wait} s",
                retry_after=wait,
            )
        self._buckets[client] = (tokens - 1, now)
