"""``scim-gateway sql introspect``: a starting mapping and settings for one table.

Reads the table's columns, primary key, unique constraints and indexes from
the catalog, guesses which SCIM attribute each column holds from its name
(``logon_name`` -> ``userName``, ``first_nm`` -> ``name.givenName``, ...),
and prints ``user.yaml`` (or ``group.yaml``) and the adapter's ``settings:``
for table mode. Guesses are marked for review; columns it could not place are
listed. Nothing is written and no row is read: only the catalog.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import asyncpg

from adapters.sql.table import read_columns
from adapters.sql.values import TIME_TYPES, Column

__all__ = ["Guess", "TableInfo", "introspect", "render"]

# (SCIM attribute, pattern over the column name), first match wins; users, then groups.
_USER_RULES: tuple[tuple[str, str], ...] = (
    ("userName", r"(user_?name|login|logon(_name)?|uid|account(_name)?|usr_?nm|sam)"),
    ("name.givenName", r"(first|given|fore)(_?n(a)?me?|_nm)?|fname"),
    ("name.familyName", r"(last|family|sur)(_?n(a)?me?|_nm)?|lname|sn"),
    ("displayName", r"(display|full)(_?n(a)?me?|_nm)?"),
    ("emails", r"(e_?)?mail(_?addr(ess)?)?"),
    ("phoneNumbers", r"(phone|tel(ephone)?|mobile)(_?(no|num(ber)?))?"),
    ("title", r"(job_?)?title|position"),
    ("enterprise.department", r"dep(ar)?t(ment)?(_?(nm|name))?"),
    ("enterprise.employeeNumber", r"emp(loyee)?_?(no|num(ber)?|id)"),
    ("externalId", r"ext(ernal)?_?(id|ref)"),
    ("active", r"(emp_?)?(status|active|enabled|is_active|state)(_?cd)?"),
)
_GROUP_RULES: tuple[tuple[str, str], ...] = (
    ("displayName", r"(group|unit|team|role|dept)?_?(name|nm|title|display(_?name)?)"),
    ("externalId", r"ext(ernal)?_?(id|ref)"),
)
_CREATED = r"(cre(ate)?d?|crt|insert(ed)?|add(ed)?)(_?(at|on|ts|dt|date|time(stamp)?))?"
_MODIFIED = (
    r"(upd(ate)?d?|modif(ied|y)?|mod|changed|last_?(upd|mod))(_?(at|on|ts|dt|date|time(stamp)?))?"
)


@dataclass
class TableInfo:
    schema: str
    table: str
    columns: dict[str, Column]
    primary_key: list[str]
    unique: list[list[str]]
    #: Index definitions (``CREATE INDEX ...``).
    indexes: list[str]


@dataclass
class Guess:
    """Which column holds which SCIM attribute, and what is left."""

    resource: str
    id: str | None
    attributes: dict[str, str] = field(default_factory=dict)  # SCIM path -> column
    created: str | None = None
    modified: str | None = None
    unplaced: list[str] = field(default_factory=list)


async def read_table(
    conn: asyncpg.Connection[asyncpg.Record], schema: str, table: str
) -> TableInfo:
    columns = await read_columns(conn, schema, table)
    if not columns:
        raise LookupError(f"there is no table or view {schema}.{table}")
    constraints = await conn.fetch(
        """
        SELECT c.contype::text AS contype,
               array(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY AS k(n, i)
                     JOIN pg_attribute AS a ON a.attrelid = c.conrelid AND a.attnum = k.n
                     ORDER BY k.i) AS cols
        FROM pg_constraint AS c JOIN pg_class AS t ON t.oid = c.conrelid
        JOIN pg_namespace AS s ON s.oid = t.relnamespace
        WHERE s.nspname = $1 AND t.relname = $2 AND c.contype IN ('p', 'u')
        """,
        schema,
        table,
    )
    indexes = await conn.fetch(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = $2", schema, table
    )
    primary = next((list(r["cols"]) for r in constraints if r["contype"] == "p"), [])
    unique = [list(r["cols"]) for r in constraints if r["contype"] == "u"]
    return TableInfo(schema, table, columns, primary, unique, [r[0] for r in indexes])


def guess(info: TableInfo, resource: str) -> Guess:
    rules = _USER_RULES if resource == "User" else _GROUP_RULES
    id_column = info.primary_key[0] if len(info.primary_key) == 1 else None
    found = Guess(resource, id_column)
    for name, column in info.columns.items():
        if name == id_column:
            continue
        if column.type in TIME_TYPES and re.fullmatch(_CREATED, name) and not found.created:
            found.created = name
            continue
        if column.type in TIME_TYPES and re.fullmatch(_MODIFIED, name) and not found.modified:
            found.modified = name
            continue
        for attribute, pattern in rules:
            if attribute not in found.attributes and re.fullmatch(pattern, name, re.IGNORECASE):
                found.attributes[attribute] = name
                break
        else:
            found.unplaced.append(name)
    return found


def _to_legacy(attribute: str, column: Column) -> str:
    if attribute == "emails":
        return "{{ emails | primary }}"
    if attribute == "phoneNumbers":
        return "{{ phoneNumbers | primary }}"
    if attribute == "active":
        if column.type == "bool":
            return "{{ active is not false }}"
        return "{{ 'INACTIVE' if active is false else 'ACTIVE' }}"  # review: the app's values
    return "{{ " + attribute + " }}"


def _from_legacy(attribute: str, column: Column) -> str:
    value = f"record.{column.name}"
    if attribute == "emails":
        return "{{ " + value + " | multi(type='work', primary=true) }}"
    if attribute == "phoneNumbers":
        return "{{ " + value + " | multi(type='work') }}"
    if attribute == "active":
        if column.type == "bool":
            return "{{ " + value + " }}"
        return "{{ " + value + " == 'ACTIVE' }}"
    return "{{ " + value + " }}"


def _quoted(template: str) -> str:
    return '"' + template.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(info: TableInfo, found: Guess) -> str:
    """The mapping file and the settings section, as YAML text with review notes."""
    cols = info.columns
    placed = {a: c for a, c in found.attributes.items()}
    lines = [
        f"# ---- mappings/<app>/{found.resource.lower()}.yaml "
        f"(from {info.schema}.{info.table}; review every line) ----",
        f"resource: {found.resource}",
        "",
        "record_fields: [" + ", ".join(cols) + "]",
        "",
        "to_legacy:",
    ]
    for attribute, column in placed.items():
        note = "   # review: the values the app uses" if attribute == "active" else ""
        template = _quoted(_to_legacy(attribute, cols[column]))
        lines.append(f"  {column}: {template}{note}")
    lines += ["", "from_legacy:"]
    for attribute, column in placed.items():
        lines.append(f"  {attribute}: {_quoted(_from_legacy(attribute, cols[column]))}")
    lines += ["", "fields:                 # plain copies: filters and sorting run in SQL"]
    if found.id:
        lines.append(f"  id: {found.id}")
    for attribute, column in placed.items():
        if attribute == "active":
            continue
        path = f"{attribute}.value" if attribute in ("emails", "phoneNumbers") else attribute
        lines.append(f"  {path}: {column}")
    if found.created:
        lines.append(f"  meta.created: {found.created}")
    if found.modified:
        lines.append(f"  meta.lastModified: {found.modified}")
    if found.unplaced:
        lines += ["", "# columns not placed: " + ", ".join(found.unplaced)]
    lines += ["", *_settings(info, found)]
    return "\n".join(lines) + "\n"


def _settings(info: TableInfo, found: Guess) -> list[str]:
    section = "users" if found.resource == "User" else "groups"
    id_column = info.columns.get(found.id or "")
    generated = "database" if id_column is not None and id_column.has_default else "provided"
    if id_column is not None and id_column.type == "uuid" and not id_column.has_default:
        generated = "uuid"
    lines = [
        "# ---- the app's settings: (adapter: sql); docs/sql-adapter.md ----",
        "dsn: ${env:APP_DSN}                # never write the DSN itself here",
        "pool: {min_size: 1, max_size: 10}",
        "statement_timeout: 5000",
        f"{section}:",
        "  mode: table",
        f"  schema: {info.schema}",
        f"  table: {info.table}",
        f"  id: {{column: {found.id or 'TODO'}, generated: {generated}}}",
    ]
    key = "userName" if found.resource == "User" else "displayName"
    column = found.attributes.get(key)
    notes = []
    if column is not None:
        lines += ["  unique:", f"    - {{column: {column}, ignore_case: true}}"]
        lowered = re.compile(rf"lower\(\(?\"?{re.escape(column)}\b")
        if not any(lowered.search(index) for index in info.indexes):
            notes.append(
                f"# add an index so `{key} eq` is an index scan: CREATE INDEX ON "
                f"{info.schema}.{info.table} (lower({column}));"
            )
    if found.resource == "Group":
        lines.append("  members: {table: TODO, group: TODO, member: TODO}")
    return lines + notes


async def introspect(dsn: str, table: str, resource: str = "User") -> str:
    schema, _, name = table.rpartition(".")
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        info = await read_table(conn, schema or "public", name)
    finally:
        await conn.close()
    return render(info, guess(info, resource))
