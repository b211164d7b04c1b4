"""Adapters in front of adapters: the gateway's limits and its telemetry wrap each app's adapter.

:class:`WrappedAdapter` delegates every call to the adapter it wraps, passing
the calls that reach the legacy app (reads, writes, member changes) through
:meth:`WrappedAdapter.around`; a wrapper overrides only that. Dry runs
(``describe_*``) reach nothing, so they pass straight through.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Any, Literal, TypeVar

from gateway.sdk import Adapter, LegacyCall, Page, Query, Record

Call = Literal["get", "search", "create", "update", "delete", "add_members", "remove_members"]
WRITES: frozenset[Call] = frozenset({"create", "update", "delete", "add_members", "remove_members"})

A = TypeVar("A", bound=Adapter)


class WrappedAdapter(Adapter):
    def __init__(self, inner: Adapter) -> None:
        super().__init__(inner.settings, app=inner.app, mapping=inner.mapping)
        self.inner = inner
        self.capabilities = inner.capabilities

    def around(self, call: Call, resource_type: str | None) -> AbstractAsyncContextManager[None]:
        """What one call passes through (nothing here: a subclass says)."""
        return nullcontext()

    async def open(self) -> None:
        await self.inner.open()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def transaction(self) -> AbstractAsyncContextManager[None]:
        return self.inner.transaction()

    async def get(self, resource_type: str, id: str, **options: Any) -> Record:
        async with self.around("get", resource_type):  # options: members=False (skip_members)
            return await self.inner.get(resource_type, id, **options)

    async def search(self, query: Query) -> Page:
        async with self.around("search", query.resource_type):
            return await self.inner.search(query)

    async def create(
        self, resource_type: str, data: dict[str, Any], *, members: Sequence[str] = ()
    ) -> Record:
        async with self.around("create", resource_type):
            return await self.inner.create(resource_type, data, members=members)

    async def update(
        self,
        resource_type: str,
        id: str,
        changes: dict[str, Any],
        *,
        expected_version: str | None = None,
    ) -> Record:
        async with self.around("update", resource_type):
            return await self.inner.update(
                resource_type, id, changes, expected_version=expected_version
            )

    async def delete(
        self, resource_type: str, id: str, *, expected_version: str | None = None
    ) -> None:
        async with self.around("delete", resource_type):
            await self.inner.delete(resource_type, id, expected_version=expected_version)

    async def add_members(self, group_id: str, member_ids: list[str]) -> None:
        async with self.around("add_members", "Group"):
            await self.inner.add_members(group_id, member_ids)

    async def remove_members(self, group_id: str, member_ids: list[str]) -> None:
        async with self.around("remove_members", "Group"):
            await self.inner.remove_members(group_id, member_ids)

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


def unwrap(adapter: Adapter, kind: type[A]) -> A | None:
    """The first adapter of ``kind`` at or below ``adapter``'s wrappers, if any."""
    found: Adapter | None = adapter
    while found is not None:
        if isinstance(found, kind):
            return found
        found = found.inner if isinstance(found, WrappedAdapter) else None
    return None
