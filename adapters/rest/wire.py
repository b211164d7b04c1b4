"""HTTP/1.1 to one legacy app: a keep-alive connection pool on asyncio's transports.

The REST adapter sends every call to one origin (``base_url``) and needs
little of a general HTTP client: no cookies, no redirects (they would carry
credentials elsewhere), no proxies, no multipart, no streaming upload. What it
does need it needs on every call, and aiohttp's client spent about 80 µs of
CPU per call on loopback in generality we never use (a request object, a
timer context, a trace-config walk, header multidicts copied twice, URL
re-parsing, a response object and a stream reader per call). This pool does
the one thing: it writes the request line and headers in one buffer, parses
the answer with httptools (llhttp, the parser Node.js uses; chunked bodies
included) and hands back status, headers and the whole body, bounded, in
about 30 µs (``python -m bench rest`` shows the end-to-end effect).

Connections are kept for the next call when the answer allows it (HTTP/1.1
without ``Connection: close``, the body read to its end) and dropped from the
pool as soon as the app closes them while idle, so a call rarely meets a
connection the app already closed. A call whose connection broke after the
request may have been written raises :class:`Disconnected`; the caller
decides whether repeating it is safe (adapters/rest/client.py). One timer per
call bounds it as a whole; the optional read timeout bounds each gap between
two reads.

Answers are hostile bytes: a parse error, a body cut short, a body past the
size bound (counted after decompression, so a small gzip bomb is refused too)
or a ``Content-Encoding`` we did not ask for fails the call, and the
connection is closed, never reused. Request lines and header values with
control characters are refused before anything is written, so a value from
outside (an id, a next-page link, a fetched token) cannot split a request.
"""

from __future__ import annotations

import asyncio
import re
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import httptools
from multidict import CIMultiDict
from yarl import URL

__all__ = [
    "AnswerTooLarge",
    "BrokenAnswer",
    "ConnectTimeout",
    "Disconnected",
    "NotConnected",
    "Pool",
    "RawAnswer",
    "Unsendable",
    "WireError",
]

#: Characters never allowed in a request target or a header value we write.
_UNSAFE_TARGET = re.compile(r"[\x00-\x20\x7f]")
_UNSAFE_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # tab is allowed in a field value
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # RFC 9110 5.6.2: a header name
#: Seconds an idle connection is kept (the app may close it sooner; it then leaves the pool).
IDLE_SECONDS = 15.0
#: Connections open to the app at most; more calls wait for one (aiohttp's default too).
LIMIT = 100


class WireError(Exception):
    """A call failed below HTTP: no connection, a broken one, or an unusable answer."""


