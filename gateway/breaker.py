"""A circuit breaker per legacy app: stop calling an app that is down, probe it now and then.

    closed     calls pass; failures are counted
      | ``failures`` failures in a row, or an error rate of ``error_rate``
      | over ``window`` seconds (once ``min_calls`` calls were made there)
      v
    open       calls are refused at once with 503 and a Retry-After of the
      |        cool-down left; the app gets no call
      | ``cooldown`` seconds later
      v
    half_open  one call at a time passes as a probe, others are refused;
               ``probes`` successes in a row close it, one failure opens it again

Only the app's own failures count (:class:`gateway.errors.UpstreamError`: 5xx,
timeouts, broken connections, unusable answers). A 4xx caused by the request
(a duplicate, a bad value, no such record) shows the app is up, so it counts
as a success; calls cancelled by their caller and calls refused by the
gateway's own queue count as nothing.

The clock is injectable (a monotonic clock by default), so tests move time
instead of waiting for it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Literal

from gateway.config import BreakerConfig
from gateway.errors import UpstreamUnavailable

log = logging.getLogger("gateway.breaker")

State = Literal["closed", "open", "half_open"]
#: How a call that passed ended, for the breaker (see the module docstring).
Verdict = Literal["succeeded", "failed", "abandoned"]
#: Numbers for a gauge (metrics): 0 closed, 1 half open, 2 open.
STATE_LEVELS: dict[State, int] = {"closed": 0, "half_open": 1, "open": 2}
_BUCKETS = 10


class BreakerOpen(UpstreamUnavailable):
    """Refused by the breaker: the legacy app got no call."""


class _Window:
    """Calls and failures over the last ``span`` seconds, in buckets (memory stays bounded)."""

    def __init__(self, span: float) -> None:
        self._width = span / _BUCKETS
        self._buckets: deque[list[float]] = deque()  # [start, calls, failures]

    def add(self, now: float, failed: bool) -> None:
        start = now - now % self._width
        if not self._buckets or self._buckets[-1][0] != start:
            self._buckets.append([start, 0, 0])
        bucket = self._buckets[-1]
        bucket[1] += 1
        bucket[2] += failed

    def totals(self, now: float) -> tuple[int, int]:
        while self._buckets and self._buckets[0][0] <= now - self._width * _BUCKETS:
            self._buckets.popleft()
        return (
            int(sum(b[1] for b in self._buckets)),
            int(sum(b[2] for b in self._buckets)),
        )

    def clear(self) -> None:
        self._buckets.clear()


class CircuitBreaker:
    def __init__(
        self, app: str, config: BreakerConfig, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.app = app
        self.config = config
        self.clock = clock
        self._state: State = "closed"
        self._in_a_row = 0
        self._window = _Window(config.window)
        self._opened_at = 0.0
        self._probing = 0
        self._probe_successes = 0

    @property
    def state(self) -> State:
        """The state now; an open breaker whose cool-down has passed reads as half open."""
        if self._state == "open" and self._cooled_down():
            return "half_open"
        return self._state

    def _cooled_down(self) -> bool:
        return self.clock() >= self._opened_at + self.config.cooldown

    def admit(self) -> bool:
        """Let a call pass (True when it is a probe) or raise :class:`BreakerOpen`."""
        if self._state == "open" and self._cooled_down():
            self._state = "half_open"
            self._probe_successes = 0
        if self._state == "closed":
            return False
        if self._state == "half_open" and self._probing == 0:
            self._probing += 1
            return True
        raise BreakerOpen(
            f"the app {self.app} is failing; the gateway does not call it for a while "
            "(circuit breaker open)",
            retry_after=self._retry_after(),
        )

    def _retry_after(self) -> int:
        left = self._opened_at + self.config.cooldown - self.clock()
        return max(1, math.ceil(left))

    def record(self, probe: bool, verdict: Verdict) -> None:
        """The end of a call :meth:`admit` let pass (``probe``: what it returned)."""
        if verdict == "succeeded":
            self.succeeded(probe)
        elif verdict == "failed":
            self.failed(probe)
        else:
            self.abandoned(probe)

    def succeeded(self, probe: bool) -> None:
        if probe:
            self._probing -= 1
            self._probe_successes += 1
            if self._probe_successes >= self.config.probes:
                self._close()
            return
        if self._state == "closed":
            self._in_a_row = 0
            self._window.add(self.clock(), failed=False)

    def failed(self, probe: bool) -> None:
        if probe:
            self._probing -= 1
            self._open("a probe call failed")
            return
        if self._state != "closed":
            return  # a call that started before the breaker opened
        now = self.clock()
        self._in_a_row += 1
        self._window.add(now, failed=True)
        calls, failures = self._window.totals(now)
        if self._in_a_row >= self.config.failures:
            self._open(f"{self._in_a_row} calls failed in a row")
        elif calls >= self.config.min_calls and failures / calls >= self.config.error_rate:
            self._open(f"{failures} of {calls} calls failed within {self.config.window:g} s")

    def abandoned(self, probe: bool) -> None:
        """The call ended without telling anything about the app (cancelled, not queued)."""
        if probe:
            self._probing -= 1

    def _open(self, why: str) -> None:
        self._state = "open"
        self._opened_at = self.clock()
        self._in_a_row = 0
        self._window.clear()
        log.warning(
            "circuit breaker for app %s opened: %s; calls are refused for %g s",
            self.app,
            why,
            self.config.cooldown,
        )

    def _close(self) -> None:
        self._state = "closed"
        self._in_a_row = 0
        self._window.clear()
        log.info("circuit breaker for app %s closed: the app answers again", self.app)
