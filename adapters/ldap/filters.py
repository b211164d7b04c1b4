"""SCIM filters as LDAP filters (RFC 4515), over the attributes the mapping names.

The gateway hands the adapter a bound filter tree (canonical paths, only what the
adapter declared: attributes whose mapping names an LDAP attribute). Every value is
escaped (:func:`escape_value`), so no filter value changes the filter's shape.

=================  ===============================================================
SCIM               LDAP (``a``: the attribute; matching as the directory's schema
                   says, which ignores case for uid, cn, mail and most names)
=================  ===============================================================
``eq`` / ``ne``    ``(a=v)`` / ``(!(a=v))`` (ne holds when absent)
``co sw ew``       ``(a=*v*)``, ``(a=v*)``, ``(a=*v)``; an empty value: ``(a=*)``
``pr``             ``(a=*)``
``eq null``        ``(!(a=*))``; ``ne null``: ``(a=*)``
``and or not``     ``(&...)``, ``(|...)``, ``(!...)``
``attr[...]``      the inner filter over ``attr.sub`` attributes (one value each)
=================  ===============================================================
"""

from __future__ import annotations

from collections.abc import Callable
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

from gateway.sdk import InvalidFilter

__all__ = ["LdapFilter", "escape_value", "matches_all"]

_SUBSTRING = {CompareOperator.co: "*{}*", CompareOperator.sw: "{}*", CompareOperator.ew: "*{}"}
_ESCAPES = {"\\": "\\5c", "*": "\\2a", "(": "\\28", ")": "\\29", "\0": "\\00"}


def escape_value(value: str) -> str:
    """``value`` as an RFC 4515 assertion value: ``\\ * ( )`` and NUL as ``\\xx``."""
    return "".join(_ESCAPES.get(ch, ch) for ch in value)


def matches_all(filters: list[str]) -> str:
    """The conjunction of LDAP filters (each already parenthesised)."""
    kept = [f for f in filters if f]
    if len(kept) == 1:
        return kept[0]
    return "(&" + "".join(kept) + ")"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return str(value)


class LdapFilter:
    """Builds LDAP filters for one resource type; ``attribute(path)`` names its attribute."""

    def __init__(self, attribute: Callable[[str], str | None]) -> None:
        self._attribute = attribute

    def target(self, path: str) -> str:
        found = self._attribute(path.lower())
        if found is None:
            raise InvalidFilter(f"this app cannot filter on {path}")
        return found

    def render(self, node: FilterNode | None) -> str:
        return "" if node is None else self._node(node, "")

    def _node(self, node: FilterNode, prefix: str) -> str:
        match node:
            case Comparison(attr_path=path, op=op, value=value):
                return self._compare(self.target(_dotted(path, prefix)), op, value)
            case Present(attr_path=path):
                return f"({self.target(_dotted(path, prefix))}=*)"
            case Not(expr=expr):
                return f"(!{self._node(expr, prefix)})"
            case LogicalExpr(op=op, terms=terms):
                sign = "&" if op is LogicalOperator.and_ else "|"
                return f"({sign}" + "".join(self._node(t, prefix) for t in terms) + ")"
            case ValuePath(attr_path=outer, val_filter=inner):
                if prefix:
                    raise InvalidFilter("value filters cannot be nested")
                return self._node(inner, f"{_dotted(outer, '')}.")
        raise InvalidFilter(f"unsupported filter expression {type(node).__name__}")

    @staticmethod
    def _compare(attribute: str, op: CompareOperator, value: Any) -> str:
        if value is None:
            if op is CompareOperator.ne:
                return f"({attribute}=*)"
            return f"(!({attribute}=*))"
        text = escape_value(_text(value))
        if op in _SUBSTRING:
            if isinstance(value, dict | list):
                return "(!(objectClass=*))"  # matches nothing
            return (
                f"({attribute}=*)" if not text else f"({attribute}={_SUBSTRING[op].format(text)})"
            )
        if op is CompareOperator.eq:
            return f"({attribute}={text})"
        if op is CompareOperator.ne:
            return f"(!({attribute}={text}))"
        raise InvalidFilter(f"this app cannot compare {attribute} with {op.value}")


def _dotted(path: AttrPath, prefix: str) -> str:
    return f"{prefix}{path}"
