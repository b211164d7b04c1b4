"""The baseline: a minimal aiohttp app answering the benchmark's routes with fixed bodies.

Same aiohttp, same ``web.run_app`` settings as ``scim-gateway serve`` (single
process, no access log), no middlewares, no auth, no SCIM logic: every
handler returns the body the real gateway returned for that request during
set-up, orjson-dumped once at start-up, with the same status, content type
and ETag/Location headers. POST and PATCH read the request body, as any
server must. The difference between the two is what the gateway itself costs.

Run as ``python -m bench.baseline --port N --bodies bodies.json``; the bodies
file maps ``get``, ``filter``, ``list``, ``post`` and ``patch`` to
``{"status": int, "headers": {...}, "body": <JSON>}``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

SCIM_JSON = "application/scim+json"

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _fixed(answer: dict[str, Any], *, read_body: bool) -> Handler:
    body = orjson.dumps(answer["body"])
    status = int(answer["status"])
    headers = dict(answer.get("headers", {}))

    async def handler(request: web.Request) -> web.Response:
        if read_body:
            await request.read()
        return web.Response(body=body, status=status, headers=headers, content_type=SCIM_JSON)

    return handler


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(bodies: dict[str, dict[str, Any]], base_path: str) -> web.Application:
    get_one = _fixed(bodies["get"], read_body=False)
    filtered = _fixed(bodies["filter"], read_body=False)
    listed = _fixed(bodies["list"], read_body=False)

    async def collection(request: web.Request) -> web.Response:
        return await (filtered if "filter" in request.query else listed)(request)

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get(f"{base_path}/Users/{{id}}", get_one)
    app.router.add_patch(f"{base_path}/Users/{{id}}", _fixed(bodies["patch"], read_body=True))
    app.router.add_get(f"{base_path}/Users", collection)
    app.router.add_post(f"{base_path}/Users", _fixed(bodies["post"], read_body=True))
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--base-path", default="/apps/bench/scim/v2")
    args = parser.parse_args(argv)
    bodies = json.loads(args.bodies.read_text("utf-8"))
    app = create_app(bodies, args.base_path)
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
