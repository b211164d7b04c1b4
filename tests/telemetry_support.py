"""Helpers for the telemetry tests: Acme HR behind a gateway on loopback, and known secrets.

Every string in ``SECRETS`` goes into the requests of a test somewhere (a
token, the legacy API key, a password, a filter value, attribute values);
:func:`leaks` looks for them in every span name, attribute, event and link.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from rest_support import Recorder

from gateway import telemetry
from gateway.app import create_app
from gateway.config import StateConfig
from gateway.demo.legacy_app import create_legacy_app
from gateway.demo.run import PATCH_URN, USER_URN, Demo, demo_settings
from gateway.http.views import RECORDER
from gateway.operation import Recorder as OperationRecorder
from gateway.spans import FastTracer, Sampling
from gateway.telemetry import SERVICE_NAME, TypesOnly, adopt_global_tracing, install_tracing

TOKEN = "gw-T0ken-very-secret-4711"
LEGACY_KEY = "acme-K3y-very-secret-0815"
PASSWORD = "Pa55word-very-secret-42"
FILTER_VALUE = "filter-value-very-secret"
GIVEN = "Given-Value-Secret"
TITLE = "Title-Value-Secret"
SECRETS = (TOKEN, LEGACY_KEY, PASSWORD, FILTER_VALUE, GIVEN, TITLE)
BASE = "/apps/acme/scim/v2"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def new_user(user_name: str = "bjensen") -> dict[str, Any]:
    return {
        "schemas": [USER_URN],
        "userName": user_name,
        "password": PASSWORD,
        "name": {"givenName": GIVEN, "familyName": "Jensen"},
        "emails": [{"value": f"{user_name}@example.com", "type": "work", "primary": True}],
        "active": True,
    }


def retitle(title: str = TITLE) -> dict[str, Any]:
    return {
        "schemas": [PATCH_URN],
        "Operations": [{"op": "replace", "path": "title", "value": title}],
    }


@dataclass
class Stack:
    client: TestClient[Any, Any]
    legacy: Recorder
    app: web.Application


@asynccontextmanager
async def acme_stack(
    legacy_url: str | None = None,
    audit: OperationRecorder | None = None,
    state_url: str | None = None,
) -> AsyncIterator[Stack]:
    """Acme HR (its requests recorded) and a gateway with app ``acme`` in front of it.

    ``legacy_url`` points the gateway elsewhere (a closed port: the app is down);
    ``audit`` receives the operations; ``state_url`` gives the gateway a state store
    and its real audit trail.
    """
    seen = Recorder()
    legacy_app = create_legacy_app(":memory:", LEGACY_KEY)
    legacy_app.middlewares.insert(0, seen.middleware)
    legacy = TestServer(legacy_app, host="127.0.0.1")
    await legacy.start_server()
    try:
        demo = Demo(0, legacy.port or 0, TOKEN, LEGACY_KEY, ":memory:")
        settings = demo_settings(demo)
        if legacy_url is not None:
            rest = dict(settings.apps["acme"].settings, base_url=legacy_url)
            app_config = settings.apps["acme"].model_copy(update={"settings": rest})
            settings = settings.model_copy(update={"apps": {"acme": app_config}})
        if state_url is not None:
            settings = settings.model_copy(update={"state": StateConfig(url=state_url)})
        app = create_app(settings, source="<test>")
        if audit is not None:
            app[RECORDER] = audit
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        try:
            yield Stack(client, seen, app)
        finally:
            await client.close()
    finally:
        await legacy.close()


class _Switched(InMemorySpanExporter):
    """Keeps spans only while a test collects them, so other tests do not fill memory."""

    collecting = False

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return super().export(spans) if self.collecting else SpanExportResult.SUCCESS


_MEMORY = _Switched()
#: The processor the lean tracer hands its spans to (the SDK provider has its own).
_LEAN = SimpleSpanProcessor(TypesOnly(_MEMORY))


@contextmanager
def collected_spans(
    lean: bool = False, sampling: Sampling | None = None
) -> Iterator[InMemorySpanExporter]:
    """The spans ended inside the block, from the process's one SDK tracer provider.

    OpenTelemetry allows the global provider to be set once per process, so it
    is set on first use and left in place; outside these blocks it drops spans.
    With ``lean`` the gateway's own spans come from :class:`gateway.spans.FastTracer`
    (what ``serve`` uses for the provider it builds), sampling every trace (or as
    ``sampling`` says), and other instrumentation's from the SDK provider, as in ``serve``.
    """
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(TypesOnly(_MEMORY)))  # as serve does
        install_tracing(provider)
    adopt_global_tracing()
    saved = telemetry.TRACER
    if lean:
        resource = trace.get_tracer_provider().resource  # type: ignore[attr-defined]
        rule = sampling or Sampling("on", True)
        telemetry.TRACER = FastTracer(rule, [_LEAN], resource, SERVICE_NAME)
    _MEMORY.clear()
    _MEMORY.collecting = True
    try:
        yield _MEMORY
    finally:
        telemetry.TRACER = saved
        _MEMORY.collecting = False
        _MEMORY.clear()


def span_texts(spans: Iterable[ReadableSpan]) -> Iterator[str]:
    """Every name, attribute, event and status text of ``spans``, one string each."""
    for span in spans:
        yield from _texts(span)


def _texts(span: ReadableSpan) -> Iterable[str]:
    yield span.name
    for attributes in (span.attributes, span.resource.attributes):
        for key, value in (attributes or {}).items():
            yield f"{key}={value}"
    for event in span.events:
        yield event.name
        for key, value in (event.attributes or {}).items():
            yield f"{key}={value}"
    if span.status.description:
        yield span.status.description


def leaks(spans: Iterable[ReadableSpan], secrets: Iterable[str] = SECRETS) -> list[str]:
    """Every ``span: text`` that holds one of ``secrets`` (an empty list when none)."""
    secrets = tuple(secrets)
    return [
        f"{span.name}: {text}"
        for span in spans
        for text in _texts(span)
        if any(secret.lower() in text.lower() for secret in secrets)
    ]
