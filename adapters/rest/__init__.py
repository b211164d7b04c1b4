"""The declarative REST adapter: a legacy app's REST API described in the app's settings.

Each operation (get, list, create, update, delete, membership, deactivation)
is one configured call; records are the legacy app's own JSON objects, which
the app's mapping turns into SCIM and back. docs/rest-adapter.md is the guide
for integration engineers; :mod:`adapters.rest.config` holds the settings.

How SCIM lands on the API:

* filters: ``and``-terms that a configured query parameter answers are sent
  as parameters; the rest is checked on the candidates the API returned
  (bounded by ``max_scan``), or refused with 400 invalidFilter when nothing
  narrows them (see :mod:`adapters.rest.filters`);
* paging: :mod:`adapters.rest.paging`;
* membership: the group's members are read first, so adds and removals are
  idempotent even where the API is not (Redmine answers 422 to adding a
  present member);
* errors: translated in one place, :mod:`adapters.rest.errors`;
* nested legacy fields: a mapping may name ``contact.email``; bodies carry it as
  ``{"contact": {"email": ...}}`` (see :func:`nested`);
* group names: with ``unique_group_names`` (the app's setting, on by default) a
  create or rename first looks the name up, and a taken one is 409 uniqueness;
* a create whose answer is unusable (the app may have stored the record) has an
  unknown outcome, remembered like a dropped connection (gateway/dedupe.py).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from pydantic import BaseModel
from scim2_models.path import FilterNode
from yarl import URL

from adapters.rest.client import MISSING, Answer, Client, Request, Unknown, dig
from adapters.rest.config import (
    CursorPaging,
    DeleteCall,
    GroupSettings,
    ListCall,
    MembersRead,
    NoPaging,
    RecordList,
    RefList,
    ResourceSettings,
    RestSettings,
    UserSettings,
)
from adapters.rest.errors import malformed
from adapters.rest.filters import (
    ParamIndex,
    declared_filters,
    param_index,
    plan_filter,
    scim_view,
)
from adapters.rest.paging import Chunk, Fetch, Window, read_window
from gateway.limits import mark_unknown
from gateway.mapping import Mapping
from gateway.scim.filter import compile_filter, filter_leaves
from gateway.scim.schema import build_resource_types
from gateway.sdk import (
    Adapter,
    Capabilities,
    Conflict,
    InvalidFilter,
    InvalidValue,
    LegacyCall,
    NotFound,
    Page,
    Query,
    Record,
    Ref,
    ScimError,
    UpstreamError,
    eq_filter,
    partial_failure,
)

__all__ = ["RestAdapter", "RestSettings"]

_TYPES = build_resource_types()
_NEW_ID = Unknown("{new id}")


class RestAdapter(Adapter):
    settings_model = RestSettings

    def __init__(
        self, settings: BaseModel | None = None, *, app: str = "", mapping: Mapping | None = None
    ) -> None:
        if not isinstance(settings, RestSettings):
            raise TypeError("the REST adapter needs its settings (a RestSettings)")
        super().__init__(settings, app=app, mapping=mapping)
        self.config = settings
        self.client = Client(settings)
        self._sections: dict[str, ResourceSettings] = {"User": settings.users}
        if settings.groups is not None:
            self._sections["Group"] = settings.groups
        self._params: dict[str, ParamIndex] = {
            name: param_index(section, name, self.mapping)
            for name, section in self._sections.items()
        }
        # The legacy fields holding meta.created and meta.lastModified (the mapping's `fields`).
        self._stamps = {
            name: (
                self.mapping.legacy_field(name, "meta.created"),
                self.mapping.legacy_field(name, "meta.lastmodified"),
            )
            for name in self._sections
        }
        self.capabilities = Capabilities(
            resource_types=frozenset(self._sections),
            filter_attributes={
                name: declared_filters(section, self._params[name], name)
                for name, section in self._sections.items()
            },
            filter_logic=True,  # ``and`` of parameters; the rest is checked on candidates
            sort=False,
            versions=False,
            groups=settings.groups is not None,
            skip_members=True,
        )

    async def open(self) -> None:
        await self.client.open()

    async def aclose(self) -> None:
        await self.client.aclose()

    async def check(self) -> list[str]:
        """List one record of each type and read it back: the list and get endpoints, the
        auth and the answers' shape are as configured. Writes are never tried."""
        await self.open()
        try:
            return [p for rt in self._sections for p in await self._check_reads(rt)]
        finally:
            await self.aclose()

    async def _check_reads(self, resource_type: str) -> list[str]:
        key = "users" if resource_type == "User" else "groups"
        section = self._section(resource_type)
        try:
            page = await self.search(Query(resource_type, count=1))
        except ScimError as exc:
            return [f"{key}.list: {section.list.method} {section.list.path}: {exc.detail}"]
        if not page.records:
            return []  # nothing to read back: the get endpoint stays unchecked
        try:
            await self.get(resource_type, page.records[0].id)
        except ScimError as exc:
            return [f"{key}.get: {section.get.method} {section.get.path}: {exc.detail}"]
        return []

    # -- helpers -----------------------------------------------------------------------

    def _section(self, resource_type: str) -> ResourceSettings:
        try:
            return self._sections[resource_type]
        except KeyError:
            raise NotFound(f"this app has no {resource_type} resources") from None

    def _group_section(self) -> GroupSettings:
        groups = self.config.groups
        if groups is None:
            raise NotFound("this app has no groups")
        return groups

    def _record(self, resource_type: str, raw: Any, label: str) -> Record:
        """A Record of a legacy record (a JSON object) from an answer."""
        section = self._section(resource_type)
        if not isinstance(raw, dict):
            raise malformed(label, "a record is not a JSON object")
        id = raw.get(section.id_field)
        if id is None or isinstance(id, bool | dict | list) or id == "":
            raise malformed(label, f"a record has no {section.id_field}")
        created, modified = self._stamps[resource_type]
        record = Record(
            str(id),
            dict(raw),
            created=_moment(dig(raw, created)) if created else None,
            last_modified=_moment(dig(raw, modified)) if modified else None,
        )
        if isinstance(section, GroupSettings) and isinstance(section.members.read, RefList):
            record.members = _refs(section.members.read, raw, "User", label)
        elif isinstance(section, UserSettings) and section.groups is not None:
            record.groups = _refs(section.groups, raw, "direct", label)
        return record

    def _answer_record(self, resource_type: str, answer: Answer, where: str) -> Record:
        raw = dig(answer.json(), where)
        if raw is MISSING:
            raise malformed(answer.label, f"no record at '{where or '(the whole answer)'}'")
        return self._record(resource_type, raw, answer.label)

    # -- reading -----------------------------------------------------------------------

    async def get(self, resource_type: str, id: str, *, members: bool = True) -> Record:
        """One record; ``members=False`` skips the group's separate members read."""
        section = self._section(resource_type)
        answer = await self.client.send(Request(section.get, id=id))
        record = self._answer_record(resource_type, answer, section.get.record)
        read = section.members.read if isinstance(section, GroupSettings) else None
        if members and isinstance(read, MembersRead):
            record.members = await self._read_members(read, id)
        return record

    def _fetcher(self, call: ListCall, params: dict[str, str], id: str | None = None) -> Fetch:
        async def fetch(paging: dict[str, str], url: str | None) -> Chunk:
            request = Request(call, id=id, params={**params, **paging}, url=url)
            answer = await self.client.send(request, record=id is not None)
            data = answer.json()
            items = dig(data, call.items)
            if not isinstance(items, list):
                raise malformed(answer.label, f"no list at '{call.items or '(the whole answer)'}'")
            total = dig(data, call.total) if call.total else None
            next_page = answer.next_link
            if isinstance(call.paging, CursorPaging):
                found = dig(data, call.paging.next)
                next_page = str(found) if isinstance(found, str | int) and found != "" else None
            return Chunk(items, _count(total), next_page)

        return fetch

    async def search(self, query: Query) -> Page:
        section = self._section(query.resource_type)
        plan = plan_filter(query.filter, self._params[query.resource_type])
        members = query.members or _mentions_members(query.filter)
        if plan.ids:
            return await self._search_by_id(query, plan.ids, members)
        fetch = self._fetcher(section.list, plan.params)
        paging = section.list.paging
        if not plan.residual:
            window = await read_window(paging, fetch, query.start_index, query.count)
            return await self._page(query.resource_type, window, section.list, members)
        if isinstance(paging, NoPaging):
            window = await read_window(paging, fetch, 1, 2**31)
        elif not plan.params:
            raise InvalidFilter(f"this app cannot filter on {_leaves(plan.residual)}")
        else:
            limit = self.config.max_scan
            window = await read_window(paging, fetch, 1, limit + 1)
            if len(window.items) > limit or window.total > limit:
                raise InvalidFilter(
                    f"the filter leaves more than {limit} candidates for this app to check; "
                    "narrow it"
                )
        page = await self._page(query.resource_type, window, section.list, members)
        records = page.records
        return self._matching(query, records, plan.residual)

    async def _search_by_id(self, query: Query, ids: list[str], members: bool) -> Page:
        """``id eq`` reads that record; the whole filter is then checked on it."""
        found: list[Record] = []
        if len(set(ids)) == 1:
            with contextlib.suppress(NotFound):
                found = [await self.get(query.resource_type, ids[0], members=members)]
        return self._matching(query, found, [query.filter] if query.filter else [])

    async def _page(
        self, resource_type: str, window: Window, call: RecordList, members: bool = True
    ) -> Page:
        label = f"{call.method} {call.path}"
        records = [self._record(resource_type, raw, label) for raw in window.items]
        if call.read_each:
            # The listed items are incomplete: read each one whole (one removed meanwhile is gone).
            complete = []
            for listed in records:
                with contextlib.suppress(NotFound):
                    complete.append(await self.get(resource_type, listed.id, members=members))
            records = complete
        return Page(records, window.total)

    def _matching(self, query: Query, records: list[Record], residual: list[FilterNode]) -> Page:
        """The window of ``records`` that pass every residual term."""
        rtype = _TYPES[query.resource_type]
        tests = [compile_filter(term, rtype) for term in residual]
        kept = records
        if tests:
            views = ((r, self._view(query.resource_type, r)) for r in records)
            kept = [r for r, view in views if all(test(view) for test in tests)]
        start = query.start_index - 1
        return Page(kept[start : start + query.count], len(kept))

    def _view(self, resource_type: str, record: Record) -> dict[str, Any]:
        return scim_view(self.mapping, resource_type, record.id, record.data)

    # -- writing -----------------------------------------------------------------------

    def _create_request(self, section: ResourceSettings, data: dict[str, Any]) -> Request:
        return Request(section.create, record=_writable(section, data))

    async def create(
        self, resource_type: str, data: dict[str, Any], *, members: Sequence[str] = ()
    ) -> Record:
        section = self._section(resource_type)
        if resource_type == "Group":
            await self._check_group_name(data, None)
        answer = await self.client.send(self._create_request(section, data))
        try:
            record = await self._created(resource_type, section, answer)
        except UpstreamError as exc:
            raise _unknown_outcome(exc) from exc
        if members:
            try:
                await self._send_members(self._member_requests(record.id, members, (), current=[]))
            except ScimError as exc:
                raise _partly_done(exc, record.id) from exc
            record = await self.get(resource_type, record.id)
        return record

    async def _created(
        self, resource_type: str, section: ResourceSettings, answer: Answer
    ) -> Record:
        where = section.create.record
        raw = dig(_json_or_none(answer), where) if where is not None else MISSING
        if isinstance(raw, dict):
            return self._record(resource_type, raw, answer.label)
        location = answer.headers.get("Location")
        if location:
            last = URL(location).raw_path.rstrip("/").rsplit("/", 1)[-1]
            id = unquote(last).removesuffix(".json")
            if id:
                return await self.get(resource_type, id)
        raise malformed(answer.label, "neither a record nor a Location header")

    def _update_requests(
        self,
        section: ResourceSettings,
        id: str,
        changes: dict[str, Any],
        current: dict[str, Any] | None,
    ) -> list[Request]:
        """The update call (if any field changes) and a (de)activation call (if configured)."""
        changes = dict(changes)
        switch = None
        deactivation = getattr(section, "deactivation", None)
        if deactivation is not None and deactivation.field in changes:
            value = changes.pop(deactivation.field)
            inactive = value == deactivation.inactive
            switch = deactivation.deactivate if inactive else deactivation.activate
        requests = []
        if changes:
            body = changes
            if section.update.send == "full" and current is not None:
                body = copy.deepcopy({k: v for k, v in current.items() if k != section.id_field})
                for key, value in changes.items():
                    _set_path(body, key, value)
            requests.append(Request(section.update, id=id, record=_writable(section, body)))
        if switch is not None:
            requests.append(Request(switch, id=id))
        return requests

    async def update(
        self,
        resource_type: str,
        id: str,
        changes: dict[str, Any],
        *,
        expected_version: str | None = None,
    ) -> Record:
        section = self._section(resource_type)
        if resource_type == "Group":
            await self._check_group_name(changes, id)
        current = None
        if section.update.send == "full":
            current = (await self.get(resource_type, id)).data
        requests = self._update_requests(section, id, changes, current)
        answers = await self._send_steps(section, f"{resource_type} {id}", requests)
        where = section.update.record
        if len(requests) == 1 and requests[0].op is section.update and where is not None:
            raw = dig(_json_or_none(answers[0]), where)
            if isinstance(raw, dict) and section.id_field in raw:
                return self._record(resource_type, raw, answers[0].label)
        # No record in the answer (204), or several calls: read what the app holds now.
        return await self.get(resource_type, id)

    async def delete(
        self, resource_type: str, id: str, *, expected_version: str | None = None
    ) -> None:
        section = self._section(resource_type)
        done: list[str] = []
        for request in _delete_requests(section.delete, id):
            try:
                await self.client.send(request)
            except ScimError as exc:
                if not done or isinstance(exc, NotFound):
                    raise
                failed = "delete" if request.op is section.delete else request.label
                raise partial_failure(exc, f"{resource_type} {id}", tuple(done), failed) from exc
            done.append(request.label)

    async def _check_group_name(self, data: dict[str, Any], own_id: str | None) -> None:
        """409 uniqueness when another group holds the displayName ``data`` gives."""
        field = self.mapping.legacy_field("Group", "displayname")
        name = data.get(field) if field and self.unique_group_names else None
        if not isinstance(name, str) or not name:
            return
        query = Query("Group", eq_filter("displayName", name), count=2)
        try:
            page = await self.search(query)
        except InvalidFilter as exc:
            raise UpstreamError(
                "cannot check that the group name is free (unique_group_names): "
                f"{exc.detail}; declare a filter on the group's name in the app's settings"
            ) from exc
        taken = [r.id for r in page.records if r.id != own_id]
        if taken:
            raise Conflict(f"a Group with this displayName already exists (id {taken[0]})")

    async def _send_all(self, requests: list[Request]) -> list[Answer]:
        return [await self.client.send(r) for r in requests]

    async def _send_steps(
        self, section: ResourceSettings, resource: str, requests: list[Request]
    ) -> list[Answer]:
        """An update's calls; when the (de)activation fails after the update, it says so."""
        deactivation = getattr(section, "deactivation", None)
        answers: list[Answer] = []
        for request in requests:
            try:
                answers.append(await self.client.send(request))
            except ScimError as exc:
                if not answers:
                    raise
                # Only a (de)activation follows the update.
                off = deactivation is not None and request.op is deactivation.deactivate
                failed = "deactivate" if off else "activate"
                raise partial_failure(exc, resource, ("update",), failed) from exc
        return answers

    # -- membership --------------------------------------------------------------------

    async def _read_members(self, read: MembersRead, group_id: str) -> list[Ref]:
        fetch = self._fetcher(read, {}, id=group_id)
        window = await read_window(read.paging, fetch, 1, read.max_members + 1)
        if len(window.items) > read.max_members:
            raise UpstreamError(
                f"the group has more than {read.max_members} members (members.read.max_members)"
            )
        label = f"{read.method} {read.path}"
        return _ref_list(window.items, read.id, read.display, "User", label)

    async def _member_ids(self, group_id: str) -> list[str]:
        group = await self.get("Group", group_id)
        return [m.value for m in group.members or ()]

    def _member_requests(
        self,
        group_id: str,
        added: Sequence[str],
        removed: Sequence[str],
        *,
        current: Sequence[str] | None,
    ) -> list[Request]:
        """Calls that add ``added`` and remove ``removed``, skipping what ``current`` shows done."""
        settings = self._group_section().members
        integer = settings.id_type == "integer"
        if any(not m for m in (*added, *removed)):
            raise InvalidValue("a member value is empty")
        have = set(current) if current is not None else None
        adding = [m for m in dict.fromkeys(added) if have is None or m not in have]
        removing = [m for m in dict.fromkeys(removed) if have is None or m in have]
        if settings.write is not None:
            if not adding and not removing:
                return []
            gone = set(removing)
            base = list(current) if current is not None else [Unknown("{current members}")]
            members = [m for m in base if m not in gone] + adding
            values = [m if isinstance(m, Unknown) else _member_value(m, integer) for m in members]
            update = self._group_section().update
            return [Request(update, id=group_id, record={settings.write.field: values})]
        requests = []
        for call, ids in ((settings.remove, removing), (settings.add, adding)):
            if call is None or not ids:
                continue
            if "{members}" in f"{call.path} {call.query} {call.body}":
                requests.append(Request(call, id=group_id, members=ids, integer_ids=integer))
            else:
                requests.extend(
                    Request(call, id=group_id, member=m, integer_ids=integer) for m in ids
                )
        return requests

    async def _send_members(self, requests: list[Request]) -> None:
        try:
            await self._send_all(requests)
        except NotFound as exc:
            # The group was there a moment ago: what the app does not know is a member.
            raise InvalidValue("the app knows no such member") from exc

    async def add_members(self, group_id: str, member_ids: list[str]) -> None:
        current = await self._member_ids(group_id)
        await self._send_members(self._member_requests(group_id, member_ids, (), current=current))

    async def remove_members(self, group_id: str, member_ids: list[str]) -> None:
        current = await self._member_ids(group_id)
        await self._send_members(self._member_requests(group_id, (), member_ids, current=current))

    # -- dry run -----------------------------------------------------------------------

    def _render(self, requests: list[Request]) -> list[LegacyCall]:
        return [self.client.render(r) for r in requests]

    def describe_create(
        self, resource_type: str, data: dict[str, Any], members: Sequence[str] = ()
    ) -> list[LegacyCall]:
        section = self._section(resource_type)
        requests = [self._create_request(section, data)]
        if members:
            requests += self._member_requests(_NEW_ID, members, (), current=[])
        return self._render(requests)

    def describe_update(
        self, resource_type: str, id: str, changes: dict[str, Any]
    ) -> list[LegacyCall]:
        """With ``send: full`` the record is read first; the update shows only the changes."""
        section = self._section(resource_type)
        requests = []
        if section.update.send == "full" and changes:
            requests.append(Request(section.get, id=id))
        return self._render(requests + self._update_requests(section, id, changes, None))

    async def describe_search(self, query: Query) -> list[LegacyCall]:
        """The first request :meth:`search` sends: the filter's pushed-down parameters and
        the first page (later pages follow what the answers say)."""
        section = self._section(query.resource_type)
        plan = plan_filter(query.filter, self._params[query.resource_type])
        if plan.ids:
            one = len(set(plan.ids)) == 1
            return self._render([Request(section.get, id=plan.ids[0])] if one else [])
        sent: list[Request] = []

        async def fetch(paging: dict[str, str], url: str | None) -> Chunk:
            sent.append(Request(section.list, params={**plan.params, **paging}, url=url))
            return Chunk([], 0, None)

        start, count = query.start_index, query.count
        if plan.residual:  # as search(): candidates, checked here afterwards
            if not isinstance(section.list.paging, NoPaging) and not plan.params:
                raise InvalidFilter(f"this app cannot filter on {_leaves(plan.residual)}")
            start, count = 1, self.config.max_scan + 1
        await read_window(section.list.paging, fetch, start, count)
        return self._render(sent[:1])

    def describe_delete(self, resource_type: str, id: str) -> list[LegacyCall]:
        return self._render(_delete_requests(self._section(resource_type).delete, id))

    def describe_members(
        self,
        group_id: str,
        added: Sequence[str],
        removed: Sequence[str],
        *,
        current: Sequence[str] | None = None,
    ) -> list[LegacyCall]:
        """Without ``current``, the calls that read the members come first, and every
        added member is shown as missing and every removed one as present."""
        groups = self._group_section()
        reads: list[Request] = []
        if current is None and (added or removed):
            reads.append(Request(groups.get, id=group_id))
            if isinstance(groups.members.read, MembersRead):
                reads.append(Request(groups.members.read, id=group_id))
        return self._render(
            reads + self._member_requests(group_id, added, removed, current=current)
        )