class NotConnected(WireError, OSError):
    """The connection could not be opened: the app never saw the request. An OSError, as
    the failures it stands for (``os_error``: the one the system gave, if any)."""

    def __init__(self, reason: str, os_error: OSError | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.os_error = os_error


class ConnectTimeout(NotConnected, TimeoutError):
    """Opening the connection took longer than the connect timeout."""


class Disconnected(WireError):
    """The connection broke once the request may have been written; no full answer came."""


class BrokenAnswer(WireError):
    """The answer is not valid HTTP/1.1, was cut short, or is encoded in a way not asked for."""


class Unsendable(WireError):
    """The request line or a header holds characters HTTP/1.1 cannot carry: nothing was sent."""


class AnswerTooLarge(WireError):
    """The answer's body is larger than the bound given (after decompression)."""


@dataclass(frozen=True, slots=True)
class RawAnswer:
    status: int
    headers: CIMultiDict[str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One connection and the answer being read on it (one call at a time)."""

    __slots__ = (
        "_body",
        "_complete",
        "_future",
        "_headers",
        "_limit",
        "_pool",
        "_read_timeout",
        "_read_timer",
        "_size",
        "_started",
        "_status",
        "_to_close",
        "closed",
        "idle_since",
        "parser",
        "transport",
    )

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._future: asyncio.Future[RawAnswer] | None = None
        self._headers: list[tuple[str, str]] = []
        self._body: list[bytes] = []
        self._size = 0
        self._limit = 0
        self._to_close = False
        self._status = 0
        self._complete = False
        self._read_timeout: float | None = None
        self._read_timer: asyncio.TimerHandle | None = None
        self._started = False  # a byte of the answer arrived

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport; not checked with isinstance: uvloop's are not subclasses of
        # asyncio.Transport.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._future is None:  # bytes nobody asked for: the connection is unusable
            self.close()
            return
        self._started = True
        if self._read_timer is not None:
            self._arm_read_timer()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BrokenAnswer("the app switched protocols"))
        except httptools.HttpParserError as exc:
            # httptools reports a callback's exception as a parser error, the exception
            # as its context: an answer too large, or bytes past the answer.
            reason = exc.__context__
            if not isinstance(reason, WireError):
                reason = BrokenAnswer("the answer is not valid HTTP/1.1")
            self._fail(reason)

    def eof_received(self) -> bool:
        self._end_of_stream()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._end_of_stream()
        self._pool._forget(self)

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._future is None:  # a second answer to one request: never reuse this one
            self._to_close = True
            raise BrokenAnswer("the app sent more than one answer")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.decode("latin-1"), value.decode("utf-8", "surrogateescape")))

    def on_headers_complete(self) -> None:
        self._status = self.parser.get_status_code()
        if not self.parser.should_keep_alive():
            self._to_close = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._limit:
            raise AnswerTooLarge(f"larger than {self._limit} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:  # 1xx: informational, the real answer follows
            self._headers, self._body, self._size = [], [], 0
            return
        self._complete = True
        self._finish()

    # -- one call ----------------------------------------------------------------------

    def begin(
        self, data: bytes, limit: int, read_timeout: float | None
    ) -> asyncio.Future[RawAnswer]:
        loop = self._pool._loop
        self._future = future = loop.create_future()
        self._headers, self._body, self._size, self._limit = [], [], 0, limit
        self._status, self._complete, self._started = 0, False, False
        self._read_timeout = read_timeout
        if read_timeout is not None:
            self._arm_read_timer()
        assert self.transport is not None
        self.transport.write(data)
        return future

    def _arm_read_timer(self) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
        assert self._read_timeout is not None
        self._read_timer = self._pool._loop.call_later(self._read_timeout, self._read_expired)

    def _read_expired(self) -> None:
        self._read_timer = None
        self._fail(TimeoutError("no data from the app within the read timeout"))

    def _finish(self) -> None:
        future, self._future = self._future, None
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        if future is None or future.done():
            return
        headers: CIMultiDict[str] = CIMultiDict(self._headers)
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        encoding = headers.get("Content-Encoding")
        if encoding is not None and body:
            try:
                body = _decode(body, encoding.strip().lower(), self._limit)
            except WireError as exc:
                self._to_close = True
                self.close()
                future.set_exception(exc)
                return
        if self._to_close:
            self.close()
        future.set_result(RawAnswer(self._status, headers, body))

    def _end_of_stream(self) -> None:
        """The app closed the connection: an answer without length ends here, others broke."""
        if self._future is None:
            self.closed = True
            return
        if self._status >= 200 and not self._complete and self._reads_to_close():
            self._to_close = self._complete = True
            self._finish()
            return
        reason = "the app closed the connection before answering"
        if self._started:
            reason = "the app closed the connection in the middle of its answer"
        self._fail(Disconnected(reason))

    def _reads_to_close(self) -> bool:
        """The answer has neither Content-Length nor chunked coding: its body ends at EOF."""
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == "content-length" or (
                lowered == "transfer-encoding" and "chunked" in value.lower()
            ):
                return False
        return True

    def _fail(self, exc: BaseException) -> None:
        future, self._future = self._future, None
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        self.close()
        if future is not None and not future.done():
            future.set_exception(exc)

    def abandon(self) -> None:
        """The call stopped waiting (cancelled or timed out): the connection is unusable."""
        self._future = None
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        self.close()

    @property
    def reusable(self) -> bool:
        return not (self.closed or self._to_close or self._future is not None)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


def _decode(body: bytes, encoding: str, limit: int) -> bytes:
    if encoding in ("identity", ""):
        return body
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":  # RFC 9110 says zlib-wrapped; some apps send raw deflate
        decoder = zlib.decompressobj(zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS)
    else:
        raise BrokenAnswer("the answer's Content-Encoding was not asked for")
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error:
        raise BrokenAnswer("the answer's compressed body is broken") from None
    if len(out) > limit:
        raise AnswerTooLarge(f"larger than {limit} bytes")
    if not decoder.eof:
        raise BrokenAnswer("the answer's compressed body is cut short")
    return out


class Pool:
    """Keep-alive connections to one origin, ``http`` or ``https``."""

    def __init__(
        self,
        origin: URL,
        *,
        verify_tls: bool = True,
        user_agent: str = "scim-gateway",
        limit: int = LIMIT,
        idle_seconds: float = IDLE_SECONDS,
    ) -> None:
        if origin.scheme not in ("http", "https") or not origin.host:
            raise ValueError("an http or https origin is needed")
        self._host = origin.raw_host or ""
        self._port = origin.port or (443 if origin.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = None
        if origin.scheme == "https":
            self._ssl = ssl.create_default_context()
            if not verify_tls:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        # The authority as yarl writes it: IPv6 in brackets, a default port left out.
        authority = str(origin).split("://", 1)[1]
        self._fixed = (
            f"Host: {authority}\r\nUser-Agent: {user_agent}\r\nAccept-Encoding: gzip, deflate\r\n"
        ).encode("latin-1")
        self._limit = limit
        self._idle_seconds = idle_seconds
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop = asyncio.get_running_loop()
        self._closing = False

    async def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        *,
        seconds: float,
        connect_timeout: float,
        read_timeout: float | None,
        max_size: int,
    ) -> RawAnswer:
        """Send one request (``target``: path and query, encoded) and read its whole answer
        within ``seconds``, the connection's opening included."""
        data = self._encode(method, target, headers, body)
        loop = self._loop
        deadline = loop.time() + seconds
        conn = await self._connection(min(connect_timeout, seconds), deadline)
        future = conn.begin(data, max_size, read_timeout)
        timer = loop.call_at(deadline, _expire, future)
        try:
            answer = await future
        except BaseException:
            conn.abandon()
            raise
        finally:
            timer.cancel()
            if future.done() and not future.cancelled() and future.exception() is None:
                self._release(conn)
            else:
                self._release_slot(conn)
        return answer

    def _encode(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> bytes:
        if _UNSAFE_TARGET.search(target) or not target.startswith("/"):
            raise Unsendable("its URL holds characters a request line cannot carry")
        lines = [f"{method} {target} HTTP/1.1\r\n"]
        for name, value in headers.items():
            if not _TOKEN.match(name) or _UNSAFE_VALUE.search(value):
                raise Unsendable("a header holds characters a request cannot carry")
            lines.append(f"{name}: {value}\r\n")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body) if body is not None else 0}\r\n")
        head = "".join(lines).encode("utf-8")
        return head + self._fixed + b"\r\n" + body if body else head + self._fixed + b"\r\n"

    # -- the pool ----------------------------------------------------------------------

    async def _connection(self, connect_timeout: float, deadline: float) -> _Connection:
        idle = self._idle
        now = self._loop.time()
        while idle:
            conn = idle.pop()
            if conn.reusable and now - conn.idle_since < self._idle_seconds:
                return conn
            conn.close()
            self._open -= 1
        while self._open >= self._limit:
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                raise ConnectTimeout("no free connection to the app in time") from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if idle:
                return await self._connection(connect_timeout, deadline)
        self._open += 1
        try:
            return await self._connect(connect_timeout)
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    async def _connect(self, connect_timeout: float) -> _Connection:
        loop = self._loop
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(self),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise ConnectTimeout("the connection to the app timed out") from None
        except ssl.SSLError as exc:
            raise NotConnected(f"TLS failed ({exc.reason or 'handshake'})", exc) from exc
        except OSError as exc:
            raise NotConnected(exc.strerror or type(exc).__name__, exc) from exc
        return conn

    def _release(self, conn: _Connection) -> None:
        if conn.reusable and not self._closing:
            conn.idle_since = self._loop.time()
            self._idle.append(conn)
        else:
            conn.close()
            self._open -= 1
        self._wake()

    def _release_slot(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _forget(self, conn: _Connection) -> None:
        """The app closed an idle connection: it leaves the pool at once."""
        if conn in self._idle:
            self._idle.remove(conn)
            self._open -= 1
            self._wake()

    async def close(self) -> None:
        self._closing = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        self._open -= len(idle)
        await asyncio.sleep(0)  # let the transports finish closing


def _expire(future: asyncio.Future[RawAnswer]) -> None:
    if not future.done():
        future.set_exception(TimeoutError("the app did not answer in time"))
