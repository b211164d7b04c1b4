"""MySQL and MariaDB for the SQL adapter, through asyncmy.

asyncmy is the asyncio driver with the most use and the newest releases (a
Cython build of PyMySQL's protocol, with its own pool and typed stubs);
aiomysql is pure Python on PyMySQL and releases less often.

The adapter talks to every server through the few calls asyncpg offers
(``fetch``, ``fetchrow``, ``fetchval``, ``execute``, ``transaction``), so
:class:`Connection` offers the same over an asyncmy connection: ``$n``
placeholders become ``%s`` (values reordered to match), rows read by name or
position, ``execute`` answers a status such as ``UPDATE 1`` (with
CLIENT.FOUND_ROWS: rows matched, not only changed), ``TINYINT(1)`` reads as a
boolean. Every connection runs in UTC, strict mode (a value too long is an
error, never cut) and, on MariaDB, with ``max_statement_time``.

Errors become gateway errors in :func:`map_mysql_errors`, never quoting the
server's message (which may hold the row's values).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncmy
from asyncmy import errors as my
from asyncmy.constants import CLIENT
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from adapters.sql.dialect import MYSQL
from adapters.sql.values import Column
from gateway import telemetry
from gateway.sdk import Conflict, InvalidValue, UpstreamError, UpstreamTimeout, UpstreamUnavailable

__all__ = [
    "CONNECTION_ERRORS",
    "Connection",
    "Pool",
    "Row",
    "chunks",
    "connect",
    "estimate",
    "ids_table",
    "instrument",
    "is_connection_error",
    "map_mysql_errors",
    "placeholders",
    "read_columns",
    "tracing_on",
    "translate",
]

_PLACEHOLDER = re.compile(r"\$(\d+)")
#: Field types of asyncmy's cursor description (MySQL protocol numbers).
_TINY = 1
#: Lost or refused connections: 2003 cannot connect, 2006 gone away, 2013 lost during a
#: query, 1040 too many connections, 1045 access denied, 1927 killed, 4031 idle timeout.
_CONNECTION_CODES = frozenset({1040, 1045, 1053, 1927, 2002, 2003, 2006, 2013, 2055, 4031})

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, my.InterfaceError)


#: Set by :func:`instrument`: every statement is then a CLIENT span (its SQL text with
#: ``$n`` placeholders, never a value), as asyncpg's instrumentation makes them.
_TRACER: Any = None


def instrument() -> None:
    """Trace every MySQL statement from now on (the adapter calls it when tracing is on)."""
    global _TRACER
    _TRACER = trace.get_tracer("scim_gateway.sql.mysql")


def tracing_on() -> bool:
    """Whether the gateway traces (gateway.telemetry: ``serve`` with OTEL_* tracing)."""
    return telemetry.TRACER is not None


def translate(sql: str, args: Sequence[Any]) -> tuple[str, list[Any]]:
    """``$n`` placeholders as ``%s``, with the values in the order they appear."""
    order: list[int] = []

    def one(match: re.Match[str]) -> str:
        order.append(int(match.group(1)) - 1)
        return "%s"

    text = _PLACEHOLDER.sub(one, sql.replace("%", "%%"))
    return text, [args[i] for i in order]


class Row(dict[str, Any]):
    """A row read by column name (``row["emp_no"]``) or position (``row[0]``), as asyncpg's."""

    __slots__ = ("_values",)

    def __init__(self, names: Sequence[str], values: Sequence[Any]) -> None:
        super().__init__(zip(names, values, strict=True))
        self._values = tuple(values)

    def __getitem__(self, key: str | int) -> Any:
        return self._values[key] if isinstance(key, int) else super().__getitem__(key)


def _rows(description: Sequence[Any] | None, raw: Sequence[Sequence[Any]]) -> list[Row]:
    if not description:
        return []
    names = [d[0] for d in description]
    flags = [d[1] == _TINY and d[3] == 1 for d in description]  # TINYINT(1): a boolean
    return [
        Row(names, [bool(v) if f and v is not None else v for v, f in zip(r, flags, strict=True)])
        for r in raw
    ]


