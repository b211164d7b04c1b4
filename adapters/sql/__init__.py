"""The SQL adapter: users and groups provisioned straight into a legacy PostgreSQL database.

The app's mapping turns SCIM resources into rows (legacy field = column) and
back; the settings (:mod:`adapters.sql.config`, docs/sql-adapter.md) say where
the rows live, per resource type in one of two modes:

* ``table``: the adapter writes the statements over one table
  (:mod:`adapters.sql.table`), checked against information_schema at start-up;
* ``statements``: one configured statement per operation
  (:mod:`adapters.sql.statements`), prepared at start-up.

How SCIM lands in the database:

* every adapter call is one transaction on a pooled asyncpg connection (reads
  that take several statements run REPEATABLE READ, READ ONLY), and the calls
  of one SCIM operation (a PATCH's update and member changes) share one when
  the gateway makes them inside :meth:`SqlAdapter.transaction`;
* filters on attributes the mapping keeps in a column become a parameterised
  WHERE clause (:mod:`adapters.sql.filters`); sorting and paging are SQL too,
  with the total counted in the same transaction;
* membership changes are one statement for all members, idempotent;
* unique columns are checked (case-insensitively where configured) under an
  advisory lock, so two concurrent writes of one login cannot both pass; a
  REPEATABLE READ write (a statement-mode update) takes the lock before its
  transaction begins, so its snapshot sees what the previous holder committed;
* the database's errors become gateway errors in one place
  (:mod:`adapters.sql.errors`), and a connection that died (a database restart)
  is replaced before a transaction begins, so the next call works.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any, Literal, NoReturn
from urllib.parse import urlsplit

import asyncpg
from asyncpg.transaction import Transaction
from pydantic import BaseModel

from adapters.sql import mysql
from adapters.sql.config import (
    GroupStatements,
    GroupTable,
    SqlSettings,
    UniqueColumn,
    UserStatements,
    UserTable,
)
from adapters.sql.dialect import MYSQL, Dialect, dialect_of
from adapters.sql.errors import CONNECTION_ERRORS, map_db_errors
from adapters.sql.filters import Convert, Params, SqlFilter, converter
from adapters.sql.statements import StatementMembership, StatementStore, compile_section
from adapters.sql.store import Connection, Fields, Membership, Refs, Row, Store
from adapters.sql.table import MysqlMembership, TableMembership, TableStore
from adapters.sql.values import Column, Unfit, as_moment, from_column, to_column
from gateway.config import ConfigError
from gateway.mapping import Mapping
from gateway.mapping.engine import TemplateMapping
from gateway.scim.schema import build_resource_types
from gateway.sdk import (
    ALL_OPERATORS,
    Adapter,
    Capabilities,
    Conflict,
    InvalidValue,
    LegacyCall,
    NotFound,
    Page,
    Query,
    Record,
    Ref,
    UpstreamError,
    UpstreamUnavailable,
)

__all__ = ["SqlAdapter", "SqlSettings"]

_TYPES = build_resource_types()
_ORDERED = frozenset({"eq", "ne", "gt", "ge", "lt", "le", "pr"})
_OPERATORS = {
    "string": ALL_OPERATORS,
    "reference": ALL_OPERATORS,
    "binary": frozenset({"eq", "ne", "pr"}),
    "boolean": frozenset({"eq", "ne", "pr"}),
    "dateTime": _ORDERED,
    "integer": _ORDERED,
    "decimal": _ORDERED,
}
Isolation = Literal["read_committed", "repeatable_read"]


@dataclass(slots=True)
class _Operation:
    """The transaction of one SCIM operation, once its first call has begun it."""

    #: (pool, connection, transaction): asyncpg's, or :mod:`.mysql`'s.
    begun: tuple[Any, Any, Any] | None = None
    #: An exception left a call inside: the transaction must not commit.
    failed: bool = False
    #: Session-level advisory locks its first call took before beginning it.
    locks: tuple[str, ...] = ()


#: The open operation transaction of each adapter (by ``id``), in this task.
_OPERATIONS: ContextVar[MappingProxyType[int, _Operation]] = ContextVar(
    "scim_gateway_sql_operations", default=MappingProxyType({})
)


@cache
def scim_paths(resource_type: str) -> tuple[tuple[str, str], ...]:
    """(lower-case dotted path, SCIM type) of every simple attribute and sub-attribute."""
    rtype = _TYPES[resource_type]
    paths: list[tuple[str, str]] = []
    for container, attr in rtype.attributes():
        head = f"{container}:{attr.name}" if container else attr.name
        if attr.type != "complex":
            paths.append((head.lower(), attr.type))
        paths.extend(
            (f"{head}.{sub.name}".lower(), sub.type) for sub in attr.sub_attributes.values()
        )
    return tuple(paths)


def mapped_fields(mapping: Mapping, resource_type: str) -> Fields | None:
    """What the mapping writes and names for a type; None when it has no file for it."""
    if isinstance(mapping, TemplateMapping):
        found = mapping.types.get(resource_type)
        if found is None:
            return None
        written = frozenset(f.name for f in found.to_legacy_fields) | frozenset(found.defaults)
        return Fields(written, found.known_record_fields, dict(found.fields))
    return Fields()


def _provided_id_problems(section: UserTable | GroupTable, fields: Fields, key: str) -> list[str]:
    """With ``generated: provided`` the mapping must write the id, or no create can succeed."""
    column = section.id.column
    if section.id.generated != "provided" or fields.written is None or column in fields.written:
        return []
    return [
        f"{key}.id.generated: 'provided', but the mapping writes no {column!r} (a to_legacy "
        "template named like the column), so no record can be created"
    ]


class SqlAdapter(Adapter):
    settings_model = SqlSettings

    def __init__(
        self, settings: BaseModel | None = None, *, app: str = "", mapping: Mapping | None = None
    ) -> None:
        if not isinstance(settings, SqlSettings):
            raise TypeError("the SQL adapter needs its settings (a SqlSettings)")
        if mapping is None:
            raise ConfigError(
                f"apps.{app}.mapping: the sql adapter needs a mapping (user.yaml, group.yaml) "
                "that names the columns"
            )
        super().__init__(settings, app=app, mapping=mapping)
        self.config = settings
        self.where = _describe_dsn(settings.dsn.get_secret_value())

        self.dialect = dialect_of(settings.dsn.get_secret_value())
        self._pool: Any = None  # asyncpg's Pool, or mysql.Pool
        self.stores: dict[str, Store] = {}
        self.membership: Membership | None = None
        problems = self._build()
        if problems:
            raise ConfigError("\n".join(f"apps.{app}.settings.{p}" for p in problems))
        self.capabilities = Capabilities(
            resource_types=frozenset(self.stores),
            filter_attributes={rt: self._declared(rt) for rt in self.stores},
            filter_logic=True,
            sort=True,
            versions=False,
            groups="Group" in self.stores,
            transactions=True,
            skip_members=True,
        )

    # -- set-up ------------------------------------------------------------------------

    def _build(self) -> list[str]:
        problems: list[str] = []
        sections: dict[str, UserTable | UserStatements | GroupTable | GroupStatements] = {
            "User": self.config.users
        }
        if self.config.groups is not None:
            sections["Group"] = self.config.groups
        for rt, section in sections.items():
            key = "users" if rt == "User" else "groups"
            fields = mapped_fields(self.mapping, rt)
            if fields is None:
                problems.append(f"{key}: the app's mapping has no {rt.lower()}.yaml")
                continue
            where = SqlFilter(
                _TYPES[rt], self._column_finder(rt), self._value_finder(rt, section), self.dialect
            )
            stamps = (
                self.mapping.legacy_field(rt, "meta.created"),
                self.mapping.legacy_field(rt, "meta.lastModified"),
            )
            if isinstance(section, UserTable | GroupTable):
                problems += _provided_id_problems(section, fields, key)
                table = TableStore(rt, section, fields, where, stamps, self.dialect)
                table.display = self.mapping.legacy_field(rt, "displayname")
                self.stores[rt] = table
            elif self.dialect is MYSQL:
                problems.append(f"{key}.mode: statement mode needs PostgreSQL; use table mode")
                continue
            else:
                compiled, errors = compile_section(section, key)
                problems += errors
                self.stores[rt] = StatementStore(rt, section, compiled, fields, where, key)
        problems += self._build_membership()
        return problems

    def _build_membership(self) -> list[str]:
        users, groups = self.stores.get("User"), self.stores.get("Group")
        if groups is None or users is None:
            return []
        if isinstance(groups, TableStore) and isinstance(users, TableStore):
            members = groups.section.members if isinstance(groups.section, GroupTable) else None
            if members is None:
                return ["groups.members: table mode groups need their membership table"]
            kind = MysqlMembership if self.dialect is MYSQL else TableMembership
            self.membership = kind(members, groups, users)
            return []
        if isinstance(groups, StatementStore) and isinstance(users, StatementStore):
            self.membership = StatementMembership(groups, users)
            return []
        return ["groups.mode: users and groups must use the same mode (table or statements)"]

    def _column_finder(self, rt: str) -> Callable[[str], Column | None]:
        def column(path: str) -> Column | None:
            store = self.stores[rt]
            if path == "id":
                return store.id
            field = self.mapping.legacy_field(rt, path)
            return store.columns.get(field) if field else None

        return column

    def _value_finder(
        self, rt: str, section: UserTable | UserStatements | GroupTable | GroupStatements
    ) -> Callable[[str], tuple[Column, Convert] | None]:
        """The column and converter of a value-mapped attribute (settings ``values:``)."""
        maps = {path.lower(): value_map for path, value_map in section.values.items()}

        def mapped(path: str) -> tuple[Column, Convert] | None:
            value_map = maps.get(path)
            column = self.stores[rt].columns.get(value_map.column) if value_map else None
            if value_map is None or column is None:
                return None
            return column, converter(value_map)

        return mapped

    def _declared(self, rt: str) -> dict[str, frozenset[str]]:
        """Filterable: the id, each attribute the mapping keeps as a plain copy in a field,
        and each value-mapped one (``eq``, ``ne``, ``pr``)."""
        declared = {"id": ALL_OPERATORS}
        for path, scim_type in scim_paths(rt):
            if self.mapping.legacy_field(rt, path) is not None:
                declared[path] = _OPERATORS.get(scim_type, frozenset({"eq", "ne", "pr"}))
        for path in self.stores[rt].values:
            declared.setdefault(path.lower(), frozenset({"eq", "ne", "pr"}))
        return declared

    def _check_value_maps(self) -> list[str]:
        problems = []
        for rt, store in self.stores.items():
            key = "users" if rt == "User" else "groups"
            known = {path for path, _ in scim_paths(rt)}
            for path, value_map in store.values.items():
                if path.lower() not in known:
                    problems.append(f"{key}.values.{path}: not a SCIM attribute of a {rt}")
                if value_map.column not in store.columns:
                    problems.append(
                        f"{key}.values.{path}: the rows read have no column {value_map.column!r}"
                    )
        return problems

    async def open(self) -> None:
        if self.dialect is MYSQL:
            if mysql.tracing_on():  # asyncpg's statements are traced by its instrumentation
                mysql.instrument()
            with self._errors(self.config.retry_after):
                self._pool = await self._mysql_pool()
        else:
            await self._postgres_pool()
        await self._check()

    async def _mysql_pool(self) -> mysql.Pool:
        settings = self.config
        return await mysql.Pool.create(
            settings.dsn.get_secret_value(),
            min_size=settings.pool.min_size,
            max_size=settings.pool.max_size,
            connect_timeout=settings.connect_timeout,
            statement_timeout_ms=settings.statement_timeout,
            max_idle=settings.pool.max_idle,
            acquire_timeout=settings.pool.acquire_timeout,
        )

    async def _postgres_pool(self) -> None:
        settings = self.config
        server = {
            "application_name": f"scim-gateway/{self.app}"[:63],
            "statement_timeout": str(settings.statement_timeout),
            "standard_conforming_strings": "on",  # ESCAPE '\' in LIKE relies on it
        }
        if settings.search_path:
            server["search_path"] = ", ".join(f'"{name}"' for name in settings.search_path)
        with self._errors(settings.retry_after):
            self._pool = await asyncpg.create_pool(
                settings.dsn.get_secret_value(),
                min_size=settings.pool.min_size,
                max_size=settings.pool.max_size,
                max_inactive_connection_lifetime=settings.pool.max_idle,
                timeout=settings.connect_timeout,
                command_timeout=settings.statement_timeout / 1000 + 5,
                server_settings=server,
            )

    async def _check(self) -> None:
        """The configuration against the database's catalog; a ConfigError naming each key."""
        problems: list[str] = []
        async with self._connection() as conn:
            for rt, store in self.stores.items():
                found = await store.open(conn)
                key = "users" if rt == "User" else "groups"
                problems += [p if p.startswith(key) else f"{key}.{p}" for p in found]
            if self.membership is not None:
                problems += await self.membership.open(conn)
            problems += self._check_unique_columns()
            problems += self._check_value_maps()
        if problems:
            await self.aclose()
            raise ConfigError("\n".join(f"apps.{self.app}.settings.{p}" for p in problems))

    def _check_unique_columns(self) -> list[str]:
        problems = []
        for rt, store in self.stores.items():
            key = "users" if rt == "User" else "groups"
            if isinstance(store, TableStore):
                continue  # checked against the table's columns
            for unique in store.unique:
                if unique.column not in store.columns:
                    problems.append(f"{key}.unique: search returns no column {unique.column!r}")
        return problems

    async def check(self) -> list[str]:
        """Open (which compares every named table and column with the database), then close."""
        try:
            await self.open()
        except ConfigError as exc:
            prefix = f"apps.{self.app}.settings."
            return [line.removeprefix(prefix) for line in str(exc).splitlines()]
        await self.aclose()
        return []

    async def aclose(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # -- connections and transactions ----------------------------------------------------

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Connection]:
        """A pooled connection, no transaction (start-up checks)."""
        if self._pool is None:
            raise UpstreamUnavailable("the app's database pool is not open", retry_after=1)
        with self._errors(self.config.retry_after):
            conn = await self._pool.acquire(timeout=self.config.pool.acquire_timeout)
            try:
                yield conn
            finally:
                await _release(self._pool, conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One SCIM operation's calls in one transaction (:meth:`gateway.sdk.Adapter.transaction`).

        The calls made inside by this task share one pooled connection and one
        transaction, begun by the first of them with the isolation that call
        uses alone (so an operation without calls takes no connection), and
        open no transaction of their own. The transaction commits when the
        block ends; it rolls back when an exception leaves the block, or when
        one left a call inside (even if the caller caught it: the block then
        raises :class:`UpstreamError`). Entered again inside itself, it joins.
        """
        operations = _OPERATIONS.get()
        if id(self) in operations:
            yield
            return
        operation = _Operation()
        token = _OPERATIONS.set(MappingProxyType({**operations, id(self): operation}))
        try:
            yield
        except BaseException:
            await self._end(operation, commit=False)
            raise
        else:
            await self._end(operation, commit=True)
        finally:
            _OPERATIONS.reset(token)

    async def _end(self, operation: _Operation, *, commit: bool) -> None:
        """Commit or roll back an operation's transaction, and release its connection."""
        if operation.begun is None:
            return  # no call began it
        pool, conn, tx = operation.begun
        try:
            await self._end_transaction(operation, tx, commit=commit)
        finally:
            await _unlock(conn, operation.locks, self.dialect)
            await _release(pool, conn)

    async def _end_transaction(
        self, operation: _Operation, tx: Transaction, *, commit: bool
    ) -> None:
        if not commit or operation.failed:
            with contextlib.suppress(Exception):
                await tx.rollback()
            if commit:
                raise UpstreamError(
                    "a call inside the operation's transaction failed; it was rolled back"
                )
            return
        try:
            with self._errors(self.config.retry_after):
                await tx.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await tx.rollback()
            raise

    @asynccontextmanager
    async def _transaction(
        self,
        *,
        readonly: bool = False,
        isolation: Isolation = "read_committed",
        locks: Sequence[str] = (),
    ) -> AsyncIterator[Connection]:
        """One call's transaction, on a pooled connection; errors mapped (:mod:`.errors`).

        Inside :meth:`transaction`, the operation's connection instead: the
        first call begins its transaction (never read only: writes may follow).

        ``locks`` are advisory locks (keys as ``_check_unique`` names them) taken
        at session level before the transaction begins and released after it
        ends: a REPEATABLE READ snapshot is taken by the first statement, so a
        lock taken inside would be waited for under a snapshot that misses what
        its previous holder committed. A call that joins an operation's
        transaction begun by an earlier call cannot take them first; the
        gateway makes the update the first call of its operations.

        A connection that turns out dead when the transaction begins (the database
        restarted, or closed it) is dropped and another one taken: nothing ran on it
        yet, so this is safe for writes too.
        """
        pool = self._pool
        if pool is None:
            raise UpstreamUnavailable("the app's database pool is not open", retry_after=1)
        retry_after = self.config.retry_after
        operation = _OPERATIONS.get().get(id(self))
        if operation is not None:
            try:
                if operation.begun is None:
                    operation.begun = (pool, *await self._begin(pool, False, isolation, locks))
                    operation.locks = tuple(locks)
                with self._errors(retry_after):
                    yield operation.begun[1]
            except BaseException:
                operation.failed = True
                raise
            return
        conn, tx = await self._begin(pool, readonly, isolation, locks)
        try:
            with self._errors(retry_after):
                yield conn
                await tx.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await tx.rollback()
            raise
        finally:
            await _unlock(conn, locks, self.dialect)
            await _release(pool, conn)

    def _lock_args(self, key: str) -> Sequence[Any]:
        return self.dialect.lock_args(key, self.config.statement_timeout / 1000)

    async def _begin(
        self,
        pool: Any,
        readonly: bool,
        isolation: Isolation,
        locks: Sequence[str] = (),
    ) -> tuple[Any, Any]:
        last: BaseException | None = None
        for _ in range(self.config.pool.max_size + 1):
            try:
                conn = await pool.acquire(timeout=self.config.pool.acquire_timeout)
            except TimeoutError as exc:
                raise UpstreamUnavailable(
                    f"no connection to the database at {self.where} was free or could be "
                    f"opened within {self.config.pool.acquire_timeout:g} s",
                    retry_after=self.config.retry_after,
                ) from exc
            except Exception as exc:
                self._raise_mapped(exc)
            tx = conn.transaction(isolation=isolation, readonly=readonly)
            try:
                for key in locks:  # outside the transaction: before its snapshot
                    await conn.execute(self.dialect.session_lock, *self._lock_args(key))
                await tx.start()
            except BaseException as exc:
                if self._dead(exc):  # a dead pooled connection: nothing ran yet
                    last = exc
                    await _release(pool, conn)
                    continue
                await _unlock(conn, locks, self.dialect)
                await _release(pool, conn)
                self._raise_mapped(exc)
            return conn, tx
        assert last is not None
        self._raise_mapped(last)

    def _errors(self, retry_after: int) -> contextlib.AbstractContextManager[None]:
        """The database's errors as gateway errors (:mod:`.errors`, :mod:`.mysql`)."""
        if self.dialect is MYSQL:
            return mysql.map_mysql_errors(self.where, retry_after)
        return map_db_errors(self.where, retry_after)

    def _dead(self, exc: BaseException) -> bool:
        """A failure of the connection itself, before anything ran on it."""
        if self.dialect is MYSQL:
            return mysql.is_connection_error(exc)
        return isinstance(exc, CONNECTION_ERRORS)

    def _raise_mapped(self, exc: BaseException) -> NoReturn:
        with self._errors(self.config.retry_after):
            raise exc
        raise exc  # not the database's

    # -- helpers -----------------------------------------------------------------------

    def _store(self, resource_type: str) -> Store:
        try:
            return self.stores[resource_type]
        except KeyError:
            raise NotFound(f"this app has no {resource_type} resources") from None

    @staticmethod
    def _key(store: Store, id: str) -> Any:
        """The id as its column's type; an id that cannot be one names no record."""
        try:
            return to_column(id, store.id.type)
        except Unfit:
            raise NotFound(f"no {store.resource_type} {id}") from None

    def _record(self, store: Store, row: Row, refs: Refs | None) -> Record:
        rt = store.resource_type
        data = {name: from_column(row[name]) for name in store.columns if name in row}
        id = str(row[store.id.name])
        created = self.mapping.legacy_field(rt, "meta.created")
        modified = self.mapping.legacy_field(rt, "meta.lastModified")
        record = Record(
            id,
            data,
            created=as_moment(row[created]) if created and created in row else None,
            last_modified=as_moment(row[modified]) if modified and modified in row else None,
        )
        if refs is not None and rt == "Group":
            found = refs.get(id, [])
            if len(found) > self.config.max_members:
                raise UpstreamError(
                    f"group {id} has more than {self.config.max_members} members "
                    "(settings.max_members)"
                )
            record.members = [Ref(value, "User") for value, _ in found]
        elif refs is not None:
            record.groups = [Ref(value, "direct", shown) for value, shown in refs.get(id, [])]
        return record

    async def _refs(self, conn: Connection, rt: str, ids: Sequence[Any]) -> Refs | None:
        if self.membership is None or not ids:
            return None
        if rt == "Group":
            return await self.membership.members(conn, ids, self.config.max_members)
        return await self.membership.groups(conn, ids)

    async def _read(self, conn: Connection, store: Store, key: Any, members: bool = True) -> Record:
        row = await store.get(conn, key)
        if row is None:
            raise NotFound(f"no {store.resource_type} with that id")
        refs = await self._refs(conn, store.resource_type, [key]) if members else None
        return self._record(store, row, refs)

    # -- reading -----------------------------------------------------------------------

    async def get(self, resource_type: str, id: str, *, members: bool = True) -> Record:
        """One record; ``members=False``: without reading a group's members (a user's groups)."""
        store = self._store(resource_type)
        key = self._key(store, id)
        if not members:  # one statement: no snapshot to share, no REPEATABLE READ
            async with self._transaction(readonly=True) as conn:
                return await self._read(conn, store, key, members=False)
        async with self._transaction(readonly=True, isolation="repeatable_read") as conn:
            return await self._read(conn, store, key)

    def build_search(self, query: Query) -> tuple[Store, str, Params, str]:
        """The WHERE clause, its parameters and the ORDER BY of a search (no I/O)."""
        store = self._store(query.resource_type)
        params = Params()
        where = store.where.where(query.filter, params)
        order_by = store.where.order_by(query.sort_by, query.descending, store.id)
        return store, where, params, order_by

    async def search(self, query: Query) -> Page:
        store, where, params, order_by = self.build_search(query)
        limit = max(0, min(query.count, self.capabilities.max_page_size))
        offset = max(0, query.start_index - 1)
        async with self._transaction(readonly=True, isolation="repeatable_read") as conn:
            page = await store.search(
                conn, where, params, order_by, limit, offset, self.config.totals
            )
            keys = [row[store.id.name] for row in page.rows] if query.members else []
            refs = await self._refs(conn, query.resource_type, keys)
        return Page([self._record(store, row, refs) for row in page.rows], page.total)

    async def describe_search(self, query: Query) -> list[LegacyCall]:
        """The page statement :meth:`search` runs and its values (needs the adapter open)."""
        store, where, params, order_by = self.build_search(query)
        limit = max(0, min(query.count, self.capabilities.max_page_size))
        offset = max(0, query.start_index - 1)
        sql = store.search_sql(where, order_by, len(params.values))
        values = [*params.values, *store.search_args(limit, offset)]
        shown = {
            f"${n}": v if isinstance(v, str | int | float | bool | None) else str(v)
            for n, v in enumerate(values, 1)
        }
        return [LegacyCall("SQL", sql, {}, shown)]

    # -- writing -----------------------------------------------------------------------

    def _new_values(self, store: Store, data: dict[str, Any]) -> dict[str, Any]:
        values = dict(data)
        generated = store.section.id.generated if isinstance(store, TableStore) else "database"
        id_name = store.id.name
        if generated == "uuid":
            values[id_name] = str(uuid.uuid4())
        elif generated == "provided":
            if values.get(id_name) in (None, ""):
                raise InvalidValue(
                    f"the mapping gives no {id_name}, which this app needs to create a record"
                )
        else:
            values.pop(id_name, None)
        return values

    async def create(
        self, resource_type: str, data: dict[str, Any], *, members: Sequence[str] = ()
    ) -> Record:
        store = self._store(resource_type)
        values = self._new_values(store, data)
        with _unfit():
            async with self._transaction() as conn:
                await self._check_unique(conn, store, values, None)
                key = await store.insert(conn, values)
                if members:
                    await self._add_members(conn, key, members)
                return await self._read(conn, store, key)

    async def update(
        self,
        resource_type: str,
        id: str,
        changes: dict[str, Any],
        *,
        expected_version: str | None = None,
    ) -> Record:
        store = self._store(resource_type)
        key = self._key(store, id)
        changes = {k: v for k, v in changes.items() if k != store.id.name}
        isolation: Isolation = (
            "repeatable_read" if isinstance(store, StatementStore) else "read_committed"
        )
        with _unfit():
            # REPEATABLE READ (the row read and merged must be the row written):
            # the unique values' locks are taken before its snapshot.
            locks = self._unique_locks(store, changes) if isolation == "repeatable_read" else []
            async with self._transaction(isolation=isolation, locks=locks) as conn:
                await self._check_unique(conn, store, changes, key)
                if not await store.update(conn, key, changes):
                    raise NotFound(f"no {resource_type} with that id")
                return await self._read(conn, store, key)

    async def delete(
        self, resource_type: str, id: str, *, expected_version: str | None = None
    ) -> None:
        store = self._store(resource_type)
        key = self._key(store, id)
        async with self._transaction() as conn:
            if isinstance(self.membership, TableMembership):
                if resource_type == "User":
                    await self.membership.forget_member(conn, key)
                else:
                    await self.membership.forget_group(conn, key)
            if not await store.delete(conn, key):
                raise NotFound(f"no {resource_type} with that id")

    def _uniques(self, store: Store) -> list[UniqueColumn]:
        """The store's unique columns; a group's name column too while unique_group_names."""
        found = list(store.unique)
        if store.resource_type == "Group" and self.unique_group_names:
            name = self.mapping.legacy_field("Group", "displayname")
            if name and name in store.columns and all(u.column != name for u in found):
                found.append(UniqueColumn(column=name))
        return found

    def _unique_values(
        self, store: Store, values: dict[str, Any]
    ) -> Iterator[tuple[UniqueColumn, Column, Any, str]]:
        """Each unique column ``values`` sets: the column, the bound value, its lock key."""
        for unique in self._uniques(store):
            value = values.get(unique.column)
            if value is None or value == "":
                continue
            column = store.columns[unique.column]
            bound = to_column(value, column.type)
            lock = f"scim-gateway:{store.resource_type}:{unique.column}:{str(bound).lower()}"
            yield unique, column, bound, lock

    def _unique_locks(self, store: Store, values: dict[str, Any]) -> list[str]:
        return [lock for *_, lock in self._unique_values(store, values)]

    async def _check_unique(
        self, conn: Connection, store: Store, values: dict[str, Any], own: Any
    ) -> None:
        """Refuse a value a unique column already holds in another row (under a lock).

        The count takes its snapshot after the lock is granted (READ COMMITTED), or
        the lock was taken before the transaction began (``_transaction(locks=)``):
        either way it sees the rows the lock's previous holder committed.
        """
        for unique, column, bound, lock in self._unique_values(store, values):
            folded = unique.ignore_case and column.is_text
            if isinstance(conn, mysql.Connection):  # GET_LOCK, released when it ends
                await conn.xact_lock(*self._lock_args(lock))
            else:
                await conn.execute(self.dialect.xact_lock, *self._lock_args(lock))
            params = Params()
            right = params.add(bound)
            where = f"lower({column.sql}) = lower({right})" if folded else f"{column.sql} = {right}"
            if own is not None:
                where += f" AND {store.id.sql} <> {params.add(own)}"
            if await store.count(conn, where, params) > 0:
                case = " (ignoring case)" if folded else ""
                raise Conflict(
                    f"another {store.resource_type.lower()} already holds that value of "
                    f"{unique.column}{case}"
                )

    # -- membership --------------------------------------------------------------------

    def _groups(self) -> tuple[Store, Membership]:
        store = self._store("Group")
        if self.membership is None:
            raise NotFound("this app keeps no group members")
        return store, self.membership

    def _member_keys(self, membership: Membership, member_ids: Sequence[str]) -> list[Any]:
        keys = []
        for member in dict.fromkeys(member_ids):
            try:
                keys.append(to_column(member, membership.member_type))
            except Unfit:
                raise InvalidValue(f"{member} is not a member id of this app") from None
        return keys

    async def _add_members(
        self, conn: Connection, group_key: Any, member_ids: Sequence[str]
    ) -> None:
        _, membership = self._groups()
        keys = self._member_keys(membership, member_ids)
        missing = await membership.missing_users(conn, keys)
        if missing:
            raise InvalidValue(f"no user with id {', '.join(missing[:10])}")
        await membership.add(conn, group_key, keys)

    async def _touch_group(self, conn: Connection, store: Store, key: Any) -> None:
        found = (
            await store.touch(conn, key)
            if isinstance(store, TableStore)
            else await store.get(conn, key) is not None
        )
        if not found:
            raise NotFound("no group with that id")

    async def add_members(self, group_id: str, member_ids: list[str]) -> None:
        store, _ = self._groups()
        key = self._key(store, group_id)
        async with self._transaction() as conn:
            await self._touch_group(conn, store, key)
            await self._add_members(conn, key, member_ids)

    async def remove_members(self, group_id: str, member_ids: list[str]) -> None:
        store, membership = self._groups()
        key = self._key(store, group_id)
        keys = []
        for member in dict.fromkeys(member_ids):
            with contextlib.suppress(Unfit):  # not an id of this app: not a member either
                keys.append(to_column(member, membership.member_type))
        async with self._transaction() as conn:
            await self._touch_group(conn, store, key)
            if keys:
                await membership.remove(conn, key, keys)


async def _unlock(conn: Connection, locks: Sequence[str], dialect: Dialect) -> None:
    """Release session-level advisory locks (a broken connection has lost them anyway)."""
    with contextlib.suppress(Exception):
        for key in locks:
            await conn.execute(dialect.session_unlock, *dialect.unlock_args(key))


async def _release(pool: Any, conn: Any) -> None:
    with contextlib.suppress(Exception):  # a broken connection is closed by the pool
        await pool.release(conn)


@contextlib.contextmanager
def _unfit() -> Iterator[None]:
    """A value the mapping gave that its column cannot hold: 400, naming the field."""
    try:
        yield
    except Unfit as exc:
        raise InvalidValue(f"a value does not fit its column: {exc}") from exc


def _describe_dsn(dsn: str) -> str:
    """``host:port/database`` of a DSN, for messages; never the user or password."""
    try:
        parts = urlsplit(dsn)
        host = parts.hostname or "localhost"
        port = parts.port or dialect_of(dsn).default_port
    except ValueError:
        return "the configured DSN"
    database = parts.path.lstrip("/") or "(default database)"
    return f"{host}:{port}/{database}"
