"""The LDAP adapter: users and groups provisioned into an LDAP directory (OpenLDAP, AD-style).

The app's mapping turns SCIM resources into entries (legacy field = LDAP
attribute) and back; the settings (:mod:`adapters.ldap.config`, docs/ldap-adapter.md)
say where the entries live and how. How SCIM lands in the directory:

* the SCIM id is an attribute the directory keeps stable across renames and moves
  (``entryUUID`` by default); a new entry's DN comes from the settings' template
  (``uid={uid},ou=people,...``) filled with the mapping's value, escaped per RFC 4514;
  a change of that value renames the entry (modify DN), and a move keeps its groups;
* filters on attributes the mapping names become LDAP filters (:mod:`.filters`,
  values escaped per RFC 4515); searches read the matching ids in RFC 2696 pages
  (the directory's own order, stable), then the asked page's entries in one search;
* group membership changes are attribute deltas (``member``, ``uniqueMember`` or
  ``memberUid``) in one permissive modify, so repeated adds and removes of absent
  members are not errors;
* ``active`` is kept as the settings say: a flag attribute, a bit of an integer
  attribute (``userAccountControl``), or a move to an OU;
* ldap3 runs on the adapter's worker threads (:mod:`.directory`); its errors become
  gateway errors in one place (:mod:`.errors`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import ldap3
from ldap3.utils.dn import escape_rdn, parse_dn, to_dn
from pydantic import BaseModel

from adapters.ldap.config import Deactivation, GroupEntries, LdapSettings, UserEntries
from adapters.ldap.directory import Directory, describe_url
from adapters.ldap.entries import Entry, any_of, change_values, modify, read, search_all
from adapters.ldap.errors import map_ldap_errors
from adapters.ldap.filters import LdapFilter, escape_value, matches_all
from gateway.config import ConfigError
from gateway.mapping import Mapping
from gateway.mapping.engine import TemplateMapping
from gateway.scim.schema import build_resource_types
from gateway.sdk import (
    ALL_OPERATORS,
    Adapter,
    Capabilities,
    Conflict,
    InvalidValue,
    NotFound,
    Page,
    Query,
    Record,
    Ref,
    UpstreamError,
)

__all__ = ["LdapAdapter", "LdapSettings"]

_TYPES = build_resource_types()
_STRING_OPERATORS = ALL_OPERATORS - {"gt", "ge", "lt", "le"}
_OTHER_OPERATORS = frozenset({"eq", "ne", "pr"})
_STAMPS = ("createTimestamp", "modifyTimestamp")
_SNAPSHOTS = 16  # paging snapshots kept at most (the oldest goes first)
Changes = dict[str, list[tuple[str, list[str]]]]


def _scim_paths(resource_type: str) -> list[tuple[str, str]]:
    """(lower-case dotted path, SCIM type) of every simple attribute and sub-attribute."""
    paths: list[tuple[str, str]] = []
    for container, attr in _TYPES[resource_type].attributes():
        head = f"{container}:{attr.name}" if container else attr.name
        if attr.type != "complex":
            paths.append((head.lower(), attr.type))
        paths += [(f"{head}.{sub.name}".lower(), sub.type) for sub in attr.sub_attributes.values()]
    return paths


def _moment(text: str | None) -> datetime | None:
    """An LDAP GeneralizedTime (``20261204150102Z``, maybe with fractions) as a datetime."""
    if not text:
        return None
    try:
        return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _ldap_values(value: Any) -> list[str]:
    """A mapped value as the attribute's values: strings, booleans as TRUE/FALSE."""
    items = value if isinstance(value, list | tuple) else [value]
    out = []
    for item in items:
        if item is None or item == "":
            continue
        if isinstance(item, dict):
            raise InvalidValue("an LDAP attribute cannot hold an object; fix the mapping")
        out.append(("TRUE" if item else "FALSE") if isinstance(item, bool) else str(item))
    return out


