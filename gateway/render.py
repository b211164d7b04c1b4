"""The dry run behind ``scim-gateway render``: the legacy calls a SCIM request would cause.

The SCIM side is the service's own planning (body normalisation, PATCH,
the mapping, the change and member deltas: :meth:`ScimService.creation`,
:meth:`~ScimService.patched`, :meth:`~ScimService.plan_write`); the legacy
side is the adapter's ``describe_*`` methods, which build their calls with
the code that sends them. Nothing is sent. A PUT or PATCH needs the
resource as it is now (``current``), since the change is computed from it.
A GET with a filter (``/Users?filter=...``) shows the search the adapter would
start with: the pushed-down query parameters, or the SQL statement and its
values, and whether the gateway checks part of the filter itself.
Write-only values (``password``) are replaced by ``****`` before the
mapping sees them, so they never reach the output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from gateway.errors import InvalidSyntax, ScimError
from gateway.scim.filter import bind_filter, parse_filter, sort_key_path
from gateway.scim.patch import parse_patch
from gateway.scim.query import parse_list_params
from gateway.scim.resource import normalize_resource
from gateway.scim.schema import Resolved, ResourceType
from gateway.sdk import Adapter, LegacyCall
from gateway.service import ScimService
from gateway.wrapping import WrappedAdapter

__all__ = [
    "MASK",
    "NoDryRun",
    "Search",
    "describe_error",
    "format_calls",
    "format_search",
    "render_calls",
    "render_search",
]

MASK = "****"


class NoDryRun(Exception):
    """The app's adapter cannot describe its calls."""


def render_calls(
    service: ScimService,
    method: str,
    path: str,
    body: Any = None,
    current: Any = None,
) -> list[LegacyCall]:
    """The legacy calls for ``method path`` (``/Users``, ``/Groups/{id}``) with ``body``.

    ``path`` is as in a SCIM URL: an id holding ``/`` is written ``%2F``.
    """
    method = method.upper()
    parts = [unquote(p) for p in path.split("?", 1)[0].split("/") if p]
    if not parts or len(parts) > 2:
        raise InvalidSyntax("the path must be /{type} or /{type}/{id}, e.g. /Users/42")
    rtype = service.resource_type(parts[0])
    adapter = service.adapter
    if body is not None:
        body = _masked_patch(body, rtype) if method == "PATCH" else _masked(body, rtype)
    try:
        if method == "POST" and len(parts) == 1:
            data, members = service.creation(rtype, _object(body, "the body"))
            return adapter.describe_create(rtype.name, data, members)
        if len(parts) != 2:
            raise InvalidSyntax(f"{method} needs a resource id in the path: /{parts[0]}/{{id}}")
        id = parts[1]
        if method == "DELETE":
            return adapter.describe_delete(rtype.name, id)
        if method not in ("PUT", "PATCH"):
            raise InvalidSyntax(f"cannot render {method}; use POST, PUT, PATCH or DELETE")
        if current is None:
            raise InvalidSyntax(f"{method} needs the resource as it is now (--current FILE)")
        now = normalize_resource(_object(current, "the current resource"), rtype)
        if method == "PUT":
            new = service.replacement(rtype, now, _object(body, "the body"))
        else:
            new = service.patched(rtype, now, parse_patch(_object(body, "the body")))
        plan = service.plan_write(rtype, now, new)
        calls = adapter.describe_update(rtype.name, id, plan.changes) if plan.changes else []
        if plan.added or plan.removed:
            members = [str(m["value"]) for m in now.get("members", ()) if "value" in m]
            calls += adapter.describe_members(id, plan.added, plan.removed, current=members)
        return calls
    except NotImplementedError:
        raise NoDryRun(f"the app's adapter ({service.config.adapter}) has no dry run") from None


@dataclass(frozen=True, slots=True)
class Search:
    """The first call of a search, and the part of the filter the gateway checks itself."""

    calls: list[LegacyCall]
    checked_in_gateway: str | None = None