def _json_or_none(answer: Answer) -> Any:
    """The body of a write's answer, or None when it holds no JSON (then the record is read)."""
    try:
        return answer.json()
    except UpstreamError:
        return None


def _writable(section: ResourceSettings, data: dict[str, Any]) -> dict[str, Any]:
    hidden = frozenset(section.read_only)
    return nested({k: v for k, v in data.items() if k not in hidden})


def nested(data: dict[str, Any]) -> dict[str, Any]:
    """Dotted legacy fields as nested objects: ``{"contact.email": x}`` -> ``{"contact":
    {"email": x}}``; a None stays None there (a merge-patch removal)."""
    if not any("." in key for key in data):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        _set_path(out, key, value, keep_none=True)
    return out


def _set_path(body: dict[str, Any], key: str, value: Any, *, keep_none: bool = False) -> None:
    """Set (or with None and not ``keep_none``, remove) the dotted ``key`` in ``body``."""
    *parents, last = key.split(".")
    holder = body
    for part in parents:
        inner = holder.get(part)
        if not isinstance(inner, dict):
            if value is None and not keep_none:
                return
            inner = holder[part] = {}
        holder = inner
    if value is None and not keep_none:
        holder.pop(last, None)
    else:
        holder[last] = value


def _delete_requests(call: DeleteCall, id: str) -> list[Request]:
    return [*(Request(step, id=id) for step in call.before), Request(call, id=id)]


