"""The REST adapter's HTTP/1.1 pool (adapters/rest/wire.py) against a raw server on loopback.

The server is a plain asyncio server that answers each request with bytes a
test scripts: well-formed answers in every framing (Content-Length, chunked,
read to close, gzip and deflate), and the hostile ones (garbage, bodies cut
short, too large, a gzip bomb, two answers to one request, silence). Each
test checks what the pool returns or raises and what it does with the
connection (kept, closed, never reused).
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
import sys
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rest_support import closed_port
from yarl import URL

from adapters.rest.wire import (
    AnswerTooLarge,
    BrokenAnswer,
    ConnectTimeout,
    Disconnected,
    NotConnected,
    Pool,
    RawAnswer,
    Unsendable,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "security"))
from test_tls import self_signed

#: What the server does with one request: bytes to send back (None: say nothing), and
#: whether to close the connection afterwards.
Script = Callable[[bytes], tuple[bytes | None, bool]]


def ok(body: bytes = b'{"ok":true}', extra: str = "") -> bytes:
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


@dataclass
class RawServer:
    """A loopback server reading one request at a time and answering as scripted."""

    script: Script
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = self.server.sockets[0].getsockname()[1]
        return port

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                answer, close = self.script(head + body)
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
                if close:
                    return
        finally:
            self.open_now -= 1
            writer.close()


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], RawServer]]:
    servers: list[RawServer] = []

    def start(script: Script) -> RawServer:
        raw = RawServer(script)
        servers.append(raw)
        return raw

    yield start
    for raw in servers:
        if raw.server is not None:
            raw.server.close()


async def started(raw: RawServer, ssl_context: ssl.SSLContext | None = None) -> Pool:
    raw.server = await asyncio.start_server(raw.handle, "127.0.0.1", 0, ssl=ssl_context)
    scheme = "https" if ssl_context is not None else "http"
    return Pool(URL(f"{scheme}://127.0.0.1:{raw.port}"), verify_tls=False)


async def call(
    pool: Pool,
    target: str = "/accounts/1",
    *,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    seconds: float = 5.0,
    read_timeout: float | None = None,
    max_size: int = 1 << 20,
) -> RawAnswer:
    return await pool.request(
        method,
        target,
        headers if headers is not None else {"Accept": "application/json"},
        body,
        seconds=seconds,
        connect_timeout=2.0,
        read_timeout=read_timeout,
        max_size=max_size,
    )


# -- well-formed answers ---------------------------------------------------------------


async def test_one_connection_carries_call_after_call(serve) -> None:
    raw = serve(lambda request: (ok(), False))
    pool = await started(raw)
    for _ in range(5):
        answer = await call(pool)
        assert (answer.status, answer.body) == (200, b'{"ok":true}')
        assert answer.headers["content-type"] == "application/json"
    assert raw.connections == 1
    await pool.close()


async def test_the_request_is_written_as_http_1_1_with_host_length_and_headers(serve) -> None:
    raw = serve(lambda request: (ok(), False))
    pool = await started(raw)
    await call(pool, "/a%2Fb?x=1", method="POST", body=b'{"a":1}', headers={"X-Api-Key": "k"})
    (request,) = raw.requests
    head, body = request.split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /a%2Fb?x=1 HTTP/1.1"
    assert f"Host: 127.0.0.1:{raw.port}".encode() in lines
    assert b"X-Api-Key: k" in lines
    assert b"Content-Length: 7" in lines
    assert b"Accept-Encoding: gzip, deflate" in lines
    assert body == b'{"a":1}'
    await pool.close()


async def test_a_post_without_body_says_its_length_is_zero(serve) -> None:
    raw = serve(lambda request: (ok(), False))
    pool = await started(raw)
    await call(pool, method="POST")
    assert b"Content-Length: 0" in raw.requests[0].split(b"\r\n")
    await pool.close()


async def test_a_chunked_answer_is_joined(serve) -> None:
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"
    )
    raw = serve(lambda request: (answer, False))
    pool = await started(raw)
    assert (await call(pool)).body == b"hello world"
    assert (await call(pool)).body == b"hello world"  # the connection stays usable
    assert raw.connections == 1
    await pool.close()


async def test_an_answer_without_length_ends_when_the_app_closes(serve) -> None:
    raw = serve(lambda request: (b"HTTP/1.1 200 OK\r\n\r\nall of it", True))
    pool = await started(raw)
    assert (await call(pool)).body == b"all of it"
    assert (await call(pool)).body == b"all of it"  # on a new connection
    assert raw.connections == 2
    await pool.close()


async def test_connection_close_is_honoured(serve) -> None:
    raw = serve(lambda request: (ok(extra="Connection: close\r\n"), False))
    pool = await started(raw)
    await call(pool)
    await call(pool)
    assert raw.connections == 2
    await pool.close()


async def test_an_interim_answer_is_skipped(serve) -> None:
    raw = serve(lambda request: (b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"[1]"), False))
    pool = await started(raw)
    answer = await call(pool, method="PUT", body=b"{}")
    assert (answer.status, answer.body) == (200, b"[1]")
    await pool.close()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some apps send
    ],
)
async def test_compressed_answers_are_decoded(serve, encoding, encode) -> None:
    body = b'{"items":[' + b",".join(b'{"id":%d}' % i for i in range(200)) + b"]}"
    raw = serve(lambda request: (ok(encode(body), f"Content-Encoding: {encoding}\r\n"), False))
    pool = await started(raw)
    assert (await call(pool)).body == body
    await pool.close()


async def test_https_with_verification_off_for_a_self_signed_app(serve, tmp_path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    raw = serve(lambda request: (ok(), False))
    pool = await started(raw, context)
    assert (await call(pool)).status == 200
    assert (await call(pool)).status == 200
    assert raw.connections == 1
    await pool.close()


async def test_https_refuses_an_untrusted_certificate_when_verifying(serve, tmp_path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    raw = serve(lambda request: (ok(), False))
    await started(raw, context)
    pool = Pool(URL(f"https://127.0.0.1:{raw.port}"), verify_tls=True)
    with pytest.raises(NotConnected) as caught:
        await call(pool)
    assert "TLS failed" in str(caught.value)
    assert raw.requests == []
    await pool.close()


# -- the pool ----------------------------------------------------------------------------


async def test_an_idle_connection_the_app_closed_is_not_reused(serve) -> None:
    raw = serve(lambda request: (ok(), True))  # answers with a length, then hangs up
    pool = await started(raw)
    await call(pool)
    await asyncio.sleep(0.05)  # the FIN arrives while the connection is idle
    answer = await call(pool, method="POST", body=b"{}")  # must not meet the dead connection
    assert answer.status == 200
    assert raw.connections == 2
    await pool.close()


async def test_no_more_connections_than_the_limit(serve) -> None:
    raw = serve(lambda request: (ok(), False))
    raw.server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
    pool = Pool(URL(f"http://127.0.0.1:{raw.port}"), limit=2)
    answers = await asyncio.gather(*(call(pool) for _ in range(12)))
    assert [a.status for a in answers] == [200] * 12
    assert raw.most_open <= 2
    await pool.close()


async def test_an_unreachable_app_was_never_sent_anything() -> None:
    pool = Pool(URL(f"http://127.0.0.1:{closed_port()}"))
    with pytest.raises(NotConnected) as caught:
        await call(pool)
    assert isinstance(caught.value, OSError)
    assert isinstance(caught.value.os_error, ConnectionRefusedError)
    await pool.close()


async def test_a_name_that_does_not_resolve_is_not_connected() -> None:
    pool = Pool(URL("http://name-that-does-not-resolve.invalid"))
    with pytest.raises(NotConnected):
        await call(pool)
    await pool.close()


async def test_waiting_for_a_free_connection_ends_with_the_call(serve) -> None:
    raw = serve(lambda request: (None, False))  # never answers: the one connection stays busy
    raw.server = await asyncio.start_server(raw.handle, "127.0.0.1", 0)
    pool = Pool(URL(f"http://127.0.0.1:{raw.port}"), limit=1)
    first = asyncio.ensure_future(call(pool, seconds=1.0))
    await asyncio.sleep(0.05)
    with pytest.raises(ConnectTimeout):
        await call(pool, seconds=0.1)
    with pytest.raises(TimeoutError):
        await first
    await pool.close()


# -- hostile answers ---------------------------------------------------------------------


async def test_garbage_is_a_broken_answer_and_the_connection_is_dropped(serve) -> None:
    answers = iter([b"SSH-2.0-OpenSSH_9.2\r\n\r\n", ok()])
    raw = serve(lambda request: (next(answers), False))
    pool = await started(raw)
    with pytest.raises(BrokenAnswer):
        await call(pool)
    assert (await call(pool)).status == 200
    assert raw.connections == 2
    await pool.close()


async def test_a_body_cut_short_is_a_broken_connection(serve) -> None:
    raw = serve(lambda request: (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}", True))
    pool = await started(raw)
    with pytest.raises(Disconnected, match="middle of its answer"):
        await call(pool)
    await pool.close()


async def test_a_hang_up_before_any_answer_is_a_broken_connection(serve) -> None:
    raw = serve(lambda request: (None, True))
    pool = await started(raw)
    with pytest.raises(Disconnected, match="before answering"):
        await call(pool, method="POST", body=b"{}")
    await pool.close()


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_a_body_past_the_bound_is_refused(serve, framing) -> None:
    big = b"x" * 5000
    if framing == "length":
        answer = ok(big)
    else:
        answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        answer += b"".join(b"3e8\r\n" + b"y" * 1000 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    raw = serve(lambda request: (answer, False))
    pool = await started(raw)
    with pytest.raises(AnswerTooLarge):
        await call(pool, max_size=4096)
    assert (await call(pool, max_size=1 << 20)).status == 200  # a fresh connection works
    assert raw.connections == 2
    await pool.close()


async def test_a_gzip_bomb_is_refused_by_its_decoded_size(serve) -> None:
    bomb = gzip.compress(b"\0" * (10 << 20))  # 10 MiB of zeros in about 10 KB
    raw = serve(lambda request: (ok(bomb, "Content-Encoding: gzip\r\n"), False))
    pool = await started(raw)
    with pytest.raises(AnswerTooLarge):
        await call(pool, max_size=1 << 20)
    await pool.close()


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("br", b"\x0b\x02\x80hi\x03"),
        ("gzip", b"not gzip at all"),
        ("gzip", gzip.compress(b"{}")[:-6]),
    ],
)
async def test_unasked_or_broken_encodings_are_broken_answers(serve, encoding, body) -> None:
    raw = serve(lambda request: (ok(body, f"Content-Encoding: {encoding}\r\n"), False))
    pool = await started(raw)
    with pytest.raises(BrokenAnswer):
        await call(pool)
    await pool.close()


async def test_two_answers_to_one_request_never_reach_the_next_call(serve) -> None:
    answers = iter([ok(b'"first"') + ok(b'"smuggled"'), ok(b'"second"')])
    raw = serve(lambda request: (next(answers), False))
    pool = await started(raw)
    assert (await call(pool)).body == b'"first"'
    assert (await call(pool)).body == b'"second"'
    assert raw.connections == 2
    await pool.close()


async def test_silence_ends_at_the_call_deadline_and_the_connection_is_dropped(serve) -> None:
    answers = iter([None, ok()])
    raw = serve(lambda request: (next(answers), False))
    pool = await started(raw)
    with pytest.raises(TimeoutError):
        await call(pool, seconds=0.2)
    assert (await call(pool)).status == 200
    assert raw.connections == 2
    await pool.close()


async def test_a_read_timeout_bounds_the_gap_between_reads(serve) -> None:
    raw = serve(lambda request: (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12", False))
    pool = await started(raw)
    with pytest.raises(TimeoutError):
        await call(pool, seconds=5.0, read_timeout=0.2)
    await pool.close()


async def test_a_cancelled_call_drops_its_connection(serve) -> None:
    answers = iter([None, ok()])
    raw = serve(lambda request: (next(answers), False))
    pool = await started(raw)
    task = asyncio.ensure_future(call(pool))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await call(pool)).status == 200  # a late first answer cannot reach it
    assert raw.connections == 2
    await pool.close()


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("/accounts/1 HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET /admin", {}),
        ("/ok", {"Authorization": "Bearer t\r\nX-Evil: 1"}),
        ("/ok", {"Bad Name": "v"}),
        ("http://elsewhere/", {}),
    ],
)
async def test_a_request_that_could_split_is_never_written(serve, target, headers) -> None:
    raw = serve(lambda request: (ok(), False))
    pool = await started(raw)
    with pytest.raises(Unsendable):
        await call(pool, target, headers=headers)
    assert raw.requests == []
    await pool.close()


def test_the_pool_runs_on_uvloop_too() -> None:
    """uvloop (uvicorn's loop, and gunicorn's aiohttp worker's) hands the protocol a
    transport that is not a subclass of asyncio.Transport; the pool works with it."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> tuple[RawServer, list[RawAnswer]]:
        raw = RawServer(lambda request: (ok(), False))
        pool = await started(raw)
        try:
            answers = [await call(pool) for _ in range(3)]
            answers.append(await call(pool, method="POST", body=b'{"a":1}'))
        finally:
            await pool.close()
            assert raw.server is not None
            raw.server.close()
        return raw, answers

    # The runner cancels what a failure leaves running (the server's handler of a
    # connection the pool could not use) before it closes the loop.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        raw, answers = runner.run(asyncio.wait_for(scenario(), 20))
    assert [(a.status, a.body) for a in answers] == [(200, b'{"ok":true}')] * 4
    assert raw.connections == 1  # kept alive across the four calls
    assert raw.requests[-1].endswith(b'\r\n\r\n{"a":1}')