async def render_search(service: ScimService, path: str) -> Search:
    """The search ``GET path`` (``/Users?filter=userName eq "x"``) would start with.

    The adapter is opened for it (the SQL adapter needs its columns) and closed again;
    nothing is written.
    """
    base, _, text = path.partition("?")
    parts = [unquote(p) for p in base.split("/") if p]
    if len(parts) != 1:
        raise InvalidSyntax('a GET dry run lists a type: /Users?filter=userName eq "x"')
    rtype = service.resource_type(parts[0])
    config = service.config
    params = parse_list_params(
        dict(parse_qsl(text, keep_blank_values=True)),
        default_count=config.default_count,
        max_count=config.max_count,
    )
    node = None
    if params.filter is not None:
        parsed = parse_filter(
            params.filter, max_length=config.max_filter_length, max_depth=config.max_filter_depth
        )
        node = bind_filter(parsed, rtype)
    sort_by = sort_key_path(params.sort_by, rtype) if params.sort_by else None
    query, in_gateway = service.planned_search(
        rtype, node, sort_by, params.descending, params.start_index, params.count
    )
    adapter = _innermost(service.adapter)
    await adapter.open()
    try:
        calls = await adapter.describe_search(query)
    except NotImplementedError:
        raise NoDryRun(f"the app's adapter ({config.adapter}) has no dry run of a search") from None
    finally:
        await adapter.aclose()
    return Search(calls, params.filter if in_gateway else None)


def _innermost(adapter: Adapter) -> Adapter:
    """The app's own adapter, without the gateway's limits and telemetry around it."""
    while isinstance(adapter, WrappedAdapter):
        adapter = adapter.inner
    return adapter


def format_search(search: Search, max_scan: int) -> str:
    text = format_calls(search.calls) if search.calls else "no call: no record can match\n"
    if search.checked_in_gateway is not None:
        text += (
            f"\n# the adapter cannot answer the whole filter: the gateway checks "
            f"{search.checked_in_gateway!r} on the candidates (at most {max_scan})\n"
        )
    return text


def _write_only(rtype: ResourceType, key: Any) -> bool:
    found = rtype.lookup(key) if isinstance(key, str) else None
    return isinstance(found, Resolved) and found.target.mutability == "writeOnly"


def _masked(resource: Any, rtype: ResourceType) -> Any:
    """A resource (or a path-less PATCH value) with its write-only values as ``****``."""
    if not isinstance(resource, Mapping):
        return resource
    return {k: MASK if _write_only(rtype, k) and v is not None else v for k, v in resource.items()}


def _key(obj: Mapping[str, Any], name: str) -> str | None:
    """The key spelling ``name`` in any case (PATCH keys match without regard to case)."""
    return next((k for k in obj if isinstance(k, str) and k.lower() == name), None)


def _masked_patch(body: Any, rtype: ResourceType) -> Any:
    """A PATCH body whose values for write-only attributes are ``****``."""
    ops_key = _key(body, "operations") if isinstance(body, Mapping) else None
    if ops_key is None or not isinstance(body[ops_key], list):
        return body
    ops = []
    for op in body[ops_key]:
        value_key = _key(op, "value") if isinstance(op, Mapping) else None
        if value_key is not None:
            path_key = _key(op, "path")
            path = op[path_key] if path_key is not None else None
            if path is None:
                op = {**op, value_key: _masked(op[value_key], rtype)}
            elif _write_only(rtype, path) and op[value_key] is not None:
                op = {**op, value_key: MASK}
        ops.append(op)
    return {**body, ops_key: ops}


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidSyntax(f"{what} must be a JSON object")
    return value


def format_calls(calls: list[LegacyCall]) -> str:
    """Each call as an HTTP request: method and URL, headers, a blank line, the JSON body."""
    if not calls:
        return "no call: the request changes nothing in the legacy app\n"
    blocks = []
    for n, call in enumerate(calls, 1):
        lines = [f"# call {n} of {len(calls)}", f"{call.method} {call.url}"]
        lines += [f"{name}: {value}" for name, value in call.headers.items()]
        if call.body is not None:
            lines += ["", json.dumps(call.body, indent=2, ensure_ascii=False)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def describe_error(exc: ScimError) -> str:
    return f"cannot render: {exc.detail or type(exc).__name__} (SCIM {exc.status})"
