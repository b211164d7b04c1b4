"""Where the database's failures become gateway errors: the one place (STYLE habit 5).

    unique violation (23505)              -> Conflict 409 uniqueness, naming the constraint
    foreign key, check, not null, exclusion (23xxx)
                                          -> InvalidValue 400, naming the constraint or column
    a value the column cannot take (22xxx)
                                          -> InvalidValue 400, naming the kind of problem
    statement timeout (57014), client-side timeout
                                          -> UpstreamTimeout 504
    cannot connect, connection lost, server shutting down or starting (08xxx, 57P0x),
    too many connections (53300), no free pooled connection in time
                                          -> UpstreamUnavailable 503 with Retry-After
    serialization failure, deadlock (40xxx) -> UpstreamUnavailable 503, Retry-After 1
    anything else from PostgreSQL          -> UpstreamError 502 with its SQLSTATE

Details name constraints, columns and SQLSTATEs, never a value: PostgreSQL's
own messages may quote the row (``Key (logon_name)=(bjensen) already
exists``), so they are not passed on. The original exception is chained.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

from gateway.sdk import Conflict, InvalidValue, UpstreamError, UpstreamTimeout, UpstreamUnavailable

__all__ = ["CONNECTION_ERRORS", "map_db_errors"]

#: Failures of the connection itself: nothing ran, or the outcome is unknown.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.TooManyConnectionsError,
)


@contextmanager
def map_db_errors(where: str, retry_after: int) -> Iterator[None]:
    """Translate what asyncpg raises while talking to the database ``where`` (host:port/db)."""
    try:
        yield
    except asyncpg.UniqueViolationError as exc:
        raise Conflict(
            f"the database already holds a record with that value "
            f"(unique constraint {_name(exc.constraint_name)})"
        ) from exc
    except asyncpg.ForeignKeyViolationError as exc:
        raise InvalidValue(
            f"the database refused the change: it refers to a record that does not exist, "
            f"or is still referred to (foreign key {_name(exc.constraint_name)})"
        ) from exc
    except asyncpg.CheckViolationError as exc:
        raise InvalidValue(
            f"the database refused a value (check constraint {_name(exc.constraint_name)})"
        ) from exc
    except asyncpg.NotNullViolationError as exc:
        raise InvalidValue(
            f"the database needs a value for column {_name(exc.column_name)} (it is NOT NULL)"
        ) from exc
    except asyncpg.exceptions.ExclusionViolationError as exc:
        raise Conflict(
            f"the database refused a conflicting record "
            f"(exclusion constraint {_name(exc.constraint_name)})"
        ) from exc
    except asyncpg.exceptions.IntegrityConstraintViolationError as exc:
        raise InvalidValue(f"the database refused the change (SQLSTATE {exc.sqlstate})") from exc
    except asyncpg.DataError as exc:
        kind = type(exc).__name__.removesuffix("Error")
        raise InvalidValue(
            f"a value does not fit its column ({_words(kind)}, SQLSTATE {exc.sqlstate})"
        ) from exc
    except asyncpg.QueryCanceledError as exc:
        raise UpstreamTimeout(
            f"the database at {where} did not finish the statement in time (statement_timeout)"
        ) from exc
    except TimeoutError as exc:
        raise UpstreamTimeout(f"the database at {where} did not answer in time") from exc
    except asyncpg.exceptions.TransactionRollbackError as exc:
        raise UpstreamUnavailable(
            f"the database rolled the change back to resolve a conflict (SQLSTATE {exc.sqlstate})",
            retry_after=1,
        ) from exc
    except CONNECTION_ERRORS as exc:
        raise UpstreamUnavailable(
            f"cannot reach the database at {where} ({_reason(exc)})", retry_after=retry_after
        ) from exc
    except asyncpg.InsufficientPrivilegeError as exc:
        raise UpstreamError(
            f"the database refused the gateway's role a privilege (SQLSTATE {exc.sqlstate})"
        ) from exc
    except asyncpg.PostgresError as exc:
        raise UpstreamError(
            f"the database failed a statement ({_words(type(exc).__name__)}, "
            f"SQLSTATE {exc.sqlstate})"
        ) from exc


def _name(value: str | None) -> str:
    return value or "(unnamed)"


def _words(class_name: str) -> str:
    """``StringDataRightTruncation`` -> ``string data right truncation``."""
    out: list[str] = []
    for ch in class_name.removesuffix("Error"):
        if ch.isupper() and out:
            out.append(" ")
        out.append(ch.lower())
    return "".join(out)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, asyncpg.PostgresError):
        return f"{_words(type(exc).__name__)}, SQLSTATE {exc.sqlstate}"
    if isinstance(exc, asyncpg.InterfaceError):
        return "the connection was closed"
    if isinstance(exc, OSError):
        return (exc.strerror or type(exc).__name__).lower()
    return type(exc).__name__