def _norm_dn(dn: str) -> str:
    """A DN for comparisons: no spaces around separators, lower case (names ignore case)."""
    try:
        return ",".join(f"{a}={v}" for a, v, _ in parse_dn(dn, strip=True)).lower()
    except Exception:
        return dn.lower()


def _same_dn(a: str, b: str) -> bool:
    return _norm_dn(a) == _norm_dn(b)


def _parent_of(dn: str) -> str:
    return ",".join(to_dn(dn)[1:])


class _Kind:
    """One resource type's entries: settings, the fields the mapping reads, its filter."""

    def __init__(
        self, rt: str, section: UserEntries | GroupEntries, mapping: Mapping, pseudo: str | None
    ) -> None:
        self.rt = rt
        self.section = section
        self.pseudo = pseudo  # the deactivation field, which no attribute holds
        known = (
            mapping.types[rt].known_record_fields if isinstance(mapping, TemplateMapping) else None
        )
        self.fields = {f.lower(): f for f in known or () if f != pseudo}
        self.multi = {a.lower() for a in section.multi_valued}
        classes = [f"(objectClass={escape_value(c)})" for c in section.object_classes]
        self.base_filter = section.filter or matches_all(classes)
        self.where = LdapFilter(self._attribute_of(mapping))

    def _attribute_of(self, mapping: Mapping) -> Any:
        def attribute(path: str) -> str | None:
            if path == "id":
                return self.section.id_attribute
            field = mapping.legacy_field(self.rt, path)
            return None if field is None or field == self.pseudo else field

        return attribute

    def attributes(self, extra: Sequence[str] = ()) -> list[str]:
        """What to read of an entry: the mapped fields (or all), the id, the stamps, ``extra``."""
        base = list(self.fields.values()) if self.fields else ["*"]
        wanted = [*base, self.section.id_attribute, self.section.rdn_attribute, *_STAMPS, *extra]
        return list(dict.fromkeys(wanted))

    def data(self, entry: Entry) -> dict[str, Any]:
        """The record fields of an entry, named as the mapping names them."""
        data: dict[str, Any] = {}
        for key, raw in entry.values.items():
            name = self.fields.get(key) if self.fields else key
            if name is None or not raw:
                continue
            texts = [v.decode("utf-8", "replace") for v in raw]
            data[name] = texts if key in self.multi else texts[0]
        return data

    def filter(self, extra: str = "") -> str:
        return matches_all([self.base_filter, extra])

    def kept(self, mapping: Mapping) -> frozenset[str] | None:
        """What the entries round-trip: the mapping's attributes, some only by value."""
        carried = mapping.attributes(self.rt)
        if carried is None:
            return None
        typed = {name.lower(): types for name, types in self.section.typed_values.items()}
        kept: set[str] = set()
        for path in carried:
            if path not in typed:
                kept.add(path)
                continue
            kept.add(f"{path}.value")
            if typed[path]:
                kept.add(f"{path}.type")
        return frozenset(kept)

    def canonical(self) -> dict[str, tuple[str, ...]]:
        """The types each typed attribute keeps (``emails.type``: ``work``)."""
        typed = self.section.typed_values
        return {f"{name.lower()}.type": tuple(types) for name, types in typed.items() if types}

    def declared(self, mapping: Mapping) -> dict[str, frozenset[str]]:
        declared = {"id": _OTHER_OPERATORS}
        for path, scim_type in _scim_paths(self.rt):
            field = mapping.legacy_field(self.rt, path)
            if field is not None and field != self.pseudo:
                strings = scim_type in ("string", "reference")
                declared[path] = _STRING_OPERATORS if strings else _OTHER_OPERATORS
        return declared


