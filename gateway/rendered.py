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
references carry the base URL, and a request's Host may change it), each
bounded: a table that is full is emptied rather than evicted one entry at a
time, and the number of tables is bounded too, so memory stays bounded whatever
the clients send.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from gateway.sdk import Record

#: Records kept per resource type and base URL.
TABLE_SIZE = 10_000
#: Tables kept (resource types x base URLs); the oldest goes when one more is needed.
TABLES = 8

_Stamp = tuple[Any, ...]


def stamp(record: Record) -> _Stamp:
    """All of a record, its data aside, that its SCIM form shows: with an exact version,
    equal stamps mean equal resources."""
    return (
        record.version,
        record.created,
        record.last_modified,
        tuple(record.groups) if record.groups else None,
        tuple(record.members) if record.members else None,
    )


class RenderedRecords:
    """Serialized resources by resource type and base URL, then by id (see the module)."""

    def __init__(self, table_size: int = TABLE_SIZE, tables: int = TABLES) -> None:
        self._table_size = table_size
        self._max_tables = tables
        self._tables: dict[tuple[str, str], dict[str, tuple[_Stamp, orjson.Fragment]]] = {}

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
                del self._tables[next(iter(self._tables))]
            table = self._tables[key] = {}
        out: list[orjson.Fragment] = []
        for record in records:
            current = stamp(record)
            kept = table.get(record.id)
            if kept is not None and kept[0] == current:
                out.append(kept[1])
                continue
            fragment = orjson.Fragment(orjson.dumps(render(record)))
            if kept is None and len(table) >= self._table_size:
                table.clear()
            table[record.id] = (current, fragment)
            out.append(fragment)
        return out

    def forget(self, id: str) -> None:
        """Drop what is kept of the resource ``id`` (it was written or deleted): not needed
        for correctness, the stamp sees the change, but a deleted one's JSON goes at once."""
        for table in self._tables.values():
            table.pop(id, None)

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables.values())