def _unknown_outcome(exc: UpstreamError) -> UpstreamError:
    """A create the app answered with something unusable: it may have stored the record."""
    if not exc.outcome_unknown:
        exc.detail += "; whether the app created the record is unknown"
        exc.args = (exc.detail,)
        exc.outcome_unknown = True
        mark_unknown()
    return exc


def _member_value(value: str, integer: bool) -> Any:
    if not integer:
        return value
    if not value.isdigit():
        raise InvalidValue("this app's member ids are numbers; a member value is not")
    return int(value)


def _refs(refs: RefList, raw: dict[str, Any], kind: str, label: str) -> list[Ref] | None:
    """References listed in a record's field; None when the record does not carry the field."""
    value = dig(raw, refs.field)
    if value is MISSING or value is None:
        return None
    if not isinstance(value, list):
        raise malformed(label, f"'{refs.field}' is not a list")
    return _ref_list(value, refs.id, refs.display, kind, label)


def _ref_list(
    elements: list[Any], id: str | None, display: str | None, kind: str, label: str
) -> list[Ref]:
    """Ids, or objects holding an id (and maybe a display name), as Refs."""
    found = []
    for element in elements:
        if id is not None:
            if not isinstance(element, dict) or element.get(id) is None:
                raise malformed(label, f"a listed reference has no {id}")
            name = element.get(display) if display else None
            found.append(Ref(str(element[id]), kind, name if isinstance(name, str) else None))
        elif isinstance(element, str | int) and not isinstance(element, bool):
            found.append(Ref(str(element), kind))
        else:
            raise malformed(label, "a listed reference is not an id")
    return found


def _moment(value: Any) -> datetime | None:
    """An ISO 8601 timestamp of a record (naive: UTC); None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _leaves(terms: list[FilterNode]) -> str:
    return ", ".join(sorted({path for term in terms for path, _ in filter_leaves(term)}))


def _partly_done(exc: ScimError, group_id: str) -> ScimError:
    """``exc``, saying the group exists although its members were not added."""
    error = copy.copy(exc)
    error.detail = (
        f"the group was created (id {group_id}) but its members were not added: {exc.detail}"
    )
    error.args = (error.detail,)
    error.failed_step, error.steps_done = "add_members", ("create",)
    return error


def _mentions_members(node: FilterNode | None) -> bool:
    """A filter on ``members`` needs them read even when the response leaves them out."""
    return node is not None and any(p.startswith("members") for p, _ in filter_leaves(node))