class Transaction:
    """START TRANSACTION with the isolation asked; GET_LOCK locks it took end with it."""

    def __init__(self, conn: Connection, isolation: str, readonly: bool) -> None:
        self.conn, self.isolation, self.readonly = conn, isolation, readonly

    async def start(self) -> None:
        level = "REPEATABLE READ" if self.isolation == "repeatable_read" else "READ COMMITTED"
        if self.conn.level != level:  # the session's level: one round trip saved per call
            await self.conn.execute(f"SET SESSION TRANSACTION ISOLATION LEVEL {level}")
            self.conn.level = level
        await self.conn.execute("START TRANSACTION READ ONLY" if self.readonly else "BEGIN")

    async def commit(self) -> None:
        try:
            await self.conn.execute("COMMIT")
        finally:
            await self.conn.release_xact_locks()

    async def rollback(self) -> None:
        try:
            await self.conn.execute("ROLLBACK")
        finally:
            await self.conn.release_xact_locks()


class Connection:
    """An asyncmy connection with the calls the adapter makes of asyncpg's."""

    def __init__(self, raw: asyncmy.Connection) -> None:
        self.raw = raw
        #: The insert id of the last statement (AUTO_INCREMENT).
        self.lastrowid: int | None = None
        #: GET_LOCK names taken for the current transaction.
        self.xact_locks: list[str] = []
        #: The session's isolation level, once this wrapper set it.
        self.level = ""

    async def _run(self, sql: str, args: Sequence[Any]) -> tuple[list[Row], int, str]:
        if _TRACER is None:  # tracing off: no OpenTelemetry call at all
            return await self._send(sql, args)
        verb = sql.split(None, 1)[0].upper() if sql.strip() else "SQL"
        attributes = {"db.system": "mysql", "db.statement": sql}  # placeholders, no values
        with _TRACER.start_as_current_span(verb, kind=SpanKind.CLIENT, attributes=attributes):
            return await self._send(sql, args)

    async def _send(self, sql: str, args: Sequence[Any]) -> tuple[list[Row], int, str]:
        text, values = translate(sql, args)
        async with self.raw.cursor() as cursor:
            await cursor.execute(text, values)
            raw = await cursor.fetchall() if cursor.description else ()
            self.lastrowid = cursor.lastrowid
            count: int = cursor.rowcount  # type: ignore[assignment]
            return _rows(cursor.description, raw or ()), count, text

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        return (await self._run(sql, args))[0]

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        rows = await self.fetch(sql, *args)
        return rows[0] if rows else None

    async def fetchval(self, sql: str, *args: Any) -> Any:
        row = await self.fetchrow(sql, *args)
        return None if row is None else row[0]

    async def execute(self, sql: str, *args: Any) -> str:
        """The statement's verb and the rows it matched (``UPDATE 1``), as asyncpg says it."""
        _, count, text = await self._run(sql, args)
        verb = text.split(None, 1)[0].upper() if text.strip() else ""
        return f"{verb} {max(count, 0)}"

    async def xact_lock(self, name: str, wait: int) -> None:
        """GET_LOCK for the rest of the transaction (MySQL has no transaction-level lock)."""
        got = await self.fetchval("SELECT GET_LOCK($1, $2)", name, wait)
        if got != 1:
            raise UpstreamUnavailable(
                "another write of the same unique value held its lock too long", retry_after=1
            )
        self.xact_locks.append(name)

    async def release_xact_locks(self) -> None:
        names, self.xact_locks = self.xact_locks, []
        for name in names:
            await self.fetchval("SELECT RELEASE_LOCK($1)", name)

    def transaction(
        self, *, isolation: str = "read_committed", readonly: bool = False
    ) -> Transaction:
        return Transaction(self, isolation, readonly)

    async def prepare(self, sql: str) -> Any:
        raise UpstreamError("statement mode needs PostgreSQL; use table mode on MySQL/MariaDB")

    async def close(self) -> None:
        self.raw.close()


