"""A lean tracer for the request path, feeding the SDK's own span processors.

The SDK's ``Tracer.start_span`` is general: a sampler object called with the
name, kind and attributes, a ``SamplingResult``, a locked ``BoundedAttributes``
that checks every value, span limits, self-metrics, and ``on_start``/``on_end``
through a multi-processor. At 10 % sampling that cost about a fifth of a
request's CPU on the memory adapter, most of it in the nine requests in ten that
are not recorded at all. :class:`FastTracer` does what those requests need and
no more: the sampling rule decided inline on the trace id, a
``NonRecordingSpan`` when it says no, and for a sampled span a small object
(:class:`LiveSpan`) that keeps its attributes in a dict and, when it ends, hands
a public :class:`~opentelemetry.sdk.trace.ReadableSpan` to the same
:class:`~opentelemetry.sdk.trace.export.BatchSpanProcessor` the SDK would.

It is used only where its rules are known to match the SDK's: for a provider
that :func:`gateway.telemetry.from_env` built itself, with a sampler named in
``OTEL_TRACES_SAMPLER`` from the SDK's own list (:func:`sampling_from_env`,
which also builds the SDK sampler handed to that provider, so spans made by
other instrumentation decide alike) and no attribute or event limits set in the
environment (our spans carry a few short attributes and at most one event; with
limits set, the SDK enforces them). Any other provider, one installed by
someone else included, gets the SDK's tracer.

Decisions follow the SDK's samplers exactly: a root span is sampled when the
rule's root sampler says so (``traceidratio``: the low 64 bits of the trace id
below the rate's bound); a span with a valid parent, under a parent-based rule,
is sampled when its parent is. Trace ids and span ids are random (the
``random-trace-id`` flag of W3C Trace Context level 2 is set as the SDK sets
it), and a child keeps its parent's trace state.

A request that brings no trace context and whose new trace is not sampled (at
10 %, nine in ten) gets no span and no OpenTelemetry context at all: its trace
and span ids go in :data:`QUIET`, a context variable of our own, for the length
of the request (:meth:`FastTracer.start_root`). The gateway's span helpers see
it first and do nothing, its logs and audit events still carry the trace id,
a legacy call still sends it on (``traceparent`` with the sampled flag off), and
the SDK samplers this module gives the provider drop whatever other
instrumentation starts meanwhile, as the unsampled parent would have had them do.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_OFF,
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)
from opentelemetry.util.types import Attributes, AttributeValue

__all__ = ["FastTracer", "LiveSpan", "Sampling", "sampling_from_env"]

_log = logging.getLogger(__name__)

_SAMPLED = TraceFlags.SAMPLED
#: W3C Trace Context level 2's random-trace-id flag (0x02), set by the SDK on random ids.
_RANDOM = int(getattr(TraceFlags, "RANDOM_TRACE_ID", 0))
_RATIO_LIMIT = TraceIdRatioBased.TRACE_ID_LIMIT
_UNSET = Status(StatusCode.UNSET)
_EMPTY_STATE = TraceState()
#: The most attributes one of our spans keeps (the SDK's default span limit).
MAX_ATTRIBUTES = 128


def _put(attributes: dict[str, AttributeValue], key: str, value: AttributeValue | None) -> None:
    """One attribute of a span, at its start or set later: a None left out (it says
    nothing; an existing value stays), a list frozen to a tuple (as the SDK does), no
    new key past :data:`MAX_ATTRIBUTES`."""
    if value is None or (key not in attributes and len(attributes) >= MAX_ATTRIBUTES):
        return
    attributes[key] = tuple(value) if isinstance(value, list) else value


#: Environment variables that set span limits; with any of them set the SDK tracer is used.
LIMIT_VARIABLES = (
    "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT",
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
    "OTEL_SPAN_EVENT_COUNT_LIMIT",
    "OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT",
)


class Quiet:
    """The ids of an unsampled request's trace, kept in :data:`QUIET` instead of a span."""

    __slots__ = ("span_id", "trace_id")

    def __init__(self, trace_id: int, span_id: int) -> None:
        self.trace_id = trace_id
        self.span_id = span_id

    def span_context(self) -> SpanContext:
        """What the request's span would have been: not sampled, a random trace id."""
        return SpanContext(self.trace_id, self.span_id, False, TraceFlags(_RANDOM), _EMPTY_STATE)


