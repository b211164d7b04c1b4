"""An adapter wrapper that gives every legacy call a span and its latency metrics.

It wraps the :class:`~gateway.limits.BoundedAdapter`, so the span and the
latency include the wait for a slot, and a 503 (queue full) or 504 (call
timeout) counts as an error of the app, which is what an SRE looks for. The
legacy HTTP call (aiohttp client instrumentation) or SQL statement (asyncpg
instrumentation) is a child of the ``adapter.<call>`` span.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from gateway.metrics import Metrics
from gateway.sdk import Adapter, LegacyCall, Page, Query, Record
from gateway.telemetry import error_type, is_failure, span

__all__ = ["ObservedAdapter"]


class ObservedAdapter(Adapter):
    def __init__(self, inner: Adapter, kind: str, metrics: Metrics | None = None) -> None:
        super().__init__(inner.settings, app=inner.app, mapping=inner.mapping)
        self.inner = inner
        self.capabilities = inner.capabilities
        self.kind = kind
        self._metrics = metrics

    @asynccontextmanager
    async def _call(self, call: str, resource_type: str | None) -> AsyncIterator[None]:
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

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self.inner.transaction()

    async def get(self, resource_type: str, id: str) -> Record:
        async with self._call("get", resource_type):
            return await self.inner.get(resource_type, id)

    async def search(self, query: Query) -> Page:
        async with self._call("search", query.resource_type):
            return await self.inner.search(query)

    async def create(
        self, resource_type: str, data: dict[str, Any], *, members: Sequence[str] = ()
    ) -> Record:
        async with self._call("create", resource_type):
            return await self.inner.create(resource_type, data, members=members)

    async def update(
        self,
        resource_type: str,
        id: str,
        changes: dict[str, Any],
        *,
        expected_version: str | None = None,
    ) -> Record:
        async with self._call("update", resource_type):
            return await self.inner.update(
                resource_type, id, changes, expected_version=expected_version
            )

    async def delete(
        self, resource_type: str, id: str, *, expected_version: str | None = None
    ) -> None:
        async with self._call("delete", resource_type):
            await self.inner.delete(resource_type, id, expected_version=expected_version)

    async def add_members(self, group_id: str, member_ids: list[str]) -> None:
        async with self._call("add_members", "Group"):
            await self.inner.add_members(group_id, member_ids)

    async def remove_members(self, group_id: str, member_ids: list[str]) -> None:
        async with self._call("remove_members", "Group"):
            await self.inner.remove_members(group_id, member_ids)

    # A dry run sends nothing: no span, no metric.

    def describe_create(
        self, resource_type: str, data: dict[str, Any], members: Sequence[str] = ()
    ) -> list[LegacyCall]:
        return self.inner.describe_create(resource_type, data, members)

    def describe_update(
        self, resource_type: str, id: str, changes: dict[str, Any]
    ) -> list[LegacyCall]:
        return self.inner.describe_update(resource_type, id, changes)

    def describe_delete(self, resource_type: str, id: str) -> list[LegacyCall]:
        return self.inner.describe_delete(resource_type, id)

    def describe_members(
        self,
        group_id: str,
        added: Sequence[str],
        removed: Sequence[str],
        *,
        current: Sequence[str] | None = None,
    ) -> list[LegacyCall]:
        return self.inner.describe_members(group_id, added, removed, current=current)
