"""SCIM filters as parameterised SQL: WHERE and ORDER BY over the mapped columns.

The gateway hands the adapter a bound filter tree (canonical paths, only what
the adapter declared: attributes whose mapping names a column). Each leaf
becomes a predicate on that column; every value is a ``$n`` parameter, so no
filter changes the statement's shape beyond the columns and operators it names.

=================  ===============================================================
SCIM               SQL (``c``: the column; ``lower()`` on both sides where the
                   attribute is not caseExact and the column is text)
=================  ===============================================================
``eq`` / ``ne``    ``c = $n`` / ``(c IS NULL OR c = '' OR c <> $n)`` (ne holds when absent)
``co sw ew``       ``c LIKE $n ESCAPE '\\'``, the value's ``\\ % _`` escaped, ``%`` added
``gt ge lt le``    ``c > $n`` ...
``pr``             ``(c IS NOT NULL AND c <> '')`` (``''`` only for text columns)
``eq null``        absent; ``ne null``: present
``and or``         ``(a AND b)``, ``(a OR b)``
``not``            ``(a) IS NOT TRUE``: SQL's NULLs never leak into the negation
``attr[...]``      the inner filter over ``attr.sub`` columns (one value per column)
=================  ===============================================================

A value the column cannot hold (``id eq "abc"`` on an integer id) matches
nothing (``ne``: only rows without a value), as the gateway's own evaluation
does.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scim2_models.path import (
    AttrPath,
    CompareOperator,
    Comparison,
    FilterNode,
    LogicalExpr,
    LogicalOperator,
    Not,
    Present,
    ValuePath,
)

from adapters.sql.config import ValueMap
from adapters.sql.dialect import POSTGRES, Dialect
from adapters.sql.values import Column, Unfit, to_column
from gateway.mapping.filters import slug
from gateway.scim.schema import Attribute, Resolved, ResourceType
from gateway.sdk import InvalidFilter, InvalidValue

__all__ = ["Convert", "Params", "SqlFilter", "converter", "escape_like"]

_STRINGS = frozenset({"string", "reference", "binary"})
_LIKE = {CompareOperator.co: "%{}%", CompareOperator.sw: "{}%", CompareOperator.ew: "%{}"}
_ORDER = {
    CompareOperator.gt: ">",
    CompareOperator.ge: ">=",
    CompareOperator.lt: "<",
    CompareOperator.le: "<=",
}


def escape_like(value: str) -> str:
    """``value`` matched literally by LIKE ... ESCAPE '\\': backslash, ``%`` and ``_`` escaped."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass
class Params:
    """The values of one statement, in ``$n`` order; ``first`` is the number of the first."""

    first: int = 1
    values: list[Any] = field(default_factory=list)

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${self.first + len(self.values) - 1}"


#: A SCIM value as the column holds it (a declared value map, a slug); Unfit: none.
Convert = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Target:
    column: Column
    attribute: Attribute
    #: Set for a value-mapped attribute (settings ``values:``): compared as converted.
    convert: Convert | None = None

    @property
    def folded(self) -> bool:
        """Compare ignoring case: a string attribute, not caseExact, in a text column."""
        return (
            self.convert is None
            and self.attribute.type in _STRINGS
            and not self.attribute.case_exact
            and self.column.is_text
        )


