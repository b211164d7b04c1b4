"""The outermost middleware: the inbound request's span, its metrics and its access line.

A small own middleware rather than opentelemetry-instrumentation-aiohttp-server:
that one records ``http.target``/``http.url`` with the query string (a SCIM
filter's values are personal data), names every span after our one catch-all
route, and works by replacing ``web.Application`` process-wide. Here the span
is named after a path template (``PATCH /apps/{app}/scim/v2/Users/{id}``),
carries the path without its query, and the W3C context of the caller is
extracted as the instrumentation would.

It sits outside ``scim_errors``, so it sees the status the caller gets.
Probes and scrapes (``/healthz``, ``/readyz``, ``/metrics``) are left out.
"""

from __future__ import annotations

import time
from contextvars import Token

from aiohttp import web
from aiohttp.typedefs import Handler
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from gateway import telemetry
from gateway.http.views import operation_of
from gateway.logs import access, access_enabled
from gateway.metrics import CONTENT_TYPE, Metrics
from gateway.spans import QUIET, FastTracer, Quiet
from gateway.telemetry import mark_error

__all__ = ["METRICS", "metrics_view", "observe", "route_of"]

METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
UNOBSERVED = frozenset({"/healthz", "/readyz", "/metrics"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

#: SCIM endpoints that keep their name in a route; anything else is a resource type.
_ENDPOINTS = {
    "users": "Users",
    "groups": "Groups",
    "serviceproviderconfig": "ServiceProviderConfig",
    "serviceproviderconfigs": "ServiceProviderConfigs",
    "schemas": "Schemas",
    "resourcetypes": "ResourceTypes",
    "bulk": "Bulk",
    ".search": ".search",
    "me": "Me",
}


def route_of(path: str) -> str:
    """A low-cardinality template of a request path: no app name, id or query."""
    parts = [p for p in path.split("?", 1)[0].split("/") if p]
    if len(parts) < 4 or parts[0].lower() != "apps":
        return "/" + "/".join(parts[:1]) if parts else "/"
    route = ["apps", "{app}", "scim", "v2"]
    rest = parts[4:]
    if rest:
        route.append(_ENDPOINTS.get(rest[0].lower(), "{type}"))
    if len(rest) > 1:
        route.append(".search" if rest[1].lower() == ".search" else "{id}")
    if len(rest) > 2:
        route.append("...")
    return "/" + "/".join(route)


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path in UNOBSERVED:
        return await handler(request)
    tracer = telemetry.TRACER
    quiet: Token[Quiet | None] | None = None
    if tracer is not None:
        root = _lean_root(request, tracer)
        if not isinstance(root, Quiet):
            return await _traced(request, handler, tracer, root)
        quiet = QUIET.set(root)  # unsampled: as with tracing off, the ids aside
    metrics = request.app[METRICS]
    metrics.started()
    start = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        if quiet is not None:
            QUIET.reset(quiet)
        _finished(request, metrics, status, time.perf_counter() - start)


def _finished(
    request: web.Request, metrics: Metrics, status: int, seconds: float, route: str | None = None
) -> None:
    """The request's metrics and its access line."""
    op = operation_of(request)
    if op is not None:
        metrics.finished(op.app, op.action, status, seconds)
    else:
        metrics.finished("", "none", status, seconds)
    if access_enabled():
        method = request.method if request.method in _METHODS else "_OTHER"  # bounded names
        route = route or route_of(request.raw_path)
        access(method, route, status, seconds * 1000.0, op)


def _server_attributes(request: web.Request, method: str, route: str) -> dict[str, AttributeValue]:
    """What the SERVER span says of a request: method, route, path, scheme, host, user agent."""
    attributes: dict[str, AttributeValue] = {
        "http.request.method": method,
        "http.route": route,
        "url.path": request.path,
        "url.scheme": request.scheme,
        "server.address": request.host,
    }
    user_agent = request.headers.get("User-Agent")
    if user_agent:
        attributes["user_agent.original"] = user_agent
    return attributes


def _lean_root(request: web.Request, tracer: Tracer) -> Span | Quiet | None:
    """For the lean tracer and a request that brings no trace context: its root span,
    or only its ids when its trace is not sampled (a quiet request, gateway/spans.py).
    None otherwise: the span is started the usual way, in the caller's context."""
    if type(tracer) is not FastTracer or not _a_root(request):
        return None
    return tracer.start_root()


async def _traced(
    request: web.Request, handler: Handler, tracer: Tracer, root: Span | None
) -> web.StreamResponse:
    """:func:`observe` with the request's SERVER span, in the caller's W3C context.

    The SDK's samplers may read a span's attributes, so its tracer gets them at
    the start; ours (:class:`gateway.spans.FastTracer`) decides on the trace id
    alone, and the attributes are built only for the requests it records.
    """
    metrics = request.app[METRICS]
    route = route_of(request.raw_path)
    method = request.method if request.method in _METHODS else "_OTHER"
    lean = type(tracer) is FastTracer
    metrics.started()
    start = time.perf_counter()
    status = 500
    span: Span
    parent: otel_context.Context | None
    if root is not None:  # the lean tracer's sampled root (see _lean_root)
        span, parent = root, None
        span.update_name(f"{method} {route}")
    else:
        parent = propagate.extract(request.headers)
        # start_span and attach by hand: start_as_current_span costs two generator frames.
        span = tracer.start_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes=None if lean else _server_attributes(request, method, route),
            record_exception=False,
            set_status_on_exception=False,
        )
    if lean and span.is_recording():
        span.set_attributes(_server_attributes(request, method, route))
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except BaseException as exc:
        mark_error(span, exc)
        raise
    finally:
        if span.is_recording():
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        otel_context.detach(token)
        span.end()
        _finished(request, metrics, status, time.perf_counter() - start, route)


def _a_root(request: web.Request) -> bool:
    """Whether the request's span would be a root: no trace context in its headers (for
    the propagators installed) and no span current (a test may run one around it)."""
    headers = request.headers
    for name in _propagated_fields():  # a loop, not any(): no generator per request
        if name in headers:
            return False
    current = otel_context.get_current()
    return not current or not trace.get_current_span(current).get_span_context().is_valid


_FIELDS: tuple[object, frozenset[str]] = (None, frozenset())


def _propagated_fields() -> frozenset[str]:
    """The header names the global propagator reads, worked out once per propagator."""
    global _FIELDS
    propagator = propagate.get_global_textmap()
    if _FIELDS[0] is not propagator:
        _FIELDS = (propagator, frozenset(propagator.fields))
    return _FIELDS[1]


async def metrics_view(request: web.Request) -> web.Response:
    """``GET /metrics``: every series in the Prometheus text format."""
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
