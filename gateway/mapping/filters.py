"""The filters mapping templates get on top of Jinja's own, and None-safe string filters.

Absent SCIM attributes and legacy fields are ``None`` in a template, so every
filter here passes ``None`` through (``{{ name.givenName | upper }}`` on a user
without a given name gives ``None``, not ``"NONE"``). Jinja's string filters
that would turn ``None`` into ``"None"`` are wrapped the same way.

Error messages name the filter and what it expected, never the value: they
may reach logs when a legacy record holds something unexpected.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from gateway.mapping.context import AttrObject, LegacyRecord, field_or_none

__all__ = ["FILTERS", "NONE_SAFE", "FilterValueError", "slug"]

#: Longest text ``regex_replace`` works on: a pattern from a mapping meets request values,
#: and a long hostile value must not keep a backtracking pattern busy.
_REGEX_INPUT = 4096
_NOT_WORD = re.compile(r"[^0-9A-Za-z]+")


class FilterValueError(ValueError):
    """A filter was given a value it cannot work with (the message never holds the value)."""


def _is_object(value: Any) -> bool:
    kind = type(value)
    if kind is AttrObject or kind is dict or kind is LegacyRecord:  # before the ABC check
        return True
    return isinstance(value, Mapping | LegacyRecord)


def _field(item: Any, key: str) -> Any:
    """``item[key]``, None when absent (without tripping a strict object's hint)."""
    if type(item) is LegacyRecord:
        return field_or_none(item, key)
    return item[key] if _is_object(item) and key in item else None


def _elements(values: Any, name: str) -> list[Any]:
    if values is None:
        return []
    if type(values) is list:  # a multi-valued attribute: not an object, so the same as below
        return [v for v in values if v is not None]
    if _is_object(values):  # a single complex value
        return [values]
    if isinstance(values, list | tuple):
        return [v for v in values if v is not None]
    raise FilterValueError(f"{name}: expects a list (a multi-valued attribute)")


def _pick(element: Any, attr: str | None) -> Any:
    if attr is None or not _is_object(element):
        return element
    if isinstance(element, AttrObject):
        return element[attr]  # strict: a misspelt sub-attribute fails with a hint
    return _field(element, attr)


def primary(values: Any, attr: str | None = "value") -> Any:
    """``attr`` of the primary element of a multi-valued attribute, else of the first one.

    ``emails | primary`` is the primary e-mail address; ``primary(attr=none)``
    gives the whole element. None when there is no element.
    """
    # A list (a multi-valued attribute) is walked as is: _elements would copy it
    # without its None elements, which are skipped here instead.
    items = values if type(values) is list else _elements(values, "primary")
    chosen = None
    for item in items:
        if item is None:
            continue
        if chosen is None:
            chosen = item  # the first element, unless one is primary
        # _field's answer, for a SCIM value without the calls.
        flag = item.get("primary") if type(item) is AttrObject else _field(item, "primary")
        if flag is True:
            chosen = item
            break
    if chosen is None:
        return None
    if attr is not None and type(chosen) is AttrObject:
        return chosen[attr]  # _pick's answer (strict: a misspelt sub-attribute fails)
    return _pick(chosen, attr)


def of_type(values: Any, type_: str, attr: str | None = "value") -> Any:
    """``attr`` of the first element whose ``type`` is ``type_`` (any case); else None."""
    wanted = type_.lower()
    # A list is walked as is, its None elements skipped (see primary).
    for item in values if type(values) is list else _elements(values, "of_type"):
        if item is None:
            continue
        # _field's answer, for a SCIM value without the calls.
        kind = item.get("type") if type(item) is AttrObject else _field(item, "type")
        if isinstance(kind, str) and kind.lower() == wanted:
            if attr is not None and type(item) is AttrObject:
                return item[attr]  # _pick's answer
            return _pick(item, attr)
    return None


def multi(value: Any, **sub_attributes: Any) -> list[dict[str, Any]]:
    """A one-element multi-valued attribute from a plain value, or [] when there is none.

    ``record.mail | multi(type='work', primary=true)`` gives
    ``[{"value": ..., "type": "work", "primary": true}]``. Lists of several
    fields add up: ``(record.phone | multi(type='work')) + (record.mobile | multi(type='mobile'))``.
    """
    if value is None or value == "":
        return []
    return [{"value": value, **sub_attributes}]


def _whole_number(value: Any) -> int | None:
    """``7`` or ``"7"`` as 7; None for anything else (booleans, ``"7.5"``, ``"abc"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def custom_field(values: Any, id: Any = None, name: str | None = None) -> Any:
    """The value of one custom field in a list of ``{"id", "name", "value"}`` objects.

    Such lists are how Redmine (and apps like it) give custom fields:
    ``record.custom_fields | custom_field(vars.externalid_field)`` picks the one
    with that id (a whole number, or its text: ``7`` and ``"7"`` are one id),
    ``custom_field(name='SCIM externalId')`` the one with that name. None when
    the list lacks it or its value is empty. The id is checked before a None
    list passes through, so a wrong id fails the start-up check.
    """
    if (id is None) == (name is None):
        raise FilterValueError("custom_field: give the field's id or its name (name=...)")
    wanted = None if id is None else _whole_number(id)
    if id is not None and wanted is None:
        raise FilterValueError("custom_field: the id must be a whole number")
    for item in _elements(values, "custom_field"):
        if wanted is not None:
            found = _whole_number(_field(item, "id")) == wanted
        else:
            found = _field(item, "name") == name
        if found:
            value = _field(item, "value")
            return None if value == "" or value == [] else value
    return None


def split(value: Any, sep: str | None = None, maxsplit: int = -1) -> list[str] | None:
    """A string split on ``sep`` (whitespace by default); pieces stripped, empty ones dropped."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise FilterValueError("split: expects a string")
    return [p.strip() for p in value.split(sep, maxsplit) if p.strip()]


def join(value: Any, sep: str = "", attribute: str | None = None) -> str | None:
    """Items joined into a string, None and empty items left out; None for None."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    items: Iterable[Any] = value
    if attribute is not None:
        items = (_pick(i, attribute) for i in items)
    return sep.join(str(i) for i in items if i is not None and i != "")


def _moment(value: Any, fmt: str | None, name: str) -> datetime | date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, bool):
        raise FilterValueError(f"{name}: expects a date, a date-time or a timestamp")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str):
        raise FilterValueError(f"{name}: expects a date, a date-time or a timestamp")
    try:
        if fmt is not None:
            return datetime.strptime(value.strip(), fmt)
        return datetime.fromisoformat(value.strip())
    except ValueError:
        expected = f"the format {fmt!r}" if fmt else "ISO 8601"
        raise FilterValueError(f"{name}: the value is not a date in {expected}") from None


def _iso(moment: datetime | date) -> str:
    if isinstance(moment, datetime):
        text = moment.isoformat()
        return text[:-6] + "Z" if text.endswith("+00:00") else text
    return moment.isoformat()


def isodate(value: Any, format: str | None = None) -> str | None:
    """An ISO 8601 date-time (SCIM's dateTime), UTC written as ``Z``.

    Reads ISO strings, datetimes, Unix timestamps, or strings in ``format``
    (``strptime`` codes): ``record.hired | isodate('%d/%m/%Y')``.
    """
    moment = _moment(value, format, "isodate")
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day)
    return _iso(moment)


def strftime(value: Any, format: str) -> str | None:
    """A date (ISO string, datetime or timestamp) written with ``strftime`` codes."""
    moment = _moment(value, None, "strftime")
    return None if moment is None else moment.strftime(format)


def from_timestamp(value: Any, unit: str = "s") -> str | None:
    """A Unix timestamp (seconds, or ``unit='ms'``) as an ISO 8601 UTC date-time."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FilterValueError("from_timestamp: expects a number") from None
    if unit == "ms":
        number /= 1000
    elif unit != "s":
        raise FilterValueError("from_timestamp: unit is 's' or 'ms'")
    return _iso(datetime.fromtimestamp(number, UTC))


def timestamp(value: Any, unit: str = "s") -> int | None:
    """A date-time (ISO string or datetime) as a Unix timestamp in seconds (or ``unit='ms'``)."""
    moment = _moment(value, None, "timestamp")
    if moment is None:
        return None
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = moment.timestamp()
    return int(seconds * 1000) if unit == "ms" else int(seconds)


def default(value: Any, default_value: Any = "", boolean: bool = False) -> Any:
    """``default_value`` when ``value`` is None (or, with ``boolean=true``, any false value)."""
    if value is None or (boolean and not value):
        return default_value
    return value


def slug(value: Any, separator: str = "-", case: str = "lower") -> str | None:
    """A code made from a name: accents dropped, each run of other characters one ``separator``.

    ``Zoë's Sales & Marketing`` -> ``zoe-s-sales-marketing``; ``case`` is ``lower``,
    ``upper`` or ``keep``. The SQL adapter's ``values: {slug: ...}`` pushes filters
    down through the same function, so a code written with it is found by its name.
    """
    if value is None:
        return None
    if case not in ("lower", "upper", "keep"):
        raise FilterValueError("slug: case must be 'lower', 'upper' or 'keep'")
    plain = unicodedata.normalize("NFKD", str(value)).encode("ascii", "ignore").decode()
    code = (
        _NOT_WORD.sub(separator, plain).strip(separator) if separator else _NOT_WORD.sub("", plain)
    )
    return code.lower() if case == "lower" else code.upper() if case == "upper" else code


def regex_replace(value: Any, pattern: str, replacement: str = "", count: int = 0) -> str | None:
    """``re.sub(pattern, replacement, value)``: ``\\1`` in the replacement is a group."""
    if value is None:
        return None
    text = str(value)
    if len(text) > _REGEX_INPUT:
        raise FilterValueError(f"regex_replace: the value is longer than {_REGEX_INPUT} characters")
    try:
        return re.sub(pattern, replacement, text, count=max(0, int(count)))
    except re.error as exc:
        raise FilterValueError(
            f"regex_replace: not a usable pattern or replacement ({exc})"
        ) from None


FILTERS: dict[str, Callable[..., Any]] = {
    "slug": slug,
    "regex_replace": regex_replace,
    "primary": primary,
    "of_type": of_type,
    "multi": multi,
    "custom_field": custom_field,
    "split": split,
    "join": join,
    "isodate": isodate,
    "strftime": strftime,
    "from_timestamp": from_timestamp,
    "timestamp": timestamp,
    "default": default,
    "d": default,
}

#: Jinja filters that would turn None into text ("None", "NONE", 0); mapping
#: templates get them None-safe.
NONE_SAFE = (
    "capitalize",
    "center",
    "float",
    "indent",
    "int",
    "lower",
    "replace",
    "string",
    "striptags",
    "title",
    "trim",
    "truncate",
    "upper",
    "urlencode",
    "wordcount",
    "wordwrap",
)


def none_safe(func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` returning None for a None value; keeps Jinja's pass_context/… marker."""
    skip = 1 if hasattr(func, "jinja_pass_arg") else 0

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if len(args) > skip and args[skip] is None:
            return None
        return func(*args, **kwargs)

    return wrapper
