"""The gateway's metrics: Prometheus series on ``GET /metrics``, and OTLP when asked for.

One :class:`Metrics` per application, on a private Prometheus registry, so two
apps in one process (tests) never share or clash. The request path pays for
what is on and no more: each label set is bound once (the first request of an
app, operation and status finds its counter and histogram child, every later
one reuses them), and the OpenTelemetry instruments exist only when
``OTEL_METRICS_EXPORTER`` asked for OTLP readers (gateway/telemetry.py).

With ``serve --workers N`` the workers keep their values in the shared
directory named by ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode, set up by the CLI), and ``/metrics`` answers the sum over
all workers, whichever worker is asked.

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

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from prometheus_client import Histogram as PromHistogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["CONTENT_TYPE", "MULTIPROC_DIR", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Where workers keep their values (prometheus_client reads it when it is imported).
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds: legacy apps answer in milliseconds to tens of seconds (call_timeout <= 55).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Otlp:
    """The same measurements as OpenTelemetry instruments, for OTLP readers."""

    def __init__(
        self, readers: Sequence[MetricReader], resource: Resource, breakers: Callable[[], Any]
    ) -> None:
        buckets = ExplicitBucketHistogramAggregation(_BUCKETS)
        self.provider = MeterProvider(
            metric_readers=list(readers),
            resource=resource,
            views=[View(instrument_type=Histogram, aggregation=buckets)],
        )
        meter = self.provider.get_meter("scim-gateway")
        self.requests = meter.create_counter(
            "scim.gateway.requests", unit="1", description="SCIM requests answered"
        )
        self.duration = meter.create_histogram(
            "scim.gateway.request.duration", unit="s", description="SCIM request latency"
        )
        self.in_flight = meter.create_up_down_counter(
            "scim.gateway.requests.in_flight", unit="1", description="requests being served"
        )
        self.adapter_duration = meter.create_histogram(
            "scim.gateway.adapter.call.duration",
            unit="s",
            description="adapter call latency, queue wait included",
        )
        self.adapter_errors = meter.create_counter(
            "scim.gateway.adapter.errors",
            unit="1",
            description="adapter calls that failed (5xx: unavailable, timeout, bad answer, bug)",
        )

        def levels(options: CallbackOptions) -> Iterable[Observation]:
            return [Observation(level, {"app": app}) for app, level in breakers().items()]

        meter.create_observable_gauge(
            "scim.gateway.breaker.state",
            callbacks=[levels],
            unit="1",
            description="circuit breaker toward each legacy app: 0 closed, 1 half open, 2 open",
        )


class _Breakers:
    """``scim_gateway_breaker_state``, read from the breakers when scraped."""

    def __init__(self, levels: Callable[[], Mapping[str, int]]) -> None:
        self.levels = levels

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "scim_gateway_breaker_state",
            "circuit breaker toward each legacy app: 0 closed, 1 half open, 2 open",
            labels=["app"],
        )
        for app, level in self.levels().items():
            family.add_metric([app], level)
        yield family


class Metrics:
    def __init__(
        self, readers: Sequence[MetricReader] = (), resource: Resource | None = None
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        shared = os.environ.get(MULTIPROC_DIR)
        # In multiprocess mode the instruments write to files; the registry that is
        # served reads all workers' files (and this process's breakers).
        own = None if shared else self.registry
        self._requests = Counter(
            "scim_gateway_requests",
            "SCIM requests answered",
            ["app", "operation", "status"],
            registry=own,
        )
        self._duration = PromHistogram(
            "scim_gateway_request_duration_seconds",
            "SCIM request latency",
            ["app", "operation", "status"],
            buckets=_BUCKETS,
            registry=own,
        )
        self._in_flight = Gauge(
            "scim_gateway_requests_in_flight",
            "requests being served",
            registry=own,
            multiprocess_mode="livesum",
        )
        self._adapter_duration = PromHistogram(
            "scim_gateway_adapter_call_duration_seconds",
            "adapter call latency, queue wait included",
            ["app", "call"],
            buckets=_BUCKETS,
            registry=own,
        )
        self._adapter_errors = Counter(
            "scim_gateway_adapter_errors",
            "adapter calls that failed (5xx: unavailable, timeout, bad answer, bug)",
            ["app", "call", "error"],
            registry=own,
        )
        if shared:
            MultiProcessCollector(self.registry, shared)  # type: ignore[no-untyped-call]
        self._breakers: Callable[[], Mapping[str, int]] = dict
        self.registry.register(_Breakers(lambda: self._breakers()))
        self._bound: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._bound_calls: dict[tuple[str, str], Any] = {}
        self._otlp = (
            _Otlp(readers, resource or Resource.create({}), lambda: self._breakers())
            if readers
            else None
        )

    def watch_breakers(self, levels: Callable[[], Mapping[str, int]]) -> None:
        """Where the breaker gauge reads each app's state level (gateway.breaker.STATE_LEVELS)."""
        self._breakers = levels

    def started(self) -> None:
        self._in_flight.inc()
        if self._otlp is not None:
            self._otlp.in_flight.add(1)

    def finished(self, app: str, operation: str, status: int, seconds: float) -> None:
        self._in_flight.dec()
        key = (app, operation, status)
        bound = self._bound.get(key)
        if bound is None:
            labels = (app, operation, str(status))
            bound = (self._requests.labels(*labels), self._duration.labels(*labels))
            self._bound[key] = bound
        bound[0].inc()
        bound[1].observe(seconds)
        if self._otlp is not None:
            attributes = {"app": app, "operation": operation, "status": str(status)}
            self._otlp.in_flight.add(-1)
            self._otlp.requests.add(1, attributes)
            self._otlp.duration.record(seconds, attributes)

    def adapter_call(self, app: str, call: str, seconds: float, error: str | None) -> None:
        bound = self._bound_calls.get((app, call))
        if bound is None:
            bound = self._bound_calls[(app, call)] = self._adapter_duration.labels(app, call)
        bound.observe(seconds)
        if error is not None:
            self._adapter_errors.labels(app, call, error).inc()
        if self._otlp is not None:
            self._otlp.adapter_duration.record(seconds, {"app": app, "call": call})
            if error is not None:
                self._otlp.adapter_errors.add(1, {"app": app, "call": call, "error": error})

    def exposition(self) -> bytes:
        """The Prometheus text format of every series."""
        return generate_latest(self.registry)

    def shutdown(self) -> None:
        if self._otlp is not None:
            self._otlp.provider.shutdown()
