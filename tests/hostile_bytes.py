"""Requests no HTTP client library sends: raw bytes on a loopback socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestServer


async def raw_request(
    server: TestServer, head: bytes, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and header lines, each ending in CRLF) and ``body``;
    the status, headers and body of the answer."""
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        length = f"Content-Length: {len(body)}\r\n".encode() if body else b""
        writer.write(head + length + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    top, _, rest = answer.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, rest


def request_head(method: str, path: str, *headers: bytes) -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: gateway\r\n".encode() + b"".join(
        h + b"\r\n" for h in headers
    )


def json_body(value: Any) -> bytes:
    return json.dumps(value).encode()
