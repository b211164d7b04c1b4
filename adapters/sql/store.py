"""What the adapter needs from one resource type's storage, in either mode.

:class:`Store` reads and writes the rows of one resource type;
:class:`Membership` relates groups and users. :mod:`adapters.sql.table`
writes their SQL from a table's description, :mod:`adapters.sql.statements`
takes it from configured statements. Both run on a connection the adapter
hands them, inside the transaction of one SCIM operation, and both leave
every value to bound parameters.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    from adapters.sql import mysql

from adapters.sql.config import UniqueColumn, ValueMap
from adapters.sql.filters import Params, SqlFilter
from adapters.sql.values import Column

__all__ = ["Fields", "Membership", "Page", "Row", "Store"]

if TYPE_CHECKING:
    #: A connection of the pool, or one of its own (introspection, tests).
    Connection: TypeAlias = (
        asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record] | mysql.Connection
    )
    #: A row read by column name or position.
    Row: TypeAlias = asyncpg.Record | mysql.Row
else:
    Connection = Any
    Row = Any
#: A group's members, or a user's groups, by the record's id (as text): (id, display) pairs.
Refs = dict[str, list[tuple[str, str | None]]]


@dataclass(frozen=True, slots=True)
class Fields:
    """What the app's mapping says about one resource type's legacy fields.

    ``written``: the fields to_legacy renders (and defaults); ``read``: the
    mapping's ``record_fields`` (None when it lists none); ``plain``: SCIM path
    (lower-case) -> the field holding a plain copy of it (the ``fields`` section).
    """

    written: frozenset[str] | None = None
    read: frozenset[str] | None = None
    plain: Mapping[str, str] = field(default_factory=dict)

    def named(self) -> frozenset[str]:
        """Every field the mapping names: written, plainly copied, or read."""
        return (self.written or frozenset()) | set(self.plain.values()) | (self.read or set())


@dataclass(slots=True)
class Page:
    rows: list[Row]
    total: int


class Store(abc.ABC):
    """One resource type's rows. ``columns`` (legacy field -> column) is known after ``open``."""

    resource_type: str
    id: Column
    #: SCIM attribute -> the column holding it as other values (settings ``values``).
    values: Mapping[str, ValueMap]
    columns: dict[str, Column]
    where: SqlFilter
    #: Columns the adapter keeps unique (settings ``unique``).
    unique: Sequence[UniqueColumn]

    @abc.abstractmethod
    async def open(self, conn: Connection) -> list[str]:
        """Check the configuration against the database; return the problems found."""

    @abc.abstractmethod
    async def get(self, conn: Connection, id: Any) -> Row | None: ...

    @abc.abstractmethod
    async def rows(
        self, conn: Connection, where: str, params: Params, order_by: str, limit: int, offset: int
    ) -> list[Row]:
        """At most ``limit`` rows from ``offset`` (``where`` uses ``params``, from ``$1``)."""

    async def estimate(self, conn: Connection) -> int | None:
        """A cheap guess of the number of rows of the whole type (None: no guess)."""
        return None

    async def search(
        self,
        conn: Connection,
        where: str,
        params: Params,
        order_by: str,
        limit: int,
        offset: int,
        totals: str = "exact",
    ) -> Page:
        """One page and the total, counted only when the page cannot tell it.

        One row more than the page is read: without it, the page is the end of the
        result and the total is ``offset`` plus its rows, so no statement counts. Else
        the total is a ``count`` of the matches; with ``totals: estimate`` and no filter,
        the planner's estimate of the table's rows (never below what was seen).
        """
        rows = await self.rows(conn, where, params, order_by, limit + 1, offset)
        more = len(rows) > limit
        del rows[limit:]
        if not more and (rows or offset == 0):
            return Page(rows, offset + len(rows))
        seen = offset + len(rows) + more
        if totals == "estimate" and where == "TRUE":
            guess = await self.estimate(conn)
            if guess is not None:
                return Page(rows, max(guess, seen))
        return Page(rows, await self.count(conn, where, params))

    @abc.abstractmethod
    def search_sql(self, where: str, order_by: str, bound: int) -> str:
        """The page statement: ``bound`` values of ``where`` first, then limit and offset."""

    def search_args(self, limit: int, offset: int) -> list[Any]:
        """The values after the WHERE clause's in :meth:`search_sql`."""
        return [limit, offset]

    @abc.abstractmethod
    def get_sql(self) -> str:
        """The statement reading one row by its id (``$1``)."""

    @abc.abstractmethod
    async def count(self, conn: Connection, where: str, params: Params) -> int: ...

    @abc.abstractmethod
    async def insert(self, conn: Connection, data: Mapping[str, Any]) -> Any:
        """Insert a row of legacy fields (already column-typed); return its id value."""

    @abc.abstractmethod
    async def update(self, conn: Connection, id: Any, changes: Mapping[str, Any]) -> bool:
        """Apply the changes (``None`` clears); False when there is no such row."""

    @abc.abstractmethod
    async def delete(self, conn: Connection, id: Any) -> bool:
        """Delete the row and its memberships; False when there is no such row."""

    def statements(self) -> dict[str, str]:
        """The SQL text of each statement (for tests and the dry run)."""
        return {}


class Membership(abc.ABC):
    """Group membership; member and group ids are bound as the columns' types."""

    member_type: str

    @abc.abstractmethod
    async def open(self, conn: Connection) -> list[str]: ...

    @abc.abstractmethod
    async def members(self, conn: Connection, group_ids: Sequence[Any], limit: int) -> Refs:
        """The member ids of each group (at most ``limit`` + 1 each, to tell "too many")."""

    @abc.abstractmethod
    async def groups(self, conn: Connection, user_ids: Sequence[Any]) -> Refs | None:
        """The groups of each user, with display names; None when they cannot be read."""

    @abc.abstractmethod
    async def add(self, conn: Connection, group_id: Any, member_ids: Sequence[Any]) -> None:
        """Add the members not yet in the group, in one statement."""

    @abc.abstractmethod
    async def remove(self, conn: Connection, group_id: Any, member_ids: Sequence[Any]) -> None:
        """Remove the members, in one statement; absent ones are no error."""

    @abc.abstractmethod
    async def missing_users(self, conn: Connection, member_ids: Sequence[Any]) -> list[str]:
        """The ids among ``member_ids`` that name no user."""
