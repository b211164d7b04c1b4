"""Our OTLP span encoder against the library's: the same message, once parsed.

``gateway.otlp_wire.encode_spans`` writes an ``ExportTraceServiceRequest`` by
hand; every test here parses what it wrote and compares it with what
opentelemetry-exporter-otlp-proto-common's ``encode_spans`` builds from the
same spans after :class:`gateway.telemetry.TypesOnly` (message objects compare
field by field, presence of empty submessages included).
"""

from __future__ import annotations

import enum
import logging
import math
import struct
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from gateway import otlp_wire
from gateway.otlp_wire import encode_spans
from gateway.telemetry import _types_only

_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def expected(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    """What the library's OTLP/HTTP exporter sent behind TypesOnly."""
    return library([_types_only(span) for span in spans])


def ours(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(encode_spans(spans))


def assert_same(spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
    want, got = expected(spans), ours(spans)
    assert got == want, f"ours:\n{got}\nlibrary:\n{want}"
    return got


# -- attribute values of every kind ------------------------------------------------------


class Colour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


KEYS = st.sampled_from(["scim.app", "http.route", "url.path", "", "ключ", "k"]) | st.text(
    max_size=12
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.text(max_size=30)
    | st.sampled_from(["", "acme", "PATCH", "/apps/{app}/scim/v2/Users/{id}", "é" * 70])
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.integers(min_value=-(2**70), max_value=2**70)  # out of int64: left out
    | st.sampled_from([0, 1, -1, 127, 128, 2**63 - 1, -(2**63), 2**64])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.binary(max_size=20)
    | st.sampled_from([Colour.RED, Level.HIGH, bytearray(b"ab"), object()])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(0, 3), inner, max_size=4)
    ),
    max_leaves=10,
)
ATTRIBUTES = st.dictionaries(KEYS, VALUES, max_size=6)

RESOURCES = [
    Resource({"service.name": "scim-gateway", "deployment.environment": "prod"}),
    Resource({"service.name": "scim-gateway", "deployment.environment": "prod"}),  # equal
    Resource({"service.name": "other", "n": 3, "tags": ("a", "b")}, "https://schema/1.21"),
    Resource({}),
]
SCOPES = [
    None,
    InstrumentationScope("scim-gateway"),
    InstrumentationScope("scim-gateway"),  # equal to the one before
    InstrumentationScope("opentelemetry.instrumentation.aiohttp_client", "0.66b1"),
    InstrumentationScope("scoped", "1.0", "https://schema/1.2", {"a": 1, "b": ["x", "y"]}),
    InstrumentationScope("", None, None, None),
]
TRACE_STATES = [
    TraceState(),
    TraceState([("vendor", "value")]),
    TraceState([("a", "1"), ("b@tenant", "x-y")]),
]


@st.composite
def contexts(draw: st.DrawFn) -> SpanContext:
    return SpanContext(
        trace_id=draw(st.integers(1, 2**128 - 1) | st.sampled_from([1, 2**128 - 1])),
        span_id=draw(st.integers(1, 2**64 - 1)),
        is_remote=draw(st.booleans()),
        trace_flags=TraceFlags(draw(st.sampled_from([0, 1]))),
        trace_state=draw(st.sampled_from(TRACE_STATES)),
    )


@st.composite
def maybe_bounded(draw: st.DrawFn, attributes: dict[str, Any]) -> Any:
    """A plain dict (any value), or what the SDK keeps: bounded, some dropped."""
    if draw(st.booleans()):
        return attributes
    valid = draw(st.dictionaries(KEYS, st.text(max_size=8) | st.integers(-5, 5), max_size=5))
    return BoundedAttributes(maxlen=draw(st.integers(0, 3)), attributes=valid, immutable=True)


@st.composite
def events(draw: st.DrawFn) -> Event:
    name = draw(st.sampled_from(["exception", "retry", "", "événement"]))
    if name == "exception" and draw(st.booleans()):
        attributes: Any = {
            "exception.type": "aiohttp.client_exceptions.ClientConnectorError",
            "exception.message": "Cannot connect to host 127.0.0.1:9 ?filter=secret",
            "exception.stacktrace": "Traceback (most recent call last):\n  ...",
            "exception.escaped": "False",
        }
        if draw(st.booleans()):
            attributes = BoundedAttributes(maxlen=2, attributes=attributes, immutable=True)
    else:
        attributes = draw(st.none() | maybe_bounded(draw(ATTRIBUTES)))
    timestamp = draw(st.integers(0, 2**64 - 1))
    return Event(name, attributes, timestamp)


@st.composite
def links(draw: st.DrawFn) -> Link:
    return Link(draw(contexts()), draw(st.none() | maybe_bounded(draw(ATTRIBUTES))))


@st.composite
def statuses(draw: st.DrawFn) -> Status | None:
    code = draw(st.sampled_from(StatusCode))
    description = draw(st.none() | st.text(max_size=10)) if code is StatusCode.ERROR else None
    return draw(st.sampled_from([None, Status(code, description)]))


@st.composite
def spans(draw: st.DrawFn) -> ReadableSpan:
    event_list = draw(st.lists(events(), max_size=3))
    link_list = draw(st.lists(links(), max_size=2))
    if draw(st.booleans()):  # as the SDK keeps them, with some dropped
        bounded_events: Any = BoundedList.from_seq(draw(st.integers(0, 3)), event_list)
        bounded_links: Any = BoundedList.from_seq(draw(st.integers(0, 2)), link_list)
    else:
        bounded_events, bounded_links = event_list, link_list
    return ReadableSpan(
        name=draw(st.text(max_size=20) | st.sampled_from(["GET", "scim patch User", ""])),
        context=draw(contexts()),
        parent=draw(st.none() | contexts()),
        resource=draw(st.sampled_from(RESOURCES)),
        attributes=draw(maybe_bounded(draw(ATTRIBUTES))),
        events=bounded_events,
        links=bounded_links,
        kind=draw(st.sampled_from(SpanKind)),
        status=draw(statuses()),
        start_time=draw(st.none() | st.integers(0, 2**64 - 1)),
        end_time=draw(st.none() | st.integers(0, 2**64 - 1)),  # None: not ended
        instrumentation_scope=draw(st.sampled_from(SCOPES)),
    )


@_SETTINGS
@given(st.lists(spans(), max_size=6))
def test_any_batch_is_the_library_message_after_types_only(batch: list[ReadableSpan]) -> None:
    logging.disable(logging.ERROR)  # both sides log each attribute they leave out
    try:
        assert_same(batch)
    finally:
        logging.disable(logging.NOTSET)


@_SETTINGS
@given(KEYS, VALUES)
def test_one_attribute_of_any_value_is_encoded_as_the_library_does(key: str, value: Any) -> None:
    span = ReadableSpan("a", context=SpanContext(1, 2, False), attributes={key: value})
    logging.disable(logging.ERROR)
    try:
        got = assert_same([span])
    finally:
        logging.disable(logging.NOTSET)
    assert len(got.resource_spans[0].scope_spans[0].spans[0].attributes) <= 1


def test_values_at_the_edges_are_encoded_exactly() -> None:
    attributes = {
        "neg": -1,
        "min": -(2**63),
        "max": 2**63 - 1,
        "zero": 0,
        "false": False,
        "true": True,
        "empty": "",
        "nan": math.nan,
        "inf": -math.inf,
        "negzero": -0.0,
        "bytes": b"\x00\xff",
        "none": None,
        "list": [1, "a", [True, None], {"k": 1.5}],
        "empty_list": [],
        "empty_map": {},
        "long": "x" * 300,
        "unicode": "Grüße, 世界 🌍",
    }
    span = ReadableSpan("edges", context=SpanContext(2**128 - 1, 2**64 - 1, False))
    span = ReadableSpan("edges", context=span.context, attributes=attributes)
    got = assert_same([span])
    values = {kv.key: kv.value for kv in got.resource_spans[0].scope_spans[0].spans[0].attributes}
    assert values["neg"].int_value == -1 and values["min"].int_value == -(2**63)
    assert values["false"].HasField("bool_value") and values["empty"].HasField("string_value")
    assert math.isnan(values["nan"].double_value) and values["none"].WhichOneof("value") is None
    assert values["empty_list"].HasField("array_value") and values["long"].string_value == "x" * 300
    raw = encode_spans([span])
    assert b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01" in raw  # -1 is a ten-byte varint


def test_a_value_it_cannot_encode_is_left_out_and_logged_by_key_and_type(
    caplog: pytest.LogCaptureFixture,
) -> None:
    attributes = {
        "ok": "kept",
        "huge": 2**64,
        "object": object(),
        "nested": ["fine", {"deep": object()}],
        "surrogate": "secret-\ud800",
        "\udc00": "secret-value",
        "after": 7,
    }
    span = ReadableSpan("left out", context=SpanContext(1, 2, False), attributes=attributes)
    with caplog.at_level(logging.ERROR, logger="gateway.otlp_wire"):
        got = ours([span])
    with caplog.at_level(logging.CRITICAL):
        assert got == expected([span])
    kept = [kv.key for kv in got.resource_spans[0].scope_spans[0].spans[0].attributes]
    assert kept == ["ok", "after"]
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.otlp_wire"]
    assert len(lines) == 5
    assert "'huge' left out, a int value" in lines[0] and "'nested'" in lines[2]
    assert not [line for line in lines if "secret" in line or str(2**64) in line]


def test_a_span_it_cannot_encode_fails_the_batch_as_the_library_does() -> None:
    context = SpanContext(1, 2, False)
    for span in (
        ReadableSpan("name-\ud800", context=context),
        ReadableSpan("too late", context=context, end_time=2**64),
    ):
        with pytest.raises(Exception):  # noqa: B017 - the library raises different types
            library([span])
        with pytest.raises((UnicodeEncodeError, struct.error)):
            encode_spans([span])


def test_no_spans_is_an_empty_request() -> None:
    assert encode_spans([]) == b"" == library([]).SerializePartialToString()


# -- spans as the SDK makes them ----------------------------------------------------------


def sdk_spans(limits: SpanLimits | None = None) -> tuple[ReadableSpan, ...]:
    memory = InMemorySpanExporter()
    resource = Resource.create({"service.name": "scim-gateway"})
    provider = TracerProvider(resource=resource, span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("scim-gateway", "1.0")
    other = provider.get_tracer("opentelemetry.instrumentation.aiohttp_client", "0.66b1")
    remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    with tracer.start_as_current_span(
        "PATCH /apps/{app}/scim/v2/Users/{id}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "PATCH", "url.path": "/apps/acme/scim/v2/Users/1"},
    ) as server:
        with tracer.start_as_current_span("scim patch User") as operation:
            operation.set_attributes({"scim.app": "acme", "scim.changed": ["title", "name"]})
            operation.set_status(Status(StatusCode.ERROR, "502"))
            with other.start_as_current_span("PATCH", kind=SpanKind.CLIENT) as call:
                call.add_event("queued")
                try:
                    raise ConnectionError("Cannot connect to http://acme/?filter=secret")
                except ConnectionError as exc:
                    call.record_exception(exc, {"extra": 1})
                call.add_link(remote, {"link.reason": "retry"})
                call.add_event("retry", {"attempt": 2})
        server.set_attribute("http.response.status_code", 502)
    provider.shutdown()
    return memory.get_finished_spans()


def test_spans_of_the_sdk_match_and_lose_their_exception_messages() -> None:
    batch = sdk_spans()
    got = assert_same(batch)
    (call,) = [s for r in got.resource_spans for c in r.scope_spans for s in c.spans if s.links]
    exception = call.events[1]
    assert exception.name == "exception"
    assert {kv.key for kv in exception.attributes} == {
        "exception.type",
        "exception.escaped",
        "extra",
    }
    assert "secret" not in str(got)
    assert [len(r.scope_spans) for r in got.resource_spans] == [2]  # two scopes, one resource


def test_dropped_counts_match_including_the_zeros_of_types_only_copies() -> None:
    limits = SpanLimits(max_span_attributes=1, max_events=2, max_links=0, max_event_attributes=1)
    batch = sdk_spans(limits)
    (call,) = [span for span in batch if span.name == "PATCH"]
    assert (call.dropped_events, call.dropped_links) == (1, 1)  # as the SDK kept it
    got = assert_same(batch)
    dropped = {
        s.name: (s.dropped_attributes_count, s.dropped_events_count, s.dropped_links_count)
        for r in got.resource_spans
        for c in r.scope_spans
        for s in c.spans
    }
    assert dropped["scim patch User"] == (1, 0, 0)
    assert dropped["PATCH"] == (0, 0, 0)  # it has an exception event: TypesOnly's copy


def test_remote_and_local_parents_set_the_span_flags() -> None:
    got = assert_same(sdk_spans())
    flags = {s.name: s.flags for r in got.resource_spans for c in r.scope_spans for s in c.spans}
    assert flags["PATCH /apps/{app}/scim/v2/Users/{id}"] == 0x300  # remote parent
    assert flags["scim patch User"] == 0x100


def test_repeated_batches_give_the_same_bytes_with_the_caches_warm_or_cold() -> None:
    batch = sdk_spans()
    first = encode_spans(batch)
    assert encode_spans(batch) == first
    otlp_wire._KEYS.clear()
    otlp_wire._SPAN_PAIRS.clear()
    assert encode_spans(batch) == first
    assert ExportTraceServiceRequest.FromString(first) == expected(batch)
