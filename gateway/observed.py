"""An adapter wrapper that gives every legacy call a span and its latency metrics.

It wraps the :class:`~gateway.limits.BoundedAdapter`, so the span and the
latency include the wait for a slot, and a 503 (queue full) or 504 (call
timeout) counts as an error of the app, which is what an SRE looks for. The
legacy HTTP call (aiohttp client instrumentation) or SQL statement (asyncpg
instrumentation) is a child of the ``adapter.<call>`` span.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.metrics import Metrics
from gateway.sdk import Adapter
from gateway.telemetry import error_type, is_failure, span
from gateway.wrapping import Call, WrappedAdapter

__all__ = ["ObservedAdapter"]


class ObservedAdapter(WrappedAdapter):
    def __init__(self, inner: Adapter, kind: str, metrics: Metrics | None = None) -> None:
        super().__init__(inner)
        self.kind = kind
        self._metrics = metrics

    @asynccontextmanager
    async def around(self, call: Call, resource_type: str | None) -> AsyncIterator[None]:
        start = time.perf_counter()
        error = None
        try:
            with span(
                f"adapter.{call}",
                **{"scim.app": self.app, "scim.resource_type": resource_type, "adapter": self.kind},
            ):
                yield
        except BaseException as exc:
            error = error_type(exc) if is_failure(exc) else None
            raise
        finally:
            if self._metrics is not None:
                self._metrics.adapter_call(self.app, call, time.perf_counter() - start, error)
