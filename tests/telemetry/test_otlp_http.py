"""The OTLP/HTTP span exporter with our encoder, against a real receiver on loopback.

The receiver is an aiohttp app decoding ``ExportTraceServiceRequest`` with
opentelemetry-proto. The exporter (requests, blocking) runs in a thread so the
receiver keeps serving on the test's loop.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway import otlp_http
from gateway.otlp_http import HttpSpanExporter
from gateway.telemetry import TypesOnly, _exporter, _types_only, from_env

SECRET = "filter=very-secret-value"


@dataclass
class Receiver:
    """An OTLP/HTTP trace receiver: the requests it got, decoded; answers from ``statuses``."""

    requests: list[ExportTraceServiceRequest] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    async def traces(self, request: web.Request) -> web.Response:
        self.requests.append(ExportTraceServiceRequest.FromString(await request.read()))
        status = self.statuses.pop(0) if self.statuses else 200
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(status=status, body=body, content_type="application/x-protobuf")

    def spans(self) -> list[Span]:
        return [
            span
            for message in self.requests
            for resource in message.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    got = Receiver()
    app = web.Application()
    app.router.add_post("/v1/traces", got.traces)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield got, f"http://127.0.0.1:{server.port}"
    await server.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)


def traced(provider: TracerProvider) -> None:
    """A request's spans: server, operation, and a failed legacy call with its exception."""
    tracer = provider.get_tracer("scim-gateway")
    with tracer.start_as_current_span(
        "PATCH /apps/{app}/scim/v2/Users/{id}",
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "PATCH", "http.route": "/apps/{app}/scim/v2/Users/{id}"},
    ) as server:
        with tracer.start_as_current_span("scim patch User") as operation:
            operation.set_attributes({"scim.app": "acme", "scim.changed": ["title"]})
            with tracer.start_as_current_span("PATCH", kind=SpanKind.CLIENT) as call:
                try:
                    raise ConnectionError(f"Cannot connect to http://acme/api?{SECRET}")
                except ConnectionError as exc:
                    call.record_exception(exc)
                call.set_status(Status(StatusCode.ERROR))
        server.set_attribute("http.response.status_code", 502)


def made_spans() -> tuple[ReadableSpan, ...]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "scim-gateway"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    traced(provider)
    provider.shutdown()
    return memory.get_finished_spans()


