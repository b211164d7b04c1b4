"""A local OTLP/HTTP receiver for the tracing bench: decodes what arrives and counts spans.

``python -m bench.otlp_sink --port N``. It decodes every
``ExportTraceServiceRequest`` (as a collector would, so the export is not
cheaper than in production) and answers ``GET /stats`` with the counts.
"""

from __future__ import annotations

import argparse

from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

SPANS: web.AppKey[list[int]] = web.AppKey("spans", list)
_ANSWER = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()


async def traces(request: web.Request) -> web.Response:
    message = trace_service_pb2.ExportTraceServiceRequest()
    message.ParseFromString(await request.read())
    counts = request.app[SPANS]
    counts[0] += 1
    counts[1] += sum(len(s.spans) for r in message.resource_spans for s in r.scope_spans)
    return web.Response(body=_ANSWER, content_type="application/x-protobuf")


async def stats(request: web.Request) -> web.Response:
    exports, spans = request.app[SPANS]
    return web.json_response({"exports": exports, "spans": spans})


def create_sink() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[SPANS] = [0, 0]
    app.router.add_post("/v1/traces", traces)
    app.router.add_get("/stats", stats)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp_sink", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    web.run_app(create_sink(), host="127.0.0.1", port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