class SqlFilter:
    """Builds clauses for one resource type; ``column(path)`` names the column of a path."""

    def __init__(
        self,
        rtype: ResourceType,
        column: Callable[[str], Column | None],
        mapped: Callable[[str], tuple[Column, Convert] | None] = lambda path: None,
        dialect: Dialect = POSTGRES,
    ) -> None:
        self.dialect = dialect
        self.rtype = rtype
        self._column = column
        self._mapped = mapped

    def target(self, path: str) -> Target:
        found = self.rtype.lookup(path)
        column, convert = self._column(path.lower()), None
        if column is None and (mapped := self._mapped(path.lower())) is not None:
            column, convert = mapped
        if not isinstance(found, Resolved) or column is None:
            raise InvalidFilter(f"this app cannot filter on {path}")
        attribute = found.target
        if attribute.type == "complex" and found.sub is None:
            sub = attribute.sub("value")
            attribute = sub if sub is not None else attribute
        return Target(column, attribute, convert)

    # -- WHERE ---------------------------------------------------------------------------

    def where(self, node: FilterNode | None, params: Params) -> str:
        return "TRUE" if node is None else self._node(node, params, "")

    def _node(self, node: FilterNode, params: Params, prefix: str) -> str:
        match node:
            case Comparison(attr_path=path, op=op, value=value):
                return self._compare(self.target(_dotted(path, prefix)), op, value, params)
            case Present(attr_path=path):
                return _present(self.target(_dotted(path, prefix)).column)
            case Not(expr=expr):
                return f"({self._node(expr, params, prefix)}) IS NOT TRUE"
            case LogicalExpr(op=op, terms=terms):
                word = " AND " if op is LogicalOperator.and_ else " OR "
                return "(" + word.join(self._node(t, params, prefix) for t in terms) + ")"
            case ValuePath(attr_path=outer, val_filter=inner):
                if prefix:
                    raise InvalidFilter("value filters cannot be nested")
                return self._node(inner, params, f"{_dotted(outer, '')}.")
        raise InvalidFilter(f"unsupported filter expression {type(node).__name__}")

    def _compare(self, target: Target, op: CompareOperator, value: Any, params: Params) -> str:
        column = target.column
        if value is None:
            if op is CompareOperator.eq:
                return _absent(column)
            return _present(column) if op is CompareOperator.ne else "FALSE"
        if target.convert is not None:
            return self._mapped_compare(target, op, value, params)
        if op in _LIKE:
            return self._like(target, op, value, params)
        try:
            bound = to_column(_comparable(target, value), column.type)
        except Unfit:
            return _absent(column) if op is CompareOperator.ne else "FALSE"
        left, right = column.sql, params.add(bound)
        if target.folded:
            left, right = f"lower({left})", f"lower({right})"
        if op is CompareOperator.eq:
            return f"{left} = {right}"
        if op is CompareOperator.ne:
            return f"({_absent(column)} OR {left} <> {right})"
        return f"{left} {_ORDER[op]} {right}"

    def _mapped_compare(
        self, target: Target, op: CompareOperator, value: Any, params: Params
    ) -> str:
        """``eq``/``ne`` on a value-mapped column: the SCIM value as the column holds it."""
        column = target.column
        assert target.convert is not None
        try:
            if op not in (CompareOperator.eq, CompareOperator.ne):
                raise Unfit("only eq and ne go through a value map")
            bound = to_column(target.convert(value), column.type)
        except Unfit:
            return _absent(column) if op is CompareOperator.ne else "FALSE"
        if op is CompareOperator.eq:
            return f"{column.sql} = {params.add(bound)}"
        return f"({_absent(column)} OR {column.sql} <> {params.add(bound)})"

    def _like(self, target: Target, op: CompareOperator, value: Any, params: Params) -> str:
        if target.attribute.type not in _STRINGS or isinstance(value, bool | dict | list):
            return "FALSE"
        pattern = _LIKE[op].format(escape_like(str(value)))
        column = target.column
        left = column.sql if column.is_text else self.dialect.as_text(column.sql)
        right = params.add(pattern)
        if target.folded or (not target.column.is_text and not target.attribute.case_exact):
            left, right = f"lower({left})", f"lower({right})"
        return f"{left} LIKE {right} {self.dialect.like_escape}"

    # -- ORDER BY ------------------------------------------------------------------------

    def order_by(self, sort_by: str | None, descending: bool, id_column: Column) -> str:
        """The sort column (if any), then the id, both in the asked direction."""
        way = " DESC" if descending else ""
        keys = [f"{id_column.sql}{way}"]
        if sort_by is not None:
            target: Target | None = None
            with contextlib.suppress(InvalidFilter):
                target = self.target(sort_by)
            if target is None or target.convert is not None:
                raise InvalidValue(f"this app cannot sort by {sort_by}: it is not a plain column")
            key = f"lower({target.column.sql})" if target.folded else target.column.sql
            keys.insert(0, f"{key}{way}")
        return ", ".join(keys)


def converter(value_map: ValueMap) -> Convert:
    """A value map's SCIM value -> column value (raises Unfit for a value it does not hold)."""
    table, made = value_map.map, value_map.slug

    def convert(value: Any) -> Any:
        if table is not None:
            key = ("true" if value else "false") if isinstance(value, bool) else value
            key = key.lower() if isinstance(key, str) else key
            if not isinstance(key, str | int) or str(key) not in table:
                raise Unfit("not a value of the map")
            return table[str(key)]
        if not isinstance(value, str) or made is None:
            raise Unfit("a slug is made from text")
        return slug(value, made.separator, made.case)

    return convert


def _dotted(path: AttrPath, prefix: str) -> str:
    return f"{prefix}{path}"


def _comparable(target: Target, value: Any) -> Any:
    """A filter value of a string attribute compared with a non-text column: as is."""
    if target.attribute.type == "boolean" and not isinstance(value, bool):
        raise_unfit = not isinstance(value, str) or value.lower() not in ("true", "false")
        if raise_unfit:
            raise Unfit("not a boolean")
    return value


def _absent(column: Column) -> str:
    if column.is_text:
        return f"({column.sql} IS NULL OR {column.sql} = '')"
    return f"{column.sql} IS NULL"


def _present(column: Column) -> str:
    if column.is_text:
        return f"({column.sql} IS NOT NULL AND {column.sql} <> '')"
    return f"{column.sql} IS NOT NULL"