#: Set for the length of a request that :meth:`FastTracer.start_root` left unsampled.
QUIET: ContextVar[Quiet | None] = ContextVar("scim_gateway_quiet", default=None)
_DROP = SamplingResult(Decision.DROP)


class _QuietAware(Sampler):
    """An SDK sampler that drops every span started inside a quiet request, where the
    request's unsampled span would have made a parent-based sampler drop it; elsewhere
    ``inner`` decides."""

    def __init__(self, inner: Sampler) -> None:
        self.inner = inner

    def should_sample(self, *args: Any, **kwargs: Any) -> SamplingResult:
        if QUIET.get() is not None:
            return _DROP
        return self.inner.should_sample(*args, **kwargs)

    def get_description(self) -> str:
        return self.inner.get_description()


class Sampling:
    """A sampling rule decided inline: ``root`` is "on", "off" or "ratio" (with ``bound``)."""

    __slots__ = ("bound", "parent_based", "rate", "root")

    def __init__(self, root: str, parent_based: bool, rate: float = 1.0) -> None:
        if root not in ("on", "off", "ratio"):
            raise ValueError(f"unknown root sampler {root!r}")
        self.root = root
        self.parent_based = parent_based
        self.rate = rate
        self.bound = TraceIdRatioBased.get_bound_for_rate(rate) if root == "ratio" else 0

    def sampled(self, parent: SpanContext | None, trace_id: int) -> bool:
        """Whether a span of ``trace_id`` under ``parent`` (None: a root) is recorded."""
        if self.parent_based and parent is not None:
            return parent.trace_flags.sampled
        if self.root == "ratio":
            return trace_id & _RATIO_LIMIT < self.bound
        return self.root == "on"

    def sdk_sampler(self) -> Sampler:
        """The SDK sampler that decides as this rule does (for the provider's other tracers)."""
        root: Sampler
        if self.root == "ratio":
            root = TraceIdRatioBased(self.rate)  # the same bound, from the same float
        else:
            root = ALWAYS_ON if self.root == "on" else ALWAYS_OFF
        return _QuietAware(ParentBased(root) if self.parent_based else root)


_NAMES = {
    "always_on": ("on", False),
    "always_off": ("off", False),
    "traceidratio": ("ratio", False),
    "parentbased_always_on": ("on", True),
    "parentbased_always_off": ("off", True),
    "parentbased_traceidratio": ("ratio", True),
}


def sampling_from_env(env: Mapping[str, str]) -> Sampling | None:
    """The rule ``OTEL_TRACES_SAMPLER``/``_ARG`` name, read as the SDK reads them.

    None for a sampler the SDK finds by plugin (``xray``, ``jaeger_remote``...):
    the SDK then chooses, and the SDK's tracer is used. A ratio that is not a
    number, or not between 0 and 1, is 1.0 with a warning, as in the SDK.
    """
    name = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    if name not in _NAMES:
        return None
    root, parent_based = _NAMES[name]
    rate = 1.0
    if root == "ratio":
        try:
            rate = float(env.get("OTEL_TRACES_SAMPLER_ARG", ""))
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate <= 1.0:
            _log.warning("OTEL_TRACES_SAMPLER_ARG is not a number from 0 to 1: sampling all (1.0)")
            rate = 1.0
    return Sampling(root, parent_based, rate)