class LdapAdapter(Adapter):
    settings_model = LdapSettings

    def __init__(
        self, settings: BaseModel | None = None, *, app: str = "", mapping: Mapping | None = None
    ) -> None:
        if not isinstance(settings, LdapSettings):
            raise TypeError("the LDAP adapter needs its settings (an LdapSettings)")
        if not isinstance(mapping, TemplateMapping) or "User" not in mapping.types:
            raise ConfigError(
                f"apps.{app}.mapping: the ldap adapter needs a mapping (user.yaml, group.yaml) "
                "that names the attributes"
            )
        super().__init__(settings, app=app, mapping=mapping)
        self.config = settings
        self.where = describe_url(settings.url)
        deactivation = settings.users.deactivation
        self.deactivation: Deactivation | None = deactivation
        pseudo = deactivation.field if deactivation is not None else None
        self.users = _Kind("User", settings.users, mapping, pseudo)
        self.groups: _Kind | None = None
        if settings.groups is not None:
            if "Group" not in mapping.types:
                raise ConfigError(f"apps.{app}.settings.groups: the mapping has no group.yaml")
            self.groups = _Kind("Group", settings.groups, mapping, None)
        kinds = [k for k in (self.users, self.groups) if k is not None]
        self.capabilities = Capabilities(
            resource_types=frozenset(k.rt for k in kinds),
            filter_attributes={k.rt: k.declared(mapping) for k in kinds},
            attributes={k.rt: k.kept(mapping) for k in kinds},
            canonical_values={k.rt: k.canonical() for k in kinds},
            filter_logic=True,
            sort=False,
            groups=self.groups is not None,
        )
        self.directory = Directory(settings, app)
        #: (type, LDAP filter) -> (when read, the ids of every match): SCIM paging's list.
        self._snapshots: OrderedDict[tuple[str, str], tuple[float, list[str]]] = OrderedDict()

    # -- lifetime ------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and bind once, so wrong settings fail at start-up, not on a request."""
        bases = {"users": self.config.users.base_dn}
        if self.config.groups is not None:
            bases["groups"] = self.config.groups.base_dn
        for key, base in bases.items():
            with map_ldap_errors(self.where, self.config.retry_after):
                found = await self.directory.run(partial(read, dn=base, attributes=["1.1"]))
            if found is None:
                raise ConfigError(f"apps.{self.app}.settings.{key}.base_dn: no such entry")

    async def aclose(self) -> None:
        await self.directory.aclose()

    # -- helpers -----------------------------------------------------------------------

    def _kind(self, resource_type: str) -> _Kind:
        if resource_type == "User":
            return self.users
        if resource_type == "Group" and self.groups is not None:
            return self.groups
        raise NotFound(f"this app has no {resource_type} resources")

    def _group_kind(self) -> _Kind:
        if self.groups is None:
            raise NotFound("this app keeps no groups")
        return self.groups

    async def _run(self, work: Any) -> Any:
        with map_ldap_errors(self.where, self.config.retry_after):
            return await self.directory.run(work)

    async def _write(self, work: Any) -> Any:
        try:
            return await self._run(work)
        finally:
            self._forget_snapshots()

    def _find(self, conn: ldap3.Connection, kind: _Kind, id: str, attrs: Sequence[str]) -> Entry:
        """The entry whose id attribute is ``id`` (NotFound when none)."""
        section = kind.section
        by_id = f"({section.id_attribute}={escape_value(id)})"
        found = search_all(conn, section.base_dn, kind.filter(by_id), attrs, 2)
        if len(found) != 1:
            raise NotFound(f"no {kind.rt} with that id")
        return found[0]

    def _record(self, kind: _Kind, entry: Entry) -> Record:
        id = entry.first(kind.section.id_attribute)
        if id is None:
            raise UpstreamError(f"a {kind.rt} entry has no {kind.section.id_attribute}")
        data = kind.data(entry)
        if kind is self.users and self.deactivation is not None:
            data[self.deactivation.field] = self._active(entry)
        created, modified = (_moment(entry.first(s)) for s in _STAMPS)
        return Record(id, data, created=created, last_modified=modified or created)

    def _read_attrs(self, kind: _Kind) -> list[str]:
        extra: list[str] = []
        if kind is self.users and self.deactivation and self.deactivation.attribute:
            extra.append(self.deactivation.attribute)
        if kind is self.groups and self.config.groups is not None:
            extra.append(self.config.groups.member_attribute)
        return kind.attributes(extra)

    # -- deactivation --------------------------------------------------------------------

    def _active(self, entry: Entry) -> bool | None:
        rule = self.deactivation
        assert rule is not None
        if rule.by == "ou":
            assert rule.ou is not None
            return not _same_dn(_parent_of(entry.dn), rule.ou)
        assert rule.attribute is not None
        value = entry.first(rule.attribute)
        if rule.by == "flag":
            if value is None:  # with an ``enabled`` value, no value means "not known"
                return None if rule.enabled is not None else True
            return value.lower() != rule.disabled.lower()
        try:
            return not int(value or 0) & rule.bit
        except ValueError:
            return True

    def _flag_values(self, active: bool, current: str | None) -> list[str]:
        """The deactivation attribute's values for ``active`` (flag or bit modes)."""
        rule = self.deactivation
        assert rule is not None
        if rule.by == "flag":
            value = rule.enabled if active else rule.disabled
            return [value] if value is not None else []
        try:
            number = int(current) if current is not None else rule.initial
        except ValueError:
            number = rule.initial
        return [str(number & ~rule.bit if active else number | rule.bit)]

    def _flag_change(self, rule: Deactivation, active: Any, current: str | None) -> Changes:
        """The flag or bit attribute's change for a new ``active``: true, false, or removed."""
        assert rule.attribute is not None
        if isinstance(active, bool):
            return {rule.attribute: [(ldap3.MODIFY_REPLACE, self._flag_values(active, current))]}
        if rule.by == "flag" and rule.enabled is not None:  # removed: "not known" again
            return {rule.attribute: [(ldap3.MODIFY_REPLACE, [])]}
        return {}  # a bit or a place cannot say "not known": left as it is

    def _parent(self, kind: _Kind, active: Any) -> str:
        rule = self.deactivation
        if kind is self.users and rule is not None and rule.by == "ou" and active is False:
            assert rule.ou is not None
            return rule.ou
        return kind.section.parent

    # -- reading -------------------------------------------------------------------------

    async def get(self, resource_type: str, id: str) -> Record:
        kind = self._kind(resource_type)
        return await self._run(lambda conn: self._get(conn, kind, id))  # type: ignore[no-any-return]

    def _get(self, conn: ldap3.Connection, kind: _Kind, id: str) -> Record:
        entry = self._find(conn, kind, id, self._read_attrs(kind))
        return self._complete(conn, kind, [entry])[0]

    def _complete(
        self,
        conn: ldap3.Connection,
        kind: _Kind,
        entries: list[Entry],
        *,
        with_groups: bool = True,
    ) -> list[Record]:
        """Records of entries, with a group's members and (unless told) a user's groups.

        A search's users come without their groups (``groups`` None: not read), which
        would take one more search per user.
        """
        records = [self._record(kind, e) for e in entries]
        if kind is self.groups:
            for record, entry in zip(records, entries, strict=True):
                record.members = [Ref(v, "User") for v in self._member_ids(conn, entry)]
        elif self.groups is not None and with_groups:
            for record, entry in zip(records, entries, strict=True):
                record.groups = self._groups_of(conn, entry)
        return records

    def _member_ids(self, conn: ldap3.Connection, group: Entry) -> list[str]:
        section = self.config.groups
        assert section is not None
        values = group.texts(section.member_attribute)
        if len(values) > self.config.max_members:
            raise UpstreamError(
                f"a group has more than {self.config.max_members} members (settings.max_members)"
            )
        id_attr = self.users.section.id_attribute
        if section.member_attribute == "memberUid":
            return self._ids_by(conn, section.member_uid_attribute, values)
        ids = []
        for dn in values:
            if section.placeholder_member and _same_dn(dn, section.placeholder_member):
                continue
            entry = read(conn, dn, [id_attr])
            found = entry.first(id_attr) if entry else None
            if found is not None:
                ids.append(found)
        return ids

    def _ids_by(self, conn: ldap3.Connection, attribute: str, values: list[str]) -> list[str]:
        """The ids of the users whose ``attribute`` is one of ``values`` (in chunks)."""
        ids: list[str] = []
        section = self.users.section
        for start in range(0, len(values), 200):
            chunk = values[start : start + 200]
            flt = self.users.filter(any_of(attribute, chunk))
            for entry in search_all(conn, section.base_dn, flt, [section.id_attribute], 1000):
                ids += entry.texts(section.id_attribute)[:1]
        return ids

    def _groups_of(self, conn: ldap3.Connection, user: Entry) -> list[Ref]:
        groups, section = self._group_kind(), self.config.groups
        assert section is not None
        value = self._member_value(user)
        if value is None:
            return []
        flt = groups.filter(any_of(section.member_attribute, [value]))
        id_attr, name = section.id_attribute, section.rdn_attribute
        found = search_all(conn, section.base_dn, flt, [id_attr, name], self.config.page_size)
        refs = [Ref(e.first(id_attr) or "", "direct", e.first(name)) for e in found]
        return sorted((r for r in refs if r.value), key=lambda r: r.value)

    def _member_value(self, user: Entry) -> str | None:
        """What a group's member attribute holds for ``user``: its DN, or its uid."""
        section = self.config.groups
        assert section is not None
        if section.member_attribute == "memberUid":
            return user.first(section.member_uid_attribute)
        return user.dn

    async def search(self, query: Query) -> Page:
        kind = self._kind(query.resource_type)
        flt = kind.filter(kind.where.render(query.filter))
        start = max(0, query.start_index - 1)
        count = max(0, min(query.count, self.capabilities.max_page_size))
        key = (kind.rt, flt)
        # A walk's first page reads the matches afresh; its next pages reuse that list.
        known = self._snapshots.get(key) if start > 0 else None
        if known is not None and time.monotonic() - known[0] > self.config.snapshot_seconds:
            known = None
        ids = known[1] if known is not None else None
        page, ids = await self._run(lambda conn: self._search(conn, kind, flt, start, count, ids))
        if known is None and self.config.snapshot_seconds > 0:
            self._snapshots[key] = (time.monotonic(), ids)
            while len(self._snapshots) > _SNAPSHOTS:
                self._snapshots.popitem(last=False)
        return page  # type: ignore[no-any-return]

    def _search(
        self,
        conn: ldap3.Connection,
        kind: _Kind,
        flt: str,
        start: int,
        count: int,
        ids: list[str] | None,
    ) -> tuple[Page, list[str]]:
        """One page, and the ids of every match (read here in RFC 2696 pages, unless given)."""
        section = kind.section
        id_attr = section.id_attribute
        if ids is None:
            matches = search_all(conn, section.base_dn, flt, [id_attr], self.config.page_size)
            ids = [i for i in (e.first(id_attr) for e in matches) if i is not None]
        window = ids[start : start + count]
        if not window:
            return Page([], len(ids)), ids
        found = search_all(
            conn,
            section.base_dn,
            kind.filter(any_of(id_attr, window)),
            self._read_attrs(kind),
            self.config.page_size,
        )
        by_id = {e.first(id_attr): e for e in found}
        entries = [by_id[i] for i in window if i in by_id]  # gone since: left out
        records = self._complete(conn, kind, entries, with_groups=False) if entries else []
        return Page(records, len(ids)), ids

    def _forget_snapshots(self) -> None:
        """Our own writes end the walks' snapshots (other writers' wait for their expiry)."""
        self._snapshots.clear()

    # -- writing -------------------------------------------------------------------------

    def _check_unique(
        self, conn: ldap3.Connection, kind: _Kind, values: dict[str, Any], own: str | None
    ) -> None:
        """Refuse a value a unique attribute already holds in another entry of the type
        (with ``unique_group_names``, a group's name is one: Entra expects 409 on a taken
        displayName). Compared with the directory's own matching rule (cn: any case)."""
        unique = list(kind.section.unique)
        if kind is self.groups and self.unique_group_names:
            name = self.mapping.legacy_field("Group", "displayname")
            if name and all(name.lower() != a.lower() for a in unique):
                unique.append(name)
        for attribute in unique:
            value = next((v for k, v in values.items() if k.lower() == attribute.lower()), None)
            texts = _ldap_values(value)
            if not texts:
                continue
            flt = kind.filter(any_of(attribute, texts))
            found = search_all(conn, kind.section.base_dn, flt, ["1.1"], 2)
            if any(own is None or not _same_dn(e.dn, own) for e in found):
                raise Conflict(f"another {kind.rt.lower()} already holds that value of {attribute}")

    def _dn(self, kind: _Kind, rdn_value: Any, parent: str) -> str:
        texts = _ldap_values(rdn_value)
        if len(texts) != 1:
            raise InvalidValue(
                f"the mapping gives no single {kind.section.rdn_attribute}, which names the entry"
            )
        return f"{kind.section.rdn_attribute}={escape_rdn(texts[0])},{parent}"

    async def create(
        self, resource_type: str, data: dict[str, Any], *, members: Sequence[str] = ()
    ) -> Record:
        kind = self._kind(resource_type)
        return await self._write(lambda conn: self._create(conn, kind, dict(data), members))  # type: ignore[no-any-return]

    def _create(
        self, conn: ldap3.Connection, kind: _Kind, data: dict[str, Any], members: Sequence[str]
    ) -> Record:
        active = data.pop(kind.pseudo, None) if kind.pseudo else None
        rdn = kind.section.rdn_attribute
        rdn_value = next((v for k, v in data.items() if k.lower() == rdn.lower()), None)
        dn = self._dn(kind, rdn_value, self._parent(kind, active))
        self._check_unique(conn, kind, data, None)
        attributes: dict[str, list[str]] = {"objectClass": list(kind.section.object_classes)}
        for key, value in data.items():
            texts = _ldap_values(value)
            if texts:
                attributes[key] = texts
        rule = self.deactivation
        if kind is self.users and rule is not None and rule.attribute is not None:
            known = isinstance(active, bool) or rule.by == "bit" or rule.enabled is None
            flag = self._flag_values(active is not False, None) if known else []
            if flag:
                attributes[rule.attribute] = flag
        if kind is self.groups:
            self._initial_members(conn, attributes, members)
        conn.add(dn, attributes=attributes)  # type: ignore[no-untyped-call]
        entry = read(conn, dn, self._read_attrs(kind))
        if entry is None:
            raise UpstreamError(f"the new {kind.rt.lower()} entry could not be read back")
        return self._complete(conn, kind, [entry])[0]

    def _initial_members(
        self, conn: ldap3.Connection, attributes: dict[str, list[str]], members: Sequence[str]
    ) -> None:
        section = self.config.groups
        assert section is not None
        values = self._member_values(conn, members)
        if not values and section.placeholder_member:
            values = [section.placeholder_member]
        if values:
            attributes[section.member_attribute] = values

    async def update(
        self,
        resource_type: str,
        id: str,
        changes: dict[str, Any],
        *,
        expected_version: str | None = None,
    ) -> Record:
        kind = self._kind(resource_type)
        return await self._write(lambda conn: self._update(conn, kind, id, dict(changes)))  # type: ignore[no-any-return]

    def _update(
        self, conn: ldap3.Connection, kind: _Kind, id: str, changes: dict[str, Any]
    ) -> Record:
        entry = self._find(conn, kind, id, self._read_attrs(kind))
        active = changes.get(kind.pseudo) if kind.pseudo else None
        self._check_unique(conn, kind, changes, entry.dn)
        rdn = kind.section.rdn_attribute.lower()
        mods: Changes = {
            key: [(ldap3.MODIFY_REPLACE, _ldap_values(value))]
            for key, value in changes.items()
            if key.lower() != rdn and key != kind.pseudo
        }
        rule = self.deactivation
        if kind is self.users and rule and rule.attribute and kind.pseudo in changes:
            mods.update(self._flag_change(rule, active, entry.first(rule.attribute)))
        # The modify first: it is atomic, and what the directory may refuse (a schema
        # violation) is refused before the entry is renamed or moved. LDAP has no
        # transaction around both; a rename to a taken name was refused above (unique).
        modify(conn, entry.dn, mods)
        dn = self._move(conn, kind, entry, changes, active)
        fresh = read(conn, dn, self._read_attrs(kind))
        if fresh is None:
            raise NotFound(f"no {kind.rt} with that id")
        return self._complete(conn, kind, [fresh])[0]

    def _move(
        self,
        conn: ldap3.Connection,
        kind: _Kind,
        entry: Entry,
        changes: dict[str, Any],
        active: Any,
    ) -> str:
        """Rename (a new naming value) or move (deactivation by OU) the entry: its new DN."""
        rdn = kind.section.rdn_attribute
        parts = to_dn(entry.dn)
        parent = ",".join(parts[1:])
        new_rdn = parts[0]
        named = next((k for k in changes if k.lower() == rdn.lower()), None)
        renamed = False
        if named is not None:
            if changes[named] in (None, ""):
                raise InvalidValue(f"{rdn} names the entry: it cannot be removed")
            renamed = _ldap_values(changes[named]) != entry.texts(rdn)
        if renamed and named is not None:
            new_rdn = self._dn(kind, changes[named], "x").rpartition(",")[0]
        if isinstance(active, bool) and self.deactivation and self.deactivation.by == "ou":
            parent = self._parent(kind, active)
        moved = not _same_dn(parent, ",".join(parts[1:]))
        if not renamed and not moved:
            return entry.dn
        new_dn = f"{new_rdn},{parent}"
        conn.modify_dn(
            entry.dn, new_rdn, delete_old_dn=True, new_superior=parent if moved else None
        )
        self._follow(conn, kind, entry, new_dn, changes.get(named) if named else None)
        return new_dn

    def _follow(
        self, conn: ldap3.Connection, kind: _Kind, entry: Entry, new_dn: str, new_name: Any
    ) -> None:
        """Keep a renamed or moved user's memberships (the directory may not: no refint)."""
        section = self.config.groups
        if kind is not self.users or section is None:
            return
        if section.member_attribute == "memberUid":
            if section.member_uid_attribute.lower() != kind.section.rdn_attribute.lower():
                return
            old, new = entry.first(section.member_uid_attribute), _ldap_values(new_name)
        else:
            old, new = entry.dn, [new_dn]
        if old is None or not new:
            return
        self._replace_member(conn, old, new[0])

    def _replace_member(self, conn: ldap3.Connection, old: str, new: str) -> None:
        groups, section = self._group_kind(), self.config.groups
        assert section is not None
        attribute = section.member_attribute
        flt = groups.filter(any_of(attribute, [old]))
        for group in search_all(conn, section.base_dn, flt, ["1.1"], self.config.page_size):
            self._change_members(conn, group.dn, [new], [old])

    async def delete(
        self, resource_type: str, id: str, *, expected_version: str | None = None
    ) -> None:
        kind = self._kind(resource_type)
        await self._write(lambda conn: self._delete(conn, kind, id))

    def _delete(self, conn: ldap3.Connection, kind: _Kind, id: str) -> None:
        attrs = ["1.1"]
        section = self.config.groups
        if section is not None and section.member_attribute == "memberUid":
            attrs = [section.member_uid_attribute]
        entry = self._find(conn, kind, id, attrs)
        if kind is self.users and section is not None:
            value = self._member_value(entry)
            if value is not None:
                self._leave_groups(conn, value)
        conn.delete(entry.dn)  # type: ignore[no-untyped-call]

    def _leave_groups(self, conn: ldap3.Connection, value: str) -> None:
        groups, section = self._group_kind(), self.config.groups
        assert section is not None
        flt = groups.filter(any_of(section.member_attribute, [value]))
        for group in search_all(conn, section.base_dn, flt, ["1.1"], self.config.page_size):
            self._change_members(conn, group.dn, [], [value])

    # -- membership ------------------------------------------------------------------------

    def _member_values(self, conn: ldap3.Connection, member_ids: Sequence[str]) -> list[str]:
        """The member attribute's values for users (by SCIM id); InvalidValue for unknown ids."""
        section = self.config.groups
        assert section is not None
        ids = list(dict.fromkeys(member_ids))
        if not ids:
            return []
        id_attr = self.users.section.id_attribute
        wanted = [id_attr]
        if section.member_attribute == "memberUid":
            wanted.append(section.member_uid_attribute)
        values: dict[str, str] = {}
        for start in range(0, len(ids), 200):
            flt = self.users.filter(any_of(id_attr, ids[start : start + 200]))
            for e in search_all(conn, self.users.section.base_dn, flt, wanted, 1000):
                value = self._member_value(e)
                if value is not None:
                    values[e.first(id_attr) or ""] = value
        missing = [i for i in ids if i not in values]
        if missing:
            raise InvalidValue(f"no user with id {', '.join(missing[:10])}")
        return [values[i] for i in ids]

    def _change_members(
        self, conn: ldap3.Connection, dn: str, add: Sequence[str], remove: Sequence[str]
    ) -> None:
        section = self.config.groups
        assert section is not None
        dns = section.member_attribute != "memberUid"
        change_values(
            conn,
            dn,
            section.member_attribute,
            add,
            remove,
            key=_norm_dn if dns else str,
            placeholder=section.placeholder_member,
        )

    async def add_members(self, group_id: str, member_ids: list[str]) -> None:
        kind = self._group_kind()
        await self._write(lambda conn: self._add_members(conn, kind, group_id, member_ids))

    def _add_members(
        self, conn: ldap3.Connection, kind: _Kind, group_id: str, member_ids: list[str]
    ) -> None:
        section = self.config.groups
        assert section is not None
        group = self._find(conn, kind, group_id, ["1.1"])
        values = self._member_values(conn, member_ids)
        if values:
            self._change_members(conn, group.dn, values, [])

    async def remove_members(self, group_id: str, member_ids: list[str]) -> None:
        kind = self._group_kind()
        await self._write(lambda conn: self._remove_members(conn, kind, group_id, member_ids))

    def _remove_members(
        self, conn: ldap3.Connection, kind: _Kind, group_id: str, member_ids: list[str]
    ) -> None:
        section = self.config.groups
        assert section is not None
        group = self._find(conn, kind, group_id, ["1.1"])
        values = self._known_member_values(conn, member_ids)
        if values:
            self._change_members(conn, group.dn, [], values)

    def _known_member_values(self, conn: ldap3.Connection, member_ids: list[str]) -> list[str]:
        """Like :meth:`_member_values`, but ids of no user are skipped (not members either)."""
        try:
            return self._member_values(conn, member_ids)
        except InvalidValue:
            values = []
            for id in dict.fromkeys(member_ids):
                try:
                    values += self._member_values(conn, [id])
                except InvalidValue:
                    continue
            return values
