"""The JSON of records as a list shows them, kept while the records do not change.

A list of 100 users spent most of its time turning each record into its SCIM
resource and that into JSON, although between two lists almost no record had
changed. For an adapter whose versions say when a record changed
(:attr:`gateway.sdk.Capabilities.exact_versions`), the service keeps each
record's serialized resource, as a default response shows it (no
``attributes``/``excludedAttributes``), beside the record's stamp: its version,
timestamps and group or member references (a user's groups change without its
own version changing). A record whose stamp differs from the kept one is
rendered again, so a write is seen by the next list without any call from the
write path; the kept JSON enters the ListResponse as an ``orjson.Fragment``,
byte for byte what serializing the resource would give.

One table per resource type and base URL (the resource's ``location`` and
references carry the base URL, and a request's Host may change it). Memory is
bounded whatever the clients send: the bytes kept, all tables together, stay
within a budget (when one more would not fit, everything is dropped, rather
than evicted one entry at a time; one resource bigger than the budget, a huge
group, is never kept), and so does the number of tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from gateway.sdk import Record

#: Bytes kept, all tables together, counted as below: JSON, stamps, the entries themselves.
BUDGET = 32 * 1024 * 1024
#: Tables kept (resource types x base URLs); the oldest goes when one more is needed.
TABLES = 8
#: What an entry costs beside its JSON (dict slot, tuples, the Fragment), and each group
#: or member reference its stamp holds: rough, on the high side (CPython 3.11, 64-bit).
_ENTRY_COST = 400
_REF_COST = 100

_Stamp = tuple[Any, ...]
_Kept = tuple[_Stamp, orjson.Fragment, int]  # the stamp, the JSON, its cost in bytes


class RenderedRecords:
    """Serialized resources by resource type and base URL, then by id (see the module)."""

    def __init__(self, budget: int = BUDGET, tables: int = TABLES) -> None:
        self._budget = budget
        self._max_tables = tables
        self._tables: dict[tuple[str, str], dict[str, _Kept]] = {}
        self.size = 0  # bytes kept, as counted against the budget

    def page(
        self,
        resource_type: str,
        base_url: str,
        records: Sequence[Record],
        render: Callable[[Record], dict[str, Any]],
    ) -> list[orjson.Fragment]:
        """The JSON of each record, rendered by ``render`` only where the kept one is stale."""
        key = (resource_type, base_url)
        table = self._tables.get(key)
        if table is None:
            if len(self._tables) >= self._max_tables:
                oldest = self._tables.pop(next(iter(self._tables)))
                self.size -= sum(cost for _, _, cost in oldest.values())
            table = self._tables[key] = {}
        out: list[orjson.Fragment] = []
        for record in records:
            # All of the record, its data aside, that its SCIM form shows: with an exact
            # version, equal stamps mean equal resources.
            groups, members = record.groups, record.members
            current = (
                record.version,
                record.created,
                record.last_modified,
                tuple(groups) if groups else None,
                tuple(members) if members else None,
            )
            kept = table.get(record.id)
            if kept is not None and kept[0] == current:
                out.append(kept[1])
                continue
            text = orjson.dumps(render(record))
            fragment = orjson.Fragment(text)
            out.append(fragment)
            if kept is not None:
                del table[record.id]
                self.size -= kept[2]
            refs = len(groups or ()) + len(members or ())
            cost = len(text) + _ENTRY_COST + refs * _REF_COST
            if cost > self._budget:
                continue  # never kept: bigger than everything may be
            if self.size + cost > self._budget:
                self.clear()  # full: start again rather than evict one entry at a time
            table[record.id] = (current, fragment, cost)
            self.size += cost
        return out

    def forget(self, id: str) -> None:
        """Drop what is kept of the resource ``id`` (deleted): not needed for correctness,
        no list shows it again, but its JSON need not wait for the table to be emptied."""
        for table in self._tables.values():
            kept = table.pop(id, None)
            if kept is not None:
                self.size -= kept[2]

    def clear(self) -> None:
        for table in self._tables.values():
            table.clear()  # emptied in place: page() may hold one
        self.size = 0

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables.values())