class LiveSpan(trace.Span):
    """A sampled span while it runs; :meth:`end` hands its record to the processors.

    Used from the event loop's thread only, as the request path is; a span that
    has ended ignores further changes, as the SDK's does.
    """

    __slots__ = (
        "_attributes",
        "_context",
        "_ended",
        "_events",
        "_kind",
        "_name",
        "_parent",
        "_start",
        "_status",
        "_tracer",
    )

    def __init__(
        self,
        tracer: FastTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, AttributeValue],
        start_time: int | None,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._events: list[Event] = []
        self._status = _UNSET
        self._start = start_time or time.time_ns()
        self._ended = False

    def get_span_context(self) -> SpanContext:
        return self._context

    def is_recording(self) -> bool:
        return not self._ended

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        if not self._ended:
            _put(self._attributes, key, value)

    def set_attributes(self, attributes: Mapping[str, AttributeValue]) -> None:
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def add_event(
        self, name: str, attributes: Attributes = None, timestamp: int | None = None
    ) -> None:
        if not self._ended:
            self._events.append(Event(name, dict(attributes or {}), timestamp or time.time_ns()))

    def add_link(self, context: SpanContext, attributes: Attributes = None) -> None:
        return None  # our spans link to nothing; links are given at start in the SDK

    def update_name(self, name: str) -> None:
        if not self._ended:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._ended or self._status.status_code is StatusCode.OK:
            return  # OK is final, as in the SDK
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """The exception by type only: a message may quote request data."""
        kind = type(exception)
        self.add_event(
            "exception",
            {
                "exception.type": f"{kind.__module__}.{kind.__qualname__}",
                "exception.escaped": str(escaped),
                **dict(attributes or {}),
            },
            timestamp,
        )

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        tracer = self._tracer
        record = ReadableSpan(
            name=self._name,
            context=self._context,
            parent=self._parent,
            resource=tracer.resource,
            attributes=self._attributes,
            events=self._events,
            kind=self._kind,
            status=self._status,
            start_time=self._start,
            end_time=end_time or time.time_ns(),
            instrumentation_scope=tracer.scope,
        )
        for processor in tracer.processors:
            processor.on_end(record)


class FastTracer(trace.Tracer):
    """A tracer deciding by ``sampling`` that hands ended spans to ``processors``.

    The processors must not need ``on_start`` (the SDK's batch and simple
    processors do nothing there); :func:`gateway.telemetry.from_env` gives it the
    batch processors it made for its own provider.
    """

    def __init__(
        self,
        sampling: Sampling,
        processors: Sequence[SpanProcessor],
        resource: Resource,
        scope: str,
    ) -> None:
        self.sampling = sampling
        self.processors = tuple(processors)
        self.resource = resource
        self.scope = InstrumentationScope(scope)

    def start_root(self, name: str = "", kind: SpanKind = SpanKind.SERVER) -> trace.Span | Quiet:
        """The root span of a request that brings no trace context: a :class:`LiveSpan`
        if its new trace is sampled, else only its ids (put them in :data:`QUIET`).
        The name may be given later (``update_name``): no sampler of ours reads it."""
        trace_id = random.getrandbits(128) or 1
        span_id = random.getrandbits(64) or 1
        if not self.sampling.sampled(None, trace_id):
            return Quiet(trace_id, span_id)
        flags = TraceFlags(_RANDOM | _SAMPLED)
        context = SpanContext(trace_id, span_id, False, flags, _EMPTY_STATE)
        return LiveSpan(self, name, context, None, kind, {}, None)

    def start_span(
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> trace.Span:
        """A :class:`LiveSpan` if the trace is sampled, else a ``NonRecordingSpan``.

        ``record_exception`` and ``set_status_on_exception`` only matter to
        :meth:`start_as_current_span`; the gateway's helpers record errors themselves.
        """
        parent: SpanContext | None = trace.get_current_span(context).get_span_context()
        if parent is not None and parent.is_valid:
            trace_id = parent.trace_id
            flags = parent.trace_flags & _RANDOM
            state = parent.trace_state
        else:
            parent = None
            trace_id = random.getrandbits(128) or 1
            flags = _RANDOM
            state = _EMPTY_STATE
        span_id = random.getrandbits(64) or 1
        if not self.sampling.sampled(parent, trace_id):
            return NonRecordingSpan(SpanContext(trace_id, span_id, False, TraceFlags(flags), state))
        span_context = SpanContext(trace_id, span_id, False, TraceFlags(flags | _SAMPLED), state)
        values: dict[str, AttributeValue] = {}
        if attributes:
            for key, value in attributes.items():
                _put(values, key, value)
        return LiveSpan(self, name, span_context, parent, kind, values, start_time)

    @contextmanager  # the API types it with its own (private) decorator
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: otel_context.Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Any]:
        span = self.start_span(name, context, kind, attributes, links, start_time)
        token = otel_context.attach(trace.set_span_in_context(span, context))
        try:
            yield span
        except BaseException as exc:
            if span.is_recording():
                if record_exception:
                    span.record_exception(exc, escaped=True)
                if set_status_on_exception:
                    span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            otel_context.detach(token)
            if end_on_exit:
                span.end()
