"""Synchronous directory work, run on the adapter's worker threads (:mod:`.directory`).

Each function takes a bound :class:`ldap3.Connection` first. Entries come back as
:class:`Entry`: the DN and the raw values of each attribute, keyed by the
attribute's name in lower case (LDAP names ignore case).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors

from adapters.ldap.filters import escape_value

__all__ = [
    "Entry",
    "any_of",
    "change_values",
    "modify",
    "read",
    "search_all",
]


@dataclass(slots=True)
class Entry:
    dn: str
    values: dict[str, list[bytes]] = field(default_factory=dict)

    def first(self, attribute: str) -> str | None:
        found = self.values.get(attribute.lower())
        return found[0].decode("utf-8", "replace") if found else None

    def texts(self, attribute: str) -> list[str]:
        return [v.decode("utf-8", "replace") for v in self.values.get(attribute.lower(), ())]


def _entry(item: dict[str, Any]) -> Entry:
    raw = item.get("raw_attributes") or {}
    return Entry(item["dn"], {k.lower(): list(v) for k, v in raw.items()})


def search_all(
    conn: ldap3.Connection, base: str, filter: str, attributes: Sequence[str], page_size: int
) -> list[Entry]:
    """Every entry under ``base`` matching ``filter``, fetched in RFC 2696 pages."""
    found: list[Entry] = []
    cookie: Any = None
    while True:
        conn.search(
            base,
            filter,
            ldap3.SUBTREE,
            attributes=list(attributes),
            paged_size=page_size,
            paged_cookie=cookie,
        )
        found += [_entry(i) for i in conn.response or () if i.get("type") == "searchResEntry"]
        controls = (conn.result or {}).get("controls") or {}
        paged = controls.get("1.2.840.113556.1.4.319") or {}
        cookie = (paged.get("value") or {}).get("cookie")
        if not cookie:
            return found


def read(conn: ldap3.Connection, dn: str, attributes: Sequence[str]) -> Entry | None:
    """The entry named ``dn``; None when there is none."""
    try:
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
    except ldap_errors.LDAPNoSuchObjectResult:
        return None
    entries = [_entry(i) for i in conn.response or () if i.get("type") == "searchResEntry"]
    return entries[0] if entries else None


def any_of(attribute: str, values: Iterable[str]) -> str:
    """``(|(a=v1)(a=v2)...)``, every value escaped."""
    terms = [f"({attribute}={escape_value(v)})" for v in values]
    return terms[0] if len(terms) == 1 else "(|" + "".join(terms) + ")"


def modify(
    conn: ldap3.Connection, dn: str, changes: dict[str, list[tuple[str, list[str]]]]
) -> None:
    if changes:
        conn.modify(dn, changes)  # type: ignore[no-untyped-call]


#: A concurrent change of the same values: read them again and retry this often.
_RACES = 3
_RACE_ERRORS = (
    ldap_errors.LDAPAttributeOrValueExistsResult,
    ldap_errors.LDAPNoSuchAttributeResult,
)


def change_values(
    conn: ldap3.Connection,
    dn: str,
    attribute: str,
    add: Sequence[str] = (),
    remove: Sequence[str] = (),
    *,
    key: Callable[[str], str] = str,
    placeholder: str | None = None,
) -> None:
    """Add and remove values of one attribute as a delta, idempotently, in one modify.

    Values already there are not added again and absent ones not removed (OpenLDAP
    has no permissive-modify control), compared by ``key``. With ``placeholder``,
    the attribute is never left empty (groupOfNames must have a member): the
    placeholder is added when the last real value goes and removed when one comes.
    """
    for attempt in range(_RACES):
        entry = read(conn, dn, [attribute])
        if entry is None:
            raise ldap_errors.LDAPNoSuchObjectResult(result=32, description="noSuchObject")
        current = {key(v): v for v in entry.texts(attribute)}
        changes = _delta(current, add, remove, key, placeholder)
        if not changes:
            return
        try:
            conn.modify(dn, {attribute: changes})  # type: ignore[no-untyped-call]
            return
        except _RACE_ERRORS:
            if attempt == _RACES - 1:
                raise


def _delta(
    current: dict[str, str],
    add: Sequence[str],
    remove: Sequence[str],
    key: Callable[[str], str],
    placeholder: str | None,
) -> list[tuple[str, list[str]]]:
    gone = {key(v) for v in remove} - {key(v) for v in add}
    to_add = list({key(v): v for v in add if key(v) not in current}.values())
    to_remove = [current[k] for k in gone if k in current]
    if placeholder is not None:
        mark = key(placeholder)
        real = (set(current) | {key(v) for v in to_add}) - gone - {mark}
        if real and mark in current:
            to_remove.append(current[mark])
        elif not real and mark not in current:
            to_add.append(placeholder)
    changes: list[tuple[str, list[str]]] = []
    if to_add:
        changes.append((ldap3.MODIFY_ADD, to_add))
    if to_remove:
        changes.append((ldap3.MODIFY_DELETE, to_remove))
    return changes
