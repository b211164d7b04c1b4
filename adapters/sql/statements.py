"""Statement mode: one configured SQL statement per operation.

Each statement is compiled once (:func:`compile_statement`: ``:name`` -> ``$n``)
and prepared at ``open``, which checks it against the database and tells the
type of every parameter and of every column ``search`` returns. Values are bound
as those types; the only text the adapter adds is the ``{where}``/``{order_by}``
clause it builds from a filter (:mod:`adapters.sql.filters`), whose values are
bound parameters too.

Parameters each statement may use:

=================  =============================================================
get, delete        ``:id``
search             ``:limit``, ``:offset`` (both required); ``{where}``, ``{order_by}``
count              none; ``{where}``
insert             ``:<field>`` for fields the mapping writes (absent ones bind NULL)
update             ``:id`` and ``:<field>``: the current row merged with the changes
groups (users)     ``:id``
members            ``:id``
add/remove_members ``:id``, ``:members`` (an array of member ids)
=================  =============================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adapters.sql.config import GroupStatements, UserStatements
from adapters.sql.filters import Params, SqlFilter
from adapters.sql.sqltext import Compiled, SqlTextError, compile_statement, quote_ident
from adapters.sql.store import Connection, Fields, Membership, Refs, Row, Store
from adapters.sql.table import _affected
from adapters.sql.values import Column, Unfit, to_column

__all__ = ["StatementMembership", "StatementStore", "compile_section"]

_WHERE = frozenset({"where"})
_PAGE = frozenset({"where", "order_by"})


def compile_section(
    section: UserStatements | GroupStatements, prefix: str
) -> tuple[dict[str, Compiled], list[str]]:
    """Every statement of a section compiled; and the problems, naming the key."""
    compiled: dict[str, Compiled] = {}
    problems: list[str] = []
    allowed: dict[str, tuple[frozenset[str], set[str] | None, set[str]]] = {
        # name: (slots, allowed parameters (None: fields), required parameters)
        "get": (frozenset(), {"id"}, {"id"}),
        "search": (_PAGE, {"limit", "offset"}, {"limit", "offset"}),
        "count": (_WHERE, set(), set()),
        "insert": (frozenset(), None, set()),
        "update": (frozenset(), None, {"id"}),
        "delete": (frozenset(), {"id"}, {"id"}),
        "groups": (frozenset(), {"id"}, {"id"}),
        "members": (frozenset(), {"id"}, {"id"}),
        "add_members": (frozenset(), {"id", "members"}, {"id", "members"}),
        "remove_members": (frozenset(), {"id", "members"}, {"id", "members"}),
    }
    for name, (slots, params, required) in allowed.items():
        sql = getattr(section, name, None)
        if sql is None:
            continue
        try:
            statement = compile_statement(sql, slots=slots)
        except SqlTextError as exc:
            problems.append(f"{prefix}.{name}: {exc}")
            continue
        names = set(statement.names)
        if params is not None and names - params:
            problems.append(
                f"{prefix}.{name}: unknown parameter(s) {_colons(names - params)}; "
                f"it may use {_colons(params) or 'none'}"
            )
        if required - names:
            problems.append(f"{prefix}.{name}: must use {_colons(required - names)}")
        compiled[name] = statement
    return compiled, problems


def _colons(names: set[str]) -> str:
    return ", ".join(f":{n}" for n in sorted(names))


class StatementStore(Store):
    def __init__(
        self,
        resource_type: str,
        section: UserStatements | GroupStatements,
        compiled: dict[str, Compiled],
        fields: Fields,
        where: SqlFilter,
        prefix: str,
    ) -> None:
        self.resource_type = resource_type
        self.section = section
        self.compiled = compiled
        self.fields = fields
        self.where = where
        self.unique = section.unique
        self.values = section.values
        self.prefix = prefix
        self.id = Column(section.id, _expression(section, section.id) or "", "text")
        self.columns = {}
        #: Parameter name -> type, per statement (from PREPARE).
        self.types: dict[str, dict[str, str]] = {}

    async def open(self, conn: Connection) -> list[str]:
        problems: list[str] = []
        for name, statement in self.compiled.items():
            text = statement.render(where="TRUE", order_by="1")
            try:
                prepared = await conn.prepare(text)
            except Exception as exc:  # reported, naming the key
                problems.append(f"{self.prefix}.{name}: the database refused it: {_short(exc)}")
                continue
            params = prepared.get_parameters()
            self.types[name] = {n: _type(t) for n, t in zip(statement.names, params, strict=True)}
            if name == "search":
                problems += self._read_columns(prepared.get_attributes())
        if self.fields.written is not None:
            for name in ("insert", "update"):
                unknown = set(self.types.get(name, {})) - self.fields.written - {"id"}
                if unknown:
                    problems.append(
                        f"{self.prefix}.{name}: the mapping writes no field "
                        f"{_colons(unknown)} (to_legacy)"
                    )
        return problems

    def _read_columns(self, attributes: Sequence[Any]) -> list[str]:
        problems = []
        for attribute in attributes:
            expression = _expression(self.section, attribute.name)
            if expression is None:
                continue
            self.columns[attribute.name] = Column(attribute.name, expression, _type(attribute.type))
        if self.section.id not in self.columns:
            problems.append(f"{self.prefix}.search: returns no column {self.section.id!r} (id)")
        else:
            self.id = self.columns[self.section.id]
        for field in sorted(set(self.fields.plain.values()) - self.columns.keys()):
            problems.append(
                f"{self.prefix}.search: returns no column {field!r}, which the mapping's "
                "fields name"
            )
        return problems

    def args(self, name: str, values: Mapping[str, Any]) -> list[Any]:
        """The statement's parameters from ``values``, as their types; Unfit names the field."""
        types = self.types.get(name, {})
        out = []
        for param in self.compiled[name].names:
            try:
                out.append(to_column(values.get(param), types.get(param, "text")))
            except Unfit as exc:
                raise Unfit(f"{param}: {exc}") from None
        return out

    def get_sql(self) -> str:
        return self.compiled["get"].render()

    async def get(self, conn: Connection, id: Any) -> Row | None:
        return await conn.fetchrow(self.get_sql(), *self.args("get", {"id": id}))

    def search_sql(self, where: str, order_by: str, bound: int) -> str:
        return self.compiled["search"].render(bound, where=where, order_by=order_by)

    def search_args(self, limit: int, offset: int) -> list[Any]:
        """The search statement's own parameters (``:limit``, ``:offset``, in its order)."""
        return self.args("search", {"limit": limit, "offset": offset})

    async def rows(
        self, conn: Connection, where: str, params: Params, order_by: str, limit: int, offset: int
    ) -> list[Row]:
        sql = self.search_sql(where, order_by, len(params.values))
        extra = self.search_args(limit, offset)
        return list(await conn.fetch(sql, *params.values, *extra))

    async def count(self, conn: Connection, where: str, params: Params) -> int:
        sql = self.compiled["count"].render(len(params.values), where=where)
        return int(await conn.fetchval(sql, *params.values))

    async def insert(self, conn: Connection, data: Mapping[str, Any]) -> Any:
        row = await conn.fetchrow(self.compiled["insert"].render(), *self.args("insert", data))
        if row is None:
            raise SqlTextError(f"{self.prefix}.insert returned no row (add RETURNING the id)")
        return row[self.section.id] if self.section.id in row else row[0]

    async def update(self, conn: Connection, id: Any, changes: Mapping[str, Any]) -> bool:
        current = await self.get(conn, id)
        if current is None:
            return False
        merged = {**dict(current), **changes, "id": id}
        status = await conn.execute(self.compiled["update"].render(), *self.args("update", merged))
        return _affected(status) > 0

    async def delete(self, conn: Connection, id: Any) -> bool:
        status = await conn.execute(
            self.compiled["delete"].render(), *self.args("delete", {"id": id})
        )
        return _affected(status) > 0

    def statements(self) -> dict[str, str]:
        return {
            name: c.render(where="{where}", order_by="{order_by}")
            for name, c in self.compiled.items()
        }


