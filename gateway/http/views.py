"""The SCIM endpoints of every app, under ``/apps/{app}/scim/v2/``.

Routing is done here on the raw path rather than by aiohttp's router, so that
trailing and doubled slashes are normalised (IdP rule 23), endpoint names
match without regard to case, and an id holding ``%2F`` stays one segment.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from gateway.auth import Authenticator, Principal, is_write
from gateway.errors import (
    Forbidden,
    InvalidSyntax,
    MethodNotAllowed,
    NotFound,
    NotImplementedByServer,
    PayloadTooLarge,
    ScimError,
)
from gateway.http.responses import scim_response
from gateway.limits import request_deadline
from gateway.operation import NULL_RECORDER, Operation, Recorder, bound, current
from gateway.ratelimit import RateLimiter
from gateway.scim.body import parse_body
from gateway.scim.query import parse_list_params, parse_search_request
from gateway.scim.schema import LIST_URN, ResourceType
from gateway.service import Projection, ScimService, parse_etags
from gateway.telemetry import operation_span


@dataclass(slots=True)
class AppRuntime:
    service: ScimService
    auth: Authenticator
    rate_limit: RateLimiter | None = None


SERVICES: web.AppKey[dict[str, AppRuntime]] = web.AppKey("services", dict)
PUBLIC_URL: web.AppKey[str | None] = web.AppKey("public_url", str)
#: Where every operation is recorded (the audit trail); a no-op unless configured.
RECORDER: web.AppKey[Recorder] = web.AppKey("recorder", Recorder)
#: The request's operation, for middlewares that run around ``dispatch`` (logs, metrics).
OPERATION: web.RequestKey[Operation] = web.RequestKey("operation", Operation)


def operation_of(request: web.Request) -> Operation | None:
    return request.get(OPERATION)


@dataclass(slots=True)
class Call:
    """One SCIM request, resolved to its app and the path below ``/scim/v2``."""

    request: web.Request
    runtime: AppRuntime
    principal: Principal
    parts: list[str]
    base_url: str

    @property
    def service(self) -> ScimService:
        return self.runtime.service

    @property
    def query(self) -> Mapping[str, str]:
        return self.request.query

    def projection(self) -> Projection:
        if not self.request.query_string:
            return _ALL  # no attributes= or excludedAttributes=: the default set
        params = {k.lower(): v for k, v in self.request.query.items()}
        return Projection(_csv(params.get("attributes")), _csv(params.get("excludedattributes")))

    async def json(self) -> Any:
        raw = await self.request.read()
        return parse_body(raw, max_depth=self.service.config.max_json_depth)

    async def json_object(self) -> dict[str, Any]:
        body = await self.json()
        if not isinstance(body, dict):
            raise InvalidSyntax("the request body must be a JSON object")
        return body

    def respond(
        self, body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> web.Response:
        return scim_response(self.request, body, status=status, headers=headers)


_ALL = Projection()


def _csv(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(p.strip() for p in value.split(",") if p.strip())


def _segments(raw_path: str) -> list[str]:
    path = raw_path.split("?", 1)[0]
    return [unquote(p) for p in path.split("/") if p]


async def dispatch(request: web.Request) -> web.StreamResponse:
    parts = _segments(request.raw_path)
    if len(parts) < 4 or [p.lower() for p in (parts[0], parts[2], parts[3])] != [
        "apps",
        "scim",
        "v2",
    ]:
        raise NotFound("no such endpoint; SCIM lives under /apps/{app}/scim/v2/")
    app = parts[1]
    runtime = request.app[SERVICES].get(app)
    if runtime is None:
        raise NotFound(f"no app named {app!r}")
    op = Operation(
        app=app,
        method=request.method,
        path=request.raw_path.split("?", 1)[0],
        remote=request.remote,
        user_agent=request.headers.get("User-Agent"),
        recorder=request.app.get(RECORDER, NULL_RECORDER),
    )
    request[OPERATION] = op
    with bound(op), operation_span(op):
        try:
            async with request_deadline(runtime.service.config.request_timeout, op):
                response = await _authorized(request, runtime, op, parts)
        except ScimError as exc:
            await op.close(exc.status, exc.scim_type)
            raise
        except web.HTTPException as exc:
            await op.close(exc.status)
            raise
        except BaseException:
            await op.close(500)
            raise
        await op.close(response.status)
        return response


async def _authorized(
    request: web.Request, runtime: AppRuntime, op: Operation, parts: list[str]
) -> web.StreamResponse:
    principal = await runtime.auth.authenticate(request.headers.get("Authorization"))
    op.client = principal.name
    if runtime.rate_limit is not None:
        runtime.rate_limit.take(principal.name)
    if principal.read_only and is_write(request.method, parts[4:]):
        raise Forbidden(f"the credential {principal.name!r} may only read")
    public = request.app[PUBLIC_URL]
    origin = public.rstrip("/") if public else f"{request.scheme}://{request.host}"
    base_url = f"{origin}/apps/{op.app}/scim/v2"
    call = Call(request, runtime, principal, parts[4:], base_url)
    return await _route(call)


Handler = Callable[[Call], Awaitable[web.StreamResponse]]


def _method(call: Call, table: Mapping[str, Handler]) -> Awaitable[web.StreamResponse]:
    handler = table.get(call.request.method)
    if handler is None:
        raise MethodNotAllowed(f"{call.request.method} is not allowed here", allow=tuple(table))
    return handler(call)


async def _route(call: Call) -> web.StreamResponse:
    parts = call.parts
    if not parts:
        raise NotFound("no resource named; try /Users, /Groups or /ServiceProviderConfig")
    head = parts[0].lower()
    if head == "me":
        raise NotImplementedByServer("/Me is not supported: the gateway acts for apps, not users")
    fixed = _FIXED.get(head)
    if fixed is not None:
        op = current()
        if op is not None:
            op.describe(_FIXED_ACTIONS.get(head, "discovery"))
        return await _method(call, fixed)
    if len(parts) == 1:
        return await _method(call, _COLLECTION)
    if len(parts) == 2 and parts[1].lower() == ".search":
        return await _method(call, {"POST": _search_post})
    if len(parts) == 2:
        return await _method(call, _RESOURCE)
    raise NotFound("no such endpoint")


# -- discovery --------------------------------------------------------------------------


def _list(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_URN],
        "totalResults": len(resources),
        "itemsPerPage": len(resources),
        "startIndex": 1,
        "Resources": resources,
    }


def _by_id(call: Call, items: list[dict[str, Any]], what: str) -> web.Response:
    if len(call.parts) == 1:
        return call.respond(_list(items))
    wanted = call.parts[1].lower()
    for item in items:
        if str(item["id"]).lower() == wanted:
            return call.respond(item)
    raise NotFound(f"no {what} {call.parts[1]!r}")


async def _spc(call: Call) -> web.StreamResponse:
    if len(call.parts) != 1:
        raise NotFound("no such endpoint")
    return call.respond(call.service.service_provider_config(call.base_url))


async def _schemas(call: Call) -> web.StreamResponse:
    return _by_id(call, call.service.schemas(call.base_url), "schema")


async def _resource_types(call: Call) -> web.StreamResponse:
    return _by_id(call, call.service.resource_types(call.base_url), "resource type")


async def _bulk(call: Call) -> web.StreamResponse:
    limit = call.service.config.bulk.max_payload_size
    # RFC 7644 3.7.4: the answer names the limit, also when the body outgrows the server's.
    too_large = PayloadTooLarge(f"a bulk request may be at most {limit} bytes")
    if (call.request.content_length or 0) > limit:
        raise too_large
    try:
        raw = await call.request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None
    if len(raw) > limit:
        raise too_large
    limiter, client = call.runtime.rate_limit, call.principal.name
    admit = None if limiter is None else partial(limiter.take, client)
    return call.respond(
        await call.service.bulk(await call.json_object(), call.base_url, admit=admit)
    )


async def _root_search(call: Call) -> web.StreamResponse:
    if len(call.parts) != 1:
        raise NotFound("no such endpoint")
    params = parse_search_request(await call.json_object(), **_counts(call))
    rtypes = list(call.service.types.values())
    return call.respond(await call.service.search(rtypes, params, call.base_url, serialized=True))


_FIXED_ACTIONS = {"bulk": "bulk", ".search": "search"}
_FIXED: dict[str, dict[str, Handler]] = {
    "serviceproviderconfig": {"GET": _spc},
    "serviceproviderconfigs": {"GET": _spc},
    "schemas": {"GET": _schemas},
    "resourcetypes": {"GET": _resource_types},
    "bulk": {"POST": _bulk},
    ".search": {"POST": _root_search},
}


# -- resources --------------------------------------------------------------------------


def _counts(call: Call) -> dict[str, int]:
    config = call.service.config
    return {
        "default_count": config.default_count,
        "max_count": config.max_count,
        "max_names_length": config.max_filter_length,
    }


def _etag_headers(resource: Mapping[str, Any]) -> dict[str, str]:
    version = resource.get("meta", {}).get("version")
    return {"ETag": version} if version else {}


def _describe_read(rtype: ResourceType, action: str, id: str | None = None) -> None:
    op = current()
    if op is not None:
        op.describe(action, rtype.name, id)


async def _list_get(call: Call) -> web.StreamResponse:
    rtype = call.service.resource_type(call.parts[0])
    _describe_read(rtype, "list")
    params = parse_list_params(call.query, **_counts(call))
    return call.respond(await call.service.search([rtype], params, call.base_url, serialized=True))


async def _search_post(call: Call) -> web.StreamResponse:
    rtype = call.service.resource_type(call.parts[0])
    _describe_read(rtype, "search")
    params = parse_search_request(await call.json_object(), **_counts(call))
    return call.respond(await call.service.search([rtype], params, call.base_url, serialized=True))


async def _create(call: Call) -> web.StreamResponse:
    rtype = call.service.resource_type(call.parts[0])
    created = await call.service.create(rtype, await call.json_object(), call.base_url)
    headers = {"Location": created["meta"]["location"], **_etag_headers(created)}
    body = call.service.shape(rtype, created, call.projection())
    return call.respond(body, 201, headers)


async def _get(call: Call) -> web.StreamResponse:
    rtype = call.service.resource_type(call.parts[0])
    _describe_read(rtype, "get", call.parts[1])
    projection = call.projection()
    resource = await call.service.get(rtype, call.parts[1], call.base_url, shown=projection)
    headers = _etag_headers(resource)
    if_none_match = call.request.headers.get("If-None-Match")
    if if_none_match and headers:
        tags = parse_etags(if_none_match)
        if "*" in tags or parse_etags(headers["ETag"])[0] in tags:
            return web.Response(status=304, headers=headers)
    body = call.service.shape(rtype, resource, projection)
    return call.respond(body, 200, headers)


async def _put(call: Call) -> web.StreamResponse:
    rtype = call.service.resource_type(call.parts[0])
    if_match = call.request.headers.get("If-Match")
    body = await call.json_object()
    resource = await call.service.replace(
        rtype, call.parts[1], body, call.base_url, if_match=if_match
    )
    shaped = call.service.shape(rtype, resource, call.projection())
    return call.respond(shaped, 200, _etag_headers(resource))


async def _patch(call: Call) -> web.StreamResponse:
    rtype = call.service.resource_type(call.parts[0])
    projection = call.projection()
    # Groups answer 204 unless the app says otherwise or attributes were asked for (rule 19).
    want = (
        rtype.name != "Group"
        or call.service.config.group_patch_response == "resource"
        or bool(projection.attributes or projection.excluded)
    )
    body = await call.json_object()
    resource = await call.service.patch(
        rtype,
        call.parts[1],
        body,
        call.base_url,
        if_match=call.request.headers.get("If-Match"),
        want_result=want,
    )
    if resource is None:
        return web.Response(status=204)
    shaped = call.service.shape(rtype, resource, projection)
    return call.respond(shaped, 200, _etag_headers(resource))


async def _delete(call: Call) -> web.StreamResponse:
    rtype = call.service.resource_type(call.parts[0])
    await call.service.delete(rtype, call.parts[1], if_match=call.request.headers.get("If-Match"))
    return web.Response(status=204)


_COLLECTION: dict[str, Handler] = {"GET": _list_get, "POST": _create}
_RESOURCE: dict[str, Handler] = {"GET": _get, "PUT": _put, "PATCH": _patch, "DELETE": _delete}
