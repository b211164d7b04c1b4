"""The gateway's metrics: OpenTelemetry instruments, read by Prometheus and OTLP.

One :class:`Metrics` per application, with its own MeterProvider: a
Prometheus reader on a private registry (served at ``GET /metrics``) and the
OTLP readers ``OTEL_METRICS_EXPORTER`` asked for (gateway/telemetry.py).
A private registry and provider mean two apps in one process (tests) never
share or clash.

Series (Prometheus names)::

    scim_gateway_requests_total{app, operation, status}
    scim_gateway_request_duration_seconds_bucket{app, operation, status, le}
    scim_gateway_requests_in_flight
    scim_gateway_adapter_call_duration_seconds_bucket{app, call, le}
    scim_gateway_adapter_errors_total{app, call, error}
    scim_gateway_breaker_state{app}        0 closed, 1 half open, 2 open

Labels are names from a closed set (app names come from the config, unknown
apps are labelled ``""``), so a caller cannot grow the series.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Seconds: legacy apps answer in milliseconds to tens of seconds (call_timeout <= 55).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    def __init__(
        self, readers: Sequence[MetricReader] = (), resource: Resource | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        prometheus = PrometheusMetricReader(
            registry=self.registry, disable_target_info=True, scope_info_enabled=False
        )
        buckets = ExplicitBucketHistogramAggregation(_BUCKETS)
        self.provider = MeterProvider(
            metric_readers=[prometheus, *readers],
            resource=resource or Resource.create({}),
            views=[View(instrument_type=Histogram, aggregation=buckets)],
        )
        meter = self.provider.get_meter("scim-gateway")
        self._requests = meter.create_counter(
            "scim.gateway.requests", unit="1", description="SCIM requests answered"
        )
        self._duration = meter.create_histogram(
            "scim.gateway.request.duration", unit="s", description="SCIM request latency"
        )
        self._in_flight = meter.create_up_down_counter(
            "scim.gateway.requests.in_flight", unit="1", description="requests being served"
        )
        self._adapter_duration = meter.create_histogram(
            "scim.gateway.adapter.call.duration",
            unit="s",
            description="adapter call latency, queue wait included",
        )
        self._adapter_errors = meter.create_counter(
            "scim.gateway.adapter.errors",
            unit="1",
            description="adapter calls that failed (5xx: unavailable, timeout, bad answer, bug)",
        )

        self._breakers: Callable[[], Mapping[str, int]] = dict
        meter.create_observable_gauge(
            "scim.gateway.breaker.state",
            callbacks=[self._breaker_levels],
            unit="1",
            description="circuit breaker toward each legacy app: 0 closed, 1 half open, 2 open",
        )

    def watch_breakers(self, levels: Callable[[], Mapping[str, int]]) -> None:
        """Where the breaker gauge reads each app's state level (gateway.breaker.STATE_LEVELS)."""
        self._breakers = levels

    def _breaker_levels(self, options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(level, {"app": app}) for app, level in self._breakers().items()]

    def started(self) -> None:
        self._in_flight.add(1)

    def finished(self, app: str, operation: str, status: int, seconds: float) -> None:
        labels = {"app": app, "operation": operation, "status": str(status)}
        self._in_flight.add(-1)
        self._requests.add(1, labels)
        self._duration.record(seconds, labels)

    def adapter_call(self, app: str, call: str, seconds: float, error: str | None) -> None:
        self._adapter_duration.record(seconds, {"app": app, "call": call})
        if error is not None:
            self._adapter_errors.add(1, {"app": app, "call": call, "error": error})

    def exposition(self) -> bytes:
        """The Prometheus text format of every series."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        self.provider.shutdown()
