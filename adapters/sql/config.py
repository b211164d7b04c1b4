"""The SQL adapter's settings: one pydantic model per part of the ``settings:`` section.

Every key is described in docs/sql-adapter.md (a test checks it). ``dsn`` is a
secret: write it as a reference (``${env:PAYROLL_DSN}``, ``${file:/run/secrets/dsn}``);
it is resolved once at start-up into a :class:`pydantic.SecretStr` and never
printed, logged or put in an error message.

Per resource type, either

* ``mode: table``: the adapter writes the statements itself, over one table
  whose columns the mapping's fields name; or
* ``mode: statements``: one SQL statement per operation, with named
  parameters (``:id``, ``:logon_name``) that are always bound, never spliced.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from gateway.config import resolve_secret

__all__ = [
    "GroupStatements",
    "GroupTable",
    "IdColumn",
    "Members",
    "Pool",
    "SqlSettings",
    "UniqueColumn",
    "UserStatements",
    "UserTable",
    "ValueMap",
]

#: A plain SQL identifier as configured: a table, schema or column name. Quoting
#: happens in the adapter (:func:`adapters.sql.sqltext.quote_ident`); these names are
#: also checked against information_schema when the adapter opens.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def _resolve(value: Any) -> Any:
    return resolve_secret(value) if isinstance(value, str) else value


def _name(value: str) -> str:
    if not NAME.fullmatch(value) or len(value) > 63:
        raise ValueError(
            "must be a plain SQL name (letters, digits, '_' or '$', not starting with a digit, "
            "at most 63 characters)"
        )
    return value


Secret = Annotated[SecretStr, BeforeValidator(_resolve)]
Name = Annotated[str, BeforeValidator(lambda v: _name(v) if isinstance(v, str) else v)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Slug(_Model):
    """How a code is made from a name (the mapping's ``slug`` filter, same arguments)."""

    separator: str = Field("-", max_length=4)
    case: Literal["lower", "upper", "keep"] = "lower"


class Pool(_Model):
    #: Connections opened at start-up and kept.
    min_size: int = Field(1, ge=0)
    #: Connections at most; keep it at least the app's ``max_concurrency``.
    max_size: int = Field(10, ge=1)
    #: Seconds a caller waits for a free connection before it gets 503.
    acquire_timeout: float = Field(10.0, gt=0)
    #: Seconds an idle connection is kept before it is closed (0: forever).
    max_idle: float = Field(300.0, ge=0)


class IdColumn(_Model):
    """The column holding a record's id, which is the SCIM id (as text)."""

    column: Name
    #: ``database``: the database sets it (serial, identity, a default such as
    #: gen_random_uuid()); ``uuid``: the adapter makes a random UUID; ``provided``:
    #: the mapping's to_legacy gives it (a field named like the column).
    generated: Literal["database", "uuid", "provided"] = "database"


class UniqueColumn(_Model):
    """A column whose values must be unique, checked by the adapter before a write.

    For rules the legacy app only keeps in its own code (Redmine's
    ``lower(login)``). A unique constraint in the database is reported as a
    conflict anyway; list a column here when the database does not enforce the
    rule, or enforces it only case-sensitively.
    """

    column: Name
    #: Compare with lower() on both sides (two values differing only in case collide).
    ignore_case: bool = True


class ValueMap(_Model):
    """A SCIM attribute kept in a column as other values (``active`` as ``'A'``/``'T'``),
    declared so a filter on it becomes a WHERE clause on the column.

    ``map`` gives the column's value of each SCIM value (``true: A``); a filter value
    not in it matches nothing. ``slug`` instead turns the filter value into a code made
    from a name (``Sales & Marketing`` -> ``sales-marketing``), as the mapping's
    ``slug`` filter makes it when it writes the column.
    """

    column: Name
    map: dict[str, str] | None = None
    slug: Slug | None = None

    @field_validator("map", mode="before")
    @classmethod
    def _keys_as_text(cls, value: Any) -> Any:
        """YAML reads ``true:`` as a boolean key: SCIM values are matched as lower-case text."""
        if isinstance(value, dict):
            return {_key(k): v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one_way(self) -> ValueMap:
        if (self.map is None) == (self.slug is None):
            raise ValueError("give either map or slug")
        return self


def _key(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).lower() if isinstance(value, str | int) else value


class Members(_Model):
    """The membership table of groups: one row per (group, member)."""

    table: Name
    #: Default: the group table's schema.
    schema_: Name | None = Field(None, alias="schema")
    #: The column holding the group's id.
    group: Name
    #: The column holding the member's (user's) id.
    member: Name


class _Table(_Model):
    mode: Literal["table"]
    #: Default: ``public``.
    schema_: Name = Field("public", alias="schema")
    table: Name
    id: IdColumn
    unique: list[UniqueColumn] = Field(default_factory=list)
    #: Set the column the mapping gives ``meta.lastModified`` to now() on every write.
    touch_modified: bool = True
    #: SCIM attribute -> a column holding it as other values, for filter push-down.
    values: dict[str, ValueMap] = Field(default_factory=dict)


class UserTable(_Table):
    pass


class GroupTable(_Table):
    members: Members | None = None


class _Statements(_Model):
    """One SQL statement per operation. Named parameters are written ``:name``.

    ``search`` and ``count`` hold ``{where}`` (and ``search`` ``{order_by}``), which
    the adapter fills with a clause over the columns the statement reads, its values
    bound as parameters.
    """

    mode: Literal["statements"]
    #: The column of a row that holds the record's id.
    id: Name
    #: One row by ``:id``.
    get: str
    #: One page: ``{where}``, ``{order_by}``, ``:limit`` and ``:offset``.
    search: str
    #: The number of rows matching ``{where}``.
    count: str
    #: A new row from ``:<field>`` parameters (each to_legacy field; absent ones bind
    #: NULL); returns the new row's id (first column), or the row.
    insert: str
    #: The row ``:id`` written with every field (``:<field>``): the current row merged with
    #: the changes.
    update: str
    #: Deletes ``:id``; also removes its memberships (the database will not do it for you).
    delete: str
    #: Legacy field -> the SQL expression ``{where}`` and ``{order_by}`` use for it
    #: (default: the field's quoted name).
    columns: dict[str, str] = Field(default_factory=dict)
    unique: list[UniqueColumn] = Field(default_factory=list)
    #: SCIM attribute -> a column holding it as other values, for filter push-down.
    values: dict[str, ValueMap] = Field(default_factory=dict)


class UserStatements(_Statements):
    #: The groups of user ``:id``: rows of ``value`` (the group id) and optionally ``display``.
    groups: str | None = None


class GroupStatements(_Statements):
    #: The member ids of group ``:id`` (first column, or ``value``).
    members: str | None = None
    #: Adds ``:members`` (an array of ids) to group ``:id``; must ignore present ones.
    add_members: str | None = None
    #: Removes ``:members`` from group ``:id``.
    remove_members: str | None = None


UserSection = Annotated[UserTable | UserStatements, Field(discriminator="mode")]
GroupSection = Annotated[GroupTable | GroupStatements, Field(discriminator="mode")]


class SqlSettings(_Model):
    #: ``postgresql://user:password@host:port/database`` (or ``mysql://``, ``mariadb://``);
    #: write it as a secret reference.
    dsn: Secret
    pool: Pool = Pool()
    #: Milliseconds a statement may run (the server's statement_timeout, set per connection).
    statement_timeout: int = Field(10_000, ge=1)
    #: Seconds to open a connection.
    connect_timeout: float = Field(5.0, gt=0)
    #: Seconds in Retry-After when the database cannot be reached.
    retry_after: int = Field(5, ge=1)
    #: The search_path of every connection (statement mode's unqualified names).
    search_path: list[Name] = Field(default_factory=list)
    #: Most members read for one group (a bigger group is an error, never a partial list).
    max_members: int = Field(100_000, ge=1)
    #: ``exact``: a page that is not the last counts the matches; ``estimate``: an
    #: unfiltered listing takes the planner's row estimate instead (no scan of the table).
    totals: Literal["exact", "estimate"] = "exact"
    users: UserSection
    groups: GroupSection | None = None

    @field_validator("dsn")
    @classmethod
    def _postgres(cls, value: SecretStr) -> SecretStr:
        text = value.get_secret_value()
        if not re.match(r"(postgres(ql)?|mysql|mariadb)://", text):
            raise ValueError("must be a postgresql://, mysql:// or mariadb:// URL")
        return value
