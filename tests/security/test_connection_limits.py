"""Slow-header connections cannot starve the gateway (issue 13, item 9).

Real sockets on loopback against a served app with small limits: slowloris
connections are closed after ``header_timeout``, connections over the per-peer
and total caps are closed at once, other peers are still served, and refusals
make a bounded number of log lines. Peers differ by source address (127.0.0.x).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from support import make_settings

from gateway.app import create_app
from gateway.http.connections import ConnectionGuard, guard_connections

PARTIAL = b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nX-Slow: "
Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]
#: Every client connection a test opened, closed when it ends.
OPENED: list[Conn] = []


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestServer, ConnectionGuard]]:
    settings = make_settings()
    settings = settings.model_copy(
        update={
            "server": settings.server.model_copy(
                update={"header_timeout": 0.5, "max_connections": 6, "max_connections_per_peer": 3}
            )
        }
    )
    app = create_app(settings)
    guard = guard_connections(app, settings.server)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, guard
    for _, writer in OPENED:
        writer.close()
    OPENED.clear()
    await server.close()


async def slow(server: TestServer, source: str) -> Conn:
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=(source, 0))
    OPENED.append((reader, writer))
    writer.write(PARTIAL)
    await writer.drain()
    return reader, writer


async def closed_within(conn: Conn, seconds: float) -> bool:
    try:
        data = await asyncio.wait_for(conn[0].read(), seconds)
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return data == b"" or b"408" in data or b"400" in data


async def healthy(server: TestServer, source: str) -> bool:
    assert server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, local_addr=(source, 0))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer.startswith(b"HTTP/1.1 200")


async def test_a_peer_over_its_cap_is_refused_and_others_are_served(
    served: tuple[TestServer, ConnectionGuard],
) -> None:
    server, guard = served
    held = [await slow(server, "127.0.0.1") for _ in range(3)]
    over = await slow(server, "127.0.0.1")
    assert await closed_within(over, 1.0)
    assert await healthy(server, "127.0.0.2")
    assert guard.open.get("127.0.0.1") == len(held)


async def test_slow_headers_are_cut_off_after_the_header_timeout(
    served: tuple[TestServer, ConnectionGuard],
) -> None:
    server, guard = served
    held = [await slow(server, "127.0.0.1") for _ in range(3)]
    assert not await closed_within(held[0], 0.2)  # not at once
    assert all([await closed_within(conn, 3.0) for conn in held])
    await asyncio.sleep(0.05)
    assert guard.total == 0
    assert await healthy(server, "127.0.0.1")  # the peer may come back


async def test_the_total_cap_holds_across_peers_and_refusals_log_a_bounded_number_of_lines(
    served: tuple[TestServer, ConnectionGuard], caplog: pytest.LogCaptureFixture
) -> None:
    server, guard = served
    caplog.set_level(logging.WARNING, "gateway.connections")
    held = [await slow(server, f"127.0.0.{2 + i // 3}") for i in range(6)]
    refused = [await slow(server, f"127.0.1.{i}") for i in range(40)]
    assert all([await closed_within(conn, 2.0) for conn in refused])
    assert guard.total <= 6
    lines = [r for r in caplog.records if r.name == "gateway.connections"]
    assert 1 <= len(lines) <= 2
    assert "max_connections" in lines[0].getMessage()
    assert len(held) == 6
