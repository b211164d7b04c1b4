"""gateway.spans: the lean tracer decides as the SDK's samplers do and hands the SDK's
processors what the SDK's own spans would give them."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    StatusCode,
    TraceFlags,
    TraceState,
)

from gateway.otlp_wire import encode_spans
from gateway.spans import MAX_ATTRIBUTES, FastTracer, LiveSpan, Sampling, sampling_from_env
from gateway.telemetry import from_env

NAMES = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def memory() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    exporter.shutdown()


def _tracer(memory: InMemorySpanExporter, sampling: Sampling | None = None) -> FastTracer:
    return FastTracer(
        sampling or Sampling("on", True),
        [SimpleSpanProcessor(memory)],
        Resource({"service.name": "t"}),
        "scim-gateway",
    )


def _parent(sampled: bool, remote: bool = True) -> SpanContext:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return SpanContext(random.getrandbits(128), random.getrandbits(64), remote, flags)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rate", ["0", "0.1", "0.5", "1"])
def test_every_decision_is_the_sdk_samplers(name: str, rate: str) -> None:
    sampling = sampling_from_env({"OTEL_TRACES_SAMPLER": name, "OTEL_TRACES_SAMPLER_ARG": rate})
    assert sampling is not None
    sdk = sampling.sdk_sampler()
    rng = random.Random(f"{name}{rate}")
    sampled = 0
    for _ in range(2000):
        for parent in (None, _parent(True), _parent(False), _parent(True, remote=False)):
            trace_id = parent.trace_id if parent else rng.getrandbits(128)
            context = trace.set_span_in_context(NonRecordingSpan(parent)) if parent else None
            expected = sdk.should_sample(context, trace_id, "x").decision.is_sampled()
            assert sampling.sampled(parent, trace_id) is expected, (name, rate, parent)
            sampled += expected
    if name.endswith("traceidratio") and rate == "0.1":
        assert 0 < sampled < 8000  # the rule is not trivially all or nothing


def test_the_sampler_is_read_from_the_environment_as_the_sdk_reads_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    default = sampling_from_env({})
    assert default is not None and (default.root, default.parent_based) == ("on", True)
    ratio = sampling_from_env(
        {"OTEL_TRACES_SAMPLER": " TraceIdRatio ", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    )
    assert ratio is not None and (ratio.root, ratio.parent_based, ratio.rate) == (
        "ratio",
        False,
        0.25,
    )
    for bad in ("", "ten", "1.5", "-0.1"):
        env = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": bad}
        fallback = sampling_from_env(env)
        assert fallback is not None and fallback.rate == 1.0, bad
    assert "OTEL_TRACES_SAMPLER_ARG" in caplog.text
    assert sampling_from_env({"OTEL_TRACES_SAMPLER": "xray"}) is None  # a plugin: the SDK's


def test_serve_uses_the_lean_tracer_only_where_its_rules_are_known(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.1")
    built = from_env()
    try:
        assert isinstance(built.tracer, FastTracer)
        assert built.tracer.sampling.bound == (0.1 * 2**64).__round__()
        provider = built.tracer_provider
        assert provider is not None and "0.1" in provider.sampler.get_description()
    finally:
        built.shutdown()
    monkeypatch.setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "64")  # limits: the SDK's tracer
    limited = from_env()
    try:
        assert limited.tracer is None and limited.tracer_provider is not None
    finally:
        limited.shutdown()


def test_an_unsampled_root_is_a_non_recording_span_that_reaches_no_processor(
    memory: InMemorySpanExporter,
) -> None:
    tracer = _tracer(memory, Sampling("off", True))
    span = tracer.start_span("GET /x", kind=SpanKind.SERVER, attributes={"a": "b"})
    assert isinstance(span, NonRecordingSpan) and not span.is_recording()
    context = span.get_span_context()
    assert context.is_valid and not context.trace_flags.sampled and not context.is_remote
    span.end()
    assert memory.get_finished_spans() == ()


def test_a_sampled_span_reaches_the_processor_as_a_readable_span(
    memory: InMemorySpanExporter,
) -> None:
    tracer = _tracer(memory)
    state = TraceState([("vendor", "v1")])
    caller = SpanContext(7, 9, True, TraceFlags(TraceFlags.SAMPLED), state)
    outer = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(caller)))
    try:
        with tracer.start_as_current_span("parent", kind=SpanKind.SERVER) as parent:
            assert isinstance(parent, LiveSpan)
            child = tracer.start_span("child", attributes={"scim.app": "acme", "n": None})
            child.set_attribute("scim.changed", ["name", "emails"])
            child.add_event("retry", {"attempt": 2})
            child.set_status(StatusCode.ERROR, "Boom")
            child.update_name("child renamed")
            child.end()
            child.set_attribute("late", "ignored")  # after end: ignored, as in the SDK
            child.end()  # a second end hands nothing more over
    finally:
        otel_context.detach(outer)
    done = {span.name: span for span in memory.get_finished_spans()}
    assert sorted(done) == ["child renamed", "parent"]
    first, second = done["parent"], done["child renamed"]
    assert isinstance(second, ReadableSpan)
    assert first.context.trace_id == second.context.trace_id == 7
    assert first.parent == caller and second.parent == first.context
    assert first.kind is SpanKind.SERVER and second.kind is SpanKind.INTERNAL
    assert second.context.trace_state == state and second.context.trace_flags.sampled
    assert dict(second.attributes or {}) == {"scim.app": "acme", "scim.changed": ("name", "emails")}
    assert [(e.name, dict(e.attributes or {})) for e in second.events] == [
        ("retry", {"attempt": 2})
    ]
    assert second.status.status_code is StatusCode.ERROR and second.status.description == "Boom"
    assert first.start_time is not None and first.end_time is not None
    assert first.start_time <= second.start_time <= second.end_time <= first.end_time
    assert encode_spans([first, second])  # the OTLP/HTTP encoder takes them as it takes the SDK's


def test_an_exception_is_recorded_by_type_and_sets_the_error_status(
    memory: InMemorySpanExporter,
) -> None:
    tracer = _tracer(memory)
    with pytest.raises(ValueError), tracer.start_as_current_span("work"):
        raise ValueError("a message that may quote secret-value")
    (span,) = memory.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    (event,) = span.events
    assert dict(event.attributes or {}) == {
        "exception.type": "builtins.ValueError",
        "exception.escaped": "True",
    }
    assert "secret-value" not in repr(span.to_json())


def test_a_span_keeps_at_most_the_sdks_default_number_of_attributes(
    memory: InMemorySpanExporter,
) -> None:
    tracer = _tracer(memory)
    span = tracer.start_span("many", attributes={f"a{i}": i for i in range(MAX_ATTRIBUTES + 5)})
    span.set_attribute("one.more", 1)
    span.set_attribute("a0", "replaced")  # an existing key may still change
    span.end()
    (done,) = memory.get_finished_spans()
    attributes = dict(done.attributes or {})
    assert len(attributes) == MAX_ATTRIBUTES and "one.more" not in attributes
    assert attributes["a0"] == "replaced"


def test_a_none_value_is_left_out_at_the_start_and_later(memory: InMemorySpanExporter) -> None:
    """A None says nothing (the gateway's helpers leave such attributes out too), and
    setting one later leaves an existing value as it was."""
    span = _tracer(memory).start_span("values", attributes={"kept": 1, "none": None})
    span.set_attribute("later", None)  # type: ignore[arg-type]  # as untyped callers may
    span.set_attribute("kept", None)  # type: ignore[arg-type]
    span.end()
    (done,) = memory.get_finished_spans()
    assert dict(done.attributes or {}) == {"kept": 1}
    assert encode_spans([done])
