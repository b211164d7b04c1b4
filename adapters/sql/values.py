"""Values between the mapping (JSON-like) and PostgreSQL columns, both ways.

A mapping renders strings, numbers, booleans and ISO dates; asyncpg wants the
Python type of each column (an ``int`` for ``integer``, a ``date`` for
``date``). :func:`to_column` converts by the column's type and raises
:class:`Unfit` when a value cannot be one (the caller decides: 400 on a write,
"matches nothing" in a filter). :func:`from_column` turns what asyncpg reads
back into JSON-like values (dates as ISO text, UUIDs as text).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["Column", "Unfit", "from_column", "to_column"]

TEXT_TYPES = frozenset({"text", "varchar", "bpchar", "char", "name", "citext"})
INT_TYPES = frozenset({"int2", "int4", "int8", "smallint", "integer", "bigint"})
FLOAT_TYPES = frozenset({"float4", "float8"})
TIME_TYPES = frozenset({"timestamp", "timestamptz"})


class Unfit(ValueError):
    """A value that cannot be stored in (or compared with) a column of that type."""


@dataclass(frozen=True, slots=True)
class Column:
    """A column (or a statement's output field) as the adapter uses it.

    ``sql`` is what a generated clause writes for it (the quoted name, or an
    expression from statement-mode ``columns``); ``type`` the type's name as
    PostgreSQL spells it in ``pg_type`` (``int4``, ``varchar``, ``int4[]``).
    """

    name: str
    sql: str
    type: str
    nullable: bool = True
    has_default: bool = False
    #: Characters a text column holds at most (varchar(n), char(n)); None: no limit known.
    max_length: int | None = None

    @property
    def is_text(self) -> bool:
        return self.type in TEXT_TYPES

    @property
    def element(self) -> str:
        """The element type of an array column; the type itself otherwise."""
        return self.type[:-2] if self.type.endswith("[]") else self.type.lstrip("_")


def to_column(value: Any, type_name: str) -> Any:
    """``value`` as asyncpg binds it for a column of ``type_name``; None stays None."""
    if value is None:
        return None
    if type_name.endswith("[]"):
        if not isinstance(value, list | tuple):
            raise Unfit("an array column needs a list")
        return [to_column(v, type_name[:-2]) for v in value]
    try:
        return _convert(value, type_name)
    except (ValueError, TypeError, InvalidOperation, OverflowError):
        raise Unfit(f"not a value for a {type_name} column") from None


def _convert(value: Any, type_name: str) -> Any:
    if type_name in TEXT_TYPES:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float | Decimal):
            return str(value)
        raise Unfit("text needs a scalar")
    if type_name in INT_TYPES:
        if isinstance(value, bool):
            raise Unfit("a boolean is no number")
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            number = int(value.strip())
        else:
            raise Unfit("not an integer")
        limit = {"int2": 2**15, "smallint": 2**15, "int4": 2**31, "integer": 2**31}.get(
            type_name, 2**63
        )
        if not -limit <= number < limit:
            raise Unfit("out of range")
        return number
    if type_name == "bool":
        if isinstance(value, bool):
            return value
        words = {"true": True, "false": False, "t": True, "f": False}
        if isinstance(value, str) and value.lower() in words:
            return words[value.lower()]
        raise Unfit("not a boolean")
    if type_name in FLOAT_TYPES:
        if isinstance(value, bool):
            raise Unfit("a boolean is no number")
        return float(value)
    if type_name == "numeric":
        if isinstance(value, bool):
            raise Unfit("a boolean is no number")
        return Decimal(str(value))
    if type_name == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        return dt.date.fromisoformat(str(value)[:10])
    if type_name in TIME_TYPES:
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
        if type_name == "timestamptz" and moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        if type_name == "timestamp" and moment.tzinfo is not None:
            return moment.astimezone(dt.UTC).replace(tzinfo=None)
        return moment
    if type_name == "uuid":
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    if type_name in ("json", "jsonb"):
        return json.dumps(value)
    # Enums, domains and the rest: their text form, which PostgreSQL parses.
    if isinstance(value, dict | list):
        raise Unfit("a structured value")
    return str(value)


def from_column(value: Any) -> Any:
    """A value asyncpg read, as the mapping sees it (JSON-like)."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [from_column(v) for v in value]
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def as_moment(value: Any) -> dt.datetime | None:
    """A timestamp column's value as an aware datetime (for meta.created/lastModified)."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None
