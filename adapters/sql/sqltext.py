"""SQL text: identifier quoting, ``:name`` parameters, and the ``{where}`` slots.

asyncpg quotes no identifiers, so :func:`quote_ident` does, strictly: a name
is quoted only when it is a plain name (configured names are checked against
information_schema as well). Values never enter SQL text: they are bound as
``$n`` parameters.

Statement-mode SQL is scanned once, at start-up, by :func:`compile_statement`,
which skips string literals, quoted identifiers, dollar-quoted bodies and
comments, so a ``:name`` or ``{where}`` inside them is left alone and ``::``
casts stay casts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Compiled", "Slot", "SqlTextError", "compile_statement", "qualified", "quote_ident"]

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")
_SLOT = re.compile(r"\{(where|order_by)\}")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")


class SqlTextError(ValueError):
    """A configured statement the adapter cannot use."""


def quote_ident(name: str) -> str:
    """``"name"``: a plain name (letters, digits, ``_``, ``$``; at most 63) quoted for PostgreSQL.

    Anything else raises ValueError: names come from config and the catalog,
    never from a request, and a name that needs escaping is refused rather than escaped.
    """
    if not _PLAIN.fullmatch(name) or len(name.encode()) > 63:
        raise ValueError(f"not a plain SQL name: {name!r}")
    return f'"{name}"'


def qualified(schema: str | None, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}" if schema else quote_ident(name)


@dataclass(frozen=True, slots=True)
class Compiled:
    """A statement split at its named parameters and its ``{where}``/``{order_by}`` slots.

    ``parts`` holds SQL text (``str``), parameter numbers (``int``: the index into
    ``names``) and slots (:class:`Slot`). :meth:`render` writes the parameters as
    ``$n``, after ``offset`` parameters a filled-in clause already uses, and puts
    the clauses the adapter built in the slots.
    """

    parts: tuple[str | int | Slot, ...]
    names: tuple[str, ...]

    @property
    def slots(self) -> frozenset[str]:
        return frozenset(p.name for p in self.parts if isinstance(p, Slot))

    def render(self, offset: int = 0, **clauses: str) -> str:
        missing = self.slots - clauses.keys()
        if missing:
            raise SqlTextError(f"no clause for {', '.join(sorted(missing))}")
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Slot):
                out.append(clauses[part.name])
            else:
                out.append(f"${offset + part + 1}")
        return "".join(out)


@dataclass(frozen=True, slots=True)
class Slot:
    name: str


def compile_statement(sql: str, *, slots: frozenset[str] = frozenset()) -> Compiled:
    """Replace ``:name`` by ``$n`` (one number per name) outside literals and comments.

    ``slots`` lists the ``{...}`` places the statement may hold; any other ``{name}``
    outside literals, and any positional ``$1``, is an error.
    """
    out: list[str | int | Slot] = []
    names: list[str] = []
    found: set[str] = set()
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        nxt = sql[i + 1] if i + 1 < n else ""
        if ch == "-" and nxt == "-":
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out.append(sql[i:end])
            i = end
        elif ch == "/" and nxt == "*":
            end = sql.find("*/", i + 2)
            if end < 0:
                raise SqlTextError("a comment is not closed")
            out.append(sql[i : end + 2])
            i = end + 2
        elif ch == "'":
            escaped = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _word(sql[i - 2]))
            end = _string_end(sql, i, escaped)
            out.append(sql[i:end])
            i = end
        elif ch == '"':
            end = sql.find('"', i + 1)
            while end >= 0 and sql[end + 1 : end + 2] == '"':
                end = sql.find('"', end + 2)
            if end < 0:
                raise SqlTextError("a quoted name is not closed")
            out.append(sql[i : end + 1])
            i = end + 1
        elif ch == "$":
            tag = _DOLLAR_TAG.match(sql, i)
            if tag is not None and not (i > 0 and _word(sql[i - 1])):
                end = sql.find(tag.group(), tag.end())
                if end < 0:
                    raise SqlTextError("a dollar-quoted string is not closed")
                end += len(tag.group())
                out.append(sql[i:end])
                i = end
            elif nxt.isdigit():
                raise SqlTextError("use named parameters (:name), not $1")
            else:
                out.append(ch)
                i += 1
        elif ch == ":" and nxt == ":":
            out.append("::")
            i += 2
        elif ch == ":" and (m := _PARAM.match(sql, i)) is not None:
            name = m.group(1)
            if name not in names:
                names.append(name)
            out.append(names.index(name))
            i = m.end()
        elif ch == "{":
            m = _SLOT.match(sql, i)
            if m is None or m.group(1) not in slots:
                allowed = ", ".join(f"{{{s}}}" for s in sorted(slots)) or "none"
                raise SqlTextError(
                    f"unknown placeholder at {sql[i : i + 20]!r} (allowed: {allowed})"
                )
            found.add(m.group(1))
            out.append(Slot(m.group(1)))
            i = m.end()
        else:
            out.append(ch)
            i += 1
    missing = slots - found
    if missing:
        raise SqlTextError(f"the statement must hold {', '.join(f'{{{s}}}' for s in missing)}")
    return Compiled(tuple(_joined(out)), tuple(names))


def _joined(parts: list[str | int | Slot]) -> list[str | int | Slot]:
    """Adjacent text pieces as one."""
    out: list[str | int | Slot] = []
    for part in parts:
        if isinstance(part, str) and out and isinstance(out[-1], str):
            out[-1] += part
        else:
            out.append(part)
    return out


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _string_end(sql: str, start: int, backslash: bool) -> int:
    """The index after the string literal opening at ``start`` ('' doubles a quote)."""
    i = start + 1
    while i < len(sql):
        ch = sql[i]
        if backslash and ch == "\\":
            i += 2
            continue
        if ch == "'":
            if sql[i + 1 : i + 2] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    raise SqlTextError("a string literal is not closed")