class StatementMembership(Membership):
    """Membership through the group section's ``members``/``add_members``/``remove_members``
    and the user section's ``groups`` statements."""

    def __init__(self, groups: StatementStore, users: StatementStore) -> None:
        self.groups_store = groups
        self.users_store = users
        self.member_type = "text"

    async def open(self, conn: Connection) -> list[str]:
        types = self.groups_store.types.get("add_members", {})
        self.member_type = types.get("members", "text[]").removesuffix("[]")
        missing = [
            name
            for name in ("members", "add_members", "remove_members")
            if name not in self.groups_store.compiled
        ]
        if missing:
            return [f"groups: membership needs the statements {', '.join(missing)}"]
        return []

    async def members(self, conn: Connection, group_ids: Sequence[Any], limit: int) -> Refs:
        store = self.groups_store
        sql = store.compiled["members"].render()
        found: Refs = {}
        for group_id in group_ids:
            rows = await conn.fetch(sql, *store.args("members", {"id": group_id}))
            found[str(group_id)] = [(str(_value(r)), None) for r in rows[: limit + 1]]
        return found

    async def groups(self, conn: Connection, user_ids: Sequence[Any]) -> Refs | None:
        store = self.users_store
        if "groups" not in store.compiled:
            return None
        sql = store.compiled["groups"].render()
        found: Refs = {}
        for user_id in user_ids:
            rows = await conn.fetch(sql, *store.args("groups", {"id": user_id}))
            found[str(user_id)] = [
                (str(_value(r)), str(r["display"]) if r.get("display") else None) for r in rows
            ]
        return found

    async def add(self, conn: Connection, group_id: Any, member_ids: Sequence[Any]) -> None:
        await self._change(conn, "add_members", group_id, member_ids)

    async def remove(self, conn: Connection, group_id: Any, member_ids: Sequence[Any]) -> None:
        await self._change(conn, "remove_members", group_id, member_ids)

    async def _change(
        self, conn: Connection, name: str, group_id: Any, member_ids: Sequence[Any]
    ) -> None:
        store = self.groups_store
        args = store.args(name, {"id": group_id, "members": list(member_ids)})
        await conn.execute(store.compiled[name].render(), *args)

    async def missing_users(self, conn: Connection, member_ids: Sequence[Any]) -> list[str]:
        store = self.users_store
        missing = []
        for member in member_ids:
            if await store.get(conn, member) is None:
                missing.append(str(member))
        return missing


def _expression(section: UserStatements | GroupStatements, name: str) -> str | None:
    if name in section.columns:
        return section.columns[name]
    try:
        return quote_ident(name)
    except ValueError:
        return None


def _type(found: Any) -> str:
    """asyncpg's Type as the adapter names types (``int4``, ``int4[]``)."""
    name = str(getattr(found, "name", "text"))
    if getattr(found, "kind", "") == "array" and not name.endswith("[]"):
        name = f"{name.lstrip('_')}[]"
    return name


def _value(row: Row) -> Any:
    return row["value"] if "value" in row else next(iter(row.values()))


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
