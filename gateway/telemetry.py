"""OpenTelemetry: set up from the standard ``OTEL_*`` variables, and the span helpers.

Nothing is exported unless the environment asks for it: with no OTLP endpoint
and no ``OTEL_TRACES_EXPORTER``/``OTEL_METRICS_EXPORTER`` tracing is *off*, and
off means no OpenTelemetry call on the request path at all: no span (not even a
no-op one), no context extraction, no propagation. Tracing is on once a
provider is installed (:func:`install_tracing`, done by :func:`setup_from_env`,
or adopted by :func:`adopt_global_tracing` when someone else installed one);
then a request whose trace is not sampled pays for its server span only: the
spans below it are skipped while the current span does not record, and the
legacy call still carries the caller's ``traceparent``. ``OTEL_SDK_DISABLED=true``
turns everything off whatever else is set. The SDK itself reads the service
name, resource attributes, sampler, endpoints and batch settings; this module
only decides whether to install it and which OTLP protocol to speak.

Spans carry names, never values: no attribute values, tokens, passwords, SQL
parameters or query strings (a filter's values are personal data). Errors
record the exception *type*; messages may quote request data.

The span tree of one request::

    PATCH /apps/{app}/scim/v2/Users/{id}     inbound request (SERVER; W3C context extracted)
      scim patch User                          the SCIM operation (scim.* attributes)
        adapter.get / adapter.update           one adapter call (queue wait included)
          PATCH                                the legacy HTTP call (CLIENT; sends traceparent)
          UPDATE / SELECT ...                  or the SQL statement (asyncpg; text, no parameters)
        mapping.from_legacy / mapping.to_legacy  the mapping render
      audit.write                              the audit record (see :func:`span`)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import INVALID_SPAN, NonRecordingSpan, Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue
from yarl import URL

from gateway.errors import ScimError
from gateway.operation import Operation
from gateway.otlp_wire import EXCEPTION_DETAILS
from gateway.spans import LIMIT_VARIABLES, QUIET, FastTracer, sampling_from_env

__all__ = [
    "NO_SPAN",
    "TRACER",
    "Telemetry",
    "TypesOnly",
    "adopt_global_tracing",
    "current_ids",
    "error_type",
    "from_env",
    "install_tracing",
    "instrument_asyncpg",
    "is_failure",
    "legacy_call_span",
    "legacy_call_status",
    "mark_error",
    "metric_reader",
    "operation_attributes",
    "operation_span",
    "setup_from_env",
    "span",
    "span_exporter",
]

SERVICE_NAME = "scim-gateway"
_TRUE = {"true", "1", "yes", "on"}


#: The gateway's tracer while tracing is on; None (the default) means off.
TRACER: trace.Tracer | None = None


def install_tracing(provider: trace.TracerProvider, tracer: trace.Tracer | None = None) -> None:
    """Make ``provider`` the process's (OpenTelemetry allows one) and turn tracing on.

    The gateway's spans come from ``tracer`` when given (the lean
    :class:`gateway.spans.FastTracer` :func:`from_env` makes for its own
    provider), else from the provider's tracer.
    """
    global TRACER
    trace.set_tracer_provider(provider)
    TRACER = tracer or trace.get_tracer_provider().get_tracer(SERVICE_NAME)


def adopt_global_tracing() -> bool:
    """Turn tracing on if a real provider was installed globally by other code
    (``opentelemetry-instrument``, a test); read once, at start-up, not per request."""
    global TRACER
    if TRACER is None:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
            TRACER = provider.get_tracer(SERVICE_NAME)
    return TRACER is not None


@dataclass
class Telemetry:
    """What the environment asked for; :meth:`shutdown` flushes what is queued."""

    tracer_provider: TracerProvider | None = None
    #: The gateway's own tracer for that provider (gateway/spans.py), when its rules are known.
    tracer: trace.Tracer | None = None
    #: OTLP metric readers, handed to the gateway's MeterProvider (gateway/metrics.py).
    metric_readers: list[MetricReader] = field(default_factory=list)
    resource: Resource = field(default_factory=lambda: Resource.create({}))

    def shutdown(self) -> None:
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()


#: What OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER may name (besides "none");
#: "prometheus" is GET /metrics, which is served whatever the variable says.
_KNOWN = {"traces": ("otlp", "console"), "metrics": ("otlp", "prometheus")}


def _exporters(env: Mapping[str, str], signal: str) -> list[str]:
    """The exporters named for a signal; ``otlp`` by default once an endpoint is set."""
    variable = f"OTEL_{signal.upper()}_EXPORTER"
    named = [n.strip() for n in env.get(variable, "").lower().split(",") if n.strip()]
    if not named:
        endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT")
        return ["otlp"] if any(env.get(name) for name in endpoints) else []
    unknown = [n for n in named if n not in (*_KNOWN[signal], "none")]
    if unknown:
        known = ", ".join(_KNOWN[signal])
        raise ValueError(f"{variable}: {', '.join(unknown)} is not supported (use {known} or none)")
    return [n for n in named if n != "none"]


def _protocol(env: Mapping[str, str], signal: str) -> str:
    value = env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    value = value.strip().lower()
    if value not in ("http/protobuf", "grpc"):
        raise ValueError(f"OTLP protocol {value!r} is not supported: use http/protobuf or grpc")
    return value


def span_exporter(protocol: str) -> SpanExporter:
    """The OTLP span exporter of ``protocol``; over HTTP ours (it cuts exceptions to types).

    The exporters read their endpoint, headers and timeout from OTEL_* themselves;
    each is imported only when chosen (grpc is a heavy import). Over HTTP it is
    :class:`gateway.otlp_http.HttpSpanExporter` (the library's, with a faster
    encoder that does :class:`TypesOnly`'s job); over gRPC the library's.
    """
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc

        return Grpc()
    from gateway.otlp_http import HttpSpanExporter

    return HttpSpanExporter()


def metric_reader(protocol: str) -> MetricReader:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
            OTLPMetricExporter as GrpcMetrics,
        )

        return PeriodicExportingMetricReader(GrpcMetrics())
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HttpMetrics,
    )

    return PeriodicExportingMetricReader(HttpMetrics())


_MESSAGES = EXCEPTION_DETAILS


def _types_only(span: ReadableSpan) -> ReadableSpan:
    """``span`` without the message and stack trace of its exception events."""
    if not any(event.name == "exception" for event in span.events):
        return span
    events = [
        Event(
            event.name,
            {k: v for k, v in (event.attributes or {}).items() if k not in _MESSAGES},
            event.timestamp,
        )
        if event.name == "exception"
        else event
        for event in span.events
    ]
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=span.status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class TypesOnly(SpanExporter):
    """Exports spans with exception events cut down to the exception type.

    Our spans record no exception events at all (:func:`mark_error`); the
    aiohttp client instrumentation records the exception of a failed legacy
    call, whose message and traceback may quote a URL with its query string.
    """

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([_types_only(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def _resource(env: Mapping[str, str]) -> Resource:
    """OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, with our name as the default."""
    resource = Resource.create({})  # reads both variables
    default = Resource({"service.name": SERVICE_NAME})
    named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    return resource if named else resource.merge(default)


def from_env() -> Telemetry:
    """What ``OTEL_*`` asks for, built but not installed (see :func:`setup_from_env`).

    Raises ValueError for an exporter or OTLP protocol it does not know.
    """
    env = os.environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return Telemetry()
    resource = _resource(env)
    telemetry = Telemetry(resource=resource)
    if "otlp" in _exporters(env, "metrics"):
        telemetry.metric_readers.append(metric_reader(_protocol(env, "metrics")))
    traces = _exporters(env, "traces")
    if traces:
        sampling = sampling_from_env(env)  # None: a plugin sampler the SDK finds itself
        provider = TracerProvider(
            resource=resource, sampler=sampling.sdk_sampler() if sampling else None
        )
        processors = [BatchSpanProcessor(_exporter(name, env)) for name in traces]
        for processor in processors:
            provider.add_span_processor(processor)
        telemetry.tracer_provider = provider
        if sampling is not None and not any(env.get(name) for name in LIMIT_VARIABLES):
            telemetry.tracer = FastTracer(sampling, processors, provider.resource, SERVICE_NAME)
    return telemetry


def setup_from_env() -> Telemetry:
    """Install tracing as ``OTEL_*`` asks: the global provider and the asyncpg spans.

    Call once per process, before the app serves; ``Telemetry.shutdown`` at exit.
    """
    telemetry = from_env()
    if telemetry.tracer_provider is not None:
        install_tracing(telemetry.tracer_provider, telemetry.tracer)
        instrument_asyncpg()
    return telemetry


def _exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    """The span exporter ``name``, exporting exception events by type only.

    Over OTLP/HTTP ours does that itself as it encodes (no span copies); the
    others sit behind :class:`TypesOnly`.
    """
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return TypesOnly(ConsoleSpanExporter())
    protocol = _protocol(env, "traces")
    exporter = span_exporter(protocol)
    return exporter if protocol == "http/protobuf" else TypesOnly(exporter)


_ASYNCPG_DONE = False


def instrument_asyncpg() -> None:
    """Trace every asyncpg statement (its text; never its parameters), once per process."""
    global _ASYNCPG_DONE
    if _ASYNCPG_DONE:
        return
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor

    AsyncPGInstrumentor(capture_parameters=False).instrument()  # type: ignore[no-untyped-call]
    _ASYNCPG_DONE = True


def _without_query(url: URL) -> str:
    """The URL a client span shows: no query (filters, keys) and no credentials."""
    return str(url.with_query(None).with_fragment(None).with_user(None).with_password(None))


@contextmanager
def legacy_call_span(method: str, url: URL, headers: dict[str, str]) -> Iterator[Span]:
    """The CLIENT span of one HTTP call to a legacy app; W3C context goes into ``headers``.

    Only called while tracing is on. Under a span that does not record (its trace
    was not sampled) no span is made, but the caller's context still travels on.
    The span shows the URL without its query and records a failure by the
    exception's type, never its message (it may quote a URL with its query).
    """
    quiet = QUIET.get() if TRACER is not None else None
    if quiet is not None:  # an unsampled request without a span: its ids travel on
        parent: Span = NonRecordingSpan(quiet.span_context())
        propagate.inject(headers, context=trace.set_span_in_context(parent))
        yield parent
        return
    parent = trace.get_current_span()
    if TRACER is None or _unsampled(parent):
        propagate.inject(headers)
        yield parent
        return
    attributes: dict[str, AttributeValue] = {
        "http.request.method": method,
        "url.full": _without_query(url),
        "server.address": url.host or "",
    }
    if url.port is not None:
        attributes["server.port"] = url.port
    with TRACER.start_as_current_span(
        method,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        propagate.inject(headers)
        try:
            yield current
        except BaseException as exc:
            kind = type(exc.__cause__ or exc)  # the transport's own error, not our wrapper
            name = f"{kind.__module__}.{kind.__qualname__}"
            current.add_event("exception", {"exception.type": name, "exception.escaped": "False"})
            current.set_attribute("error.type", kind.__qualname__)
            current.set_status(Status(StatusCode.ERROR))
            raise


def legacy_call_status(current: Span, status: int) -> None:
    """The legacy app's answer on its call's span (5xx marks the span an error)."""
    if current.is_recording():
        current.set_attribute("http.response.status_code", status)
        if status >= 500:
            current.set_status(Status(StatusCode.ERROR))


def error_type(exc: BaseException) -> str:
    """How spans, metrics and logs name an error: its class, never its message."""
    return type(exc).__name__


def is_failure(exc: BaseException) -> bool:
    """Our fault or the legacy app's (5xx, or not a SCIM error at all); 4xx is the caller's."""
    return not isinstance(exc, ScimError) or exc.status >= 500


def mark_error(target: Span, exc: BaseException) -> None:
    """Record an exception on a span by type; the status is ERROR only for failures."""
    if not target.is_recording():
        return
    target.set_attribute("error.type", error_type(exc))
    if is_failure(exc):
        target.set_status(Status(StatusCode.ERROR, error_type(exc)))


class _NoSpan:
    """What :func:`span` gives while nothing is traced: a reusable do-nothing context."""

    __slots__ = ()

    def __enter__(self) -> Span:
        return INVALID_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


NO_SPAN = _NoSpan()
_NO_ATTRIBUTES: Mapping[str, AttributeValue | None] = MappingProxyType({})


def span(name: str, **attributes: AttributeValue | None) -> AbstractContextManager[Span]:
    """A child span of the current one, e.g. ``with span("audit.write", **{"scim.app": app})``.

    Attributes whose value is None are left out. An exception that passes
    through is recorded by type (see :func:`mark_error`) and re-raised. While
    tracing is off, in a quiet request (unsampled, see gateway/spans.py), or under a
    span that does not record, it is :data:`NO_SPAN`: no OpenTelemetry call at all.
    """
    if TRACER is None or QUIET.get() is not None or _unsampled(trace.get_current_span()):
        return NO_SPAN
    return _Scope(TRACER, name, attributes)


def _unsampled(parent: Span) -> bool:
    """``parent`` belongs to a trace that is not recorded (a root span is up to the sampler)."""
    return not parent.is_recording() and parent.get_span_context().is_valid


class _Scope:
    """A child span, current for a ``with`` block (a class: cheaper than a generator)."""

    __slots__ = ("_attributes", "_name", "_span", "_token", "_tracer")

    def __init__(
        self, tracer: trace.Tracer, name: str, attributes: Mapping[str, AttributeValue | None]
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._attributes = attributes
        self._span: Span = INVALID_SPAN
        self._token: object = None

    def __enter__(self) -> Span:
        attrs = {k: v for k, v in self._attributes.items() if v is not None}
        current = self._span = self._tracer.start_span(
            self._name, attributes=attrs, record_exception=False, set_status_on_exception=False
        )
        self._token = otel_context.attach(trace.set_span_in_context(current))
        return current

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        current = self._span
        if exc is not None:
            mark_error(current, exc)
        self._ending(current)
        otel_context.detach(self._token)  # type: ignore[arg-type]
        current.end()

    def _ending(self, current: Span) -> None:
        """What a subclass adds to the span before it ends."""


def operation_attributes(op: Operation) -> dict[str, AttributeValue]:
    """What a span may say about an operation: names, ids and outcome; no values."""
    attrs: dict[str, AttributeValue] = {
        "scim.app": op.app,
        "scim.operation": op.action,
        "scim.outcome": op.outcome,
    }
    optional: dict[str, str | int | Sequence[str] | None] = {
        "scim.resource_type": op.resource_type,
        "scim.id": op.scim_id,
        "scim.type": op.scim_type,
        "scim.client": op.client,
        "scim.bulk_id": op.bulk_id,
        "scim.failed_step": op.failed_step,
        "scim.changed": list(op.changed) if op.changed else None,
        "http.response.status_code": op.status or None,
    }
    attrs.update({k: v for k, v in optional.items() if v is not None})
    attrs.update({f"scim.{k}": v for k, v in op.extra.items()})  # names only, by contract
    return attrs


def operation_span(op: Operation) -> AbstractContextManager[Span]:
    """The span of one SCIM operation; gives ``op`` its trace and span ids.

    Its name and attributes are set when it ends, from what the operation
    learnt (action, resource type, status), so close ``op`` inside it. While
    tracing is off: :data:`NO_SPAN`. In a quiet request or under a span that does
    not record, the operation still learns the (unsampled) trace id, for its logs
    and audit.
    """
    if TRACER is None:
        return NO_SPAN
    quiet = QUIET.get()
    if quiet is not None:
        op.trace_id, op.span_id = _hex_ids(quiet.trace_id, quiet.span_id)
        return NO_SPAN
    parent = trace.get_current_span()
    if _unsampled(parent):
        context = parent.get_span_context()
        op.trace_id, op.span_id = _hex_ids(context.trace_id, context.span_id)
        return NO_SPAN
    return _OperationScope(TRACER, op)


class _OperationScope(_Scope):
    """:func:`operation_span`'s span: it stamps the operation with its ids, and is named
    and described at its end from what the operation learnt."""

    __slots__ = ("_op",)

    def __init__(self, tracer: trace.Tracer, op: Operation) -> None:
        super().__init__(tracer, "scim operation", _NO_ATTRIBUTES)
        self._op = op

    def __enter__(self) -> Span:
        current = super().__enter__()
        context = current.get_span_context()
        if context.is_valid:
            self._op.trace_id, self._op.span_id = _hex_ids(context.trace_id, context.span_id)
        return current

    def _ending(self, current: Span) -> None:
        op = self._op
        if current.is_recording():
            current.update_name(" ".join(filter(None, ("scim", op.action, op.resource_type))))
            current.set_attributes(operation_attributes(op))
            if op.status >= 500:
                current.set_status(Status(StatusCode.ERROR, str(op.status)))


def current_ids() -> tuple[str | None, str | None]:
    """The trace and span id of the running span, as hex, for a log line."""
    if TRACER is None:
        return None, None
    quiet = QUIET.get()
    if quiet is not None:
        return _hex_ids(quiet.trace_id, quiet.span_id)
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return _hex_ids(context.trace_id, context.span_id)


def _hex_ids(trace_id: int, span_id: int) -> tuple[str, str]:
    """A trace and span id as logs, audit events and operations carry them."""
    return trace.format_trace_id(trace_id), trace.format_span_id(span_id)
