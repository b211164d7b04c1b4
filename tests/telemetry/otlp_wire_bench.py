"""Per-span cost of the OTLP/HTTP encoders: the library's (behind TypesOnly) and ours.

Not a test (pytest does not collect it): run it by hand on a quiet machine,

    .venv/bin/python tests/telemetry/otlp_wire_bench.py

The spans are made by the SDK the way the gateway makes them (the attributes of
gateway/http/observe.py, telemetry.operation_attributes, gateway/limits.py,
telemetry.legacy_call_span and gateway/service.py), batched by 512 as the
BatchSpanProcessor does. Each round times every encoder in turn (process CPU
time), so a busy machine slows all of them alike; the median round is printed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as library
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from gateway.otlp_wire import encode_spans
from gateway.telemetry import _types_only

BATCH = 512


def gateway_spans(requests: int) -> tuple[ReadableSpan, ...]:
    """The spans of ``requests`` PATCH requests: server, operation, adapter, legacy, mapping."""
    memory = InMemorySpanExporter()
    resource = Resource.create({"service.name": "scim-gateway", "deployment.environment": "prod"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("scim-gateway")
    client = provider.get_tracer("opentelemetry.instrumentation.aiohttp_client", "0.66b1")
    for i in range(requests):
        user = f"2819c223-7f76-453a-919d-{i:012d}"
        route = "/apps/{app}/scim/v2/Users/{id}"
        server_attributes = {
            "http.request.method": "PATCH",
            "http.route": route,
            "url.path": f"/apps/acme/scim/v2/Users/{user}",
            "url.scheme": "http",
            "server.address": "127.0.0.1:8080",
            "user_agent.original": "Okta SCIM 2.0 Client",
        }
        adapter = {"scim.app": "acme", "scim.resource_type": "User", "adapter": "rest"}
        with tracer.start_as_current_span(
            f"PATCH {route}", kind=SpanKind.SERVER, attributes=server_attributes
        ) as server:
            with tracer.start_as_current_span("scim operation") as operation:
                with tracer.start_as_current_span("adapter.get", attributes=adapter):
                    legacy = {
                        "http.request.method": "GET",
                        "url.full": f"http://127.0.0.1:9000/api/v1/employees/{i}",
                        "server.address": "127.0.0.1",
                        "server.port": 9000,
                    }
                    with client.start_as_current_span(
                        "GET", kind=SpanKind.CLIENT, attributes=legacy
                    ) as call:
                        call.set_attribute("http.response.status_code", 200)
                for name in ("mapping.from_legacy", "mapping.to_legacy"):
                    with tracer.start_as_current_span(
                        name, attributes={"scim.resource_type": "User"}
                    ):
                        pass
                with tracer.start_as_current_span("adapter.update", attributes=adapter):
                    pass
                operation.update_name("scim patch User")
                operation.set_attributes(
                    {
                        "scim.app": "acme",
                        "scim.operation": "patch",
                        "scim.outcome": "success",
                        "scim.resource_type": "User",
                        "scim.id": user,
                        "scim.client": "okta",
                        "scim.changed": ["title"],
                        "http.response.status_code": 200,
                    }
                )
            server.set_attribute("http.response.status_code", 200)
    provider.shutdown()
    return memory.get_finished_spans()


def per_span_us(encode: Callable[[], bytes], spans: int, repeat: int) -> float:
    encode()
    start = time.process_time()
    for _ in range(repeat):
        encode()
    return (time.process_time() - start) / repeat / spans * 1e6


def compare(label: str, batch: Sequence[ReadableSpan], rounds: int = 7) -> None:
    encoders: dict[str, Callable[[], bytes]] = {
        "library+TypesOnly": lambda: library(
            [_types_only(span) for span in batch]
        ).SerializePartialToString(),
        "library": lambda: library(batch).SerializePartialToString(),
        "ours": lambda: encode_spans(batch),
    }
    repeat = max(1, 20_000 // len(batch))
    times: dict[str, list[float]] = {name: [] for name in encoders}
    ratios: list[float] = []
    for _ in range(rounds):
        this = {name: per_span_us(f, len(batch), repeat) for name, f in encoders.items()}
        for name, value in this.items():
            times[name].append(value)
        ratios.append(this["library"] / this["ours"])
    medians = "  ".join(f"{name} {statistics.median(t):6.2f} us" for name, t in times.items())
    print(f"{label:<22} {medians}  library/ours {statistics.median(ratios):.2f}x")


def main() -> None:
    spans = gateway_spans(BATCH // 7 + 1)[:BATCH]
    compare("mixed batch of 512", spans)
    for name in ("PATCH /apps/", "scim patch", "adapter.", "GET", "mapping."):
        kind = [span for span in spans if span.name.startswith(name)]
        compare(f"{name.strip('./ ')} spans only", kind)


if __name__ == "__main__":
    main()
