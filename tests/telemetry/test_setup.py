"""Telemetry from the standard ``OTEL_*`` variables: off unless asked, then as asked."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
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
