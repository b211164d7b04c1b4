"""Telemetry from the standard ``OTEL_*`` variables: off unless asked, then as asked."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from gateway.metrics import Metrics
from gateway.telemetry import Telemetry, from_env, span_exporter


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def built() -> Iterator[list[Telemetry]]:
    """Telemetries a test built; their exporters and readers are shut down after it."""
    made: list[Telemetry] = []
    yield made
    for telemetry in made:
        Metrics(telemetry.metric_readers, telemetry.resource).shutdown()
        telemetry.shutdown()


def test_nothing_configured_means_nothing_exported(built: list[Telemetry]) -> None:
    built.append(telemetry := from_env())
    assert telemetry.tracer_provider is None and telemetry.metric_readers == []
    assert telemetry.resource.attributes["service.name"] == "scim-gateway"


def test_an_endpoint_turns_on_traces_and_metrics_over_otlp(
    monkeypatch: pytest.MonkeyPatch, built: list[Telemetry]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "scim-eu")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=prod")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0.25")
    built.append(telemetry := from_env())
    assert telemetry.tracer_provider is not None
    assert "0.25" in telemetry.tracer_provider.sampler.get_description()
    assert [type(r) for r in telemetry.metric_readers] == [PeriodicExportingMetricReader]
    assert telemetry.resource.attributes["service.name"] == "scim-eu"
    assert telemetry.resource.attributes["deployment.environment"] == "prod"


@pytest.mark.parametrize(
    ("variable", "value"),
    [("OTEL_SDK_DISABLED", "true"), ("OTEL_TRACES_EXPORTER", "none")],
)
def test_traces_stay_off_when_disabled(
    monkeypatch: pytest.MonkeyPatch, built: list[Telemetry], variable: str, value: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv(variable, value)
    built.append(telemetry := from_env())
    assert telemetry.tracer_provider is None


def test_metrics_over_otlp_can_be_turned_off_alone(
    monkeypatch: pytest.MonkeyPatch, built: list[Telemetry]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:4318/v1/traces")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    built.append(telemetry := from_env())
    assert telemetry.tracer_provider is not None and telemetry.metric_readers == []


def test_the_protocol_picks_the_exporter_and_an_unknown_one_is_refused(
    monkeypatch: pytest.MonkeyPatch, built: list[Telemetry]
) -> None:
    grpc, http = span_exporter("grpc"), span_exporter("http/protobuf")
    assert isinstance(grpc, GrpcSpans) and isinstance(http, HttpSpans)
    grpc.shutdown()
    http.shutdown()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    built.append(from_env())
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(ValueError, match="http/json"):
        from_env()


def test_an_exporter_it_does_not_know_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp,zipkin")
    with pytest.raises(ValueError, match="OTEL_TRACES_EXPORTER: zipkin is not supported"):
        from_env()


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver: keeps the names of the spans it is sent."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.services: set[str] = set()

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: object
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    self.services.add(attribute.value.string_value)
            for scope in resource_spans.scope_spans:
                self.names += [span.name for span in scope.spans]
        return trace_service_pb2.ExportTraceServiceResponse()


def test_spans_go_over_grpc_when_the_protocol_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    collector = _Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
        telemetry = from_env()
        assert telemetry.tracer_provider is not None
        tracer = telemetry.tracer_provider.get_tracer("probe")
        with (
            tracer.start_as_current_span("scim patch User"),
            tracer.start_as_current_span("adapter.update"),
        ):
            pass
        assert telemetry.tracer_provider.force_flush(10_000)
        telemetry.shutdown()
    finally:
        server.stop(None)
    assert sorted(collector.names) == ["adapter.update", "scim patch User"]
    assert collector.services == {"scim-gateway"}
