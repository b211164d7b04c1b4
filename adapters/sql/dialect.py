"""What differs between PostgreSQL and MySQL/MariaDB, in one place.

The adapter builds its statements once, with ``$n`` placeholders and the
helpers here for everything the two servers spell differently:

==================  ==================================  ======================================
                    PostgreSQL (asyncpg)                MySQL / MariaDB (asyncmy)
==================  ==================================  ======================================
quoting             ``"name"``                          `` `name` ``
placeholders        ``$n``                              ``$n`` rewritten to ``%s`` per call
LIKE escaping       ``ESCAPE '\\'``                     ``ESCAPE '\\\\'`` (backslash escapes)
text of a value     ``(x)::text``                       ``CAST(x AS CHAR)``
new row's id        ``INSERT ... RETURNING id``         the insert id (or the id given)
shared row lock     ``FOR KEY SHARE``                   ``LOCK IN SHARE MODE``
idempotent insert   ``ON CONFLICT DO NOTHING``          ``ON DUPLICATE KEY UPDATE g = g``
arrays of ids       ``unnest($1::int4[])``, ``ANY()``    one placeholder per id (``IN (...)``)
unique-value lock   ``pg_advisory_xact_lock``           ``GET_LOCK``, released at the end
isolation           ``BEGIN ISOLATION LEVEL ...``       ``SET TRANSACTION ISOLATION LEVEL``
catalog             information_schema, ``udt_name``    information_schema, ``COLUMN_TYPE``
row estimate        ``pg_class.reltuples``              ``information_schema.TABLES.TABLE_ROWS``
==================  ==================================  ======================================

:mod:`adapters.sql.mysql` holds the MySQL connection, pool, errors and
membership statements; the PostgreSQL ones are asyncpg's own and
:mod:`adapters.sql.table`'s.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from adapters.sql.sqltext import quote_ident

__all__ = ["MYSQL", "POSTGRES", "Dialect", "dialect_of"]


@dataclass(frozen=True)
class Dialect:
    name: str
    #: The server's name in messages.
    server: str
    default_port: int

    def quote(self, name: str) -> str:
        """A plain name quoted (names needing escapes are refused, as in :func:`quote_ident`)."""
        quoted = quote_ident(name)
        return quoted if self.name == "postgresql" else f"`{quoted[1:-1]}`"

    def qualified(self, schema: str | None, name: str) -> str:
        return f"{self.quote(schema)}.{self.quote(name)}" if schema else self.quote(name)

    @property
    def like_escape(self) -> str:
        """The ESCAPE clause for patterns escaped by :func:`adapters.sql.filters.escape_like`."""
        return "ESCAPE '\\'" if self.name == "postgresql" else "ESCAPE '\\\\'"

    def as_text(self, sql: str) -> str:
        return f"({sql})::text" if self.name == "postgresql" else f"CAST({sql} AS CHAR)"

    @property
    def share_lock(self) -> str:
        return "FOR KEY SHARE" if self.name == "postgresql" else "LOCK IN SHARE MODE"

    def lock_name(self, key: str) -> str:
        """MySQL lock names are at most 64 characters: a digest of the key."""
        return (
            key if self.name == "postgresql" else "scimgw:" + hashlib.sha1(key.encode()).hexdigest()
        )

    @property
    def xact_lock(self) -> str:
        """Takes the lock of ``$1`` until the transaction ends (MySQL: see mysql.Transaction)."""
        if self.name == "postgresql":
            return "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
        return "SELECT GET_LOCK($1, $2)"

    @property
    def session_lock(self) -> str:
        if self.name == "postgresql":
            return "SELECT pg_advisory_lock(hashtextextended($1, 0))"
        return "SELECT GET_LOCK($1, $2)"

    @property
    def session_unlock(self) -> str:
        if self.name == "postgresql":
            return "SELECT pg_advisory_unlock(hashtextextended($1, 0))"
        return "SELECT RELEASE_LOCK($1)"

    def lock_args(self, key: str, timeout: float) -> Sequence[Any]:
        """The values of the lock statements: the key (and MySQL's wait in seconds)."""
        name = self.lock_name(key)
        return [name] if self.name == "postgresql" else [name, max(1, round(timeout))]

    def unlock_args(self, key: str) -> Sequence[Any]:
        return [self.lock_name(key)]


POSTGRES = Dialect("postgresql", "PostgreSQL", 5432)
MYSQL = Dialect("mysql", "MySQL/MariaDB", 3306)


def dialect_of(dsn: str) -> Dialect:
    """The dialect of a DSN by its scheme: ``postgresql://``, ``mysql://`` or ``mariadb://``."""
    return MYSQL if dsn.startswith(("mysql://", "mariadb://")) else POSTGRES
