"""The reference adapter: users and groups kept in memory, in SCIM shape.

It declares every capability (any filter, sorting, versions, groups), so it
exercises the whole gateway; demos and tests use it. Nothing survives a
restart. Each operation runs without awaiting, so it is atomic on the event loop.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from scim2_models.path import AttrPath, CompareOperator, Comparison

from gateway.config import ConfigError
from gateway.mapping import Mapping
from gateway.scim.filter import compile_filter, sort_resources
from gateway.scim.normalize import compare_key
from gateway.scim.schema import build_resource_types
from gateway.sdk import (
    Adapter,
    Capabilities,
    Conflict,
    InvalidValue,
    NotFound,
    Page,
    PreconditionFailed,
    Query,
    Record,
    Ref,
)

_TYPES = build_resource_types()
_USER_NAME = AttrPath("userName")
#: The attribute naming each type uniquely (a Group's only while unique_group_names).
_UNIQUE = {"User": "userName", "Group": "displayName"}


class MemorySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: Refuse creates beyond this many resources per type (protects a demo from runaway clients).
    max_resources: int = Field(100_000, ge=1)
    #: A JSON file of resources the store starts with: ``{"Users": [...], "Groups": [...]}``,
    #: each in SCIM shape with its ``id`` (a group's ``members`` as ``[{"value": id}]``).
    #: Every process that opens it starts alike (``serve --workers``, a restart).
    seed: Path | None = None


@dataclass(slots=True)
class _Entry:
    """One stored resource.

    ``data`` is the adapter's own copy (filters, sorts and the name index read it) and is
    never handed out. ``snapshot`` is that data as JSON, taken by :meth:`store` on every
    write: each read parses a fresh copy from it, so a record's data shares no object with
    the store (the gateway owns what it is given and may change it, nested values too),
    and a read costs one ``orjson.loads`` instead of a dumps-and-loads round trip.
    """

    data: dict[str, Any]
    version: str  # kept as the text a record carries: no str() per read
    created: datetime
    modified: datetime
    members: dict[str, str | None] = field(default_factory=dict)  # id -> "User"/"Group"/None
    member_of: set[str] = field(default_factory=set)
    snapshot: bytes = b""

    def store(self, data: dict[str, Any]) -> None:
        """Make ``data`` (the adapter's own, not shared with a caller) the stored data."""
        self.data = data
        self.snapshot = orjson.dumps(data)

    def copy(self) -> dict[str, Any]:
        """A fresh copy of the data, sharing nothing with the store."""
        result: dict[str, Any] = orjson.loads(self.snapshot)
        return result


_new = object.__new__


class _Page:
    """The snapshots of a page's records, parsed together, as one JSON array, when the
    first of them reads its data (one call for the page is much cheaper than one each)."""

    __slots__ = ("_parsed", "_snapshots")

    def __init__(self, snapshots: list[bytes]) -> None:
        self._snapshots = snapshots
        self._parsed: list[dict[str, Any]] | None = None

    def data(self, index: int) -> dict[str, Any]:
        if self._parsed is None:
            self._parsed = orjson.loads(b"[" + b",".join(self._snapshots) + b"]")
        return self._parsed[index]


class _Parsed(Record):
    """A record of a page, whose data is parsed from the entry's snapshot when first read.

    A list whose JSON the gateway kept from an earlier one (gateway/rendered.py) reads only
    the record's id, version, timestamps and references, so it never pays for the parse,
    most of what a page cost here. The snapshot is the one taken at the search: a later
    write does not change the record, as with data parsed at once. Each record's data is
    its own objects, as ever.
    """

    __slots__ = ("_data", "_index", "_page")
    _data: dict[str, Any] | None  # None: not read yet (Record's own slot stays unused)
    _index: int
    _page: _Page

    @classmethod
    def of(cls, id: str, entry: _Entry, page: _Page, index: int) -> _Parsed:
        # Made without Record.__init__, whose setting of data through the property below
        # cost as much as the rest.
        record = _new(cls)
        record.id = id
        record.version = entry.version
        record.created = entry.created
        record.last_modified = entry.modified
        record.members = record.groups = None
        record._data = None
        record._page = page
        record._index = index
        return record

    @property
    def data(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            data = self._data = self._page.data(self._index)
        return data

    @data.setter
    def data(self, value: dict[str, Any]) -> None:
        self._data = value


def _clone(data: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(orjson.dumps(data))
    return result


class MemoryAdapter(Adapter):
    settings_model = MemorySettings
    capabilities = Capabilities(
        filter_attributes={"User": None, "Group": None},
        filter_logic=True,
        sort=True,
        versions=True,
        groups=True,
        skip_members=True,
        exact_versions=True,  # one counter for every write of every resource
    )

    def __init__(
        self, settings: BaseModel | None = None, *, app: str = "", mapping: Mapping | None = None
    ) -> None:
        super().__init__(settings or MemorySettings(), app=app, mapping=mapping)
        assert isinstance(self.settings, MemorySettings)
        self._limit = self.settings.max_resources
        self._seed = self.settings.seed
        self._store: dict[str, dict[str, _Entry]] = {"User": {}, "Group": {}}
        self._versions = itertools.count(1)
        # lower-case userName / displayName -> id, per type
        self._names: dict[str, dict[str, str]] = {"User": {}, "Group": {}}

    async def open(self) -> None:
        if self._seed is not None:
            self.load_seed(self._seed)

    def load_seed(self, path: Path) -> None:
        """Add the resources of a seed file (see MemorySettings.seed); ConfigError if unusable
        (``serve`` reports it as a configuration error, not a traceback)."""
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            problem = f"cannot read it as JSON: {exc}"
            raise ConfigError(f"memory adapter seed {path}: {problem}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"memory adapter seed {path}: not a JSON object")
        for key, rtype in (("Users", "User"), ("Groups", "Group")):
            for resource in data.get(key) or ():
                if not isinstance(resource, dict) or not isinstance(resource.get("id"), str):
                    raise ConfigError(f"memory adapter seed {path}: each of {key} needs an id")
                body = {k: v for k, v in resource.items() if k not in ("id", "members", "meta")}
                members = [m["value"] for m in resource.get("members") or () if "value" in m]
                self._insert(rtype, resource["id"], body, members)

    # -- reading ---------------------------------------------------------------

    def _entry(self, resource_type: str, id: str) -> _Entry:
        try:
            return self._store[resource_type][id]
        except KeyError:
            raise NotFound(f"{resource_type} {id} not found") from None

    def _record(self, resource_type: str, id: str, entry: _Entry, members: bool = True) -> Record:
        record = Record(id, entry.copy(), entry.version, entry.created, entry.modified)
        return self._with_refs(resource_type, entry, record, members)

    def _with_refs(
        self, resource_type: str, entry: _Entry, record: Record, members: bool
    ) -> Record:
        """The record with its group's members or user's groups, when ``members``."""
        if not members:
            return record  # the response shows no members (groups): not copied
        if resource_type == "Group":
            record.members = [Ref(mid, kind) for mid, kind in entry.members.items()]
        elif entry.member_of:
            groups = self._store["Group"]
            record.groups = [
                Ref(gid, "direct", groups[gid].data.get("displayName"))
                for gid in sorted(entry.member_of)
            ]
        return record

    def _records(self, resource_type: str, ids: Sequence[str], members: bool) -> list[Record]:
        """The records of a page, each parsing its data only when it is read (_Parsed)."""
        store = self._store[resource_type]
        entries = [store[i] for i in ids]
        page = _Page([e.snapshot for e in entries])
        records: list[Record] = [
            _Parsed.of(i, e, page, n) for n, (i, e) in enumerate(zip(ids, entries, strict=True))
        ]
        if members:  # the references of those that have any (most users are in no group)
            for record, e in zip(records, entries, strict=True):
                if e.members or e.member_of or resource_type == "Group":
                    self._with_refs(resource_type, e, record, members)
        return records

    def _view(self, resource_type: str, id: str, entry: _Entry) -> dict[str, Any]:
        """The resource as SCIM sees it, for filtering and sorting."""
        view = {**entry.data, "id": id}
        view["meta"] = {
            "resourceType": resource_type,
            "created": entry.created.isoformat(),
            "lastModified": entry.modified.isoformat(),
            "version": entry.version,
        }
        if entry.members:
            view["members"] = [{"value": m, "type": t} for m, t in entry.members.items()]
        if entry.member_of:
            view["groups"] = [{"value": gid, "type": "direct"} for gid in entry.member_of]
        return view

    async def get(self, resource_type: str, id: str, *, members: bool = True) -> Record:
        return self._record(resource_type, id, self._entry(resource_type, id), members)

    async def search(self, query: Query) -> Page:
        rtype = _TYPES[query.resource_type]
        store = self._store[query.resource_type]
        start = query.start_index - 1
        if query.filter is None and not query.sort_by and start >= 0:
            # Every resource, in insertion order: the page without a list of every id.
            page = list(itertools.islice(store, start, start + query.count))
            return Page(self._records(query.resource_type, page, query.members), len(store))
        ids = self._candidates(query)
        views = [self._view(query.resource_type, i, store[i]) for i in ids]
        if query.filter is not None:
            match: Callable[[MappingABC[str, Any]], bool] = compile_filter(query.filter, rtype)
            views = [v for v in views if match(v)]
        if query.sort_by:
            views = sort_resources(views, query.sort_by, query.descending, rtype)
        ids = [v["id"] for v in views]
        page = ids[start : start + query.count]
        return Page(self._records(query.resource_type, page, query.members), len(ids))

    def _candidates(self, query: Query) -> list[str]:
        """Ids that may match; a userName eq filter is answered from the index."""
        f = query.filter
        if (
            query.resource_type == "User"
            and isinstance(f, Comparison)
            and f.op is CompareOperator.eq
            and f.attr_path == _USER_NAME
            and isinstance(f.value, str)
        ):
            found = self._names["User"].get(compare_key(f.value))
            return [found] if found is not None else []
        return list(self._store[query.resource_type])

    # -- writing ---------------------------------------------------------------

    def _check_unique(
        self, resource_type: str, data: MappingABC[str, Any], own: str | None
    ) -> None:
        attribute = _UNIQUE[resource_type]
        if attribute not in data or (resource_type == "Group" and not self.unique_group_names):
            return
        holder = self._names[resource_type].get(compare_key(str(data[attribute])))
        if holder is not None and holder != own:
            raise Conflict(f"{attribute} is already taken")

    def _index(self, resource_type: str, id: str, old: Any, new: Any) -> None:
        """Keep the name index; with duplicate group names allowed, it holds one of them."""
        names = self._names[resource_type]
        if old == new:
            return
        if old is not None and names.get(compare_key(str(old))) == id:
            del names[compare_key(str(old))]
        if new is not None:
            names[compare_key(str(new))] = id

    @staticmethod
    def _check_members(group_id: str, member_ids: list[str]) -> None:
        # Unknown ids are kept, like any SCIM store: IdPs may add a member
        # before they create it (RFC 7644 requires no referential check).
        if group_id in member_ids:
            raise InvalidValue("a group cannot be a member of itself")

    def _touch(self, entry: _Entry) -> None:
        entry.version = str(next(self._versions))
        entry.modified = datetime.now(UTC)

    async def create(
        self, resource_type: str, data: dict[str, Any], *, members: Sequence[str] = ()
    ) -> Record:
        store = self._store[resource_type]
        if len(store) >= self._limit:
            raise InvalidValue(f"the memory adapter holds at most {self._limit} {resource_type}s")
        return self._insert(resource_type, str(uuid.uuid4()), data, members)

    def _insert(
        self, resource_type: str, id: str, data: dict[str, Any], members: Sequence[str]
    ) -> Record:
        if id in self._store[resource_type]:
            raise Conflict(f"{resource_type} {id} exists already")
        self._check_unique(resource_type, data, None)
        now = datetime.now(UTC)
        entry = _Entry({}, str(next(self._versions)), now, now)
        entry.store(_clone(data))
        self._store[resource_type][id] = entry
        self._index(resource_type, id, None, data.get(_UNIQUE[resource_type]))
        self._link(id, entry, list(members))
        return self._record(resource_type, id, entry)

    async def update(
        self,
        resource_type: str,
        id: str,
        changes: dict[str, Any],
        *,
        expected_version: str | None = None,
    ) -> Record:
        entry = self._entry(resource_type, id)
        self._check_version(entry, expected_version)
        self._check_unique(resource_type, changes, id)
        unique = _UNIQUE[resource_type]
        if unique in changes:
            self._index(resource_type, id, entry.data.get(unique), changes[unique])
        data = dict(entry.data)
        for key, value in _clone(changes).items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        entry.store(data)
        self._touch(entry)
        return self._record(resource_type, id, entry)

    async def delete(
        self, resource_type: str, id: str, *, expected_version: str | None = None
    ) -> None:
        entry = self._entry(resource_type, id)
        self._check_version(entry, expected_version)
        if resource_type == "Group":
            self._unlink(id, entry, list(entry.members))
        for gid in list(entry.member_of):
            group = self._store["Group"][gid]
            self._unlink(gid, group, [id])
            self._touch(group)
        self._index(resource_type, id, entry.data.get(_UNIQUE[resource_type]), None)
        del self._store[resource_type][id]

    @staticmethod
    def _check_version(entry: _Entry, expected: str | None) -> None:
        if expected is not None and expected != entry.version:
            raise PreconditionFailed("the resource has changed since that version")

    # -- membership --------------------------------------------------------------

    def _link(self, group_id: str, group: _Entry, member_ids: list[str]) -> None:
        self._check_members(group_id, member_ids)
        for mid in member_ids:
            if mid in group.members:
                continue
            group.members[mid] = None
            for rtype in ("User", "Group"):
                member = self._store[rtype].get(mid)
                if member is not None:
                    group.members[mid] = rtype
                    member.member_of.add(group_id)
                    break

    def _unlink(self, group_id: str, group: _Entry, member_ids: list[str]) -> None:
        gone = set(member_ids)
        for mid in gone:
            group.members.pop(mid, None)
        for mid in gone:
            for rtype in ("User", "Group"):
                member = self._store[rtype].get(mid)
                if member is not None:
                    member.member_of.discard(group_id)

    async def add_members(self, group_id: str, member_ids: list[str]) -> None:
        group = self._entry("Group", group_id)
        self._link(group_id, group, member_ids)
        self._touch(group)

    async def remove_members(self, group_id: str, member_ids: list[str]) -> None:
        group = self._entry("Group", group_id)
        self._unlink(group_id, group, member_ids)
        self._touch(group)