async def test_serve_exports_over_http_with_our_encoder_and_spans_arrive_as_the_library_sends(
    receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    got, url = receiver
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", url)
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    encoded: list[int] = []
    real = otlp_http.encode_spans

    def counting(spans: Sequence[ReadableSpan]) -> bytes:
        encoded.append(len(spans))
        return real(spans)

    monkeypatch.setattr(otlp_http, "encode_spans", counting)
    telemetry = from_env()
    assert telemetry.tracer_provider is not None
    memory = InMemorySpanExporter()  # the same spans, to say what should have arrived
    telemetry.tracer_provider.add_span_processor(SimpleSpanProcessor(memory))
    traced(telemetry.tracer_provider)
    assert await asyncio.to_thread(telemetry.tracer_provider.force_flush, 10_000)
    await asyncio.to_thread(telemetry.shutdown)

    assert encoded == [3]  # one batch, through our encoder
    (message,) = got.requests
    assert message == library([_types_only(span) for span in memory.get_finished_spans()])
    by_name = {span.name: span for span in got.spans()}
    call, operation = by_name["PATCH"], by_name["scim patch User"]
    assert call.kind == Span.SPAN_KIND_CLIENT and call.parent_span_id == operation.span_id
    assert call.status.code == StatusCode.ERROR.value
    (exception,) = call.events
    assert {kv.key: kv.value.string_value for kv in exception.attributes} == {
        "exception.type": "ConnectionError",
        "exception.escaped": "False",
    }
    attributes = {kv.key: kv.value for kv in operation.attributes}
    assert attributes["scim.app"].string_value == "acme"
    assert [v.string_value for v in attributes["scim.changed"].array_value.values] == ["title"]
    assert SECRET not in str(message)
    resource = message.resource_spans[0].resource
    assert {kv.key: kv.value.string_value for kv in resource.attributes}["service.name"] == (
        "scim-gateway"
    )


def test_only_http_goes_without_types_only(clean_env: None) -> None:
    http = _exporter("otlp", {"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    grpc = _exporter("otlp", {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    console = _exporter("console", {})
    try:
        assert type(http) is HttpSpanExporter and isinstance(http, OTLPSpanExporter)
        assert isinstance(grpc, TypesOnly) and isinstance(console, TypesOnly)
    finally:
        for exporter in (http, grpc, console):
            exporter.shutdown()


def test_the_parents_parts_are_found_on_this_sdk() -> None:
    exporter = HttpSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    try:
        parent = otlp_http._parent(exporter)
        assert parent is not None and parent.max_request_size == 64 * 1024 * 1024
    finally:
        exporter.shutdown()


@pytest.mark.parametrize("name", ["_client", "_metrics", "_max_request_size", "_shutdown"])
def test_a_missing_part_of_the_parent_is_noticed(name: str) -> None:
    exporter = HttpSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    try:
        kept = getattr(exporter, name)
        delattr(exporter, name)
        assert otlp_http._parent(exporter) is None
        setattr(exporter, name, kept)
    finally:
        exporter.shutdown()


async def test_without_the_parents_parts_the_parent_exports_copies_cut_to_types(
    receiver: tuple[Receiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    got, url = receiver

    def unused(spans: Sequence[ReadableSpan]) -> bytes:
        raise AssertionError("our encoder is not used on the fallback")

    monkeypatch.setattr(otlp_http, "_parent", lambda exporter: None)  # an SDK without them
    monkeypatch.setattr(otlp_http, "encode_spans", unused)
    spans = made_spans()
    exporter = HttpSpanExporter(endpoint=f"{url}/v1/traces")
    try:
        assert await asyncio.to_thread(exporter.export, spans) is SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
    (message,) = got.requests
    assert message == library([_types_only(span) for span in spans])
    assert SECRET not in str(message) and "exception.stacktrace" not in str(message)


@dataclass
class Exported:
    """What one export did: its result, what arrived, the exporter's metric points."""

    result: SpanExportResult
    arrived: list[ExportTraceServiceRequest]
    points: list[tuple[str, dict[str, Any], Any]]


async def export_once(
    kind: type[OTLPSpanExporter],
    url: str,
    got: Receiver,
    statuses: Sequence[int] = (),
    **options: Any,
) -> Exported:
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader])
    got.requests.clear()
    got.statuses[:] = statuses
    exporter = kind(endpoint=f"{url}/v1/traces", meter_provider=meters, **options)
    try:
        result = await asyncio.to_thread(exporter.export, made_spans())
    finally:
        exporter.shutdown()
    data = reader.get_metrics_data()
    points = [
        (metric.name, _stable(point.attributes), getattr(point, "value", None))
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        for point in metric.data.data_points
    ]
    meters.shutdown()
    return Exported(result, list(got.requests), sorted(points, key=repr))


def _stable(attributes: Any) -> dict[str, Any]:
    """A point's attributes without the exporter's instance number (``.../0``, ``.../1``)."""
    return {k: v for k, v in (attributes or {}).items() if k != "otel.component.name"}


@pytest.fixture
def exporter_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_PYTHON_SDK_INTERNAL_METRICS_ENABLED", "true")


@pytest.mark.parametrize(
    ("statuses", "options", "result", "requests"),
    [
        ((), {}, SpanExportResult.SUCCESS, 1),
        ((400,), {}, SpanExportResult.FAILURE, 1),  # not retryable
        ((503,), {}, SpanExportResult.SUCCESS, 2),  # retried by the parent's client
        ((), {"max_request_size": 64}, SpanExportResult.FAILURE, 0),  # too large: not sent
    ],
)
async def test_results_retries_size_limit_and_metrics_are_the_parents(
    receiver: tuple[Receiver, str],
    exporter_metrics: None,
    caplog: pytest.LogCaptureFixture,
    statuses: tuple[int, ...],
    options: dict[str, Any],
    result: SpanExportResult,
    requests: int,
) -> None:
    got, url = receiver
    with caplog.at_level(logging.WARNING):
        theirs = await export_once(OTLPSpanExporter, url, got, statuses, **options)
        caplog.clear()
        ours = await export_once(HttpSpanExporter, url, got, statuses, **options)
    assert ours.result is theirs.result is result
    assert len(ours.arrived) == len(theirs.arrived) == requests
    spans = made_spans()
    for message in ours.arrived:
        names = sorted(
            s.name for r in message.resource_spans for c in r.scope_spans for s in c.spans
        )
        assert names == sorted(span.name for span in spans)
        assert SECRET not in str(message)

    def without_durations(exported: Exported) -> list[tuple[str, dict[str, Any], Any]]:
        return [p for p in exported.points if p[0] != "otel.sdk.exporter.operation.duration"]

    assert without_durations(ours) == without_durations(theirs)
    assert any(name == "otel.sdk.exporter.span.exported" for name, _, _ in ours.points)
    if "max_request_size" in options:
        assert "exceeds max_request_size 64 bytes" in caplog.text
        assert [
            value
            for name, attributes, value in ours.points
            if name == "otel.sdk.exporter.span.exported"
            and attributes.get("error.type") == "RequestPayloadTooLargeError"
        ] == [3]


def test_after_shutdown_a_batch_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    exporter = HttpSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")
    exporter.shutdown()
    with caplog.at_level(logging.WARNING):
        assert exporter.export(made_spans()) is SpanExportResult.FAILURE
    assert "already shutdown" in caplog.text


def test_a_batch_it_cannot_encode_fails_and_is_not_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bad = ReadableSpan("late", context=made_spans()[0].context, end_time=2**64)
    exporter = HttpSpanExporter(endpoint="http://127.0.0.1:9/v1/traces")  # nothing listens
    try:
        with caplog.at_level(logging.ERROR):
            assert exporter.export([bad]) is SpanExportResult.FAILURE
    finally:
        exporter.shutdown()
    assert "Failed to encode span batch" in caplog.text
