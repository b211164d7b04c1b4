"""Spans of the process's SDK tracer provider, in memory, for each test that asks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from telemetry_support import collected_spans


@pytest.fixture(params=["sdk", "lean"])
def spans(request: pytest.FixtureRequest) -> Iterator[InMemorySpanExporter]:
    """Every span test runs twice: the gateway's spans from the SDK's tracer (a provider
    installed by someone else), and from gateway.spans.FastTracer (``serve``'s own)."""
    with collected_spans(lean=request.param == "lean") as exporter:
        yield exporter
