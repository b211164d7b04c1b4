"""A real ``scim-gateway serve`` exporting over OTLP/HTTP to a receiver on loopback.

The receiver is a small aiohttp app decoding ``ExportTraceServiceRequest`` and
``ExportMetricsServiceRequest`` with opentelemetry-proto; the gateway runs as
a subprocess configured only through ``OTEL_*``, with the REST adapter in
front of Acme HR (in this process, its requests recorded). One PATCH must
arrive as one trace, from the inbound request down to the legacy HTTP call,
and Acme HR must have received that trace's ``traceparent``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from rest_support import Recorder, closed_port
from telemetry_support import LEGACY_KEY, SECRETS, TOKEN, new_user, retitle

from gateway.demo.legacy_app import create_legacy_app
from gateway.mapping.engine import MAPPINGS_DIR

BASE = "/apps/acme/scim/v2"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Receiver:
    """An OTLP/HTTP receiver: what arrived, decoded."""

    spans: list[tuple[dict[str, str], Span]] = field(default_factory=list)
    metric_names: set[str] = field(default_factory=set)

    async def traces(self, request: web.Request) -> web.Response:
        message = trace_service_pb2.ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        for resource_spans in message.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                self.spans.extend((resource, span) for span in scope.spans)
        answer = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    async def metrics(self, request: web.Request) -> web.Response:
        message = metrics_service_pb2.ExportMetricsServiceRequest()
        message.ParseFromString(await request.read())
        for resource_metrics in message.resource_metrics:
            for scope in resource_metrics.scope_metrics:
                self.metric_names.update(m.name for m in scope.metrics)
        answer = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
        return web.Response(body=answer, content_type="application/x-protobuf")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        app.router.add_post("/v1/metrics", self.metrics)
        return app


def _command() -> list[str]:
    script = Path(sys.executable).parent / "scim-gateway"
    return [str(script)] if script.exists() else [sys.executable, "-m", "gateway.cli"]


def _config(tmp_path: Path, port: int) -> Path:
    rest = yaml.safe_load((MAPPINGS_DIR / "acme-hr" / "rest.yaml").read_text("utf-8"))
    config = {
        "server": {"host": "127.0.0.1", "port": port, "log_format": "json"},
        "log_level": "INFO",
        "apps": {
            "acme": {
                "adapter": "rest",
                "mapping": str(MAPPINGS_DIR / "acme-hr"),
                "settings": rest,  # base_url and key from ACME_HR_URL / ACME_HR_API_KEY
                "auth": {"tokens": [{"name": "e2e-idp", "secret": "${env:E2E_TOKEN}"}]},
            }
        },
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    return path


@pytest.fixture
async def loopback() -> AsyncIterator[tuple[Receiver, TestServer, Recorder, TestServer]]:
    receiver, seen = Receiver(), Recorder()
    collector = TestServer(receiver.app(), host="127.0.0.1")
    legacy_app = create_legacy_app(":memory:", LEGACY_KEY)
    legacy_app.middlewares.insert(0, seen.middleware)
    legacy = TestServer(legacy_app, host="127.0.0.1")
    await collector.start_server()
    await legacy.start_server()
    yield receiver, collector, seen, legacy
    await legacy.close()
    await collector.close()


async def _ready(
    session: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process
) -> None:
    for _ in range(300):
        if proc.returncode is not None:
            raise AssertionError(f"the gateway exited with {proc.returncode}")
        try:
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the gateway did not become ready")


def _hex(raw: bytes) -> str:
    return raw.hex()


async def test_one_patch_arrives_over_otlp_as_one_trace_down_to_the_legacy_call(
    tmp_path: Path, loopback: tuple[Receiver, TestServer, Recorder, TestServer]
) -> None:
    receiver, collector, seen, legacy = loopback
    port = closed_port()
    env = {
        **os.environ,
        "E2E_TOKEN": TOKEN,
        "ACME_HR_URL": f"http://127.0.0.1:{legacy.port}/api/v1",
        "ACME_HR_API_KEY": LEGACY_KEY,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "scim-gateway-e2e",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=test",
        "OTEL_TRACES_SAMPLER": "always_on",
    }
    env.pop("OTEL_SDK_DISABLED", None)
    proc = await asyncio.create_subprocess_exec(
        *_command(),
        "serve",
        "--config",
        str(_config(tmp_path, port)),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await _ready(session, f"{origin}/readyz", proc)
            async with session.post(f"{origin}{BASE}/Users", json=new_user(), headers=HEADERS) as r:
                assert r.status == 201
                user_id = (await r.json())["id"]
            seen.clear()
            url = f"{origin}{BASE}/Users/{user_id}"
            async with session.patch(url, json=retitle(), headers=HEADERS) as r:
                assert r.status == 200
    finally:
        proc.send_signal(signal.SIGTERM)  # a clean stop flushes the queued spans
        _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, stderr.decode()

    (server,) = [s for _, s in receiver.spans if s.name == "PATCH /apps/{app}/scim/v2/Users/{id}"]
    assert server.kind == Span.SPAN_KIND_SERVER and server.parent_span_id == b""
    trace = [s for _, s in receiver.spans if s.trace_id == server.trace_id]
    by_id = {s.span_id: s for s in trace}

    def chain(span: Span) -> list[str]:
        names = [span.name]
        while span.parent_span_id:
            span = by_id[span.parent_span_id]
            names.append(span.name)
        return names

    (legacy_call,) = [s for s in trace if s.kind == Span.SPAN_KIND_CLIENT and s.name == "PATCH"]
    assert chain(legacy_call) == [
        "PATCH",
        "adapter.update",
        "scim patch User",
        "PATCH /apps/{app}/scim/v2/Users/{id}",
    ]
    resources = {
        tuple(sorted(r.items())) for r, s in receiver.spans if s.trace_id == server.trace_id
    }
    (resource,) = resources
    assert dict(resource)["service.name"] == "scim-gateway-e2e"
    assert dict(resource)["deployment.environment"] == "test"

    (patch_seen,) = [c for c in seen.calls if c.method == "PATCH"]
    version, trace_id, parent_id, flags = patch_seen.headers["traceparent"].split("-")
    assert (version, trace_id, parent_id) == (
        "00",
        _hex(server.trace_id),
        _hex(legacy_call.span_id),
    )
    assert int(flags, 16) & 1  # sampled

    everything = " ".join(str(s) for _, s in receiver.spans)
    assert not [secret for secret in SECRETS if secret in everything]

    lines = [json.loads(line) for line in stderr.decode().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "gateway.access"]
    assert [line["operation"] for line in access] == ["create", "patch"]
    assert access[1]["trace_id"] == _hex(server.trace_id)
    assert not [secret for secret in SECRETS if secret in stderr.decode()]
    assert {"scim.gateway.requests", "scim.gateway.adapter.call.duration"} <= receiver.metric_names


async def test_serve_refuses_an_otel_setting_it_cannot_honour(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "E2E_TOKEN": TOKEN,
        "ACME_HR_URL": f"http://127.0.0.1:{closed_port()}/api/v1",
        "ACME_HR_API_KEY": LEGACY_KEY,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{closed_port()}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
    }
    env.pop("OTEL_SDK_DISABLED", None)
    proc = await asyncio.create_subprocess_exec(
        *_command(),
        "serve",
        "--config",
        str(_config(tmp_path, closed_port())),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert "OpenTelemetry configuration error" in stderr.decode()
    assert "http/json" in stderr.decode()
