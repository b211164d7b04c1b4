"""Request bodies: JSON parsed once, then refused when it nests deeper than a limit.

The body size is bounded before this (``server.max_body_size``, 413), which
also bounds every string and array in it. Depth is bounded separately: a few
kilobytes of ``[[[[...`` are cheap to send and every step after parsing (IdP
normalisation, PATCH, mapping, bulk references) walks the value recursively.
orjson itself stops at 1024 levels; SCIM needs fewer than ten (a Bulk PATCH
adding members: request, Operations, operation, data, Operations, operation,
value, members, member).
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InvalidSyntax

__all__ = ["json_depth", "parse_body"]


def parse_body(raw: bytes, *, max_depth: int) -> Any:
    """The JSON value of a request body; InvalidSyntax when empty, malformed or too deep."""
    if not raw.strip():
        raise InvalidSyntax("the request body is empty")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):
            raise InvalidSyntax(f"the request body nests deeper than {max_depth} levels") from None
        raise InvalidSyntax("the request body is not valid JSON") from None
    # Each level opens with a bracket, so a body with no more brackets than the limit (in
    # strings too: an upper bound) cannot nest deeper; counting bytes costs far less than a walk.
    if raw.count(b"{") + raw.count(b"[") <= max_depth:
        return value
    if json_depth(value, stop_after=max_depth) > max_depth:
        raise InvalidSyntax(f"the request body nests deeper than {max_depth} levels")
    return value


def json_depth(value: Any, *, stop_after: int | None = None) -> int:
    """Levels of objects and arrays in ``value`` (a scalar is 0), without recursion.

    With ``stop_after``, the walk ends as soon as it finds a level deeper than that.
    """
    deepest, pending = 0, [(value, 1)]
    while pending:
        current, level = pending.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, level)
        if stop_after is not None and deepest > stop_after:
            break
        pending.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest
