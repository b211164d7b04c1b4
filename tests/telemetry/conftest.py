"""Spans of the process's SDK tracer provider, in memory, cleared around each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from telemetry_support import memory_spans


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = memory_spans()
    yield exporter
    exporter.clear()
