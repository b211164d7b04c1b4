"""One async method per SCIM operation; the only code that awaits adapters.

Each method reads as the way of a request in DESIGN.md: parse into SCIM
values, fetch what is current, compute the change on the SCIM view, send the
adapter only the difference (group membership as add/remove deltas), and turn
the adapter's record back into a SCIM resource.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

import orjson
from scim2_models.path import FilterNode, LogicalExpr, LogicalOperator

from gateway.config import AppConfig
from gateway.dedupe import (
    MemoryUnknownCreates,
    UnknownCreates,
    name_key,
    outcome_unknown,
    unknown_create_error,
)
from gateway.errors import (
    BadRequest,
    Conflict,
    InvalidFilter,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NotFound,
    PayloadTooLarge,
    PreconditionFailed,
    ScimError,
    UpstreamError,
)
from gateway.guard import Guard
from gateway.operation import NULL_RECORDER, Operation, bound, current
from gateway.rendered import RenderedRecords
from gateway.scim.filter import (
    bind_filter,
    compile_filter,
    filter_leaves,
    implied_terms,
    parse_filter,
    sort_key_path,
    sort_resources,
    split_conjuncts,
    uses_logic,
)
from gateway.scim.normalize import clean_name
from gateway.scim.patch import PatchOp, apply_patch, parse_patch
from gateway.scim.query import ListParams
from gateway.scim.resource import check_required, normalize_resource, project, shown
from gateway.scim.schema import (
    BULK_REQUEST_URN,
    BULK_RESPONSE_URN,
    LIST_URN,
    SPC_URN,
    Resolved,
    ResourceType,
    build_resource_types,
)
from gateway.sdk import Adapter, Page, Query, Record, Ref
from gateway.state.ledger import Ledger, Note, fingerprint, state_of
from gateway.steps import Steps
from gateway.telemetry import operation_span, span

#: The attribute that names a resource uniquely, by resource type (RFC 7643 4.1.1, 4.2).
_UNIQUE = {"User": "userName", "Group": "displayName"}

# Set by the gateway or carried as member deltas, never through a mapping.
_NOT_MAPPED = frozenset({"id", "meta", "schemas", "members", "groups"})


#: A resource in a ListResponse: a dict, or the kept JSON of an unchanged one.
Shown = dict[str, Any] | orjson.Fragment


def format_etag(version: str) -> str:
    return f'W/"{version}"'


def parse_etags(header: str) -> list[str]:
    """The versions listed in an If-Match / If-None-Match header (``*`` kept as is)."""
    tags = []
    for part in header.split(","):
        tag = part.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        tags.append(tag.strip('"'))
    return [t for t in tags if t]


@dataclass(frozen=True, slots=True)
class Projection:
    attributes: Sequence[str] = ()
    excluded: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class WritePlan:
    """What a PUT or PATCH sends the adapter: changed legacy fields and member deltas."""

    changes: dict[str, Any]
    added: list[str]
    removed: list[str]


class ScimService:
    def __init__(
        self,
        app: str,
        adapter: Adapter,
        config: AppConfig,
        *,
        guard: Guard | None = None,
        unknown_creates: UnknownCreates | None = None,
    ) -> None:
        self.app = app
        self.adapter = adapter
        #: The mass-deprovisioning guard, asked before every delete and deactivation.
        self.guard = guard
        #: Where each write is noted for reconcile and the access review (None: off).
        self.ledger: Ledger | None = None
        #: Creates whose outcome is unknown, looked up before they are retried.
        self.unknown_creates = unknown_creates or MemoryUnknownCreates()
        self.mapping = adapter.mapping
        self.config = config
        self.caps = adapter.capabilities
        names = ("User", "Group")
        types = build_resource_types(
            {n: _narrowest(self.caps.attributes.get(n), self.mapping.attributes(n)) for n in names},
            {n: self.mapping.required(n) for n in names},
            self.caps.canonical_values,
        )
        self.types = {n: t for n, t in types.items() if n in self.caps.resource_types}
        if not self.caps.groups:
            self.types.pop("Group", None)
        self._by_endpoint = {t.endpoint.strip("/").lower(): t for t in self.types.values()}
        self._layouts = {name: _Layout.of(t) for name, t in self.types.items()}
        #: The JSON of the records lists showed (gateway/rendered.py); None: not kept.
        self.rendered = RenderedRecords() if self.caps.exact_versions else None

    def unique_lookup_problems(self) -> list[str]:
        """Why the look-up before a create (gateway/dedupe.py) cannot work, per resource type."""
        problems = []
        for name, rtype in self.types.items():
            unique = _UNIQUE.get(name)
            if unique and not self.caps.can_filter(name, unique.lower(), "eq"):
                problems.append(
                    f"the adapter cannot filter {rtype.endpoint.strip('/')} by {unique} eq, "
                    "so the gateway cannot look for an existing one before a create"
                )
        return problems

    def can_check_group_names(self) -> bool:
        """Whether the adapter can look a group up by name (unique_group_names needs it)."""
        return "Group" not in self.types or self.caps.can_filter("Group", "displayname", "eq")

    def _operation(
        self, action: str | None = None, rtype: ResourceType | None = None, id: str | None = None
    ) -> Operation:
        """The request's operation (a detached one when called outside a request)."""
        op = current()
        if op is None:
            op = Operation(self.app, "", "")
        if action is not None:
            op.describe(action, None if rtype is None else rtype.name, id)
        return op

    # -- discovery -------------------------------------------------------------------

    def resource_type(self, endpoint: str) -> ResourceType:
        rtype = self._by_endpoint.get(endpoint.lower())
        if rtype is None:
            raise NotFound(f"no resource type at /{endpoint}")
        return rtype

    def service_provider_config(self, base_url: str) -> dict[str, Any]:
        user = self.types.get("User")
        return {
            "schemas": [SPC_URN],
            "documentationUri": "https://github.com/scim-gateway/scim-gateway",
            "patch": {"supported": True},
            "bulk": {
                "supported": True,
                "maxOperations": self.config.bulk.max_operations,
                "maxPayloadSize": self.config.bulk.max_payload_size,
            },
            "filter": {"supported": True, "maxResults": self.config.max_count},
            "changePassword": {"supported": bool(user and "password" in user.schema.attributes)},
            "sort": {"supported": self.caps.sort},
            "etag": {"supported": self.caps.versions},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "OAuth Bearer Token",
                    "description": "A per-app bearer token, sent with or without 'Bearer'",
                    "primary": True,
                }
            ],
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": f"{base_url}/ServiceProviderConfig",
            },
        }

    def schemas(self, base_url: str) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for rtype in self.types.values():
            for schema in (rtype.schema, *(s for s, _ in rtype.extensions)):
                seen[schema.id] = schema.to_json(f"{base_url}/Schemas/{schema.id}")
        return list(seen.values())

    def resource_types(self, base_url: str) -> list[dict[str, Any]]:
        return [t.to_json(f"{base_url}/ResourceTypes/{t.name}") for t in self.types.values()]

    # -- records <-> resources ---------------------------------------------------------

    def to_scim(self, rtype: ResourceType, record: Record, base_url: str) -> dict[str, Any]:
        """The SCIM resource of a record, with default attributes only (no password)."""
        with span("mapping.from_legacy", **{"scim.resource_type": rtype.name}):
            return self._converter(rtype, base_url)(record)

    def to_scim_page(
        self, rtype: ResourceType, records: Sequence[Record], base_url: str
    ) -> list[dict[str, Any]]:
        """:meth:`to_scim` for a page of records, in one span rather than one per record."""
        attrs: dict[str, str | int] = {
            "scim.resource_type": rtype.name,
            "scim.records": len(records),
        }
        convert = self._converter(rtype, base_url)
        with span("mapping.from_legacy", **attrs):
            return [convert(r) for r in records]

    def _rendered_page(
        self,
        rendered: RenderedRecords,
        rtype: ResourceType,
        records: Sequence[Record],
        base_url: str,
    ) -> list[orjson.Fragment]:
        """:meth:`to_scim_page` as JSON, kept from earlier lists for unchanged records."""
        attrs: dict[str, str | int] = {
            "scim.resource_type": rtype.name,
            "scim.records": len(records),
        }
        convert = self._converter(rtype, base_url)
        with span("mapping.from_legacy", **attrs):
            return rendered.page(rtype.name, base_url, records, convert)

    def _is_own(self, rtype: ResourceType) -> bool:
        """Whether ``rtype`` is one of this app's own types (not a caller's variant of one)."""
        layout = self._layouts.get(rtype.name)
        return layout is not None and layout.rtype is rtype

    def _converter(self, rtype: ResourceType, base_url: str) -> Callable[[Record], dict[str, Any]]:
        """:meth:`to_scim` of one record, with what every record of the type shares worked
        out once (a page of 100 worked it out 100 times) and bound to local names."""
        layout = self._layouts.get(rtype.name)
        if layout is None or layout.rtype is not rtype:  # not one of this app's own types
            layout = _Layout.of(rtype)
        hidden, nested, extensions = layout.hidden, layout.nested, layout.extensions
        name, schema, from_legacy = rtype.name, rtype.schema.id, self.mapping.from_legacy
        location = f"{base_url}{rtype.endpoint}/"

        def convert(record: Record) -> dict[str, Any]:
            data = from_legacy(name, record.data)
            resource: dict[str, Any]
            if hidden.isdisjoint(data):  # the usual case: every key is shown, in its order
                resource = {"schemas": [schema], "id": record.id, **data}
            else:
                resource = {"schemas": [schema], "id": record.id}
                for key, value in data.items():
                    if key not in hidden:
                        resource[key] = value
            if record.members:
                resource["members"] = [_ref_json(m, base_url) for m in record.members]
            if record.groups:
                resource["groups"] = [_ref_json(g, base_url, "Groups") for g in record.groups]
            for ext in extensions:
                if ext in resource:
                    resource["schemas"].append(ext)
            meta: dict[str, Any] = {"resourceType": name, "location": f"{location}{record.id}"}
            if record.created is not None:
                meta["created"] = _iso(record.created)
            if record.last_modified is not None:
                meta["lastModified"] = _iso(record.last_modified)
            if record.version is not None:
                meta["version"] = format_etag(record.version)
            resource["meta"] = meta
            # The full projection only when something below the top level is hidden.
            return project(resource, rtype) if nested else resource

        return convert

    def to_legacy(self, resource: Mapping[str, Any], rtype: ResourceType) -> dict[str, Any]:
        """The adapter's ``data`` for the attributes a client may write (members aside)."""
        writable: dict[str, Any] = {}
        for key, value in resource.items():
            found = rtype.lookup(key)
            if found is None or key in _NOT_MAPPED:
                continue
            if isinstance(found, Resolved) and found.attribute.read_only:
                continue
            writable[key] = value
        with span("mapping.to_legacy", **{"scim.resource_type": rtype.name}):
            return self.mapping.to_legacy(rtype.name, writable)

    # -- reading -----------------------------------------------------------------------

    async def get(
        self,
        rtype: ResourceType,
        id: str,
        base_url: str,
        projection: Projection = Projection(),
        *,
        shown: Projection | None = None,
    ) -> dict[str, Any]:
        """The resource, projected by ``projection``; ``shown``: the projection the caller
        applies itself (members are read only when either shows them)."""
        if self._reads_members(rtype, shown or projection):
            record = await self.adapter.get(rtype.name, id)
        else:  # Entra's group lookups exclude members: a big group is not read at all
            record = await self.adapter.get(rtype.name, id, members=False)  # type: ignore[call-arg]
        return self.shape(rtype, self.to_scim(rtype, record, base_url), projection)

    def _reads_members(self, rtype: ResourceType, projection: Projection) -> bool:
        """False when the adapter may skip the members (groups) the response will not show."""
        if not self.caps.skip_members:
            return True
        name = "members" if rtype.name == "Group" else "groups"
        return shown(rtype, name, projection.attributes, projection.excluded)

    @staticmethod
    def shape(
        rtype: ResourceType, resource: dict[str, Any], projection: Projection
    ) -> dict[str, Any]:
        if not projection.attributes and not projection.excluded:
            return resource
        return project(resource, rtype, projection.attributes, projection.excluded)

    async def search(
        self,
        rtypes: Sequence[ResourceType],
        params: ListParams,
        base_url: str,
        *,
        serialized: bool = False,
    ) -> dict[str, Any]:
        """The ListResponse. ``serialized``: the caller only serializes it with orjson, so
        resources may be ``orjson.Fragment``s, the kept JSON of unchanged records
        (gateway/rendered.py), rather than dicts."""
        projection = Projection(params.attributes, params.excluded_attributes)
        offset, remaining, total = params.start_index - 1, params.count, 0
        resources: list[Shown] = []
        default = not projection.attributes and not projection.excluded
        rendered = self.rendered if serialized and default else None
        parsed = None
        if params.filter is not None:
            parsed = parse_filter(
                params.filter,
                max_length=self.config.max_filter_length,
                max_depth=self.config.max_filter_depth,
            )
        for rtype in rtypes:
            try:
                node = None if parsed is None else bind_filter(parsed, rtype)
            except InvalidFilter:
                if len(rtypes) == 1:
                    raise
                continue  # a root search skips types that lack the attribute (RFC 7644 3.4.2.1)
            if node is not None:  # for traces and logs: the filter's shape, never its values
                shape = sorted({f"{path} {op}" for path, op in filter_leaves(node)})
                self._operation().extra.setdefault("filter", ", ".join(shape))
            start = offset + 1
            found, matched = await self._search_one(
                rtype, node, params, start, remaining, base_url, projection, rendered
            )
            total += matched
            if projection.attributes or projection.excluded:
                # dicts all: the kept JSON serves the default projection only
                found = [self.shape(rtype, cast(dict[str, Any], r), projection) for r in found]
            resources.extend(found)
            remaining -= len(found)
            offset = max(0, offset - matched)
        return {
            "schemas": [LIST_URN],
            "totalResults": total,
            "itemsPerPage": len(resources),
            "startIndex": params.start_index,
            "Resources": resources,
        }

    def _pushable(self, rtype: ResourceType, node: FilterNode) -> bool:
        if uses_logic(node) and not self.caps.filter_logic:
            return False
        return all(self.caps.can_filter(rtype.name, p, op) for p, op in filter_leaves(node))

    async def _search_one(
        self,
        rtype: ResourceType,
        node: FilterNode | None,
        params: ListParams,
        start: int,
        count: int,
        base_url: str,
        projection: Projection = Projection(),
        rendered: RenderedRecords | None = None,
    ) -> tuple[Sequence[Shown], int]:
        """``rendered``: where the JSON of the page's records may come from (the default
        projection only), else None."""
        sort_by = sort_key_path(params.sort_by, rtype) if params.sort_by else None
        query, in_gateway = self.planned_search(
            rtype,
            node,
            sort_by,
            params.descending,
            start,
            count,
            members=self._reads_members(rtype, projection),
        )
        if node is None or not in_gateway:
            page = await self.adapter.search(query)
            if rendered is not None and self._is_own(rtype):
                return self._rendered_page(rendered, rtype, page.records, base_url), page.total
            return self.to_scim_page(rtype, page.records, base_url), page.total
        return await self._search_in_gateway(rtype, node, query, params, start, count, base_url)

    def planned_search(
        self,
        rtype: ResourceType,
        node: FilterNode | None,
        sort_by: str | None,
        descending: bool,
        start: int,
        count: int,
        *,
        members: bool = True,
    ) -> tuple[Query, bool]:
        """The query a search gives the adapter, and whether the gateway then evaluates the
        whole filter over its answer (the dry run shows both). ``members``: whether groups'
        members are wanted (the gateway's own evaluation always reads them)."""
        if node is None or self._pushable(rtype, node):
            sort = sort_by if self.caps.sort else None
            page_size = min(count, self.caps.max_page_size)
            query = Query(rtype.name, node, sort, descending, start, page_size, members=members)
            return query, False
        limit = self.config.max_filter_scan
        return Query(rtype.name, self._narrowed(rtype, node), count=limit + 1), True

    def _narrowed(self, rtype: ResourceType, node: FilterNode) -> FilterNode:
        """The conjuncts of ``node`` the adapter can answer (or that they imply), and-ed.

        A conjunct the adapter cannot answer may still imply one it can (Entra's
        ``emails[type eq "work"].value eq "x"`` implies ``emails.value eq "x"``): that one
        narrows the candidates too.
        """
        conjuncts = split_conjuncts(node)
        pushed = [t for t in conjuncts if self._pushable(rtype, t)]
        pushed += [
            implied
            for term in conjuncts
            if term not in pushed
            for implied in implied_terms(term)
            if self._pushable(rtype, implied)
        ]
        if not self.caps.filter_logic:
            pushed = pushed[:1]
        if not pushed:
            leaves = ", ".join(sorted({p for p, _ in filter_leaves(node)}))
            raise InvalidFilter(f"this app cannot filter on {leaves}")
        return pushed[0] if len(pushed) == 1 else LogicalExpr(LogicalOperator.and_, tuple(pushed))

    async def _search_in_gateway(
        self,
        rtype: ResourceType,
        node: FilterNode,
        narrowed: Query,
        params: ListParams,
        start: int,
        count: int,
        base_url: str,
    ) -> tuple[list[dict[str, Any]], int]:
        """Ask the adapter for the ``narrowed`` candidates; evaluate ``node`` over them."""
        limit = self.config.max_filter_scan
        page: Page = await self.adapter.search(narrowed)
        if page.total > limit:
            raise InvalidFilter(
                f"the filter matches more than {limit} candidates before the part "
                "this app cannot filter on; narrow it"
            )
        match = compile_filter(node, rtype)
        found = [r for r in self.to_scim_page(rtype, page.records, base_url) if match(r)]
        if params.sort_by:
            found = sort_resources(found, params.sort_by, params.descending, rtype)
        return found[start - 1 : start - 1 + count], len(found)

    # -- planning writes (no adapter call; the dry run uses these too) ------------------

    def creation(
        self, rtype: ResourceType, body: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """The adapter's ``data`` and first members for a POST body."""
        _resource, data, members = self._creation(rtype, body)
        return data, members

    def _creation(
        self, rtype: ResourceType, body: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
        resource = self.clean_names(normalize_resource(body, rtype), rtype)
        check_required(resource, rtype)
        members = [str(m["value"]) for m in resource.get("members", ()) if "value" in m]
        return resource, self.to_legacy(resource, rtype), list(dict.fromkeys(members))

    def replacement(
        self, rtype: ResourceType, current: Mapping[str, Any], body: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The resource a PUT body makes of ``current`` (checked, not yet saved)."""
        new = self.clean_names(normalize_resource(body, rtype), rtype)
        check_required(new, rtype)
        self._check_immutable(rtype, current, new)
        return new

    def clean_names(self, resource: dict[str, Any], rtype: ResourceType) -> dict[str, Any]:
        """userName / displayName in their clean form (gateway/scim/normalize.py), when
        the app's ``normalize_names`` is on."""
        key = _UNIQUE.get(rtype.name)
        if self.config.normalize_names and key is not None:
            value = resource.get(key)
            if isinstance(value, str):
                resource[key] = clean_name(value)
        return resource

    @staticmethod
    def patched(
        rtype: ResourceType, current: dict[str, Any], ops: Sequence[PatchOp]
    ) -> dict[str, Any]:
        """The resource PATCH operations make of ``current`` (checked, not yet saved)."""
        result = apply_patch(current, ops, rtype)
        check_required(result, rtype)
        return result

    def plan_write(
        self, rtype: ResourceType, current: Mapping[str, Any], new: Mapping[str, Any]
    ) -> WritePlan:
        """The legacy fields that change from ``current`` to ``new``, and the member deltas."""
        before, after = self.to_legacy(current, rtype), self.to_legacy(new, rtype)
        changes = {k: v for k, v in after.items() if before.get(k) != v}
        changes.update(dict.fromkeys(before.keys() - after.keys()))
        added, removed = _member_delta(current.get("members", []), new.get("members", []))
        return WritePlan(changes, added, removed)

    # -- writing -----------------------------------------------------------------------

    async def create(
        self, rtype: ResourceType, body: Mapping[str, Any], base_url: str
    ) -> dict[str, Any]:
        op = self._operation("create", rtype)
        resource, data, members = self._creation(rtype, body)
        op.name_from(resource)  # as written: attribute names match in any case, last wins
        op.set_changed((k for k in resource if k not in _NOT_CHANGES), resource)
        unique = _unique_name(rtype, resource)
        key = None if unique is None else name_key(self.app, rtype.name, unique[1])
        unknown = key is not None and await self.unknown_creates.is_unknown(key)
        if unique is not None and (unknown or self.config.check_unique_before_create):
            await self._refuse_existing(rtype, *unique, base_url)
        await op.open()
        steps = Steps(op, rtype.name, None, ["create"], atomic=self.caps.transactions)
        try:
            async with self.adapter.transaction(), steps.step("create"):
                record = await self.adapter.create(rtype.name, data, members=members)
        except UpstreamError as exc:
            if not outcome_unknown(exc):
                raise
            if key is not None:  # the op's outcome is "unknown" (Steps)
                await self.unknown_creates.remember(key)
            raise unknown_create_error(exc, rtype.name) from exc
        if unknown and key is not None:
            await self.unknown_creates.forget(key)
        op.scim_id = op.legacy_id = record.id
        result = self.to_scim(rtype, record, base_url)
        if self.ledger is not None:
            self._note(rtype, record.id, result, result)
        return result

    async def _refuse_existing(
        self, rtype: ResourceType, unique: str, name: str, base_url: str
    ) -> None:
        """409 uniqueness when the app already holds a resource with this unique name."""
        params = ListParams(_eq_filter(unique, name), 1, 1, None, False, ("id",), ())
        try:
            found = await self.search([rtype], params, base_url)
        except InvalidFilter as exc:
            raise UpstreamError(
                f"cannot look for an existing {rtype.name} by {unique} before creating one: "
                f"{exc.detail}"
            ) from exc
        if found["Resources"]:
            id = found["Resources"][0]["id"]
            raise Conflict(f"a {rtype.name} with this {unique} already exists (id {id})")

    async def replace(
        self,
        rtype: ResourceType,
        id: str,
        body: Mapping[str, Any],
        base_url: str,
        *,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        self._operation("replace", rtype, id).name_from(body)
        current = await self._current(rtype, id, base_url, if_match)
        new = self.replacement(rtype, current, body)
        result = await self._save(rtype, id, current, new, base_url, if_match)
        assert result is not None
        return result

    async def patch(
        self,
        rtype: ResourceType,
        id: str,
        body: Mapping[str, Any],
        base_url: str,
        *,
        if_match: str | None = None,
        want_result: bool = True,
    ) -> dict[str, Any] | None:
        op = self._operation("patch", rtype, id)
        ops = parse_patch(
            body,
            max_operations=self.config.max_patch_operations,
            max_path_length=self.config.max_filter_length,
        )
        current = await self._current(rtype, id, base_url, if_match)
        op.name_from(current)
        patched = self.clean_names(self.patched(rtype, current, ops), rtype)
        return await self._save(rtype, id, current, patched, base_url, if_match, want_result)

    async def delete(self, rtype: ResourceType, id: str, *, if_match: str | None = None) -> None:
        op = self._operation("delete", rtype, id)
        if rtype.name == "User" and self.config.deprovision.mode == "deactivate":
            await self._deactivate_instead(rtype, id, if_match)  # names the user itself
            return
        expected = None
        if if_match and self.caps.versions:
            current = await self._current(rtype, id, "", if_match)
            op.name_from(current)
            expected = _version_of(current)
        elif op.recorder is not NULL_RECORDER:
            # The audit names what was deleted (``audit list --user`` finds it): one read.
            op.name_from(await self._current(rtype, id, "", None))
        if self.guard is not None:
            await self.guard.check(op, "delete", rtype.name, id)
        await op.open()
        steps = Steps(op, rtype.name, id, ["delete"], atomic=self.caps.transactions)
        async with self.adapter.transaction(), steps.step("delete"):
            await self.adapter.delete(rtype.name, id, expected_version=expected)
        if self.rendered is not None:
            self.rendered.forget(id)  # no list shows it again: its JSON need not wait its turn
        if self.ledger is not None:
            self._note(rtype, id, None, {}, state="deleted")

    async def _deactivate_instead(self, rtype: ResourceType, id: str, if_match: str | None) -> None:
        """The app's deprovision policy: the DELETE sets the user inactive, so the app keeps
        its records; ``scim-gateway sweep`` may delete it after ``delete_after_days``."""
        op = self._operation()
        op.extra["deprovision"] = "deactivate"
        current = await self._current(rtype, id, "", if_match)
        op.name_from(current)
        await self._save(rtype, id, current, {**current, "active": False}, "", if_match, False)
        if self.ledger is not None:
            self._note(rtype, id, None, current, state="deactivated")

    def _note(
        self,
        rtype: ResourceType,
        id: str,
        written: Mapping[str, Any] | None,
        resource: Mapping[str, Any],
        state: str | None = None,
    ) -> None:
        """Queue a ledger note: ``written`` is the resource as the app answered (None: not
        read back), ``resource`` what the request made of it (its name and state)."""
        assert self.ledger is not None
        op = self._operation()
        name = resource.get("userName") or resource.get("displayName") or op.name
        self.ledger.note(
            Note(
                self.app,
                rtype.name,
                id,
                name if isinstance(name, str) else None,
                state or state_of(resource),
                None if written is None else fingerprint(written),
                op.client,
                time.time(),
            )
        )

    async def _current(
        self, rtype: ResourceType, id: str, base_url: str, if_match: str | None
    ) -> dict[str, Any]:
        current = self.to_scim(rtype, await self.adapter.get(rtype.name, id), base_url)
        if if_match and self.caps.versions:
            tags = parse_etags(if_match)
            if "*" not in tags and _version_of(current) not in tags:
                raise PreconditionFailed("the resource has changed (If-Match)")
        return current

    @staticmethod
    def _check_immutable(
        rtype: ResourceType, current: Mapping[str, Any], new: Mapping[str, Any]
    ) -> None:
        for container, attr in rtype.attributes():
            if attr.mutability != "immutable":
                continue
            source = current.get(container, {}) if container else current
            target = new.get(container, {}) if container else new
            if (
                attr.name in source
                and attr.name in target
                and source[attr.name] != target[attr.name]
            ):
                raise Mutability(f"{attr.name} is immutable")

    async def _save(
        self,
        rtype: ResourceType,
        id: str,
        current: dict[str, Any],
        new: dict[str, Any],
        base_url: str,
        if_match: str | None,
        want_result: bool = True,
    ) -> dict[str, Any] | None:
        plan = self.plan_write(rtype, current, new)
        changes, added, removed = plan.changes, plan.added, plan.removed
        expected = _version_of(current) if if_match and self.caps.versions else None
        op = self._operation()
        op.name_from(new)
        op.set_changed(_changed_names(current, new), new)
        if self.guard is not None and _deactivates(current, new):
            await self.guard.check(op, "deactivate", rtype.name, id)
        if changes or added or removed:
            await op.open()
        record: Record | None = None
        planned = [
            name
            for name, needed in (
                ("update", changes),
                ("remove_members", removed),
                ("add_members", added),
            )
            if needed
        ]
        steps = Steps(op, rtype.name, id, planned, atomic=self.caps.transactions)
        # One transaction where the adapter has them: a member add that fails
        # undoes the update before it; the read-back sees the operation's writes.
        # Without one, a failed step says which steps were done (gateway/steps.py).
        async with self.adapter.transaction():
            if changes:
                async with steps.step("update"):
                    record = await self.adapter.update(
                        rtype.name, id, changes, expected_version=expected
                    )
            if removed:
                async with steps.step("remove_members"):
                    await self.adapter.remove_members(id, removed)
            if added:
                async with steps.step("add_members"):
                    await self.adapter.add_members(id, added)
            if want_result and (record is None or added or removed):
                record = await self.adapter.get(rtype.name, id)
        # Noted once the transaction committed: a rolled-back write is not in the ledger.
        noting = self.ledger is not None and bool(planned)
        result = None
        if record is not None and (want_result or noting):
            result = self.to_scim(rtype, record, base_url)
        if noting:
            self._note(rtype, id, result, new)
        return result if want_result else None

    # -- bulk --------------------------------------------------------------------------

    async def bulk(
        self,
        body: Mapping[str, Any],
        base_url: str,
        *,
        admit: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """``admit`` is asked before every operation but the first (the request paid
        for that one): the rate limit, so one Bulk cannot carry a burst past it. An
        operation it refuses answers its error in its own result and is not run."""
        ops = _bulk_operations(body, self.config.bulk.max_operations)
        fail_on_errors = body.get("failOnErrors")
        if fail_on_errors is not None and (
            not isinstance(fail_on_errors, int) or fail_on_errors < 1
        ):
            raise InvalidValue("failOnErrors must be a positive integer")
        ids: dict[str, str] = {}
        results: list[dict[str, Any]] = []
        errors = 0
        for n, op in enumerate(_bulk_order(ops)):
            result = await self._bulk_one(op, ids, base_url, None if n == 0 else admit)
            results.append(result)
            if int(result["status"]) >= 400:
                errors += 1
                if fail_on_errors is not None and errors >= fail_on_errors:
                    break
        return {"schemas": [BULK_RESPONSE_URN], "Operations": results}

    async def _bulk_one(
        self,
        op: Mapping[str, Any],
        ids: dict[str, str],
        base_url: str,
        admit: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        method = str(op.get("method", "")).upper()
        bulk_id = op.get("bulkId")
        out: dict[str, Any] = {"method": method}
        if bulk_id is not None:
            out["bulkId"] = bulk_id
        parent = self._operation("bulk")
        child = parent.child(None if bulk_id is None else str(bulk_id))
        with operation_span(child):  # each bulk operation is a span of its own
            try:
                with bound(child):
                    if admit is not None:
                        admit()
                    path = _resolve_bulk_ids(op.get("path", ""), ids)
                    data = _resolve_bulk_ids(op.get("data"), ids)
                    resource, status = await self._bulk_dispatch(method, path, data, op, base_url)
            except ScimError as exc:
                await child.close(exc.status, exc.scim_type)
                out["status"] = str(exc.status)
                out["response"] = exc.to_json()
                return out
            except BaseException:
                await child.close(500)
                raise
            await child.close(status)
            out["status"] = str(status)
            if resource is not None:
                out["location"] = resource["meta"]["location"]
                if "version" in resource["meta"]:
                    out["version"] = resource["meta"]["version"]
                if method == "POST" and bulk_id is not None:
                    ids[str(bulk_id)] = resource["id"]
            return out

    async def _bulk_dispatch(
        self,
        method: str,
        path: Any,
        data: Any,
        op: Mapping[str, Any],
        base_url: str,
    ) -> tuple[dict[str, Any] | None, int]:
        if not isinstance(path, str) or not path.startswith("/"):
            raise InvalidSyntax("each bulk operation needs a path such as /Users or /Users/{id}")
        parts = [p for p in path.split("/") if p]
        if not parts:
            raise InvalidSyntax("bulk operation path names no resource type")
        rtype = self.resource_type(parts[0])
        version = op.get("version")
        if_match = str(version) if version else None
        if method == "POST" and len(parts) == 1:
            if op.get("bulkId") is None:
                raise InvalidSyntax("a bulk POST needs a bulkId")
            return await self.create(rtype, _object(data), base_url), 201
        if len(parts) != 2:
            raise InvalidSyntax(f"{method} {path} is not a valid bulk operation")
        id = parts[1]
        if method == "PUT":
            return await self.replace(rtype, id, _object(data), base_url, if_match=if_match), 200
        if method == "PATCH":
            return await self.patch(rtype, id, _object(data), base_url, if_match=if_match), 200
        if method == "DELETE":
            await self.delete(rtype, id, if_match=if_match)
            return None, 204
        raise InvalidSyntax(f"unsupported bulk method {method!r}")


# Set by the gateway, so never among the names of the attributes a write changes.
_NOT_CHANGES = frozenset({"id", "meta", "schemas"})


def _changed_names(current: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Names of the attributes that differ; an extension's as ``urn:...:name``."""
    names: list[str] = []
    for key in current.keys() | new.keys():
        if key in _NOT_CHANGES:
            continue
        before, after = current.get(key), new.get(key)
        if before == after:
            continue
        b, a = before or {}, after or {}
        if key.startswith("urn:") and isinstance(b, dict) and isinstance(a, dict):
            names.extend(f"{key}:{sub}" for sub in b.keys() | a.keys() if b.get(sub) != a.get(sub))
        else:
            names.append(key)
    return names


def _unique_name(rtype: ResourceType, resource: Mapping[str, Any]) -> tuple[str, str] | None:
    """The attribute naming the resource uniquely, and its value, when the resource has one."""
    attribute = _UNIQUE.get(rtype.name)
    value = resource.get(attribute) if attribute else None
    if attribute is None or not isinstance(value, str) or not value:
        return None
    return attribute, value


def _eq_filter(attribute: str, value: str) -> str:
    """``attribute eq "value"``, the value quoted as a JSON string (as SCIM filters are)."""
    return f"{attribute} eq {orjson.dumps(value).decode()}"


def _deactivates(current: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """``active`` goes from true (or unset: active) to false."""
    return current.get("active") is not False and new.get("active") is False


def _narrowest(a: frozenset[str] | None, b: frozenset[str] | None) -> frozenset[str] | None:
    """The paths both keep; a sub-attribute (``emails.value``) is kept by its attribute too."""
    if a is None or b is None:
        return b if a is None else a
    return frozenset(p for p in a | b if _keeps(a, p) and _keeps(b, p))


def _keeps(paths: frozenset[str], path: str) -> bool:
    """``path`` is in ``paths``, or it is a sub-attribute whose attribute is."""
    if path in paths:
        return True
    urn, _, name = path.rpartition(":")  # the "." of a URN's "2.0" is no sub-attribute
    attribute, dot, _ = name.partition(".")
    return bool(dot) and (f"{urn}:{attribute}" if urn else attribute) in paths


def _ref_json(ref: Ref, base_url: str, endpoint: str | None = None) -> dict[str, Any]:
    """A member (or a user's group) as SCIM shows it, with ``$ref`` where its type is known."""
    out: dict[str, Any] = {"value": ref.value}
    kind = endpoint or {"User": "Users", "Group": "Groups"}.get(ref.type or "")
    if kind:
        out["$ref"] = f"{base_url}/{kind}/{ref.value}"
    if ref.type:
        out["type"] = ref.type
    if ref.display:
        out["display"] = ref.display
    return out


@dataclass(frozen=True, slots=True)
class _Layout:
    """What the SCIM form of every record of a resource type shares, worked out once per
    type rather than once per record (a list of 100 asked for it 100 times)."""

    rtype: ResourceType
    #: Top-level keys a default response leaves out.
    hidden: frozenset[str]
    #: Whether anything below the top level is hidden (then the full projection runs).
    nested: bool
    #: The extension URNs, in the order ``schemas`` lists those a resource has.
    extensions: tuple[str, ...]

    @staticmethod
    def of(rtype: ResourceType) -> _Layout:
        hidden, nested = _hidden_by_default(rtype)
        return _Layout(rtype, hidden, nested, tuple(ext.id for ext, _ in rtype.extensions))


def _hidden_by_default(rtype: ResourceType) -> tuple[frozenset[str], bool]:
    """Top-level keys a default response leaves out, and whether any nested one is hidden."""
    hidden = {"id", "meta", "schemas"}
    nested = False
    for container, attr in rtype.attributes():
        if attr.returned in ("never", "request"):
            if container is None:
                hidden.add(attr.name)
            else:
                nested = True
        if any(sub.returned in ("never", "request") for sub in attr.sub_attributes.values()):
            nested = True
    return frozenset(hidden), nested


@lru_cache(maxsize=4096)  # records repeat their timestamps across reads; formatting is not free
def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _version_of(resource: Mapping[str, Any]) -> str | None:
    tag = resource.get("meta", {}).get("version")
    return parse_etags(tag)[0] if tag else None


def _member_delta(
    before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]
) -> tuple[list[str], list[str]]:
    old = [str(m["value"]) for m in before if "value" in m]
    new = [str(m["value"]) for m in after if "value" in m]
    old_set, new_set = set(old), set(new)
    added = list(dict.fromkeys(v for v in new if v not in old_set))
    removed = list(dict.fromkeys(v for v in old if v not in new_set))
    return added, removed


def _object(data: Any) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise InvalidSyntax("bulk operation data must be a JSON object")
    return data


def _bulk_operations(body: Mapping[str, Any], max_operations: int) -> list[Mapping[str, Any]]:
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or BULK_REQUEST_URN.lower() not in {
        str(s).lower() for s in schemas
    }:
        raise InvalidSyntax(f"a bulk request must list the schema {BULK_REQUEST_URN}")
    ops = body.get("Operations")
    if not isinstance(ops, list) or not all(isinstance(o, Mapping) for o in ops):
        raise InvalidSyntax("Operations must be a list of objects")
    if len(ops) > max_operations:
        raise PayloadTooLarge(f"a bulk request may hold at most {max_operations} operations")
    return ops


_BULK_PREFIX = "bulkId:"


def _bulk_refs(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value[len(_BULK_PREFIX) :]} if value.startswith(_BULK_PREFIX) else set()
    if isinstance(value, Mapping):
        return set().union(*(_bulk_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_bulk_refs(v) for v in value)) if value else set()
    return set()


def _bulk_order(ops: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Order operations so each runs after the POSTs whose bulkIds it references.

    Operations whose references cannot be satisfied (unknown or circular)
    keep their place and fail when they run, with 409 as RFC 7644 3.7.3 says.
    """
    defined = {str(o["bulkId"]) for o in ops if o.get("bulkId") is not None}
    pending = list(ops)
    done: set[str] = set()
    ordered: list[Mapping[str, Any]] = []
    while pending:
        ready = [
            o
            for o in pending
            if (_bulk_refs(o.get("path")) | _bulk_refs(o.get("data"))) & defined <= done
        ]
        if not ready:
            ordered.extend(pending)
            break
        for o in ready:
            ordered.append(o)
            pending.remove(o)
            if o.get("bulkId") is not None:
                done.add(str(o["bulkId"]))
    return ordered


def _resolve_bulk_ids(value: Any, ids: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith(_BULK_PREFIX):
        ref = value[len(_BULK_PREFIX) :]
        if ref not in ids:
            raise Conflict(f"bulkId {ref} could not be resolved", scim_type="invalidValue")
        return ids[ref]
    if isinstance(value, str) and _BULK_PREFIX in value:
        # a path such as /Groups/bulkId:qwerty
        head, _, ref = value.partition(_BULK_PREFIX)
        if ref not in ids:
            raise Conflict(f"bulkId {ref} could not be resolved", scim_type="invalidValue")
        return head + ids[ref]
    if isinstance(value, Mapping):
        return {k: _resolve_bulk_ids(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_bulk_ids(v, ids) for v in value]
    return value


__all__ = [
    "BadRequest",
    "Projection",
    "ScimService",
    "WritePlan",
    "format_etag",
    "parse_etags",
]
