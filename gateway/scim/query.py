"""List and search parameters (RFC 7644 3.4.2 and 3.4.3), from a query string or a body.

Both forms are read leniently, the way IdPs send them (IdP rule 12):

* parameter names match without regard to case; unknown ones are ignored;
* an empty value counts as a missing parameter;
* ``startIndex`` below 1 is read as 1 and ``count`` is clamped to
  ``0..max_count``, as RFC 7644 3.4.2.4 allows;
* when both ``attributes`` and ``excludedAttributes`` are given,
  ``attributes`` wins and the exclusions are dropped;
* the names in ``attributes`` and ``excludedAttributes`` may take at most
  ``max_names_length`` characters each (a response plan is built, and cached,
  per list of names: an unbounded list would cost time and memory).

Values that cannot be read at all (``count=ten``, ``sortOrder=up``) raise
:class:`InvalidValue`. The filter is kept as text here and parsed by
:func:`gateway.scim.filter.parse_filter`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidFilter, InvalidSyntax, InvalidValue
from gateway.scim.schema import SEARCH_URN

__all__ = ["ListParams", "parse_list_params", "parse_search_request"]

_PARAMETERS = frozenset(
    {"filter", "startindex", "count", "sortby", "sortorder", "attributes", "excludedattributes"}
)
_INTEGER = re.compile(r"([+-]?)0*([0-9]+)")
# Python refuses int() of very long digit strings; anything this large is out of range anyway.
_MAX_DIGITS = 18
_HUGE = 10**_MAX_DIGITS


@dataclass(frozen=True, slots=True)
class ListParams:
    filter: str | None
    start_index: int
    count: int
    sort_by: str | None
    descending: bool
    attributes: tuple[str, ...]
    excluded_attributes: tuple[str, ...]


def parse_list_params(
    query: Mapping[str, str], *, default_count: int, max_count: int, max_names_length: int = 4096
) -> ListParams:
    """Read the parameters of ``GET /Users?...`` (already URL-decoded)."""
    params = _pick(query.items(), _PARAMETERS)
    return _build(params, default_count, max_count, max_names_length)


def parse_search_request(
    body: Mapping[str, Any], *, default_count: int, max_count: int, max_names_length: int = 4096
) -> ListParams:
    """Read a ``POST .search`` body; its ``schemas`` must name the SearchRequest URN.

    ``attributes`` and ``excludedAttributes`` may be JSON lists or
    comma-separated strings; numbers may be JSON numbers or digit strings.
    """
    if not isinstance(body, Mapping):
        raise InvalidSyntax("a search request must be a JSON object")
    params = _pick(body.items(), _PARAMETERS | {"schemas"})
    if not _names_search_urn(params.get("schemas")):
        raise InvalidSyntax(f"a search request must list {SEARCH_URN!r} in its schemas")
    if not isinstance(params.get("filter"), str | None):
        raise InvalidFilter("filter must be a string")
    return _build(params, default_count, max_count, max_names_length)


def _pick(items: Iterable[tuple[Any, Any]], names: frozenset[str]) -> dict[str, Any]:
    """Known parameters by lower-case name; the first of several spellings wins."""
    picked: dict[str, Any] = {}
    for key, value in items:
        name = key.strip().lower() if isinstance(key, str) else ""
        if name in names and name not in picked:
            picked[name] = value
    return picked


def _names_search_urn(schemas: Any) -> bool:
    if isinstance(schemas, str):
        schemas = [schemas]
    if not isinstance(schemas, list):
        return False
    wanted = SEARCH_URN.lower()
    return any(isinstance(s, str) and s.strip().lower() == wanted for s in schemas)


def _build(
    params: Mapping[str, Any], default_count: int, max_count: int, max_names_length: int
) -> ListParams:
    start_index = _integer(params.get("startindex"), "startIndex")
    count = _integer(params.get("count"), "count")
    attributes = _names(params.get("attributes"), "attributes", max_names_length)
    excluded = _names(params.get("excludedattributes"), "excludedAttributes", max_names_length)
    return ListParams(
        filter=_text(params.get("filter"), "filter"),
        start_index=max(1, 1 if start_index is None else start_index),
        count=max(0, min(max_count, default_count if count is None else count)),
        sort_by=_text(params.get("sortby"), "sortBy"),
        descending=_descending(params.get("sortorder")),
        attributes=attributes,
        excluded_attributes=() if attributes else excluded,
    )


def _integer(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidValue(f"{name} must be an integer")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        # Bounded like a string of digits: it is echoed in startIndex, and orjson
        # (like most JSON readers) stops at 64-bit integers.
        number: int = max(-_HUGE, min(_HUGE, int(value)))
        return number
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be an integer")
    text = value.strip()
    if not text:
        return None
    match = _INTEGER.fullmatch(text)
    if match is None:
        raise InvalidValue(f"{name} must be an integer")
    sign, digits = match.groups()
    magnitude = int(digits) if len(digits) <= _MAX_DIGITS else _HUGE
    return -magnitude if sign == "-" else magnitude


def _text(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidValue(f"{name} must be a string")
    return value.strip() or None


def _descending(value: Any) -> bool:
    order = _text(value, "sortOrder")
    if order is None or order.lower() == "ascending":
        return False
    if order.lower() == "descending":
        return True
    raise InvalidValue("sortOrder must be 'ascending' or 'descending'")


def _names(value: Any, name: str, max_length: int) -> tuple[str, ...]:
    """Attribute names from a comma-separated string or a list of them."""
    items = [value] if isinstance(value, str) else value
    if items is None:
        return ()
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise InvalidValue(f"{name} must be a list of attribute names")
    if sum(len(i) + 1 for i in items) > max_length + 1:
        raise InvalidValue(f"{name} may name attributes in at most {max_length} characters")
    return tuple(part.strip() for item in items for part in item.split(",") if part.strip())