class Pool:
    """asyncmy's pool, handing out :class:`Connection` objects."""

    def __init__(self, pool: Any, acquire_timeout: float) -> None:
        self._pool = pool
        self._timeout = acquire_timeout
        #: One wrapper per pooled connection, so what it knows of its session (the
        #: isolation level it set) lives as long as the session.
        self._wrappers: dict[Any, Connection] = {}

    @classmethod
    async def create(
        cls,
        dsn: str,
        *,
        min_size: int,
        max_size: int,
        connect_timeout: float,
        statement_timeout_ms: int,
        max_idle: float,
        acquire_timeout: float,
    ) -> Pool:
        pool = await asyncio.wait_for(
            asyncmy.create_pool(
                minsize=min_size,
                maxsize=max_size,
                pool_recycle=int(max_idle) if max_idle else -1,
                autocommit=True,
                client_flag=CLIENT.FOUND_ROWS,
                connect_timeout=max(1, round(connect_timeout)),
                init_command=session_setup(statement_timeout_ms),
                charset="utf8mb4",
                **connect_args(dsn),
            ),
            timeout=connect_timeout + 1,
        )
        return cls(pool, acquire_timeout)

    async def acquire(self, *, timeout: float | None = None) -> Connection:  # noqa: ASYNC109
        raw = await asyncio.wait_for(self._pool.acquire(), timeout or self._timeout)
        conn = self._wrappers.get(raw)
        if conn is None:  # a new connection (or one the pool opened again): a new wrapper
            self._wrappers = {r: c for r, c in self._wrappers.items() if r.connected}
            conn = self._wrappers[raw] = Connection(raw)
        return conn

    async def release(self, conn: Connection) -> None:
        if conn.xact_locks:  # a transaction that never ended: its locks go with the session
            conn.raw.close()
        self._pool.release(conn.raw)

    async def close(self) -> None:
        self._pool.close()
        await self._pool.wait_closed()


def session_setup(statement_timeout_ms: int) -> str:
    """Every connection: UTC, strict values, and (MariaDB only: ``/*M!``) a statement timeout."""
    seconds = max(statement_timeout_ms / 1000, 0.001)
    return (
        "SET time_zone = '+00:00', sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,"
        "NO_ZERO_IN_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'"
        f" /*M!, max_statement_time = {seconds:g} */"
    )


def connect_args(dsn: str) -> dict[str, Any]:
    """``mysql://user:password@host:port/database`` (``mariadb://`` too) as asyncmy's arguments."""
    parts = urlsplit(dsn)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or MYSQL.default_port,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "db": parts.path.lstrip("/") or None,
    }


async def connect(dsn: str) -> Connection:
    """One connection of its own (tests, scripts), autocommit, set up as the pool's are."""
    raw = await asyncmy.connect(
        autocommit=True,
        client_flag=CLIENT.FOUND_ROWS,
        init_command=session_setup(60_000),
        charset="utf8mb4",
        **connect_args(dsn),
    )
    return Connection(raw)


# -- the catalog -------------------------------------------------------------------------

_COLUMNS = """
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE = 'YES',
       (COLUMN_DEFAULT IS NOT NULL AND COLUMN_DEFAULT <> 'NULL')
           OR INSTR(EXTRA, 'auto_increment') > 0,
       CHARACTER_MAXIMUM_LENGTH
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = $1 AND TABLE_NAME = $2
ORDER BY ORDINAL_POSITION
"""
#: MySQL's types as the adapter names them (PostgreSQL's pg_type names, values.py).
_TYPES = {
    "int": "int4",
    "integer": "int4",
    "mediumint": "int4",
    "smallint": "int2",
    "bigint": "int8",
    "varchar": "varchar",
    "char": "bpchar",
    "tinytext": "text",
    "text": "text",
    "mediumtext": "text",
    "longtext": "text",
    "enum": "varchar",
    "set": "varchar",
    "datetime": "timestamp",
    "timestamp": "timestamp",
    "date": "date",
    "decimal": "numeric",
    "double": "float8",
    "float": "float4",
    "json": "text",
}


def _type(data_type: str, column_type: str) -> str:
    if data_type == "tinyint":
        return "bool" if column_type.lower().startswith("tinyint(1)") else "int2"
    return _TYPES.get(data_type.lower(), data_type.lower())


async def read_columns(conn: Connection, schema: str, table: str) -> dict[str, Column]:
    """The table's columns by name (empty when there is no such table or view)."""
    rows = await conn.fetch(_COLUMNS, schema, table)
    return {
        r[0]: Column(
            r[0],
            MYSQL.quote(r[0]),
            _type(r[1], r[2]),
            bool(r[3]),
            bool(r[4]),
            int(r[5]) if r[5] is not None else None,
        )
        for r in rows
    }


async def estimate(conn: Connection, schema: str, table: str) -> int | None:
    found = await conn.fetchval(
        "SELECT TABLE_ROWS FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = $1 AND TABLE_NAME = $2",
        schema,
        table,
    )
    return None if found is None else int(found)


# -- errors --------------------------------------------------------------------------------

_KEY = re.compile(r"for key '([^']+)'")
_CONSTRAINT = re.compile(r"CONSTRAINT `([^`]+)`|[Cc]heck constraint '([^']+)'")
_COLUMN = re.compile(r"[Cc]olumn '([^']+)'|Field '([^']+)'")


def _found(pattern: re.Pattern[str], message: str) -> str:
    """A name (constraint, key, column) out of the server's message; never the values."""
    match = pattern.search(message)
    return next((g for g in match.groups() if g), "(unnamed)") if match else "(unnamed)"


@contextmanager
def map_mysql_errors(where: str, retry_after: int) -> Iterator[None]:
    """Translate what asyncmy raises while talking to the database ``where`` (host:port/db)."""
    try:
        yield
    except my.MySQLError as exc:
        code, message = _code(exc)
        raise _mapped(code, message, where, retry_after) from exc
    except TimeoutError as exc:
        raise UpstreamTimeout(f"the database at {where} did not answer in time") from exc
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise UpstreamUnavailable(
            f"cannot reach the database at {where} ({reason})", retry_after=retry_after
        ) from exc


def _code(exc: BaseException) -> tuple[int, str]:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    code = args[0] if args and isinstance(args[0], int) else 0
    message = str(args[1]) if len(args) > 1 else ""
    return code, message


def _mapped(code: int, message: str, where: str, retry_after: int) -> Exception:
    if code == 1062:
        return Conflict(
            f"the database already holds a record with that value "
            f"(unique constraint {_found(_KEY, message)})"
        )
    if code in (1451, 1452):
        return InvalidValue(
            "the database refused the change: it refers to a record that does not exist, "
            f"or is still referred to (foreign key {_found(_CONSTRAINT, message)})"
        )
    if code in (3819, 4025):
        return InvalidValue(
            f"the database refused a value (check constraint {_found(_CONSTRAINT, message)})"
        )
    if code in (1048, 1364):
        return InvalidValue(
            f"the database needs a value for column {_found(_COLUMN, message)} (it is NOT NULL)"
        )
    if code == 1406:
        return InvalidValue(
            f"a value does not fit its column: column {_found(_COLUMN, message)} is too short"
        )
    if code in (1264, 1265, 1292, 1366, 1367, 3140):
        return InvalidValue(f"a value does not fit its column (MySQL error {code})")
    if code in (1969, 3024):
        return UpstreamTimeout(
            f"the database at {where} did not finish the statement in time (statement_timeout)"
        )
    if code in (1205, 1213):
        return UpstreamUnavailable(
            f"the database rolled the change back to resolve a conflict (MySQL error {code})",
            retry_after=1,
        )
    if code in _CONNECTION_CODES or code >= 2000:
        return UpstreamUnavailable(
            f"cannot reach the database at {where} (MySQL error {code})", retry_after=retry_after
        )
    if code in (1044, 1142, 1143, 1227):
        return UpstreamError(
            f"the database refused the gateway's user a privilege (MySQL error {code})"
        )
    return UpstreamError(f"the database failed a statement (MySQL error {code})")


def is_connection_error(exc: BaseException) -> bool:
    """A failure of the connection itself (a dead pooled connection: nothing ran)."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    return isinstance(exc, my.OperationalError) and _code(exc)[0] in _CONNECTION_CODES


# -- membership ----------------------------------------------------------------------------


def placeholders(first: int, count: int) -> str:
    """``$first, $first+1, ...``: one placeholder per id (MySQL has no arrays)."""
    return ", ".join(f"${n}" for n in range(first, first + count))


def chunks(values: Sequence[Any], size: int = 1000) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def ids_table(first: int, count: int) -> str:
    """A derived table ``x(v)`` of ``count`` bound values."""
    rows = " UNION ALL ".join(f"SELECT ${n} AS v" for n in range(first, first + count))
    return f"({rows}) AS x"
