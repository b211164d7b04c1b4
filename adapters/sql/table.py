"""Table mode: the adapter writes every statement for one table, from its description.

At ``open`` the table's columns are read from information_schema; every field
the mapping writes or names must be one of them, as must the id, unique and
membership columns (the problems are listed, naming the settings key). The
statements then use only those names, quoted by :func:`quote_ident`, and
``$n`` parameters for every value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from adapters.sql import mysql
from adapters.sql.config import GroupTable, Members, UserTable
from adapters.sql.dialect import POSTGRES, Dialect
from adapters.sql.filters import Params, SqlFilter
from adapters.sql.sqltext import quote_ident
from adapters.sql.store import Connection, Fields, Membership, Refs, Row, Store
from adapters.sql.values import Column, Unfit, to_column
from gateway.mapping.engine import resolve_path
from gateway.scim.schema import build_resource_types

__all__ = ["TableMembership", "TableStore", "read_columns"]

_TYPES = build_resource_types()
_TYPE = re.compile(r"[a-z_][a-z0-9_]*(\[\])?")
_ESTIMATE = """
SELECT c.reltuples::bigint FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = $1 AND c.relname = $2
"""
_COLUMNS = """
SELECT column_name, udt_name, data_type, is_nullable = 'YES' AS nullable,
       column_default IS NOT NULL OR is_identity = 'YES' AS has_default,
       character_maximum_length AS max_length
FROM information_schema.columns
WHERE table_schema = $1 AND table_name = $2
ORDER BY ordinal_position
"""


async def read_columns(conn: Connection, schema: str, table: str) -> dict[str, Column]:
    """The table's columns by name (empty when there is no such table or view)."""
    rows = await conn.fetch(_COLUMNS, schema, table)
    return {
        r["column_name"]: Column(
            r["column_name"],
            quote_ident(r["column_name"]),
            _type_name(r["udt_name"], r["data_type"]),
            r["nullable"],
            r["has_default"],
            r["max_length"],
        )
        for r in rows
    }


def _type_name(udt: str, data_type: str) -> str:
    """``int4``, ``varchar``; arrays as ``int4[]`` (information_schema says ``_int4``).

    The name is written into casts (``$1::int4[]``), so anything but a plain
    lower-case name (a type created with a quoted name) is taken as ``text``.
    """
    name = f"{udt[1:]}[]" if data_type == "ARRAY" and udt.startswith("_") else udt
    return name if _TYPE.fullmatch(name) else "text"


class TableStore(Store):
    def __init__(
        self,
        resource_type: str,
        section: UserTable | GroupTable,
        fields: Fields,
        where: SqlFilter,
        stamps: tuple[str | None, str | None],
        dialect: Dialect = POSTGRES,
    ) -> None:
        self.dialect = dialect
        self.resource_type = resource_type
        self.section = section
        self.fields = fields
        self.where = where
        self.unique = section.unique
        self.values = section.values
        self.table = dialect.qualified(section.schema_, section.table)
        self.columns = {}
        self.id = Column(section.id.column, dialect.quote(section.id.column), "text")
        self.created, self.modified = stamps
        #: The field holding the display name (a group's displayName), for user's groups.
        self.display: str | None = None
        self._select = ""

    async def dialect_columns(self, conn: Connection, schema: str, table: str) -> dict[str, Column]:
        """A table's columns from the catalog of this store's server."""
        if isinstance(conn, mysql.Connection):
            return await mysql.read_columns(conn, schema, table)
        return await read_columns(conn, schema, table)

    def display_column(self) -> Column | None:
        return self.columns.get(self.display) if self.display else None

    @property
    def key(self) -> str:
        return f"{self.section.schema_}.{self.section.table}"

    async def open(self, conn: Connection) -> list[str]:
        found = await self.dialect_columns(conn, self.section.schema_, self.section.table)
        where = f"{self.key} ({self.resource_type})"
        if not found:
            return [f"table: there is no table or view {where}"]
        problems = []
        id_column = found.get(self.section.id.column)
        if id_column is None:
            problems.append(f"id.column: {where} has no column {self.section.id.column!r}")
        else:
            self.id = id_column
            if self.section.id.generated == "database" and not id_column.has_default:
                problems.append(
                    f"id.generated: column {self.section.id.column!r} of {where} has no default "
                    "or identity, so the database cannot make ids; say 'uuid' or 'provided'"
                )
        for name in sorted(self.fields.named() - found.keys()):
            problems.append(
                f"table: the mapping names the field {name!r}, but {where} has no such column"
            )
        for unique in self.section.unique:
            if unique.column not in found:
                problems.append(f"unique: {where} has no column {unique.column!r}")
        self.columns = (
            dict(found)
            if self.fields.read is None
            else {n: c for n, c in found.items() if n in self._read() or n == self.id.name}
        )
        self._select = ", ".join(c.sql for c in self.columns.values())
        return problems

    def _read(self) -> frozenset[str]:
        """The columns a read selects: those the mapping names and the value-mapped ones."""
        return self.fields.named() | {m.column for m in self.values.values()}

    # -- reading ---------------------------------------------------------------------

    def get_sql(self) -> str:
        return f"SELECT {self._select} FROM {self.table} WHERE {self.id.sql} = $1"

    async def get(self, conn: Connection, id: Any) -> Row | None:
        return await conn.fetchrow(self.get_sql(), id)

    def search_sql(self, where: str, order_by: str, bound: int) -> str:
        """The page statement; ``bound`` values come first, then limit and offset."""
        return (
            f"SELECT {self._select} FROM {self.table} WHERE {where} "
            f"ORDER BY {order_by} LIMIT ${bound + 1} OFFSET ${bound + 2}"
        )

    def count_sql(self, where: str) -> str:
        return f"SELECT count(*) FROM {self.table} WHERE {where}"

    async def rows(
        self, conn: Connection, where: str, params: Params, order_by: str, limit: int, offset: int
    ) -> list[Row]:
        sql = self.search_sql(where, order_by, len(params.values))
        return list(await conn.fetch(sql, *params.values, *self.search_args(limit, offset)))

    async def estimate(self, conn: Connection) -> int | None:
        """The planner's row count of the table (pg_class.reltuples): no scan; None if unknown."""
        schema, table = self.section.schema_, self.section.table
        if isinstance(conn, mysql.Connection):
            return await mysql.estimate(conn, schema, table)
        found = await conn.fetchval(_ESTIMATE, schema, table)
        return None if found is None or found < 0 else int(found)

    async def count(self, conn: Connection, where: str, params: Params) -> int:
        total = await conn.fetchval(self.count_sql(where), *params.values)
        return int(total)

    # -- writing ---------------------------------------------------------------------

    def typed(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The values as their columns' types; Unfit names the field (and its SCIM attribute)."""
        out = {}
        for name, value in data.items():
            column = self.columns.get(name)
            if column is None:
                raise Unfit(f"{name}: {self.key} has no such column")
            try:
                out[name] = to_column(value, column.type)
            except Unfit as exc:
                raise Unfit(f"{name}: {exc}") from None
            too_long(column, out[name], self.fields, self.resource_type)
        return out

    async def insert(self, conn: Connection, data: Mapping[str, Any]) -> Any:
        data = self.typed(data)
        names = [self.columns[name].sql for name in data]
        values = [f"${n}" for n in range(1, len(data) + 1)]
        for stamp in (self.created, self.modified):
            if self.section.touch_modified and stamp and stamp not in data:
                names.append(self.columns[stamp].sql)
                values.append("now()")
        sql = (
            f"INSERT INTO {self.table} ({', '.join(names)}) VALUES ({', '.join(values)})"
            if names
            else f"INSERT INTO {self.table} DEFAULT VALUES"
        )
        if self.dialect is POSTGRES:
            return await conn.fetchval(f"{sql} RETURNING {self.id.sql}", *data.values())
        await conn.execute(sql.replace(" DEFAULT VALUES", " () VALUES ()"), *data.values())
        given = data.get(self.id.name)  # uuid or provided ids; else AUTO_INCREMENT's
        assert isinstance(conn, mysql.Connection)
        return given if given is not None else conn.lastrowid

    async def update(self, conn: Connection, id: Any, changes: Mapping[str, Any]) -> bool:
        changes = self.typed(changes)
        sets = [f"{self.columns[name].sql} = ${n}" for n, name in enumerate(changes, start=2)]
        if self.section.touch_modified and self.modified and self.modified not in changes:
            sets.append(f"{self.columns[self.modified].sql} = now()")
        if not sets:
            return await self.get(conn, id) is not None
        sql = f"UPDATE {self.table} SET {', '.join(sets)} WHERE {self.id.sql} = $1"
        status = await conn.execute(sql, id, *changes.values())
        return _affected(status) > 0

    async def touch(self, conn: Connection, id: Any) -> bool:
        """Move the modified stamp (a membership change); False when there is no such row."""
        if self.section.touch_modified and self.modified:
            stamp = self.columns[self.modified].sql
            sql = f"UPDATE {self.table} SET {stamp} = now() WHERE {self.id.sql} = $1"
        else:
            sql = f"SELECT 1 FROM {self.table} WHERE {self.id.sql} = $1 {self.dialect.share_lock}"
        return _affected(await conn.execute(sql, id)) > 0

    async def delete(self, conn: Connection, id: Any) -> bool:
        sql = f"DELETE FROM {self.table} WHERE {self.id.sql} = $1"
        return _affected(await conn.execute(sql, id)) > 0

    def statements(self) -> dict[str, str]:
        return {"get": self.get_sql(), "count": self.count_sql("{where}")}


class TableMembership(Membership):
    """A membership table (group column, member column) between a group and a user table."""

    def __init__(self, config: Members, groups: TableStore, users: TableStore) -> None:
        dialect = self.dialect = groups.dialect
        self.config = config
        self.groups_store = groups
        self.users_store = users
        schema = config.schema_ or groups.section.schema_
        self.key = f"{schema}.{config.table}"
        self.schema = schema
        self.table = dialect.qualified(schema, config.table)
        self.group_col = dialect.quote(config.group)
        self.member_col = dialect.quote(config.member)
        self.group_type = "text"
        self.member_type = "text"

    async def open(self, conn: Connection) -> list[str]:
        found = await self.groups_store.dialect_columns(conn, self.schema, self.config.table)
        if not found:
            return [f"groups.members.table: there is no table {self.key}"]
        problems = []
        for key, name in (("group", self.config.group), ("member", self.config.member)):
            if name not in found:
                problems.append(f"groups.members.{key}: {self.key} has no column {name!r}")
        if not problems:
            self.group_type = found[self.config.group].type
            self.member_type = found[self.config.member].type
        return problems

    async def members(self, conn: Connection, group_ids: Sequence[Any], limit: int) -> Refs:
        sql = (
            f"SELECT g, array(SELECT m.{self.member_col}::text FROM {self.table} AS m "
            f"WHERE m.{self.group_col} = g ORDER BY 1 LIMIT $2) AS ids "
            f"FROM unnest($1::{self.group_type}[]) AS g"
        )
        rows = await conn.fetch(sql, list(group_ids), limit + 1)
        return {str(r["g"]): [(m, None) for m in r["ids"]] for r in rows}

    async def groups(self, conn: Connection, user_ids: Sequence[Any]) -> Refs | None:
        groups = self.groups_store
        display = groups.display_column()
        shown = f"g.{display.sql}::text" if display is not None else "NULL::text"
        sql = (
            f"SELECT m.{self.member_col} AS member, g.{groups.id.sql}::text AS id, "
            f"{shown} AS shown "
            f"FROM {self.table} AS m JOIN {groups.table} AS g "
            f"ON g.{groups.id.sql} = m.{self.group_col} "
            f"WHERE m.{self.member_col} = ANY($1::{self.member_type}[]) ORDER BY 2"
        )
        found: Refs = {str(u): [] for u in user_ids}
        for row in await conn.fetch(sql, list(user_ids)):
            found.setdefault(str(row["member"]), []).append((row["id"], row["shown"]))
        return found

    async def add(self, conn: Connection, group_id: Any, member_ids: Sequence[Any]) -> None:
        sql = (
            f"INSERT INTO {self.table} ({self.group_col}, {self.member_col}) "
            f"SELECT DISTINCT $1::{self.group_type}, x FROM unnest($2::{self.member_type}[]) AS x "
            f"WHERE NOT EXISTS (SELECT 1 FROM {self.table} AS m "
            f"WHERE m.{self.group_col} = $1 AND m.{self.member_col} = x) "
            "ON CONFLICT DO NOTHING"
        )
        await conn.execute(sql, group_id, list(member_ids))

    async def remove(self, conn: Connection, group_id: Any, member_ids: Sequence[Any]) -> None:
        sql = (
            f"DELETE FROM {self.table} WHERE {self.group_col} = $1 "
            f"AND {self.member_col} = ANY($2::{self.member_type}[])"
        )
        await conn.execute(sql, group_id, list(member_ids))

    async def missing_users(self, conn: Connection, member_ids: Sequence[Any]) -> list[str]:
        users = self.users_store
        sql = (
            f"SELECT x::text FROM unnest($1::{users.id.type}[]) AS x WHERE NOT EXISTS "
            f"(SELECT 1 FROM {users.table} AS u WHERE u.{users.id.sql} = x)"
        )
        return [r[0] for r in await conn.fetch(sql, list(member_ids))]

    async def forget_member(self, conn: Connection, member_id: Any) -> None:
        sql = f"DELETE FROM {self.table} WHERE {self.member_col} = $1"
        await conn.execute(sql, member_id)

    async def forget_group(self, conn: Connection, group_id: Any) -> None:
        sql = f"DELETE FROM {self.table} WHERE {self.group_col} = $1"
        await conn.execute(sql, group_id)


class MysqlMembership(TableMembership):
    """The membership table on MySQL/MariaDB: no arrays, so one placeholder per id."""

    async def members(self, conn: Connection, group_ids: Sequence[Any], limit: int) -> Refs:
        member = self.dialect.as_text(f"m.{self.member_col}")
        sql = (
            f"SELECT g, v FROM (SELECT m.{self.group_col} AS g, {member} AS v, "
            f"ROW_NUMBER() OVER (PARTITION BY m.{self.group_col} ORDER BY {member}) AS n "
            f"FROM {self.table} AS m WHERE m.{self.group_col} IN "
            f"({mysql.placeholders(2, len(group_ids))})) AS x WHERE n <= $1 ORDER BY g, v"
        )
        found: Refs = {str(g): [] for g in group_ids}
        for row in await conn.fetch(sql, limit + 1, *group_ids):
            found.setdefault(str(row[0]), []).append((row[1], None))
        return found

    async def groups(self, conn: Connection, user_ids: Sequence[Any]) -> Refs | None:
        groups = self.groups_store
        display = groups.display_column()
        shown = self.dialect.as_text(f"g.{display.sql}") if display is not None else "NULL"
        group_id = self.dialect.as_text(f"g.{groups.id.sql}")
        sql = (
            f"SELECT m.{self.member_col} AS member, {group_id} AS id, {shown} AS shown "
            f"FROM {self.table} AS m JOIN {groups.table} AS g "
            f"ON g.{groups.id.sql} = m.{self.group_col} "
            f"WHERE m.{self.member_col} IN ({mysql.placeholders(1, len(user_ids))}) ORDER BY 2"
        )
        found: Refs = {str(u): [] for u in user_ids}
        for row in await conn.fetch(sql, *user_ids):
            found.setdefault(str(row["member"]), []).append((row["id"], row["shown"]))
        return found

    async def add(self, conn: Connection, group_id: Any, member_ids: Sequence[Any]) -> None:
        for part in mysql.chunks(list(dict.fromkeys(member_ids))):
            sql = (
                f"INSERT INTO {self.table} ({self.group_col}, {self.member_col}) "
                f"SELECT $1, x.v FROM {mysql.ids_table(2, len(part))} "
                f"WHERE NOT EXISTS (SELECT 1 FROM {self.table} AS m "
                f"WHERE m.{self.group_col} = $1 AND m.{self.member_col} = x.v) "
                f"ON DUPLICATE KEY UPDATE {self.group_col} = {self.group_col}"
            )
            await conn.execute(sql, group_id, *part)

    async def remove(self, conn: Connection, group_id: Any, member_ids: Sequence[Any]) -> None:
        for part in mysql.chunks(list(member_ids)):
            sql = (
                f"DELETE FROM {self.table} WHERE {self.group_col} = $1 "
                f"AND {self.member_col} IN ({mysql.placeholders(2, len(part))})"
            )
            await conn.execute(sql, group_id, *part)

    async def missing_users(self, conn: Connection, member_ids: Sequence[Any]) -> list[str]:
        users = self.users_store
        missing: list[str] = []
        for part in mysql.chunks(list(member_ids)):
            sql = (
                f"SELECT {self.dialect.as_text('x.v')} FROM {mysql.ids_table(1, len(part))} "
                f"WHERE NOT EXISTS (SELECT 1 FROM {users.table} AS u WHERE u.{users.id.sql} = x.v)"
            )
            missing += [r[0] for r in await conn.fetch(sql, *part)]
        return missing


def too_long(column: Column, value: Any, fields: Fields, resource_type: str) -> None:
    """Refuse text longer than its column holds, naming the column and the SCIM attribute.

    PostgreSQL's own error (22001) names neither; MariaDB's names only the column.
    """
    limit = column.max_length
    if limit is None or not isinstance(value, str) or len(value) <= limit:
        return
    shown = describe(column.name, fields, resource_type)
    raise Unfit(f"{shown} holds at most {limit} characters, not {len(value)}")


def describe(column: str, fields: Fields, resource_type: str) -> str:
    """``column logon_name (SCIM userName)``: the column, and the attribute it holds a copy of."""
    for path, field in fields.plain.items():
        if field == column and path != "id":
            found = resolve_path(_TYPES[resource_type], path)
            return f"column {column} (SCIM {found.dotted if found else path})"
    return f"column {column}"


def _affected(status: str) -> int:
    """The row count of a command tag (``UPDATE 1``, ``DELETE 0``, ``SELECT 1``)."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0
